"""RELP (``relp://``, ``relp+tls://``): syslog messages each acknowledged by the receiver.

A session opens with ``open`` (offers ``relp_version=0``, ``relp_software``,
``commands=syslog``); each event is one ``syslog`` command, and counts as acknowledged only when
its ``rsp 200`` arrives. Up to ``window`` commands are unacknowledged at once; frames are sent
in chunks of at least a quarter window, joined into one write. A ``rsp`` with a 4xx code
rejects that event for good (the caller dead-letters it); any other code is a transient
failure: the prefix stops before that event and the batch ends in a transient
``DeliveryError`` once the window is settled. A connection that closes, resets or times out, or
a ``serverclose`` hint, ends the batch with a transient ``DeliveryError`` whose outcome holds
exactly the events acknowledged; the caller sends the rest again, on a new session.
"""

from __future__ import annotations

import time
from typing import Callable, List, Optional, Sequence

from ..errors import DeliveryError
from .addresses import DestinationConfig
from .connection import OpenSockets, Stream
from .records import ACKNOWLEDGED, REJECTED, Outcome, Outgoing, Rejection, prefix_of
from .relp_frames import (
    ProtocolViolation,
    ResponseParser,
    Responses,
    frame,
    offered_commands,
    offers,
    syslog_frames_of,
    txnr_after,
)
from .syslog import syslog_format, tls_context
from .syslog_format import MessageParts

SOFTWARE = "hubasync"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("hubasync")
    except Exception:  # not installed (run from a checkout)
        return "0"


