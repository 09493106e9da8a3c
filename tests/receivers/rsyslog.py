"""A real rsyslog for delivery tests: started as a process of the test with a config of its
own, no system socket, no kernel log, writing every message it receives as one JSON line.

    with Rsyslog(tmp_path, ["relp", "tls"], certs=make_certs(...)) as receiver:
        receiver.port("relp")                  # where to send
        receiver.wait_for(100)                 # the first 100 messages written
        receiver.messages()                    # [{"msgid", "sd", "msg", "raw"}, ...]
        receiver.kill(); receiver.start()      # kill -9, then the same ports again

Inputs, by name: ``tcp`` (imptcp, octet-counted framing), ``tls`` (imtcp over the ossl
driver, server certificate only), ``tls-mutual`` (the client's certificate required and
checked), ``relp``, ``relp-tls`` (imrelp; over TLS, librelp always asks the client for a
certificate and checks it against the CA). With ``wrong_name=True`` the server's certificate
is valid for another name only.

rsyslog cannot bind port 0, so ports are picked free, and a start is tried again with other
ports when one of them turns out taken: "listening" is checked in /proc, as sockets held by
this very rsyslogd, never by connecting (another process could hold the port). With
``queue="disk"`` the ruleset's queue is on disk and synced, so an acknowledged message survives
kill -9 (docs/delivery.md); ``memory`` and ``disk-assisted`` are there to measure what is lost.

When rsyslogd or a module is missing, :func:`missing` names the Debian package to install, and
the tests skip with that line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from typing import Any, Dict, List, Optional, Sequence, Set

from processes import PATIENCE, wait_until

from .certs import Certs

MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog",
               "/usr/lib/rsyslog", "/usr/lib64/rsyslog")
TLS_INPUTS = ("tls", "tls-mutual", "relp-tls")
ALL_INPUTS = ("tcp", "relp") + TLS_INPUTS


def rsyslogd() -> Optional[str]:
    return shutil.which("rsyslogd") or next(
        (p for p in ("/usr/sbin/rsyslogd", "/sbin/rsyslogd") if os.path.exists(p)), None)


def module_dir() -> Optional[str]:
    return next((d for d in MODULE_DIRS if os.path.exists(os.path.join(d, "imptcp.so"))), None)


def missing(inputs: Sequence[str] = ALL_INPUTS) -> Optional[str]:
    """One line naming what to install for ``inputs``, or None when everything is there."""
    if rsyslogd() is None:
        return "rsyslog is not installed (apt-get install rsyslog rsyslog-relp rsyslog-openssl)"
    folder = module_dir()
    if folder is None:
        return "rsyslog's modules are not found (apt-get install rsyslog)"
    needs = {"imrelp.so": "rsyslog-relp", "lmnsd_ossl.so": "rsyslog-openssl"}
    wanted = set()
    if any(i.startswith("relp") for i in inputs):
        wanted.add("imrelp.so")
    if any(i in TLS_INPUTS for i in inputs):
        wanted.add("lmnsd_ossl.so")
    for module in sorted(wanted):
        if not os.path.exists(os.path.join(folder, module)):
            return f"rsyslog's {module} is missing (apt-get install {needs[module]})"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_ports(pid: int) -> Set[int]:
    """The TCP ports the process ``pid`` itself listens on (from /proc)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


# The ruleset's queue: "direct" writes from the input's own thread (tests read at once);
# "memory" is rsyslog's usual in-memory queue; "disk-assisted" spills to disk only when full or
# at shutdown; "disk" is on disk and synced: what survives kill -9 (docs/delivery.md).
QUEUES = {
    "direct": 'queue.type="Direct"',
    "memory": 'queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="4096"',
    "disk-assisted": 'queue.type="LinkedList" queue.filename="received" '
                     'queue.saveOnShutdown="on" queue.size="200000"',
    "disk": 'queue.type="Disk" queue.filename="received" queue.syncqueuefiles="on" '
            'queue.checkpointInterval="1" queue.saveOnShutdown="on"',
}

_TEMPLATE = """template(name="jsonlines" type="list" option.jsonf="on") {
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="raw" name="rawmsg" format="jsonf")
}
"""


