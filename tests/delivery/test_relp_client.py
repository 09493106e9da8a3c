"""The RELP client against a scripted RELP server (what rsyslog never does: 4xx and 5xx
answers, a serverclose or a drop in the middle of a window, answers out of order)."""

from __future__ import annotations

import re
import socket
import threading
from typing import Callable, Iterator, List, Optional

import pytest

from hubasync.errors import DeliveryError

from .helpers import deadline, destination, events

OPEN_OK = b"200 OK\nrelp_version=0\nrelp_software=scripted,1\ncommands=syslog"
FRAME = re.compile(rb"([0-9]+) ([a-z]+) ([0-9]+)[ \n]")

# A script answers each syslog command: bytes to send back (possibly several frames), or None
# to drop the connection at once.
Script = Callable[[int, int], Optional[bytes]]  # (txnr, index of the syslog command)


def hang_up(connection: socket.socket) -> None:
    """End the session with what was sent delivered: a closing socket with unread data in it
    would reset the connection, and the client could lose the answers not yet read (as it
    may with a real server; here the tests count them exactly)."""
    connection.shutdown(socket.SHUT_WR)
    connection.settimeout(10)
    try:
        while connection.recv(65536):
            pass
    except OSError:
        pass


class ScriptedRelp:
    def __init__(self, script: Script, offers: bytes = OPEN_OK) -> None:
        self.script = script
        self.offers = offers
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.port = self.server.getsockname()[1]
        self.received: List[bytes] = []
        self.sessions = 0
        self.answered = 0  # syslog commands answered
        self.most_outstanding = 0  # the most syslog commands seen unanswered at once
        self.end_after: Optional[int] = None  # end the session after this command, once ``end``
        self.end = threading.Event()
        self.ended = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.sessions += 1
            with connection:
                try:
                    self._session(connection)
                except OSError:  # the client went away: the next session may come
                    pass

    def _session(self, connection: socket.socket) -> None:
        buffer = b""
        while True:
            data = connection.recv(65536)
            if not data:
                return
            buffer += data
            outstanding = len(self.received) - self.answered + buffer.count(b" syslog ")
            self.most_outstanding = max(self.most_outstanding, outstanding)
            while True:
                match = FRAME.match(buffer)
                if match is None:
                    break
                txnr, command, length = int(match[1]), match[2], int(match[3])
                end = match.end() + length + (1 if length else 0)
                if len(buffer) < end:
                    break
                body = buffer[match.end():match.end() + length]
                buffer = buffer[end:]
                if command == b"open":
                    connection.sendall(b"%d rsp %d %s\n" % (txnr, len(self.offers),
                                                            self.offers))
                elif command == b"close":
                    connection.sendall(b"%d rsp 0\n0 serverclose 0\n" % txnr)
                    return
                else:
                    self.received.append(body)
                    answer = self.script(txnr, len(self.received) - 1)
                    if answer is None:
                        hang_up(connection)
                        return
                    self.answered += answer.count(b" rsp ")
                    connection.sendall(answer)
                    if answer.endswith(b"0 serverclose 0\n"):
                        hang_up(connection)  # as rsyslog does when it stops
                        return
                    if self.end_after == len(self.received) - 1:
                        self.end.wait(30)  # idle, then the server ends the session
                        connection.sendall(b"0 serverclose 0\n")
                        self.ended += 1
                        hang_up(connection)
                        return

    def url(self) -> str:
        return f"relp://127.0.0.1:{self.port}?timeout=5"

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedRelp]]:
    made: List[ScriptedRelp] = []

    def make(script: Script, offers: bytes = OPEN_OK) -> ScriptedRelp:
        server = ScriptedRelp(script, offers)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def ok(txnr: int, index: int) -> bytes:
    return b"%d rsp 6 200 OK\n" % txnr


