"""The service's log lines: logfmt or JSON, one line each, never a secret."""

from __future__ import annotations

import io
import json
import threading
from urllib.parse import quote

import pytest

from hubasync.service.log import ServiceLog

WHEN = 1_764_403_200.25  # 2025-11-29T08:00:00.250Z
KEY = 'k3y"with\\odd=chars'


def lines_of(stream: io.StringIO) -> list:  # type: ignore[type-arg]
    text = stream.getvalue()
    assert text.endswith("\n")
    return text[:-1].split("\n")


def test_logfmt_fields_are_quoted_only_when_needed() -> None:
    out = io.StringIO()
    log = ServiceLog(out, wall_time=lambda: WHEN)
    log.info("pass done", share="cust42", events=1200, behind=1.5, caught_up=True, note=None)
    log.warning("odd", share="a.b-c_d", text='say "hi"\nback\\slash', eq="a=b", empty="",
                ctl="\x01")
    assert lines_of(out) == [
        'time=2025-11-29T08:00:00.250Z level=info msg="pass done" share=cust42 events=1200 '
        'behind=1.5 caught_up=true',
        'time=2025-11-29T08:00:00.250Z level=warning msg=odd share=a.b-c_d '
        'text="say \\"hi\\"\\nback\\\\slash" eq="a=b" empty="" ctl="\\u0001"',
    ]


def test_json_lines_carry_time_level_msg_share_and_fields() -> None:
    out = io.StringIO()
    log = ServiceLog(out, log_format="json", wall_time=lambda: WHEN)
    log.error("pass failed", share="cust42", kind="AuthError", error="refused\nkey",
              retry_in=float("inf"), attempt=3)
    log.info("started", shares=2)
    first, second = (json.loads(line) for line in lines_of(out))
    assert first == {"time": "2025-11-29T08:00:00.250Z", "level": "error", "msg": "pass failed",
                     "share": "cust42", "kind": "AuthError", "error": "refused\nkey",
                     "retry_in": "inf", "attempt": 3}
    assert second == {"time": "2025-11-29T08:00:00.250Z", "level": "info", "msg": "started",
                      "shares": 2}


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
def test_no_secret_in_any_form_reaches_the_log(log_format: str) -> None:
    out = io.StringIO()
    log = ServiceLog(out, log_format=log_format, secrets=[KEY])
    log.add_secrets(["proxy-pa55"])
    log.error(f"the key {KEY} was refused", share="a", url=f"https://h/x?apikey={quote(KEY)}",
              detail=f"raw {KEY} and encoded {quote(KEY, safe='')}", other="proxy-pa55",
              unknown="https://h/shares?apikey=not-a-known-secret")
    text = out.getvalue()
    for form in (KEY, quote(KEY, safe=""), json.dumps(KEY)[1:-1], KEY.replace('"', '\\"'),
                 "proxy-pa55", "not-a-known-secret", "k3y"):
        assert form not in text
    assert text.count("REDACTED") >= 5
    assert len(lines_of(out)) == 1


def test_debug_lines_only_when_asked_and_stderr_by_default(
        capsys: pytest.CaptureFixture[str]) -> None:
    ServiceLog().debug("hidden", share="a")
    ServiceLog(debug=True).debug("shown", share="a")
    ServiceLog().info("also", share="b")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "hidden" not in captured.err
    assert "level=debug msg=shown share=a" in captured.err
    assert "level=info msg=also share=b" in captured.err


def test_bad_names_levels_and_formats_are_refused() -> None:
    log = ServiceLog(io.StringIO())
    with pytest.raises(ValueError):
        log.info("x", **{"bad key": 1})
    with pytest.raises(ValueError):
        log.info("x", time="no")
    with pytest.raises(TypeError):
        log.info("x", level="no")
    with pytest.raises(ValueError):
        log.log("fatal", "x")
    with pytest.raises(ValueError):
        ServiceLog(log_format="xml")


def test_lines_from_many_threads_stay_whole() -> None:
    out = io.StringIO()
    log = ServiceLog(out, log_format="json")

    def work(n: int) -> None:
        for i in range(300):
            log.info("page", share=f"s{n}", index=i, pad="x" * 200)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = [json.loads(line) for line in lines_of(out)]
    assert len(records) == 1800
    for n in range(6):
        assert [r["index"] for r in records if r["share"] == f"s{n}"] == list(range(300))


def test_a_closed_stream_does_not_stop_the_service() -> None:
    out = io.StringIO()
    out.close()
    ServiceLog(out).error("nowhere to go", share="a")  # must not raise
