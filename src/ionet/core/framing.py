"""Message framing over a byte stream: lines, and length-prefixed frames.

TCP delivers a stream of bytes, not messages: one ``send`` by the peer may
arrive in several ``recv`` calls and several sends in one.  Course code often
papers over this with ``time.sleep`` between sends or a ``recv(1024)`` taken as
one message; both break under load.  A framer accumulates bytes and hands out
complete messages, whatever the split.

Both framers are pure (no IO) and capped: a peer that sends a 2 GB "line"
gets :class:`~ionet.core.errors.FrameTooLarge` once the buffer passes the
limit, instead of taking the process's memory.

Like h11's ``ReceiveBuffer``, :class:`LineFramer` remembers how far it has
already searched for the terminator, so a peer trickling one byte at a time
costs O(n) in total, not O(n^2).

A too-long message need not end the conversation: after raising
``FrameTooLarge`` a framer skips the rest of the offending message, so a
service can answer "line too long" and go on reading the next one.  For that,
read messages one at a time, as h11 reads events::

    framer.append(data)
    while True:
        try:
            line = framer.next_line()
        except FrameTooLarge as exc:
            reply_error(exc)      # the framer already skips that line
            continue
        if line is None:          # need more data
            break
        handle(line)

Where an oversized message should end the connection anyway,
``for line in framer.feed(data)`` is the short form.
"""

from __future__ import annotations

import struct

from ionet.core.errors import FrameTooLarge, TruncatedFrame

__all__ = ["LineFramer", "LengthPrefixFramer", "frame", "LENGTH_HEADER"]

#: The length prefix: a 4-byte unsigned int in network byte order.
LENGTH_HEADER = struct.Struct("!I")


class LineFramer:
    """Split a byte stream into lines ending with ``terminator``.

    Args:
        terminator: the line ending, ``b"\\n"`` by default (``b"\\r\\n"`` for
            RFC protocols such as FTP and DICT).
        max_line: the longest line accepted, terminator excluded.
        keep_terminator: return lines with their terminator.
    """

    def __init__(
        self, terminator: bytes = b"\n", max_line: int = 64 * 1024, keep_terminator: bool = False
    ) -> None:
        if not terminator:
            raise ValueError("the line terminator must not be empty")
        if max_line < 1:
            raise ValueError(f"max_line must be positive, not {max_line}")
        self.terminator = terminator
        self.max_line = max_line
        self.keep_terminator = keep_terminator
        self._buffer = bytearray()
        self._start = 0  # where the next line begins in _buffer
        self._searched = 0  # _buffer[_start:_searched] holds no terminator
        self._discarding = False  # skipping the rest of an oversized line

    def append(self, data: bytes) -> None:
        """Add bytes received from the peer."""
        self._buffer += data

    def next_line(self) -> bytes | None:
        """Return the next complete line, or None if more data is needed.

        Raises:
            FrameTooLarge: the next line is longer than ``max_line``.  The
                framer skips that line (up to its terminator, which may not
                have arrived yet) and carries on with the one after it.
        """
        buffer, term = self._buffer, self.terminator
        while True:
            # Resume the search where the last one stopped, backing up enough
            # to catch a terminator split across two appends.
            end = buffer.find(term, max(self._start, self._searched - len(term) + 1))
            if end < 0:
                self._searched = len(buffer)
                self._compact()
                if self._discarding:
                    keep = len(term) - 1  # a terminator may be starting
                    del buffer[self._start : len(buffer) - keep]
                    self._searched = len(buffer)
                    return None
                # At most len(term) - 1 trailing bytes can start a terminator;
                # the rest is line content.
                content = len(buffer) - self._start - (len(term) - 1)
                if content > self.max_line:
                    self._discarding = True
                    raise FrameTooLarge(content, self.max_line, "line")
                return None
            start, stop = self._start, end + len(term)
            self._start = self._searched = stop
            if self._discarding:
                self._discarding = False
                continue
            if end - start > self.max_line:
                raise FrameTooLarge(end - start, self.max_line, "line")
            return bytes(buffer[start : stop if self.keep_terminator else end])

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return every line now complete, in order.

        Raises:
            FrameTooLarge: a line is longer than ``max_line`` (lines before it
                in this call are lost: use ``next_line`` to keep them).
        """
        self.append(data)
        lines = []
        while (line := self.next_line()) is not None:
            lines.append(line)
        return lines

    def _compact(self) -> None:
        """Drop consumed bytes from the front of the buffer (amortised)."""
        if self._start:
            del self._buffer[: self._start]
            self._searched -= self._start
            self._start = 0

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a complete line."""
        return len(self._buffer) - self._start

    def close(self) -> None:
        """The stream ended.

        Raises:
            TruncatedFrame: bytes of an unterminated line were left over.
        """
        if self.pending and not self._discarding:
            raise TruncatedFrame(f"stream ended inside a line ({self.pending} bytes)")


class LengthPrefixFramer:
    """Split a byte stream into frames, each a ``!I`` length then that many bytes.

    Args:
        max_size: the largest frame accepted (payload bytes).  The length is
            checked as soon as the 4-byte header arrives, before any payload
            is buffered.
    """

    def __init__(self, max_size: int = 16 * 1024 * 1024) -> None:
        if max_size < 0:
            raise ValueError(f"max_size must not be negative, not {max_size}")
        self.max_size = max_size
        self._buffer = bytearray()
        self._start = 0
        self._skip = 0  # payload bytes of an oversized frame still to drop

    def append(self, data: bytes) -> None:
        """Add bytes received from the peer."""
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """Return the next complete frame's payload, or None if more data is needed.

        Raises:
            FrameTooLarge: the next frame announces more than ``max_size``
                bytes.  The framer skips its payload as it arrives and carries
                on with the frame after it.
        """
        buffer, header = self._buffer, LENGTH_HEADER.size
        if self._skip:
            dropped = min(self._skip, len(buffer) - self._start)
            self._start += dropped
            self._skip -= dropped
            if self._skip:
                self._compact()
                return None
        if len(buffer) - self._start < header:
            self._compact()
            return None
        (size,) = LENGTH_HEADER.unpack_from(buffer, self._start)
        if size > self.max_size:
            self._start += header
            self._skip = size
            raise FrameTooLarge(size, self.max_size, "frame")
        end = self._start + header + size
        if len(buffer) < end:
            self._compact()
            return None
        payload = bytes(buffer[self._start + header : end])
        self._start = end
        return payload

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data`` and return every frame payload now complete, in order.

        Raises:
            FrameTooLarge: a header announces more than ``max_size`` bytes.
        """
        self.append(data)
        frames = []
        while (payload := self.next_frame()) is not None:
            frames.append(payload)
        return frames

    def _compact(self) -> None:
        if self._start:
            del self._buffer[: self._start]
            self._start = 0

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a complete frame."""
        return len(self._buffer) - self._start

    def close(self) -> None:
        """The stream ended.

        Raises:
            TruncatedFrame: part of a frame was left over.
        """
        if self.pending or self._skip:
            raise TruncatedFrame(f"stream ended inside a frame ({self.pending} bytes held)")


def frame(payload: bytes) -> bytes:
    """Return ``payload`` with its ``!I`` length prefix, ready to send."""
    return LENGTH_HEADER.pack(len(payload)) + payload
