"""Status records: no secret at rest, corrupt records named (never garbage), saves durable and
leaving nothing behind, and ``hubasync status`` showing every share, an unreadable one too."""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import List

import pytest
from processes import Child

from hubasync.errors import ExitCode, OutputError
from hubasync.service import status as status_module
from hubasync.service.status import (
    MAX_ERROR_LENGTH,
    STATUS_LIMIT,
    ShareStatus,
    UnreadableStatus,
    escape_controls,
    load_status,
    remove_status_leftovers,
    render_table,
    save_status,
)
from hubasync.transport.proxy import secrets_of

KEY = "Sekr3t-key-0123456789"
PROXY = "http://bob:pr0xy/p@ss@proxy.corp:3128"
URL = "https://hub.example.com/shares/v2/async"


def _echoes() -> List[str]:
    """How a hub or a proxy may echo the secrets back in an error."""
    basic = base64.b64encode(b"bob:pr0xy/p@ss").decode()
    return [
        f"hub answered 401: invalid key {KEY}",
        f'body {{"error": "key \\"{KEY}\\" refused", "header": "Authorization: token {KEY}"}}',
        f"POST {URL}/abc?apikey={KEY}&limit=10 failed",
        f"key glued: ({KEY}), '{KEY}', {KEY}.",
        f"407 from proxy: Proxy-Authorization: Basic {basic}; password pr0xy%2Fp%40ss",
        f"echo {basic} and bob:pr0xy/p@ss and pr0xy/p@ss",
        "Authorization: token unknown-to-the-service-xyz",
    ]


@pytest.mark.parametrize("error", _echoes())
def test_a_saved_record_holds_no_secret(tmp_path: Path, error: str) -> None:
    path = tmp_path / "a.status.json"
    status = ShareStatus("a", events=3, last_error=error, last_error_time=1.0, failures=1)
    save_status(str(path), status, (KEY, *secrets_of(PROXY)))
    raw = path.read_text()
    for secret in (KEY, "pr0xy", base64.b64encode(b"bob:pr0xy/p@ss").decode(),
                   "unknown-to-the-service-xyz"):
        assert secret not in raw
    assert "REDACTED" in raw
    assert status.last_error == error  # the service's own copy is left as it was
    loaded = load_status(str(path), "a")
    assert loaded.events == 3 and loaded.failures == 1 and loaded.last_error is not None


def test_a_long_error_is_cut_after_redaction(tmp_path: Path) -> None:
    path = tmp_path / "a.status.json"
    error = "x " * MAX_ERROR_LENGTH + KEY
    save_status(str(path), ShareStatus("a", last_error=error), (KEY,))
    saved = load_status(str(path), "a").last_error
    assert saved is not None and len(saved) == MAX_ERROR_LENGTH and saved.endswith("...")
    error = "x" * (MAX_ERROR_LENGTH - 10) + " " + KEY  # cut through the key: redacted first
    save_status(str(path), ShareStatus("a", last_error=error), (KEY,))
    assert KEY[:5] not in path.read_text()


def test_a_record_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "a.status.json"
    status = ShareStatus("a", events=10, pages=2, started=1.5, last_success=2.5, caught_up=2.0,
                         last_error="e", last_error_time=3.0, failures=0)
    save_status(str(path), status)
    assert load_status(str(path), "a") == status
    assert load_status(str(tmp_path / "none.status.json"), "b") == ShareStatus("b")


CORRUPT = [
    ("not json {", "not JSON"),
    ('"just a string"', "a JSON a string, not an object"),
    ("[1, 2]", "a JSON a list, not an object"),
    ("null", "a JSON null, not an object"),
    ('{"events": "abc"}', "events is a string, not a count"),
    ('{"events": -1}', "events is a number, not a count"),
    ('{"events": 1.5}', "events is a number, not a count"),
    ('{"events": true}', "events is true/false, not a count"),
    ('{"failures": null}', "failures is null, not a count"),
    ('{"pages": [1]}', "pages is a list, not a count"),
    ('{"last_success": "yesterday"}', "last_success is a string, not a time"),
    ('{"started": NaN}', "started is not a finite number, not a time"),
    ('{"caught_up": {}}', "caught_up is an object, not a time"),
    ('{"last_error": 42}', "last_error is a number, not text"),
    ("[" * 100_000, "not JSON: RecursionError"),
    ("\udcff", "not JSON"),
]


