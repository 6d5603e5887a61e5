"""A test client: call a WSGI app in-process, as a browser would, without sockets.

Like bottle's tests, each call builds an environ with
``wsgiref.util.setup_testing_defaults`` and calls the app wrapped in
``wsgiref.validate.validator``, so a response that breaks PEP 3333 (a
missing Content-Type, a non-str header, an iterable not closed) fails the
test instead of some server later.  Cookies are kept between calls, as a
browser keeps them::

    client = Client(App.from_project("examples/site"))
    page = client.post("/guestbook", data={"name": "ann", "message": "hi"})
    assert page.status == 303
    page = client.get(page.header("Location"))
"""

from __future__ import annotations

import io
import json as jsonlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes, urlencode, urlsplit
from wsgiref.util import FileWrapper, setup_testing_defaults
from wsgiref.validate import validator

__all__ = ["Client", "TestResponse"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class TestResponse:
    """What the app answered."""

    __test__ = False  # not a pytest test class

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (case-insensitive)."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return default

    def header_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return jsonlib.loads(self.body)


def encode_multipart(fields: dict[str, str] | None,
                     files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type.

    Args:
        fields: text fields.
        files: field -> ``(filename, data, content type)``.
    """
    boundary = "ionet-" + secrets.token_hex(12)
    parts: list[bytes] = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     .encode() + str(value).encode() + b"\r\n")
    for name, (filename, data, kind) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'.encode()
                     + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Client:
    """Drive a WSGI app in-process.

    Args:
        app: the WSGI app.
        validate: wrap it in ``wsgiref.validate.validator``.
        remote_addr: the client address the app sees.
    """

    __test__ = False

    def __init__(self, app: WSGIApp, *, validate: bool = True,
                 remote_addr: str = "127.0.0.1") -> None:
        self.app = validator(app) if validate else app
        self.remote_addr = remote_addr
        self.cookies: dict[str, str] = {}

    def request(self, method: str, url: str, *, data: dict[str, str] | bytes | None = None,
                json: Any = None, files: dict[str, tuple[str, bytes, str]] | None = None,
                headers: dict[str, str] | None = None,
                environ: dict[str, Any] | None = None) -> TestResponse:
        """Send one request; ``url`` is a path with an optional query string."""
        parts = urlsplit(url)
        body = b""
        content_type = None
        if files is not None:
            assert not isinstance(data, bytes), "files go with a dict of fields"
            body, content_type = encode_multipart(data, files)
        elif isinstance(data, dict):
            body = urlencode(data).encode("ascii")
            content_type = "application/x-www-form-urlencoded"
        elif isinstance(data, bytes):
            body = data
        elif json is not None:
            body = jsonlib.dumps(json).encode("utf-8")
            content_type = "application/json"
        env: dict[str, Any] = {
            "REQUEST_METHOD": method.upper(),
            "PATH_INFO": _latin1(parts.path or "/"),
            "QUERY_STRING": parts.query,
            "SCRIPT_NAME": "",
            "REMOTE_ADDR": self.remote_addr,
            "wsgi.input": io.BytesIO(body),
            "wsgi.file_wrapper": FileWrapper,
        }
        if body or method.upper() in ("POST", "PUT", "PATCH"):
            env["CONTENT_LENGTH"] = str(len(body))
        if content_type:
            env["CONTENT_TYPE"] = content_type
        if self.cookies:
            env["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                env[key] = value
            else:
                env["HTTP_" + key] = value
        env.update(environ or {})
        setup_testing_defaults(env)
        return self._call(env)

    def _call(self, env: dict[str, Any]) -> TestResponse:
        started: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            started.append((status, headers))
            return lambda data: None

        result = self.app(env, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        assert started, "the app never called start_response"
        status, headers = started[-1]
        code, _, reason = status.partition(" ")
        response = TestResponse(int(code), reason, list(headers), body)
        self._keep_cookies(response)
        return response

    def _keep_cookies(self, response: TestResponse) -> None:
        for line in response.header_all("Set-Cookie"):
            first, _, attributes = line.partition(";")
            name, _, value = first.partition("=")
            expired = "max-age=0" in attributes.lower().replace(" ", "")
            if expired:
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value.strip()

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> TestResponse:
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> TestResponse:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> TestResponse:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> TestResponse:
        return self.request("DELETE", url, **kwargs)


def _latin1(path: str) -> str:
    """A URL path -> PATH_INFO: percent-decoded bytes as latin-1 (PEP 3333)."""
    return unquote_to_bytes(path).decode("latin-1")
