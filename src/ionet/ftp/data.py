"""FTP data connections: one protocol object per connection, one transfer each.

A data connection is opened by the control connection (``open_listener`` for
PASV/EPSV, ``open_connection`` for PORT/EPRT) and may arrive before or after
the command that says what to transfer.  So a :class:`DataConnection` starts
idle, with reading paused, and waits for its *job*:

* :class:`FileSender`   RETR: ``transport.sendfile`` piece by piece (zero-copy,
                        the file is never read into memory), or chunks when
                        converting line ends (TYPE A) or limiting bandwidth;
* :class:`BytesSender`  LIST/NLST/MLSD: a listing already formatted;
* :class:`FileReceiver` STOR/APPE/STOU: chunks written as they arrive into an
                        :class:`~ionet.ftp.fs.Upload`, committed on EOF.

Two contexts, one rule.  On the thread, fork and gevent engines a data
connection runs in a thread (greenlet) of its own, so the two protocols
never call each other directly.  Everything crosses over with
``call_soon_threadsafe`` of the *receiving* side's transport:

    control                                    data connection
    -------                                    ---------------
    open_listener(factory)  ..............>    connection_made: post(connected)
    connected(conn, t)      <..............
    t.call_soon_threadsafe(conn.start(job)) >  job runs; files are used here
                                               connection_lost: post(finished)
    finished(result)        <..............    (result says whether the job ran)

Exactly one side ends each job (closes its file, commits or aborts its
upload): whichever *claims* it first (:meth:`Job.claim`, atomic).  The data
side claims it in ``start``; the control side claims it to give up on it
(no connection came, ABOR, the client went away) or when the connection was
lost before ``start`` ran.  So no upload temporary file is left behind
whatever the order in which the two sides hear the news.

The data timeout ("no progress for ``data_timeout`` seconds") is kept by
the *control* side, not here: on the blocking engines a download's thread
sits inside a send while the client does not read, and runs neither its
timers nor queued calls until the send returns.  So each job keeps a
progress count (:meth:`Job.progress`), the control connection looks at it
once per ``data_timeout``, and when it has not moved, aborts the data
connection directly (:meth:`DataConnection.abort`).  ``abort`` (on a data
timeout, or an ABOR once the data side has claimed the job) is the one call
that crosses without ``call_soon_threadsafe``, because it is the one that
must reach a thread stuck in a send (the blocking transports allow ``abort``
from any thread; on the loop engines both sides share one thread).
Progress must be visible for that, so a download never hands the engine
more than a piece at a time (:class:`FileSender`).  This side times only
the wait for a transfer command.

With ``PROT P`` (FTPS) the connection carries TLS, done in memory by
:class:`~ionet.ftp.tls.TLSLayer` so that it ends with ``close_notify`` as
FTPS clients require; jobs therefore write through the connection
(:meth:`DataConnection.write`, :meth:`DataConnection.finish_sending`), which
encrypts when needed, and downloads are sent in chunks instead of sendfile.
"""

from __future__ import annotations

import itertools
import logging
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from ionet.core.protocol import DEFAULT_HIGH_WATER, Protocol, TimerHandle, Transport
from ionet.ftp.fs import FSError, Upload, os_error
from ionet.ftp.tls import TLSLayer

log = logging.getLogger("ionet.ftp")

#: Bytes read per chunk when a transfer cannot use sendfile.
CHUNK = 64 * 1024
#: Bytes of a download handed to the engine at a time (see FileSender): the
#: least, and the most.  Progress shows a piece at a time, so a download
#: slower than PIECE_MIN per data timeout (3.5 KB/s at the default 300 s)
#: counts as stalled; each piece costs a little CPU, so fast ones get large.
PIECE_MIN = 1024 * 1024
PIECE_MAX = 8 * 1024 * 1024
#: The end of each piece, written from memory after the piece's sendfile.
#: Engines count written bytes, not file regions, in ``get_write_buffer_size``
#: and flow control: these bytes make a piece's departure visible and, once
#: two are queued (at the default water marks), pause the sender.
TAIL = DEFAULT_HIGH_WATER
#: Seconds a data connection waits for its transfer command.
NO_JOB_TIMEOUT = 30.0
#: ... once the client has already closed its side.
EARLY_EOF_WAIT = 5.0
#: Bytes kept from a client that sends before its transfer command arrives.
EARLY_LIMIT = 1024 * 1024

