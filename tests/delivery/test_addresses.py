"""Destination URLs and options: checked before any connection, each mistake a UsageError
naming its key; secrets read at once and never shown."""

from __future__ import annotations

import os
from typing import Any, Dict

import pytest

from hubasync.delivery import parse_destination
from hubasync.errors import UsageError

WHERE = "destinations.siem.url"


def refused(url: str, options: Dict[str, Any], where: str = WHERE) -> str:
    with pytest.raises(UsageError) as caught:
        parse_destination(url, options, where)
    assert caught.value.exit_code == 2
    text = str(caught.value)
    assert "\n" not in text
    return text


def test_each_scheme_is_parsed_with_its_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEC_TOKEN", "t0k3n-value")
    relp = parse_destination("relp://siem.example:2514", {}, WHERE)
    assert (relp.kind, relp.host, relp.port, relp.name) == ("relp", "siem.example", 2514,
                                                            "relp://siem.example:2514")
    assert relp.options["window"] == 16384 and relp.options["max_message_size"] == 8192
    assert relp.options["timeout"] == 30.0 and not relp.tls
    syslog = parse_destination("syslog+tcp://[::1]:514", {}, WHERE)
    assert syslog.host == "::1" and syslog.kind == "syslog"
    hec = parse_destination("hec+http://127.0.0.1:8088", {"token_env": "HEC_TOKEN"}, WHERE)
    assert hec.secret("token") is not None and hec.secret("token").reveal() == "t0k3n-value"
    kafka = parse_destination("kafka://b1:9092,b2:9093/threat.events", {}, WHERE)
    assert kafka.brokers == ("b1:9092", "b2:9093") and kafka.topic == "threat.events"


def test_options_come_from_the_query_or_the_mapping(tmp_path: Any) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not used: checked only when TLS is used\n")
    config = parse_destination("relp://h:2514?window=512&timeout=2.5", {"facility": "local3"},
                               "--to")
    assert config.options["window"] == 512 and config.options["timeout"] == 2.5
    assert config.options["facility"] == "local3"
    assert "given twice" in refused("relp://h:2514?window=1&window=2", {}, "--to")
    text = refused("relp://h:2514?window=5", {"window": 6})
    assert "destinations.siem.window" in text and "both" in text


@pytest.mark.parametrize("url, options, key, words", [
    ("relp://h:2514", {"windows": 5}, "destinations.siem.windows", "unknown option"),
    ("relp://h:2514", {"window": 0}, "destinations.siem.window", "from 1 to 65536"),
    ("relp://h:2514", {"window": "512"}, "destinations.siem.window", "an integer"),
    ("relp://h:2514", {"window": True}, "destinations.siem.window", "an integer"),
    ("relp://h:2514", {"timeout": 0}, "destinations.siem.timeout", "from 0.1"),
    ("relp://h:2514", {"max_message_size": 100}, "destinations.siem.max_message_size",
     "from 480"),
    ("syslog+tcp://h:514", {"facility": "local9"}, "destinations.siem.facility", "one of"),
    ("syslog+tcp://h:514", {"severity": 3}, "destinations.siem.severity", "a string"),
    ("syslog+tcp://h:514", {"sd_id": "hubasync"}, "destinations.siem.sd_id", "@"),
    ("syslog+tcp://h:514", {"sd_id": 'a"b@1'}, "destinations.siem.sd_id", "NAME@"),
    ("syslog+tcp://h:514", {"hostname": "a b"}, "destinations.siem.hostname", "printable"),
    ("syslog+tcp://h:514", {"cacert": "/etc/hostname"}, "destinations.siem.cacert",
     "unknown option"),
    ("syslog+tls://h:6514", {"cacert": "/nonexistent/ca.pem"}, "destinations.siem.cacert",
     "cannot read"),
    ("syslog+tls://h:6514", {"cert": "/etc/hostname"}, "destinations.siem.key", "both"),
    ("hec+https://h:8088", {}, "destinations.siem.token_env", "token"),
    ("hec+https://h:8088", {"token_env": "NO_SUCH_VARIABLE_X"}, "destinations.siem.token_env",
     "not set"),
    ("hec+https://h:8088", {"token_file": "/nonexistent/t"}, "destinations.siem.token_file",
     "cannot read"),
    ("hec+https://h:8088", {"token_env": "1BAD"}, "destinations.siem.token_env",
     "environment variable"),
    ("hec+https://h:8088", {"token_env": "HOME", "max_batch_bytes": 10},
     "destinations.siem.max_batch_bytes", "from 1024"),
    ("hec+https://h:8088", {"token_env": "HOME", "index": "Main"}, "destinations.siem.index",
     "index name"),
    ("hec+https://h:8088", {"token_env": "HOME", "allow_http": "yes"},
     "destinations.siem.allow_http", "true or false"),
    ("kafka://b:9092/t", {"compression": "brotli"}, "destinations.siem.compression", "one of"),
    ("kafka://b:9092/t", {"timeout": 301}, "destinations.siem.timeout", "300"),
    ("kafka://b:9092/t", {"security_protocol": "sasl_ssl"},
     "destinations.siem.security_protocol", "sasl_mechanism"),
    ("kafka://b:9092/t", {"sasl_username": "u"}, "destinations.siem.sasl_username",
     "only with"),
    ("kafka://b:9092/t", {"security_protocol": "sasl_plaintext", "sasl_mechanism": "PLAIN",
                          "sasl_username": "u"}, "destinations.siem.password_env", "needed"),
])
def test_each_bad_option_names_its_key(url: str, options: Dict[str, Any], key: str,
                                       words: str) -> None:
    text = refused(url, options)
    assert key in text and words in text, text


