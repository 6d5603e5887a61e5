"""``ionet chat join`` in a pseudo-terminal (pexpect): the prompt_toolkit client."""

from __future__ import annotations

import sys

import pexpect
import pytest

from tests.chat.peers import TcpPeer


@pytest.mark.parametrize("udp", [False, True], ids=["tcp", "udp"])
def test_typing_is_not_garbled_and_ctrl_c_leaves(chat_server, udp: bool) -> None:  # type: ignore[no-untyped-def]
    with chat_server("epoll") as server:
        with TcpPeer(server.tcp) as bob:
            bob.join("bob")
            host, port = server.tcp
            argv = ["-m", "ionet", "chat", "join", "--name", "ann", "--host", host,
                    "--port", str(port)] + (["--udp"] if udp else [])
            child = pexpect.spawn(sys.executable, argv, timeout=15, encoding="utf-8",
                                  dimensions=(24, 100))
            try:
                child.expect("welcome, ann")
                child.expect("ann>")
                bob.expect("joined", name="ann")
                child.send("hel")  # half a line typed...
                bob.say("an interruption")
                child.expect("bob: an interruption")  # ...a message arrives above it...
                child.send("lo bob\r")  # ...and the line is still whole
                assert bob.expect("message", **{"from": "ann"})["text"] == "hello bob"
                child.sendintr()  # Ctrl-C
                child.expect(pexpect.EOF)
            finally:
                child.close()
            bob.expect("left", name="ann")
            assert child.exitstatus == 0
