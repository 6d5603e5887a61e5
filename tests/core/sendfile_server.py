"""A test server for ``transport.sendfile(..., header=...)`` and its corking.

``python -m tests.core.sendfile_server ENGINE`` serves a line protocol:

    FILE n   -> b"HEAD n\\n" as the header, then n bytes of PATTERN from a
                file, in one ``sendfile`` call
    CORK     -> b"CORK c\\n": the socket's TCP_CORK now (0 once a file is
                sent: a cork left on would hold every later small reply
                back for the kernel's 200 ms)
"""

from __future__ import annotations

import socket
import sys
import tempfile

from ionet.core.config import Endpoint, Limits
from ionet.core.framing import LineFramer
from ionet.core.protocol import Protocol
from ionet.core.server import serve

PATTERN = bytes(range(256))


def pattern(n: int) -> bytes:
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


class Files(Protocol):
    def __init__(self) -> None:
        self.framer = LineFramer()

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        for line in self.framer.feed(data):
            command, _, arg = line.partition(b" ")
            if command == b"FILE":
                n = int(arg)
                file = tempfile.TemporaryFile()  # noqa: SIM115 - the transport closes it
                file.write(pattern(n))
                file.flush()
                transport.sendfile(file, 0, n, header=b"HEAD %d\n" % n)
            elif command == b"CORK":
                sock = transport.get_extra_info("socket")
                corked = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK)
                transport.write(b"CORK %d\n" % corked)
            else:
                transport.write(b"ERR unknown\n")


def main() -> int:
    endpoints = [Endpoint("files", "tcp", "127.0.0.1", 0, Files)]
    return serve(endpoints, sys.argv[1], Limits(shutdown_timeout=5),
                 announce=lambda line: print(line, flush=True))


if __name__ == "__main__":
    raise SystemExit(main())
