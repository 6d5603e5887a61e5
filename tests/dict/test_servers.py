"""``ionet dict serve`` as a real process: both ports over raw sockets, every
engine under 100 concurrent clients, restarts, workers, MariaDB."""

from __future__ import annotations

import argparse
import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

from ionet.dict import cli as dict_cli
from ionet.dict.client import DictClient
from tests.dict.conftest import DictServer, MySQLDatabase, load_sample

PASSWORD = "correct horse battery"


def dict_session(address: tuple[str, int]) -> tuple[socket.socket, Any]:
    sock = socket.create_connection(address, timeout=20)
    reader = sock.makefile("rb")
    banner = reader.readline()
    assert banner.startswith(b"220 ") and b"<auth.mime>" in banner
    return sock, reader


def read_reply(reader: Any) -> list[bytes]:
    """Lines up to and including the final status line of one DICT reply."""
    lines = []
    in_text = False
    while True:
        line = reader.readline()
        assert line.endswith(b"\r\n"), line
        lines.append(line)
        code = line[:3]
        if in_text:
            if line == b".\r\n":
                in_text = False
            continue
        if code in (b"110", b"111", b"112", b"113", b"114", b"151", b"152"):
            in_text = True
        elif code != b"150":
            return lines


def test_json_over_a_socket_split_and_merged(data_dir: Path) -> None:
    with DictServer(data_dir) as server:
        sock = socket.create_connection(server.json_address, timeout=20)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        request = json.dumps({"op": "lookup", "word": "苹果", "id": 1}).encode() + b"\n"
        for byte in request:  # one byte per segment
            sock.send(bytes([byte]))
            time.sleep(0.001)
        assert json.loads(reader.readline())["definitions"][0]["db"] == "cedict"
        merged = b"".join(json.dumps({"op": "lookup", "word": w, "id": n}).encode() + b"\n"
                          for n, w in enumerate(["apple", "banana", "zebra"] * 30))
        sock.sendall(merged + b"this is not json\n" + b"x" * 20_000 + b"\n"
                     + b'{"op": "quit"}\n')
        replies = [json.loads(reader.readline()) for _ in range(93)]
        assert [r["id"] for r in replies[:90]] == list(range(90))
        assert [r.get("error") for r in replies[90:]] == ["bad-json", "too-long", None]
        assert reader.readline() == b""  # closed after quit
        reader.close()
        sock.close()


def test_dict_over_a_raw_socket(data_dir: Path) -> None:
    with DictServer(data_dir) as server:
        sock, reader = dict_session(server.dict_address)
        sock.sendall(b"CLIENT raw test\r\nDEFINE * apple\r\nMATCH sample prefix app\r\n"
                     b"SHOW DB\r\nDEFINE cedict \xe8\x8b\xb9\xe6\x9e\x9c\r\n")  # pipelined
        assert read_reply(reader) == [b"250 ok\r\n"]
        define = read_reply(reader)
        assert define[0] == b"150 2 definitions retrieved\r\n" and define[-1].startswith(b"250 ")
        match = read_reply(reader)
        assert match[0].startswith(b"152 ") and b'sample "apple"\r\n' in match
        assert read_reply(reader)[0] == b"110 3 databases present\r\n"
        chinese = b"".join(read_reply(reader)).decode()
        assert "píng guǒ" in chinese
        sock.sendall(b"DEFINE sample " + b"a" * 1100 + b"\r\nSTATUS\r\nQUIT\r\n")
        assert read_reply(reader) == [b"500 line too long\r\n"]
        assert read_reply(reader)[0].startswith(b"210 status")
        assert read_reply(reader)[0].startswith(b"221 bye")
        assert reader.readline() == b""
        reader.close()
        sock.close()


def client_session(json_address: tuple[str, int], dict_address: tuple[str, int], n: int,
                   errors: list[str], barrier: threading.Barrier) -> None:
    """One of the concurrent clients: look-ups on both ports; every 10th
    registers, logs in and checks that its history is its own."""
    try:
        barrier.wait(timeout=60)
        with DictClient(*json_address, timeout=60) as client:
            hit = client.request("lookup", word="apple")
            assert [d["db"] for d in hit["definitions"]] == ["sample", "cedict-en"], hit
            miss = client.request("lookup", word="bananna", db="sample")
            assert miss["suggestions"][0] == "banana", miss
            if n % 10 == 0:
                name = f"user{n}"
                assert client.request("register", name=name, password=PASSWORD)["ok"]
                assert client.request("login", name=name, password=PASSWORD)["ok"]
                client.request("lookup", word=f"zebra{n}")
                history = client.request("history", limit=0)["history"]
                assert [(h["name"], h["word"]) for h in history] == [(name, f"zebra{n}")]
            client.request("quit")
        if n % 4 == 0:
            sock, reader = dict_session(dict_address)
            sock.sendall(b"DEFINE sample zebra\r\nQUIT\r\n")
            assert read_reply(reader)[0] == b"150 1 definitions retrieved\r\n"
            assert read_reply(reader)[0].startswith(b"221 ")
            reader.close()
            sock.close()
    except BaseException as exc:  # collected and reported by the main thread
        errors.append(f"client {n}: {exc!r}")


