"""Server-side TLS in memory, for FTPS: the protocol encrypts, the engine moves bytes.

FTPS switches the control connection to TLS in the middle of the
conversation (``AUTH TLS``), and protects each data connection with a TLS
session that must end with a proper ``close_notify`` in both directions:
``ftplib`` calls ``unwrap()`` after every transfer and waits for the
server's.  Doing TLS here, over ``ssl.MemoryBIO`` (the sans-IO interface of
the ``ssl`` module), gives both behaviours on every engine without asking the
engines for STARTTLS or for a TLS shutdown handshake.  The price is that a
protected download is read and encrypted in user space, which is what any
TLS server does anyway (the kernel's sendfile cannot encrypt).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

#: Bytes read from the ssl object at a time.
READ_SIZE = 256 * 1024


class TLSLayer:
    """One server-side TLS session over a byte stream.

    Args:
        context: the server's SSLContext.
        write: where encrypted bytes go (the transport's ``write``).
    """

    def __init__(self, context: ssl.SSLContext, write: Callable[[bytes], None]) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.write_raw = write
        self.handshaken = False
        self.closed = False

    def receive(self, data: bytes) -> tuple[bytes, bool]:
        """Feed bytes from the peer; return ``(plaintext, peer_closed)``.

        ``peer_closed`` is True once the peer's ``close_notify`` arrived.

        Raises:
            ssl.SSLError: the handshake failed or a record is corrupt.
        """
        self.incoming.write(data)
        if not self.handshaken:
            try:
                self.obj.do_handshake()
            except ssl.SSLWantReadError:
                self.flush()
                return b"", False
            except ssl.SSLError:
                self.flush()  # the alert, so the client learns why
                raise
            self.handshaken = True
        chunks = []
        peer_closed = False
        while True:
            try:
                chunk = self.obj.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                peer_closed = True
                break
            if not chunk:  # read() returns b"" once close_notify has arrived
                peer_closed = True
                break
            chunks.append(chunk)
        self.flush()
        return b"".join(chunks), peer_closed

    def send(self, data: bytes) -> None:
        """Encrypt ``data`` and pass it on."""
        if not self.closed:
            self.obj.write(data)
            self.flush()

    def shutdown(self) -> None:
        """Send our ``close_notify`` (once)."""
        if self.closed or not self.handshaken:
            self.closed = True
            return
        self.closed = True
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass  # sent ours; not waiting for theirs
        except ssl.SSLError:
            pass
        self.flush()

    def flush(self) -> None:
        out = self.outgoing.read()
        if out:
            self.write_raw(out)
