"""Static files: safe path resolution, conditional and range requests, sendfile.

Path resolution is where file servers get broken into, so it is done in one
place (:meth:`StaticFiles.resolve`) and refuses rather than repairs:

* the path is percent-decoded once; an encoded ``/`` or ``\\`` (``%2f``,
  ``%5c``) or a NUL byte anywhere means 404, since no honest link needs them
  and they are the classic way to smuggle ``..`` past a check done before
  decoding;
* a ``..`` segment means 404 (browsers and curl remove dot segments before
  sending, so only a hand-made request has one);
* the path is walked from the root one component at a time with ``lstat``;
  a symbolic link is resolved with ``realpath`` and must land inside the
  root (``commonpath`` logic), else 404.  Links inside the tree work.

Answers: ``index.html`` for a directory (after a redirect that adds the
trailing slash, so relative links resolve), an optional HTML listing with
every name escaped, ``Content-Type`` by extension (``charset=utf-8`` for
text), ``ETag`` and ``Last-Modified`` with 304 for ``If-None-Match`` and
``If-Modified-Since``, single ``Range`` requests (206, or 416 when
unsatisfiable; several ranges are answered with the whole file, as RFC 9110
allows), and ``Accept-Ranges: bytes``.

Speed: a file up to ``small_file`` bytes is read once and kept in a small
cache together with its prebuilt headers; every request still ``lstat``\\ s
the path and compares inode, size and mtime, so a changed file is never
served stale.  Larger files are never read by Python: their bytes go from
the page cache to the socket with ``transport.sendfile``.
"""

from __future__ import annotations

import html
import logging
import mimetypes
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import quote, unquote_to_bytes

from ionet.http.status import http_date, parse_http_date

if TYPE_CHECKING:
    from ionet.http.parser import Request
    from ionet.http.protocol import HttpProtocol

__all__ = ["StaticFiles", "content_type", "parse_range"]

log = logging.getLogger("ionet.http.static")

#: Files up to this size are read into memory and cached; larger ones go out
#: with sendfile.
SMALL_FILE = 64 * 1024
#: The most bytes of file contents the cache holds.
CACHE_BYTES = 32 * 1024 * 1024
#: The most entries the cache holds (metadata of large files included).
CACHE_ENTRIES = 4096

_TEXT_TYPES = frozenset({"application/javascript", "application/json", "application/xml",
                         "image/svg+xml", "application/xhtml+xml"})
_MIME = mimetypes.MimeTypes()  # the built-in table only: the same on every machine
_MIME.add_type("text/javascript", ".mjs")
_MIME.add_type("application/wasm", ".wasm")

_ALLOW = b"GET, HEAD, OPTIONS"
UNSATISFIABLE = (-1, -1)
#: Request headers that can change the answer for a file (304, 206, 416).
_CONDITIONS = frozenset({b"if-none-match", b"if-modified-since", b"range", b"if-range"})
_FS_ENCODING = sys.getfilesystemencoding()


def content_type(name: str) -> str:
    """The ``Content-Type`` for a file name, with ``charset=utf-8`` for text."""
    guessed, encoding = _MIME.guess_type(name, strict=False)
    if guessed is None or encoding is not None:  # .gz and friends: raw bytes
        return "application/octet-stream"
    if guessed.startswith("text/") or guessed in _TEXT_TYPES:
        return f"{guessed}; charset=utf-8"
    return guessed


def parse_range(value: bytes, size: int) -> tuple[int, int] | None:
    """Parse a ``Range`` header for a body of ``size`` bytes.

    Returns:
        ``(first, last)`` byte positions (inclusive) for one satisfiable
        range; :data:`UNSATISFIABLE` for a valid range beyond the end (416);
        None when the header is to be ignored (malformed, another unit, or
        several ranges: the whole body is then sent with 200).
    """
    unit, eq, spec = value.partition(b"=")
    if not eq or unit.strip().lower() != b"bytes" or b"," in spec:
        return None
    first_s, dash, last_s = spec.strip().partition(b"-")
    if not dash:
        return None
    first_s, last_s = first_s.strip(), last_s.strip()
    if not first_s:  # a suffix: the last N bytes
        if not last_s.isdigit():
            return None
        count = int(last_s)
        if count == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - count), size - 1
    if not first_s.isdigit() or (last_s and not last_s.isdigit()):
        return None
    first = int(first_s)
    if last_s and int(last_s) < first:
        return None  # invalid: ignored (RFC 9110 section 14.1.1)
    if first >= size:
        return UNSATISFIABLE
    last = int(last_s) if last_s else size - 1
    return first, min(last, size - 1)


class _FileInfo(NamedTuple):
    """What we know about one file version, cached by path."""

    key: tuple[int, int, int, int]  # device, inode, size, mtime_ns
    headers: bytes  # Content-Type, ETag, Last-Modified, Accept-Ranges lines
    etag: bytes
    mtime: int  # whole seconds, as Last-Modified says it
    body: bytes | None  # the contents, for small files


