#!/usr/bin/env python3
"""``make demo``: start the simulator, download a few events and a count from it, stop it.

Needs nothing but Python: the simulator and ``./async.py`` run straight from the checkout. The
commands write to this script's own stdout, whatever it is (a terminal, ``make demo > demo.log``,
a pipe). The simulator's first line (its URL) goes to a file, waited for with a deadline; the
simulator is stopped however the demo ends. ``no_proxy`` keeps a proxy set in the environment
away from the simulator, which is on this machine.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT = 60.0  # seconds for the simulator to print its URL, on a loaded machine
STEP_TIMEOUT = 120.0


def show(command: List[str], env: dict[str, str]) -> None:
    shown = command[1:] if command[0] == sys.executable else command
    print("$ " + " ".join(shlex.quote(word) for word in shown), flush=True)
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=STEP_TIMEOUT,
                   stdin=subprocess.DEVNULL)
    print(flush=True)


def first_line(path: str, sim: subprocess.Popen[bytes]) -> Optional[str]:
    """The simulator's first line of output, once written; None if it exits or is too slow."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if "\n" in text:
            return text.split("\n", 1)[0].strip()
        if sim.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def stop(sim: subprocess.Popen[bytes]) -> None:
    sim.terminate()
    try:
        sim.wait(timeout=10)
    except subprocess.TimeoutExpired:
        sim.kill()
        sim.wait()


def main() -> int:
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"), APIKEY="demo-key",
               no_proxy="127.0.0.1,localhost")
    with tempfile.NamedTemporaryFile(prefix="hubasync-demo-", suffix=".out") as out:
        sim = subprocess.Popen(
            [sys.executable, "-m", "hubasync.sim", "--port", "0", "--events", "5000",
             "--page-max", "1000"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = first_line(out.name, sim)
            if base is None or not base.startswith("http"):
                print("demo: the simulator did not start (try: PYTHONPATH=src python3 -m "
                      "hubasync.sim)", file=sys.stderr)
                return 1
            print(f"simulator running at {base} (API key: demo-key)\n", flush=True)
            share = f"{base}/shares/v2/async/demo"
            show(["./async.py", share, "--limit=3",
                  "--projection=observation time,feed,type,ip"], env)
            show(["./async.py", share + "/count"], env)
            show(["./async.py", share + "/count", "--filter=type=phishing"], env)
            show(["./async.py", f"{base}/shares/v2/async/notify/0", "--limit=2"], env)
        except subprocess.CalledProcessError as error:
            print(f"demo: step failed with exit code {error.returncode}: "
                  f"{' '.join(map(str, error.cmd))}", file=sys.stderr)
            return 1
        except subprocess.TimeoutExpired as error:
            print(f"demo: step took more than {error.timeout:g} s: "
                  f"{' '.join(map(str, error.cmd))}", file=sys.stderr)
            return 1
        finally:
            stop(sim)
    print("simulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
