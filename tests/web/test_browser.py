"""The example site in headless Chromium (Debian's, driven by Playwright), run each way.

Load the home page (its image must really load), follow the link to the
guestbook, submit the form with a script in the message, land on the result
page after the redirect, and check that the message shows as text, the
notice comes from the session, and no script ran.  The ``browser`` fixture
is in ``tests/conftest.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import WAYS, site


@pytest.mark.parametrize("way", WAYS)
def test_home_form_and_result_page(browser: Any, way: str) -> None:
    with site(way) as (host, port):
        base = f"http://{host}:{port}"
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        try:
            page.goto(base + "/")
            assert page.text_content("#title") == "ionet example site"
            # The image came from static/ and decoded as a 96x96 picture.
            page.wait_for_function("document.querySelector('#logo').complete")
            assert page.evaluate("document.querySelector('#logo').naturalWidth") == 96
            count_before = int(page.text_content("#count") or "0")

            page.click("#guestbook-link")
            page.wait_for_url(base + "/guestbook")
            evil = "<script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">"
            page.fill("#name", f"Ann ({way})")
            page.fill("#message", f"Hello from Chromium {evil}")
            with page.expect_navigation():
                page.click("#sign button[type=submit]")

            # Post/redirect/get: we are on the GET page, with the notice from the session.
            assert page.url == base + "/guestbook"
            notice = page.text_content("#notice") or ""
            assert notice.startswith(f"Thank you, Ann ({way}): your message is number")
            newest = page.locator("#entries .entry").first
            assert newest.locator(".who").text_content() == f"Ann ({way})"
            assert newest.locator(".what").text_content() == f"Hello from Chromium {evil}"
            assert page.evaluate("document.querySelectorAll('#entries script, "
                                 "#entries img').length") == 0
            assert page.evaluate("window.pwned") is None
            assert page.input_value("#name") == f"Ann ({way})"  # remembered in the session

            page.reload()  # a reload does not post again, and the notice is gone
            assert page.locator("#notice").count() == 0
            page.goto(base + "/")
            assert int(page.text_content("#count") or "0") == count_before + 1
            assert errors == []
        finally:
            context.close()
