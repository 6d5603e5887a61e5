"""The standard DICT clients against our server: Debian's ``dict`` and GNU ``dico``.

They need the Debian packages ``dict`` and ``dico``; a missing one is a
failure (CI installs them), not a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ionet.dict.client import DictClient
from tests.dict.conftest import DictServer

PASSWORD = "correct horse battery"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"the {name!r} client is missing: apt-get install dict dico", pytrace=False)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sample_db: Path) -> Iterator[DictServer]:
    folder = tmp_path_factory.mktemp("clients")
    shutil.copy(sample_db, folder / "dict.sqlite3")
    with DictServer(folder) as running:
        yield running


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8"})


def dict_cmd(server: DictServer, *args: str) -> subprocess.CompletedProcess[str]:
    host, port = server.dict_address
    return run([tool("dict"), "-h", host, "-p", str(port), *args])


def dico_cmd(server: DictServer, *args: str) -> subprocess.CompletedProcess[str]:
    host, port = server.dict_address
    return run([tool("dico"), "--host", host, "--port", str(port), "-q", "--noauth", *args])


def test_dict_defines(server: DictServer) -> None:
    done = dict_cmd(server, "apple")
    assert done.returncode == 0, done.stderr
    assert "2 definitions found" in done.stdout
    assert "From A small English sample [sample]:" in done.stdout
    assert "the round fruit of a tree of the rose family" in done.stdout
    assert "苹果 (蘋果) [píng guǒ] apple" in done.stdout
    chinese = dict_cmd(server, "-d", "cedict", "苹果")
    assert chinese.returncode == 0 and "1. apple" in chinese.stdout
    dotted = dict_cmd(server, "-d", "sample", ".dotted")
    assert ".this line starts with a dot" in dotted.stdout and "..and two" in dotted.stdout


def test_dict_suggests_on_a_miss(server: DictServer) -> None:
    done = dict_cmd(server, "-d", "sample", "appel")
    assert done.returncode != 0
    assert 'No definitions found for "appel", perhaps you mean:' in done.stderr
    assert "sample:  appeal  apple" in done.stderr


def test_dict_lists_and_matches(server: DictServer) -> None:
    dbs = dict_cmd(server, "-D")
    assert "sample" in dbs.stdout and "cedict-en" in dbs.stdout
    strats = dict_cmd(server, "-S")
    assert "soundex" in strats.stdout and "lev" in strats.stdout
    info = dict_cmd(server, "-i", "cedict")
    assert "CC BY-SA 4.0" in info.stdout
    assert "ionet" in dict_cmd(server, "-I").stdout
    match = dict_cmd(server, "-m", "-s", "prefix", "-d", "sample", "appl")
    assert "apple" in match.stdout and "application" in match.stdout
    mime = dict_cmd(server, "-M", "-d", "sample", "zebra")
    assert "an African equine with stripes" in mime.stdout


def test_dict_auth_records_history(server: DictServer) -> None:
    with DictClient(*server.json_address) as client:
        client.request("register", name="dora", password=PASSWORD)
        client.request("login", name="dora", password=PASSWORD)
        key = client.request("dict_key")["key"]
        ok = dict_cmd(server, "-u", "dora", "-k", key, "-d", "sample", "banana")
        assert ok.returncode == 0 and "a long curved fruit" in ok.stdout
        refused = dict_cmd(server, "-u", "dora", "-k", "not the key", "-d", "sample", "orange")
        assert "Authentication to" in refused.stderr and "denied" in refused.stderr
        assert [h["word"] for h in client.request("history")["history"]] == ["banana"]


def test_dico(server: DictServer) -> None:
    done = dico_cmd(server, "-d", "sample", "zebra")
    assert done.returncode == 0, done.stderr
    assert "an African equine with stripes" in done.stdout
    assert "píng guǒ" in dico_cmd(server, "-d", "cedict", "苹果").stdout
    dbs = dico_cmd(server, "-D")
    assert "cedict-en" in dbs.stdout
    match = dico_cmd(server, "-d", "sample", "-s", "lev", "appel")
    assert "apple" in match.stdout