class RelpSession:
    """An open RELP session: its stream, its parser and the next TXNR."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.parser = ResponseParser()
        self.txnr = 1


class RelpDestination:
    """Delivers batches to a RELP receiver (rsyslog's imrelp), over one kept session."""

    def __init__(self, config: DestinationConfig, share: str) -> None:
        self.name = config.name
        self._config = config
        self._format = syslog_format(config, share)
        self._context = tls_context(config)
        self._timeout = float(config.options["timeout"])
        self._limit = int(config.options["max_message_size"])
        self.window = int(config.options["window"])
        self._session: Optional[RelpSession] = None
        self._sockets = OpenSockets()
        self._software = offers(SOFTWARE, _version())

    def __repr__(self) -> str:
        return f"RelpDestination({self.name!r}, window={self.window})"

    # -- the session --------------------------------------------------------------------------

    def _open(self, deadline: float) -> RelpSession:
        session = self._session
        if session is not None and self._closed_meanwhile(session, deadline):
            self._drop()
            session = None
        if session is not None:
            return session
        stream = Stream.connect(self._config.host, self._config.port, self.name, self._timeout,
                                deadline, self._context, self._sockets)
        session = RelpSession(stream)
        try:
            try:
                stream.send(frame(1, b"open", self._software), deadline, Outcome)
                answer = self._answer_to(session, 1, deadline)
            except DeliveryError as error:
                if error.transient and self._context is not None and (
                        self._config.options["cert"] is None) and not self._sockets.aborted:
                    raise DeliveryError(f"{error} (over TLS, the receiver may want a client "
                                        "certificate it trusts: cert, key)", transient=True,
                                        outcome=Outcome()) from None
                raise
            if answer.code != 200:
                raise DeliveryError(f"{self.name}: the receiver refused the RELP session: "
                                    f"{answer.code} {answer.text}", transient=answer.code >= 500,
                                    outcome=Outcome())
            if b"relp_version" not in answer.data:
                raise DeliveryError(f"{self.name}: the receiver's open answer has no "
                                    "relp_version offer", transient=False, outcome=Outcome())
            if "syslog" not in offered_commands(answer.data):
                raise DeliveryError(f"{self.name}: the receiver does not accept the RELP syslog "
                                    "command", transient=False, outcome=Outcome())
        except BaseException:
            stream.close()
            raise
        session.txnr = 2
        self._session = session
        return session

    def _answer_to(self, session: RelpSession, txnr: int, deadline: float) -> Responses:
        """The response to the one command in flight (``open`` or ``close``)."""
        while True:
            data = session.stream.receive(deadline, Outcome)
            if not data:
                raise DeliveryError(f"{self.name}: the receiver closed the connection while "
                                    "opening the RELP session", transient=True,
                                    outcome=Outcome())
            try:
                answers = session.parser.feed(data)
            except ProtocolViolation as exc:
                raise DeliveryError(f"{self.name}: {exc}", transient=False,
                                    outcome=Outcome()) from None
            for answer in answers:
                if answer.first != txnr or answer.count != 1:
                    raise DeliveryError(f"{self.name}: a response to transaction "
                                        f"{answer.first}, expected {txnr}", transient=False,
                                        outcome=Outcome())
                return answer
            if session.parser.server_closed:
                raise DeliveryError(f"{self.name}: the receiver closed the RELP session",
                                    transient=True, outcome=Outcome())

    def _closed_meanwhile(self, session: RelpSession, deadline: float) -> bool:
        """Whether the receiver ended the idle session (its EOF or a ``serverclose``)."""
        try:
            while session.stream.readable():
                data = session.stream.receive(deadline, Outcome, wait=False)
                if data is None:
                    return False
                if not data:
                    return True
                if session.parser.feed(data) or session.parser.server_closed:
                    return True  # nothing is in flight between batches: any answer is stale
        except (DeliveryError, ProtocolViolation):
            return True
        return False

    def _drop(self) -> None:
        if self._session is not None:
            self._session.stream.close()
            self._session = None

    # -- delivering ---------------------------------------------------------------------------

    def deliver(self, batch: Sequence[Outgoing], deadline: float) -> Outcome:
        total = len(batch)
        messages = self._format.parts(batch, time.time())
        rejected: List[Rejection] = [
            Rejection(i, f"the syslog message of {messages.size(i)} bytes exceeds "
                         f"max_message_size ({self._limit})")
            for i in messages.longer_than(self._limit)]
        status = bytearray(total)
        order: Optional[List[int]] = None  # indexes sent, when some are not
        if rejected:
            for rejection in rejected:
                status[rejection.position] = REJECTED
            order = [i for i in range(total) if not status[i]]
            messages = messages.only(order)

        def outcome() -> Outcome:
            return Outcome(prefix_of(status), list(rejected))

        if not messages:
            return outcome()
        try:
            failed = self._run(messages, order, status, rejected, outcome, deadline)
        except BaseException:
            self._drop()
            raise
        if failed is not None:  # the session is sound: it stays open for the next batch
            raise DeliveryError(f"{self.name}: the receiver could not take an event: {failed}",
                                transient=True, outcome=outcome())
        return outcome()

    def _run(self, messages: MessageParts, order: Optional[List[int]], status: bytearray,
             rejected: List[Rejection], outcome: Callable[[], Outcome],
             deadline: float) -> Optional[str]:
        """Send the messages within the window and settle their answers; the first transient
        refusal's text, if any (the events from it on are left pending)."""
        session = self._open(deadline)
        stream, parser = session.stream, session.parser
        count = len(messages)
        first_txnr = session.txnr
        sent = settled = 0
        failed: Optional[str] = None  # the first transient refusal
        chunk = max(1, self.window // 4)
        while settled < sent or (failed is None and sent < count):
            free = self.window - (sent - settled)
            can_send = failed is None and sent < count and free >= min(chunk, count - sent)
            if can_send:
                upto = min(count, sent + free)
                frames = syslog_frames_of(session.txnr, messages.prefix,
                                          messages.keys[sent:upto], messages.events[sent:upto])
                stream.send(frames, deadline, outcome)
                del frames
                session.txnr = txnr_after(session.txnr, upto - sent)
                sent = upto
                data = stream.receive(deadline, outcome, wait=False)
                if data is None:
                    continue
            else:
                data = stream.receive(deadline, outcome)
            if not data:
                raise DeliveryError(
                    f"{self.name}: the receiver closed the connection with {sent - settled} "
                    "events unacknowledged", transient=True, outcome=outcome())
            try:
                answers = parser.feed(data)
            except ProtocolViolation as exc:
                raise DeliveryError(f"{self.name}: {exc}", transient=False,
                                    outcome=outcome()) from None
            for answer in answers:
                expected = txnr_after(first_txnr, settled)
                if answer.first != expected or answer.count > sent - settled:
                    raise DeliveryError(
                        f"{self.name}: a response to transaction {answer.first} (x"
                        f"{answer.count}), expected {expected}", transient=False,
                        outcome=outcome())
                if answer.code == 200:
                    self._mark(status, order, settled, answer.count, ACKNOWLEDGED)
                elif 400 <= answer.code < 500:
                    self._mark(status, order, settled, answer.count, REJECTED)
                    for position in range(settled, settled + answer.count):
                        index = position if order is None else order[position]
                        rejected.append(Rejection(index, f"the receiver refused it: "
                                                         f"{answer.code} {answer.text}"))
                elif failed is None:
                    failed = f"{answer.code} {answer.text}"
                settled += answer.count
            if parser.server_closed and (settled < sent or (failed is None and sent < count)):
                raise DeliveryError(
                    f"{self.name}: the receiver closed the RELP session (serverclose) with "
                    f"{sent - settled} events unacknowledged", transient=True, outcome=outcome())
        if parser.server_closed:
            self._drop()
        return failed

    @staticmethod
    def _mark(status: bytearray, order: Optional[List[int]], start: int, count: int,
              value: int) -> None:
        if order is None:
            status[start:start + count] = bytes((value,)) * count
        else:
            for position in range(start, start + count):
                status[order[position]] = value

    def abort(self) -> None:
        self._sockets.abort()

    def close(self) -> None:
        """Send ``close`` and wait briefly for its answer; the next batch opens a new session."""
        session = self._session
        if session is None:
            return
        self._session = None
        deadline = time.monotonic() + min(self._timeout, 5.0)
        try:
            session.stream.send(frame(session.txnr, b"close"), deadline, Outcome)
            self._answer_to(session, session.txnr, deadline)
        except DeliveryError:
            pass
        finally:
            session.stream.close()
