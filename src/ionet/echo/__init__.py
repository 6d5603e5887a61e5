"""Echo: the smallest service, and the engines' own test subject.

Whatever a client sends comes back, byte for byte, over TCP (and TLS) and
over UDP on the same port number.  Small as it is, it exercises everything an
engine must get right: partial sends, a slow reader (flow control), half-close
(the client shuts its sending side; we finish echoing, then close), timeouts.
"""

from ionet.echo.protocol import EchoDatagramProtocol, EchoProtocol, echo_endpoints

__all__ = ["EchoProtocol", "EchoDatagramProtocol", "echo_endpoints"]
