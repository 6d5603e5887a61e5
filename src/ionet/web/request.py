"""The request a view receives: one object per request, passed in, never a global.

bottle and Flask offer a thread-local ``request`` that any function may
import; it is convenient until two apps share a thread or a test forgets to
reset it.  Here a view gets its :class:`Request` as its first argument, and
everything it needs hangs off it: ``request.app``, ``request.settings``,
``request.session``.

Everything beyond the method and the path is parsed on first use (query,
headers, cookies, body, form, JSON), so a view that reads nothing costs
nothing.  The body is read once, under a limit (``MAX_BODY_SIZE``, or
``MAX_UPLOAD_SIZE`` for multipart forms), checked against
``Content-Length`` before any byte is read: past it, :class:`PayloadTooLarge`
(413).

Text follows PEP 3333's rule in reverse: the WSGI environ carries bytes as
latin-1 strings, and this class turns them back into the UTF-8 text the
browser meant (``request.path`` is ``"/word/café"``, not ``"/word/cafÃ©"``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload
from urllib.parse import parse_qsl, quote

from ionet.web.errors import BadRequest, PayloadTooLarge
from ionet.web.multipart import MultipartError, UploadedFile, parse_multipart

if TYPE_CHECKING:
    from ionet.web.app import App
    from ionet.web.sessions import Session
    from ionet.web.settings import Settings

__all__ = ["Headers", "MultiDict", "Request", "parse_cookies"]

#: Most fields parsed from one query string or urlencoded form.
MAX_FIELDS = 1000

T = TypeVar("T")


class cached_property(Generic[T]):
    """``functools.cached_property`` without its lock.

    Python 3.11's takes one lock per property, shared by every instance, so
    views in sixteen threads would queue for ``request.query``.  A request
    belongs to one thread: no lock is needed.
    """

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> cached_property[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.func(instance)
        return value


class MultiDict(Mapping[str, str]):
    """Form or query fields: a name may repeat (``?tag=a&tag=b``).

    ``d["tag"]`` and ``d.get("tag")`` give the first value, ``d.getall("tag")``
    every one, in order.
    """

    def __init__(self, pairs: list[tuple[str, str]] | None = None) -> None:
        self._lists: dict[str, list[str]] = {}
        for key, value in pairs or ():
            self._lists.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> str:
        return self._lists[key][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._lists)

    def __len__(self) -> int:
        return len(self._lists)

    def getall(self, key: str) -> list[str]:
        return list(self._lists.get(key, ()))

    def items_all(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair, repeats included."""
        return [(key, value) for key, values in self._lists.items() for value in values]

    def __repr__(self) -> str:
        return f"MultiDict({self.items_all()!r})"


class Headers(Mapping[str, str]):
    """The request headers from the environ, by case-insensitive name.

    Repeated headers arrive joined with ``", "`` (``"; "`` for Cookie), as
    the server put them in the environ.
    """

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._headers: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").lower()
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                name = key.replace("_", "-").lower()
            else:
                continue
            if value:
                self._headers[name] = _text(value)

    def __getitem__(self, name: str) -> str:
        return self._headers[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._headers.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._headers

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers)

    def __len__(self) -> int:
        return len(self._headers)