def test_100_concurrent_clients(engine: str, data_dir: Path) -> None:
    with DictServer(data_dir, engine, start_timeout=60) as server:
        errors: list[str] = []
        barrier = threading.Barrier(100)
        threads = [threading.Thread(target=client_session,
                                    args=(server.json_address, server.dict_address, n, errors,
                                          barrier)) for n in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors[:5]
        assert not any(thread.is_alive() for thread in threads)


def test_state_survives_a_restart(data_dir: Path) -> None:
    with DictServer(data_dir) as server, DictClient(*server.json_address) as client:
        assert client.request("register", name="ann", password=PASSWORD)["ok"]
        client.request("login", name="ann", password=PASSWORD)
        client.request("lookup", word="apple")
        client.request("lookup", word="苹果")
    with DictServer(data_dir, "thread") as server, DictClient(*server.json_address) as client:
        assert client.request("register", name="ann", password=PASSWORD)["error"] == "name-taken"
        started = time.monotonic()
        assert client.request("login", name="ann", password="not it")["error"] == "login-failed"
        assert time.monotonic() - started >= 0.9  # a failed login is answered late
        assert client.request("login", name="ann", password=PASSWORD)["ok"]
        words = [h["word"] for h in client.request("history")["history"]]
        assert words == ["苹果", "apple"]


def test_simultaneous_registrations_across_worker_processes(data_dir: Path) -> None:
    """Two processes (``--workers 2``), many connections racing for one name:
    SQLite's UNIQUE constraint and its write lock let exactly one win."""
    with DictServer(data_dir, "epoll", "--workers", "2") as server:
        barrier = threading.Barrier(12)
        outcomes: list[str] = []

        def register() -> None:
            with DictClient(*server.json_address) as client:
                barrier.wait(timeout=30)
                reply = client.request("register", name="racer", password=PASSWORD)
                outcomes.append("ok" if reply["ok"] else reply["error"])

        threads = [threading.Thread(target=register) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(outcomes) == ["name-taken"] * 11 + ["ok"]


def test_a_server_on_mariadb(tmp_path: Path, mysql_db: MySQLDatabase) -> None:
    store = mysql_db.store()
    store.setup()
    load_sample(store)
    store.close()
    argv = ["--db", mysql_db.url]
    with DictServer(tmp_path, "epoll", *argv) as server:
        with DictClient(*server.json_address) as client:
            assert client.request("register", name="ann", password=PASSWORD)["ok"]
            assert client.request("login", name="ann", password=PASSWORD)["ok"]
            assert client.request("lookup", word="苹果")["definitions"][0]["db"] == "cedict"
        sock, reader = dict_session(server.dict_address)
        sock.sendall(b"DEFINE sample apple\r\n")
        assert read_reply(reader)[0] == b"150 1 definitions retrieved\r\n"
        reader.close()
        sock.close()
    with DictServer(tmp_path, "fork", *argv) as server, DictClient(*server.json_address) as client:
        assert client.request("login", name="ann", password=PASSWORD)["ok"]
        assert [h["word"] for h in client.request("history")["history"]] == ["苹果"]


def test_first_start_loads_the_default_data_with_a_log_line(tmp_path: Path) -> None:
    """The one test that loads the whole of CC-CEDICT: fast, once, complete."""
    server = DictServer(tmp_path, "epoll", start_timeout=120)
    server.argv.remove("--no-default-data")
    with server:
        log = server.stderr()
        assert "loading the default dictionary CC-CEDICT" in log
        loaded = re.search(r"loaded cedict \((\d+) entries\) and cedict-en \((\d+) entries\) "
                           r"in ([\d.]+) s", log)
        assert loaded is not None, log
        assert int(loaded[1]) > 150_000 and int(loaded[2]) > 50_000
        assert float(loaded[3]) < 30
        with DictClient(*server.json_address) as client:
            simplified = client.request("lookup", word="苹果")["definitions"]
            assert [d["db"] for d in simplified] == ["cedict"]
            assert "píng guǒ" in simplified[0]["text"]
            traditional = client.request("lookup", word="蘋果")["definitions"]
            assert traditional[0]["text"] == simplified[0]["text"]
            assert "苹果" in client.request("lookup", word="apple")["definitions"][0]["text"]
            assert len(client.request("lookup", word="行")["definitions"]) >= 2  # every entry
            about = client.request("about")["about"]
            assert "CC BY-SA 4.0" in about and "MDBG" in about
    again = DictServer(tmp_path, "epoll")
    again.argv.remove("--no-default-data")
    with again, DictClient(*again.json_address) as client:  # no second load
        assert client.request("lookup", word="苹果")["definitions"]
        assert "loading the default" not in again.stderr()


def test_ionet_up_includes_both_dictionary_ports(data_dir: Path) -> None:
    args = argparse.Namespace(host="127.0.0.1", data_dir=data_dir, certfile=None, keyfile=None)
    endpoints = dict_cli.up_endpoints(args)
    assert [(e.service, e.port) for e in endpoints] == [("dict", 8888), ("dict", 2628)]


def test_a_full_server_says_so_on_both_ports(data_dir: Path) -> None:
    with DictServer(data_dir, "epoll", "--max-connections", "1") as server:
        with DictClient(*server.json_address) as first:
            assert first.request("lookup", word="apple")["ok"]
            with socket.create_connection(server.json_address, timeout=10) as second:
                reply = json.loads(second.makefile("rb").readline())
                assert reply["error"] == "busy"
            with socket.create_connection(server.dict_address, timeout=10) as third:
                assert third.makefile("rb").readline() == b"420 Server temporarily unavailable\r\n"
