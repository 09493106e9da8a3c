#!/usr/bin/env python3
"""``make demo``: start the simulator, download a few events and a count from it, stop it.

Needs nothing but Python: the simulator and ``./async.py`` run straight from the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def show(command: list[str], env: dict[str, str]) -> None:
    print("$ " + " ".join(command[1:] if command[0] == sys.executable else command), flush=True)
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    print(flush=True)


def main() -> int:
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"), APIKEY="demo-key")
    sim = subprocess.Popen(
        [sys.executable, "-m", "hubasync.sim", "--port", "0", "--events", "5000",
         "--page-max", "1000"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert sim.stdout is not None
        base = sim.stdout.readline().strip()
        if not base.startswith("http"):
            print("the simulator did not start (try: PYTHONPATH=src python3 -m hubasync.sim)",
                  file=sys.stderr)
            return 1
        print(f"simulator running at {base} (API key: demo-key)\n", flush=True)
        share = f"{base}/shares/v2/async/demo"
        show(["./async.py", share, "--limit=3", "--projection=observation time,feed,type,ip"], env)
        show(["./async.py", share + "/count"], env)
        show(["./async.py", share + "/count", "--filter=type=phishing"], env)
        show(["./async.py", f"{base}/shares/v2/async/notify/0", "--limit=2"], env)
    except subprocess.CalledProcessError as error:
        print(f"demo step failed with exit code {error.returncode}", file=sys.stderr)
        return 1
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    print("simulator stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
