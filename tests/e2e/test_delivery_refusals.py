"""A destination or an option that is wrong ends in exit 2 before any request, to the hub or to
a receiver, with one line naming the key: on the command line (``--to``, ``--max-lag``) and in
a config (``[destinations.NAME]``, a share's ``deliver`` and ``max_lag``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, List

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "receivers"))

from receivers.certs import KEY_PASSPHRASE, Certs, make_certs  # noqa: E402

from .helpers import environment, one_line, run, share  # noqa: E402


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(str(tmp_path_factory.mktemp("certs")))


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    """A listening socket where every destination points: any connection would be queued."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        yield sock


def nothing_reached(sim: Any, receiver: socket.socket) -> None:
    assert sum(sim.stats.requests.values()) == 0, sim.stats.requests
    with pytest.raises(BlockingIOError):
        receiver.accept()[0].close()  # a connection made would be waiting here


def address(receiver: socket.socket) -> str:
    return f"127.0.0.1:{receiver.getsockname()[1]}"


# (--to's URL, with HERE for the receiver's address, and what the line must name)
BAD_TO = [
    ("relp://HERE?window=0", "--to (query parameter window): must be from 1 to 65536"),
    ("relp://HERE?windw=64", "--to (query parameter windw): unknown option for relp://"),
    ("relp://HERE?window=64&window=65", "--to (query parameter window): given twice"),
    ("relp://HERE?max_message_size=100", "--to (query parameter max_message_size)"),
    ("relp://127.0.0.1", "--to: relp:// needs HOST:PORT"),
    ("relp://127.0.0.1:99999", "--to: port out of range"),
    ("relp://HERE/path", "--to: relp:// takes no path"),
    ("smoke://HERE", "--to: unknown destination"),
    ("syslog+tcp://HERE?cacert=CA", "--to (query parameter cacert): unknown option for "
                                    "syslog+tcp://"),
    ("syslog+tls://HERE?facility=nowhere", "--to (query parameter facility): must be one of"),
    ("hec+https://HERE", "--to (query parameter token_env): the HEC token is needed"),
    ("hec+https://HERE?token_env=UNSET_HEC_TOKEN", "--to (query parameter token_env): the "
                                                   "environment variable UNSET_HEC_TOKEN"),
    ("hec+http://192.0.2.1:8088?token_env=HEC_TOKEN", "--to: hec+http:// sends the token in "
                                                      "clear"),
    ("relp+tls://HERE?cacert=/nonexistent/ca.pem", "--to (query parameter cacert): cannot read"),
    ("relp+tls://HERE?cacert=NOT_PEM", "--to (query parameter cacert): "),
    ("relp+tls://HERE?cert=CERT", "--to (query parameter key): a client certificate needs both"),
    ("relp+tls://HERE?cert=CERT&key=ENCRYPTED&key_passphrase_env=WRONG_PASSPHRASE",
     "--to (query parameter key): the key's passphrase is wrong or missing"),
    ("kafka://HERE", "--to: kafka:// needs a topic"),
    ("kafka://HERE/t?security_protocol=sasl_ssl", "--to (query parameter security_protocol): "
                                                  "sasl_ssl needs sasl_mechanism"),
    ("kafka://bob:hunter2-s3cret@HERE/t", "--to: a destination URL holds no user name or "
                                          "password"),
]


@pytest.mark.parametrize("url, named", BAD_TO)
def test_a_bad_to_ends_in_exit_2_before_any_request(make_sim: Any, tmp_path: Path,
                                                    receiver: socket.socket, certs: Certs,
                                                    url: str, named: str) -> None:
    sim = make_sim(events=10)
    (tmp_path / "not.pem").write_text("not a certificate\n")
    url = (url.replace("HERE", address(receiver)).replace("CA", certs.ca)
           .replace("NOT_PEM", str(tmp_path / "not.pem")).replace("CERT", certs.client_cert)
           .replace("ENCRYPTED", certs.client_key_encrypted))
    done = run([share(sim), "--sort=_id", "--format=jsonl", "-o", str(tmp_path / "out.jsonl"),
                "--state", str(tmp_path / "out.state"), "--to", url],
               env={"HEC_TOKEN": "t0k3n", "WRONG_PASSPHRASE": "not-" + KEY_PASSPHRASE})
    line = one_line(done.stderr)
    assert done.code == 2 and named in line, line
    assert "hunter2-s3cret" not in line and "t0k3n" not in line
    nothing_reached(sim, receiver)
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.state").exists()


@pytest.mark.parametrize("more, named", [
    (["--max-lag", "0"], "--max-lag"),
    (["--max-lag", "lots"], "--max-lag"),
    (["--format", "json"], "--to delivers the events of the output: give -o FILE, --state FILE "
                           "and --format jsonl"),
])
def test_to_with_a_wrong_option_ends_in_exit_2(make_sim: Any, tmp_path: Path,
                                               receiver: socket.socket, more: List[str],
                                               named: str) -> None:
    sim = make_sim(events=10)
    done = run([share(sim), "--sort=_id", "--format=jsonl", "-o", str(tmp_path / "out.jsonl"),
                "--state", str(tmp_path / "out.state"), "--to",
                f"relp://{address(receiver)}", *more])
    line = one_line(done.stderr)
    assert done.code == 2 and named in line, line
    nothing_reached(sim, receiver)


