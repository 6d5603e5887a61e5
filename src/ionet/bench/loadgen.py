"""A closed-loop TCP echo load generator over epoll, and idle-connection holders.

Closed loop: every connection sends one message, waits for the whole echo,
records the round trip (``time.perf_counter_ns``), and sends the next one at
once.  So throughput = connections / latency, and a server that stalls shows
up as a drop in both, never as an unbounded queue on the client side.

Why epoll, and not asyncio or threads: the load generator must cost less per
message than the server it measures, or the benchmark measures the load
generator.  An asyncio client pays for a future, a task switch and a stream
buffer per message; this loop pays one ``epoll.poll`` per batch of ready
sockets, then one ``recv`` and one ``send`` per message, with every piece of
per-connection state in flat lists indexed by file descriptor.  Each load
process reports the CPU it used during the measured window: if it is near
100% of one core while the server is below 100%, the load generator was the
bottleneck.  ``procs > 1`` spreads the connections over several processes
(useful only with spare cores).

Timing: the load processes connect first and wait for one echo on every
connection (so a server that forks or starts a thread per connection has
done so for all of them), then all start sending together at a moment the
parent chooses (``time.monotonic``, which is one clock for every
process on Linux); messages that complete during the first ``warmup``
seconds are not counted, then the next ``duration`` seconds are, and the load
goes on for a short tail (``TAIL``) so that it is still running when the
window closes.  The parent can call back at the start and end of that window
(``on_window``), to sample the server's CPU over exactly the same interval.

Linux only (epoll, ``sched_setaffinity``, the fork start method).
"""

from __future__ import annotations

import errno
import gc
import multiprocessing
import os
import resource
import select
import socket
import time
from array import array
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

__all__ = [
    "LoadResult",
    "connect_many",
    "first_echo",
    "make_message",
    "percentile",
    "raise_fd_limit",
    "run_echo_load",
]

#: New connections started at once before waiting for them to complete, so a
#: server's listen backlog (often 128; ours 4096) is not overrun.
CONNECT_BATCH = 256
#: Seconds a batch of connects may take before the stragglers count as failed.
CONNECT_TIMEOUT = 10.0
#: Seconds every connection gets to answer its first message before the
#: clock starts (1000 connections to a fork or thread server need a while:
#: the server forks or starts a thread for each before it echoes anything,
#: while connect() itself completes at once, in the kernel's backlog).
FIRST_ECHO_TIMEOUT = 60.0
#: Seconds the parent waits for the load processes to connect and warm up.
READY_TIMEOUT = CONNECT_TIMEOUT * 40 + FIRST_ECHO_TIMEOUT

#: Seconds the load goes on after the measured window (not counted), so that
#: the parent samples the server at the window's end while it is still busy
#: (a fork server's child exits the moment its connection closes).
TAIL = 0.25


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``wanted`` (at most the
    hard limit); children started afterwards inherit it.  Returns the new
    soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def make_message(size: int) -> bytes:
    """``size`` printable bytes ending in a newline (line-framed servers see
    one line).  Raises ValueError below 1 byte."""
    if size < 1:
        raise ValueError("a message needs at least one byte")
    body = bytes(ord("a") + i % 26 for i in range(size - 1))
    return body + b"\n"


def connect_many(address: tuple[str, int], count: int, batch: int = CONNECT_BATCH,
                 timeout: float = CONNECT_TIMEOUT) -> tuple[list[socket.socket], int]:
    """Open ``count`` non-blocking TCP connections to ``address``.

    Connects ``batch`` at a time and waits for each batch to complete before
    starting the next.  Every socket gets TCP_NODELAY.

    Returns:
        The connected sockets and the number of connects that failed or
        timed out (those sockets are closed, not returned).
    """
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    connected: list[socket.socket] = []
    failed = 0
    poller = select.epoll()
    try:
        while len(connected) + failed < count:
            pending: dict[int, socket.socket] = {}
            for _ in range(min(batch, count - len(connected) - failed)):
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                code = sock.connect_ex(address)
                if code == 0:
                    connected.append(sock)
                elif code in (errno.EINPROGRESS, errno.EAGAIN):
                    pending[sock.fileno()] = sock
                    poller.register(sock.fileno(), select.EPOLLOUT)
                else:
                    sock.close()
                    failed += 1
            deadline = time.monotonic() + timeout
            while pending and time.monotonic() < deadline:
                for fd, _mask in poller.poll(max(0.0, deadline - time.monotonic())):
                    sock = pending.pop(fd)
                    poller.unregister(fd)
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        connected.append(sock)
                    else:
                        sock.close()
                        failed += 1
            for fd, sock in pending.items():
                poller.unregister(fd)
                sock.close()
                failed += 1
    except BaseException:
        for sock in connected:
            sock.close()
        raise
    finally:
        poller.close()
    return connected, failed


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending sequence (``fraction`` in 0..1).

    Raises:
        ValueError: the sequence is empty.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