Post = Callable[[Callable[[], None]], None]


def _ignore(*args: object) -> None:
    """The callbacks of a data connection that has ended."""


@dataclass(frozen=True)
class TransferResult:
    """How a data connection ended, as reported to the control connection."""

    started: bool  # a job ran on this connection
    ok: bool
    nbytes: int = 0
    aborted: bool = False  # ended by ABOR (or the control connection going away)
    error: str = ""  # what went wrong, for the reply
    code: int = 426  # the reply code for ``error``
    empty_eof: bool = False  # no job ran: the peer closed cleanly, having sent nothing


class Job:
    """What a data connection does; every method runs in the data connection's context."""

    conn: DataConnection
    nbytes = 0  # bytes handed to the transport, or received

    def __init__(self) -> None:
        self._claims = itertools.count()

    def claim(self) -> bool:
        """True for the first caller only, from either side and any thread.

        ``next()`` on an ``itertools.count`` is atomic in CPython: no lock,
        so it behaves the same under gevent's patched ``threading``.
        """
        return next(self._claims) == 0

    def abandon(self) -> None:
        """Control side: discard the job unless the data side already took it."""
        if self.claim():
            self.discard()

    def start(self, conn: DataConnection) -> None:
        self.conn = conn

    def progress(self) -> int:
        """A count that moves while the transfer moves (for the data timeout).

        Read by the control side, in its own context: an int attribute and
        ``get_write_buffer_size`` (0 on the blocking engines, whose writes
        return once sent; on loop engines both sides share one thread).
        Bytes handed over minus bytes still queued: it moves as the peer
        takes them, and stands still when it stops reading.
        """
        conn = getattr(self, "conn", None)  # set by start(), in the data context
        transport = conn.transport if conn is not None else None
        queued = transport.get_write_buffer_size() if transport is not None else 0
        return self.nbytes - queued

    def data_received(self, data: bytes) -> None:
        """Bytes from the client (only receivers expect any)."""

    def eof_received(self) -> bool | None:
        return True  # keep sending; the client may half-close early

    def pause_writing(self) -> None: ...

    def resume_writing(self) -> None: ...

    def finish(self, exc: BaseException | None, aborted: bool) -> TransferResult:
        """The connection is gone: release resources and say how it went."""
        raise NotImplementedError

    def discard(self) -> None:
        """The job will never run: release its resources (by its owner, once)."""

    def finish_empty(self) -> TransferResult | None:
        """The job never started, and the client sent nothing and closed (control
        context): complete it as an empty transfer if that makes sense, else None."""
        return None