@pytest.mark.parametrize(("content", "why"), CORRUPT)
def test_a_corrupt_record_is_named_never_returned(tmp_path: Path, content: str,
                                                  why: str) -> None:
    path = tmp_path / "a.status.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(OutputError) as caught:
        load_status(str(path), "a")
    assert str(caught.value).startswith(f"status record {path} is corrupt (")
    assert why in str(caught.value) and str(caught.value).endswith("): remove it")


def test_unknown_fields_are_ignored_and_the_share_is_the_configs(tmp_path: Path) -> None:
    path = tmp_path / "a.status.json"
    path.write_text('{"events": 4, "share": "other", "future": [1]}')
    assert load_status(str(path), "a") == ShareStatus("a", events=4)


def test_a_hostile_or_huge_record_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "f.status.json"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match=f"cannot read status record {fifo}: it is a FIFO"):
        load_status(str(fifo), "f")
    big = tmp_path / "big.status.json"
    big.write_text('{"last_error": "' + "x" * STATUS_LIMIT + '"}')
    with pytest.raises(OutputError, match="more than the 1 MiB allowed"):
        load_status(str(big), "big")


def test_a_save_replaces_the_record_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.status.json"
    save_status(str(path), ShareStatus("a", events=7))
    save_status(str(path), ShareStatus("a", events=8))
    assert json.loads(path.read_text())["events"] == 8
    assert sorted(os.listdir(tmp_path)) == ["a.status.json"]


def test_a_failed_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "a.status.json"
    path.mkdir()  # the rename onto it fails
    with pytest.raises(OutputError, match=f"cannot write status record {path}: "):
        save_status(str(path), ShareStatus("a"))
    assert sorted(os.listdir(tmp_path)) == ["a.status.json"]


def test_leftovers_of_this_record_alone_are_removed(tmp_path: Path) -> None:
    names = [".a.status.json.k2j_x9ab.tmp",  # a killed save of a.status.json
             ".a.status.json.abc.tmp", ".b.status.json.k2j_x9ab.tmp", "a.status.json",
             ".a.status.json.k2j_x9ab.tmp.keep", ".a.state.k2j_x9ab.tmp",
             ".a.status.json.abcdefgh.status.json.k2j_x9ab.tmp"]
    for name in names:
        (tmp_path / name).write_text("x")
    remove_status_leftovers(str(tmp_path / "a.status.json"))
    assert sorted(os.listdir(tmp_path)) == sorted(names[1:])
    remove_status_leftovers(str(tmp_path / "missing-dir" / "a.status.json"))  # no error


