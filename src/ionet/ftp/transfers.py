"""Transfers as the control connection sees them: data connections and the commands using them.

A :class:`DataSlot` is the control side's view of the one data connection a
session may have: set up by PASV/EPSV (listen) or PORT/EPRT (connect, once a
transfer command comes), given a job by RETR/STOR/APPE/STOU (or a listing,
``files.py``), and reported on by the data connection itself (``data.py``
explains how the two sides talk across threads).  The control side answers
150 or 125 when a transfer starts and 226 or 4xx when it ends, keeps the
data timeout (a transfer that makes no progress for ``data_timeout`` is
aborted: :meth:`TransferCommands._check_progress`), and handles REST and
ABOR.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

from ionet.core.protocol import DataChannel, TimerHandle, Transport
from ionet.ftp.core import ControlCore
from ionet.ftp.data import DataConnection, FileReceiver, FileSender, Job, TransferResult
from ionet.ftp.fs import FSError, Upload, os_error
from ionet.ftp.server import plain_ip

log = logging.getLogger("ionet.ftp")

#: Seconds a passive listener waits for the client's data connection.
PASV_TIMEOUT = 30.0


class DataSlot:
    """The control side's view of one data connection, in the control context."""

    __slots__ = ("channel", "conn", "dispatched", "job", "seen", "transport", "watch")

    def __init__(self) -> None:
        self.channel: DataChannel | None = None
        self.conn: DataConnection | None = None
        self.transport: Transport | None = None
        self.job: Job | None = None
        self.dispatched = False
        self.watch: TimerHandle | None = None  # the data timeout's timer
        self.seen: int | None = None  # the job's progress at the last look

    def stop_watching(self) -> None:
        if self.watch is not None:
            self.watch.cancel()
            self.watch = None


@dataclass
class Transfer:
    """The transfer under way: what to log and answer when it ends."""

    command: str
    path: str
    done_text: str
    started: float
    abort_requested: bool = False
    timed_out: bool = False  # the data timeout ended it


