"""The terminal client: the course's two-level menu over the JSON protocol.

::

    1 register  2 login  3 quit            (about: data sources and licences)
       -> 2 -> user name, password (getpass: never echoed)
    1 look up  2 history  3 log out        (key: a DICT key, about)
       -> 1 -> word> apple ... word> ## (or an empty line) back to the menu

:class:`DictClient` is the protocol on a blocking socket, usable alone from
scripts and tests; :class:`ClientApp` is the interactive part, with its
input, password and output functions passed in (pexpect drives it through
a pseudo-terminal in the tests).  Messages exist in English and Chinese
(``--lang en|zh``; by default from the locale, ``LANG=zh_CN.UTF-8`` ->
Chinese).  Every error the server can send has a sentence in both.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ionet.dict.protocol import DEFAULT_PORT

#: Inputs that end the look-up loop (an empty line does too).
LEAVE = "##"

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "welcome": "ionet dictionary at {server}",
        "main_menu": "1 register  2 login  3 quit   (about: data sources)",
        "user_menu": "[{name}] 1 look up  2 history  3 log out   (key: DICT key, about)",
        "choose": "> ",
        "choose_main": "please choose 1, 2 or 3",
        "choose_user": "please choose 1, 2 or 3",
        "name": "user name: ",
        "password": "password: ",
        "password_again": "password again: ",
        "mismatch": "the two passwords differ; nothing was registered",
        "registered": "registered {name}: you can log in now",
        "logged_in": "welcome, {name}",
        "logged_out": "logged out",
        "word": "word (empty line or ## to go back)> ",
        "no_match": "no definition of {word!r}",
        "did_you_mean": "did you mean: {words}",
        "no_suggestion": "no similar words either",
        "history_which": "latest 10 or all? [Enter: 10, a: all] ",
        "history_empty": "no look-ups yet",
        "col_name": "name", "col_word": "word", "col_time": "time",
        "key": "your DICT key (replaces any earlier one):\n  {key}\n"
               "use it as:  dict -h {host} -p 2628 -u {name} -k {key} WORD",
        "bye": "bye",
        "connect_failed": "cannot connect to {server}: {reason}",
        "lost": "the server closed the connection",
        "err_bad-name": "a user name has 1 to 32 characters, without spaces",
        "err_bad-password": "a password has at least 8 characters",
        "err_name-taken": "that user name is taken: choose another",
        "err_login-failed": "wrong user name or password",
        "err_locked": "too many failed logins: this account is locked for a while",
        "err_not-logged-in": "please log in first",
        "err_no-such-db": "no such dictionary",
        "err_too-long": "that request is too long",
        "err_server-error": "the server had a problem; try again later",
        "err_busy": "the server is busy; try again later",
    },
    "zh": {
        "welcome": "ionet 在线词典 {server}",
        "main_menu": "1 注册  2 登录  3 退出   (about: 数据来源)",
        "user_menu": "[{name}] 1 查单词  2 历史记录  3 注销   (key: DICT 密钥, about)",
        "choose": "> ",
        "choose_main": "请输入 1、2 或 3",
        "choose_user": "请输入 1、2 或 3",
        "name": "用户名: ",
        "password": "密码: ",
        "password_again": "再次输入密码: ",
        "mismatch": "两次输入的密码不一致, 未注册",
        "registered": "{name} 注册成功, 请登录",
        "logged_in": "欢迎, {name}",
        "logged_out": "已注销",
        "word": "单词 (空行或 ## 返回)> ",
        "no_match": "没有找到 {word!r}",
        "did_you_mean": "你是不是要找: {words}",
        "no_suggestion": "也没有相近的词",
        "history_which": "最近 10 条还是全部? [回车: 10 条, a: 全部] ",
        "history_empty": "还没有查询记录",
        "col_name": "用户", "col_word": "单词", "col_time": "时间",
        "key": "你的 DICT 密钥 (旧密钥作废):\n  {key}\n"
               "用法:  dict -h {host} -p 2628 -u {name} -k {key} 单词",
        "bye": "再见",
        "connect_failed": "无法连接 {server}: {reason}",
        "lost": "服务器关闭了连接",
        "err_bad-name": "用户名为 1 到 32 个字符, 不能有空格",
        "err_bad-password": "密码至少 8 个字符",
        "err_name-taken": "用户名已被占用, 请换一个",
        "err_login-failed": "用户名或密码错误",
        "err_locked": "登录失败次数太多, 账户暂时锁定",
        "err_not-logged-in": "请先登录",
        "err_no-such-db": "没有这个词典",
        "err_too-long": "请求太长",
        "err_server-error": "服务器出错, 请稍后再试",
        "err_busy": "服务器繁忙, 请稍后再试",
    },
}


def default_language(environ: dict[str, str] | None = None) -> str:
    """``zh`` when the locale is Chinese (``LC_ALL``, ``LC_MESSAGES``, ``LANG``), else ``en``."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = env.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