# (the TOML after the share's url, with HERE for the receiver's address; the key named)
BAD_CONFIG = [
    ('deliver = ["siem"]\n[destinations.siem]\nurl = "relp://HERE"\nwindow = 0',
     "destinations.siem.window: must be from 1 to 65536"),
    ('deliver = ["siem"]\n[destinations.siem]\nurl = "relp://HERE"\nwindw = 64',
     "destinations.siem.windw: unknown option for relp://"),
    ('deliver = ["siem"]\n[destinations.siem]\nurl = "relp://HERE?window=64"\nwindow = 64',
     "destinations.siem.window: given both in the URL's query and as an option"),
    ('deliver = ["siem"]\n[destinations.siem]\nurl = "ftp://HERE"',
     "destinations.siem.url: unknown destination"),
    ('deliver = ["siem"]\n[destinations.siem]\nwindow = 64',
     "destinations.siem: must be a table with the destination's url"),
    ('deliver = ["splunk"]\n[destinations.splunk]\nurl = "hec+http://HERE"\n'
     'token_env = "UNSET_HEC_TOKEN"', "destinations.splunk.token_env: the environment variable"),
    ('deliver = ["splunk"]\n[destinations.splunk]\nurl = "hec+http://HERE"\n'
     'token_file = "no-such-token"', "destinations.splunk.token_file: cannot read"),
    ('deliver = ["siem"]\n[destinations.siem]\nurl = "relp+tls://HERE"\ncacert = "missing.pem"',
     "destinations.siem.cacert: cannot read"),
    ('deliver = ["nowhere"]\n[destinations.siem]\nurl = "relp://HERE"',
     "shares.s1.deliver: no [destinations.nowhere] table (known: siem)"),
    ('deliver = "siem"\n[destinations.siem]\nurl = "relp://HERE"',
     "shares.s1.deliver: expected a list of destination names"),
    ('deliver = ["siem", "siem"]\n[destinations.siem]\nurl = "relp://HERE"',
     "shares.s1.deliver: names a destination twice"),
    ('format = "json"\ndeliver = ["siem"]\n[destinations.siem]\nurl = "relp://HERE"',
     "shares.s1.deliver: a share with destinations keeps a JSON-lines file"),
    ('max_lag = 0\ndeliver = ["siem"]\n[destinations.siem]\nurl = "relp://HERE"',
     "shares.s1.max_lag"),
    ('max_lag = "lots"\ndeliver = ["siem"]\n[destinations.siem]\nurl = "relp://HERE"',
     "shares.s1.max_lag"),
    ('deliver = ["siem"]\n[destinations."a b"]\nurl = "relp://HERE"',
     'destinations."a b": a destination\'s name may hold only'),
]


@pytest.mark.parametrize("command", ["--once", "--check"])
@pytest.mark.parametrize("toml, named", BAD_CONFIG)
def test_a_bad_destination_in_the_config_ends_in_exit_2_before_any_request(
        make_sim: Any, tmp_path: Path, receiver: socket.socket, toml: str, named: str,
        command: str) -> None:
    sim = make_sim(shares=1, events=10)
    config = tmp_path / "hubasync.toml"
    config.write_text(f'directory = "{tmp_path}"\napikey_env = "APIKEY"\n[shares.s1]\n'
                      f'url = "{sim.url}/shares/v2/async/s1"\n'
                      + toml.replace("HERE", address(receiver)) + "\n")
    done = run(["sync", str(config), command])
    line = one_line(done.stderr)
    assert done.code == 2 and f"{config}: {named}" in line, line
    nothing_reached(sim, receiver)
    assert not (tmp_path / "s1.jsonl").exists() and not (tmp_path / "s1.state").exists()


def test_max_lag_at_the_top_of_the_config_is_checked_too(make_sim: Any, tmp_path: Path,
                                                          receiver: socket.socket) -> None:
    sim = make_sim(shares=1, events=10)
    config = tmp_path / "hubasync.toml"
    config.write_text(f'directory = "{tmp_path}"\napikey_env = "APIKEY"\nmax_lag = -5\n'
                      f'[shares.s1]\nurl = "{sim.url}/shares/v2/async/s1"\n')
    done = run(["sync", str(config), "--once"])
    line = one_line(done.stderr)
    assert done.code == 2 and f"{config}: max_lag" in line, line
    nothing_reached(sim, receiver)


def test_a_config_whose_destinations_need_more_files_than_allowed_is_refused(
        make_sim: Any, tmp_path: Path) -> None:
    """Twelve shares each delivering to Kafka (three brokers: librdkafka holds a dozen files)
    need about 304 files: under a hard limit of 256 the config is refused before any request,
    rather than failing shares one by one once the producers open their connections."""
    sim = make_sim(shares=12, events=10)
    shares = "".join(f'[shares.s{n}]\nurl = "{sim.url}/shares/v2/async/s{n}"\n'
                     'deliver = ["bus"]\n' for n in range(1, 13))
    config = tmp_path / "hubasync.toml"
    config.write_text(f'directory = "{tmp_path}"\napikey_env = "APIKEY"\n[destinations.bus]\n'
                      'url = "kafka://127.0.0.1:9,127.0.0.1:10,127.0.0.1:11/t"\n' + shares)
    limited = ("import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, "
               "(256, 256)); sys.argv[0] = 'hubasync'; runpy.run_module('hubasync', "
               "run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", limited, "sync", str(config), "--once"],
                          capture_output=True, text=True, env=environment(), timeout=120)
    line = one_line(done.stderr)
    assert done.returncode == 2 and "12 shares need about 304 open files" in line, line
    assert sum(sim.stats.requests.values()) == 0
