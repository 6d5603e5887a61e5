"""The asyncio and uvloop engines read every connection into one shared buffer.

The connections (``aio_connection.py``) are ``asyncio.BufferedProtocol``
objects, so that a read costs a ``recv_into`` and not a 256 KiB allocation
(issue 2: at 1,000 connections glibc served that with ``mmap`` and
``munmap``, per message).
The buffer is shared by every connection of the engine, so what a protocol
is given must be its own copy: these tests keep every chunk, let other
connections read over the buffer, and check the chunks afterwards, through
the loop's real transports (plain and TLS) on socketpairs.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from ionet.core.config import Limits
from ionet.core.engines import get_engine
from ionet.core.engines.aio import AioConnection, AsyncioEngine
from ionet.core.protocol import Protocol

ROUNDS = 20
CONNECTIONS = 3
TIMEOUT = 10.0


class Keeper(Protocol):
    """Keeps every chunk it is given, as a protocol that buffers might."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.lost = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set()


def _engine(name: str) -> AsyncioEngine:
    engine = get_engine(name)(Limits(idle_timeout=None, first_bytes_timeout=None))
    assert isinstance(engine, AsyncioEngine)
    return engine


def _expected(index: int) -> bytes:
    return b"".join(bytes([65 + index]) * (n + 1) for n in range(ROUNDS))


async def _send_interleaved(clients: list[Callable[[bytes], object]],
                            keepers: list[Keeper]) -> None:
    """Each client sends a run of its own letter per round; every connection
    reads its run before the next round, so reads alternate over the buffer."""
    for n in range(ROUNDS):
        for index, send in enumerate(clients):
            await asyncio.wait_for(asyncio.to_thread(send, bytes([65 + index]) * (n + 1)), TIMEOUT)
        async with asyncio.timeout(TIMEOUT):
            while any(len(b"".join(k.chunks)) < sum(range(1, n + 2)) for k in keepers):
                await asyncio.sleep(0.001)


def _run_and_check(engine: AsyncioEngine, main: Callable[[], Coroutine[Any, Any, None]],
                   pairs: list[tuple[socket.socket, socket.socket]], keepers: list[Keeper]) -> None:
    """Run ``main`` on the engine's loop, close the socket pairs, and check that
    every protocol kept exactly its own bytes, as ``bytes`` objects."""
    loop = engine.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        for server_side, client in pairs:
            server_side.close()
            client.close()
    for index, keeper in enumerate(keepers):
        assert all(type(chunk) is bytes for chunk in keeper.chunks)
        assert b"".join(keeper.chunks) == _expected(index)


@pytest.mark.parametrize("name", ["asyncio", "uvloop"])
def test_chunks_a_protocol_keeps_survive_other_connections_reads(name: str) -> None:
    engine = _engine(name)
    keepers = [Keeper() for _ in range(CONNECTIONS)]
    pairs = [socket.socketpair() for _ in range(CONNECTIONS)]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for keeper, (server_side, _) in zip(keepers, pairs):
            await loop.connect_accepted_socket(
                lambda k=keeper: AioConnection(engine, lambda: k, False, None), server_side)
        await _send_interleaved([client.sendall for _, client in pairs], keepers)
        for _, client in pairs:
            client.close()
        async with asyncio.timeout(TIMEOUT):
            for keeper in keepers:
                await keeper.lost.wait()

    _run_and_check(engine, main, pairs, keepers)
    assert not engine.connections


@pytest.mark.parametrize("name", ["asyncio", "uvloop"])
def test_tls_chunks_a_protocol_keeps_survive_other_connections_reads(
        name: str, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    engine = _engine(name)
    keepers = [Keeper() for _ in range(CONNECTIONS)]
    pairs = [socket.socketpair() for _ in range(CONNECTIONS)]
    clients: list[ssl.SSLSocket] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for keeper, (server_side, client_side) in zip(keepers, pairs):
            client_side.settimeout(TIMEOUT)
            wrapped = client_ctx.wrap_socket(client_side, server_hostname="localhost",
                                             do_handshake_on_connect=False)
            handshake = asyncio.to_thread(wrapped.do_handshake)
            accepted = loop.connect_accepted_socket(
                lambda k=keeper: AioConnection(engine, lambda: k, True, None), server_side,
                ssl=server_ctx, ssl_handshake_timeout=TIMEOUT)
            await asyncio.wait_for(asyncio.gather(handshake, accepted), TIMEOUT)
            clients.append(wrapped)
        await _send_interleaved([client.sendall for client in clients], keepers)
        for client in clients:
            client.close()
        async with asyncio.timeout(TIMEOUT):
            for keeper in keepers:
                await keeper.lost.wait()

    _run_and_check(engine, main, pairs, keepers)
