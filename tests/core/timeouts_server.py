"""A test server for the engine's idle and first-bytes timeouts, and who they spare.

``python -m tests.core.timeouts_server ENGINE`` serves one line protocol on
two endpoints, with ``first_bytes_timeout`` FIRST_BYTES and ``idle_timeout``
IDLE seconds:

    plain   the engine's timeouts apply
    own     ``own_timeouts=True``: the service keeps its own time

    PING        -> "PING"
    LATER       -> "PORT <n>"; the one connection to port n hears nothing
                   from us for LATE seconds, then gets b"late" and is closed
                   (as a download's data connection: the client never sends)
    FLOOD       -> FLOOD_BYTES, then close: a client that does not read makes
                   the engine cut that flush after SHUTDOWN seconds
    LOST        -> "LOST <name>": how the last FLOOD connection ended, the
                   class of the exception connection_lost got, "None" for a
                   clean close, "pending" before it ended (one process: the
                   loop engines and the threads of the blocking ones)
"""

from __future__ import annotations

import sys

from ionet.core.config import Endpoint, Limits
from ionet.core.framing import LineFramer
from ionet.core.protocol import Protocol, Transport
from ionet.core.server import serve

FIRST_BYTES = 0.2
IDLE = 0.4
#: Longer than both timeouts together, so any engine timer would have fired.
LATE = 1.0
SHUTDOWN = 1.0
FLOOD_BYTES = 32 * 1024 * 1024
#: How the last FLOOD connection ended (see LOST).
flood_ends: list[str] = []


class Late(Protocol):
    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        def finish() -> None:
            transport.write(b"late")
            transport.close()

        transport.call_later(LATE, finish)


class Lines(Protocol):
    def __init__(self) -> None:
        self.framer = LineFramer()
        self.flooding = False

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.flooding:
            flood_ends.append("None" if exc is None else type(exc).__name__)

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        for line in self.framer.feed(data):
            if line == b"PING":
                transport.write(b"PING\n")
            elif line == b"LATER":
                host = transport.get_extra_info("sockname")[0]
                channel = transport.open_listener(Late, host, timeout=5)
                transport.write(b"PORT %d\n" % channel.port)
            elif line == b"FLOOD":
                self.flooding = True
                flood_ends.append("pending")
                transport.write(b"x" * FLOOD_BYTES)
                transport.close()
            elif line == b"LOST":
                transport.write(b"LOST %s\n" % (flood_ends or ["-"])[-1].encode())
            else:
                transport.write(b"ERR unknown\n")


def main() -> int:
    engine = sys.argv[1]
    endpoints = [Endpoint("plain", "tcp", "127.0.0.1", 0, Lines),
                 Endpoint("own", "tcp", "127.0.0.1", 0, Lines, own_timeouts=True)]
    limits = Limits(first_bytes_timeout=FIRST_BYTES, idle_timeout=IDLE,
                    shutdown_timeout=SHUTDOWN)
    return serve(endpoints, engine, limits, announce=lambda line: print(line, flush=True))


if __name__ == "__main__":
    raise SystemExit(main())