@dataclass
class LoadResult:
    """What one closed-loop run measured, over all load processes.

    Attributes:
        connections: connections asked for.
        connected: connections that connected.
        window: seconds measured (after the warm-up).
        messages: echoes completed inside the window.
        latencies_ns: the round trip of every one of them, ascending.
        per_connection: echoes completed in the window, per connection.
        errors: counts by kind: "connect" (failed to connect), "no first
            echo" (connected, but the first message, sent before the clock
            started, was not echoed in time), "closed" (the server closed
            or reset the connection), "mismatch" (the echo was
            not what was sent), "send" (a send failed or was partial).
        load_cpu: CPU seconds the load processes used during the window.
    """

    connections: int
    connected: int
    window: float
    messages: int
    latencies_ns: array[int]
    per_connection: list[int]
    errors: dict[str, int] = field(default_factory=dict)
    load_cpu: float = 0.0

    @property
    def rate(self) -> float:
        """Echoes per second during the window."""
        return self.messages / self.window if self.window > 0 else 0.0

    def latency_ms(self, fraction: float) -> float | None:
        """A latency percentile in milliseconds, or None with no samples."""
        if not self.latencies_ns:
            return None
        return percentile(self.latencies_ns, fraction) / 1e6

    @property
    def starved(self) -> int:
        """Connections (of those connected) that completed no echo in the window."""
        return sum(1 for n in self.per_connection if n == 0)

    @property
    def load_cpu_percent(self) -> float:
        """CPU of the load processes as a percentage of one core."""
        return 100.0 * self.load_cpu / self.window if self.window > 0 else 0.0


# -- the closed loop, inside one load process ---------------------------------


def _closed_loop(socks: list[socket.socket], message: bytes, start_ns: int,
                 warmup_ns: int, duration_ns: int, tail_ns: int = 0) -> dict[str, Any]:
    """Drive ``socks`` from ``start_ns`` (perf_counter_ns) until the window
    ends, and on for ``tail_ns`` more (not counted).

    Returns a picklable dict: counts, latencies (bytes of an array('q')),
    per-connection counts, errors, CPU seconds used during the window.
    """
    size = len(message)
    bufsize = max(4096, size)
    window_start = start_ns + warmup_ns
    window_end = window_start + duration_ns
    top = max((s.fileno() for s in socks), default=0) + 1
    by_fd: list[socket.socket | None] = [None] * top
    sent_at = [0] * top
    got = [0] * top
    counts = [0] * top
    partial: dict[int, bytearray] = {}
    latencies = array("q")
    record = latencies.append
    errors = {"closed": 0, "mismatch": 0, "send": 0}
    poller = select.epoll()
    for sock in socks:
        by_fd[sock.fileno()] = sock
        poller.register(sock.fileno(), select.EPOLLIN)
    clock = time.perf_counter_ns

    def drop(fd: int, kind: str) -> None:
        errors[kind] += 1
        poller.unregister(fd)
        by_fd[fd] = None

    delay = (start_ns - clock()) / 1e9
    if delay > 0:
        time.sleep(delay)
    for sock in socks:
        fd = sock.fileno()
        sent_at[fd] = clock()
        try:
            sock.send(message)
        except OSError:
            drop(fd, "send")
    cpu_start: float | None = None
    cpu_end: float | None = None
    stop_at = window_end + tail_ns
    poll = poller.poll
    now = clock()
    while now < stop_at:
        if cpu_start is None and now >= window_start:
            cpu_start = time.process_time()
        if cpu_end is None and now >= window_end:
            cpu_end = time.process_time()
        for fd, _mask in poll(min(0.1, max(0, stop_at - now) / 1e9)):
            conn = by_fd[fd]
            if conn is None:
                continue
            try:
                data = conn.recv(bufsize)
            except BlockingIOError:
                continue
            except OSError:
                drop(fd, "closed")
                continue
            if not data:
                drop(fd, "closed")
                continue
            n = got[fd] + len(data)
            if n < size:
                got[fd] = n
                partial.setdefault(fd, bytearray()).extend(data)
                continue
            now = clock()
            if n == size and got[fd] == 0:
                if data != message:
                    errors["mismatch"] += 1
            else:
                whole = partial.pop(fd, bytearray()) + data
                if whole != message:
                    errors["mismatch"] += 1
            got[fd] = 0
            if window_start <= now < window_end:
                record(now - sent_at[fd])
                counts[fd] += 1
            sent_at[fd] = now
            try:
                if conn.send(message) != size:
                    drop(fd, "send")
            except OSError:
                drop(fd, "send")
        now = clock()
    if cpu_end is None:
        cpu_end = time.process_time()
    cpu = cpu_end - cpu_start if cpu_start is not None else 0.0
    poller.close()
    return {
        "latencies": latencies.tobytes(),
        "per_connection": [counts[s.fileno()] for s in socks],
        "errors": errors,
        "cpu": cpu,
    }