class DataConnection(Protocol):
    """One data connection: idle until given a job, then runs it and reports.

    Args:
        post: the control transport's ``call_soon_threadsafe``.
        on_connected: control-side callback ``(conn, transport)``.
        on_finished: control-side callback ``(result)``.
        idle_timeout: the data timeout; a connection given no job within it
            (or ``NO_JOB_TIMEOUT``, if shorter) is dropped.  None: only
            ``NO_JOB_TIMEOUT``.  (A running job's progress is timed by the
            control side: see the module doc.)
        tls: a server SSLContext to protect this connection with (PROT P).
    """

    def __init__(self, post: Post, on_connected: Callable[[DataConnection, Transport], None],
                 on_finished: Callable[[TransferResult], None],
                 idle_timeout: float | None = 300.0, tls: ssl.SSLContext | None = None) -> None:
        self.post = post
        self.on_connected = on_connected
        self.on_finished = on_finished
        self.idle_timeout = idle_timeout
        self.tls_context = tls
        self.tls: TLSLayer | None = None
        self.job: Job | None = None
        self._waiting_job: Job | None = None  # given before the TLS handshake finished
        self.aborted = False
        self.lost = False
        self._timer: TimerHandle | None = None
        self._early: list[bytes] = []
        self._early_size = 0
        self._early_eof = False

    # -- events from the engine (data context) --------------------------------------

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        self.transport = transport
        if self.tls_context is not None:
            self.tls = TLSLayer(self.tls_context, transport.write)  # reads the handshake
        else:
            transport.pause_reading()  # nothing to do with client bytes before the job
        self._arm_timer()
        conn, on_connected = self, self.on_connected
        self.post(lambda: on_connected(conn, transport))

    def data_received(self, data: bytes) -> None:
        peer_closed = False
        if self.tls is not None:
            try:
                data, peer_closed = self.tls.receive(data)
            except ssl.SSLError as exc:
                log.info("data connection: TLS failed: %s", exc)
                self.abort()
                return
            if self.tls.handshaken and self._waiting_job is not None:
                job, self._waiting_job = self._waiting_job, None
                self._run(job)
        if data:
            if self.job is not None:
                self.job.data_received(data)
            else:  # reading is paused (TLS: after the handshake), but bytes may come
                self._early.append(data)
                self._early_size += len(data)
                if self._early_size > EARLY_LIMIT and self.transport is not None:
                    self.transport.pause_reading()  # FileReceiver.start resumes
        if peer_closed and not self.lost and not self.eof_received():
            self.finish_sending()

    def eof_received(self) -> bool | None:
        if self.job is None:
            self._early_eof = True
            if not self._early:
                # Hung up before any transfer: close.  (If this was an empty
                # upload racing its job, the control side completes it.)
                return None
            # An upload that arrived whole before its job (the client sends
            # once it sees 150, which may beat our hand-over): wait a little
            # for the job, not for the whole timeout.
            self._arm_timer(EARLY_EOF_WAIT)
            return True
        return self.job.eof_received()

    # -- what jobs call (data context) -----------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send ``data`` (encrypted with PROT P)."""
        if self.tls is not None:
            self.tls.send(data)
        elif self.transport is not None:
            self.transport.write(data)

    def finish_sending(self) -> None:
        """Everything is queued: end TLS properly if any, then close."""
        if self.tls is not None:
            self.tls.shutdown()
        if self.transport is not None:
            self.transport.close()

    def pause_writing(self) -> None:
        if self.job is not None:
            self.job.pause_writing()

    def resume_writing(self) -> None:
        if self.job is not None:
            self.job.resume_writing()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        if self._timer is not None:
            self._timer.cancel()
        if self.job is None and self._waiting_job is not None:
            self.job = self._waiting_job  # owned here now: let it clean up
            self.job.conn = self
            result = self.job.finish(exc or ConnectionError("TLS handshake failed"), self.aborted)
        elif self.job is None:
            result = TransferResult(started=False, ok=False, error="Data connection closed.",
                                    code=425, empty_eof=self._early_eof and exc is None)
        else:
            try:
                result = self.job.finish(exc, self.aborted)
            except Exception as failure:  # a bug: still tell the control side
                log.exception("data transfer cleanup failed")
                result = TransferResult(True, False, error=f"Internal error: {failure}", code=451)
        on_finished = self.on_finished
        # The job keeps this connection (job.conn), and the control side's
        # callbacks keep its slot, which keeps this connection: let go of
        # both, so that all of it is freed by reference counting, not left
        # for the cyclic garbage collector.
        self.job = self._waiting_job = None
        self.on_connected = self.on_finished = _ignore
        self.post(lambda: on_finished(result))

    # -- called through call_soon_threadsafe by the control side (data context) --------

    def start(self, job: Job) -> None:
        """Run ``job`` (see the module doc for who owns it)."""
        if not job.claim():
            return  # the control side gave up on it first
        if self.lost or self.job is not None:
            job.discard()
            return
        if self.tls is not None and not self.tls.handshaken:
            self._waiting_job = job
            return
        self._run(job)

    def _run(self, job: Job) -> None:
        self.job = job
        job.start(self)
        early, self._early = self._early, []
        for data in early:
            job.data_received(data)
        if self._early_eof and not self.lost and not job.eof_received():
            self.finish_sending()

    def abort(self) -> None:
        """ABOR, or the control connection went away: drop the connection now.

        Also called directly from the control side, on a data timeout or an
        ABOR of a running job (see the module doc): it only sets a flag and
        calls the transport's ``abort``, which may come from any thread.
        """
        if not self.lost and self.transport is not None:
            self.aborted = True
            self.transport.abort()

    def server_stopping(self) -> None:
        if self.job is None and self._waiting_job is None:
            self.abort()  # nothing to finish; a transfer in progress may complete

    # -- timers ----------------------------------------------------------------------

    def _arm_timer(self, delay: float = NO_JOB_TIMEOUT) -> None:
        """Give up if no job arrives in time: the control side may be gone, and
        its messages with it.  (Once a job runs, the control side times it.)"""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.idle_timeout is not None:
            delay = min(delay, self.idle_timeout)
        if self.transport is not None and not self.lost:
            self._timer = self.transport.call_later(delay, self._check_job_came)

    def _check_job_came(self) -> None:
        self._timer = None
        if self.lost or self.job is not None or self._waiting_job is not None:
            return
        log.info("data connection: no transfer command came; closing")
        self.abort()


