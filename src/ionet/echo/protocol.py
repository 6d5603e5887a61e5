"""The echo protocols (RFC 862), on the core contract."""

from __future__ import annotations

import ssl
from typing import Any

from ionet.core.config import Endpoint
from ionet.core.protocol import DatagramProtocol, Protocol

DEFAULT_PORT = 7000


class EchoProtocol(Protocol):
    """Send back every byte received, in order.

    Backpressure comes from the base class: when the peer does not read its
    echoes, our outgoing buffer fills past the high-water mark, and reading
    pauses until it drains.  So a client can push 10 MB through without the
    server holding more than ~64 KiB of it.
    """

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def eof_received(self) -> bool | None:
        # The client is done sending: returning None lets the transport
        # flush the remaining echoes and then close, which is what a client
        # that half-closed is waiting for.
        return None


class EchoDatagramProtocol(DatagramProtocol):
    """Send every datagram back to where it came from."""

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)


def echo_endpoints(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, ssl_context: ssl.SSLContext | None = None,
    udp: bool = True,
) -> list[Endpoint]:
    """The echo service's endpoints: TCP (TLS with a context) and UDP, one port number."""
    tcp = Endpoint("echo", "tcp", host, port, EchoProtocol, ssl=ssl_context)
    endpoints = [tcp]
    if udp:
        endpoints.append(Endpoint("echo", "udp", host, port, EchoDatagramProtocol, same_port_as=tcp))
    return endpoints
