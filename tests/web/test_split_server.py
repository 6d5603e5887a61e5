"""The example site over real sockets: the three ways to run it, the split on every
HTTP engine, and the split's failures (framework killed and restarted mid-run,
framework frozen) answered at once with 502/504.

Servers are real processes on port 0 (``ServerProcess``); nothing sleeps to
wait: readiness and recovery are polled with ``wait_until``.
"""

from __future__ import annotations

import collections
import signal
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ionet.core.testing import ServerProcess, wait_until
from tests.web.conftest import WAYS, framework, front, site
from tests.web.site_client import Browser, check_site


@pytest.mark.parametrize("way", WAYS)
def test_the_example_site_runs_three_ways(way: str) -> None:
    with site(way) as address:
        check_site(address, f"ann-{way}")


@pytest.fixture(scope="module")
def shared_framework():  # type: ignore[no-untyped-def]
    with framework() as server:
        yield server


def test_the_split_on_every_http_engine(engine: str, shared_framework: ServerProcess) -> None:
    with front(shared_framework.address("tcp"), engine) as server:
        check_site(server.address("tcp"), f"via-{engine}")


@pytest.mark.parametrize("fw_engine", ["thread", "asyncio", "gevent"])
def test_the_framework_on_other_engines(fw_engine: str) -> None:
    with framework(fw_engine) as fw, front(fw.address("tcp")) as server:
        check_site(server.address("tcp"), f"fw-{fw_engine}")


def test_the_http_server_can_send_the_static_files_itself(
        shared_framework: ServerProcess) -> None:
    static = Path(__file__).parents[2] / "examples" / "site" / "static"
    with front(shared_framework.address("tcp"), extra=[str(static)]) as server, \
            Browser(server.address("tcp")) as browser:
        image = browser.get("/static/logo.png")
        assert image.status == 200 and image.body == (static / "logo.png").read_bytes()
        assert image.headers["X-Frame-Options"] is None  # not through the framework
        assert image.headers["Accept-Ranges"] == "bytes"  # ionet.http's StaticFiles
        home = browser.get("/")
        assert home.status == 200 and home.headers["X-Frame-Options"] == "DENY"


def hello_status(address: tuple[str, int]) -> int:
    with Browser(address, timeout=5) as browser:
        return browser.get("/hello").status


@pytest.mark.parametrize("engine", ["epoll", "thread"])
def test_framework_killed_and_restarted_mid_run(engine: str) -> None:
    """Clients keep asking while the framework dies: 502s at once, then 200s again."""
    fw = ServerProcess(["web", "serve", str(Path(__file__).parents[2] / "examples" / "site")])
    fw.start()
    port = fw.address("tcp")[1]
    try:
        with front(("127.0.0.1", port), engine, timeout=5) as server:
            address = server.address("tcp")
            statuses: collections.Counter[int] = collections.Counter()
            slowest = [0.0]
            errors: list[BaseException] = []
            stop = threading.Event()

            def hammer() -> None:
                try:
                    with Browser(address, timeout=5) as browser:
                        while not stop.is_set():
                            began = time.monotonic()
                            statuses[browser.get("/hello").status] += 1
                            slowest[0] = max(slowest[0], time.monotonic() - began)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=hammer) for _ in range(4)]
            for thread in threads:
                thread.start()
            try:
                wait_until(lambda: statuses[200] >= 50 or bool(errors), message="traffic")
                fw.kill()  # SIGKILL: no goodbye, connections just break
                began = time.monotonic()
                assert hello_status(address) == 502
                assert time.monotonic() - began < 1.0  # at once, no hang
                wait_until(lambda: statuses[502] >= 20 or bool(errors), message="502s")
                fw.stop(check=False)

                with framework(port=port):
                    wait_until(lambda: hello_status(address) == 200, timeout=10,
                               message="recovery")
                    served = statuses[200]
                    wait_until(lambda: statuses[200] >= served + 50 or bool(errors),
                               message="traffic after the restart")
                    stop.set()
                    for thread in threads:
                        thread.join(10)
            finally:
                stop.set()
                for thread in threads:
                    thread.join(10)
            assert not errors, errors
            assert set(statuses) <= {200, 502}, statuses
            assert slowest[0] < 3.0
    finally:
        fw.stop(check=False)


