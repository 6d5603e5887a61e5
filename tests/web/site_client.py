"""A keep-alive HTTP client with a cookie jar (http.client), and the example site's checks."""

from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass
from urllib.parse import urlencode

IO_TIMEOUT = 10.0


@dataclass
class Page:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


class Browser:
    """One keep-alive connection and the cookies the server set."""

    def __init__(self, address: tuple[str, int], timeout: float = IO_TIMEOUT) -> None:
        self.address = address
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.conn = http.client.HTTPConnection(*address, timeout=timeout)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Browser:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, target: str, form: dict[str, str] | None = None) -> Page:
        headers = {}
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            self.conn.request(method, target, body=body, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed an idle keep-alive connection: reconnect once.
            self.conn.close()
            self.conn = http.client.HTTPConnection(*self.address, timeout=self.timeout)
            self.conn.request(method, target, body=body, headers=headers)
            response = self.conn.getresponse()
        page = Page(response.status, response.headers, response.read())
        for line in response.headers.get_all("Set-Cookie") or ():
            name, _, value = line.split(";")[0].partition("=")
            if "max-age=0" in line.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return page

    def get(self, target: str) -> Page:
        return self.request("GET", target)

    def post(self, target: str, form: dict[str, str]) -> Page:
        return self.request("POST", target, form)


def check_site(address: tuple[str, int], name: str) -> None:
    """The example site works: pages, form + redirect + session, JSON, image, errors."""
    with Browser(address) as browser:
        home = browser.get("/")
        assert home.status == 200, home.text
        assert '<h1 id="title">ionet example site</h1>' in home.text
        assert home.headers["X-Frame-Options"] == "DENY"
        image = browser.get("/static/logo.png")
        assert image.status == 200 and image.headers["Content-Type"] == "image/png"
        assert image.body.startswith(b"\x89PNG\r\n\x1a\n")
        css = browser.get("/static/style.css")
        assert css.status == 200 and b"font-family" in css.body

        message = f"hello from {name} <script>alert(1)</script>"
        posted = browser.post("/guestbook", {"name": name, "message": message})
        assert posted.status == 303 and posted.headers["Location"] == "/guestbook"
        assert "session" in browser.cookies
        result = browser.get("/guestbook")
        assert result.status == 200
        notice = re.search(r'<p id="notice"[^>]*>(.*?)</p>', result.text)
        assert notice and notice[1].startswith(f"Thank you, {name}: your message is number")
        assert f"hello from {name} &lt;script&gt;alert(1)&lt;/script&gt;" in result.text
        assert "<script>alert(1)" not in result.text
        again = browser.get("/guestbook")
        assert 'id="notice"' not in again.text  # shown once

        data = json.loads(browser.get("/api/messages").body)
        assert any(entry["name"] == name and entry["message"] == message
                   for entry in data["messages"])
        number = next(e["number"] for e in data["messages"] if e["name"] == name)
        assert json.loads(browser.get(f"/api/messages/{number}").body)["name"] == name
        assert browser.get("/word/caf%C3%A9").text.count("café") >= 1

        missing = browser.get("/no/such/page")
        assert missing.status == 404 and "/no/such/page" in missing.text
        wrong = browser.request("DELETE", "/")
        assert wrong.status == 405 and wrong.headers["Allow"] == "GET, HEAD"
        head = browser.request("HEAD", "/")
        assert head.status == 200 and head.body == b""
        invalid = browser.post("/guestbook", {"name": "", "message": ""})
        assert invalid.status == 400 and 'id="errors"' in invalid.text
