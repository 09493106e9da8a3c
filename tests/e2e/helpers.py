"""Running the command line as a process against the simulator, and reading what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from processes import Child

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


def environment(apikey: Optional[str] = "demo-key",
                env: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The environment of a CLI child: the key in APIKEY unless None, then ``env``.

    The machine's ``*_proxy`` / ``*_PROXY`` variables (and ``REQUEST_METHOD``) are not passed
    on: only those in ``env`` reach the child.
    """
    chosen = {k: v for k, v in os.environ.items()
              if k != "APIKEY" and k != "REQUEST_METHOD" and not k.lower().endswith("_proxy")}
    if apikey is not None:
        chosen["APIKEY"] = apikey
    chosen.update(env or {})
    return chosen


def run(args: Sequence[str], *, apikey: Optional[str] = "demo-key", entry: str = "async",
        env: Optional[dict[str, str]] = None, timeout: float = 120,
        cwd: Optional[str] = None) -> Run:
    """Run the CLI to completion, in :func:`environment` (``apikey``, ``env``)."""
    done = subprocess.run(command(entry) + list(args), capture_output=True,
                          env=environment(apikey, env), timeout=timeout, cwd=cwd)
    return Run(done.returncode, done.stdout, done.stderr.decode("utf-8", "replace"))


def start(args: Sequence[str], *, apikey: Optional[str] = "demo-key",
          env: Optional[dict[str, str]] = None) -> Child:
    """Start the CLI in the background, in :func:`environment`; its stdout and stderr go to
    files (``child.stdout_bytes()``, ``child.stderr_text()``). Use it in a ``with`` block."""
    return Child(command() + list(args), env=environment(apikey, env))


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


def saved_state(path: Any) -> dict[str, Any]:
    """What the state file at ``path`` holds, {} while there is none (it is replaced whole)."""
    try:
        with open(path, encoding="utf-8") as handle:
            state: dict[str, Any] = json.load(handle)
            return state
    except FileNotFoundError:
        return {}


def read_jsonl(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


class HeldJobs:
    """Jobs posted to ``sim`` after the first ``let_through`` stay pending (202) until
    :meth:`release`: a run stopped meanwhile is surely still waiting on the hub, however slow
    the machine (instead of a job latency long enough, one hopes, for the test to act).

        held = HeldJobs(sim, let_through=1)   # the first page comes, the second never does
        ... wait until the state records page 1, stop the run ...
        held.release()                        # jobs posted from now on run normally
    """

    def __init__(self, sim: Any, let_through: int = 0) -> None:
        self._jobs = sim.hub.jobs
        self._create = self._jobs.create
        self._lock = threading.Lock()  # the simulator creates jobs on its handler threads
        self._left = let_through
        self._held: List[Any] = []
        self._released = False
        self._jobs.create = self._created

    def _created(self, *args: Any, **kwargs: Any) -> Any:
        job = self._create(*args, **kwargs)
        with self._lock:
            if self._released:
                return job
            if self._left > 0:
                self._left -= 1
            else:
                job.pending_forever = True
                self._held.append(job)
        return job

    @property
    def held(self) -> int:
        """How many jobs are being held."""
        with self._lock:
            return len(self._held)

    def release(self) -> None:
        """Let the held jobs finish, and hold no more."""
        with self._lock:
            self._released = True
            for job in self._held:
                job.pending_forever = False
            self._held.clear()
        del self._jobs.create  # the store's own method again