class _Throttle:
    """Keeps a transfer under ``rate`` bytes per second by telling it how long to wait."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.clock = clock
        self.start = clock()

    def delay(self, nbytes: int) -> float:
        """Seconds to wait so that ``nbytes`` so far is within the rate."""
        return max(0.0, nbytes / self.rate - (self.clock() - self.start))


class FileSender(Job):
    """RETR: send ``count`` bytes of ``file`` from ``offset``, then close.

    Binary and unthrottled, the file goes out in pieces of 1 to 8 MiB: each
    piece but its last ``TAIL`` bytes by ``transport.sendfile`` (the engine
    pushes it with ``os.sendfile``), those last bytes by ``write``.
    Why not the whole file in one ``sendfile``: no engine reports how far a
    file region has gone, so the data timeout could not tell a slow download
    from a stalled one, and a client that stops reading would hold the
    connection until the engine's own limits.  The written tails are what
    engines do count: ``get_write_buffer_size`` drops as each piece leaves,
    and flow control pauses us (``pause_writing``) while two are queued, so
    pieces are handed over as fast as the client takes them, and no faster.
    A piece grows (to ``PIECE_MAX``) while pieces leave within a sixteenth
    of the data timeout, and shrinks (to ``PIECE_MIN``) once they take more
    than a quarter: large pieces cost less CPU, small ones show progress
    sooner, and a piece stays well inside the timeout at the rate seen.

    With ``ascii`` (LF to CRLF) or a ``rate``, chunks are read and written,
    pausing while the outgoing buffer is full.
    """

    def __init__(self, file: IO[bytes], offset: int, count: int, ascii: bool = False,
                 rate: float | None = None) -> None:
        super().__init__()
        self.file = file
        self.offset = offset
        self.count = count
        self.ascii = ascii
        self.rate = rate
        self.remaining = count
        self.paused = False
        self._cr = False  # the last byte sent was CR (ASCII mode)
        self._throttle: _Throttle | None = None
        self._timer: TimerHandle | None = None
        self.closed = False
        self.zero_copy = False  # sent by pieces of sendfile (else read and written)
        self.piece = PIECE_MIN
        self._last_piece_at: float | None = None

    def start(self, conn: DataConnection) -> None:
        super().start(conn)
        self.zero_copy = not self.ascii and not self.rate and conn.tls is None
        if self.zero_copy:
            self._pump_pieces()
            return
        if self.rate:
            self._throttle = _Throttle(self.rate, time.monotonic)
        self.file.seek(self.offset)
        self._pump()

    def _pump_pieces(self) -> None:
        """Hand pieces over until paused or done; then close."""
        transport = self.conn.transport
        assert transport is not None
        while not self.paused and self.remaining > 0 and not transport.is_closing():
            self._send_piece(transport)
        if self.remaining <= 0 and not self.paused and not transport.is_closing():
            # Close at once: the engine flushes the last piece.  If it has to
            # cut that flush (no progress for its shutdown_timeout), the
            # connection is lost with a TimeoutError, not None, so finish()
            # answers 426, never a 226 for a truncated file.
            self.conn.finish_sending()

    def _send_piece(self, transport: Transport) -> None:
        now = time.monotonic()
        if self._last_piece_at is not None:
            self._adapt_piece(now - self._last_piece_at)
        self._last_piece_at = now
        size = min(self.piece, self.remaining)
        tail = min(TAIL, size) if size > TAIL else 0  # a small last piece goes whole
        body = size - tail
        if body:
            # The transport closes the file it is given once sent: each piece
            # gets a descriptor of its own (pieces in flight: about two).
            transport.sendfile(open(os.dup(self.file.fileno()), "rb"),  # noqa: SIM115
                               self.offset, body)
        if tail:
            data = os.pread(self.file.fileno(), tail, self.offset + body)
            if len(data) < tail:
                log.warning("file shrank during RETR")
                transport.abort()
                return
        self.offset += size
        self.remaining -= size
        self.nbytes += size
        if tail:
            transport.write(data)  # may call pause_writing

    def _adapt_piece(self, seconds: float) -> None:
        """The previous piece was handed over ``seconds`` ago: the client took
        what came before it in that time (a loop engine pauses us meanwhile;
        a blocking one returns from the send)."""
        timeout = self.conn.idle_timeout
        if timeout is None or seconds < timeout / 16:
            self.piece = min(2 * self.piece, PIECE_MAX)
        elif seconds > timeout / 4:
            self.piece = max(self.piece // 2, PIECE_MIN)

    def _pump(self) -> None:
        self._timer = None
        transport = self.conn.transport
        assert transport is not None
        while not self.paused and self.remaining > 0 and not transport.is_closing():
            if self._throttle is not None:
                wait = self._throttle.delay(self.nbytes)
                if wait > 0:
                    self._timer = transport.call_later(wait, self._pump)
                    return
            chunk = self.file.read(min(CHUNK, self.remaining))
            if not chunk:
                log.warning("file shrank during RETR")
                transport.abort()
                return
            self.remaining -= len(chunk)
            self.nbytes += len(chunk)
            if self.ascii:
                chunk = self._to_crlf(chunk)
            self.conn.write(chunk)
        if self.remaining <= 0:
            self.conn.finish_sending()

    def _to_crlf(self, chunk: bytes) -> bytes:
        out = chunk.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if self._cr and chunk.startswith(b"\n"):
            out = out[1:]  # the CR was sent with the previous chunk
        self._cr = chunk.endswith(b"\r")
        return out

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        if self.paused:
            self.paused = False
            if self._timer is not None:
                return  # a throttled pump goes on
            if self.zero_copy:
                self._pump_pieces()
            else:
                self._pump()

    def finish(self, exc: BaseException | None, aborted: bool) -> TransferResult:
        if self._timer is not None:
            self._timer.cancel()
        self.file.close()
        if aborted:
            return TransferResult(True, False, self.nbytes, aborted=True,
                                  error="Transfer aborted.")
        if exc is not None or self.remaining > 0:
            return TransferResult(True, False, self.nbytes,
                                  error="Connection closed; transfer aborted.")
        return TransferResult(True, True, self.nbytes)

    def discard(self) -> None:
        self.file.close()


class BytesSender(Job):
    """A listing: write it all, then close."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data = data

    def start(self, conn: DataConnection) -> None:
        super().start(conn)
        view = memoryview(self.data)
        for start in range(0, len(view), CHUNK):  # in chunks: progress shows while it goes
            if conn.transport is None or conn.transport.is_closing():
                return
            piece = view[start : start + CHUNK]
            self.nbytes += len(piece)
            conn.write(bytes(piece))
        conn.finish_sending()

    def finish(self, exc: BaseException | None, aborted: bool) -> TransferResult:
        if aborted:
            return TransferResult(True, False, aborted=True, error="Transfer aborted.")
        if exc is not None:
            return TransferResult(True, False, error="Connection closed; transfer aborted.")
        return TransferResult(True, True, self.nbytes)


