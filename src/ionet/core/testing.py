"""Fakes for testing protocols without sockets: a transport, a clock, split feeders.

Every service's protocol can be driven with plain byte strings::

    clock = FakeClock()
    transport = FakeTransport(clock=clock)
    proto = EchoProtocol()
    transport.connect(proto)                 # connection_made
    feed_split(transport, b"hello", sizes=[1])   # one byte at a time
    assert transport.written() == b"hello"
    clock.advance(30)                        # fires timers set with call_later

:class:`FakeTransport` checks the call order of the contract (a callback
after ``connection_lost`` is a test failure), records what the protocol wrote,
runs ``run_in_worker`` calls in place (or holds them, to test what happens
meanwhile), and fires timers only when the fake clock is advanced.  Shipped in
the package, not only in tests/, as trio ships ``trio.testing``: every service
needs the same fakes.
"""

from __future__ import annotations

import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from typing import IO, Any, Callable, Iterable, TypeVar

from ionet.core.protocol import (
    DatagramProtocol,
    DatagramTransport,
    Outcome,
    Protocol,
    TimerHandle,
    Transport,
)
from ionet.core.timers import TimerQueue

T = TypeVar("T")


class FakeClock:
    """A monotonic clock that moves only when told, and the timers on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.timers = TimerQueue(lambda: self.now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer that falls due, in order."""
        target = self.now + seconds
        while True:
            delay = self.timers.next_delay(None)
            if delay is None or self.now + delay > target:
                break
            self.now += delay
            self.timers.run_due()
        self.now = target


class ContractViolation(AssertionError):
    """A protocol or transport call broke the order the contract fixes."""


