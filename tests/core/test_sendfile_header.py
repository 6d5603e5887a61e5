"""``transport.sendfile(file, offset, count, header=...)`` on every engine.

The header arrives first, the file's bytes after it, in order with what
follows; and the cork that joins a head to a large file is always lifted.
"""

from __future__ import annotations

import socket

import pytest

from ionet.core.testing import ServerProcess

from .sendfile_server import pattern

IO_TIMEOUT = 30.0

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_CORK"), reason="Linux TCP_CORK")


class Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = bytearray()

    def line(self) -> bytes:
        while b"\n" not in self.data:
            self._more()
        line, _, rest = bytes(self.data).partition(b"\n")
        self.data = bytearray(rest)
        return line

    def exactly(self, n: int) -> bytes:
        while len(self.data) < n:
            self._more()
        out, self.data = bytes(self.data[:n]), self.data[n:]
        return out

    def _more(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise AssertionError(f"connection closed with {len(self.data)} bytes unread")
        self.data += chunk


@pytest.mark.parametrize("sizes", [[1 << 20], [100], [1 << 20, 10, 200_000]],
                         ids=["1MiB", "small", "pipelined"])
def test_header_then_file_in_order_and_no_cork_left(engine: str, sizes: list[int]) -> None:
    with ServerProcess([engine], module="tests.core.sendfile_server") as server:
        with socket.create_connection(server.address("tcp"), timeout=IO_TIMEOUT) as sock:
            reader = Reader(sock)
            sock.sendall(b"".join(b"FILE %d\n" % n for n in sizes) + b"CORK\n")
            for n in sizes:
                assert reader.line() == b"HEAD %d" % n
                assert reader.exactly(n) == pattern(n)
            assert reader.line() == b"CORK 0"
