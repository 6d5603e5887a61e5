"""How bytes and files leave a blocking socket.

The blocking driver has no write buffer: ``write`` returns once the bytes
are in the kernel.  Getting them there is this module's whole job, and it is
separate because it is the one part of the driver that is about the socket
alone, not the connection's state:

* :func:`send_bytes` -- a ``send`` loop, never one ``sendall``: each call may
  take part of the data, and the send timeout (``SO_SNDTIMEO``, set by the
  transport) is per call, so a large reply to a slow reader may take longer
  than the timeout as long as it keeps making progress;
* :func:`send_file` -- a file region by ``os.sendfile`` (the kernel copies
  from the page cache to the socket), or by reading and sending it on TLS,
  whose bytes must pass through the ``ssl`` module.  A ``header`` given with
  it is corked (``TCP_CORK``, as nginx's ``tcp_nopush``) so that it leaves in
  one burst with the file's first bytes.

The caller holds the transport's send lock and turns the ``OSError`` these
raise into the end of the connection.
"""

from __future__ import annotations

import math
import os
import select
import socket
import ssl

from ionet.core.buffer import SEND_CHUNK, SENDFILE_CHUNK

#: Linux's TCP_CORK (None elsewhere): see Transport.sendfile's ``header``.
TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)


def send_bytes(sock: socket.socket, view: memoryview) -> None:
    """Send all of ``view``, one ``send`` at a time; TimeoutError if one stalls."""
    try:
        while view:
            sent = sock.send(view[:SEND_CHUNK])
            view = view[sent:]
    except BlockingIOError:  # SO_SNDTIMEO expired
        raise TimeoutError("timed out") from None


def send_file(sock: socket.socket, fd: int, in_fd: int, offset: int, remaining: int,
              header: bytes, *, cooperative: bool, timeout: float | None) -> None:
    """Send ``header``, then ``remaining`` bytes of ``in_fd`` from ``offset``.

    ``fd`` is ``sock``'s descriptor; ``cooperative`` says the socket is
    gevent's (it never blocks the process), so a full send buffer is waited
    out, up to ``timeout`` seconds, instead of meaning SO_SNDTIMEO expired.
    """
    if isinstance(sock, ssl.SSLSocket):
        if header:
            send_bytes(sock, memoryview(header))
        send_file_by_reading(sock, in_fd, offset, remaining)
        return
    # The header leaves with the file's first bytes (see
    # Transport.sendfile): corked while both are handed over.
    cork = bool(header) and TCP_CORK is not None
    if cork:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_CORK, 1)
    try:
        if header:
            send_bytes(sock, memoryview(header))
        send_file_zero_copy(fd, in_fd, offset, remaining, cooperative=cooperative,
                            timeout=timeout)
    finally:
        if cork:
            sock.setsockopt(socket.IPPROTO_TCP, TCP_CORK, 0)


def send_file_zero_copy(fd: int, in_fd: int, offset: int, remaining: int, *,
                        cooperative: bool, timeout: float | None) -> None:
    """``os.sendfile``: the kernel copies from the page cache to the socket."""
    while remaining:
        try:
            sent = os.sendfile(fd, in_fd, offset, min(remaining, SENDFILE_CHUNK))
        except BlockingIOError:
            if not cooperative:  # SO_SNDTIMEO expired
                raise TimeoutError("timed out sending a file") from None
            poller = select.poll()  # gevent's: the hub waits until writable
            poller.register(fd, select.POLLOUT)
            if not poller.poll(None if timeout is None else math.ceil(timeout * 1000)):
                raise TimeoutError("timed out sending a file") from None
            continue
        if sent == 0:
            # The file is shorter than promised: the peer was told a length we cannot deliver.
            raise BrokenPipeError(f"file ended {remaining} bytes early during sendfile")
        offset += sent
        remaining -= sent


def send_file_by_reading(sock: socket.socket, in_fd: int, offset: int, remaining: int) -> None:
    """TLS: the bytes must pass through the ssl module, so read and send them."""
    while remaining:
        chunk = os.pread(in_fd, min(remaining, SEND_CHUNK), offset)
        if not chunk:
            raise BrokenPipeError(f"file ended {remaining} bytes early during sendfile")
        send_bytes(sock, memoryview(chunk))
        offset += len(chunk)
        remaining -= len(chunk)