class FileReceiver(Job):
    """STOR/APPE/STOU: write what arrives into ``upload``; commit on EOF.

    Chunks are written as they arrive (each is bounded by the engine's recv
    size, and the engine stops reading while we are busy).  ASCII mode turns
    CRLF into LF.  With a ``rate``, reading pauses whenever the transfer is
    ahead of it.
    """

    def __init__(self, upload: Upload, ascii: bool = False, rate: float | None = None) -> None:
        super().__init__()
        self.upload = upload
        self.ascii = ascii
        self.rate = rate
        self.committed = False
        self.error: FSError | None = None
        self._cr = False
        self._throttle: _Throttle | None = None
        self._timer: TimerHandle | None = None

    def start(self, conn: DataConnection) -> None:
        super().start(conn)
        if self.rate:
            self._throttle = _Throttle(self.rate, time.monotonic)
        assert conn.transport is not None
        conn.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.error is not None:
            return
        self.nbytes += len(data)
        if self.ascii:
            data = self._from_crlf(data)
        try:
            self.upload.file.write(data)
        except OSError as exc:
            self.error = os_error(exc, self.upload.vpath)
            assert self.conn.transport is not None
            self.conn.transport.abort()
            return
        if self._throttle is not None:
            wait = self._throttle.delay(self.nbytes)
            transport = self.conn.transport
            if wait > 0 and transport is not None and self._timer is None:
                transport.pause_reading()
                self._timer = transport.call_later(wait, self._resume)

    def _resume(self) -> None:
        self._timer = None
        transport = self.conn.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _from_crlf(self, data: bytes) -> bytes:
        if self._cr:
            data = b"\r" + data
        self._cr = data.endswith(b"\r")
        if self._cr:
            data = data[:-1]  # it may start a CRLF split across chunks
        return data.replace(b"\r\n", b"\n")

    def eof_received(self) -> bool | None:
        if self._cr:
            self.upload.file.write(b"\r")
            self._cr = False
        try:
            self.upload.commit()
            self.committed = True
        except FSError as exc:
            self.error = exc
        return None  # close our side: the transfer is over

    def finish(self, exc: BaseException | None, aborted: bool) -> TransferResult:
        if self._timer is not None:
            self._timer.cancel()
        if self.committed:
            return TransferResult(True, True, self.nbytes)
        self.upload.abort()
        if self.error is not None:
            return TransferResult(True, False, self.nbytes, error=self.error.message,
                                  code=self.error.code if self.error.code != 550 else 451)
        if aborted:
            return TransferResult(True, False, self.nbytes, aborted=True,
                                  error="Transfer aborted.")
        return TransferResult(True, False, self.nbytes,
                              error="Connection closed; transfer aborted.")

    def discard(self) -> None:
        self.upload.abort()

    def finish_empty(self) -> TransferResult | None:
        try:
            self.upload.commit()  # an empty file, uploaded faster than we handed over the job
        except FSError as exc:
            return TransferResult(True, False, error=exc.message, code=451)
        return TransferResult(True, True, 0)