def first_echo(socks: list[socket.socket], message: bytes, timeout: float) -> int:
    """Send ``message`` once on every socket and wait for each echo.

    Run before the clock starts, so that a server that sets up each
    connection slowly (a fork or a thread per connection) has done so for
    all of them: the measurement is then of the steady state, not the ramp.
    Returns how many connections did not echo within ``timeout`` seconds.
    """
    poller = select.epoll()
    waiting: dict[int, tuple[socket.socket, bytearray]] = {}
    try:
        for sock in socks:
            try:
                sock.send(message)
            except OSError:
                continue
            waiting[sock.fileno()] = (sock, bytearray())
            poller.register(sock.fileno(), select.EPOLLIN)
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            for fd, _mask in poller.poll(max(0.0, min(1.0, deadline - time.monotonic()))):
                sock, got = waiting[fd]
                try:
                    data = sock.recv(max(4096, len(message)))
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                got += data
                if not data or len(got) >= len(message):
                    del waiting[fd]
                    poller.unregister(fd)
    finally:
        poller.close()
    return len(waiting)


def _load_process(pipe: Connection, address: tuple[str, int], count: int, message: bytes,
                  warmup: float, duration: float, cpus: Collection[int] | None) -> None:
    """One load process: connect, say ready, wait for the start time, run."""
    gc.disable()  # a collection pause would show up as server latency
    if cpus:
        os.sched_setaffinity(0, cpus)
    raise_fd_limit(count + 64)
    socks, failed = connect_many(address, count)
    try:
        silent = first_echo(socks, message, FIRST_ECHO_TIMEOUT)
        pipe.send(("ready", len(socks), failed, silent))
        start_monotonic = pipe.recv()
        # perf_counter and monotonic are both CLOCK_MONOTONIC on Linux; the
        # offset keeps this correct wherever they differ.
        offset = time.perf_counter_ns() - time.monotonic_ns()
        start_ns = int(start_monotonic * 1e9) + offset
        result = _closed_loop(socks, message, start_ns, int(warmup * 1e9), int(duration * 1e9),
                              int(TAIL * 1e9))
        result["connected"] = len(socks)
        result["connect_failed"] = failed
        pipe.send(("done", result))
    finally:
        for sock in socks:
            sock.close()
        pipe.close()


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts) if base or i < extra]


def run_echo_load(
    address: tuple[str, int],
    connections: int,
    duration: float = 5.0,
    warmup: float = 1.0,
    message_size: int = 64,
    procs: int = 1,
    cpus: Collection[int] | None = None,
    on_window: Callable[[str], None] | None = None,
) -> LoadResult:
    """Run a closed-loop echo load against ``address`` and measure it.

    Args:
        address: the echo server's (host, port).
        connections: concurrent connections, spread over the load processes.
        duration: seconds measured, after ``warmup`` seconds not measured.
        message_size: bytes per message (64 by default).
        procs: load processes (forked; each runs its own epoll loop).
        cpus: CPUs the load processes are pinned to (None: not pinned).
        on_window: called with "start" and "end" at the edges of the
            measured window, in this process (to sample the server).

    Raises:
        RuntimeError: a load process died or did not connect in time.
    """
    if connections < 1 or procs < 1:
        raise ValueError("need at least one connection and one process")
    message = make_message(message_size)
    context = multiprocessing.get_context("fork")
    workers: list[tuple[Any, Connection]] = []
    try:
        for share in _split(connections, procs):
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=_load_process, name="ionet-loadgen", daemon=True,
                args=(child_end, address, share, message, warmup, duration, cpus),
            )
            process.start()
            child_end.close()
            workers.append((process, parent_end))
        connected = failed = silent = 0
        for process, pipe in workers:
            if not pipe.poll(READY_TIMEOUT):
                raise RuntimeError(f"a load process did not connect within {READY_TIMEOUT:.0f}s")
            _, ok, bad, quiet = _recv(pipe)
            connected += ok
            failed += bad
            silent += quiet
        start = time.monotonic() + 0.05
        for _process, pipe in workers:
            pipe.send(start)
        if on_window is not None:
            _sleep_until(start + warmup)
            on_window("start")
            _sleep_until(start + warmup + duration)
            on_window("end")
        latencies = array("q")
        per_connection: list[int] = []
        errors = {"connect": failed, "no first echo": silent, "closed": 0, "mismatch": 0,
                  "send": 0}
        cpu = 0.0
        for _process, pipe in workers:
            if not pipe.poll(warmup + duration + TAIL + 30.0):
                raise RuntimeError("a load process did not report its results")
            _, result = _recv(pipe)
            latencies.frombytes(result["latencies"])
            per_connection.extend(result["per_connection"])
            for kind, n in result["errors"].items():
                errors[kind] += n
            cpu += result["cpu"]
    finally:
        for process, pipe in workers:
            pipe.close()
            process.join(10.0)
            if process.is_alive():
                process.kill()
                process.join()
            process.close()
    return LoadResult(
        connections=connections,
        connected=connected,
        window=duration,
        messages=len(latencies),
        latencies_ns=array("q", sorted(latencies)),
        per_connection=per_connection,
        errors=errors,
        load_cpu=cpu,
    )


def _recv(pipe: Connection) -> Any:
    try:
        return pipe.recv()
    except EOFError:
        raise RuntimeError("a load process died (see its traceback above)") from None


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)
