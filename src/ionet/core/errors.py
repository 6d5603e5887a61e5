"""The exceptions ionet raises, named by whose fault they are.

Following h11, an error is either the *peer's* (it sent something we cannot
accept: :class:`PeerError`) or *ours* (we were asked to do something
impossible: :class:`LocalError`).  A peer error closes one connection with a
clear reply, never the server.  :class:`UserError` is for the person at the
command line: the CLI prints its message as one line and exits non-zero.
"""

from __future__ import annotations


class IonetError(Exception):
    """Base class of every ionet exception."""


class UserError(IonetError):
    """A mistake the user can fix: a bad flag, a port in use, a missing extra."""


class ProtocolError(IonetError):
    """A conversation cannot go on as it is.

    ``status_hint`` suggests a reply code for the service to send before it
    closes (an HTTP status, an FTP reply code); services map it as they see fit.
    """

    def __init__(self, message: str, status_hint: int | None = None) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class PeerError(ProtocolError):
    """The peer broke the protocol: malformed, truncated or oversized input."""


class LocalError(ProtocolError):
    """We broke the protocol: a bug, or an action the state does not allow."""


class FrameTooLarge(PeerError):
    """A message (line, frame) is larger than the configured maximum."""

    def __init__(self, size: int, limit: int, what: str = "message") -> None:
        super().__init__(f"{what} too long: {size} bytes, the limit is {limit}", status_hint=413)
        self.size = size
        self.limit = limit


class TruncatedFrame(PeerError):
    """The stream ended in the middle of a message."""
