"""Connections opened by a protocol (FTP's data connections), on every engine."""

from __future__ import annotations

import socket

import pytest

from ionet.core.testing import ServerProcess

TIMEOUT = 15


def readline(sock: socket.socket) -> bytes:
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise AssertionError(f"closed after {bytes(data)!r}")
        data += chunk
    return bytes(data[:-1])


@pytest.fixture
def control(engine: str):  # type: ignore[no-untyped-def]
    server = ServerProcess([engine], module="tests.core.data_channel_server")
    with server:
        with socket.create_connection(server.address("tcp"), timeout=TIMEOUT) as sock:
            yield sock


def recv_all(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def test_passive_listener_serves_one_connection(control: socket.socket) -> None:
    for _ in range(3):
        control.sendall(b"PASV\n")
        reply = readline(control)
        assert reply.startswith(b"PORT "), reply
        port = int(reply.split()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as data:
            assert recv_all(data) == b"payload"
        # the listener is gone after its one connection
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    control.sendall(b"PASV\n")  # the control connection still works
    assert readline(control).startswith(b"PORT ")


def test_active_connection_reaches_the_client_and_reports_back(control: socket.socket) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(TIMEOUT)
        control.sendall(b"PORT %d\n" % listener.getsockname()[1])
        data, _ = listener.accept()
        with data:
            data.settimeout(TIMEOUT)
            assert recv_all(data) == b"payload"
        assert readline(control) == b"SENT"


def test_active_connection_refused_is_reported(control: socket.socket) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    control.sendall(b"PORT %d\n" % port)
    assert readline(control).startswith(b"ERR ")


def test_passive_listener_times_out(control: socket.socket) -> None:
    control.sendall(b"PASV\n")
    assert readline(control).startswith(b"PORT ")
    assert readline(control) == b"ERR TimeoutError"


def test_upload_result_reaches_the_control_connection(control: socket.socket) -> None:
    control.sendall(b"SINK\n")
    port = int(readline(control).split()[1])
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as data:
        data.sendall(b"u" * 1_000_000)
    assert readline(control) == b"GOT 1000000"


def test_closing_a_channel_leaves_the_connection_it_opened_alone(control: socket.socket) -> None:
    """The owner closes the channel just as its connection arrives (FTP's QUIT
    can): the connection is its protocol's by then, and must still end with
    ``connection_lost``.  (On uvloop, cancelling ``connect_accepted_socket``
    at that moment closed the transport without telling the protocol, and
    the server waited for it until the shutdown deadline.)"""
    for _ in range(3):
        control.sendall(b"HANDOFF\n")
        port = int(readline(control).split()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as data:
            assert data.recv(7, socket.MSG_WAITALL) == b"payload"
            data.shutdown(socket.SHUT_WR)
            assert recv_all(data) == b""
        control.settimeout(5)
        assert readline(control) == b"LOST"