def test_a_4xx_answer_rejects_that_event_for_good(scripted: Callable[..., ScriptedRelp]) -> None:
    server = scripted(lambda t, i: b"%d rsp 13 403 no thanks\n" % t if i == 3 else ok(t, i))
    outcome = destination(server.url(), {"window": 4}).deliver(events(10), deadline())
    assert outcome.acknowledged == 10
    assert [(r.position, r.reason) for r in outcome.rejected] == [
        (3, "the receiver refused it: 403 no thanks")]


def test_a_5xx_answer_stops_the_prefix_there(scripted: Callable[..., ScriptedRelp]) -> None:
    server = scripted(lambda t, i: b"%d rsp 9 500 later\n" % t if i == 6 else ok(t, i))
    target = destination(server.url(), {"window": 4})
    with pytest.raises(DeliveryError) as caught:
        target.deliver(events(20), deadline())
    error = caught.value
    assert error.transient and error.outcome.acknowledged == 6 and "500 later" in str(error)
    # the session stays usable: the rest goes on it
    assert target.deliver(events(14, start=6), deadline()).acknowledged == 14
    assert server.sessions == 1


def test_a_drop_mid_window_claims_only_what_was_answered(
        scripted: Callable[..., ScriptedRelp]) -> None:
    server = scripted(lambda t, i: None if i == 25 else ok(t, i))
    target = destination(server.url(), {"window": 8})
    with pytest.raises(DeliveryError) as caught:
        target.deliver(events(100), deadline())
    assert caught.value.transient and caught.value.outcome.acknowledged == 25
    assert target.deliver(events(5), deadline()).acknowledged == 5  # a new session
    assert server.sessions == 2


def test_serverclose_mid_window(scripted: Callable[..., ScriptedRelp]) -> None:
    def script(txnr: int, index: int) -> Optional[bytes]:
        return ok(txnr, index) + (b"0 serverclose 0\n" if index == 9 else b"")

    server = scripted(script)
    with pytest.raises(DeliveryError) as caught:
        destination(server.url(), {"window": 4}).deliver(events(40), deadline())
    assert caught.value.transient and caught.value.outcome.acknowledged == 10
    assert "serverclose" in str(caught.value) or "closed" in str(caught.value)


def test_answers_out_of_order_are_refused(scripted: Callable[..., ScriptedRelp]) -> None:
    server = scripted(lambda t, i: ok(t + 1, i))
    with pytest.raises(DeliveryError) as caught:
        destination(server.url()).deliver(events(3), deadline())
    assert not caught.value.transient and caught.value.outcome.acknowledged == 0


def test_the_window_is_never_exceeded(scripted: Callable[..., ScriptedRelp]) -> None:
    pending: List[int] = []

    def script(txnr: int, index: int) -> bytes:
        pending.append(txnr)
        if len(pending) < 5:  # answer only when five are waiting: more would break the window
            return b""
        answers = b"".join(b"%d rsp 6 200 OK\n" % t for t in pending)
        pending.clear()
        return answers

    server = scripted(script)
    outcome = destination(server.url(), {"window": 5}).deliver(events(50), deadline())
    assert outcome.acknowledged == 50 and len(server.received) == 50
    assert server.most_outstanding == 5


def test_a_server_without_the_syslog_command_is_refused(
        scripted: Callable[..., ScriptedRelp]) -> None:
    server = scripted(ok, offers=b"200 OK\nrelp_version=0\ncommands=")
    with pytest.raises(DeliveryError) as caught:
        destination(server.url()).deliver(events(3), deadline())
    assert not caught.value.transient and "syslog command" in str(caught.value)


def test_a_session_the_server_ended_between_batches_is_opened_again(
        scripted: Callable[..., ScriptedRelp]) -> None:
    from processes import wait_until

    server = scripted(ok)
    server.end_after = 9
    target = destination(server.url())
    assert target.deliver(events(10), deadline()).acknowledged == 10
    server.end.set()
    wait_until(lambda: server.ended == 1, "the server ending the idle session")
    assert target.deliver(events(10, start=10), deadline()).acknowledged == 10  # no error
    assert server.sessions == 2
