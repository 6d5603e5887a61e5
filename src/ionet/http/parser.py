"""Request parsing: bytes in, complete :class:`Request` objects out, limits enforced.

The byte-level work is done by httptools, the Python binding of llhttp (the
parser in Node.js, and what uvicorn uses): in C, it costs about half a
microsecond per small request, where a pure-Python parser costs tens.  This
module adds what llhttp leaves to its user:

* **Limits.**  llhttp has no size limits at all.  The request target is
  counted as llhttp hands it over (``on_url`` is called with each piece, also
  mid-line); complete header lines are counted in ``on_header``.  A header
  line that never ends is invisible to both, since httptools gathers a
  line's pieces itself, so the parser also counts the bytes of every
  ``feed`` in which a request's head made no visible progress.  Memory held
  for one head is thus at most the limit plus one ``recv``.
* **Request smuggling defences.**  Two servers in a chain (a proxy and us)
  must agree where each request ends, or an attacker hides a second request
  inside the first one's body.  llhttp (in its default strict mode) already
  rejects ``Content-Length`` together with ``Transfer-Encoding``, duplicate
  or non-numeric ``Content-Length``, obs-fold continuation lines, bare LF
  line ends and invalid characters; we add: ``Transfer-Encoding`` other than
  plain ``chunked`` (501, since we cannot decode gzip bodies), any
  ``Transfer-Encoding`` in an HTTP/1.0 request (RFC 9112 section 6.1), and
  a missing or repeated ``Host`` in HTTP/1.1 (RFC 9112 section 3.2).
  Every such error closes the connection after its error page.
* **Request objects.**  Header names are lower-cased once here, values
  stripped, and the body (de-chunked by llhttp) joined, so handlers see plain
  data.  Bodies are capped by ``max_body`` and held in memory: a handler gets
  a complete request, which lets a WSGI app read ``wsgi.input`` on any
  engine, even one that runs the app inside ``data_received``.
* **Upgrades.**  llhttp stops at the end of a request with ``Upgrade``
  (``Connection: upgrade``): what follows belongs to another protocol, so
  parsing ends there.  With ``keep_heads`` the parser also keeps the raw
  bytes of that request's head (for a body-less HTTP/1.1 ``GET``), and every byte
  after it, for the protocol that takes the connection over (WebSocket).
  httptools reports no byte offsets except where it stops, so the parser
  remembers the bytes read since the last read that began between
  requests; the head is the end of them.

Parsing is driven by :meth:`RequestParser.feed`; complete requests collect in
:attr:`RequestParser.requests` for the connection to take, in order.
"""

from __future__ import annotations

import re

import httptools

from ionet.http.limits import HttpLimits
from ionet.http.status import HttpError

__all__ = ["BODY", "HEAD", "IDLE", "Request", "RequestParser"]

#: Parser phases: between requests, inside a request's head, inside its body.
IDLE, HEAD, BODY = 0, 1, 2

#: Header names with meaning for framing or routing, checked in ``on_header``.
_SPECIAL = frozenset({b"content-length", b"transfer-encoding", b"host", b"expect"})
_WHITESPACE = b" \t"
_METHOD_LIKE = re.compile(rb"[A-Z][A-Z_-]{0,31} ")
_CRLF = b"\r\n"
_HASH = ord("#")


class Request:
    """One parsed HTTP request.

    Attributes:
        method: the method, as bytes (``b"GET"``).
        target: the request target exactly as sent (``b"/a%20b?x=1"``).
        path: the target's path, still percent-encoded (``b"/a%20b"``).
        query: what follows ``?`` (``b"x=1"``), or ``b""``.
        version: ``"1.1"`` or ``"1.0"``.
        headers: ``(lower-cased name, value)`` pairs in arrival order.
        body: the whole body (chunked bodies already decoded).
        keep_alive: the client allows the connection to stay open.
        expect_continue: an HTTP/1.1 client waits for ``100 Continue``
            before sending its body.
        content_length: the ``Content-Length`` value, or None.
        chunked: the body came with ``Transfer-Encoding: chunked``.
        upgrade: for a body-less ``GET`` asking to switch protocols
            (``Connection: upgrade``, ``Upgrade: ...``), its head exactly as
            received, when the parser keeps heads; else None.
    """

    # The defaults are class attributes, so that making a request (once per
    # request, on the loop thread) sets only what differs from them; an
    # instance gets its own value when one is assigned.
    method = b""
    target = b""
    path = b""
    query = b""
    version = "1.1"
    body = b""
    keep_alive = True
    expect_continue = False
    continue_sent = False
    content_length: int | None = None
    chunked = False
    upgrade: bytes | None = None
    _hosts = 0

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []

    def get(self, name: bytes, default: bytes | None = None) -> bytes | None:
        """The first value of header ``name`` (lower-case bytes), or ``default``."""
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def get_all(self, name: bytes) -> list[bytes]:
        """Every value of header ``name`` (lower-case bytes), in order."""
        return [value for key, value in self.headers if key == name]

    def request_line(self) -> str:
        """``GET /path HTTP/1.1``, for logs, with unprintable bytes escaped."""
        if self.method == b"-":
            return "-"
        target = self.target.decode("ascii", "backslashreplace").replace('"', '\\"')
        return f"{self.method.decode('ascii', 'replace')} {target} HTTP/{self.version}"

    def __repr__(self) -> str:
        return f"<Request {self.request_line()!r}>"


