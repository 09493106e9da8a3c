"""The command line: base URL first on stdout, a working hub, a clean stop on Ctrl-C."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from hubasync.sim import ALL_FAULTS
from hubasync.sim.__main__ import build_parser, main


def test_cli_prints_url_first_serves_and_stops_on_ctrl_c():
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubasync.sim", "--port", "0", "--events", "50",
         "--apikey", "k3y", "--seed", "9"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        example = proc.stdout.readline()
        assert "/shares/v2/async/demo" in example
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        conn.request("GET", "/shares/v2/demo/count?apikey=k3y")
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read()) == {"count": 50}
        conn.close()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "Traceback" not in err


def test_cli_rejects_bad_options(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fault", "nope"])
    assert main(["--port", "0", "--page-max", "0"]) == 2
    assert "page-max" in capsys.readouterr().err


def test_cli_lists_faults(capsys):
    assert main(["--list-faults"]) == 0
    out = capsys.readouterr().out
    assert "results-reset" in out and "keepalive-drop" in out
    for name in ALL_FAULTS:
        assert name in out
    assert "results-gzip-bomb-nesting" in out and "[hostile]" in out
    assert build_parser().parse_args(["--fault", "status-303:2"]).fault == ["status-303:2"]
