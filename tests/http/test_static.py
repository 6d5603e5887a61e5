"""Static files on a fake transport: safe paths, conditional and range requests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ionet.http import StaticFiles
from ionet.http.static import UNSATISFIABLE, content_type, parse_range
from ionet.http.status import http_date
from tests.http.util import FakeConnection, Response, get, write_file


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    write_file(root / "index.html", b"<h1>home</h1>")
    write_file(root / "hello.txt", b"hello, world\n")
    write_file(root / "data.bin", bytes(range(256)) * 4)
    (root / "sub").mkdir()
    write_file(root / "sub" / "page.html", b"sub page")
    (root / "empty").mkdir()
    write_file(root / "empty" / "<b>&x.txt", b"x")
    write_file(root / "with space.txt", b"spaced")
    write_file(tmp_path / "secret.txt", b"TOP SECRET")
    (root / "inside-link.txt").symlink_to(root / "hello.txt")
    (root / "outside-link.txt").symlink_to(tmp_path / "secret.txt")
    (root / "outside-dir").symlink_to(tmp_path)
    return root


def fetch(root: Path, *requests: bytes, listing: bool = False, small_file: int = 64 * 1024,
          head: frozenset[int] = frozenset()) -> list[Response]:
    conn = FakeConnection(StaticFiles(root, listing=listing, small_file=small_file))
    conn.feed(b"".join(requests))
    return conn.responses(head=head)


def test_a_file(site: Path) -> None:
    [response] = fetch(site, get("/hello.txt"))
    assert response.status == 200 and response.body == b"hello, world\n"
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    assert response.header("Accept-Ranges") == "bytes"
    assert (response.header("ETag") or "").startswith('"')
    mtime = int(os.stat(site / "hello.txt").st_mtime)
    assert response.header("Last-Modified") == http_date(mtime)


def test_index_html_and_the_directory_redirect(site: Path) -> None:
    home, sub_redirect, empty_dir = fetch(site, get("/"), get("/sub?x=1"), get("/empty/"))
    assert home.body == b"<h1>home</h1>"
    assert home.header("Content-Type") == "text/html; charset=utf-8"
    assert sub_redirect.status == 301 and sub_redirect.header("Location") == "/sub/?x=1"
    assert empty_dir.status == 404  # no index, no listing


def test_directory_listing_escapes_names(site: Path) -> None:
    [response] = fetch(site, get("/empty/"), listing=True)
    assert response.status == 200
    assert b"&lt;b&gt;&amp;x.txt" in response.body
    assert b'href="%3Cb%3E%26x.txt"' in response.body
    assert b"<b>&x" not in response.body


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt", "/..%2Fsecret.txt",
    "/sub%2fpage.html", "/..%5csecret.txt", "/hello.txt%00.html", "/outside-link.txt",
    "/outside-dir/secret.txt", "/outside-dir/www/hello.txt", "/nope.txt", "/hello.txt/",
    "/hello.txt/x", "/%ff",
])
def test_traversal_and_missing_files_are_404(site: Path, path: str) -> None:
    [response] = fetch(site, get(path))
    assert response.status == 404, path
    assert b"SECRET" not in response.body


def test_links_inside_the_root_work(site: Path) -> None:
    [response] = fetch(site, get("/inside-link.txt"))
    assert response.status == 200 and response.body == b"hello, world\n"


def test_percent_encoded_names(site: Path) -> None:
    [response] = fetch(site, get("/with%20space.txt"))
    assert response.body == b"spaced"


def test_methods(site: Path) -> None:
    post, options, head = fetch(site, get("/hello.txt", method="POST", body=b"x"),
                                get("/hello.txt", method="OPTIONS"),
                                get("/hello.txt", method="HEAD"), head=frozenset({2}))
    assert post.status == 405 and post.header("Allow") == "GET, HEAD, OPTIONS"
    assert options.status == 204 and options.header("Allow") == "GET, HEAD, OPTIONS"
    assert head.status == 200 and head.body == b"" and head.header("Content-Length") == "13"


def test_conditional_requests(site: Path) -> None:
    [first] = fetch(site, get("/hello.txt"))
    etag, modified = first.header("ETag"), first.header("Last-Modified")
    not_modified, weak, other, since, old = fetch(
        site, get("/hello.txt", f"If-None-Match: {etag}"),
        get("/hello.txt", f'If-None-Match: "nope", W/{etag}'),
        get("/hello.txt", 'If-None-Match: "nope"'),
        get("/hello.txt", f"If-Modified-Since: {modified}"),
        get("/hello.txt", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT"))
    assert not_modified.status == 304 and not_modified.body == b""
    assert not_modified.header("ETag") == etag and not_modified.header("Content-Length") is None
    assert weak.status == 304
    assert other.status == 200
    assert since.status == 304
    assert old.status == 200 and old.body == b"hello, world\n"


@pytest.mark.parametrize("small_file", [64 * 1024, 0])  # from the cache, and by sendfile
def test_ranges(site: Path, small_file: int) -> None:
    data = (site / "data.bin").read_bytes()
    size = len(data)
    responses = fetch(site, get("/data.bin", "Range: bytes=10-19"),
                      get("/data.bin", "Range: bytes=1000-"),
                      get("/data.bin", "Range: bytes=-5"),
                      get("/data.bin", "Range: bytes=0-999999"),
                      get("/data.bin", f"Range: bytes={size}-"),
                      get("/data.bin", "Range: bytes=0-1,5-6"),
                      get("/data.bin", "Range: lines=1-2"),
                      get("/data.bin", "Range: bytes=5-1"),
                      small_file=small_file)
    middle, tail, suffix, whole, beyond, multi, unit, backwards = responses
    assert middle.status == 206 and middle.body == data[10:20]
    assert middle.header("Content-Range") == f"bytes 10-19/{size}"
    assert tail.status == 206 and tail.body == data[1000:]
    assert suffix.status == 206 and suffix.body == data[-5:]
    assert whole.status == 206 and whole.body == data
    assert beyond.status == 416 and beyond.header("Content-Range") == f"bytes */{size}"
    for ignored in (multi, unit, backwards):
        assert ignored.status == 200 and ignored.body == data


def test_if_range(site: Path) -> None:
    [first] = fetch(site, get("/data.bin"))
    etag = first.header("ETag")
    same, changed = fetch(site, get("/data.bin", "Range: bytes=0-1", f"If-Range: {etag}"),
                          get("/data.bin", "Range: bytes=0-1", 'If-Range: "old"'))
    assert same.status == 206 and len(same.body) == 2
    assert changed.status == 200 and len(changed.body) == 1024


def test_large_files_go_by_sendfile_and_are_closed(site: Path) -> None:
    handler = StaticFiles(site, small_file=100)
    conn = FakeConnection(handler)
    conn.feed(get("/data.bin") + get("/data.bin", "Range: bytes=100-199"))
    full, part = conn.responses()
    assert full.body == (site / "data.bin").read_bytes() and part.body == full.body[100:200]
    files = [f for f, _, _ in conn.transport.files]
    assert len(files) == 2
    assert files[0].closed  # released once a later write showed it was sent
    conn.transport.lose()
    assert files[1].closed  # released when the connection ended


def test_a_changed_file_is_never_served_stale(site: Path) -> None:
    handler = StaticFiles(site)
    conn = FakeConnection(handler)
    conn.feed(get("/hello.txt"))
    write_file(site / "hello.txt", b"changed!")
    os.utime(site / "hello.txt", ns=(1, 1))
    conn.feed(get("/hello.txt"))
    first, second = conn.responses()
    assert first.body == b"hello, world\n" and second.body == b"changed!"
    assert first.header("ETag") != second.header("ETag")


def test_mounted_under_a_prefix(site: Path) -> None:
    conn = FakeConnection(StaticFiles(site, prefix="/static/"))
    conn.feed(get("/static/hello.txt") + get("/hello.txt") + get("/static/sub"))
    found, outside, redirect = conn.responses()
    assert found.body == b"hello, world\n" and outside.status == 404
    assert redirect.header("Location") == "/static/sub/"


def test_content_types() -> None:
    assert content_type("a.html") == "text/html; charset=utf-8"
    assert content_type("a.css") == "text/css; charset=utf-8"
    assert content_type("a.js").endswith("javascript; charset=utf-8")
    assert content_type("a.json") == "application/json; charset=utf-8"
    assert content_type("a.png") == "image/png"
    assert content_type("a.tar.gz") == "application/octet-stream"
    assert content_type("noext") == "application/octet-stream"


@pytest.mark.parametrize("header, expected", [
    (b"bytes=0-0", (0, 0)), (b"bytes=0-", (0, 99)), (b"bytes=-1", (99, 99)),
    (b"bytes=-1000", (0, 99)), (b"bytes=50-1000", (50, 99)), (b"bytes = 1 - 2", (1, 2)),
    (b"bytes=100-", UNSATISFIABLE), (b"bytes=-0", UNSATISFIABLE),
    (b"bytes=1-2,3-4", None), (b"bytes=a-b", None), (b"bytes=2-1", None), (b"items=1-2", None),
    (b"bytes=", None), (b"bytes=--1", None),
])
def test_parse_range(header: bytes, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


segments = st.sampled_from(["..", ".", "%2e%2e", "%2E.", ".%2e", "%2f", "%5c", "%00", "\\", "",
                            "sub", "hello.txt", "outside-dir", "outside-link.txt", "www",
                            "secret.txt", "%2e", "%252e%252e", "%c0%ae%c0%ae"])


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(segments, max_size=8))
def test_fuzz_resolve_never_leaves_the_root(site: Path, parts: list[str]) -> None:
    handler = StaticFiles(site)
    found = handler.resolve(("/" + "/".join(parts)).encode())
    if found is not None:
        real = os.path.realpath(found[0])
        assert real == handler.root or real.startswith(handler.root + os.sep)
