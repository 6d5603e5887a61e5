"""The FTP benchmark's own pieces: its load client against our server, its table."""

from __future__ import annotations

import time
from pathlib import Path

from ionet.bench import ftp as bench


def test_load_client_and_table(tmp_path: Path) -> None:
    site = bench.make_site(tmp_path, 2 * bench.MiB)
    with bench.ionet_server(site, "epoll") as server:
        many = bench.measure_many(server, clients=5)
        retr = bench.measure_retr(server, site)
    assert many.rate > 0 and many.p99_ms > 0 and retr.rate > 0
    # The server's CPU is read from /proc: a session costs it something.
    assert many.cpu_us_per_retr > 0 and retr.cpu_ms_per_mib > 0
    ours, theirs = bench.Column("ionet epoll"), bench.Column("pyftpdlib")
    for row in bench.ROWS:
        ours.add(row, 200.0)
        theirs.add(row, 100.0)
    _, markdown = bench.build_table([ours, theirs], "test")
    assert "| RETR 256 MiB (MiB/s) | 200 | 100 | 2.00 |" in markdown
    assert "| 50 clients p99 (ms) | 200 | 100 | 0.50 |" in markdown
    assert "| RETR server CPU (ms/MiB) | 200 | 100 | 0.50 |" in markdown


def test_table_leaves_out_rows_not_measured() -> None:
    ours, theirs = bench.Column("ionet epoll"), bench.Column("pyftpdlib")
    for column in (ours, theirs):
        column.add(bench.RETR, 100.0)
        column.add(bench.RETR_CPU, 0.25)
    _, markdown = bench.build_table([ours, theirs], "test")
    assert "| RETR server CPU (ms/MiB) | 0.250 | 0.250 | 1.00 |" in markdown
    assert "STOR" not in markdown and "50 clients" not in markdown


def test_tree_cpu_counts_children(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from ionet.bench.cpu import tree_cpu

    # A child that burns CPU, then a grandchild it waits for: both are counted.
    code = ("import subprocess, sys, time\n"
            "def burn():\n"
            "    end = time.process_time() + 0.2\n"
            "    while time.process_time() < end: pass\n"
            "burn()\n"
            "subprocess.run([sys.executable, '-c', 'import time\\n"
            "end = time.process_time() + 0.2\\nwhile time.process_time() < end: pass'])\n"
            "sys.stdout.write('done\\n'); sys.stdout.flush(); sys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "done\n"
        used = tree_cpu(child.pid)
    finally:
        child.communicate("")
    assert 0.35 < used < 5.0
    assert tree_cpu(os.getpid()) > 0


def test_cpu_meter_counts_a_child_that_ends_inside_the_block() -> None:
    import subprocess
    import sys

    from ionet.bench.cpu import CpuMeter

    # The parent sleeps; its child burns ~0.3 s of CPU and exits before the block ends.
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    code = ("import subprocess, sys\n"
            f"subprocess.run([sys.executable, '-c', {burn!r}])\n"
            "sys.stdin.read()")
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    try:
        with CpuMeter(parent.pid) as meter:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(_children(parent.pid)) == 0:
                time.sleep(0.01)
            while time.monotonic() < deadline and _children(parent.pid):
                time.sleep(0.01)  # until the child has ended
    finally:
        parent.communicate(b"")
    assert 0.2 < meter.seconds < 5.0


def test_cpu_meter_counts_threads_that_end_inside_the_block() -> None:
    import subprocess
    import sys

    from ionet.bench.cpu import CpuMeter

    # A thread per "connection", as the thread engine has: each burns ~0.1 s
    # of CPU and ends; the process lives on with its main thread asleep.
    code = ("import sys, threading, time\n"
            "def burn():\n"
            "    end = time.thread_time() + 0.1\n"
            "    while time.thread_time() < end: pass\n"
            "sys.stdin.readline()\n"
            "for _ in range(4):\n"
            "    t = threading.Thread(target=burn); t.start(); t.join()\n"
            "sys.stdout.write('done\\n'); sys.stdout.flush(); sys.stdin.read()\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdin is not None and process.stdout is not None
        with CpuMeter(process.pid) as meter:
            process.stdin.write("go\n")
            process.stdin.flush()
            assert process.stdout.readline() == "done\n"
    finally:
        process.communicate("")
    assert 0.3 < meter.seconds < 5.0


def _children(pid: int) -> list[str]:
    with open(f"/proc/{pid}/task/{pid}/children") as file:
        return file.read().split()