class Rsyslog:
    """An rsyslogd process of the test (see the module's docstring)."""

    def __init__(self, folder: Any, inputs: Sequence[str], certs: Optional[Certs] = None,
                 queue: str = "direct", max_message_size: int = 65536,
                 wrong_name: bool = False, template: Optional[str] = None) -> None:
        self.folder = os.path.abspath(str(folder))
        os.makedirs(os.path.join(self.folder, "work"), exist_ok=True)
        unknown = set(inputs) - set(ALL_INPUTS)
        if unknown:
            raise ValueError(f"unknown inputs {sorted(unknown)}")
        if certs is None and any(i in TLS_INPUTS for i in inputs):
            raise ValueError("TLS inputs need certs")
        self.inputs = list(inputs)
        self.certs = certs
        if queue not in QUEUES:
            raise ValueError(f"queue: one of {', '.join(QUEUES)}")
        self.queue = queue
        self.wrong_name = wrong_name
        self.template = template  # an rsyslog string template instead of the JSON lines
        self.max_message_size = max_message_size
        self.ports: Dict[str, int] = {}
        self.output = os.path.join(self.folder, "messages.jsonl")
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.starts = 0

    # -- the config ---------------------------------------------------------------------------

    def _config(self) -> str:
        certs = self.certs
        cert = key = ""
        if certs is not None:
            cert, key = ((certs.other_name_cert, certs.other_name_key) if self.wrong_name
                         else (certs.server_cert, certs.server_key))
        lines = [
            f'global(workDirectory="{self.folder}/work" maxMessageSize="{self.max_message_size}"'
            ' net.enableDNS="off" processInternalMessages="on")',
        ]
        if certs is not None:
            lines.append(
                f'global(defaultNetstreamDriverCAFile="{certs.ca}" '
                f'defaultNetstreamDriverCertFile="{cert}" '
                f'defaultNetstreamDriverKeyFile="{key}")')
        folder = module_dir()
        loaded = set()

        def load(module: str, extra: str = "") -> None:
            if module not in loaded:
                lines.append(f'module(load="{folder}/{module}"{extra})')
                loaded.add(module)

        lines.append(_TEMPLATE)
        if self.template is not None:
            text = self.template.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            lines.append(f'template(name="custom" type="string" string="{text}")')
        for name in self.inputs:
            port = self.ports[name]
            if name == "tcp":
                load("imptcp")
                lines.append(f'input(type="imptcp" address="127.0.0.1" port="{port}" '
                             'ruleset="received")')
            elif name in ("tls", "tls-mutual"):
                load("imtcp", ' streamDriver.name="ossl" streamDriver.mode="1" '
                              'streamDriver.authMode="anon"')
                mode = "x509/certvalid" if name == "tls-mutual" else "anon"
                lines.append(f'input(type="imtcp" address="127.0.0.1" port="{port}" '
                             f'streamDriver.name="ossl" streamDriver.mode="1" '
                             f'streamDriver.authMode="{mode}" ruleset="received")')
            else:
                load("imrelp")
                tls = ""
                if name != "relp":
                    assert certs is not None
                    # librelp (GnuTLS) asks every client for a certificate once it has one
                    tls = (f' tls="on" tls.cacert="{certs.ca}" tls.mycert="{cert}" '
                           f'tls.myprivkey="{key}" tls.authMode="certvalid"')
                lines.append(f'input(type="imrelp" address="127.0.0.1" port="{port}" '
                             f'maxDataSize="{self.max_message_size}" ruleset="received"{tls})')
        queue = QUEUES[self.queue]
        template = "custom" if self.template else "jsonlines"
        lines.append(f'ruleset(name="received" {queue}) {{\n'
                     f'  action(type="omfile" file="{self.output}" template="{template}")\n}}')
        internal = os.path.join(self.folder, "rsyslog-internal.log")
        lines.append(f'*.* action(type="omfile" file="{internal}")')
        return "\n".join(lines) + "\n"

    # -- the process --------------------------------------------------------------------------

    def start(self, attempts: int = 5) -> Rsyslog:
        """Start (again: the same ports), and return once every input listens."""
        if self.process is not None and self.process.poll() is None:
            return self
        reuse = bool(self.ports)
        for attempt in range(attempts):
            if not reuse or attempt > 0:
                self.ports = {name: _free_port() for name in self.inputs}
            if self._start_once():
                return self
        raise AssertionError(f"rsyslogd did not listen after {attempts} tries: "
                             f"{self.stderr()[-2000:]}")

    def _start_once(self) -> bool:
        conf = os.path.join(self.folder, "rsyslog.conf")
        with open(conf, "w") as handle:
            handle.write(self._config())
        pidfile = os.path.join(self.folder, "rsyslogd.pid")
        if os.path.exists(pidfile):
            os.unlink(pidfile)
        self.starts += 1
        stderr = open(os.path.join(self.folder, "rsyslogd.stderr"), "ab")  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [rsyslogd() or "rsyslogd", "-n", "-f", conf, "-i", pidfile],
                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, cwd=self.folder)
        finally:
            stderr.close()
        process = self.process
        wanted = set(self.ports.values())
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            if wanted <= listening_ports(process.pid):
                return True
            if "already in use" in self.stderr() + self.internal_log():
                break
            time.sleep(0.02)
        self._end(signal.SIGKILL)
        return False

    def _end(self, signum: int) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signum)
            try:
                process.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None

    def stop(self) -> None:
        """SIGTERM: rsyslog shuts down cleanly (its queue saved when durable)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """kill -9: whatever rsyslog held in memory is lost."""
        self._end(signal.SIGKILL)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Rsyslog:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.kill() if exc and exc[0] is not None else self.stop()

    # -- what it received ---------------------------------------------------------------------

    def port(self, name: str) -> int:
        return self.ports[name]

    def url(self, name: str) -> str:
        scheme = {"tcp": "syslog+tcp", "tls": "syslog+tls", "tls-mutual": "syslog+tls",
                  "relp": "relp", "relp-tls": "relp+tls"}[name]
        return f"{scheme}://127.0.0.1:{self.ports[name]}"

    def messages(self) -> List[Dict[str, str]]:
        """Every message written so far (whole lines only), in the order written."""
        try:
            with open(self.output, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")[:-1]  # the last piece is empty or a line still being written
        return [json.loads(line) for line in lines]

    def count(self) -> int:
        """The lines written so far (read in pieces: the file may be large)."""
        lines = 0
        try:
            with open(self.output, "rb") as handle:
                for piece in iter(lambda: handle.read(1 << 20), b""):
                    lines += piece.count(b"\n")
        except FileNotFoundError:
            pass
        return lines

    def wait_for(self, count: int, timeout: float = PATIENCE) -> List[Dict[str, str]]:
        """Wait until at least ``count`` messages are written; return them all."""
        wait_until(lambda: self.count() >= count, f"rsyslog writing {count} messages "
                   f"(has {self.count()})", timeout=timeout)
        return self.messages()

    def wait_for_keys(self, keys: Set[str], what: str, patience: float = PATIENCE) -> None:
        """Wait until a message of each key in ``keys`` is written. A synced disk queue writes a
        few dozen messages a second on a loaded machine, so this fails only once ``patience``
        seconds pass without one more of them, saying how many are missing."""
        present, moved_at = 0, time.monotonic()
        while True:
            now_present = len(keys & {sd_key(m["sd"]) for m in self.messages()})
            if now_present == len(keys):
                return
            if now_present > present:
                present, moved_at = now_present, time.monotonic()
            elif time.monotonic() - moved_at > patience:
                raise AssertionError(
                    f"{what}: {len(keys) - now_present} of {len(keys)} still missing, none "
                    f"written for {patience:g} s; rsyslog says: {self.internal_log()[-2000:]}")
            time.sleep(0.05)

    def wait_for_lines(self, count: int, timeout: float = PATIENCE) -> int:
        """Wait until at least ``count`` lines are written (any template); return how many."""
        wait_until(lambda: self.count() >= count, f"rsyslog writing {count} lines",
                   timeout=timeout)
        return self.count()

    def stderr(self) -> str:
        try:
            with open(os.path.join(self.folder, "rsyslogd.stderr"), "rb") as handle:
                return handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def internal_log(self) -> str:
        try:
            with open(os.path.join(self.folder, "rsyslog-internal.log"), "rb") as handle:
                return handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


def sd_key(sd: str) -> str:
    """The ``key`` parameter's value in a structured-data string, unescaped."""
    start = sd.index(' key="') + 6
    out = []
    position = start
    while sd[position] != '"':
        if sd[position] == "\\":
            position += 1
        out.append(sd[position])
        position += 1
    return "".join(out)