class TransferCommands(ControlCore):
    """Data connections (PASV, EPSV, PORT, EPRT), transfers (RETR, STOR, APPE, STOU),
    REST and ABOR."""

    # -- data connections ------------------------------------------------------------------

    def _data_factory(self, slot: DataSlot) -> Callable[[], DataConnection]:
        assert self.transport is not None
        post = self.transport.call_soon_threadsafe
        timeout = self.settings.data_timeout
        tls = self.settings.tls if self.prot_private else None

        def on_connected(conn: DataConnection, transport: Transport) -> None:
            self._data_connected(slot, conn, transport)

        def on_finished(result: TransferResult) -> None:
            self._data_finished(slot, result)

        return lambda: DataConnection(post, on_connected, on_finished, timeout, tls)

    def _connect_timeout(self) -> float:
        data_timeout = self.settings.data_timeout
        return PASV_TIMEOUT if data_timeout is None else min(PASV_TIMEOUT, data_timeout)

    def _new_slot(self) -> DataSlot:
        self._drop_slot()
        self.port_addr = None
        slot = self.slot = DataSlot()
        return slot

    def _drop_slot(self) -> None:
        """Forget the current data connection: stop listening, close it, free its job."""
        slot, self.slot = self.slot, None
        if slot is None:
            return
        slot.stop_watching()
        if slot.channel is not None:
            slot.channel.close()
            slot.channel = None  # its callbacks hold the slot: no cycle left behind
        if slot.transport is not None and slot.conn is not None:
            slot.transport.call_soon_threadsafe(slot.conn.abort)
        if slot.job is not None:
            slot.job.abandon()  # unless the data side runs it: then our abort ends it

    def _data_connected(self, slot: DataSlot, conn: DataConnection, transport: Transport) -> None:
        if slot is not self.slot or self.closing:
            transport.call_soon_threadsafe(conn.abort)
            return
        slot.conn, slot.transport = conn, transport
        if slot.job is not None and not slot.dispatched:
            self._dispatch(slot)

    def _dispatch(self, slot: DataSlot) -> None:
        conn, job, transport = slot.conn, slot.job, slot.transport
        assert conn is not None and job is not None and transport is not None
        slot.dispatched = True
        transport.call_soon_threadsafe(lambda: conn.start(job))

    def _data_finished(self, slot: DataSlot, result: TransferResult) -> None:
        slot.stop_watching()
        slot.channel = None  # done with; its callbacks hold the slot (a cycle)
        if slot is not self.slot:
            if not result.started and slot.job is not None:
                slot.job.abandon()
            return
        self.slot = None
        if slot.job is None:
            return  # the client connected and hung up before any transfer command
        if not result.started and slot.job.claim():
            completed = slot.job.finish_empty() if result.empty_eof else None
            if completed is None:
                slot.job.discard()
            else:
                result = completed
        self._end_transfer(result)

    def _data_error(self, slot: DataSlot, exc: BaseException) -> None:
        """The passive listener timed out, or the active connection failed."""
        if slot is not self.slot:
            return
        self.slot = None
        slot.stop_watching()
        if slot.job is not None:
            slot.job.abandon()
            reason = "timed out" if isinstance(exc, TimeoutError) else (
                getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
            self._end_transfer(TransferResult(
                False, False, error=f"Can't open data connection: {reason}.", code=425))

    def _start_transfer(self, command: str, path: str, job: Job, opening: str,
                        done_text: str = "Transfer complete.") -> None:
        assert self.transport is not None
        self.rest = 0
        slot = self.slot
        if slot is None:
            if self.port_addr is None:
                job.abandon()
                self._reply(425, "Use PORT, EPRT, PASV or EPSV first.")
                return
            host, port = self.port_addr
            slot = self._new_slot()
            try:
                slot.channel = self.transport.open_connection(
                    self._data_factory(slot), host, port, timeout=self._connect_timeout(),
                    on_error=lambda exc: self._data_error(slot, exc))
            except (OSError, NotImplementedError) as exc:
                self.slot = None
                job.abandon()
                reason = (exc.strerror if isinstance(exc, OSError)
                          else "not available on this engine")
                self._reply(425, f"Can't open data connection: {reason or exc}.")
                return
        slot.job = job
        self.transfer = Transfer(command, path, done_text, self.server.clock())
        self._watch_data(slot)
        if slot.conn is not None:
            self._reply(125, f"Data connection already open. {opening}")
            self._dispatch(slot)
        else:
            self._reply(150, opening)

    def _watch_data(self, slot: DataSlot) -> None:
        """Look at the transfer's progress again in ``data_timeout`` seconds."""
        timeout = self.settings.data_timeout
        if timeout is not None and self.transport is not None:
            slot.watch = self.transport.call_later(timeout, lambda: self._check_progress(slot))

    def _check_progress(self, slot: DataSlot) -> None:
        """The data timeout: abort a transfer that has not moved for a whole period.

        Timed here, on the control side, because a data connection's own
        timers cannot fire while its thread is blocked in a send (blocking
        engines); ``conn.abort()`` reaches it even then (see ``data.py``).
        """
        slot.watch = None
        transfer = self.transfer
        if slot is not self.slot or transfer is None or self.closing:
            return
        conn, job = slot.conn, slot.job
        if conn is not None and job is not None and slot.dispatched:
            progress = job.progress()
            if progress == slot.seen:
                log.info("%s: %s %s made no progress in %gs; aborting it", self._who(),
                         transfer.command, transfer.path, self.settings.data_timeout)
                transfer.timed_out = True
                conn.abort()  # connection_lost reports back, as for any end
                return
            slot.seen = progress
        # (Not connected yet: the listener's or connector's timeout applies.)
        self._watch_data(slot)

    def _end_transfer(self, result: TransferResult) -> None:
        transfer, self.transfer = self.transfer, None
        if transfer is None:
            return
        elapsed = self.server.clock() - transfer.started
        if result.ok:
            self._reply(226, transfer.done_text)
        elif transfer.abort_requested and result.aborted:
            self._reply(426, "Transfer aborted.")
        elif transfer.timed_out:
            self._reply(426, f"Data connection timed out (no progress for "
                             f"{self.settings.data_timeout:g}s); transfer aborted.")
        else:
            self._reply(result.code, result.error)
        if transfer.abort_requested:
            self._reply(226, "ABOR command successful.")
        log.info("%s %s %s %s: %d bytes in %.3fs", self._who(), transfer.command, transfer.path,
                 "ok" if result.ok else "failed", result.nbytes, elapsed)
        self.last_command = self.server.clock()
        self._drain()

    # -- data channel setup ----------------------------------------------------------------

    def _local_ip(self) -> str:
        assert self.transport is not None
        return str(self.transport.get_extra_info("sockname")[0])

    def _open_passive(self) -> int | None:
        """Listen for the data connection; the port, or None after replying an error."""
        assert self.transport is not None
        slot = self._new_slot()
        peer = self.peer_ip
        try:
            slot.channel = self.transport.open_listener(
                self._data_factory(slot), self._local_ip(), self.server.passive_ports(),
                accept_from=lambda addr: plain_ip(str(addr[0])) == peer,
                timeout=self._connect_timeout(),
                on_error=lambda exc: self._data_error(slot, exc))
        except NotImplementedError:
            self.slot = None
            self._reply(502, "Passive mode is not available on this server's engine.")
            return None
        except OSError as exc:
            self.slot = None
            log.warning("passive listener failed: %s", exc)
            self._reply(425, "Can't open passive connection: no free port.")
            return None
        return slot.channel.port

    def ftp_PASV(self, arg: str) -> None:
        if self.epsv_all:
            self._reply(501, "PASV not allowed after EPSV ALL.")
            return
        address = self.settings.masquerade_address or plain_ip(self._local_ip())
        if ":" in address:
            self._reply(425, "PASV needs IPv4; use EPSV.")
            return
        port = self._open_passive()
        if port is not None:
            numbers = address.split(".") + [str(port >> 8), str(port & 0xFF)]
            self._reply(227, f"Entering Passive Mode ({','.join(numbers)}).")

    def ftp_EPSV(self, arg: str) -> None:
        value = arg.strip().upper()
        if value == "ALL":
            self.epsv_all = True
            self._reply(200, "EPSV ALL command successful.")
            return
        family = "2" if ":" in plain_ip(self._local_ip()) else "1"
        if value and value != family:
            self._reply(522, f"Network protocol not supported, use ({family}).")
            return
        port = self._open_passive()
        if port is not None:
            self._reply(229, f"Entering Extended Passive Mode (|||{port}|).")

    def _set_active(self, ip: str, port: int) -> None:
        if self.epsv_all:
            self._reply(501, "PORT/EPRT not allowed after EPSV ALL.")
        elif plain_ip(ip) != self.peer_ip:
            self._reply(501, "Rejected data connection to a foreign address (use your own).")
        elif not 1024 <= port <= 65535:
            self._reply(501, "Can't connect over a privileged port.")
        else:
            self._drop_slot()
            self.port_addr = (plain_ip(ip), port)
            self._reply(200, "Active data connection accepted.")

    def ftp_PORT(self, arg: str) -> None:
        try:
            numbers = [int(n) for n in arg.split(",")]
            if len(numbers) != 6 or not all(0 <= n <= 255 for n in numbers):
                raise ValueError
        except ValueError:
            self._reply(501, "Invalid PORT format (h1,h2,h3,h4,p1,p2).")
            return
        if ":" in plain_ip(self._local_ip()):
            self._reply(425, "PORT needs IPv4; use EPRT.")
            return
        self._set_active(".".join(map(str, numbers[:4])), numbers[4] * 256 + numbers[5])

    def ftp_EPRT(self, arg: str) -> None:
        try:
            delimiter = arg[0]
            _, proto, ip, port_text, _ = arg.split(delimiter)
            port = int(port_text)
            ipaddress.ip_address(ip)
        except (IndexError, ValueError):
            self._reply(501, "Invalid EPRT format (|proto|address|port|).")
            return
        if proto not in ("1", "2"):
            self._reply(522, "Network protocol not supported, use (1,2).")
            return
        self._set_active(ip, port)

    def ftp_REST(self, arg: str) -> None:
        try:
            offset = int(arg)
            if offset < 0:
                raise ValueError
        except ValueError:
            self._reply(501, "Invalid parameter (REST needs a byte offset).")
            return
        self.rest = offset
        self._reply(350, f"Restarting at {offset}. Send STORE or RETRIEVE to initiate transfer.")

    def ftp_ABOR(self, arg: str) -> None:
        transfer = self.transfer
        if transfer is None:
            if self.slot is not None:
                self._drop_slot()
                self._reply(225, "ABOR command successful; data channel closed.")
            else:
                self._reply(225, "No transfer to abort.")
            return
        slot = self.slot
        transfer.abort_requested = True
        if slot is not None and slot.conn is not None and slot.transport is not None:
            job = slot.job
            if job is None or not job.claim():
                # The data side runs the job: abort directly, which reaches a
                # blocking engine's thread even inside a send (data.py); the
                # end of the connection reports back, and finished() replies.
                slot.conn.abort()
                return
            # Claimed here first: the data side will never start it
            # (DataConnection.start checks the claim), so it ends here.
            job.discard()
            slot.job = None
        self._drop_slot()  # nothing running will report back
        self._end_transfer(TransferResult(False, False, aborted=True))

    # -- transfers -------------------------------------------------------------------------

    def ftp_RETR(self, arg: str) -> None:
        vpath, fspath, st = self._vfs().file(arg)
        offset = self.rest
        if offset > st.st_size:
            self.rest = 0
            self._reply(554, f"Invalid REST parameter: {vpath} has {st.st_size} bytes.")
            return
        try:
            file = open(fspath, "rb")  # noqa: SIM115 - the data connection closes it
        except OSError as exc:
            self.rest = 0
            raise os_error(exc, vpath) from None
        count = st.st_size - offset
        job = FileSender(file, offset, count, ascii=not self.binary,
                         rate=self.settings.max_download_rate)
        mode = "BINARY" if self.binary else "ASCII"
        self._start_transfer("RETR", vpath, job,
                             f"Opening {mode} mode data connection for {vpath} ({count} bytes).")

    def _store(self, command: str, arg: str, mode: str) -> None:
        fs = self._vfs()
        vpath, fspath = fs.resolve(arg)
        offset, self.rest = self.rest, 0
        user = self.user
        assert user is not None
        try:
            st: os.stat_result | None = os.stat(fspath)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise FSError(f"{vpath}: Is a directory.")
        if st is not None and command == "STOR" and user.anonymous:
            raise FSError(f"{vpath}: Overwriting is not allowed for anonymous users.")
        if vpath == "/":
            raise FSError("/: Is a directory.")
        if offset:
            if command == "APPE":
                raise FSError("Can't APPE in REST mode.")
            if st is None or offset > st.st_size:
                self._reply(554, f"Invalid REST parameter for {vpath}.")
                return
            mode = "restart"
        upload = Upload(fspath, vpath, mode, offset)
        job = FileReceiver(upload, ascii=not self.binary, rate=self.settings.max_upload_rate)
        self._start_transfer(command, vpath, job, f"Ok to send data for {vpath}.")

    def ftp_STOR(self, arg: str) -> None:
        self._store("STOR", arg, "new")

    def ftp_APPE(self, arg: str) -> None:
        self._store("APPE", arg, "append")

    def ftp_STOU(self, arg: str) -> None:
        fs = self._vfs()
        base = arg or "ftp.file"
        self.rest = 0
        for attempt in range(100):
            candidate = base if attempt == 0 else f"{base}.{attempt}"
            vpath, fspath = fs.resolve(candidate)
            if os.path.lexists(fspath):
                continue
            try:
                upload = Upload(fspath, vpath, "unique")
            except FSError:
                if os.path.lexists(fspath):
                    continue  # taken meanwhile
                raise
            job = FileReceiver(upload, ascii=not self.binary, rate=self.settings.max_upload_rate)
            self._start_transfer("STOU", vpath, job, f"FILE: {os.path.basename(fspath)}")
            return
        raise FSError(f"{base}: No unique name available.", 450)
