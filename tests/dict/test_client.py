"""``ionet dict client`` in a pseudo-terminal (pexpect): the course's two menus."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from ionet.dict.client import default_language
from tests.dict.conftest import DictServer

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sample_db: Path) -> Iterator[DictServer]:
    folder = tmp_path_factory.mktemp("client")
    shutil.copy(sample_db, folder / "dict.sqlite3")
    with DictServer(folder) as running:
        yield running


def spawn(port: int, *args: str, lang_env: str = "C.UTF-8") -> pexpect.spawn:
    env = {**os.environ, "NO_COLOR": "1", "LANG": lang_env, "LC_ALL": "", "LC_MESSAGES": "",
           "COLUMNS": "100"}
    return pexpect.spawn(sys.executable, ["-m", "ionet", "dict", "client", "--port", str(port),
                                          *args], env=env, encoding="utf-8", timeout=20,
                         dimensions=(40, 100))


def test_register_login_lookup_history_logout(server: DictServer) -> None:
    child = spawn(server.json_address[1], "--lang", "en")
    try:
        child.expect("1 register  2 login  3 quit")
        child.sendline("1")
        child.expect("user name: ")
        child.sendline("emma")
        child.expect("password: ")
        child.sendline(PASSWORD)
        child.expect("password again: ")
        child.sendline("something else")
        child.expect("the two passwords differ")
        child.sendline("1")
        child.expect("user name: ")
        child.sendline("emma")
        child.expect("password: ")
        child.sendline(PASSWORD)
        child.expect("password again: ")
        child.sendline(PASSWORD)
        child.expect("registered emma")
        child.sendline("1")  # the same name again
        child.expect("user name: ")
        child.sendline("emma")
        child.expect("password: ")
        child.sendline(PASSWORD)
        child.expect("password again: ")
        child.sendline(PASSWORD)
        child.expect("that user name is taken")

        child.sendline("2")
        child.expect("user name: ")
        child.sendline("emma")
        child.expect("password: ")
        child.sendline("wrong password!")
        child.expect("wrong user name or password")
        child.sendline("2")
        child.expect("user name: ")
        child.sendline("emma")
        child.expect("password: ")
        child.sendline(PASSWORD)
        child.expect("welcome, emma")
        child.expect(r"1 look up  2 history  3 log out")

        child.sendline("1")
        child.expect("word")
        child.sendline("apple")
        child.expect(r"the round fruit of a tree of the rose family")
        child.expect(r"píng guǒ")
        child.expect("word")
        child.sendline("苹果")
        child.expect(r"1\. apple")
        child.expect("word")
        child.sendline("bananna")
        child.expect("no definition of 'bananna'")
        child.expect("did you mean: banana")
        child.expect("word")
        child.sendline("##")
        child.expect("1 look up")
        child.sendline("1")
        child.expect("word")
        child.sendline("")  # an empty line leaves too
        child.expect("1 look up")

        child.sendline("2")
        child.expect(r"latest 10 or all\?")
        child.sendline("")
        child.expect("bananna")
        child.expect("苹果")
        child.expect("apple")
        child.expect("1 look up")
        child.sendline("9")
        child.expect("please choose 1, 2 or 3")
        child.sendline("3")
        child.expect("logged out")
        child.expect("1 register  2 login  3 quit")
        child.sendline("about")
        child.expect("CC BY-SA 4.0")
        child.sendline("3")
        child.expect("bye")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert PASSWORD not in (child.before or "")


def test_chinese_interface_from_the_locale(server: DictServer) -> None:
    child = spawn(server.json_address[1], lang_env="zh_CN.UTF-8")
    try:
        child.expect("1 注册  2 登录  3 退出")
        child.sendline("2")
        child.expect("用户名: ")
        child.sendline("nobody")
        child.expect("密码: ")
        child.sendline("whatever it is")
        child.expect("用户名或密码错误")
        child.sendline("1")
        child.expect("用户名: ")
        child.sendline("有 空格")
        child.expect("密码: ")
        child.sendline(PASSWORD)
        child.expect("再次输入密码: ")
        child.sendline(PASSWORD)
        child.expect("不能有空格")
        child.sendeof()  # Ctrl-D leaves cleanly
        child.expect("再见")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_a_server_that_is_not_there(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = spawn(port, "--lang", "en")
    child.expect("cannot connect to 127.0.0.1:")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1


def test_default_language() -> None:
    assert default_language({"LANG": "zh_CN.UTF-8"}) == "zh"
    assert default_language({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"
    assert default_language({}) == "en"
