"""The version of hubasync, in a module of its own so that anything may import it."""

__version__ = "0.3.0"
PROG = "hubasync"  # the command's name, in every message it prints
