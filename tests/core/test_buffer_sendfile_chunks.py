"""WriteBuffer sends a file in one large os.sendfile call, then bounded ones, and
yields to the loop after a budget per flush."""

from __future__ import annotations

import os
import socket
import tempfile
from unittest import mock

from ionet.core import buffer as buffer_module
from ionet.core.buffer import (
    SENDFILE_BUDGET,
    SENDFILE_CHUNK,
    SENDFILE_FIRST,
    WriteBuffer,
    file_region,
)


def test_sendfile_calls_are_bounded_and_a_flush_yields_after_its_budget() -> None:
    content = os.urandom(SENDFILE_FIRST + 3 * SENDFILE_BUDGET + 12345)
    counts: list[int] = []
    real_sendfile = os.sendfile

    def spy(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        counts.append(count)
        return real_sendfile(out_fd, in_fd, offset, count)

    with tempfile.TemporaryFile() as file:
        file.write(content)
        file.flush()
        left, right = socket.socketpair()
        with left, right, mock.patch.object(buffer_module.os, "sendfile", spy):
            left.setblocking(False)
            right.setblocking(False)
            # Buffers as large as the system allows: the socket seldom blocks,
            # so mostly the budget ends a flush early.
            right.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
            left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 << 20)
            buffer = WriteBuffer()
            buffer.append_file(file_region(file))
            buffer.append(b"tail")
            received = bytearray()
            flushes = 0
            while True:
                flushes += 1
                before = len(counts)
                done = buffer.flush(left)
                # Each call but the last of a flush started within the budget.
                assert sum(counts[before:-1]) < SENDFILE_BUDGET
                try:
                    while chunk := right.recv(1 << 20):
                        received += chunk
                except BlockingIOError:
                    pass
                if done:
                    break
            while len(received) < len(content) + 4:
                received += right.recv(1 << 20)
    assert bytes(received) == content + b"tail"
    assert counts[0] == SENDFILE_FIRST, "a short file would go out in this one call"
    assert max(counts[1:]) <= SENDFILE_CHUNK
    assert flushes >= 4, "each flush stops after its budget"
    assert file.closed
