"""The service's config: what a good file gives, and every bad one refused in one line."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path
from typing import Dict, Optional

import pytest

from hubasync.core.bounds import DEFAULTS, Bounds
from hubasync.core.redaction import redact
from hubasync.errors import ExitCode, UsageError
from hubasync.service.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_INTERVAL,
    ServiceConfig,
    load_config,
    prepare_directory,
    share_files,
)
from hubasync.service.metrics import parse_listen_address

KEY = "Sekr3t-key-0123456789"
OTHER_KEY = "0ther-key-ABCDEFGH"
URL = "https://hub.example.com/shares/v2/async/abc"


def write(tmp_path: Path, text: str, name: str = "hubasync.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: Optional[Dict[str, str]] = None) -> ServiceConfig:
    return load_config(str(write(tmp_path, text)), {"APIKEY": KEY} if env is None else env)


def test_the_issue_example_loads_with_every_path_and_default(tmp_path: Path) -> None:
    config = load(tmp_path, """
        directory = "/var/lib/hubasync"
        apikey_env = "APIKEY"
        concurrency = 8
        interval = 300
        metrics = "127.0.0.1:9464"

        [shares.phishing]
        url = "https://hub.example.com/shares/v2/async/abc"
        filter = "type=phishing"
        format = "jsonl"

        [shares.cust42]
        url = "https://hub.example.com/shares/v2/async/def"
        format = "csv"
        apikey_env = "OTHER_KEY"
    """, {"APIKEY": KEY, "OTHER_KEY": OTHER_KEY})
    assert config.directory == "/var/lib/hubasync"
    assert (config.concurrency, config.interval, config.metrics) == (8, 300.0,
                                                                     ("127.0.0.1", 9464))
    assert config.proxy is None
    assert [share.name for share in config.shares] == ["phishing", "cust42"]
    phishing, cust42 = config.shares
    assert phishing.output == "/var/lib/hubasync/phishing.jsonl"
    assert phishing.state == "/var/lib/hubasync/phishing.state"
    assert phishing.status == "/var/lib/hubasync/phishing.status.json"
    assert cust42.output == "/var/lib/hubasync/cust42.csv"
    assert phishing.url.post_url == URL
    assert phishing.query.sort == "_id" and cust42.query.sort == "_id"
    assert phishing.query.filter == "type=phishing"
    assert (phishing.apikey, cust42.apikey) == (KEY, OTHER_KEY)
    assert phishing.bounds == DEFAULTS
    assert config.share("cust42") is cust42
    assert set(config.secrets) == {KEY, OTHER_KEY}


def test_defaults_and_a_relative_directory_relative_to_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "etc").mkdir()
    path = write(tmp_path / "etc", f"""
        directory = "../data"
        apikey_env = "APIKEY"
        [shares.a]
        url = "{URL}"
    """)
    monkeypatch.chdir("/")
    config = load_config(os.path.relpath(path, "/"), {"APIKEY": KEY})
    assert config.directory == str(tmp_path / "data")
    assert config.path == str(path)
    share = config.shares[0]
    assert share.output == str(tmp_path / "data" / "a.jsonl")
    assert share.format == "jsonl"
    assert (config.concurrency, config.interval) == (DEFAULT_CONCURRENCY, DEFAULT_INTERVAL)
    without = load(tmp_path, f"""
        apikey_env = "APIKEY"
        [shares.a]
        url = "{URL}"
    """)
    assert without.directory == str(tmp_path)


def test_query_options_bounds_and_keys_per_share(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(OTHER_KEY + "\nsecond line ignored\n", encoding="utf-8")
    config = load(tmp_path, f"""
        apikey_env = "APIKEY"
        timeout = 20
        retries = 0
        proxy = "http://user:pr0xy%2Fpass@proxy.example:3128"
        [shares.a]
        url = "{URL}?feed=x"
        start = 2024-01-02
        end = "2024-02-01 00:00:00Z"
        projection = "feed, type"
        param = {{ extra = "1", n = 5 }}
        apikey_file = "key"
        job_timeout = 10.5
        page_timeout = 30
        max_empty_pages = 3
        [shares.b]
        url = "https://hub.example.com/shares/v2/async/b?apikey=URLKEY123"
        start = -3600
        projection = ["feed", "observation time"]
        timeout = 5
    """)
    a, b = config.shares
    assert a.apikey == OTHER_KEY and b.apikey == "URLKEY123"
    assert a.query.start == "2024-01-02" and a.query.end == "2024-02-01 00:00:00Z"
    assert a.query.projection == ("feed", "type")
    assert a.query.extra == (("feed", "x"), ("extra", "1"), ("n", "5"))
    assert a.query.pairs(limit=10) == [
        ("start", "2024-01-02"), ("end", "2024-02-01 00:00:00Z"), ("projection", "feed"),
        ("projection", "type"), ("sort", "_id"), ("limit", "10"), ("feed", "x"), ("extra", "1"),
        ("n", "5")]
    assert a.bounds == Bounds(timeout=20.0, retries=0, job_timeout=10.5, page_timeout=30.0,
                              max_empty_pages=3)
    assert b.query.start == "-3600" and b.query.projection == ("feed", "observation time")
    assert (b.bounds.timeout, b.bounds.retries) == (5.0, 0)
    assert config.proxy == "http://user:pr0xy%2Fpass@proxy.example:3128"
    assert {"pr0xy/pass", "URLKEY123"} <= set(config.secrets)
    assert "pr0xy" not in redact(config.proxy or "", *config.secrets)  # quoted forms too


def test_keys_are_in_no_repr_or_str(tmp_path: Path) -> None:
    config = load(tmp_path, f"""
        apikey_env = "APIKEY"
        proxy = "http://user:pr0xy-pass@proxy.example:3128"
        [shares.a]
        url = "{URL}"
        [shares.b]
        url = "{URL}?apikey=URLKEY123"
    """)
    shown = " ".join([repr(config), str(config), *map(repr, config.shares),
                      *map(str, config.shares)])
    assert "shares=" in shown and "name='b'" in shown  # the reprs are the dataclasses' own
    for secret in (KEY, "URLKEY123", "pr0xy-pass"):
        assert secret not in shown


BAD = [
    # (config text, the key named, a piece of the reason)
    ("colour = 1\n[shares.a]\nurl = 'U'", "colour", "unknown key"),
    ("[shares.a]\nurl = 'U'\nsort = 'time'", "shares.a.sort", "insertion order"),
    ("[shares.a]\nurl = 'U'\nreverse = true", "shares.a.reverse", "unknown key"),
    ("[shares.a]\nurl = 'U'\napikey = 'abc'", "shares.a.apikey", "apikey_env or apikey_file"),
    ("[shares.a]\nformat = 'csv'", "shares.a.url", "missing"),
    ("[shares.a]\nurl = 5", "shares.a.url", "expected a string"),
    ("[shares.a]\nurl = 'https://hub.example.com/nothing'", "shares.a.url", "not a share URL"),
    ("[shares.a]\nurl = 'U/count'", "shares.a.url", "count URL"),
    ("[shares.a]\nurl = 'U/0'\nfilter = 'x'", "shares.a.url", "notification share"),
    ("[shares.a]\nurl = 'U?sort=time'", "shares.a.url", "sync sets itself"),
    ("[shares.a]\nurl = 'U?token=abc'", "shares.a.url", "sync sets itself"),
    ("[shares.a]\nurl = 'http://hub.example.com/shares/v2/async/abc'", "shares.a.url",
     "allow_http = true"),
    ("[shares.a]\nurl = 'U'\nformat = 'xml'", "shares.a.format", "not one of jsonl, json, csv"),
    ("[shares.a]\nurl = 'U'\nprojection = 3", "shares.a.projection", "list of strings"),
    ("[shares.a]\nurl = 'U'\nprojection = ' , '", "shares.a.projection", "names no keys"),
    ("[shares.a]\nurl = 'U'\nparam = 'x=1'", "shares.a.param", "must be a table"),
    ("[shares.a]\nurl = 'U'\nparam = { apikey = 'x' }", "shares.a.param.apikey",
     "Authorization header"),
    ("[shares.a]\nurl = 'U'\nparam = { limit = 5 }", "shares.a.param.limit", "sets this"),
    ("[shares.a]\nurl = 'U'\nparam = { x = [1] }", "shares.a.param.x", "a string or a number"),
    ("[shares.a]\nurl = 'U'\nstart = true", "shares.a.start", "not true/false"),
    ("[shares.a]\nurl = 'U'\nfilter = 1", "shares.a.filter", "expected a string"),
    ("[shares.a]\nurl = 'U'\ntimeout = 0", "shares.a.timeout", "more than 0"),
    ("[shares.a]\nurl = 'U'\ntimeout = 'soon'", "shares.a.timeout", "not a duration"),
    ("[shares.a]\nurl = 'U'\ntimeout = '8d'", "shares.a.timeout", "at most 604800 s"),
    ("[shares.a]\nurl = 'U'\nmax_event_size = 1.5", "shares.a.max_event_size", "whole number"),
    ("[shares.a]\nurl = 'U'\nretries = -1", "shares.a.retries", "at least 0"),
    ("[shares.a]\nurl = 'U'\nretries = 1.5", "shares.a.retries", "whole number"),
    ("[shares.a]\nurl = 'U'\nmax_empty_pages = 0", "shares.a.max_empty_pages", "at least 1"),
    ("retries = true\n[shares.a]\nurl = 'U'", "retries", "whole number"),
    ("[shares.a]\nurl = 'U'\nallow_http = 'yes'", "shares.a.allow_http", "true or false"),
    ("[shares.a]\nurl = 'U'\ncacert = 'missing.pem'", "shares.a.cacert", "no such file"),
    ("concurrency = 0\n[shares.a]\nurl = 'U'", "concurrency", "at least 1"),
    ("concurrency = 2.0\n[shares.a]\nurl = 'U'", "concurrency", "whole number"),
    ("interval = 0\n[shares.a]\nurl = 'U'", "interval", "more than 0"),
    ("interval = -5.5\n[shares.a]\nurl = 'U'", "interval", "more than 0"),
    ("interval = 'often'\n[shares.a]\nurl = 'U'", "interval", "not a duration"),
    ("directory = 7\n[shares.a]\nurl = 'U'", "directory", "expected a string"),
    ("directory = ''\n[shares.a]\nurl = 'U'", "directory", "is empty"),
    ("metrics = '9464'\n[shares.a]\nurl = 'U'", "metrics", "HOST:PORT"),
    ("metrics = 'localhost:99999'\n[shares.a]\nurl = 'U'", "metrics", "0 to 65535"),
    ("proxy = 'socks5://p:1080'\n[shares.a]\nurl = 'U'", "proxy", "http://"),
    ("shares = 3", "shares", "table"),
    ("directory = '.'", "shares", "no share"),
    ("[shares.'a/b']\nurl = 'U'", 'shares."a/b"', "letters, digits"),
    ("[shares.'..']\nurl = 'U'", 'shares.".."', "not only dots"),
    ("[shares]\na = 'U'", "shares.a", "must be a table"),
    ("[shares.x]\nurl = 'U'\n[shares.'x.status']\nurl = 'U'\nformat = 'json'",
     'shares."x.status"', "would be the status record of shares.x too; rename one"),
    ("[shares.'x.status']\nurl = 'U'\nformat = 'json'\n[shares.x]\nurl = 'U'", "shares.x",
     'its status record'),
]


@pytest.mark.parametrize(("text", "key", "reason"), BAD)
def test_a_bad_config_is_refused_naming_the_file_and_the_key(
        tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = write(tmp_path, "apikey_env = 'APIKEY'\n" + text.replace("'U", f"'{URL}"))
    with pytest.raises(UsageError) as caught:
        load_config(str(path), {"APIKEY": KEY})
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert reason in message
    assert "\n" not in message and KEY not in message
    assert caught.value.exit_code == ExitCode.USAGE


KEY_PROBLEMS = [
    ("[shares.a]\nurl = 'U'", {}, "shares.a.apikey_env", "no API key"),
    ("apikey_env = 'NOPE'\n[shares.a]\nurl = 'U'", {}, "apikey_env", "'NOPE' is not set"),
    ("[shares.a]\nurl = 'U'\napikey_env = 'K'", {"K": "  "}, "shares.a.apikey_env",
     "not set or empty"),
    ("[shares.a]\nurl = 'U'\napikey_file = 'nofile'", {}, "shares.a.apikey_file",
     "No such file"),
    ("[shares.a]\nurl = 'U'\napikey_file = 'empty'", {}, "shares.a.apikey_file", "is empty"),
    ("[shares.a]\nurl = 'U'\napikey_file = 'binary'", {}, "shares.a.apikey_file", "not text"),
    ("[shares.a]\nurl = 'U'\napikey_env = 'K'\napikey_file = 'x'", {"K": KEY},
     "shares.a.apikey_file", "not both"),
    ("[shares.a]\nurl = 'U'\napikey_env = 'K'", {"K": "two words"}, "shares.a.apikey_env",
     "cannot go in a header"),
    ("apikey_env = 5\n[shares.a]\nurl = 'U'", {}, "apikey_env", "expected a string"),
]


@pytest.mark.parametrize(("text", "env", "key", "reason"), KEY_PROBLEMS)
def test_a_key_source_that_does_not_resolve_is_refused(
        tmp_path: Path, text: str, env: Dict[str, str], key: str, reason: str) -> None:
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    path = write(tmp_path, text.replace("'U'", f"'{URL}'").replace("'NOPE'", '"NOPE"'))
    with pytest.raises(UsageError) as caught:
        load_config(str(path), env)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert reason.replace("'", '"') in message
    assert "two words" not in message


def test_an_output_that_would_overwrite_the_config_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"apikey_env = 'APIKEY'\n[shares.conf]\nurl = '{URL}'\n", "conf.jsonl")
    with pytest.raises(UsageError, match=f"^{path}: shares.conf: its output {path} would be "
                                         "the config itself too; rename one or move the config"):
        load_config(str(path), {"APIKEY": KEY})


def test_a_key_file_path_may_name_environment_variables(tmp_path: Path) -> None:
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "apikey").write_text(KEY + "\n", encoding="utf-8")
    (tmp_path / "a$b").write_text(OTHER_KEY, encoding="utf-8")
    config = load(tmp_path, f"""
        apikey_file = "${{CREDENTIALS_DIRECTORY}}/apikey"
        [shares.a]
        url = "{URL}"
        [shares.b]
        url = "{URL}"
        apikey_file = "$HERE/a$$b"
    """, {"CREDENTIALS_DIRECTORY": str(tmp_path / "creds"), "HERE": str(tmp_path)})
    assert [share.apikey for share in config.shares] == [KEY, OTHER_KEY]
    for value, reason in (("${CREDENTIALS_DIRECTORY}/apikey", '"CREDENTIALS_DIRECTORY" is not'),
                          ("/x/$/y", "write $$ for a $")):
        path = write(tmp_path, f"apikey_file = '{value}'\n[shares.a]\nurl = '{URL}'\n")
        with pytest.raises(UsageError) as caught:
            load_config(str(path), {})
        assert str(caught.value).startswith(f"{path}: apikey_file: ")
        assert reason in str(caught.value)


def test_an_unused_top_level_key_source_is_not_required(tmp_path: Path) -> None:
    config = load(tmp_path, f"""
        apikey_env = "UNSET"
        [shares.a]
        url = "{URL}"
        apikey_env = "OWN"
    """, {"OWN": OTHER_KEY})
    assert config.shares[0].apikey == OTHER_KEY


def test_a_file_that_is_missing_or_not_toml_is_refused_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(UsageError, match=f"^{missing}: cannot read the config: No such file"):
        load_config(str(missing), {})
    broken = write(tmp_path, "[shares.a\nurl = 1\n")
    with pytest.raises(UsageError) as caught:
        load_config(str(broken), {})
    assert str(caught.value).startswith(f"{broken}: not valid TOML: ")
    assert "line 1" in str(caught.value)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"# caf\xe9\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_config(str(latin), {})


@pytest.mark.parametrize(("text", "address"), [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)), (":0", ("", 0)), ("[::1]:80", ("::1", 80)),
    ("localhost:65535", ("localhost", 65535)),
])
def test_listen_addresses(text: str, address: tuple) -> None:  # type: ignore[type-arg]
    assert parse_listen_address(text) == address


@pytest.mark.parametrize("text", ["9464", "host:", "host:x", "::1:80", "h:65536", "h:-1"])
def test_bad_listen_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen_address(text)


def test_max_event_size_is_a_bound_of_the_share_or_of_all(tmp_path: Path) -> None:
    path = tmp_path / "hubasync.toml"
    path.write_text('apikey_env = "K"\nmax_event_size = 2048\n'
                    '[shares.a]\nurl = "https://hub.example.com/shares/v2/async/a"\n'
                    '[shares.b]\nurl = "https://hub.example.com/shares/v2/async/b"\n'
                    "max_event_size = 65536\n")
    config = load_config(str(path), {"K": "key"})
    assert [share.bounds.max_event_size for share in config.shares] == [2048, 65536]
    path.write_text('apikey_env = "K"\n[shares.a]\n'
                    'url = "https://hub.example.com/shares/v2/async/a"\nmax_event_size = 10\n')
    with pytest.raises(UsageError,
                       match="shares.a.max_event_size: must be at least 1 KiB and at most 4 GiB"):
        load_config(str(path), {"K": "key"})


def test_a_cacert_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    path = tmp_path / "hubasync.toml"
    path.write_text('apikey_env = "K"\n[shares.a]\n'
                    'url = "https://hub.example.com/shares/v2/async/a"\ncacert = "ca.pem"\n')
    with pytest.raises(UsageError, match="shares.a.cacert: .*not a file of PEM certificates"):
        load_config(str(path), {"K": "key"})


def test_the_issues_own_example_loads_notification_share_included(tmp_path: Path) -> None:
    path = tmp_path / "hubasync.toml"
    path.write_text(textwrap.dedent("""\
        directory = "/var/lib/hubasync"
        apikey_env = "APIKEY"
        concurrency = 8
        interval = 300
        metrics = "127.0.0.1:9464"

        [shares.phishing]
        url = "https://hub.example.com/shares/v2/async/abc"
        filter = "type=phishing"
        format = "jsonl"

        [shares.cust42]
        url = "https://hub.example.com/shares/v2/async/def/0"
        """))
    config = load_config(str(path), {"APIKEY": "key"})
    phishing, cust42 = config.shares
    assert phishing.query.sort == "_id" and phishing.query.filter == "type=phishing"
    assert cust42.url.is_notification and cust42.query.pairs() == []  # in insertion order
    assert cust42.output == "/var/lib/hubasync/cust42.jsonl"


# -- files: every share's distinct, and none the config ------------------------------------------


def keyed(tmp_path: Path, text: str) -> ServiceConfig:
    return load(tmp_path, "apikey_env = 'APIKEY'\n" + text)


@pytest.mark.parametrize(("config_name", "shares", "key", "reason"), [
    ("x.state", "[shares.x]\nurl = 'U'", "shares.x",
     "its state {d}/x.state would be the config itself too; rename one or move the config"),
    ("x.status.json", "[shares.x]\nurl = 'U'", "shares.x", "its status record"),
    ("s.state.lock", "[shares.s]\nurl = 'U'", "shares.s",
     "its state's lock {d}/s.state.lock would be the config itself too"),
    ("o.jsonl.lock", "[shares.o]\nurl = 'U'", "shares.o", "its output's lock"),
    ("c.toml", "[shares.'c.toml']\nurl = 'U'\n[shares.c]\nurl = 'U'\nformat = 'json'", None,
     None),
    ("hubasync.toml", "[shares.a]\nurl = 'U'\n[shares.'a.status']\nurl = 'U'\nformat = 'json'",
     'shares."a.status"', "its output {d}/a.status.json would be the status record of shares.a "
                          "too; rename one"),
])
def test_every_file_of_a_share_is_its_own(tmp_path: Path, config_name: str, shares: str,
                                          key: Optional[str], reason: Optional[str]) -> None:
    path = write(tmp_path, "apikey_env = 'APIKEY'\n" + shares.replace("'U'", f"'{URL}'"),
                 config_name)
    if key is None:
        load_config(str(path), {"APIKEY": KEY})  # c.toml.lock is no share's file
        return
    assert reason is not None
    with pytest.raises(UsageError) as caught:
        load_config(str(path), {"APIKEY": KEY})
    assert str(caught.value).startswith(f"{path}: {key}: ")
    assert reason.format(d=tmp_path) in str(caught.value)
    assert caught.value.exit_code == ExitCode.USAGE


def test_files_are_distinct_across_many_shares(tmp_path: Path) -> None:
    names = ["a", "a.json", "a.jsonl", "a.state", "a.status", "b.csv", "b"]
    config = keyed(tmp_path, "".join(f"[shares.'{n}']\nurl = '{URL}'\n" for n in names))
    files = [path for share in config.shares for _, path in share_files(share)]
    assert len(files) == len(set(files)) == 5 * len(names)
    assert config.path not in files


# -- times sent in the hub's own format ------------------------------------------------------


@pytest.mark.parametrize(("written", "sent"), [
    ("2024-01-02T03:04:05+02:00", "2024-01-02 01:04:05Z"),
    ("2024-01-01T23:30:00-01:00", "2024-01-02 00:30:00Z"),
    ("2024-01-02 03:04:05Z", "2024-01-02 03:04:05Z"),
    ("2024-01-02T03:04:05.999999Z", "2024-01-02 03:04:05Z"),
    ("2024-01-02T03:04:05", "2024-01-02 03:04:05Z"),  # a local date-time is taken as UTC
    ("2024-01-02", "2024-01-02"),
    ("'2024-01-02 03:04:05Z'", "2024-01-02 03:04:05Z"),  # a string is sent as written
    ("-3600", "-3600"),
])
def test_a_toml_time_is_sent_in_the_hubs_format_in_utc(tmp_path: Path, written: str, sent: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "EST+5")  # the machine's own zone plays no part
    time.tzset()
    monkeypatch.setattr(time, "tzset", time.tzset)  # undone below, once TZ is back
    config = keyed(tmp_path, f"[shares.a]\nurl = '{URL}'\nstart = {written}\nend = {written}\n")
    pairs = dict(config.shares[0].query.pairs())
    monkeypatch.undo()
    time.tzset()
    assert pairs["start"] == sent and pairs["end"] == sent


# -- reserved parameters, whatever their case ----------------------------------------------------


@pytest.mark.parametrize("name", ["sort", "SORT", "Sort", "reverse", "REVERSE", "limit", "Limit",
                                  "token", "TOKEN"])
def test_a_reserved_parameter_in_the_url_is_refused_whatever_its_case(tmp_path: Path,
                                                                      name: str) -> None:
    path = write(tmp_path, f"apikey_env = 'APIKEY'\n[shares.a]\nurl = '{URL}?{name}=1'\n")
    with pytest.raises(UsageError, match=f"^{path}: shares.a.url: its query sets "):
        load_config(str(path), {"APIKEY": KEY})


@pytest.mark.parametrize("name", ["sort", "SORT", "reverse", "Reverse", "limit", "LIMIT",
                                  "token", "Token", "apikey", "APIKEY", "ApiKey", " apikey"])
def test_a_reserved_parameter_in_the_param_table_is_refused_whatever_its_case(
        tmp_path: Path, name: str) -> None:
    path = write(tmp_path, f"apikey_env = 'APIKEY'\n[shares.a]\nurl = '{URL}'\n"
                           f"param = {{ \"{name}\" = \"SECRET\" }}\n")
    with pytest.raises(UsageError) as caught:
        load_config(str(path), {"APIKEY": KEY})
    assert str(caught.value).startswith(f"{path}: shares.a.param.")
    assert "sync sets this parameter itself" in str(caught.value)
    assert "SECRET" not in str(caught.value)


def test_an_apikey_in_the_url_whatever_its_case_is_the_key_never_a_parameter(
        tmp_path: Path) -> None:
    for name in ("apikey", "APIKEY", "ApiKey"):
        config = load(tmp_path, f"[shares.a]\nurl = '{URL}?{name}={OTHER_KEY}&feed=x'\n", {})
        share = config.shares[0]
        assert share.apikey == OTHER_KEY
        assert all(key.lower() != "apikey" for key, _ in share.query.pairs())


# -- durations with units ------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "seconds"), [
    ("300", 300.0), ("0.5", 0.5), ("'90s'", 90.0), ("'5m'", 300.0), ("'1h'", 3600.0),
    ("'7d'", 7 * 86400.0), ("'1.5m'", 90.0),
])
def test_the_interval_takes_units(tmp_path: Path, written: str, seconds: float) -> None:
    assert keyed(tmp_path, f"interval = {written}\n[shares.a]\nurl = '{URL}'\n").interval == \
        seconds


@pytest.mark.parametrize(("written", "reason"), [
    ("'5x'", ""), ("'0s'", "more than 0"), ("'8d'", "at most a week"), ("-1", "more than 0"),
    ("true", "expected a duration"), ("''", ""),
])
def test_a_bad_interval_is_refused(tmp_path: Path, written: str, reason: str) -> None:
    path = write(tmp_path, f"apikey_env = 'APIKEY'\ninterval = {written}\n[shares.a]\n"
                           f"url = '{URL}'\n")
    with pytest.raises(UsageError, match=f"^{path}: interval: .*{reason}"):
        load_config(str(path), {"APIKEY": KEY})


# -- the directory: made at the service's start, never by loading -------------------------------


def test_the_directory_is_made_by_prepare_directory_not_by_loading(tmp_path: Path) -> None:
    directory = tmp_path / "var" / "lib" / "hubasync"
    config = keyed(tmp_path, f"directory = '{directory}'\n[shares.a]\nurl = '{URL}'\n")
    assert not (tmp_path / "var").exists()  # loading (hubasync status too) creates nothing
    previous = os.umask(0o022)
    try:
        prepare_directory(config)
    finally:
        os.umask(previous)
    for made in (tmp_path / "var", tmp_path / "var" / "lib", directory):
        assert made.is_dir() and (made.stat().st_mode & 0o777) == 0o750, made
    prepare_directory(config)  # there already: fine


@pytest.mark.parametrize("in_the_way", ["the directory", "a parent"])
def test_a_file_in_the_way_of_the_directory_is_refused(tmp_path: Path, in_the_way: str) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("x")
    directory = blocker if in_the_way == "the directory" else blocker / "sub"
    config = keyed(tmp_path, f"directory = '{directory}'\n[shares.a]\nurl = '{URL}'\n")
    with pytest.raises(UsageError) as caught:
        prepare_directory(config)
    assert str(caught.value) == (f"{config.path}: directory: cannot create {directory}: a file "
                                 "is in the way")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_directory_that_cannot_be_made_or_written_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        for directory, why in ((locked / "sub", "Permission denied"),
                               (locked, "cannot be written by this user")):
            config = keyed(tmp_path, f"directory = '{directory}'\n[shares.a]\nurl = '{URL}'\n")
            with pytest.raises(UsageError, match=f"^{config.path}: directory: .*{why}"):
                prepare_directory(config)
    finally:
        locked.chmod(0o700)


def test_a_relative_start_is_sent_as_the_command_sends_it(tmp_path: Path) -> None:
    path = write(tmp_path, 'apikey_env = "K"\n[shares.a]\n'
                           'url = "https://hub.example.com/shares/v2/async/a"\n'
                           'start = "24h"\nend = "-30m"\n')
    share = load_config(str(path), {"K": "key"}).shares[0]
    assert (share.query.start, share.query.end) == ("-86400", "-1800")


def test_destinations_and_what_a_share_delivers_to(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("hec-secret-token\n")
    path = write(tmp_path, 'apikey_env = "K"\nmax_lag = 500\n'
                           '[destinations.siem]\nurl = "relp://127.0.0.1:2514"\nwindow = 64\n'
                           '[destinations.splunk]\nurl = "hec+http://127.0.0.1:8088"\n'
                           'token_file = "token"\n'
                           '[shares.a]\nurl = "https://hub.example.com/shares/v2/async/a"\n'
                           'deliver = ["siem", "splunk"]\nmax_lag = 50\n'
                           '[shares.b]\nurl = "https://hub.example.com/shares/v2/async/b"\n')
    config = load_config(str(path), {"K": "key"})
    a, b = config.shares
    assert [name for name, _ in a.destinations] == ["siem", "splunk"] and b.destinations == ()
    assert a.destinations[0][1].options["window"] == 64 and (a.max_lag, b.max_lag) == (50, 500)
    assert a.dead_letters("siem").endswith("/a.siem.dead.jsonl")
    assert "hec-secret-token" in config.secrets
    status_view = load_config(str(path), {}, keys=False)  # hubasync status reads no secret
    assert [name for name, _ in status_view.shares[0].destinations] == ["siem", "splunk"]
    assert status_view.secrets == ()  # and finds none to redact, without failing


def test_a_destination_file_may_name_environment_variables(tmp_path: Path) -> None:
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "hec-token").write_text("hec-secret-token\n")
    path = write(tmp_path, 'apikey_env = "K"\n[destinations.splunk]\n'
                           'url = "hec+http://127.0.0.1:8088"\n'
                           'token_file = "${CREDENTIALS_DIRECTORY}/hec-token"\n'
                           '[shares.a]\nurl = "https://hub.example.com/shares/v2/async/a"\n'
                           'deliver = ["splunk"]\n')
    config = load_config(str(path), {"K": "key", "CREDENTIALS_DIRECTORY": str(tmp_path / "creds")})
    assert "hec-secret-token" in config.secrets
    with pytest.raises(UsageError) as caught:
        load_config(str(path), {"K": "key"})
    assert "destinations.splunk.token_file" in str(caught.value)
    assert '"CREDENTIALS_DIRECTORY" is not set' in str(caught.value)


@pytest.mark.parametrize("body, key, problem", [
    ('[shares.a]\nurl = "U"\ndeliver = ["nowhere"]', "shares.a.deliver", "no [destinations.nowh"),
    ('[destinations.d]\nurl = "relp://h:1"\n[shares.a]\nurl = "U"\nformat = "csv"\n'
     'deliver = ["d"]', "shares.a.deliver", "format = \"jsonl\""),
    ('[destinations.d]\nurl = "relp://h:1"\nwindow = 0\n[shares.a]\nurl = "U"',
     "destinations.d", "window"),
    ('[destinations.d]\nurl = "ftp://h:1"\n[shares.a]\nurl = "U"', "destinations.d",
     "unknown destination"),
    ('[shares.a]\nurl = "U"\ndeliver = "d"', "shares.a.deliver", "list of destination names"),
])
def test_a_bad_destination_is_refused_naming_the_key(tmp_path: Path, body: str, key: str,
                                                     problem: str) -> None:
    body = body.replace('"U"', '"https://hub.example.com/shares/v2/async/a"')
    path = write(tmp_path, 'apikey_env = "K"\n' + body + "\n")
    with pytest.raises(UsageError) as caught:
        load_config(str(path), {"K": "key"})
    assert key in str(caught.value) and problem in str(caught.value)
