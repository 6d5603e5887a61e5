"""A test server whose protocol opens data connections, as FTP does.

``python -m tests.core.data_channel_server ENGINE`` serves a line protocol:

    PASV        -> "PORT <n>"; the one connection to port n receives b"payload" and is closed
    PORT <n>    -> connects to 127.0.0.1:n, sends b"payload", closes; then "SENT"
    SINK        -> "PORT <n>"; what the connection to n sends is counted; then "GOT <bytes>"
    HANDOFF     -> "PORT <n>"; the control side closes the channel the moment
                   its connection arrives (FTP may, on QUIT or the next PASV);
                   the connection sends b"payload", closes after the client
                   does, and its end is reported: "LOST"

Failures answer "ERR <reason>".  Results from the data connection reach the
control connection through ``call_soon_threadsafe``, as the contract asks.
"""

from __future__ import annotations

import sys

from ionet.core.config import Endpoint, Limits
from ionet.core.framing import LineFramer
from ionet.core.protocol import DataChannel, Protocol, Transport
from ionet.core.server import serve


class Sender(Protocol):
    def __init__(self, control: Transport, done: bytes) -> None:
        self.control = control
        self.done = done

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        transport.write(b"payload")
        transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.done:
            self.control.call_soon_threadsafe(lambda: self.control.write(self.done))


class HandedOff(Protocol):
    """A data connection whose owner closes its channel as soon as it arrives.

    By then the connection belongs to this protocol: closing the channel
    must not touch it.  It sends its payload, closes when the client does,
    and reports ``connection_lost``.
    """

    def __init__(self, owner: Control) -> None:
        self.owner = owner

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        owner = self.owner
        assert owner.transport is not None and owner.channel is not None
        owner.transport.call_soon_threadsafe(owner.channel.close)
        transport.write(b"payload")

    def connection_lost(self, exc: BaseException | None) -> None:
        control = self.owner.transport
        assert control is not None
        control.call_soon_threadsafe(lambda: control.write(b"LOST\n"))


class Sink(Protocol):
    def __init__(self, control: Transport) -> None:
        self.control = control
        self.count = 0

    def data_received(self, data: bytes) -> None:
        self.count += len(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        count = self.count
        self.control.call_soon_threadsafe(lambda: self.control.write(b"GOT %d\n" % count))


class Control(Protocol):
    def __init__(self) -> None:
        self.framer = LineFramer()
        self.channel: DataChannel | None = None

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        for line in self.framer.feed(data):
            command, _, arg = line.partition(b" ")
            host = transport.get_extra_info("sockname")[0]
            peer = transport.get_extra_info("peername")[0]
            try:
                if command == b"PASV":
                    channel = transport.open_listener(
                        lambda: Sender(transport, b""), host, timeout=2,
                        accept_from=lambda addr: addr[0] == peer, on_error=self.failed)
                    transport.write(b"PORT %d\n" % channel.port)
                elif command == b"HANDOFF":
                    self.channel = transport.open_listener(lambda: HandedOff(self), host, timeout=2,
                                                           on_error=self.failed)
                    transport.write(b"PORT %d\n" % self.channel.port)
                elif command == b"SINK":
                    channel = transport.open_listener(lambda: Sink(transport), host, timeout=2,
                                                      on_error=self.failed)
                    transport.write(b"PORT %d\n" % channel.port)
                elif command == b"PORT":
                    transport.open_connection(lambda: Sender(transport, b"SENT\n"), peer,
                                              int(arg), timeout=5, on_error=self.failed)
                else:
                    transport.write(b"ERR unknown\n")
            except OSError as exc:
                transport.write(b"ERR %s\n" % str(exc).encode())

    def failed(self, exc: BaseException) -> None:
        assert self.transport is not None
        self.transport.write(b"ERR %s\n" % type(exc).__name__.encode())


def main() -> int:
    engine = sys.argv[1]
    endpoints = [Endpoint("data", "tcp", "127.0.0.1", 0, Control)]
    return serve(endpoints, engine, Limits(), announce=lambda line: print(line, flush=True))


if __name__ == "__main__":
    raise SystemExit(main())
