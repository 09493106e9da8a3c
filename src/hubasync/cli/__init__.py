"""The ``hubasync`` command line: options, checks before any request, progress, one-line errors."""
