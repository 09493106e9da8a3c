"""The entry points (``./async.py``, ``python -m hubasync``, the .pyz, whose ``__main__`` is
async.py) on a Python too old for hubasync: they parse and run up to the version check, then print
one line naming the version needed and exit 2, never a SyntaxError. And ``--version``."""

from __future__ import annotations

import ast
import glob
import os
import runpy
import subprocess
import sys
from typing import Any, List, Optional

import pytest

import hubasync
from hubasync.version import __version__

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
ASYNC_PY = os.path.join(ROOT, "async.py")
ENTRY_FILES = [ASYNC_PY, os.path.join(SRC, "hubasync", "__init__.py"),
               os.path.join(SRC, "hubasync", "__main__.py")]
TOO_OLD = (3, 6, 8, "final", 0)
LINE = "hubasync needs Python 3.9 or newer; this is Python 3.6.8"


@pytest.mark.parametrize("path", ENTRY_FILES, ids=os.path.basename)
def test_entry_files_parse_as_python_3_6(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    tree = ast.parse(source, filename=path, feature_version=(3, 6))
    # what ast.parse lets through but Python 3.6 refuses when it compiles the file
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            assert not {alias.name for alias in node.names} & {"annotations"}, path


def async_py_check() -> Any:
    return runpy.run_path(ASYNC_PY, run_name="checked")["unsupported_python"]


@pytest.mark.parametrize("check", [hubasync.unsupported_python, async_py_check()],
                         ids=["hubasync", "async.py"])
def test_the_check_names_the_version_needed(check: Any) -> None:
    assert check(TOO_OLD) == LINE
    assert check((3, 8, 18, "final", 0)) == (
        "hubasync needs Python 3.9 or newer; this is Python 3.8.18")
    assert check((3, 9, 0, "final", 0)) is None
    assert check((3, 13, 1, "final", 0)) is None
    assert check((4, 0, 0, "final", 0)) is None
    assert check() is None  # this Python


def run_faked(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child whose sys.version_info says 3.6.8, from src/ on the path."""
    prelude = f"import runpy, sys; sys.version_info = {TOO_OLD!r}; "
    environment = dict(os.environ, PYTHONPATH=SRC)
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                          text=True, env=environment, timeout=60, cwd=ROOT)


@pytest.mark.parametrize("code", [
    "sys.argv = ['-m']; runpy.run_module('hubasync', run_name='__main__', alter_sys=True)",
    f"sys.argv = [{ASYNC_PY!r}]; runpy.run_path({ASYNC_PY!r}, run_name='__main__')",
], ids=["python -m hubasync", "async.py"])
def test_an_old_python_gets_one_line_and_exit_2(code: str) -> None:
    done = run_faked(code)
    assert (done.returncode, done.stderr, done.stdout) == (2, LINE + "\n", "")


def test_the_library_on_an_old_python_raises_import_error_naming_the_version() -> None:
    done = run_faked("import hubasync")
    assert done.returncode == 1
    assert done.stderr.rstrip().splitlines()[-1] == "ImportError: " + LINE


def old_interpreters() -> List[str]:
    """Pythons older than 3.9 on this machine, if any (a test runs them when there are)."""
    found = []
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [f"python3.{minor}" for minor in range(4, 9)]
    candidates += sorted(glob.glob(os.path.join(root, "versions", "3.[4-8].*", "bin", "python3")))
    for candidate in candidates:
        version = _version_of(candidate)
        if version is not None and version < (3, 9) and version not in {v for _, v in found}:
            found.append((candidate, version))
    return [candidate for candidate, _ in found]


def _version_of(python: str) -> Optional[tuple[int, int]]:
    try:
        done = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = done.stdout.split()
    return (int(parts[0]), int(parts[1])) if done.returncode == 0 and len(parts) == 2 else None


@pytest.mark.parametrize("python", old_interpreters() or [None])
def test_a_real_old_python_gets_one_line_and_exit_2(python: Optional[str]) -> None:
    if python is None:
        pytest.skip("no Python older than 3.9 on this machine")
    for argv, env in (([python, ASYNC_PY, "--version"], {}),
                      ([python, "-m", "hubasync", "--version"], {"PYTHONPATH": SRC})):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT,
                              env=dict(os.environ, **env))
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        assert done.stderr.startswith("hubasync needs Python 3.9 or newer; this is Python 3.")
        assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("argv", [[sys.executable, ASYNC_PY],
                                  [sys.executable, "-m", "hubasync"]], ids=["async.py", "-m"])
def test_version(argv: List[str]) -> None:
    done = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=SRC))
    assert (done.returncode, done.stdout) == (0, f"hubasync {__version__}\n")