def test_save_status_temporaries_are_the_ones_leftovers_removes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.status.json"

    def killed(source: str, target: str) -> None:
        raise KeyboardInterrupt  # a kill between the write and the rename

    monkeypatch.setattr(status_module.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_status(str(path), ShareStatus("a"))
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []  # removed on the way out
    (tmp_path / ".a.status.json.abcd1234.tmp").write_text("left by kill -9")
    remove_status_leftovers(str(path))
    assert os.listdir(tmp_path) == []


def test_the_table_escapes_control_characters_and_redacts_again() -> None:
    now = time.time()
    rows = [ShareStatus("a", events=1200, last_success=now - 5, caught_up=now, started=now - 9),
            ShareStatus("b", last_error=f"\x1b[2J\x1b]0;pwned\x07 key {KEY}\r\nforged line",
                        last_error_time=now - 30, failures=2, started=now - 100),
            UnreadableStatus("c", "status record /x/c.status.json is corrupt (\x1b[31m): "
                                  "remove it")]
    out = io.StringIO()
    render_table(rows, now, 300, out, (KEY,))
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[0].split() == ["SHARE", "HEALTH", "EVENTS", "LAST", "SUCCESS", "BEHIND", "LAST",
                                "ERROR"]
    assert lines[1].split()[:3] == ["a", "ok", "1,200"]
    assert lines[2].split()[:2] == ["b", "failing"]
    assert "\\x1b[2J\\x1b]0;pwned\\x07 key REDACTED\\x0d\\x0aforged line (30s ago)" in lines[2]
    assert lines[3].split()[:2] == ["c", "unreadable"]
    assert lines[3].endswith("is corrupt (\\x1b[31m): remove it")
    assert KEY not in text


def test_escape_controls() -> None:
    assert escape_controls("plain text, é ü 日本") == "plain text, é ü 日本"
    assert escape_controls("a\tb\x00c\x7fd\x9be\u202ef\U000e0001") == \
        "a\\x09b\\x00c\\x7fd\\x9be\\u202ef\\U000e0001"


# -- hubasync status, as a command ---------------------------------------------------------------


def _status_config(tmp_path: Path) -> Path:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    path = tmp_path / "hubasync.toml"
    path.write_text(f'directory = "{tmp_path}"\napikey_file = "{key_file}"\n'
                    f'proxy = "{PROXY}"\n' + "".join(
                        f'[shares.{name}]\nurl = "{URL}/{name}"\n'
                        for name in ("good", "corrupt", "never", "hostile", "old")))
    return path


def test_status_shows_an_unreadable_row_goes_on_and_exits_7(tmp_path: Path) -> None:
    path = _status_config(tmp_path)
    now = time.time()
    save_status(str(tmp_path / "good.status.json"),
                ShareStatus("good", events=5, started=now, last_success=now, caught_up=now))
    (tmp_path / "corrupt.status.json").write_text('{"events": "abc", "failures": null}')
    os.mkfifo(tmp_path / "hostile.status.json")
    # a record written before save_status redacted, and a terminal escape from a hub
    (tmp_path / "old.status.json").write_text(json.dumps(
        {"events": 1, "failures": 1, "last_error": f"\x1b[2Jkey {KEY} pw pr0xy/p@ss"}))
    with Child([sys.executable, "-m", "hubasync", "status", str(path)]) as child:
        assert child.wait() == ExitCode.OUTPUT
        out = child.stdout_bytes().decode()
        err = child.stderr_text()
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert sorted(rows) == ["corrupt", "good", "hostile", "never", "old"]
    assert rows["good"].split()[1:3] == ["ok", "5"]
    assert rows["corrupt"].split()[1] == "unreadable"
    assert f"status record {tmp_path}/corrupt.status.json is corrupt (events is a string" in \
        rows["corrupt"]
    assert rows["hostile"].split()[1] == "unreadable" and "it is a FIFO" in rows["hostile"]
    assert rows["never"].split()[1] == "stale"
    assert rows["old"].split()[1] == "failing" and "\\x1b[2Jkey REDACTED pw REDACTED" in \
        rows["old"]
    assert KEY not in out + err and "pr0xy" not in out + err and "\x1b" not in out
    assert err.count("\n") == 1 and "corrupt (unreadable)" in err and "never (stale)" in err


def test_status_without_a_readable_key_still_redacts_the_proxy(tmp_path: Path) -> None:
    path = _status_config(tmp_path)
    (tmp_path / "key").unlink()
    (tmp_path / "good.status.json").write_text(json.dumps(
        {"events": 1, "failures": 1, "last_error": "proxy said pr0xy/p@ss"}))
    with Child([sys.executable, "-m", "hubasync", "status", str(path)]) as child:
        assert child.wait() == ExitCode.UNAVAILABLE
        out = child.stdout_bytes().decode()
    assert "pr0xy" not in out and "proxy said REDACTED" in out
