"""Run the example site the three ways the README gives, for the socket and browser tests.

    in-process   ionet http serve --app wsgi:app            (in examples/site)
    split        ionet web serve examples/site  +  ionet http serve --upstream HOST:PORT
    gunicorn     gunicorn --chdir examples/site wsgi:app
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ionet.core.testing import ServerProcess

SITE = Path(__file__).resolve().parents[2] / "examples" / "site"
WAYS = ("inprocess", "split", "gunicorn")
START_TIMEOUT = 20.0


@contextlib.contextmanager
def gunicorn(site: Path = SITE) -> Iterator[tuple[str, int]]:
    """``gunicorn --chdir SITE wsgi:app`` on a free port; yields its address."""
    pytest.importorskip("gunicorn")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--chdir", str(site), "-b", "127.0.0.1:0",
         "-w", "1", "-k", "gthread", "--threads", "4", "--graceful-timeout", "5", "wsgi:app"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    log = b""
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while not (found := re.search(rb"Listening at: http://([\d.]+):(\d+)", log)):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"gunicorn did not start:\n{log.decode(errors='replace')}")
            select.select([proc.stderr], [], [], 0.1)
            log += proc.stderr.read() or b""
        yield found[1].decode(), int(found[2])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


@contextlib.contextmanager
def framework(engine: str = "epoll", port: int | None = None) -> Iterator[ServerProcess]:
    """``ionet web serve examples/site`` (port 0 unless given)."""
    argv = ["web", "serve", str(SITE), "--engine", engine]
    if port is not None:
        argv += ["--port", str(port)]
    with ServerProcess(argv) as server:
        yield server


@contextlib.contextmanager
def front(upstream: tuple[str, int], engine: str = "epoll",
          timeout: float = 5.0, extra: list[str] | None = None) -> Iterator[ServerProcess]:
    """``ionet http serve --upstream HOST:PORT``."""
    argv = ["http", "serve", "--upstream", f"{upstream[0]}:{upstream[1]}", "--engine", engine,
            "--quiet", "--upstream-timeout", str(timeout), *(extra or [])]
    with ServerProcess(argv) as server:
        yield server


@contextlib.contextmanager
def site(way: str, engine: str = "epoll") -> Iterator[tuple[str, int]]:
    """The example site run ``way``; yields the HTTP address to browse."""
    if way == "inprocess":
        with ServerProcess(["http", "serve", "--app", "wsgi:app", "--engine", engine,
                            "--quiet"], cwd=str(SITE)) as server:
            yield server.address("tcp")
    elif way == "split":
        with framework() as fw, front(fw.address("tcp"), engine) as server:
            yield server.address("tcp")
    elif way == "gunicorn":
        with gunicorn() as address:
            yield address
    else:
        raise ValueError(way)


@pytest.fixture
def run_site() -> Callable[..., contextlib.AbstractContextManager[tuple[str, int]]]:
    return site
