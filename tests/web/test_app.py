"""The framework in-process: requests, responses, forms, JSON, uploads, sessions,
templates, static files, middleware and error pages.

Every call goes through ``ionet.web.testing.Client``, which wraps the app in
``wsgiref.validate.validator``: a response that breaks PEP 3333 fails here.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from ionet.web import (
    App,
    BadRequest,
    FileResponse,
    HTTPError,
    JSONResponse,
    RedirectResponse,
    Request,
    Response,
    Settings,
    StreamResponse,
    path,
    render,
)
from ionet.web.sessions import CookieSessions
from ionet.web.testing import Client

SECRET = "test-secret-key"
XSS = "<script>alert('x')</script><img src=x onerror=alert(1)>"


def make_app(tmp_path: Path, routes: list[Any], **settings: Any) -> App:
    templates = tmp_path / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "page.html").write_text(
        "<h1>{{ title }}</h1><p>{{ text }}</p><a href=\"{{ url('home') }}\">home</a>"
        "<link href=\"{{ static('site.css') }}\">")
    static = tmp_path / "static"
    static.mkdir(exist_ok=True)
    (static / "site.css").write_text("body { color: red }")
    (static / "sub").mkdir(exist_ok=True)
    (static / "sub" / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (static / ".secret").write_text("no")
    (tmp_path / "outside.txt").write_text("outside")
    values: dict[str, Any] = {"secret_key": SECRET, "project_dir": tmp_path}
    values.update(settings)
    return App(routes, Settings(**values))


def home(request: Request) -> str:
    return "<p>home</p>"


# -- requests ------------------------------------------------------------------

def test_query_headers_cookies_and_client(tmp_path: Path) -> None:
    def show(request: Request, rest: str) -> dict[str, Any]:
        return {"q": request.query.get("q"), "tags": request.query.getall("tag"),
                "agent": request.headers.get("user-agent"), "cookie": request.cookies.get("a"),
                "client": request.client, "scheme": request.scheme, "path": request.path,
                "url": request.url}

    client = Client(make_app(tmp_path, [path("/show/<path:rest>", show)]))
    client.cookies["a"] = "1"
    data = client.get("/show/caf%C3%A9?q=hello%20world&tag=a&tag=b",
                      headers={"User-Agent": "tester", "Host": "example.org"}).json()
    assert data == {"q": "hello world", "tags": ["a", "b"], "agent": "tester", "cookie": "1",
                    "client": "127.0.0.1", "scheme": "http", "path": "/show/café",
                    "url": "http://example.org/show/caf%C3%A9?q=hello%20world&tag=a&tag=b"}


def test_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path: Path) -> None:
    def who(request: Request) -> dict[str, str]:
        return {"client": request.client, "scheme": request.scheme}

    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9, 10.0.0.2",
               "X-Forwarded-Proto": "https"}
    app = make_app(tmp_path, [path("/", who)], trusted_proxies=["127.0.0.1", "10.0.0.0/8"])
    # Through our proxies: the rightmost address that is not ours is the client
    # (6.6.6.6 was written by the client itself, and is not believed).
    assert Client(app).get("/", headers=headers).json() == {
        "client": "203.0.113.9", "scheme": "https"}
    # From anywhere else, the headers are the client's word: ignored.
    assert Client(app, remote_addr="192.0.2.1").get("/", headers=headers).json() == {
        "client": "192.0.2.1", "scheme": "http"}
    untrusting = make_app(tmp_path, [path("/", who)])
    assert Client(untrusting).get("/", headers=headers).json()["client"] == "127.0.0.1"


def test_form_post_and_redirect_after_post(tmp_path: Path) -> None:
    seen = []

    def sign(request: Request) -> Response:
        if request.method == "POST":
            seen.append((request.form["name"], request.form.getall("tag")))
            return RedirectResponse(request.url_for("sign"))
        return Response("<form method=post>")

    client = Client(make_app(tmp_path, [path("/sign", sign, name="sign",
                                             methods=["GET", "POST"])]))
    page = client.post("/sign", data={"name": "Zoë & co", "tag": "x"})
    assert page.status == 303 and page.header("Location") == "/sign"
    assert seen == [("Zoë & co", ["x"])]
    assert client.get("/sign").status == 200


def test_json_in_and_out(tmp_path: Path) -> None:
    def echo(request: Request) -> JSONResponse:
        return JSONResponse({"got": request.json, "is_json": request.is_json}, status=201)

    client = Client(make_app(tmp_path, [path("/echo", echo, methods=["POST"])]))
    response = client.post("/echo", json={"word": "café", "n": [1, 2]})
    assert response.status == 201
    assert response.header("Content-Type") == "application/json"
    assert response.json() == {"got": {"word": "café", "n": [1, 2]}, "is_json": True}
    bad = client.post("/echo", data=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status == 400


def test_views_may_return_plain_values(tmp_path: Path) -> None:
    routes = [
        path("/str", lambda r: "<b>hi</b>"),
        path("/dict", lambda r: {"a": 1}),
        path("/list", lambda r: [1, 2]),
        path("/bytes", lambda r: b"raw"),
        path("/tuple", lambda r: ("made", 201, {"X-Thing": "yes"})),
        path("/none", lambda r: None),
    ]
    client = Client(make_app(tmp_path, routes))
    assert client.get("/str").header("Content-Type") == "text/html; charset=utf-8"
    assert client.get("/dict").json() == {"a": 1}
    assert client.get("/list").json() == [1, 2]
    assert client.get("/bytes").body == b"raw"
    made = client.get("/tuple")
    assert (made.status, made.body, made.header("X-Thing")) == (201, b"made", "yes")
    assert client.get("/none").status == 500


def test_header_injection_is_refused(tmp_path: Path) -> None:
    def evil(request: Request) -> Response:
        return RedirectResponse("/ok\r\nSet-Cookie: admin=1")

    client = Client(make_app(tmp_path, [path("/evil", evil)]))
    response = client.get("/evil")
    assert response.status == 500 and response.header("Set-Cookie") is None


# -- uploads ---------------------------------------------------------------------

def test_multipart_upload_with_fields_and_files(tmp_path: Path) -> None:
    saved = tmp_path / "uploads"
    saved.mkdir()

    def upload(request: Request) -> dict[str, Any]:
        photo = request.files["photo"]
        path_written = photo.save(saved)
        return {"title": request.form["title"], "name": photo.filename, "size": photo.size,
                "type": photo.content_type, "saved": path_written.name,
                "many": [f.filename for f in request.getall_files("docs")]}

    client = Client(make_app(tmp_path, [path("/upload", upload, methods=["POST"])]))
    png = bytes(range(256)) * 40 + b"\r\n--not-a-boundary\r\n"
    response = client.post("/upload", data={"title": "été"}, files={
        "photo": ("C:\\Users\\ann\\cat.png", png, "image/png"),
        "docs": ("../../etc/passwd", b"x", "text/plain")})
    assert response.status == 200, response.text
    assert response.json() == {"title": "été", "name": "cat.png", "size": len(png),
                               "type": "image/png", "saved": "cat.png", "many": ["passwd"]}
    assert (saved / "cat.png").read_bytes() == png


def test_upload_size_limit_gives_413(tmp_path: Path) -> None:
    def upload(request: Request) -> str:
        return str(request.files["f"].size)

    app = make_app(tmp_path, [path("/up", upload, methods=["POST"])],
                   max_upload_size=10_000, max_body_size=100)
    client = Client(app)
    assert client.post("/up", data={}, files={"f": ("a", b"x" * 5000, "x/y")}).text == "5000"
    assert client.post("/up", data={}, files={"f": ("a", b"x" * 20_000, "x/y")}).status == 413
    # Other bodies have their own, smaller limit.
    assert client.post("/up", data={"big": "y" * 500}).status == 413


def test_malformed_multipart_is_a_400(tmp_path: Path) -> None:
    client = Client(make_app(tmp_path, [path("/up", lambda r: str(r.form), methods=["POST"])]))
    response = client.post("/up", data=b"--b\r\nno headers here",
                           headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status == 400


# -- sessions -------------------------------------------------------------------

def test_session_survives_round_trips_and_rejects_tampering(tmp_path: Path) -> None:
    def count(request: Request) -> dict[str, Any]:
        request.session["n"] = request.session.get("n", 0) + 1
        return {"n": request.session["n"], "rejected": request.session.rejected}

    app = make_app(tmp_path, [path("/count", count)])
    client = Client(app)
    assert client.get("/count").json()["n"] == 1
    response = client.get("/count")
    assert response.json() == {"n": 2, "rejected": False}
    cookie = response.header("Set-Cookie") or ""
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Vary" in dict(response.headers)

    # Tamper: give ourselves n = 1000, keeping the old signature.
    _, stamp, signature = client.cookies["session"].split(".")
    forged = CookieSessions("another key").dump({"n": 1000}).split(".")[0]
    client.cookies["session"] = f"{forged}.{stamp}.{signature}"
    assert client.get("/count").json() == {"n": 1, "rejected": True}
    # A cookie signed with another key is rejected too.
    client.cookies["session"] = CookieSessions("another key").dump({"n": 1000})
    assert client.get("/count").json() == {"n": 1, "rejected": True}
    # Flip one character of the signature.
    value = client.cookies["session"]
    client.cookies["session"] = value[:-1] + ("A" if value[-1] != "A" else "B")
    assert client.get("/count").json()["rejected"] is True


def test_session_expires_and_too_big_sessions_fail_loudly(tmp_path: Path) -> None:
    now = [1_000_000.0]
    sessions = CookieSessions(SECRET, max_age=60, clock=lambda: now[0])
    value = sessions.dump({"user": 7})
    assert sessions.load(value) == {"user": 7}
    now[0] += 61
    assert sessions.load(value).rejected
    with pytest.raises(ValueError):
        sessions.dump({"big": "x" * 5000})

    def big(request: Request) -> str:
        request.session["big"] = "x" * 5000
        return "ok"

    assert Client(make_app(tmp_path, [path("/big", big)])).get("/big").status == 500


def test_emptied_session_deletes_the_cookie(tmp_path: Path) -> None:
    def login(request: Request) -> str:
        request.session["user"] = "ann"
        return "in"

    def logout(request: Request) -> str:
        request.session.clear()
        return "out"

    client = Client(make_app(tmp_path, [path("/in", login), path("/out", logout)]))
    client.get("/in")
    assert "session" in client.cookies
    response = client.get("/out")
    assert "Max-Age=0" in (response.header("Set-Cookie") or "")
    assert "session" not in client.cookies


# -- templates ------------------------------------------------------------------

def test_templates_escape_an_xss_payload(tmp_path: Path) -> None:
    def page(request: Request) -> Response:
        return render(request, "page.html", title=XSS, text=request.query.get("q", ""))

    client = Client(make_app(tmp_path, [path("/", home, name="home"), path("/page", page)]))
    response = client.get("/page?q=%3Cscript%3Esteal()%3C%2Fscript%3E")
    assert response.status == 200
    assert "<script>" not in response.text and "onerror=alert" not in response.text.replace(
        "onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in response.text
    assert "&lt;script&gt;steal()&lt;/script&gt;" in response.text
    assert 'href="/"' in response.text and 'href="/static/site.css"' in response.text


def test_autoescape_is_on_for_any_file_name(tmp_path: Path) -> None:
    app = make_app(tmp_path, [])
    (tmp_path / "templates" / "note.txt").write_text("{{ v }}")
    assert app.templates.render("note.txt", {"v": "<b>"}) == "&lt;b&gt;"


# -- static files -------------------------------------------------------------------

def test_static_files_with_validators_and_a_jail(tmp_path: Path) -> None:
    client = Client(make_app(tmp_path, [path("/", home)]))
    css = client.get("/static/site.css")
    assert css.status == 200 and css.body == b"body { color: red }"
    assert css.header("Content-Type") == "text/css; charset=utf-8"
    etag = css.header("ETag")
    assert etag
    again = client.get("/static/site.css", headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b""
    assert client.get("/static/sub/logo.svg").header("Content-Type") == (
        "image/svg+xml; charset=utf-8")
    head = client.head("/static/site.css")
    assert head.status == 200 and head.body == b"" and head.header("Content-Length") == "19"
    for bad in ("/static/../outside.txt", "/static/%2e%2e/outside.txt", "/static/.secret",
                "/static/sub", "/static/", "/static/nope.css", "/static/sub/..%2f..%2foutside.txt"):
        assert client.get(bad).status == 404, bad
    assert client.post("/static/site.css").status == 405


def test_file_and_stream_responses(tmp_path: Path) -> None:
    data = tmp_path / "report.bin"
    data.write_bytes(b"z" * 200_000)

    def download(request: Request) -> Response:
        return FileResponse(data, download_name="rapport été.bin")

    def stream(request: Request) -> Response:
        return StreamResponse((f"{n}," for n in range(5)), content_type="text/plain")

    client = Client(make_app(tmp_path, [path("/dl", download), path("/stream", stream)]))
    response = client.get("/dl")
    assert response.body == data.read_bytes()
    assert response.header("Content-Disposition") == (
        "attachment; filename=\"rapport ?t?.bin\"; filename*=UTF-8''rapport%20%C3%A9t%C3%A9.bin")
    assert client.get("/stream").body == b"0,1,2,3,4,"


# -- errors, methods, hooks ----------------------------------------------------------------

def test_404_405_options_and_trailing_slash(tmp_path: Path) -> None:
    routes = [path("/", home), path("/about", home), path("/form", home, methods=["POST"])]
    client = Client(make_app(tmp_path, routes))
    assert client.get("/missing").status == 404
    response = client.delete("/about")
    assert response.status == 405 and response.header("Allow") == "GET, HEAD"
    assert client.get("/form").header("Allow") == "POST"
    options = client.request("OPTIONS", "/about")
    assert options.status == 204 and options.header("Allow") == "GET, HEAD"
    moved = client.get("/about/?x=1")
    assert moved.status == 308 and moved.header("Location") == "/about?x=1"


def test_error_pages_show_a_traceback_only_in_debug(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    def crash(request: Request) -> str:
        secret_local = "s3cr3t"  # noqa: F841 - what a traceback could reveal
        raise RuntimeError("the <database> is down")

    quiet = Client(make_app(tmp_path, [path("/crash", crash)]))
    with caplog.at_level(logging.ERROR, logger="ionet.web"):
        response = quiet.get("/crash")
    assert response.status == 500
    assert "Traceback" not in response.text and "database" not in response.text
    assert "RuntimeError" in caplog.text  # logged for the operator

    loud = Client(make_app(tmp_path, [path("/crash", crash)], debug=True))
    response = loud.get("/crash")
    assert response.status == 500
    assert "Traceback" in response.text and "the &lt;database&gt; is down" in response.text
    assert "test_app.py" in response.text


def test_http_errors_and_project_error_templates(tmp_path: Path) -> None:
    def teapot(request: Request) -> str:
        raise HTTPError(418, "short and <stout>")

    def bad(request: Request) -> str:
        raise BadRequest("no")

    app = make_app(tmp_path, [path("/tea", teapot), path("/bad", bad), path("/", home, name="home")])
    (tmp_path / "templates" / "404.html").write_text(
        "custom {{ status }} {{ reason }} at {{ request.path }} <a href=\"{{ url('home') }}\">")
    client = Client(app)
    response = client.get("/tea")
    assert response.status == 418 and "short and &lt;stout&gt;" in response.text
    assert client.get("/bad").status == 400
    missing = client.get("/<script>")
    assert missing.status == 404
    assert missing.text == 'custom 404 Not Found at /&lt;script&gt; <a href="/">'


def test_before_and_after_hooks_and_settings_middleware(tmp_path: Path) -> None:
    calls: list[str] = []

    class Audit:
        def before_request(self, request: Request) -> None:
            calls.append(f"audit {request.path}")

        def after_request(self, request: Request, response: Response) -> Response:
            response.set_header("X-Audited", "yes")
            return response

    app = make_app(tmp_path, [path("/", home), path("/private", home)], middleware=[Audit])

    @app.before_request
    def guard(request: Request) -> Response | None:
        if request.path == "/private" and request.headers.get("X-Key") != "k":
            return Response("no", 403)
        return None

    @app.after_request
    def timing(request: Request, response: Response) -> None:
        response.set_header("X-Seen", request.path)

    client = Client(app)
    assert client.get("/").header("X-Audited") == "yes"
    denied = client.get("/private")
    assert denied.status == 403 and denied.header("X-Seen") == "/private"
    assert client.get("/private", headers={"X-Key": "k"}).status == 200
    assert client.get("/nope").header("X-Audited") == "yes"  # error pages too
    assert calls == ["audit /", "audit /private", "audit /private", "audit /nope"]


def test_head_keeps_the_length_and_drops_the_body(tmp_path: Path) -> None:
    client = Client(make_app(tmp_path, [path("/", lambda r: "x" * 100)]))
    response = client.head("/")
    assert response.status == 200 and response.body == b""
    assert response.header("Content-Length") == "100"


def test_settings_need_a_secret_outside_debug(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings()
    assert Settings(debug=True).secret_key  # a random one, for trying things out
    with pytest.raises(ValueError):
        Settings(secret_key="x", static_url="static")
    with pytest.raises(ValueError):
        Settings(secret_key="x", trusted_proxies=["not an address"])


def test_the_example_project_loads_twice_independently() -> None:
    site = Path(__file__).resolve().parents[2] / "examples" / "site"
    one, two = Client(App.from_project(site)), Client(App.from_project(site))
    assert one.post("/guestbook", data={"name": "ann", "message": "hi"}).status == 303
    assert one.get("/api/messages").json()["count"] == 1
    assert two.get("/api/messages").json()["count"] == 0
    assert json.loads(one.get("/api/messages/1").body)["name"] == "ann"
    assert one.get("/api/messages/2").status == 404
    home_page = one.get("/")
    assert home_page.header("X-Frame-Options") == "DENY"  # the project's middleware
    assert 'src="/static/logo.png"' in home_page.text
    assert one.get("/static/logo.png").body.startswith(b"\x89PNG")