def _text(value: str) -> str:
    """A latin-1 environ string -> the UTF-8 text it encodes (as is if it is not UTF-8)."""
    if value.isascii():
        return value
    raw = value.encode("latin-1", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return value


def parse_cookies(header: str) -> dict[str, str]:
    """``"a=1; b=\\"two\\""`` -> ``{"a": "1", "b": "two"}``; malformed pairs are skipped.

    Lenient on purpose, as browsers are: ``http.cookies.SimpleCookie``
    drops *every* cookie when one is malformed, so one bad cookie set by
    another app on the same host would log the user out of ours.
    """
    cookies: dict[str, str] = {}
    for pair in header.split(";"):
        name, eq, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name:
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        cookies.setdefault(name, value)
    return cookies


class Request:
    """One HTTP request, as a view sees it.

    Args:
        environ: the WSGI environ.
        app: the app answering (for settings, sessions, ``url_for``); may
            be None in tests of plain functions.
        params: the route's parameters (set by the app after matching).

    Attributes:
        method: ``"GET"``, ``"POST"``...
        path: the path, percent-decoded, as text (``"/word/café"``).
        params: what the route's ``<type:name>`` parts captured.
        state: a dict for middleware to leave things for the view.
    """

    def __init__(self, environ: dict[str, Any], app: App | None = None,
                 params: dict[str, Any] | None = None) -> None:
        self.environ = environ
        self.app = app
        self.method: str = environ.get("REQUEST_METHOD", "GET").upper()
        self.path: str = _text(environ.get("PATH_INFO", "")) or "/"
        self.params = params or {}
        self.state: dict[str, Any] = {}
        self._session: Session | None = None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path}>"

    # -- the URL ----------------------------------------------------------

    @property
    def settings(self) -> Settings:
        assert self.app is not None, "this request has no app"
        return self.app.settings

    @property
    def script_name(self) -> str:
        """Where the app is mounted (``""`` at the root)."""
        return _text(self.environ.get("SCRIPT_NAME", ""))

    @property
    def query_string(self) -> str:
        return self.environ.get("QUERY_STRING", "")

    @cached_property
    def query(self) -> MultiDict:
        """The query string's fields (``?q=hello`` -> ``request.query["q"]``)."""
        return _parse_fields(self.query_string)

    @cached_property
    def headers(self) -> Headers:
        return Headers(self.environ)

    @cached_property
    def cookies(self) -> dict[str, str]:
        return parse_cookies(_text(self.environ.get("HTTP_COOKIE", "")))

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case (``"application/json"``)."""
        return self.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()

    @cached_property
    def client(self) -> str:
        """The client's IP address.

        Behind a proxy listed in ``TRUSTED_PROXIES`` this is the address the
        proxy reports in ``X-Forwarded-For``; from anyone else, that header
        is ignored (a client could write any address in it).
        """
        remote = self.environ.get("REMOTE_ADDR", "")
        if self.app is None:
            return str(remote)
        return self.app.settings.trusted.client(remote, self.environ.get("HTTP_X_FORWARDED_FOR"))

    @cached_property
    def scheme(self) -> str:
        """``http`` or ``https``, from ``X-Forwarded-Proto`` behind a trusted proxy."""
        forwarded = self.environ.get("HTTP_X_FORWARDED_PROTO")
        if (forwarded and self.app is not None
                and self.environ.get("REMOTE_ADDR", "") in self.app.settings.trusted):
            proto = forwarded.split(",")[0].strip().lower()
            if proto in ("http", "https"):
                return proto
        return str(self.environ.get("wsgi.url_scheme", "http"))

    @property
    def host(self) -> str:
        """The ``Host`` header, else the server's name and port."""
        host = self.environ.get("HTTP_HOST")
        if host:
            return str(host)
        name, port = self.environ.get("SERVER_NAME", "localhost"), self.environ.get("SERVER_PORT")
        default = "443" if self.scheme == "https" else "80"
        return name if not port or port == default else f"{name}:{port}"

    @property
    def full_path(self) -> str:
        """The path (quoted again) and query string, as the browser asked for them."""
        path = quote(self.script_name + self.path, safe="/:@!$&'()*+,;=-._~")
        return path + ("?" + self.query_string if self.query_string else "")

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.full_path}"

    def url_for(self, name: str, **params: Any) -> str:
        """The URL path of route ``name``, under the app's mount point.

        Raises:
            NoReverseMatch: no such route, or the params do not fit.
        """
        assert self.app is not None, "this request has no app"
        return self.script_name + self.app.router.reverse(name, **params)

    # -- the body -------------------------------------------------------------

    @property
    def content_length(self) -> int | None:
        value = self.environ.get("CONTENT_LENGTH", "")
        if not value:
            return None
        try:
            length = int(value)
        except ValueError:
            raise BadRequest("malformed Content-Length") from None
        if length < 0:
            raise BadRequest("negative Content-Length")
        return length

    def _limit(self) -> int:
        if self.app is None:
            return 1024 * 1024
        settings = self.app.settings
        if self.content_type == "multipart/form-data":
            return settings.max_upload_size
        return settings.max_body_size

    @cached_property
    def body(self) -> bytes:
        """The whole body, read once.

        Raises:
            PayloadTooLarge: over MAX_BODY_SIZE (MAX_UPLOAD_SIZE for multipart).
        """
        limit = self._limit()
        length = self.content_length
        stream = self.environ.get("wsgi.input")
        if stream is None:
            return b""
        if length is None:
            # No Content-Length: only a server that says the stream ends
            # (wsgi.input_terminated, PEP 3333 errata) may be read to its end.
            if not self.environ.get("wsgi.input_terminated"):
                return b""
            data = stream.read(limit + 1)
            if len(data) > limit:
                raise PayloadTooLarge(f"the body is over {limit} bytes")
            return bytes(data)
        if length > limit:
            raise PayloadTooLarge(f"the body ({length} bytes) is over {limit} bytes")
        data = stream.read(length) if length else b""
        if len(data) < length:
            raise BadRequest("the body ended early")
        return bytes(data)

    @property
    def stream(self) -> io.BytesIO:
        """The body as a file object."""
        return io.BytesIO(self.body)

    @cached_property
    def _form_and_files(self) -> tuple[MultiDict, dict[str, list[UploadedFile]]]:
        kind = self.content_type
        if kind == "application/x-www-form-urlencoded":
            return _parse_fields(self.body.decode("latin-1")), {}
        if kind == "multipart/form-data":
            try:
                fields, files = parse_multipart(self.body, self.environ.get("CONTENT_TYPE", ""))
            except MultipartError as exc:
                raise BadRequest(f"malformed upload: {exc}") from None
            by_name: dict[str, list[UploadedFile]] = {}
            for upload in files:
                by_name.setdefault(upload.field, []).append(upload)
            return MultiDict(fields), by_name
        return MultiDict(), {}

    @property
    def form(self) -> MultiDict:
        """Fields of a urlencoded or multipart form (empty for other bodies).

        Raises:
            PayloadTooLarge: the body is over its limit.
            BadRequest: a malformed multipart body.
        """
        return self._form_and_files[0]

    @property
    def files(self) -> dict[str, UploadedFile]:
        """Uploaded files by field name (the first, if a field has several)."""
        return {name: uploads[0] for name, uploads in self._form_and_files[1].items()}

    def getall_files(self, name: str) -> list[UploadedFile]:
        """Every file uploaded in field ``name`` (``<input type=file multiple>``)."""
        return list(self._form_and_files[1].get(name, ()))

    @property
    def is_json(self) -> bool:
        kind = self.content_type
        return kind == "application/json" or (kind.startswith("application/")
                                              and kind.endswith("+json"))

    @cached_property
    def json(self) -> Any:
        """The body parsed as JSON (None if empty).

        Raises:
            BadRequest: the body is not JSON, or not UTF-8.
        """
        body = self.body
        if not body:
            return None
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}") from None

    # -- the session ------------------------------------------------------------

    @property
    def session(self) -> Session:
        """This client's session: a dict kept in a signed cookie.

        Loaded on first use; saved with the response if it changed.
        """
        if self._session is None:
            assert self.app is not None, "sessions need an app"
            self._session = self.app.sessions.load(
                self.cookies.get(self.app.settings.session_cookie_name))
        return self._session


def _parse_fields(text: str) -> MultiDict:
    if not text:
        return MultiDict()
    try:
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace",
                          max_num_fields=MAX_FIELDS)
    except ValueError:
        raise BadRequest(f"more than {MAX_FIELDS} fields") from None
    return MultiDict(pairs)

