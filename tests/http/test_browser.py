"""``ionet http serve`` in a real browser (headless Chromium), on every engine.

Issue 3 asks that "curl, a browser and Flask work against it on every
engine"; ``test_server.py`` covers curl and Flask over sockets, this module
the browser.  For each engine (the ``engine`` fixture of ``tests/conftest.py``)
one server is started per test, with a fresh browser context on the module's
``browser``:

* a static site: a page with a stylesheet, a PNG image and a script; a 2 MB
  file downloaded through a link, fetched whole and fetched by ``Range``; a
  folder without ``index.html`` listed (``--list``); a reload answered 304
  (checked in the server's access log: Chromium reports a revalidated page as
  the 200 it had cached).
* a Flask app (``--app``): a form posted with Unicode and markup in it, shown
  back escaped.

Chromium keeps idle connections open and opens spare ones it may never use;
the iterative engine serves one connection at a time, so there a short
keep-alive timeout frees the server for the next connection (see
``iterative.py``: waiting in the backlog *is* that model).
"""

from __future__ import annotations

import hashlib
import os
import random
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ionet.core.testing import ServerProcess, wait_until

BIG_SIZE = 2 * 1024 * 1024
#: A byte range inside the big file, for the ``Range`` fetch.
RANGE_FIRST, RANGE_LAST = 1_000_000, 1_000_099
TIMEOUT_MS = 15_000