class FakeTransport(Transport):
    """An in-memory transport: records writes, fakes flow control and time.

    Args:
        clock: the clock ``call_later`` uses (a fresh FakeClock by default).
        peername / sockname: what ``get_extra_info`` reports.
        run_workers: run ``run_in_worker`` calls at once (True) or queue them
            until ``run_pending_workers()`` (False).
    """

    def __init__(
        self,
        clock: FakeClock | None = None,
        peername: Any = ("127.0.0.1", 50000),
        sockname: Any = ("127.0.0.1", 8000),
        run_workers: bool = True,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.clock = clock or FakeClock()
        self.protocol: Protocol | None = None
        self.chunks: list[bytes] = []
        self.files: list[tuple[IO[bytes], int, int | None]] = []
        self.reading = True
        self.closed = False
        self.aborted = False
        self.lost = False
        self.eof_sent = False
        self.run_workers = run_workers
        self.pending_workers: list[Callable[[], None]] = []
        self.soon: list[Callable[[], None]] = []
        self._extra = {"peername": peername, "sockname": sockname, "engine": "fake"}
        self._extra.update(extra or {})

    # -- driving the protocol --------------------------------------------

    def connect(self, protocol: Protocol) -> Protocol:
        """Call ``connection_made`` (start of the contract)."""
        if self.protocol is not None:
            raise ContractViolation("connection_made called twice")
        self.protocol = protocol
        protocol.connection_made(self)
        return protocol

    def feed(self, data: bytes) -> None:
        """Deliver bytes, as the engine would, refusing after close or pause."""
        self._check_live("data_received")
        if not self.reading:
            raise ContractViolation("data_received while reading is paused")
        assert self.protocol is not None
        self.protocol.data_received(data)

    def feed_eof(self) -> bool | None:
        """Deliver a half-close; closes the transport unless the protocol keeps it."""
        self._check_live("eof_received")
        assert self.protocol is not None
        keep_open = self.protocol.eof_received()
        if not keep_open:
            self.close()
        return keep_open

    def lose(self, exc: BaseException | None = None) -> None:
        """End the contract: ``connection_lost`` (at most once)."""
        if self.lost:
            raise ContractViolation("connection_lost called twice")
        self.lost = True
        self.closed = True
        assert self.protocol is not None
        self.protocol.connection_lost(exc)

    def _check_live(self, what: str) -> None:
        if self.protocol is None:
            raise ContractViolation(f"{what} before connection_made")
        if self.lost:
            raise ContractViolation(f"{what} after connection_lost")

    # -- what the protocol did ---------------------------------------------

    def written(self) -> bytes:
        """Every byte written so far (file regions included, read from the file)."""
        return b"".join(self.chunks)

    def take(self) -> bytes:
        """Return what was written since the last ``take`` and forget it."""
        data = self.written()
        self.chunks.clear()
        return data

    def run_pending_workers(self) -> None:
        """Complete the queued ``run_in_worker`` calls (when run_workers=False)."""
        pending, self.pending_workers = self.pending_workers, []
        for job in pending:
            job()

    # -- the Transport interface -------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        self.chunks.append(bytes(data))

    def sendfile(self, file: IO[bytes], offset: int = 0, count: int | None = None,
                 header: bytes = b"") -> None:
        if self.closed:
            file.close()
            return
        if header:
            self.write(header)
        self.files.append((file, offset, count))
        file.seek(offset)
        self.chunks.append(file.read() if count is None else file.read(count))
        file.close()  # the transport owns the file, as a real one does

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def set_protocol(self, protocol: Protocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> Protocol:
        assert self.protocol is not None
        return self.protocol

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        """Queued; run by ``run_soon()`` (tests decide when "soon" is)."""
        self.soon.append(callback)

    def run_soon(self) -> None:
        """Run the callbacks queued with ``call_soon_threadsafe``."""
        queued, self.soon = self.soon, []
        for callback in queued:
            if not self.lost:
                callback()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.clock.timers.call_later(delay, callback)

    def run_in_worker(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        def job() -> None:
            try:
                outcome: Outcome[T] = Outcome(func())
            except Exception as exc:
                outcome = Outcome(None, exc)
            if not self.lost:
                callback(outcome)

        if self.run_workers:
            job()
        else:
            self.pending_workers.append(job)


class FakeDatagramTransport(DatagramTransport):
    """An in-memory datagram transport: records ``(data, addr)`` sent."""

    def __init__(self, clock: FakeClock | None = None,
                 sockname: Any = ("127.0.0.1", 9000)) -> None:
        self.clock = clock or FakeClock()
        self.sent: list[tuple[bytes, Any]] = []
        self.closed = False
        self._extra = {"sockname": sockname, "engine": "fake"}

    def connect(self, protocol: DatagramProtocol) -> DatagramProtocol:
        protocol.connection_made(self)
        return protocol

    def sendto(self, data: bytes, addr: Any) -> None:
        if not self.closed:
            self.sent.append((bytes(data), addr))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.clock.timers.call_later(delay, callback)

    def run_in_worker(self, func: Callable[[], T], callback: Callable[[Outcome[T]], None]) -> None:
        try:
            outcome: Outcome[T] = Outcome(func())
        except Exception as exc:
            outcome = Outcome(None, exc)
        callback(outcome)


def split_points(data: bytes, sizes: Iterable[int]) -> list[bytes]:
    """Cut ``data`` into pieces of the given sizes, cycling through them."""
    sizes = list(sizes)
    if not sizes or any(size < 1 for size in sizes):
        raise ValueError("sizes must be positive")
    pieces, start, index = [], 0, 0
    while start < len(data):
        size = sizes[index % len(sizes)]
        pieces.append(data[start : start + size])
        start += size
        index += 1
    return pieces


def random_pieces(data: bytes, seed: int, max_size: int = 64) -> list[bytes]:
    """Cut ``data`` at random points, reproducibly (``random.Random(seed)``)."""
    rng = random.Random(seed)
    pieces, start = [], 0
    while start < len(data):
        size = rng.randint(1, max_size)
        pieces.append(data[start : start + size])
        start += size
    return pieces


def feed_split(transport: FakeTransport, data: bytes, sizes: Iterable[int] = (1,)) -> None:
    """Feed ``data`` to the connected protocol in pieces of ``sizes`` bytes
    (one byte at a time by default), as a slow network would deliver it."""
    for piece in split_points(data, sizes):
        transport.feed(piece)


# -- running a real server in a child process --------------------------------

_URL = re.compile(r"\b(tcp|udp|tls)://(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d+)\b")


class ServerProcess:
    """An ``ionet ... serve`` command running in a child process.

    Tests run servers as real processes: signals, ``fork`` and gevent's
    monkey-patching then behave as they do for users, and a crash in the
    server cannot take the test runner with it.  The server is asked for
    port 0; its "listening" lines tell which ports it got.

    Use as a context manager::

        with ServerProcess(["echo", "serve", "--engine", "epoll"]) as server:
            sock = socket.create_connection(server.address("tcp"))

    On exit the server gets SIGTERM and must stop within ``stop_timeout``
    with exit status 0 (else ``AssertionError``, with its stderr).
    """

    def __init__(self, argv: list[str], ready_lines: int = 1, start_timeout: float = 20.0,
                 stop_timeout: float = 30.0, env: dict[str, str] | None = None,
                 cwd: str | None = None, module: str = "ionet") -> None:
        self.argv = [sys.executable, "-m", module, *argv]
        if "--port" not in argv and any(a == "serve" for a in argv):
            self.argv += ["--port", "0"]
        self.ready_lines = ready_lines
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.urls: list[tuple[str, str, int]] = []
        self.lines: list[str] = []
        self._stderr = tempfile.TemporaryFile()

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop(check=exc_info[0] is None)

    def start(self) -> None:
        """Start the process and wait until it announced its addresses.

        Raises:
            AssertionError: it exited or stayed silent past ``start_timeout``.
        """
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        os.set_blocking(self.proc.stdout.fileno(), False)
        pending = b""
        while len(self.lines) < self.ready_lines:
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"server did not start in {self.start_timeout}s: "
                                     f"{self.argv}\n{self.stderr()}")
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                chunk = self.proc.stdout.read() or b""
                if not chunk and self.proc.poll() is not None:
                    raise AssertionError(f"server exited with {self.proc.returncode}: "
                                         f"{self.argv}\n{self.stderr()}")
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    line = raw.decode(errors="replace")
                    self.lines.append(line)
                    self.urls.extend((m[0], m[1].strip("[]"), int(m[2])) for m in _URL.findall(line))
            elif self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}: "
                                     f"{self.argv}\n{self.stderr()}")

    def address(self, scheme: str = "tcp", index: int = 0) -> tuple[str, int]:
        """The ``(host, port)`` of the ``index``-th announced ``scheme`` address."""
        found = [(host, port) for s, host, port in self.urls if s == scheme]
        if len(found) <= index:
            raise AssertionError(f"server announced no {scheme} address #{index}: {self.lines}")
        host, port = found[index]
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return host, port

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stderr(self) -> str:
        """Everything the server wrote on stderr so far."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit; return its status."""
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, check: bool = True) -> int | None:
        """SIGTERM, then wait; SIGKILL if it hangs.  Checks exit status 0."""
        if self.proc is None:
            return None
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"server ignored SIGTERM for {self.stop_timeout}s\n"
                                     f"{self.stderr()}") from None
            if check and code != 0:
                raise AssertionError(f"server exited with {code}\n{self.stderr()}")
            return code
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._stderr.close()
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0,
               interval: float = 0.02, message: str = "condition") -> None:
    """Poll ``predicate`` until true, with a deadline (instead of sleeping).

    Raises:
        AssertionError: still false after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not reached within {timeout}s")
        time.sleep(interval)
