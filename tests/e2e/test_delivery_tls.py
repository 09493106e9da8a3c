"""TLS to the destinations, through the command line and a config: mutual TLS works (RELP over
TLS and syslog over TLS with a client certificate, its key encrypted; HEC over https); a
certificate that is not trusted, or not valid for the name, is refused in one line, exit 6 (as
the hub's own certificate is); and no secret (the HEC token, the key's passphrase, a Kafka SASL
password) is ever printed, logged, or stored in the state, the status record or any file."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "receivers"))

from receivers import kafka as kafka_receiver  # noqa: E402
from receivers import rsyslog as rsyslog_receiver  # noqa: E402
from receivers.certs import KEY_PASSPHRASE, Certs, make_certs  # noqa: E402
from receivers.rsyslog import Rsyslog  # noqa: E402

from hubasync.sim.hec import HecReceiver  # noqa: E402

from .deliveries import Record, check, from_hec, from_rsyslog  # noqa: E402
from .helpers import one_line, run, share  # noqa: E402

TOKEN = "tls-hec-token-3b9f0e"
SASL_PASSWORD = "sasl-password-a41c77"
SECRETS = (TOKEN, KEY_PASSPHRASE, SASL_PASSWORD)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(str(tmp_path_factory.mktemp("certs")))


def needs(inputs: List[str]) -> None:
    missing = rsyslog_receiver.missing(inputs)
    if missing:
        pytest.skip(missing)


def command_args(sim: Any, tmp_path: Path) -> List[str]:
    return [share(sim), "--sort=_id", "--format=jsonl", "-o", str(tmp_path / "out.jsonl"),
            "--state", str(tmp_path / "out.state")]


def no_secret_in(texts: List[str], folder: Path) -> None:
    """None of the secrets in ``texts`` nor in any file under ``folder``."""
    for secret in SECRETS:
        for text in texts:
            assert secret not in text, f"a secret in: {text[:300]}"
        for path in folder.rglob("*"):
            if path.is_file() and not path.name.endswith(("pass", "token")):
                assert secret.encode() not in path.read_bytes(), f"a secret in {path}"


def tls_options(certs: Certs, key: str) -> str:
    return f"cacert={certs.ca}&cert={certs.client_cert}&key={key}"


def test_mutual_tls_from_the_command_line_and_no_secret_anywhere(
        make_sim: Any, tmp_path: Path, certs: Certs) -> None:
    needs(["relp-tls", "tls-mutual"])
    sim = make_sim(events=300, page_max=100)
    (tmp_path / "pass").write_text(KEY_PASSPHRASE + "\n")
    with Rsyslog(tmp_path / "rsyslog", ["relp-tls", "tls-mutual"], certs=certs) as rsyslog, \
            HecReceiver(token=TOKEN, tls_cert=certs.server_cert,
                        tls_key=certs.server_key) as hec:
        client = tls_options(certs, certs.client_key_encrypted)
        to = ["--to", f"{rsyslog.url('relp-tls')}?{client}&key_passphrase_env=KEY_PASSPHRASE",
              "--to", f"{rsyslog.url('tls-mutual')}?{client}"
                      f"&key_passphrase_file={tmp_path / 'pass'}",
              "--to", f"hec+https://127.0.0.1:{hec.port}?cacert={certs.ca}&token_env=HEC_TOKEN"]
        done = run(command_args(sim, tmp_path) + to + ["--debug"],
                   env={"HEC_TOKEN": TOKEN, "KEY_PASSPHRASE": KEY_PASSPHRASE})
        assert done.code == 0, done.stderr
        record = Record.of(tmp_path, "out")
        rsyslog.wait_for(600)
        got = from_rsyslog(rsyslog)
        indexed = from_hec(hec)
    assert set(Counter(m.key for m in got).values()) == {2}  # once over RELP, once over syslog
    for figures in (check(got, {record.prefix: record.events}, "relp and syslog"),
                    check(indexed, {record.prefix: record.events}, "hec")):
        assert not figures.problems and figures.losses == 0, figures.summary()
    no_secret_in([done.stderr, done.stdout.decode()], tmp_path)


def test_a_kafka_sasl_password_is_never_shown(make_sim: Any, tmp_path: Path) -> None:
    if kafka_receiver.missing():
        pytest.skip(kafka_receiver.missing())
    sim = make_sim(events=20, page_max=100)
    with kafka_receiver.MockKafka() as cluster:  # it speaks no SASL: every delivery fails
        url = (cluster.url("t") + "?security_protocol=sasl_plaintext&sasl_mechanism=PLAIN"
               "&sasl_username=bob&password_env=KAFKA_PASSWORD&timeout=1")
        runs = [run(command_args(sim, tmp_path) + ["--to", url, "--retries", "0", *debug],
                    env={"KAFKA_PASSWORD": SASL_PASSWORD}) for debug in ([], ["--debug"])]
    assert [done.code for done in runs] == [6, 6], runs[0].stderr
    line = one_line(runs[0].stderr)
    assert "gave up after 1 failed deliveries" in line and "kafka://" in line, line
    no_secret_in([done.stderr for done in runs], tmp_path)


@pytest.mark.parametrize("case, problem", [
    ("relp-tls, another CA", "the receiver's certificate is not trusted"),
    ("relp-tls, another name", "the receiver's certificate is not valid for its name"),
    ("tls-mutual, no client certificate", "the receiver refused the TLS handshake"),
    ("hec, another CA", "the receiver's certificate is not trusted"),
])
def test_a_wrong_certificate_or_name_is_refused_in_one_line(
        make_sim: Any, tmp_path: Path, certs: Certs, case: str, problem: str) -> None:
    receiver = case.split(",")[0]
    sim = make_sim(events=50, page_max=100)
    if receiver == "hec":
        with HecReceiver(token=TOKEN, tls_cert=certs.server_cert,
                         tls_key=certs.server_key) as hec:
            to = f"hec+https://127.0.0.1:{hec.port}?cacert={certs.other_ca}&token_env=HEC_TOKEN"
            done = run(command_args(sim, tmp_path) + ["--to", to], env={"HEC_TOKEN": TOKEN})
            assert hec.events() == []
    else:
        needs([receiver])
        with Rsyslog(tmp_path / "rsyslog", [receiver], certs=certs,
                     wrong_name="name" in case) as rsyslog:
            options = (f"cacert={certs.ca}" if "no client" in case else
                       tls_options(certs, certs.client_key).replace(
                           certs.ca, certs.other_ca if "CA" in case else certs.ca))
            done = run(command_args(sim, tmp_path) + ["--to", f"{rsyslog.url(receiver)}?{options}"])
            assert rsyslog.messages() == []
    line = one_line(done.stderr)
    assert done.code == 6, done.stderr
    assert problem in line and "://127.0.0.1:" in line, line
    no_secret_in([done.stderr], tmp_path)


def service_config(tmp_path: Path, sim: Any, tables: Dict[str, str]) -> Path:
    lines = [f'directory = "{tmp_path}"', 'apikey_env = "APIKEY"']
    for name, table in tables.items():
        lines += [f"[destinations.{name}]", table]
    lines += ["[shares.s1]", f'url = "{sim.url}/shares/v2/async/s1"',
              f"deliver = {list(tables)!r}".replace("'", '"')]
    path = tmp_path / "hubasync.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_mutual_tls_from_a_config_and_no_secret_in_the_log_state_or_status(
        make_sim: Any, tmp_path: Path, certs: Certs) -> None:
    needs(["relp-tls", "tls-mutual"])
    sim = make_sim(shares=1, events=250, page_max=100)
    (tmp_path / "pass").write_text(KEY_PASSPHRASE + "\n")
    with Rsyslog(tmp_path / "rsyslog", ["relp-tls", "tls-mutual"], certs=certs) as rsyslog, \
            HecReceiver(token=TOKEN, tls_cert=certs.server_cert,
                        tls_key=certs.server_key) as hec:
        client = (f'cacert = "{certs.ca}"\ncert = "{certs.client_cert}"\n'
                  f'key = "{certs.client_key_encrypted}"\nkey_passphrase_file = "pass"')
        config = service_config(tmp_path, sim, {
            "siem": f'url = "{rsyslog.url("relp-tls")}"\n{client}',
            "logs": f'url = "{rsyslog.url("tls-mutual")}"\n{client}',
            "splunk": f'url = "hec+https://127.0.0.1:{hec.port}"\ncacert = "{certs.ca}"\n'
                      'token_env = "HEC_TOKEN"'})
        done = run(["sync", str(config), "--once", "--log-format", "json"],
                   env={"HEC_TOKEN": TOKEN})
        assert done.code == 0, done.stderr
        shown = run(["status", str(config)], env={"HEC_TOKEN": TOKEN})
        rsyslog.wait_for(500)
        record = Record.of(tmp_path, "s1")
        assert len(record.events) == 250
        got, indexed = from_rsyslog(rsyslog), from_hec(hec)
    assert set(Counter(m.key for m in got).values()) == {2}
    for figures in (check(got, {record.prefix: record.events}, "relp and syslog"),
                    check(indexed, {record.prefix: record.events}, "hec")):
        assert not figures.problems and figures.losses == 0, figures.summary()
    assert "-> siem" in shown.stdout.decode() and "-> splunk" in shown.stdout.decode()
    no_secret_in([done.stderr, shown.stdout.decode(), shown.stderr], tmp_path)


def test_a_wrong_ca_in_the_config_fails_the_share_in_one_log_line(
        make_sim: Any, tmp_path: Path, certs: Certs) -> None:
    needs(["relp-tls"])
    sim = make_sim(shares=1, events=50, page_max=100)
    (tmp_path / "pass").write_text(KEY_PASSPHRASE + "\n")
    with Rsyslog(tmp_path / "rsyslog", ["relp-tls"], certs=certs) as rsyslog:
        config = service_config(tmp_path, sim, {
            "siem": f'url = "{rsyslog.url("relp-tls")}"\ncacert = "{certs.other_ca}"\n'
                    f'cert = "{certs.client_cert}"\nkey = "{certs.client_key_encrypted}"\n'
                    'key_passphrase_file = "pass"'})
        done = run(["sync", str(config), "--once"])
        shown = run(["status", str(config)])
        assert rsyslog.messages() == []
    assert done.code == 6, done.stderr
    failed = [line for line in done.stderr.splitlines() if 'msg="pass failed"' in line]
    assert len(failed) == 1 and "the receiver's certificate is not trusted" in failed[0], \
        done.stderr
    assert "Traceback" not in done.stderr
    assert shown.code == 6 and "not trusted" in shown.stdout.decode(), shown.stdout
    no_secret_in([done.stderr, shown.stdout.decode()], tmp_path)