INDEX_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>ionet in a browser</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="style.css">
<script src="app.js" defer></script>
</head><body>
<h1 id="title">ionet serves this page</h1>
<img id="pixel" src="pixel.png" alt="three pixels by two">
<p id="status">the script has not run</p>
<p><a id="download" href="big.bin" download>big.bin (2 MB)</a>
<a id="folder" href="sub">a folder</a></p>
</body></html>
"""

STYLE_CSS = "h1 { color: rgb(0, 128, 0); }\n#status { font-weight: 700; }\n"

APP_JS = """"use strict";
document.getElementById("status").textContent = "the script ran: " + document.title;
"""

#: The Flask app of the form test: a form, and the page that shows what was posted.
FLASK_FORM_APP = '''
from flask import Flask, request
from markupsafe import escape

app = Flask(__name__)
HEAD = '<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">'

@app.get("/")
def form():
    return (HEAD + "<title>say</title></head><body>"
            '<form method="post" action="/said"><input id="text" name="text">'
            '<button id="send" type="submit">Send</button></form></body></html>')

@app.post("/said")
def said():
    text = request.form["text"]
    return (HEAD + "<title>said</title></head><body>"
            f'<p id="said">{escape(text)}</p><p id="length">{len(text)}</p></body></html>')
'''

#: Posted through the form: it must come back as text, not markup.
POSTED = 'Grüße, 你好 <b>bold</b> & "quotes" <script>window.pwned = 1</script>'

#: Three by two pixels, red, green, blue, then white, black, grey.
PIXELS = [[(255, 0, 0), (0, 255, 0), (0, 0, 255)],
          [(255, 255, 255), (0, 0, 0), (128, 128, 128)]]


def png(rows: list[list[tuple[int, int, int]]]) -> bytes:
    """A truecolour PNG (8 bits a channel, no interlace) of ``rows`` of RGB pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack("!I", len(data)) + kind + data
                + struct.pack("!I", zlib.crc32(kind + data)))

    header = struct.pack("!IIBBBBB", len(rows[0]), len(rows), 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + bytes(c for pixel in row for c in pixel) for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def ico(png_image: bytes, width: int, height: int) -> bytes:
    """An icon file holding one PNG image (a favicon.ico, as browsers ask for one)."""
    return (struct.pack("<HHH", 0, 1, 1)
            + struct.pack("<BBBBHHII", width, height, 0, 0, 1, 32, len(png_image), 6 + 16)
            + png_image)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """www/ (the static site) and apps/ (the Flask app's module)."""
    base = tmp_path_factory.mktemp("browser-site")
    www = base / "www"
    (www / "sub").mkdir(parents=True)
    (www / "index.html").write_text(INDEX_HTML, encoding="utf-8")
    (www / "style.css").write_text(STYLE_CSS, encoding="utf-8")
    (www / "app.js").write_text(APP_JS, encoding="utf-8")
    (www / "pixel.png").write_bytes(png(PIXELS))
    (www / "favicon.ico").write_bytes(ico(png(PIXELS), 3, 2))  # asked for by listed pages
    (www / "big.bin").write_bytes(random.Random(3).randbytes(BIG_SIZE))
    (www / "sub" / "notes.txt").write_text("notes in a folder\n", encoding="utf-8")
    (www / "sub" / "a file.txt").write_text("a name with a space\n", encoding="utf-8")
    (base / "apps").mkdir()
    (base / "apps" / "flaskform.py").write_text(FLASK_FORM_APP, encoding="utf-8")
    return base


@contextmanager
def server(engine: str, *argv: str, access_log: Path | None = None,
           env: dict[str, str] | None = None) -> Iterator[tuple[ServerProcess, str]]:
    """``ionet http serve ARGV --engine ENGINE``; yields it and its base URL.

    Its access log goes to ``access_log``, or nowhere (``--quiet``).  On the
    way out the server must not have logged a traceback or an error (one the
    browser did not notice), and must stop cleanly.
    """
    extra = ["--access-log", str(access_log)] if access_log else ["--quiet"]
    if engine == "iterative":
        extra += ["--keepalive-timeout", "0.5"]
    with ServerProcess(["http", "serve", *argv, "--engine", engine, *extra],
                       env=env) as process:
        host, port = process.address("tcp")
        yield process, f"http://{host}:{port}"
        log = process.stderr()
    assert not any(word in log for word in ("Traceback", " ERROR ", " CRITICAL ")), log


@contextmanager
def browser_page(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    """A page in a fresh context, and the list its console errors go to."""
    context = browser.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on("console", lambda msg: errors.append(f"console: {msg.text}")
                if msg.type == "error" else None)
        yield page, errors
    finally:
        context.close()


def logged(access_log: Path, skip: int = 0) -> list[str]:
    """The requests logged after the first ``skip``: request line and status each."""
    lines = access_log.read_text().splitlines()[skip:]
    return [line.split('"', 1)[1].replace('" ', " ").rsplit(" ", 1)[0] for line in lines]


def test_static_site(browser: Any, engine: str, site: Path, tmp_path: Path) -> None:
    big = (site / "www" / "big.bin").read_bytes()
    access_log = tmp_path / "access.log"
    with server(engine, str(site / "www"), "--list", access_log=access_log) as (_, base), \
            browser_page(browser) as (page, errors):
        responses: list[tuple[str, int]] = []
        page.on("response", lambda r: responses.append((r.url[len(base):], r.status)))

        page.goto(base + "/")
        assert page.title() == "ionet in a browser"
        # The script ran (deferred: it has when the page's load event fired).
        assert page.text_content("#status") == "the script ran: ionet in a browser"
        # The stylesheet applied (served as text/css, or Chromium ignores it).
        assert page.evaluate("getComputedStyle(document.querySelector('#title')).color"
                             ) == "rgb(0, 128, 0)"
        assert page.evaluate("getComputedStyle(document.querySelector('#status')).fontWeight"
                             ) == "700"
        # The image decoded, with its pixels as written.
        page.wait_for_function("document.querySelector('#pixel').complete")
        assert page.evaluate("[document.querySelector('#pixel').naturalWidth, "
                             "document.querySelector('#pixel').naturalHeight]") == [3, 2]
        assert page.evaluate("""() => {
            const img = document.querySelector('#pixel');
            const canvas = document.createElement('canvas');
            canvas.width = img.naturalWidth;
            canvas.height = img.naturalHeight;
            const ctx = canvas.getContext('2d');
            ctx.drawImage(img, 0, 0);
            return Array.from(ctx.getImageData(0, 0, 3, 2).data);
        }""") == [c for row in PIXELS for pixel in row for c in (*pixel, 255)]
        assert sorted(responses) == [("/", 200), ("/app.js", 200), ("/pixel.png", 200),
                                     ("/style.css", 200)]

        # The big file: fetched whole, then one range of it.
        whole = page.evaluate("""async () => {
            const r = await fetch('big.bin', {cache: 'no-store'});
            const body = await r.arrayBuffer();
            const digest = await crypto.subtle.digest('SHA-256', body);
            return {status: r.status, length: body.byteLength,
                    type: r.headers.get('Content-Type'),
                    sha256: Array.from(new Uint8Array(digest),
                                       b => b.toString(16).padStart(2, '0')).join('')};
        }""")
        assert whole == {"status": 200, "length": BIG_SIZE, "type": "application/octet-stream",
                         "sha256": hashlib.sha256(big).hexdigest()}
        part = page.evaluate("""async ([first, last]) => {
            const r = await fetch('big.bin', {cache: 'no-store',
                                              headers: {Range: `bytes=${first}-${last}`}});
            return {status: r.status, range: r.headers.get('Content-Range'),
                    bytes: Array.from(new Uint8Array(await r.arrayBuffer()))};
        }""", [RANGE_FIRST, RANGE_LAST])
        assert part["status"] == 206
        assert part["range"] == f"bytes {RANGE_FIRST}-{RANGE_LAST}/{BIG_SIZE}"
        assert bytes(part["bytes"]) == big[RANGE_FIRST:RANGE_LAST + 1]

        # The download link saves the same 2 MB.
        with page.expect_download() as download_info:
            page.click("#download")
        download = download_info.value
        assert download.suggested_filename == "big.bin"
        assert download.failure() is None
        assert Path(download.path()).read_bytes() == big

        # A reload downloads nothing again: the page is revalidated (304), and
        # so are the files it uses, when the browser checks them (cache mode
        # no-cache below).  Sent without Cache-Control, they are fresh for a
        # tenth of their age since Last-Modified (RFC 9111 section 4.2.2), so
        # on reload Chromium takes them from its cache or revalidates them.
        # Chromium reports a revalidated page or fetch as the cached 200: the
        # server's access log has what was sent.
        responses.clear()
        before = len(access_log.read_text().splitlines())
        page.reload()
        assert page.text_content("#status") == "the script ran: ionet in a browser"
        assert page.evaluate("getComputedStyle(document.querySelector('#title')).color"
                             ) == "rgb(0, 128, 0)"
        assert page.evaluate("document.querySelector('#pixel').naturalWidth") == 3
        assert sorted(url for url, _ in responses) == ["/", "/app.js", "/pixel.png",
                                                       "/style.css"]
        assert all(status in (200, 304) for _, status in responses), responses
        assert page.evaluate("""async names => Promise.all(names.map(async name => {
            const r = await fetch(name, {cache: 'no-cache'});
            return [r.status, (await r.arrayBuffer()).byteLength];
        }))""", ["style.css", "pixel.png", "app.js"]) == [
            [200, len(STYLE_CSS)], [200, len(png(PIXELS))], [200, len(APP_JS)]]
        wait_until(lambda: {"GET /style.css HTTP/1.1 304", "GET /pixel.png HTTP/1.1 304",
                            "GET /app.js HTTP/1.1 304"} <= set(logged(access_log, before)),
                   message="the files revalidated")
        sent = logged(access_log, before)
        # The page itself was revalidated too.  (Not necessarily logged first:
        # on the thread and fork engines each connection logs when its own
        # response ends, and Chromium uses several connections.)
        assert "GET / HTTP/1.1 304" in sent, sent
        assert all(line.endswith(" 304") for line in sent), sent

        # The folder: "sub" redirects to "sub/" (so its links resolve), then is listed.
        page.click("#folder")
        page.wait_for_url(base + "/sub/")
        assert page.title() == "Index of /sub/"
        assert page.locator("li a").all_text_contents() == ["../", "a file.txt", "notes.txt"]
        page.click("text=a file.txt")
        page.wait_for_url(base + "/sub/a%20file.txt")
        assert page.text_content("body") == "a name with a space\n"
        page.go_back()
        page.click("text=../")
        page.wait_for_url(base + "/")
        assert errors == []


def test_flask_form(browser: Any, engine: str, site: Path) -> None:
    apps = str(site / "apps")
    path = os.pathsep.join(p for p in (apps, os.environ.get("PYTHONPATH")) if p)
    with server(engine, "--app", "flaskform:app", env={"PYTHONPATH": path}) as (_, base), \
            browser_page(browser) as (page, errors):
        page.goto(base + "/")
        assert page.title() == "say"
        page.fill("#text", POSTED)
        with page.expect_navigation() as navigation:
            page.click("#send")
        response = navigation.value
        assert (response.request.method, response.status) == ("POST", 200)
        assert page.url == base + "/said"
        assert page.title() == "said"
        # Sent escaped by the app, decoded as UTF-8 by the browser, shown as text.
        assert "&lt;b&gt;bold&lt;/b&gt;" in response.text()
        assert page.text_content("#said") == POSTED
        assert page.text_content("#length") == str(len(POSTED))
        assert page.evaluate("document.querySelectorAll('#said *').length") == 0
        assert page.evaluate("window.pwned") is None
        assert errors == []