def _has_conditions(request: Request) -> bool:
    """Whether the request has a header that may change a file's answer."""
    for name, _ in request.headers:
        if name in _CONDITIONS:
            return True
    return False


def _etag_matches(header: bytes, etag: bytes) -> bool:
    """``If-None-Match`` uses the weak comparison: ``W/"x"`` equals ``"x"``."""
    if header.strip() == b"*":
        return True
    for candidate in header.split(b","):
        candidate = candidate.strip()
        if candidate.startswith(b"W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


class StaticFiles:
    """Serve the files under ``root``; a handler for :class:`~ionet.http.protocol.HttpProtocol`.

    Args:
        root: the folder to serve.
        prefix: the URL path it is served under (``"/"``, or ``"/static/"``
            when mounted beside an app); requests must start with it.
        listing: answer a directory without ``index.html`` with a listing.
        index: the file served for a directory.
        small_file: files up to this size are cached in memory.
    """

    allow = _ALLOW

    def __init__(self, root: str | Path, *, prefix: str = "/", listing: bool = False,
                 index: str = "index.html", small_file: int = SMALL_FILE) -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise NotADirectoryError(f"not a directory: {root}")
        self.root = real.rstrip("/") or "/"
        self._root_slash = self.root if self.root == "/" else self.root + "/"
        self._root_base = self.root.rstrip("/")  # "" for "/": paths are base + "/name"
        if not prefix.startswith("/") or not prefix.endswith("/"):
            raise ValueError(f"the prefix must start and end with '/', not {prefix!r}")
        self.prefix = prefix.encode()
        self.listing = listing
        self.index = index
        self.small_file = small_file
        self._cache: dict[str, _FileInfo] = {}
        self._cache_bytes = 0

    # -- resolving paths -----------------------------------------------------

    def _inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self._root_slash)

    def resolve(self, url_path: bytes) -> tuple[str, os.stat_result] | None:
        """Map a URL path (below the prefix, still percent-encoded) to a file.

        Returns:
            ``(filesystem path, stat)`` of a file or directory inside the
            root, or None (answer 404) for anything missing or unsafe.
        """
        if b"%" in url_path:
            lowered = url_path.lower()
            if b"%2f" in lowered or b"%5c" in lowered or b"%00" in lowered:
                return None
            url_path = unquote_to_bytes(url_path)
        if b"\x00" in url_path or b"\\" in url_path:
            return None
        path = self._root_base
        st: os.stat_result | None = None
        for part in url_path.decode(_FS_ENCODING, "surrogateescape").split("/"):
            if part == "" or part == ".":
                continue
            if part == "..":
                return None
            path = f"{path}/{part}"
            try:
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    path = os.path.realpath(path)
                    if not self._inside(path):
                        log.info("refused %r: a link out of the root", url_path)
                        return None
                    st = os.stat(path)
            except (OSError, ValueError):
                return None
        if st is None:
            try:
                st = os.stat(self.root)
            except OSError:
                return None
            path = self.root
        return path, st

    # -- answering -----------------------------------------------------------

    def handle(self, request: Request, conn: HttpProtocol) -> None:
        method = request.method
        if method != b"GET" and method != b"HEAD":
            if method == b"OPTIONS":
                conn.respond(request, 204, b"Allow: " + _ALLOW + b"\r\n")
            else:
                conn.respond_error(request, 405, b"Allow: " + _ALLOW + b"\r\n")
            return
        path = request.path
        if not path.startswith(self.prefix):
            conn.respond_error(request, 404)
            return
        found = self.resolve(path[len(self.prefix):])
        if found is None:
            conn.respond_error(request, 404)
            return
        fs_path, st = found
        if stat.S_ISDIR(st.st_mode):
            self._directory(request, conn, fs_path)
        elif stat.S_ISREG(st.st_mode) and not path.endswith(b"/"):
            self._file(request, conn, fs_path, st)
        else:  # a device, a FIFO, a socket: never
            conn.respond_error(request, 404)

    def _directory(self, request: Request, conn: HttpProtocol, fs_path: str) -> None:
        if not request.path.endswith(b"/"):
            location = request.path + b"/" + (b"?" + request.query if request.query else b"")
            conn.respond(request, 301, b"Location: " + location + b"\r\n")
            return
        index_path = f"{fs_path}/{self.index}"
        try:
            st = os.lstat(index_path)
            if stat.S_ISLNK(st.st_mode):
                index_path = os.path.realpath(index_path)
                if not self._inside(index_path):
                    raise FileNotFoundError(index_path)
                st = os.stat(index_path)
        except OSError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            self._file(request, conn, index_path, st)
        elif self.listing:
            body = self._listing(request, fs_path)
            conn.respond(request, 200, b"Content-Type: text/html; charset=utf-8\r\n", body)
        else:
            conn.respond_error(request, 404)

    def _listing(self, request: Request, fs_path: str) -> bytes:
        """An HTML list of the directory's entries; every name escaped."""
        shown = html.escape(unquote_to_bytes(request.path).decode("utf-8", "replace"))
        rows = ['<li><a href="../">../</a></li>'] if request.path != self.prefix else []
        try:
            entries = sorted(os.scandir(fs_path), key=lambda e: e.name)
        except OSError:
            entries = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            name = entry.name + ("/" if is_dir else "")
            href = quote(os.fsencode(entry.name)) + ("/" if is_dir else "")
            rows.append(f'<li><a href="{html.escape(href)}">{html.escape(name)}</a></li>')
        return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Index of {shown}'
                f'</title></head>\n<body><h1>Index of {shown}</h1><ul>\n'
                + "\n".join(rows) + "\n</ul></body></html>\n").encode("utf-8", "surrogateescape")

    def _info(self, fs_path: str, st: os.stat_result) -> _FileInfo | None:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        info = self._cache.get(fs_path)
        if info is not None and info.key == key:
            return info
        body = None
        if st.st_size <= self.small_file:
            try:
                fd = os.open(fs_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                return None
            try:
                opened = os.fstat(fd)
                key = (opened.st_dev, opened.st_ino, opened.st_size, opened.st_mtime_ns)
                chunks, left = [], opened.st_size
                while left > 0:
                    chunk = os.read(fd, left)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    left -= len(chunk)
                body = b"".join(chunks)
                if left:  # truncated meanwhile: serve what is there, do not cache
                    key = (opened.st_dev, opened.st_ino, len(body), -1)
            finally:
                os.close(fd)
        mtime = int(st.st_mtime)
        etag = b'"%x-%x"' % (key[3] if key[3] >= 0 else st.st_mtime_ns, key[2])
        headers = (f"Content-Type: {content_type(fs_path)}\r\n"
                   f"Last-Modified: {http_date(mtime)}\r\n").encode("latin-1")
        headers += b"ETag: " + etag + b"\r\nAccept-Ranges: bytes\r\n"
        info = _FileInfo(key, headers, etag, mtime, body)
        self._remember(fs_path, info)
        return info

    def _remember(self, fs_path: str, info: _FileInfo) -> None:
        old = self._cache.pop(fs_path, None)
        if old is not None and old.body is not None:
            self._cache_bytes -= len(old.body)
        size = len(info.body) if info.body is not None else 0
        while self._cache and (len(self._cache) >= CACHE_ENTRIES
                               or self._cache_bytes + size > CACHE_BYTES):
            evicted = self._cache.pop(next(iter(self._cache)))  # the oldest
            if evicted.body is not None:
                self._cache_bytes -= len(evicted.body)
        if size <= CACHE_BYTES:
            self._cache[fs_path] = info
            self._cache_bytes += size

    def _not_modified(self, request: Request, info: _FileInfo) -> bool:
        match = request.get(b"if-none-match")
        if match is not None:
            return _etag_matches(match, info.etag)
        since = request.get(b"if-modified-since")
        if since is not None:
            when = parse_http_date(since)
            return when is not None and info.mtime <= when
        return False

    def _range(self, request: Request, info: _FileInfo, size: int) -> tuple[int, int] | None:
        if request.method != b"GET":
            return None
        value = request.get(b"range")
        if value is None:
            return None
        if_range = request.get(b"if-range")
        if if_range is not None:
            if if_range.startswith((b'"', b"W/")):
                if if_range.strip() != info.etag:
                    return None
            elif parse_http_date(if_range) != info.mtime:
                return None
        return parse_range(value, size)

    def _file(self, request: Request, conn: HttpProtocol, fs_path: str,
              st: os.stat_result) -> None:
        info = self._info(fs_path, st)
        if info is None:
            conn.respond_error(request, 404)
            return
        size = info.key[2]
        span = None
        if _has_conditions(request):
            if self._not_modified(request, info):
                conn.respond(request, 304, info.headers)
                return
            span = self._range(request, info, size)
        headers, status = info.headers, 200
        if span is not None:
            if span == UNSATISFIABLE:
                conn.respond_error(request, 416, b"Content-Range: bytes */%d\r\n" % size)
                return
            first, last = span
            headers += b"Content-Range: bytes %d-%d/%d\r\n" % (first, last, size)
            status = 206
        else:
            first, last = 0, size - 1
        length = last - first + 1
        if info.body is not None:
            body = info.body if status == 200 else info.body[first:last + 1]
            conn.respond(request, status, headers, body)
            return
        if request.method == b"HEAD":
            conn.respond(request, status, headers, length=length)
            return
        try:
            file = open(os.open(fs_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb")
        except OSError:
            conn.respond_error(request, 404)
            return
        opened = os.fstat(file.fileno())
        if (opened.st_ino, opened.st_size, opened.st_mtime_ns) != (info.key[1], size, info.key[3]):
            file.close()  # replaced between stat and open: let the client retry
            conn.respond_error(request, 503, b"Retry-After: 1\r\n")
            return
        conn.start(request, status, headers, length)
        conn.send_file(file, first, length)  # the transport closes it once sent
        conn.finish()
