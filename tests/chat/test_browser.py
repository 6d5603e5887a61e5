"""The chat page in headless Chromium (Debian's, driven by Playwright).

Two browser pages chat with each other through ``/chat/ws``; a message that
is a ``<script>`` element shows as text and runs nothing.  The page and the
WebSocket come from ionet's HTTP server (``ionet chat serve --http-port``);
the ``browser`` fixture is in ``tests/conftest.py``.
"""

from __future__ import annotations

from typing import Any


def open_chat(browser: Any, url: str, name: str) -> Any:
    page = browser.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors
    response = page.goto(url)
    assert response is not None and response.status == 200
    assert response.headers["server"] == "ionet"  # the HTTP server, not a stand-in
    assert "script-src 'sha256-" in response.headers["content-security-policy"]
    page.fill("#name", name)
    page.click("#join button")
    page.wait_for_selector("#say:not([hidden])")
    return page


def test_two_pages_chat_and_a_script_shows_as_text(browser: Any, chat_server) -> None:  # type: ignore[no-untyped-def]
    with chat_server("epoll") as server:
        host, port = server.http
        url = f"http://{host}:{port}/chat/"
        ann = open_chat(browser, url, "ann")
        bob = open_chat(browser, url, "bob")
        ann.wait_for_selector("#log .info:has-text('bob joined the chat')")

        ann.fill("#text", "hello bob")
        ann.press("#text", "Enter")
        bob.wait_for_selector("#log .message:has-text('ann: hello bob')")

        evil = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">"
        bob.fill("#text", evil)
        bob.press("#text", "Enter")
        line = ann.wait_for_selector("#log .message:has-text('bob: <script>')")
        assert line.text_content() == f"bob: {evil}"
        assert ann.evaluate("document.querySelectorAll('#log script, #log img').length") == 0
        assert ann.evaluate("window.pwned") is None

        ann.fill("#text", "/who")
        ann.press("#text", "Enter")
        ann.wait_for_selector("#log .info:has-text('in #lobby: ann, bob')")

        bob.close()
        ann.wait_for_selector("#log .info:has-text('bob left the chat')")
        assert ann.errors == []
        ann.close()
