"""Shared fixtures: the engine matrix, a TLS certificate, a browser, leak checks.

Every service test that takes the ``engine`` fixture runs once per engine in
``ionet.core.engines.ENGINES`` (uvicorn's parametrized ``http_protocol_cls``,
CPython's per-selector test classes): one suite, every implementation.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ionet.core.engines import ENGINES, get_engine

LOOP_ENGINES = ("select", "poll", "epoll", "asyncio", "uvloop")

#: The browser tests drive Debian's Chromium (``apt-get install chromium``)
#: through Playwright, rather than a browser Playwright downloads.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each engine name in turn; the engine must be importable here."""
    name: str = request.param
    get_engine(name)  # a missing engine or extra is a failure, not a skip
    return name


@pytest.fixture(params=LOOP_ENGINES)
def loop_engine(request: pytest.FixtureRequest) -> str:
    """Each engine that multiplexes connections in one thread."""
    return str(request.param)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for 'localhost' (PEM files)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium (Playwright's sync ``Browser``), one per test module.

    Module-scoped rather than session-scoped: Playwright's sync API runs its
    own event loop, which should not stay open while other modules run
    asyncio in this thread.
    """
    playwright_sync = pytest.importorskip("playwright.sync_api")
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM} "
                    "(apt-get install chromium)")
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                    headless=True, timeout=30_000)
        try:
            yield browser
        finally:
            browser.close()