class RequestParser:
    """Turn a connection's byte stream into :class:`Request` objects.

    Args:
        limits: the sizes to enforce.
        keep_heads: keep the raw head of an upgrade request
            (:attr:`Request.upgrade`) and the bytes after it (:attr:`rest`).

    After each :meth:`feed`, :attr:`requests` holds the requests completed so
    far (the caller takes them), :attr:`phase` says where the parser is
    (``IDLE``, ``HEAD`` or ``BODY``), :attr:`current` is the request whose
    head is complete and whose body is still arriving (for
    ``100 Continue``), and :attr:`begun` counts requests started (a new
    value means a new head, which restarts the header timer).
    """

    def __init__(self, limits: HttpLimits, keep_heads: bool = False) -> None:
        self.limits = limits
        self._max_line = limits.max_header_line
        self._max_head = limits.max_header_size
        self._max_headers = limits.max_headers
        self._max_target = limits.max_request_target
        self._max_body = limits.max_body
        self.requests: list[Request] = []
        self.phase = IDLE
        self.begun = 0
        self.current: Request | None = None
        self.closed = False  # nothing after an upgrade request is parsed
        #: After an upgrade request whose head was kept: the bytes that
        #: followed it, which belong to the next protocol (else None).
        self.rest: bytes | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._request: Request | None = None
        self._url = b""
        self._head_size = 0
        self._stalled = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._raw_body_left = 0  # body bytes read by hand after an upgrade pause
        # With keep_heads: the reads since one that began between requests,
        # and the requests begun before it (None: not kept, too long).
        self._keep_heads = keep_heads
        self._window: list[bytes] | None = None
        self._window_size = 0
        self._window_begun = 0

    def release(self) -> None:
        """The connection is over: let go of httptools' parser.

        It holds this object's callbacks, and this object holds it: a
        reference cycle per connection that only Python's cyclic garbage
        collector would free (CPU on every collection, and a pause for every
        connection when a full one runs).  Nothing is parsed afterwards.
        """
        self.closed = True
        self.rest = None
        self.__dict__.pop("_parser", None)

    # -- driving ------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Parse ``data``; complete requests are appended to :attr:`requests`.

        Raises:
            HttpError: the stream is malformed or over a limit; the status
                says which (400, 405, 413, 414, 431, 501, 505).  Requests
                completed before the error stay in :attr:`requests`.
        """
        if self.closed:
            if self.rest is not None:
                self.rest += data  # the next protocol's bytes, kept for it
            return
        if self._raw_body_left:
            data = self._read_raw_body(data)
            if not data or self.closed:
                return
        phase, begun = self.phase, self.begun
        began_idle = phase == IDLE
        if self._keep_heads:
            self._remember(data, began_idle)
        if phase == HEAD:  # to tell whether this data moves the head on
            mark = self._head_size + len(self._url)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgrade(data, int(exc.args[0]))
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, HttpError):
                raise cause from None
            if cause is not None:
                raise cause  # a bug in a callback: let it show
            raise HttpError(400, str(exc)) from None
        except httptools.HttpParserInvalidMethodError:
            # A well-formed method we do not know is 501 (RFC 9110 section
            # 9.1); binary garbage (a TLS hello on a plain port) is 400.
            # (Judged only when this data began a request: then its method
            # is at the start of ``data``.)
            status = 501 if (began_idle and begun == self.begun - 1
                             and _METHOD_LIKE.match(data.lstrip(b"\r\n"))) else 400
            raise HttpError(status, "unknown method") from None
        except httptools.HttpParserError as exc:
            message = str(exc)
            status = 505 if "invalid http version" in message.lower() else 400
            raise HttpError(status, message) from None
        if phase == HEAD == self.phase and begun == self.begun:
            # A header line still growing makes no visible progress (neither
            # a header nor a piece of the target): count its bytes.
            if self._head_size + len(self._url) != mark:
                self._stalled = 0
            else:
                self._stalled += len(data)
                if self._stalled > self._max_line:
                    raise HttpError(431, "header line too long")

    def _remember(self, data: bytes, began_idle: bool) -> None:
        """Keep the reads since the last one that began between requests."""
        if began_idle:
            self._window = [data]
            self._window_size = len(data)
            self._window_begun = self.begun
        elif self._window is not None:
            self._window.append(data)
            self._window_size += len(data)
            if self._window_size > 2 * self._max_head:  # a body: no upgrade head here
                self._window = None

    def _upgrade(self, data: bytes, offset: int) -> None:
        """llhttp paused at the end of an ``Upgrade`` request's head.

        The request is answered as a plain one and the connection closed
        after it (the bytes that follow were meant for the other protocol),
        unless the connection hands itself over to that protocol: for a
        body-less GET, with ``keep_heads``, :attr:`Request.upgrade` is set
        and :attr:`rest` keeps what follows (HTTP/1.0 has no upgrades: RFC 9110
        section 7.8).  llhttp ends such a message at its head, so a body announced by Content-Length is read here by hand.
        """
        self.closed = True
        if not self.requests:  # paused before the message ended: nothing to serve
            raise HttpError(400, "unexpected upgrade")
        request = self.requests[-1]
        request.keep_alive = False
        if (self._window is not None and request.method == b"GET" and request.version == "1.1"
                and not request.content_length and not request.chunked):
            raw = b"".join(self._window)
            end = len(raw) - (len(data) - offset)
            count = self.begun - self._window_begun  # requests begun in the window
            start = 0 if count == 1 else _message_start(raw[:end], count)
            request.upgrade = raw[start:end].lstrip(_CRLF)
            self.rest = data[offset:]
        self._window = None
        if request.chunked:
            self.requests.pop()  # its body was never read: do not answer it
            raise HttpError(400, "a chunked body on an upgrade request")
        if request.content_length:
            self.requests.pop()
            self._request = self.current = request
            self.phase = BODY
            self._raw_body_left = request.content_length
            self.closed = False
            # Anything after the body belongs to the other protocol: dropped.
            self._read_raw_body(data[offset:])

    def _read_raw_body(self, data: bytes) -> bytes:
        take = data[: self._raw_body_left]
        self._raw_body_left -= len(take)
        if take:
            self.on_body(take)
        if not self._raw_body_left:
            self.on_message_complete()
            self.closed = True
        return data[len(take):]

    def take(self) -> list[Request]:
        """Return the completed requests and forget them."""
        requests = self.requests
        self.requests = []
        return requests

    # -- httptools callbacks ------------------------------------------------

    def on_message_begin(self) -> None:
        self._request = Request()
        self._url = b""
        self._head_size = 0
        self._stalled = 0
        self.phase = HEAD
        self.begun += 1

    def on_url(self, url: bytes) -> None:
        if self._url:
            url = self._url + url
        self._url = url
        if len(url) > self._max_target:
            raise HttpError(414, f"request target over {self._max_target} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        # The size of every line is checked as it comes; the number of
        # lines at the end of the head (the size already bounds them).
        size = len(name) + len(value)
        self._head_size += size + 4
        if size > self._max_line or self._head_size > self._max_head:
            self._header_limit(size)
        if self.phase == BODY:
            return  # a trailer after a chunked body: counted, then ignored
        name = name.lower()
        value = value.rstrip(_WHITESPACE)  # llhttp already skipped the leading
        request = self._request
        if name in _SPECIAL:
            if name == b"host":  # (in every request: counted here, not in a call)
                request._hosts += 1  # type: ignore[union-attr]
            else:
                self._special_header(request, name, value)  # type: ignore[arg-type]
        request.headers.append((name, value))  # type: ignore[union-attr]

    def _header_limit(self, size: int) -> None:
        limits = self.limits
        if size > limits.max_header_line:
            raise HttpError(431, f"header line over {limits.max_header_line} bytes")
        raise HttpError(431, f"headers over {limits.max_header_size} bytes")

    def _special_header(self, request: Request, name: bytes, value: bytes) -> None:
        if name == b"content-length":
            if request.content_length is not None:  # llhttp checks too; be sure
                raise HttpError(400, "duplicate Content-Length")
            if not value.isdigit():
                raise HttpError(400, "invalid Content-Length")
            request.content_length = int(value)
        elif name == b"transfer-encoding":
            if request.chunked:
                raise HttpError(400, "repeated Transfer-Encoding")
            if value.lower() != b"chunked":
                raise HttpError(501, f"unsupported Transfer-Encoding {value!r}")
            request.chunked = True
        elif name == b"host":
            request._hosts += 1
        elif name == b"expect":
            if value.lower() != b"100-continue":
                raise HttpError(417, f"unsupported Expect {value!r}")
            request.expect_continue = True

    def on_headers_complete(self) -> None:
        request = self._request
        assert request is not None
        if len(request.headers) > self._max_headers:
            raise HttpError(431, f"more than {self._max_headers} headers")
        parser = self._parser
        version = parser.get_http_version()
        if version == "1.1":
            if request._hosts != 1:
                raise HttpError(400, "an HTTP/1.1 request needs exactly one Host header")
        elif version == "1.0":
            request.version = version
            if request.chunked:  # RFC 9112 section 6.1: framing is faulty
                raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request")
            request.expect_continue = False  # 1.0 clients do not wait for it
        else:
            raise HttpError(505, f"HTTP/{version} is not supported")
        request.method = method = parser.get_method()
        request.keep_alive = parser.should_keep_alive()
        if method == b"CONNECT":
            raise HttpError(405, "CONNECT: this is not a proxy")
        length = request.content_length
        if length is not None and length > self._max_body:
            raise HttpError(413, f"body of {length} bytes, over {self._max_body}")
        if request.expect_continue and not length and not request.chunked:
            request.expect_continue = False  # no body to wait for
        target = request.target = self._url
        # The usual origin form.  (An int is looked for with memchr: ten
        # times faster than the one-byte string b"#".)
        if target[:1] == b"/" and _HASH not in target:
            request.path, _, request.query = target.partition(b"?")
        else:
            self._set_target(request, target)
        self.phase = BODY
        self.current = request

    def _set_target(self, request: Request, target: bytes) -> None:
        """Path and query of an unusual target: ``*``, absolute, or with a ``#``."""
        if target[:1] != b"/":
            if target == b"*":
                request.path = b"*"
                return
            # Absolute form (``GET http://host/path HTTP/1.1``), which a
            # server must accept (RFC 9112 section 3.2.2): keep the path.
            scheme, sep, rest = target.partition(b"://")
            if not sep or scheme.lower() not in (b"http", b"https"):
                raise HttpError(400, "invalid request target")
            slash = rest.find(b"/")
            target = rest[slash:] if slash >= 0 else b"/"
            if target[:1] == b"?":
                target = b"/" + target
        hash_at = target.find(b"#")
        if hash_at >= 0:
            target = target[:hash_at]
        path, _, query = target.partition(b"?")
        request.path = path
        request.query = query

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.limits.max_body:
            raise HttpError(413, f"body over {self.limits.max_body} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = self._request
        assert request is not None
        body = self._body
        if body:
            request.body = body[0] if len(body) == 1 else b"".join(body)
            self._body = []
            self._body_size = 0
        self.requests.append(request)
        self._request = None
        self.current = None
        self.phase = IDLE


class _BeginCounter:
    """httptools callbacks that only count the requests begun."""

    def __init__(self) -> None:
        self.begun = 0

    def on_message_begin(self) -> None:
        self.begun += 1


def _message_start(raw: bytes, n: int) -> int:
    """Where the ``n``-th request of ``raw`` (pipelined requests) begins.

    httptools reports no offsets, so bisect: the smallest prefix of ``raw``
    in which a fresh parser sees ``n`` requests begin ends with that
    request's first byte.  Only for an upgrade request that arrived in one
    read behind others: rare, and ``raw`` is at most a few heads long.
    """
    low, high = 0, len(raw)  # fewer than n begun in raw[:low]; n in raw[:high]
    while high - low > 1:
        middle = (low + high) // 2
        counter = _BeginCounter()
        try:
            httptools.HttpRequestParser(counter).feed_data(raw[:middle])
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            pass  # parsed once already: only the upgrade's own end can stop it
        if counter.begun >= n:
            high = middle
        else:
            low = middle
    return high - 1
