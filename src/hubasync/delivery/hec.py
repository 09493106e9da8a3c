"""Splunk HTTP Event Collector (``hec+https://``, ``hec+http://`` to this machine only): batches
posted on a kept-alive connection, each event acknowledged only once Splunk's indexer
acknowledgement says its request was indexed.

A token whose acknowledgement is off is a configuration error (``UsageError``, exit 2), never
a silently weaker delivery. The token (``token_env`` or ``token_file``) is never printed: it is
redacted from every text the HEC echoes. What each answer means is decided in
:mod:`hec_answers`; this module only sends and waits.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import uuid
from collections import deque
from typing import Callable, Deque, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import DeliveryError, UsageError
from . import hec_answers as A
from .addresses import DestinationConfig
from .connection import OpenSockets, failure, stop_error
from .records import ACKNOWLEDGED, REJECTED, Outcome, Outgoing, Rejection, prefix_of
from .secrets import redact
from .tls import client_context

MAX_ANSWER = 1 << 20  # the most of an answer's body read
MAX_ACK_IDS = 10_000  # acknowledgement ids asked for in one query
FIRST_POLL = 0.05  # seconds before the first acknowledgement query; doubling up to the option


class HecDestination:
    """Delivers batches to a Splunk HEC with indexer acknowledgement (see the module)."""

    def __init__(self, config: DestinationConfig, share: str) -> None:
        self.name = config.name
        self._config = config
        options = config.options
        token = config.secret("token")
        if token is None:  # parse_destination requires it
            raise UsageError(f"{self.name}: no HEC token")
        self._token = token
        self.channel = str(uuid.uuid4())
        self._timeout = float(options["timeout"])
        self._limit = int(options["max_batch_bytes"])
        self._ack_timeout = float(options["ack_timeout"])
        self._poll_interval = float(options["ack_poll_interval"])
        self._key_field = str(options["key_field"])
        self._meta = A.metadata(options["sourcetype"], options["source"], options["index"])
        self._context: Optional[ssl.SSLContext] = None
        if config.tls:
            self._context = client_context(options["cacert"], options["cert"], options["key"],
                                           config.secret("key_passphrase"))
        self._connection: Optional[http.client.HTTPConnection] = None
        self._sockets = OpenSockets()
        self._sock: Optional[socket.socket] = None  # the connection's, as added to _sockets
        self._headers = {
            "Authorization": f"Splunk {token.reveal()}",
            "X-Splunk-Request-Channel": self.channel,
            "Content-Type": "application/json",
        }

    def __repr__(self) -> str:
        return f"HecDestination({self.name!r}, channel={self.channel!r})"

    # -- HTTP ---------------------------------------------------------------------------------

    def _redacted(self, text: str) -> str:
        return redact(text, [self._token])

    def _post(self, path: str, body: bytes, deadline: float,
              outcome: Outcome) -> Tuple[int, Mapping[str, str], bytes]:
        timeout = max(0.001, min(self._timeout, deadline - time.monotonic()))
        if self._connection is None:
            host, port = self._config.host, self._config.port
            if self._context is not None:
                self._connection = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                               context=self._context)
            else:
                self._connection = http.client.HTTPConnection(host, port, timeout=timeout)
        connection = self._connection
        try:
            connection.timeout = timeout
            if connection.sock is None:
                if self._sockets.aborted:
                    raise stop_error(self.name, outcome)
                connection.connect()
                assert connection.sock is not None
                self._sock = connection.sock
                self._sockets.add(self._sock)
            connection.sock.settimeout(timeout)
            connection.request("POST", path, body=body, headers=self._headers)
            response = connection.getresponse()
            data = response.read(MAX_ANSWER)
            headers = {k.lower(): v for k, v in response.getheaders()}
            if response.will_close or not response.isclosed():
                self._drop()
            return response.status, headers, data
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._drop()
            if isinstance(exc, http.client.HTTPException) and not isinstance(exc, OSError):
                exc = ConnectionResetError(f"the HEC's answer broke off ({type(exc).__name__})")
            error = failure(self.name, "the request failed", exc, outcome)
            raise DeliveryError(self._redacted(str(error)), transient=error.transient,
                                outcome=outcome) from None

    def _drop(self) -> None:
        if self._sock is not None:  # http.client may have let go of it already
            self._sockets.discard(self._sock)
            self._sock = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # -- delivering ---------------------------------------------------------------------------

    def deliver(self, batch: Sequence[Outgoing], deadline: float) -> Outcome:
        total = len(batch)
        status = bytearray(total)
        rejected: List[Rejection] = []

        def outcome() -> Outcome:
            return Outcome(prefix_of(status), list(rejected))

        def reject(index: int, reason: str) -> None:
            status[index] = REJECTED
            rejected.append(Rejection(index, reason))

        records = A.event_records(batch, self._key_field, self._meta)
        sizes = list(map(len, records))
        queue: Deque[List[int]] = deque(A.requests(sizes, range(total), self._limit))
        pending: Dict[int, List[int]] = {}  # ackId: the events of its request
        stopped: Optional[DeliveryError] = None
        while queue and stopped is None:
            group = queue.popleft()
            try:
                body = b"".join([records[i] for i in group])
                code, headers, data = self._post(A.EVENT_PATH, body, deadline, outcome())
            except DeliveryError as error:
                stopped = error
                break
            answer = A.event_answer(code, headers, data, len(group))
            text = self._redacted(answer.text)
            if answer.kind == A.ACCEPTED:
                assert answer.ack_id is not None
                pending[answer.ack_id] = group
            elif answer.kind == A.REJECT_EVENT:
                assert answer.event_number is not None
                reject(group[answer.event_number], f"the HEC refused it: {text}")
                rest = group[:answer.event_number] + group[answer.event_number + 1:]
                if rest:
                    queue.appendleft(rest)
            elif answer.kind == A.TOO_LARGE:
                if len(group) == 1:
                    reject(group[0], f"the HEC refused it as too large: {text}")
                else:
                    half = len(group) // 2
                    queue.appendleft(group[half:])
                    queue.appendleft(group[:half])
            elif answer.kind == A.CONFIGURATION:
                raise UsageError(f"{self.name}: {text}")
            else:
                stopped = DeliveryError(f"{self.name}: {text}",
                                        transient=answer.kind == A.TRANSIENT,
                                        retry_after=answer.retry_after)
        self._await_acks(pending, status, deadline, outcome)
        if stopped is not None:
            stopped.outcome = outcome()
            raise stopped
        return outcome()

    def _await_acks(self, pending: Dict[int, List[int]], status: bytearray, deadline: float,
                    outcome: Callable[[], Outcome]) -> None:
        """Query the acknowledgements until every pending request is indexed, or raise."""
        give_up = min(deadline, time.monotonic() + self._ack_timeout)
        interval = FIRST_POLL
        while pending:
            if time.monotonic() >= give_up:
                raise DeliveryError(
                    f"{self.name}: {len(pending)} requests not acknowledged as indexed in time "
                    f"(ack_timeout {self._ack_timeout:g} s, or the deadline)",
                    transient=True, outcome=outcome())
            self._sockets.sleep(max(0.0, min(interval, give_up - time.monotonic())))
            if self._sockets.aborted:
                raise stop_error(self.name, outcome())
            interval = min(interval * 2, self._poll_interval)
            ids = sorted(pending)
            for start in range(0, len(ids), MAX_ACK_IDS):
                code, headers, data = self._post(
                    f"{A.ACK_PATH}?channel={self.channel}",
                    A.ack_request(ids[start:start + MAX_ACK_IDS]), deadline, outcome())
                answer, acks = A.ack_answer(code, headers, data)
                text = self._redacted(answer.text)
                if answer.kind == A.CONFIGURATION:
                    raise UsageError(f"{self.name}: {text}")
                if answer.kind == A.FAILED:
                    raise DeliveryError(f"{self.name}: acknowledgement query: {text}",
                                        transient=False, outcome=outcome())
                for ack_id, indexed in acks.items():
                    if indexed and ack_id in pending:
                        for index in pending.pop(ack_id):
                            status[index] = ACKNOWLEDGED

    def abort(self) -> None:
        self._sockets.abort()

    def close(self) -> None:
        self._drop()

