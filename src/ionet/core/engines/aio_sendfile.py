"""Sendfile on asyncio: files sent in order with the writes around them.

``loop.sendfile(transport, file)`` sends with ``os.sendfile`` (zero-copy),
but while it runs asyncio's transport refuses ``write``.  So once a file is
queued, later writes wait in the connection's own queue, and a pump task
sends the queue in order (bytes, the file, more bytes...); ``close()`` waits
for the pump.  uvloop has no ``loop.sendfile``, and TLS cannot use
``os.sendfile`` (the kernel cannot encrypt), so there the pump reads the file
in chunks and writes them, waiting for ``resume_writing`` between chunks.
As the contract says, each file is ours once queued: closed when sent, or
when the connection ends first.

This module is that pump: :class:`SendfilePump`, a mixin of
:class:`~ionet.core.engines.aio_connection.AioConnection` (as CPython's
transports mix in ``_FlowControlMixin``).  The connection's side stays in
aio_connection.py: ``sendfile()`` queues a file and starts the pump, and
``write()`` queues behind it while it runs.  A connection that never sends a
file never runs any of this.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING

from ionet.core.buffer import SEND_CHUNK, FileRegion
from ionet.core.engines.base import DISCONNECTED_ERRNOS

if TYPE_CHECKING:
    import collections

    from ionet.core.config import Limits

log = logging.getLogger("ionet.engine")

#: Bytes per ``loop.sendfile`` call.  A large file goes in pieces so that the
#: idle timer sees the progress, as reactor.py's timer sees each flush.
NATIVE_SENDFILE_CHUNK = 1 << 20


class SendfilePump:
    """The queue behind a file, and the task that sends it, of one AioConnection."""

    if TYPE_CHECKING:  # AioConnection.__init__ sets them all; declared for the type checker
        # The pump's own state.
        _queue: collections.deque[bytes | FileRegion]  # writes and files behind a file
        _queued_bytes: int
        _pump: asyncio.Task[None] | None  # the task sending the queue
        _sending: FileRegion | None  # the file the pump is on
        _close_pending: bool  # close() waits for the pump
        _use_native_sendfile: bool
        _in_native_sendfile: bool
        _awaiting_empty: bool  # the water marks are 0, see _wait_until_sent
        _writable: asyncio.Future[None] | None  # resolved by resume_writing
        # The connection's, used here.
        _aio: asyncio.Transport
        _loop: asyncio.AbstractEventLoop
        _limits: Limits
        _closing: bool
        _lost: bool
        _error: BaseException | None
        _transport_full: bool
        _handed: int
        _last_activity: float

        def _hand(self, data: bytes) -> None: ...
        def _update_flow(self) -> None: ...
        def _apply_reading(self) -> None: ...
        def _peer(self) -> str: ...

    def _drop_queue(self) -> None:
        """Forget what waits behind a file; close the queued files (we own them).

        The file being sent is closed too, so that it is closed before
        ``connection_lost`` -- unless ``os.sendfile`` is using it right now
        (then the pump closes it as it unwinds).
        """
        if self._sending is not None and not self._in_native_sendfile:
            self._sending.file.close()
        for item in self._queue:
            if isinstance(item, FileRegion):
                item.file.close()
        self._queue.clear()
        self._queued_bytes = 0

    async def _pump_queue(self) -> None:
        """Send the queue in order: bytes to asyncio at once, files piece by piece."""
        queue = self._queue
        try:
            while queue and not self._aio.is_closing():
                item = queue.popleft()
                if isinstance(item, FileRegion):
                    self._sending = item
                    try:
                        await self._send_region(item)
                    finally:
                        self._sending = None
                        item.file.close()  # sent, failed or cancelled: we own it
                    continue
                chunks = [item]
                while queue and not isinstance(queue[0], FileRegion):
                    chunks.append(queue.popleft())  # type: ignore[arg-type]
                data = b"".join(chunks)
                self._queued_bytes -= len(data)
                self._hand(data)
                self._update_flow()
        except Exception as exc:  # the task's one boundary: this connection ends
            self._pump = None
            self._sendfile_failed(exc)
            return
        # No await since the last look at the queue: nothing can slip in.
        self._pump = None
        if self._close_pending:
            self._aio.close()

    def _pump_cancelled(self, task: asyncio.Task[None]) -> None:
        """abort() or connection_lost() cancelled the pump: finish the abort."""
        if self._pump is task:  # (a pump that ended normally already made way)
            self._pump = None
        if task.cancelled() and not self._lost:
            self._aio.abort()

    async def _send_region(self, region: FileRegion) -> None:
        if self._use_native_sendfile:
            try:
                await self._send_native(region)
                return
            except asyncio.SendfileNotAvailableError:
                pass  # not a regular file: copy it instead
        await self._copy_region(region)

    async def _send_native(self, region: FileRegion) -> None:
        """``os.sendfile`` through asyncio, one piece at a time."""
        await self._wait_until_sent()
        while region.remaining and not self._aio.is_closing():
            self._in_native_sendfile = True
            try:
                sent = await self._loop.sendfile(
                    self._aio, region.file, region.offset,
                    min(region.remaining, NATIVE_SENDFILE_CHUNK), fallback=False)
            finally:
                self._in_native_sendfile = False
                self._apply_reading()
            if not sent:
                raise BrokenPipeError(f"file ended {region.remaining} bytes early during sendfile")
            region.offset += sent
            region.remaining -= sent
            self._handed += sent
            self._last_activity = self._loop.time()

    async def _copy_region(self, region: FileRegion) -> None:
        """Read the file and write it (TLS, uvloop), pausing while asyncio's buffer is full."""
        fileno = region.file.fileno()
        while region.remaining and not self._aio.is_closing():
            chunk = os.pread(fileno, min(region.remaining, SEND_CHUNK), region.offset)
            if not chunk:
                raise BrokenPipeError(f"file ended {region.remaining} bytes early during sendfile")
            region.offset += len(chunk)
            region.remaining -= len(chunk)
            self._hand(chunk)
            self._last_activity = self._loop.time()
            # Give the loop a turn after every chunk, even when the buffer has
            # room: other connections get theirs, and a lost connection gets
            # noticed (a TLS transport whose socket died still takes writes).
            if self._transport_full:
                await self._wait_writable()
            else:
                await asyncio.sleep(0)

    async def _wait_writable(self) -> None:
        self._writable = self._loop.create_future()
        try:
            await self._writable
        finally:
            self._writable = None

    async def _wait_until_sent(self) -> None:
        """Wait until asyncio's own write buffer is empty.

        ``loop.sendfile`` waits for that itself, but an abort during that wait
        leaves CPython 3.11's transport half-restored, so we wait first, here.
        With both water marks at 0, asyncio calls ``resume_writing`` exactly
        when its buffer empties.
        """
        if self._aio.get_write_buffer_size() == 0:
            return
        self._awaiting_empty = True
        self._aio.set_write_buffer_limits(high=0, low=0)
        try:
            await self._wait_writable()
        finally:
            self._awaiting_empty = False
            self._aio.set_write_buffer_limits(high=self._limits.high_water,
                                              low=self._limits.low_water)

    def _sendfile_failed(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            if exc.errno not in DISCONNECTED_ERRNOS:
                log.info("%s: sendfile failed: %s", self._peer(), exc)
        else:
            log.error("%s: sendfile failed; closing the connection", self._peer(), exc_info=exc)
        self._error = exc
        self._closing = True
        self._drop_queue()
        self._aio.abort()
