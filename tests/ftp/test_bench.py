"""The FTP benchmark's own pieces: its load client against our server, its table."""

from __future__ import annotations

from pathlib import Path

from ionet.bench import ftp as bench


def test_load_client_and_table(tmp_path: Path) -> None:
    site = bench.make_site(tmp_path, 2 * bench.MiB)
    with bench.ionet_server(site, "epoll") as server:
        many = bench.measure_many(server, clients=5)
        rate = bench.measure_retr(server, site)
    assert many.rate > 0 and many.p99_ms > 0 and rate > 0
    ours, theirs = bench.Column("ionet epoll"), bench.Column("pyftpdlib")
    for row in bench.ROWS:
        ours.add(row, 200.0)
        theirs.add(row, 100.0)
    _, markdown = bench.build_table([ours, theirs], "test")
    assert "| RETR 256 MiB (MiB/s) | 200 | 100 | 2.00 |" in markdown
    assert "| 50 clients p99 (ms) | 200 | 100 | 0.50 |" in markdown