class ServerClosed(ConnectionError):
    """The server closed the connection."""


class DictClient:
    """The JSON protocol on a blocking socket: one request, one reply.

    Args:
        host, port: the server.
        timeout: seconds to wait for a reply.

    Raises:
        OSError: the connection cannot be made.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 timeout: float = 30.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._file = self.sock.makefile("rb")

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send ``{"op": op, **fields}``; return the reply object.

        Raises:
            ServerClosed: the connection ended before a reply.
        """
        message = json.dumps({"op": op, **fields}, ensure_ascii=False) + "\n"
        try:
            self.sock.sendall(message.encode())
            line = self._file.readline()
        except OSError as exc:
            raise ServerClosed(str(exc)) from None
        if not line.endswith(b"\n"):
            raise ServerClosed("connection closed")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        self._file.close()
        self.sock.close()

    def __enter__(self) -> DictClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ClientApp:
    """The interactive menus.

    Args:
        client: a connected :class:`DictClient`.
        lang: ``en`` or ``zh``.
        console: where output goes (rich).
        ask: reads one line after a prompt (``input``).
        ask_secret: reads a password without echo (``getpass.getpass``).
        host: the server's name, for the DICT key hint.
    """

    def __init__(self, client: DictClient, lang: str = "en", console: Console | None = None,
                 ask: Callable[[str], str] = input,
                 ask_secret: Callable[[str], str] = getpass.getpass,
                 host: str = "127.0.0.1") -> None:
        self.client = client
        self.texts = TEXTS[lang]
        self.console = console or Console(highlight=False)
        self.ask = ask
        self.ask_secret = ask_secret
        self.host = host
        self.user: str | None = None

    def t(self, message: str, **values: Any) -> str:
        """The text called ``message`` in the chosen language, filled in."""
        return self.texts[message].format(**values)

    def say(self, text: str, style: str | None = None) -> None:
        """Print plain text (never parsed as markup: definitions hold brackets)."""
        self.console.print(Text(text, style=style or ""))

    def error(self, reply: dict[str, Any]) -> None:
        code = str(reply.get("error", "server-error"))
        text = self.texts.get(f"err_{code}")
        if text is None or code in ("locked", "bad-request"):
            text = str(reply.get("message", code))  # the server's sentence is precise here
        self.say(text, "bold red")

    # -- the menus ------------------------------------------------------------------

    def run(self) -> int:
        """Run until the user quits; returns the exit status."""
        try:
            while True:
                self.say(self.t("main_menu"), "bold")
                choice = self.ask(self.t("choose")).strip().lower()
                if choice == "1":
                    self.register()
                elif choice == "2":
                    if self.login():
                        self.user_menu()
                elif choice in ("3", "q", "quit"):
                    break
                elif choice == "about":
                    self.about()
                elif choice:
                    self.say(self.t("choose_main"), "yellow")
        except (EOFError, KeyboardInterrupt):
            self.console.print()
        except ServerClosed:
            self.say(self.t("lost"), "bold red")
            return 1
        try:
            self.client.request("quit")
        except (ServerClosed, ValueError):
            pass
        self.say(self.t("bye"))
        return 0

    def user_menu(self) -> None:
        while self.user is not None:
            self.say(self.t("user_menu", name=self.user), "bold")
            choice = self.ask(self.t("choose")).strip().lower()
            if choice == "1":
                self.lookup_loop()
            elif choice == "2":
                self.history()
            elif choice in ("3", "q"):
                self.client.request("logout")
                self.user = None
                self.say(self.t("logged_out"))
            elif choice == "key":
                self.dict_key()
            elif choice == "about":
                self.about()
            elif choice:
                self.say(self.t("choose_user"), "yellow")

    # -- the actions ----------------------------------------------------------------

    def register(self) -> None:
        name = self.ask(self.t("name")).strip()
        password = self.ask_secret(self.t("password"))
        again = self.ask_secret(self.t("password_again"))
        if password != again:
            self.say(self.t("mismatch"), "bold red")
            return
        reply = self.client.request("register", name=name, password=password)
        if reply.get("ok"):
            self.say(self.t("registered", name=reply["name"]), "green")
        else:
            self.error(reply)

    def login(self) -> bool:
        name = self.ask(self.t("name")).strip()
        password = self.ask_secret(self.t("password"))
        reply = self.client.request("login", name=name, password=password)
        if not reply.get("ok"):
            self.error(reply)
            return False
        self.user = str(reply["name"])
        self.say(self.t("logged_in", name=self.user), "green")
        return True

    def lookup_loop(self) -> None:
        while True:
            word = self.ask(self.t("word")).strip()
            if not word or word == LEAVE:
                return
            reply = self.client.request("lookup", word=word, db="*")
            if not reply.get("ok"):
                self.error(reply)
                continue
            for definition in reply["definitions"]:
                self.console.print(Text(f"[{definition['db']}]", style="cyan"),
                                   Text(definition["word"], style="bold"))
                self.say(definition["text"])
            if not reply["definitions"]:
                self.say(self.t("no_match", word=word), "yellow")
                if reply["suggestions"]:
                    self.say(self.t("did_you_mean", words=", ".join(reply["suggestions"])))
                else:
                    self.say(self.t("no_suggestion"))

    def history(self) -> None:
        which = self.ask(self.t("history_which")).strip().lower()
        limit = 0 if which in ("a", "all", "全部") else 10
        reply = self.client.request("history", limit=limit)
        if not reply.get("ok"):
            self.error(reply)
            return
        rows = reply["history"]
        if not rows:
            self.say(self.t("history_empty"))
            return
        table = Table(self.t("col_name"), self.t("col_word"), self.t("col_time"))
        for row in rows:
            table.add_row(Text(row["name"]), Text(row["word"]), _local_time(row["time"]))
        self.console.print(table)

    def dict_key(self) -> None:
        reply = self.client.request("dict_key")
        if reply.get("ok"):
            self.say(self.t("key", key=reply["key"], name=reply["name"], host=self.host))
        else:
            self.error(reply)

    def about(self) -> None:
        reply = self.client.request("about")
        if reply.get("ok"):
            self.say(str(reply["about"]))
        else:
            self.error(reply)


def _local_time(iso: str) -> str:
    """``2024-05-01T12:00:00Z`` in the local time zone, to the second."""
    try:
        when = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return iso
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def run(host: str, port: int, lang: str | None = None) -> int:
    """``ionet dict client``: connect and run the menus."""
    lang = lang or default_language()
    console = Console(highlight=False)
    texts = TEXTS[lang]
    server = f"{host}:{port}"
    try:
        client = DictClient(host, port)
    except OSError as exc:
        console.print(Text(texts["connect_failed"].format(server=server,
                                                          reason=exc.strerror or exc),
                           style="bold red"))
        return 1
    with client:
        console.print(Text(texts["welcome"].format(server=server), style="bold"))
        return ClientApp(client, lang, console, host=host).run()