@pytest.mark.parametrize("engine", ["epoll", "thread"])
def test_a_frozen_framework_gets_504_in_time_and_then_recovers(engine: str) -> None:
    with framework() as fw, front(fw.address("tcp"), engine, timeout=1.0) as server:
        address = server.address("tcp")
        assert hello_status(address) == 200
        fw.signal(signal.SIGSTOP)  # alive but silent: connects succeed, replies never come
        try:
            began = time.monotonic()
            with ThreadPoolExecutor(4) as pool:
                results = list(pool.map(lambda _: hello_status(address), range(4)))
            elapsed = time.monotonic() - began
            assert results == [504] * 4
            assert 0.9 <= elapsed < 3.0, elapsed  # the timeout, for all four at once
        finally:
            fw.signal(signal.SIGCONT)
        wait_until(lambda: hello_status(address) == 200, message="recovery")


SLOW_PROJECT = {
    "settings.py": "SECRET_KEY = 'k'\nMAX_UPLOAD_SIZE = 3_000_000\n",
    "urls.py": textwrap.dedent("""\
        from ionet.web import path
        from . import views

        urlpatterns = [
            path('/slow', views.slow), path('/fast', views.fast), path('/big', views.big),
            path('/ticker', views.ticker), path('/upload', views.upload, methods=['POST']),
        ]
        """),
    "views.py": textwrap.dedent("""\
        import hashlib
        import time

        from ionet.web import Response, StreamResponse

        BIG = bytes(range(256)) * 12288  # 3 MiB

        def slow(request):
            time.sleep(float(request.query.get("s", "1")))
            return "slow"

        def fast(request):
            return "fast"

        def big(request):
            return Response(BIG, content_type="application/octet-stream")

        def ticker(request):
            return StreamResponse((b"tick %d\\n" % n for n in range(100)))

        def upload(request):
            data = request.files["file"].data
            return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        """),
}


@pytest.fixture
def slow_project(tmp_path: Path) -> Path:
    for name, text in SLOW_PROJECT.items():
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("engine", ["epoll", "thread", "gevent"])
def test_big_streamed_and_uploaded_bodies_through_the_split(engine: str,
                                                           slow_project: Path) -> None:
    import hashlib

    import httpx

    big = bytes(range(256)) * 12288
    with ServerProcess(["web", "serve", str(slow_project)]) as fw, \
            front(fw.address("tcp"), engine, timeout=10) as server:
        host, port = server.address("tcp")
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=20) as client:
            response = client.get("/big")
            assert response.status_code == 200 and response.content == big
            assert response.headers["content-length"] == str(len(big))
            ticks = client.get("/ticker")
            assert ticks.status_code == 200 and ticks.headers["transfer-encoding"] == "chunked"
            assert ticks.content == b"".join(b"tick %d\n" % n for n in range(100))
            payload = big[:2_000_000]
            uploaded = client.post("/upload", files={"file": ("big.bin", payload)})
            assert uploaded.json() == {"size": len(payload),
                                       "sha256": hashlib.sha256(payload).hexdigest()}
            too_big = client.post("/upload", files={"file": ("big.bin", big + big)})
            assert too_big.status_code == 413
            assert client.get("/fast").text == "fast"  # the connection is still in step


def test_the_framework_takes_requests_concurrently(slow_project: Path) -> None:
    """Eight one-second views at once take about one second, not eight, and a fast
    request meanwhile is not stuck behind them."""
    with ServerProcess(["web", "serve", str(slow_project), "--engine", "epoll"]) as fw, \
            front(fw.address("tcp"), "epoll", timeout=10) as server:
        address = server.address("tcp")

        def get(target: str) -> tuple[int, bytes, float]:
            began = time.monotonic()
            with Browser(address) as browser:
                page = browser.get(target)
            return page.status, page.body, time.monotonic() - began

        began = time.monotonic()
        with ThreadPoolExecutor(9) as pool:
            slow = [pool.submit(get, "/slow?s=1") for _ in range(8)]
            wait_until(lambda: time.monotonic() - began > 0.2, interval=0.05)
            status, body, fast_time = get("/fast")
            results = [future.result() for future in slow]
        elapsed = time.monotonic() - began
        assert (status, body) == (200, b"fast") and fast_time < 0.5
        assert all(result[:2] == (200, b"slow") for result in results)
        assert elapsed < 3.0, elapsed


def test_bad_upstream_option_is_a_clear_error() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "ionet", "http", "serve", "--upstream",
                             "nowhere", "--port", "0"], capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 2 and "HOST:PORT" in result.stderr
    result = subprocess.run([sys.executable, "-m", "ionet", "web", "serve", "/no/such/dir",
                             "--port", "0"], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 2 and "no project folder" in result.stderr
