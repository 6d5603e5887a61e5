"""The HTTP benchmark's own parts: wrk's output, the server commands, the table.

(The benchmark itself needs wrk, nginx, uvicorn and gunicorn and minutes of
runtime: it is run by hand, ``python bench/http.py``.)
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

from ionet.bench import http as bench

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:8000/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms  301.12us   9.87ms   90.12%
    Req/Sec    62.91k     2.10k   66.00k    80.00%
  Latency Distribution
     50%    0.98ms
     75%    1.07ms
     90%    1.21ms
     99%  850.00us
  626003 requests in 10.00s, 77.61MB read
  Socket errors: connect 0, read 12, write 0, timeout 0
  Non-2xx or 3xx responses: 3
Requests/sec:  62594.61
Transfer/sec:      7.76MB
"""


def test_parse_wrk() -> None:
    result = bench.parse_wrk(WRK_OUTPUT)
    assert result.rate == pytest.approx(62594.61)
    assert result.p99_ms == pytest.approx(0.85)
    assert result.errors == "connect 0, read 12, write 0, timeout 0"
    assert result.non_2xx == 3 and result.requests == 626003
    result.server_cpu = 6.26003
    assert result.cpu_us == pytest.approx(10.0)
    with pytest.raises(ValueError):
        bench.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_server_commands(tmp_path: Path) -> None:
    argv, env = bench.server_command("ionet", "hello", 1, 8000, tmp_path)
    assert argv[1:5] == ["-m", "ionet", "http", "serve"] and "--quiet" in argv
    assert "--app" in argv and "--workers" not in argv and env == {}
    argv, env = bench.server_command("ionet@base", "static 4K", 2, 8000, tmp_path,
                                     {"base": Path("/old")})
    assert str(tmp_path) in argv and argv[-2:] == ["--workers", "2"]
    assert env == {"PYTHONPATH": "/old/src"}
    argv, _ = bench.server_command("uvicorn", "hello", 2, 8000, tmp_path)
    assert {"uvloop", "httptools", "--no-access-log"} <= set(argv)
    argv, _ = bench.server_command("nginx", "hello", 2, 8000, tmp_path)
    conf = (tmp_path / "nginx-8000.conf").read_text()
    assert argv[0] == "nginx" and "worker_processes 2;" in conf
    assert "keepalive_requests 1000000;" in conf and "access_log off;" in conf


def test_make_site(tmp_path: Path) -> None:
    bench.make_site(tmp_path)
    assert os.path.getsize(tmp_path / "4k.bin") == 4096
    assert os.path.getsize(tmp_path / "1m.bin") == 1 << 20
    namespace: dict[str, object] = {"__file__": str(tmp_path / "wsgi_app.py")}
    exec((tmp_path / "wsgi_app.py").read_text(), namespace)  # noqa: S102 - our own app
    started: list[str] = []
    body = namespace["app"]({"PATH_INFO": "/"}, lambda s, h: started.append(s))  # type: ignore[operator]
    assert body == [b"Hello, World!"] and started == ["200 OK"]


def test_table_and_ratios() -> None:
    cells = {}
    for server, rates in (("ionet", [30000, 36000, 33000]), ("uvicorn", [20000, 20000, 20000])):
        cell = bench.Cell(server, "hello", 1)
        for rate in rates:
            run = bench.WrkResult(rate, 2.0, requests=rate * 10, server_cpu=rate * 10 * 20e-6)
            cell.runs.append(run)
        cells[(server, "hello", 1)] = cell
    assert bench.ratio(cells, "hello", 1, "ionet", "uvicorn") == pytest.approx(1.65)
    assert bench.ratio(cells, "hello", 1, "ionet", "uvicorn", cpu=True) == pytest.approx(1.0)
    console = Console(file=io.StringIO(), width=200)
    console.print(bench.build_table(cells, ["ionet", "uvicorn"], ["hello"], [1], 3, 10))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "33,000 (2.0)" in text and "1.65" in text and ">= 1.5" in text
