"""The outgoing side of a non-blocking connection: partial sends, in order.

``sock.send(data)`` may take only part of ``data`` (the kernel's send buffer
is full because the peer reads slowly), and a non-blocking socket may take
nothing at all (``BlockingIOError``).  Course code that ignores the count
loses data silently.  A :class:`WriteBuffer` keeps what the kernel has not
taken yet, in order, and is flushed again when the socket becomes writable.

It holds two kinds of items: byte strings, and file regions queued by
``transport.sendfile``.  A file region goes out with ``os.sendfile`` (the
kernel copies from the page cache to the socket: zero-copy) unless the
socket is TLS, where the bytes must pass through the ``ssl`` module, so they
are read in chunks with ``os.pread`` and sent like any bytes.

Only bytes held in memory count towards ``size``, the figure compared with
the high-water mark: a queued 1 GiB file region costs no memory.  The buffer
owns the files of its regions: each is closed once sent, or on ``clear()``.

Why a file goes out in one ``os.sendfile`` call of up to 2 MiB, then in
128 KiB calls, at most 1 MiB per flush, and not in one call for the whole
file.  Measured on loopback (FTP RETR of 256 MiB, server and curl on their
own cores, Linux 6.18): one call per file costs the server 0.39-0.47 ms of
CPU per MiB and reaches 2,200-2,900 MiB/s; 64-128 KiB calls cost about
0.2 ms/MiB and reach 4,800-5,400 MiB/s, as pyftpdlib's 64 KiB calls do.
Calls of 256 KiB and more fell back towards the slow figures.  (Inside one
call the kernel splices the file 64 KiB at a time and flags every batch but
the last "more to come"; in the profile of the long calls 42% of the
server's samples are softirq work at interrupt exit, against 6% with short
calls.)  A short file is cheaper in one call, though: 1 MiB HTTP responses
in 128 KiB calls cost 9% more CPU per request (the extra system calls),
hence the large first call.  The budget per flush is for the other
connections of an event loop: one fast download must not hold the loop for
its whole length (nginx caps a call with ``sendfile_max_chunk``, 2 MiB by
default; pyftpdlib sends 64 KiB per loop turn).
"""

from __future__ import annotations

import collections
import os
import socket
import ssl
from typing import IO

#: Send at most this much in one call, joining small pending chunks up to it:
#: many pipelined 100-byte responses then cost one system call, not many.
SEND_CHUNK = 256 * 1024
#: The first os.sendfile call of a file region sends up to this much: most
#: HTTP responses fit and go out in that one call (nginx's default
#: ``sendfile_max_chunk``).
SENDFILE_FIRST = 2 * 1024 * 1024
#: Bytes per later call: over a long stream larger calls cost the kernel
#: more per byte (see the module docstring).
SENDFILE_CHUNK = 128 * 1024
#: File bytes sent per flush at most; then flush returns False and the loop
#: comes back (a level-triggered poller reports the socket writable at once).
SENDFILE_BUDGET = 1024 * 1024
#: The socket cannot take more right now; try again when it is writable.
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError)


class FileRegion:
    """``count`` bytes of an open file, from ``offset``."""

    __slots__ = ("file", "offset", "remaining", "started")

    def __init__(self, file: IO[bytes], offset: int, count: int) -> None:
        self.file = file
        self.offset = offset
        self.remaining = count
        self.started = False  # an os.sendfile call has sent part of it


def file_region(file: IO[bytes], offset: int = 0, count: int | None = None) -> FileRegion:
    """Describe a region of ``file``; ``count=None`` means up to its end now.

    Raises:
        ValueError: a negative offset or count.
    """
    if offset < 0 or (count is not None and count < 0):
        raise ValueError(f"sendfile needs offset >= 0 and count >= 0, got {offset}, {count}")
    if count is None:
        count = max(0, os.fstat(file.fileno()).st_size - offset)
    return FileRegion(file, offset, count)


class WriteBuffer:
    """Bytes and file regions waiting for the socket, oldest first."""

    def __init__(self) -> None:
        self._items: collections.deque[bytes | memoryview | FileRegion] = collections.deque()
        #: Bytes held in memory (file regions excluded).
        self.size = 0

    def __bool__(self) -> bool:
        return bool(self._items)

    def append(self, data: bytes) -> None:
        if data:
            self._items.append(data)
            self.size += len(data)

    def append_file(self, region: FileRegion) -> None:
        if region.remaining:
            self._items.append(region)
        else:
            region.file.close()

    def clear(self) -> None:
        """Drop everything (the connection is gone), closing queued files."""
        for item in self._items:
            if isinstance(item, FileRegion):
                item.file.close()
        self._items.clear()
        self.size = 0

    def flush(self, sock: socket.socket, use_sendfile: bool = True) -> bool:
        """Send as much as the socket takes now.

        Returns True when everything was sent.  Raises the socket's OSError
        when the connection is broken (the caller closes it); returns False
        when the socket would block, or when ``SENDFILE_BUDGET`` bytes of
        files went out in this call (the caller calls again once the socket
        is writable: at once, if it still is).
        """
        items = self._items
        budget = SENDFILE_BUDGET
        try:
            while items:
                item = items[0]
                if isinstance(item, FileRegion):
                    if use_sendfile:
                        if budget <= 0:
                            return False  # let the loop serve the others first
                        budget -= self._send_file_region(sock, item)
                    else:
                        self._read_file_region(item)
                    continue
                if len(item) < SEND_CHUNK and len(items) > 1:
                    item = self._join_small_items()
                sent = sock.send(item)
                self.size -= sent
                if sent < len(item):
                    items[0] = memoryview(item)[sent:]
                    return False
                items.popleft()
        except WOULD_BLOCK:
            return False
        return True

    def _join_small_items(self) -> bytes:
        """Merge leading byte items into one of at most ~SEND_CHUNK bytes."""
        items = self._items
        parts: list[bytes | memoryview] = []
        total = 0
        while items and not isinstance(items[0], FileRegion) and total < SEND_CHUNK:
            part = items.popleft()
            assert not isinstance(part, FileRegion)
            parts.append(part)
            total += len(part)
        joined = b"".join(parts)
        items.appendleft(joined)
        return joined

    def _send_file_region(self, sock: socket.socket, region: FileRegion) -> int:
        """One os.sendfile call; returns the bytes it sent."""
        sent = os.sendfile(
            sock.fileno(), region.file.fileno(), region.offset,
            min(region.remaining, SENDFILE_CHUNK if region.started else SENDFILE_FIRST),
        )
        region.started = True
        if sent == 0:
            # The file is shorter than promised (truncated meanwhile): the
            # peer was told a length we cannot deliver, so the stream is broken.
            raise BrokenPipeError(f"file ended {region.remaining} bytes early during sendfile")
        region.offset += sent
        region.remaining -= sent
        if not region.remaining:
            self._items.popleft()
            region.file.close()
        return sent

    def _read_file_region(self, region: FileRegion) -> None:
        """Turn the next chunk of a file region into bytes at the front."""
        chunk = os.pread(region.file.fileno(), min(region.remaining, SEND_CHUNK), region.offset)
        if not chunk:
            raise BrokenPipeError(f"file ended {region.remaining} bytes early during sendfile")
        region.offset += len(chunk)
        region.remaining -= len(chunk)
        if not region.remaining:
            self._items.popleft()
            region.file.close()
        self._items.appendleft(chunk)
        self.size += len(chunk)
