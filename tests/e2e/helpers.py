"""Running the command line as a process against the simulator, and reading what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASYNC_PY = os.path.join(ROOT, "async.py")
HUBASYNC = os.path.join(os.path.dirname(sys.executable), "hubasync")


@dataclass
class Run:
    code: int
    stdout: bytes
    stderr: str

    @property
    def events(self) -> list[dict[str, Any]]:
        document = json.loads(self.stdout)
        assert isinstance(document, list)
        return document

    @property
    def last_stderr_line(self) -> str:
        lines = self.stderr.rstrip("\n").split("\n")
        return lines[-1] if lines else ""


def command(entry: str = "async") -> list[str]:
    """The command line of one of the entry points."""
    if entry == "async":
        return [sys.executable, ASYNC_PY]
    if entry == "module":
        return [sys.executable, "-m", "hubasync"]
    return [HUBASYNC]


def run(args: Sequence[str], *, apikey: Optional[str] = "demo-key", entry: str = "async",
        env: Optional[dict[str, str]] = None, timeout: float = 120,
        cwd: Optional[str] = None) -> Run:
    """Run the CLI to completion; the key goes in APIKEY unless None.

    The machine's ``*_proxy`` / ``*_PROXY`` variables (and ``REQUEST_METHOD``) are not passed
    on: only those in ``env`` reach the child.
    """
    environment = {k: v for k, v in os.environ.items()
                   if k != "APIKEY" and k != "REQUEST_METHOD"
                   and not k.lower().endswith("_proxy")}
    if apikey is not None:
        environment["APIKEY"] = apikey
    environment.update(env or {})
    done = subprocess.run(command(entry) + list(args), capture_output=True, env=environment,
                          timeout=timeout, cwd=cwd)
    return Run(done.returncode, done.stdout, done.stderr.decode("utf-8", "replace"))


def one_line(stderr: str, *, then_token: bool = False) -> str:
    """The one line a failed run wrote on stderr (``hubasync: ...``), checked to be the only one
    and no traceback. ``then_token``: a second line may follow, the token that continues."""
    lines = [line for line in stderr.splitlines() if line]
    assert "Traceback" not in stderr, stderr
    if then_token and len(lines) == 2:
        assert " " not in lines[1], stderr
        lines = lines[:1]
    assert len(lines) == 1 and lines[0].startswith("hubasync: "), stderr
    return lines[0]


def share(sim: Any, name: str = "demo", tail: str = "") -> str:
    return f"{sim.url}/shares/v2/async/{name}{tail}"


def read_jsonl(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]