@pytest.mark.parametrize("url, words", [
    ("", "is needed"),
    ("smtp://h:25", "unknown destination"),
    ("relp://h", "HOST:PORT"),
    ("relp://h:0", "out of range"),
    ("relp://h:99999", "out of range"),
    ("relp://h:2514/path", "no path"),
    ("relp://h:2514#x", "fragment"),
    ("relp://h :2514", "space"),
    ("kafka://b:9092", "topic"),
    ("kafka://b:9092/", "topic"),
    ("kafka://b:9092/a b", "space"),
    ("hec+http://siem.example:8088?token_env=HOME", "only to this machine"),
])
def test_bad_urls_are_refused_naming_where(url: str, words: str) -> None:
    text = refused(url, {}, "--to")
    assert text.startswith("--to: ") and words in text, text


def test_plain_http_to_another_host_needs_allow_http() -> None:
    config = parse_destination("hec+http://siem.example:8088?token_env=HOME&allow_http=true",
                               {}, "--to")
    assert config.options["allow_http"] is True


def test_secrets_from_files_and_never_in_repr(tmp_path: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-t0ken-secret\nsecond line ignored\n")
    config = parse_destination("hec+http://localhost:8088", {"token_file": str(token_file)},
                               WHERE)
    token = config.secret("token")
    assert token is not None and token.reveal() == "file-t0ken-secret"
    for text in (repr(config), str(config), repr(token), str(token), repr(config.secrets)):
        assert "file-t0ken-secret" not in text
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert "empty" in refused("hec+http://localhost:8088", {"token_file": str(empty)})
    monkeypatch.setenv("T1", "a")
    assert "not both" in refused("hec+http://localhost:8088",
                                 {"token_env": "T1", "token_file": str(token_file)})


def test_tls_files_are_checked_before_any_connection(certs: Any, tmp_path: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from receivers.certs import KEY_PASSPHRASE

    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    assert "no PEM certificate" in refused("relp+tls://h:2514", {"cacert": str(not_pem)})
    options = {"cacert": certs.ca, "cert": certs.client_cert, "key": certs.client_key_encrypted}
    text = refused("relp+tls://h:2514", options)
    assert "destinations.siem.key" in text and "passphrase" in text
    monkeypatch.setenv("KEY_PASS", "wrong-passphrase-123")
    text = refused("relp+tls://h:2514", dict(options, key_passphrase_env="KEY_PASS"))
    assert "passphrase" in text and "wrong-passphrase-123" not in text
    monkeypatch.setenv("KEY_PASS", KEY_PASSPHRASE)
    config = parse_destination("relp+tls://h:2514", dict(options, key_passphrase_env="KEY_PASS"),
                               WHERE)
    assert KEY_PASSPHRASE not in repr(config) and config.tls
    mismatched = {"cert": certs.client_cert, "key": certs.server_key}
    assert "does not fit" in refused("relp+tls://h:2514", mismatched)


def test_every_option_is_documented() -> None:
    from hubasync.delivery.addresses import OPTIONS

    docs = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "delivery.md")
    with open(docs, encoding="utf-8") as handle:
        text = handle.read()
    for scheme, specs in OPTIONS.items():
        assert f"{scheme}://" in text, scheme
        for name in specs:
            assert f"`{name}`" in text, f"{scheme} option {name} is not in docs/delivery.md"
