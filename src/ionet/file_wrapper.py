"""``wsgi.file_wrapper`` (PEP 3333), shared by both of ionet's WSGI servers.

Two places in ionet hand a WSGI app its environ: the HTTP server's gateway
(``ionet.http.wsgi``) and the web framework's side of the HTTPServer 3.0
split (``ionet.web.split``).  Both offer the same ``wsgi.file_wrapper``, so
it lives here, outside both packages: ``ionet.web`` must not import
``ionet.http`` (WebFrame runs under any WSGI server), and this module imports
nothing from either.

Iterating a :class:`FileWrapper` reads the file in blocks, which is all the
split protocol does with it; the HTTP gateway recognises the class and sends a
regular file with ``transport.sendfile`` (zero-copy) instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

__all__ = ["FileWrapper"]


class FileWrapper:
    """``wsgi.file_wrapper``: an app returns ``FileWrapper(open(path, "rb"))``.

    Iterating reads ``blksize`` bytes at a time until the file ends; ``close``
    (present when the file has one) closes the file, as PEP 3333 asks.
    """

    def __init__(self, filelike: IO[bytes], blksize: int = 64 * 1024) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration
