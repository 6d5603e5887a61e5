"""Chat fixtures: a server process with the chat's ports, and its addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from ionet.core.testing import ServerProcess

#: The engines the chat serves on (fork needs --redis; iterative is refused).
CHAT_ENGINES = ("thread", "select", "poll", "epoll", "asyncio", "uvloop", "gevent")


class ChatServer(ServerProcess):
    """``ionet chat serve`` on free ports: TCP+UDP, and the HTTP door."""

    def __init__(self, data_dir: Path, engine: str = "epoll", *extra: str, **kwargs: object) -> None:
        super().__init__(["chat", "serve", "--engine", engine, "--http-port", "0",
                          "--data-dir", str(data_dir), *extra], ready_lines=2, **kwargs)  # type: ignore[arg-type]
        self.data_dir = data_dir

    @property
    def tcp(self) -> tuple[str, int]:
        return self.address("tcp", 0)

    @property
    def udp(self) -> tuple[str, int]:
        return self.address("udp", 0)

    @property
    def http(self) -> tuple[str, int]:
        return self.address("tcp", 1)


@pytest.fixture
def chat_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Build (not start) chat servers in a fresh data folder: ``chat_server(engine, *flags)``."""
    def make(engine: str = "epoll", *extra: str, **kwargs: object) -> ChatServer:
        return ChatServer(tmp_path, engine, *extra, **kwargs)

    return make
