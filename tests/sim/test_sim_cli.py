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


def test_cli_serves_https_with_tls_and_a_silent_client_blocks_no_one(tmp_path):
    import socket
    import ssl

    import trustme

    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key, cafile = (str(tmp_path / name) for name in ("cert.pem", "key.pem", "ca.pem"))
    issued.private_key_and_cert_chain_pem.write_to_path(cert)
    issued.private_key_pem.write_to_path(key)
    ca.cert_pem.write_to_path(cafile)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubasync.sim", "--port", "0", "--events", "50",
         "--apikey", "k3y", "--tls", cert, key],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("https://127.0.0.1:")
        parts = urlsplit(url)
        # A client that connects and never starts TLS must not hold the server's accept loop.
        with socket.create_connection((parts.hostname, parts.port), timeout=5):
            context = ssl.create_default_context(cafile=cafile)
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=10,
                                               context=context)
            conn.request("GET", "/shares/v2/demo/count?apikey=k3y")
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read()) == {"count": 50}
            conn.close()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0


def test_cli_refuses_missing_tls_files(capsys, tmp_path):
    assert main(["--port", "0", "--tls", str(tmp_path / "no.pem"), str(tmp_path / "no.key")]) == 2
    assert "no such file" in capsys.readouterr().err
