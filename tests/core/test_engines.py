"""One conformance suite, every engine: echo over real sockets on 127.0.0.1.

Each test starts ``ionet echo serve --engine E`` as a real process (port 0)
and talks to it as clients would.  The same assertions hold for every engine;
where a model cannot do something by design (the iterative engine serves one
connection at a time), the test says so and skips that engine.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import ssl
import struct
import threading
import time
from pathlib import Path

import psutil
import pytest

from ionet.core.testing import ServerProcess, wait_until

from . import timeouts_server

IO_TIMEOUT = 30.0


def echo_server(engine: str, *extra: str) -> ServerProcess:
    return ServerProcess(["echo", "serve", "--engine", engine, *extra])


def connect(server: ServerProcess, family_host: str | None = None) -> socket.socket:
    sock = socket.create_connection(server.address("tcp"), timeout=IO_TIMEOUT)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def recv_line(sock: socket.socket) -> bytes:
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise AssertionError(f"closed after {bytes(data)!r}")
        data += chunk
    return bytes(data[:-1])


def read_to_eof(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(1 << 16):
        data += chunk
    return bytes(data)


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """True if the server closes (EOF or reset) within ``timeout`` seconds."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


# -- correctness under concurrency -------------------------------------------------


async def _chatty_client(host: str, port: int, index: int, messages: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for n in range(messages):
            payload = f"client {index} message {n} ".encode() * (1 + n % 7)
            writer.write(struct.pack("!I", len(payload)) + payload)
            await writer.drain()
            header = await reader.readexactly(4)
            (size,) = struct.unpack("!I", header)
            assert size == len(payload)
            assert await reader.readexactly(size) == payload
    finally:
        writer.close()
        await writer.wait_closed()


def test_200_concurrent_clients_100_messages_each_intact_and_in_order(engine: str) -> None:
    with echo_server(engine) as server:
        host, port = server.address("tcp")

        async def main() -> None:
            await asyncio.wait_for(
                asyncio.gather(*(_chatty_client(host, port, i, 100) for i in range(200))),
                timeout=90,
            )

        asyncio.run(main())


def test_10_mb_echoed_byte_exact_to_a_slow_reader(engine: str) -> None:
    payload = os.urandom(10 * 1024 * 1024)
    with echo_server(engine) as server:
        # A small receive buffer, set before connecting (set later, it shrinks
        # the window under the sender's feet and TCP backs off for seconds).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.settimeout(IO_TIMEOUT)
        sock.connect(server.address("tcp"))
        received = hashlib.sha256()
        counted = 0

        def writer() -> None:
            view = memoryview(payload)
            for start in range(0, len(payload), 100_000):
                sock.sendall(view[start : start + 100_000])
            sock.shutdown(socket.SHUT_WR)

        thread = threading.Thread(target=writer)
        thread.start()
        reads = 0
        while chunk := sock.recv(8192):  # small reads: the server must buffer and pause
            received.update(chunk)
            counted += len(chunk)
            reads += 1
            if reads % 64 == 0:
                time.sleep(0.001)  # read slowly (this is the client's pace, not a wait)
        thread.join(IO_TIMEOUT)
        sock.close()
        assert counted == len(payload)
        assert received.digest() == hashlib.sha256(payload).digest()


def test_client_vanishing_mid_message_leaves_the_server_serving(engine: str) -> None:
    with echo_server(engine) as server:
        for _ in range(3):
            rude = connect(server)
            rude.sendall(b"x" * 100_000)
            # SO_LINGER 0: close with a TCP reset while data is in flight.
            rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            rude.close()
        polite = connect(server)
        polite.sendall(b"still here")
        assert recv_exactly(polite, 10) == b"still here"
        polite.close()


def test_half_close_gets_every_echo_then_eof(engine: str) -> None:
    with echo_server(engine) as server:
        sock = connect(server)
        sock.sendall(b"a" * 50_000 + b"end")
        sock.shutdown(socket.SHUT_WR)
        assert read_to_eof(sock) == b"a" * 50_000 + b"end"
        sock.close()


# -- limits ------------------------------------------------------------------------------


def test_connection_limit_refuses_cleanly_and_keeps_serving(engine: str) -> None:
    if engine == "iterative":
        pytest.skip("the iterative engine serves one connection at a time: the rest wait")
    with echo_server(engine, "--max-connections", "2") as server:
        first, second = connect(server), connect(server)
        for sock in (first, second):
            sock.sendall(b"ping")
            assert recv_exactly(sock, 4) == b"ping"
        third = connect(server)
        assert closed_by_server(third, 10), "a third connection should be refused"
        third.close()
        first.close()
        # A slot is free again once the server saw the close.
        def fourth_served() -> bool:
            sock = connect(server)
            try:
                sock.sendall(b"pong")
                sock.settimeout(2)
                return sock.recv(4) == b"pong"
            except OSError:
                return False
            finally:
                sock.close()

        wait_until(fourth_served, timeout=10, message="a freed connection slot")
        second.sendall(b"ok")
        assert recv_exactly(second, 2) == b"ok"
        second.close()


def test_idle_timeout_closes_a_quiet_connection(engine: str) -> None:
    with echo_server(engine, "--idle-timeout", "1") as server:
        sock = connect(server)
        sock.sendall(b"hi")
        assert recv_exactly(sock, 2) == b"hi"
        started = time.monotonic()
        assert closed_by_server(sock, 10)
        assert time.monotonic() - started >= 0.8
        sock.close()


def test_first_bytes_timeout_cuts_off_a_silent_client(engine: str) -> None:
    with echo_server(engine, "--first-bytes-timeout", "1", "--idle-timeout", "60") as server:
        silent = connect(server)
        assert closed_by_server(silent, 10)
        silent.close()


def test_own_timeouts_spare_a_silent_connection_and_the_ones_it_opens(engine: str) -> None:
    """A service that keeps its own time (FTP) is not cut by the engine's
    timeouts, and neither is a connection its protocol opens; the same
    silence cuts an ordinary endpoint."""
    with ServerProcess([engine], module="tests.core.timeouts_server", ready_lines=2) as server:
        started = time.monotonic()
        plain = socket.create_connection(server.address("tcp", 0), timeout=IO_TIMEOUT)
        own = socket.create_connection(server.address("tcp", 1), timeout=IO_TIMEOUT)
        with plain, own:
            assert closed_by_server(plain, 10)
            # Past both timeouts (the iterative engine only now serves `own`).
            time.sleep(max(0.0, started + timeouts_server.FIRST_BYTES + timeouts_server.IDLE + 0.2 - time.monotonic()))
            own.settimeout(IO_TIMEOUT)
            own.sendall(b"LATER\n")
            reply = recv_line(own)
            assert reply.startswith(b"PORT "), reply
            port = int(reply.split()[1])
            with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as data:
                assert read_to_eof(data) == b"late"  # silent for LATE seconds, not cut
            own.sendall(b"PING\n")  # and `own` stayed silent as long
            assert recv_line(own) == b"PING"


def test_a_flush_cut_at_close_is_reported_as_an_error(loop_engine: str) -> None:
    # A protocol writes more than the client takes and closes; the client
    # never reads.  The engine cuts the flush after shutdown_timeout, and
    # connection_lost must say so (TimeoutError), not report a clean close:
    # FTP answers 226 or 426 by it.
    with ServerProcess([loop_engine], module="tests.core.timeouts_server", ready_lines=2) as server:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        stalled.settimeout(IO_TIMEOUT)
        stalled.connect(server.address("tcp", 1))  # `own`: no idle timeout to cut it first
        with stalled, socket.create_connection(server.address("tcp", 1), timeout=IO_TIMEOUT) as ask:
            stalled.sendall(b"FLOOD\n")
            ends: list[str] = []

            def flood_ended() -> bool:
                ask.sendall(b"LOST\n")
                ends.append(recv_line(ask).decode().split()[1])
                return ends[-1] not in ("-", "pending")

            wait_until(flood_ended, timeout=timeouts_server.SHUTDOWN + 10, interval=0.1,
                       message="the cut flush reported")
            assert ends[-1] == "TimeoutError"


# -- shutdown -------------------------------------------------------------------------------


def test_sigterm_lets_a_transfer_in_flight_complete(engine: str) -> None:
    payload = os.urandom(8 * 1024 * 1024)
    server = echo_server(engine, "--shutdown-timeout", "30")
    server.start()
    try:
        sock = connect(server)
        sock.sendall(payload[:100_000])
        first = recv_exactly(sock, 100_000)
        server.signal(signal.SIGTERM)

        def writer() -> None:
            sock.sendall(payload[100_000:])
            sock.shutdown(socket.SHUT_WR)

        thread = threading.Thread(target=writer)
        thread.start()
        rest = read_to_eof(sock)
        thread.join(IO_TIMEOUT)
        sock.close()
        assert first + rest == payload
        assert server.wait(IO_TIMEOUT) == 0
    finally:
        server.stop()


def test_sigterm_stops_accepting(engine: str) -> None:
    with echo_server(engine) as server:
        host, port = server.address("tcp")
        server.signal(signal.SIGTERM)
        assert server.wait(IO_TIMEOUT) == 0
        with pytest.raises(OSError):
            socket.create_connection((host, port), timeout=5).close()


# -- other transports -------------------------------------------------------------------------


def test_udp_echo(engine: str) -> None:
    with echo_server(engine) as server:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.settimeout(5)
        with udp:
            for n in range(20):
                udp.sendto(b"datagram %d" % n, server.address("udp"))
                data, addr = udp.recvfrom(100)
                assert data == b"datagram %d" % n
                assert addr[1] == server.address("udp")[1]


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this machine")
def test_ipv6_echo(engine: str) -> None:
    with ServerProcess(["echo", "serve", "--engine", engine, "--host", "::1"]) as server:
        host, port = server.address("tcp")
        assert host == "::1"
        with socket.create_connection((host, port), timeout=IO_TIMEOUT) as sock:
            sock.sendall(b"six")
            assert recv_exactly(sock, 3) == b"six"
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
            udp.settimeout(5)
            udp.sendto(b"six", server.address("udp"))
            assert udp.recvfrom(10)[0] == b"six"


def test_tls_echo(engine: str, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    with echo_server(engine, "--certfile", str(cert), "--keyfile", str(key)) as server:
        context = ssl.create_default_context(cafile=str(cert))
        payload = os.urandom(300_000)
        host, port = server.address("tls")
        for _ in range(2):
            with socket.create_connection((host, port), timeout=IO_TIMEOUT) as raw:
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(b"hello")
                    assert recv_exactly(tls, 5) == b"hello"  # type: ignore[arg-type]
                    tls.sendall(payload)
                    assert recv_exactly(tls, len(payload)) == payload  # type: ignore[arg-type]


def test_tls_handshake_stall_does_not_block_others(engine: str, tls_files: tuple[Path, Path]) -> None:
    if engine == "iterative":
        pytest.skip("the iterative engine serves one connection at a time: the rest wait")
    cert, key = tls_files
    with echo_server(engine, "--certfile", str(cert), "--keyfile", str(key)) as server:
        host, port = server.address("tls")
        staller = socket.create_connection((host, port), timeout=IO_TIMEOUT)  # never handshakes
        context = ssl.create_default_context(cafile=str(cert))
        with socket.create_connection((host, port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"through")
                assert recv_exactly(tls, 7) == b"through"  # type: ignore[arg-type]
        staller.close()


# -- process hygiene --------------------------------------------------------------------------


def _open_close(server: ServerProcess, count: int) -> None:
    for _ in range(count):
        with connect(server) as sock:
            sock.sendall(b"z")
            assert recv_exactly(sock, 1) == b"z"


def test_fork_engine_reaps_every_child() -> None:
    with echo_server("fork") as server:
        _open_close(server, 1000)
        parent = psutil.Process(server.pid)

        def is_zombie(child: psutil.Process) -> bool:
            try:
                return child.status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:  # reaped between listing and asking: not a zombie
                return False

        def no_zombies() -> bool:
            return not [c for c in parent.children() if is_zombie(c)]

        wait_until(no_zombies, timeout=10, message="every child reaped")
        wait_until(lambda: not parent.children(), timeout=10, message="every child gone")


def test_thread_engine_does_not_leak_threads() -> None:
    with echo_server("thread") as server:
        process = psutil.Process(server.pid)
        _open_close(server, 20)
        baseline = process.num_threads()
        _open_close(server, 1000)
        wait_until(lambda: process.num_threads() <= baseline, timeout=10,
                   message=f"thread count back to {baseline}")


def test_workers_share_the_port_and_a_dead_worker_is_replaced(loop_engine: str) -> None:
    with echo_server(loop_engine, "--workers", "2") as server:
        supervisor = psutil.Process(server.pid)
        wait_until(lambda: len(supervisor.children()) == 2, timeout=10, message="two workers")
        _open_close(server, 50)
        victim = supervisor.children()[0]
        victim.kill()
        wait_until(lambda: victim.pid not in {c.pid for c in supervisor.children()}
                   and len(supervisor.children()) == 2, timeout=10, message="worker restarted")
        _open_close(server, 50)
    # leaving the block sent SIGTERM: the supervisor and its workers exited 0
    assert not psutil.pid_exists(victim.pid) or psutil.Process(victim.pid).status() == psutil.STATUS_ZOMBIE
