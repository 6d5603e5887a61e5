"""The floor under the engines: how cheap can a Python echo server be?

``ionet bench engines`` compares ionet's engines with each other.  This
script asks a different question: what does the least possible Python epoll
echo server (``RAW_SERVER`` below: one loop, ``recv`` then ``send``, no
protocol object, no buffering, no timeouts, no limits) cost per message, next
to ionet's epoll engine and its asyncio and uvloop engines, on the same
closed-loop load (``ionet.bench.loadgen``, 64-byte messages)?  The answer
bounds what any engine written in Python can reach: the kernel's share of an
echo (a ``recv`` and a ``send`` on loopback) and the interpreter's dispatch
are paid by all of them.

Run: ``python bench/echo_floor.py [--conns 64] [--repeat 3]``.  Servers are
pinned to CPU 0 and the load generator to CPU 1; runs are interleaved
(raw, epoll, asyncio, uvloop, raw, ...), and the table shows medians of the
server's CPU time per message (from ``/proc/PID/task/*/schedstat``) and of
the message rate.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ionet.bench.loadgen import raise_fd_limit, run_echo_load

RAW_SERVER = '''\
import select, socket, sys
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen(4096)
listener.setblocking(False)
poller = select.epoll()
poller.register(listener.fileno(), select.EPOLLIN)
conns = {}
while True:
    for fd, _ in poller.poll():
        if fd == listener.fileno():
            while True:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    break
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conns[conn.fileno()] = conn
                poller.register(conn.fileno(), select.EPOLLIN)
            continue
        conn = conns[fd]
        try:
            data = conn.recv(65536)  # under glibc's mmap threshold (see reactor.py)
        except BlockingIOError:
            continue
        if data:
            conn.send(data)  # 64 bytes: always whole on an idle socket
        else:
            poller.unregister(fd)
            del conns[fd]
            conn.close()
'''

ENGINES = ("epoll", "asyncio", "uvloop")


def server_argv(name: str, port: int, raw_path: Path) -> list[str]:
    if name == "raw":
        return [sys.executable, str(raw_path), str(port)]
    return [sys.executable, "-m", "ionet", "echo", "serve", "--engine", name, "--no-udp",
            "--host", "127.0.0.1", "--port", str(port), "--max-connections", "20000",
            "--idle-timeout", "0", "--first-bytes-timeout", "0"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {deadline:.0f} s")


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far (schedstat: run time in ns)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just ended
    return total


def measure(name: str, conns: int, duration: float, raw_path: Path) -> tuple[float, float]:
    """One run: (messages per second, server CPU µs per message)."""
    port = free_port()
    cpus = sorted(os.sched_getaffinity(0))
    pin = ["taskset", "-c", str(cpus[0])] if len(cpus) > 1 else []
    proc = subprocess.Popen([*pin, *server_argv(name, port, raw_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        marks: dict[str, int] = {}
        load = run_echo_load(("127.0.0.1", port), conns, duration=duration, warmup=1.0,
                             cpus=cpus[1:] or None,
                             on_window=lambda edge: marks.__setitem__(edge, cpu_ns(proc.pid)))
        used_us = (marks["end"] - marks["start"]) / 1000
        return load.messages / load.window, used_us / max(1, load.messages)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conns", type=int, default=64, help="connections (default: 64)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs (default: 3)")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per run")
    args = parser.parse_args(argv)
    raise_fd_limit(args.conns + 1000)
    names = ("raw", *ENGINES)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = Path(tmp) / "raw_echo.py"
        raw_path.write_text(RAW_SERVER)
        for run in range(args.repeat):
            for name in names:
                rate, cost = measure(name, args.conns, args.duration, raw_path)
                results[name].append((rate, cost))
                print(f"run {run + 1}/{args.repeat}: {name:8} {rate:10,.0f} msg/s "
                      f"{cost:6.2f} µs/msg", flush=True)
    floor = statistics.median(cost for _, cost in results["raw"])
    asyncio_cost = statistics.median(cost for _, cost in results["asyncio"])
    print(f"\n{args.conns} connections, median of {args.repeat} interleaved runs\n")
    print("| server | msg/s | server CPU µs/msg | vs raw floor | asyncio's cost / this |")
    print("|---|---:|---:|---:|---:|")
    for name in names:
        rate = statistics.median(r for r, _ in results[name])
        cost = statistics.median(c for _, c in results[name])
        print(f"| {name} | {rate:,.0f} | {cost:.2f} | {cost / floor:.2f}x | "
              f"{asyncio_cost / cost:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
