"""The DICT protocol (RFC 2229) through the fake transport: every command and reply."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ionet.core.testing import FakeClock, FakeTransport, feed_split
from ionet.dict.accounts import Accounts
from ionet.dict.rfc2229 import MAX_COMMAND, DictProtocol, split_params, text_lines
from ionet.dict.service import DictService
from ionet.dict.sqlite import SQLiteStore
from ionet.dict.store import DictionaryMeta, Entry
from tests.dict.conftest import cheap_hasher


@pytest.fixture
def service(tmp_path: Path, sample_db: Path) -> Iterator[DictService]:
    shutil.copy(sample_db, tmp_path / "dict.sqlite3")
    store = SQLiteStore(tmp_path / "dict.sqlite3")
    yield DictService(store, Accounts(store, hasher=cheap_hasher()), login_delay=1.0)
    store.close()


class Dict:
    """A DICT session on a fake transport."""

    def __init__(self, service: DictService, **options: Any) -> None:
        self.clock = FakeClock()
        self.transport = FakeTransport(clock=self.clock, **options)
        self.protocol = DictProtocol(service, hostname="testhost")
        self.transport.connect(self.protocol)
        self.banner = self.transport.take().decode()

    def cmd(self, line: str | bytes) -> str:
        data = line if isinstance(line, bytes) else line.encode()
        self.transport.feed(data + b"\r\n")
        return self.transport.take().decode()


def test_banner_has_capabilities_and_a_msg_id(service: DictService) -> None:
    d = Dict(service)
    assert re.fullmatch(
        r"220 testhost ionet \S+ <auth\.mime> <\d+\.\d+\.\d+\.[0-9a-f]+@testhost>\r\n", d.banner)
    assert Dict(service).protocol.msg_id != d.protocol.msg_id


def test_define_one_database(service: DictService) -> None:
    d = Dict(service)
    reply = d.cmd("DEFINE sample apple")
    assert reply.startswith('150 1 definitions retrieved\r\n'
                            '151 "apple" sample "A small English sample"\r\n')
    assert "apple\r\n   the round fruit of a tree of the rose family\r\n.\r\n250 ok" in reply
    assert reply.endswith("\r\n")
    assert d.cmd("define sample APPLE").startswith("150 1")  # case-insensitive, both
    pie = d.cmd('DEFINE sample "apple pie"')
    assert pie.startswith('150 1 definitions retrieved\r\n151 "Apple pie"')
    assert d.cmd("DEFINE sample 'apple pie'").startswith("150 1")
    assert d.cmd("DEFINE sample nothing") == "552 no match\r\n"
    assert d.cmd("DEFINE nosuch apple") == "550 invalid database, use SHOW DB for list\r\n"


def test_define_star_and_bang(service: DictService) -> None:
    d = Dict(service)
    star = d.cmd("DEFINE * apple")
    assert star.startswith("150 2 definitions retrieved")
    assert '151 "apple" sample ' in star and '151 "apple" cedict-en ' in star
    bang = d.cmd("DEFINE ! apple")
    assert bang.startswith("150 1 definitions retrieved") and " sample " in bang
    chinese = d.cmd("DEFINE * 苹果")
    assert '151 "苹果" cedict "CC-CEDICT Chinese-English dictionary"' in chinese
    assert "píng guǒ" in chinese


def test_dot_stuffing(service: DictService) -> None:
    reply = Dict(service).cmd("DEFINE sample .dotted")
    body = reply.split("\r\n")[2:]
    assert body[:3] == ["..dotted", "..this line starts with a dot", "...and two"]
    assert body[3] == "."


def test_text_lines_are_cut_below_the_limit() -> None:
    lines = text_lines("é" * 2000 + "\n.x")
    assert all(len(line) <= 1024 for line in lines)
    assert b"".join(line[:-2] for line in lines[:-2]).decode() == "é" * 2000
    assert lines[-2:] == [b"..x\r\n", b".\r\n"]


def test_match_strategies(service: DictService) -> None:
    d = Dict(service)
    lev = d.cmd("MATCH sample lev appel")
    assert lev.startswith("152 2 matches found\r\n") and "\r\n.\r\n250 ok" in lev
    assert sorted(re.findall(r'sample "([^"]+)"', lev)) == ["appeal", "apple"]
    assert d.cmd("MATCH sample . appel").startswith("152 2")  # "." is the default: lev
    prefix = d.cmd("MATCH sample prefix APPL")
    assert re.findall(r'sample "([^"]+)"', prefix) == [
        "apple", "Apple pie", "appliance", "application", "apply"]
    assert re.findall(r'"([^"]+)"', d.cmd("MATCH sample suffix ana")) == ["banana"]
    assert re.findall(r'"([^"]+)"', d.cmd("MATCH sample substring ppli")) == [
        "appliance", "application"]
    assert re.findall(r'"([^"]+)"', d.cmd("MATCH sample exact ZEBRA")) == ["Zebra"]
    assert 'sample "apple"' in d.cmd("MATCH sample soundex apel")
    assert d.cmd("MATCH * lev appel").count("\r\n") >= 4
    bang = d.cmd("MATCH ! exact apple")
    assert "sample" in bang and "cedict-en" not in bang
    assert d.cmd("MATCH sample nope apple") == "551 invalid strategy, use SHOW STRAT for a list\r\n"
    assert d.cmd("MATCH sample exact zzzz") == "552 no match\r\n"
    assert d.cmd("MATCH nosuch exact apple").startswith("550 ")


def test_show_commands(service: DictService) -> None:
    d = Dict(service)
    dbs = d.cmd("SHOW DB")
    assert dbs.startswith("110 3 databases present\r\n")
    assert 'sample "A small English sample"\r\n' in dbs and dbs.endswith(".\r\n250 ok\r\n")
    assert d.cmd("SHOW DATABASES") == dbs
    strat = d.cmd("SHOW STRAT")
    assert strat.startswith("111 6 strategies available\r\n") and 'lev "' in strat
    assert d.cmd("show strategies") == strat
    info = d.cmd("SHOW INFO cedict")
    assert info.startswith("112 database information follows\r\n")
    assert "CC BY-SA 4.0" in info and "MDBG" in info and info.endswith("\r\n.\r\n250 ok\r\n")
    assert "\r\n..a line starting with a dot\r\n" in d.cmd("SHOW INFO sample")
    assert d.cmd("SHOW INFO nosuch").startswith("550 ")
    server = d.cmd("SHOW SERVER")
    assert server.startswith("114 server information\r\n") and "cedict-en" in server
    assert d.cmd("SHOW NOTHING") == "501 syntax error, illegal parameters\r\n"
    assert d.cmd("SHOW") == "501 syntax error, illegal parameters\r\n"


def test_empty_store_has_no_databases(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "empty.db")
    store.setup()
    d = Dict(DictService(store))
    assert d.cmd("SHOW DB") == "554 no databases present\r\n"
    assert d.cmd("DEFINE * apple") == "552 no match\r\n"
    store.close()


def test_client_status_help_option_quit(service: DictService) -> None:
    d = Dict(service)
    assert d.cmd("CLIENT dict 1.13.0/rf on Linux") == "250 ok\r\n"
    d.cmd("DEFINE sample apple")
    assert re.fullmatch(r"210 status \[d/m/c = 1/0/0; [\d.]+r 0\.000u 0\.000s\]\r\n",
                        d.cmd("STATUS"))
    help_text = d.cmd("HELP")
    assert help_text.startswith("113 help text follows\r\n") and "DEFINE database word" in help_text
    assert d.cmd("OPTION FOO") == "503 parameter not implemented\r\n"
    assert d.cmd("OPTION MIME") == "250 ok - using MIME headers\r\n"
    mime = d.cmd("DEFINE sample apple")
    assert '151 "apple" sample "A small English sample"\r\nContent-Type: text/plain; ' \
           'charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\napple\r\n' in mime
    assert d.cmd("SHOW DB").startswith("110 3 databases present\r\nContent-Type:")
    assert d.cmd("SASLAUTH PLAIN xyz") == "502 command not implemented\r\n"
    assert d.cmd("QUIT").startswith("221 bye")
    assert d.transport.closed


@pytest.mark.parametrize("line, reply", [
    (b"FROBNICATE", "500 unknown command"),
    (b"DEFINE", "501 syntax error, illegal parameters"),
    (b"DEFINE sample", "501 syntax error, illegal parameters"),
    (b"DEFINE sample apple pie", "501 syntax error, illegal parameters"),
    (b'DEFINE sample "apple', "501 syntax error, illegal parameters"),
    (b"STATUS now", "501 syntax error, illegal parameters"),
    (b"MATCH sample lev", "501 syntax error, illegal parameters"),
    (b"DEFINE sample \xff\xfe", "500 syntax error, command is not valid UTF-8"),
])
def test_syntax_errors_keep_the_session(service: DictService, line: bytes, reply: str) -> None:
    d = Dict(service)
    assert d.cmd(line) == reply + "\r\n"
    assert d.cmd("DEFINE sample apple").startswith("150 ")


def test_the_1024_byte_line_limit(service: DictService) -> None:
    d = Dict(service)
    exact = b"DEFINE sample " + b"a" * (MAX_COMMAND - len(b"DEFINE sample "))
    assert d.cmd(exact) == "552 no match\r\n"  # 1022 + CRLF = 1024: allowed
    assert d.cmd(exact + b"a") == "500 line too long\r\n"
    assert d.cmd("DEFINE sample apple").startswith("150 ")
    assert d.cmd("") == ""  # an empty line is ignored


def test_pipelined_and_split_commands_keep_their_order(service: DictService) -> None:
    commands = b"DEFINE sample apple\r\nSTATUS\r\nDEFINE sample zebra\r\nQUIT\r\n"
    expected = ["150", "151", "250", "210", "150", "151", "250", "221"]
    merged = Dict(service, run_workers=False)
    merged.transport.feed(commands)  # all at once, while workers are held
    while merged.transport.pending_workers:
        merged.transport.run_pending_workers()
    split = Dict(service)
    feed_split(split.transport, commands, [3, 5])
    for d in (merged, split):
        codes = [line[:3] for line in d.transport.take().decode().split("\r\n")
                 if re.match(r"\d{3} ", line)]
        assert codes == expected


def test_lf_only_lines_are_accepted(service: DictService) -> None:
    d = Dict(service)
    d.transport.feed(b"DEFINE sample apple\n")
    assert d.transport.take().startswith(b"150 ")


def test_auth_maps_to_an_account_and_records_history(service: DictService) -> None:
    service.accounts.register("ann", "correct horse")
    key = service.accounts.new_dict_key("ann")
    d = Dict(service)
    answer = hashlib.md5((d.protocol.msg_id + key).encode()).hexdigest()
    assert d.cmd(f"AUTH ann {answer}") == "230 authentication successful\r\n"
    d.cmd("DEFINE * banana")
    d.cmd("MATCH * lev banan")  # matches are not look-ups
    assert [h.word for h in service.store.history("ann")] == ["banana"]

    other = Dict(service)
    assert other.cmd(f"AUTH ann {answer}") == ""  # another msg-id: refused, after a delay
    other.clock.advance(1.1)
    assert other.transport.take().startswith(b"531 access denied")
    other.cmd("DEFINE * apple")
    assert [h.word for h in service.store.history("ann")] == ["banana"]


def test_split_params() -> None:
    assert split_params('DEFINE * "a \\"quoted\\" word"') == ["DEFINE", "*", 'a "quoted" word']
    assert split_params("  MATCH  wn   lev  x ") == ["MATCH", "wn", "lev", "x"]
    assert split_params("AUTH 'it''s'") == ["AUTH", "it", "s"]
    with pytest.raises(ValueError):
        split_params("DEFINE * 'open")


def test_long_definition_lines_are_wrapped(service: DictService) -> None:
    service.store.replace_dictionary(DictionaryMeta("long", "long lines"),
                                     [Entry("long", "x" * 3000)])
    service.warm()
    reply = Dict(service).cmd("DEFINE long long").encode()
    assert max(len(line) + 2 for line in reply.split(b"\r\n")) <= 1024
    assert reply.count(b"x") == 3000
