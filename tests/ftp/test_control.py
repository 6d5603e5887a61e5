"""The control protocol driven with plain bytes: no sockets, a fake clock, fake data links.

A :class:`Link` stands for the engine: control and data transports are
``FakeTransport`` objects, ``call_soon_threadsafe`` callbacks wait in a
queue until ``pump()``, as they would on a real loop, and a passive
listener "accepts" when the test says so.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from ionet.core.protocol import DataChannel, Protocol
from ionet.core.testing import FakeClock, FakeTransport, feed_split
from ionet.ftp.accounts import PERMS, Authorizer, LoginGuard
from ionet.ftp.control import FtpControl, FtpServer, FtpSettings
from ionet.ftp.data import PIECE_MAX, PIECE_MIN, TAIL

from .conftest import Site, password


class Link:
    """The fake engine: one clock, one callback queue, every transport."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.queue: collections.deque[Callable[[], None]] = collections.deque()
        self.data: list[FakeTransport] = []

    def pump(self) -> None:
        """Run queued callbacks, and end data transports that closed (as an engine would)."""
        while True:
            while self.queue:
                self.queue.popleft()()
            ended = [t for t in self.data if t.closed and not t.lost]
            if not ended:
                return
            for transport in ended:
                transport.lose(None)


class LinkTransport(FakeTransport):
    def __init__(self, link: Link, **kwargs: Any) -> None:
        super().__init__(clock=link.clock, **kwargs)
        self.link = link
        self.channels: list[FakeChannel] = []

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        def run() -> None:
            if not self.lost:
                callback()

        self.link.queue.append(run)

    def open_listener(self, factory: Callable[[], Protocol], host: str, ports: Sequence[int] = (0,),
                      accept_from: Callable[[Any], bool] | None = None, timeout: float = 30.0,
                      on_error: Callable[[BaseException], None] | None = None,
                      ssl_context: Any = None) -> DataChannel:
        channel = FakeChannel(self, factory, 40000 + len(self.channels), accept_from, on_error)
        self.channels.append(channel)
        return channel

    def open_connection(self, factory: Callable[[], Protocol], host: str, port: int,
                        timeout: float = 30.0,
                        on_error: Callable[[BaseException], None] | None = None,
                        ssl_context: Any = None) -> DataChannel:
        channel = FakeChannel(self, factory, 0, None, on_error, target=(host, port))
        self.channels.append(channel)
        return channel


class FakeChannel(DataChannel):
    def __init__(self, owner: LinkTransport, factory: Callable[[], Protocol], port: int,
                 accept_from: Callable[[Any], bool] | None,
                 on_error: Callable[[BaseException], None] | None,
                 target: tuple[str, int] | None = None) -> None:
        self.owner = owner
        self.factory = factory
        self.port = port
        self.accept_from = accept_from
        self.on_error = on_error
        self.target = target
        self.closed = False

    def accept(self, peer: tuple[str, int] = ("127.0.0.1", 50001)) -> LinkTransport | None:
        """A client connects (or we connected, for PORT); None if refused."""
        assert not self.closed, "the listener was closed"
        if self.accept_from is not None and not self.accept_from(peer):
            return None
        self.closed = True
        transport = LinkTransport(self.owner.link, peername=peer)
        self.owner.link.data.append(transport)
        transport.connect(self.factory())
        self.owner.link.pump()
        return transport

    def fail(self, exc: BaseException) -> None:
        self.closed = True
        assert self.on_error is not None
        self.on_error(exc)

    def close(self) -> None:
        self.closed = True


class Session:
    """One control connection to a protocol server over ``site``."""

    def __init__(self, site: Site, link: Link | None = None, server: FtpServer | None = None,
                 peer: str = "127.0.0.1", **settings: Any) -> None:
        self.link = link or Link()
        if server is None:
            guard = LoginGuard(delay=1.0, max_failures=3, window=60, ban=120,
                               clock=self.link.clock)
            authorizer = Authorizer(site.root, site.users, anonymous=True)
            server = FtpServer(FtpSettings(root=site.root, authorizer=authorizer, guard=guard,
                                           **settings), clock=self.link.clock)
        self.server = server
        self.control = LinkTransport(self.link, peername=(peer, 50000))
        self.proto = FtpControl(server)
        self.control.connect(self.proto)

    def send(self, line: str) -> str:
        """Send one command; return every reply written meanwhile."""
        self.control.take()
        self.control.feed(line.encode() + b"\r\n")
        self.link.pump()
        return self.control.take().decode()

    def login(self, user: str = "alice") -> None:
        assert self.send(f"USER {user}").startswith("331")
        assert self.send(f"PASS {password(user)}").startswith("230")

    def pasv(self) -> FakeChannel:
        assert self.send("EPSV").startswith("229")
        return self.control.channels[-1]

    def replies(self) -> str:
        self.link.pump()
        return self.control.take().decode()


@pytest.fixture
def session(site: Site) -> Session:
    s = Session(site)
    assert s.control.take().startswith(b"220 ")
    return s


def codes(text: str) -> list[str]:
    return [line[:3] for line in text.splitlines() if line[:3].isdigit() and line[3:4] == " "]


# -- login ---------------------------------------------------------------------------------

def test_login_one_byte_at_a_time(session: Session) -> None:
    assert session.proto.state == "USER"
    feed_split(session.control, b"USER alice\r\n")
    assert session.proto.state == "PASS"
    feed_split(session.control, f"PASS {password('alice')}\r\nPWD\r\n".encode())
    session.link.pump()
    assert codes(session.control.take().decode()) == ["331", "230", "257"]
    assert session.proto.state == "READY"
    session.send("QUIT")
    assert session.proto.state == "CLOSED" and session.control.closed


def test_commands_need_login_and_arguments(session: Session) -> None:
    assert session.send("PWD").startswith("530 ")
    assert session.send("RETR hello.txt").startswith("530 ")
    assert session.send("USER").startswith("501 ")
    assert session.send("SYST").startswith("215 ")
    assert session.send("FROB x").startswith("500 ")
    assert session.send("PASS x").startswith("503 ")
    session.login()
    assert session.send("PWD x").startswith("501 ")
    assert session.send("USER bob").startswith("530 ")


def test_command_too_long_then_the_connection_goes_on(session: Session) -> None:
    session.control.feed(b"NOOP " + b"x" * 5000 + b"\r\n")
    assert session.control.take().startswith(b"500 Command too long.")
    assert session.send("NOOP").startswith("200 ")


def test_failed_logins_are_delayed_then_banned(site: Site) -> None:
    first = Session(site)
    for attempt in range(3):
        first.send("USER alice")
        assert first.send("PASS wrong") == ""  # nothing yet: the delay
        assert first.send("NOOP") == ""  # queued behind the login
        first.link.clock.advance(1.0)
        replies = first.replies()
        assert replies.startswith("530 Authentication failed.")
        if attempt < 2:
            assert "200 " in replies
    assert "421 " in replies and first.control.closed
    # a new connection from that address is turned away, another address is not
    second = Session(site, first.link, first.server)
    assert second.control.take().startswith(b"421 ")
    other = Session(site, first.link, first.server, peer="10.0.0.9")
    assert other.control.take().startswith(b"220 ")
    first.link.clock.advance(121)
    third = Session(site, first.link, first.server)
    assert third.control.take().startswith(b"220 ")
    third.login()


def test_idle_control_connection_times_out(site: Site) -> None:
    s = Session(site, idle_timeout=30)
    s.login()
    s.link.clock.advance(20)
    assert s.send("NOOP").startswith("200")
    s.link.clock.advance(20)
    assert not s.control.closed
    s.link.clock.advance(15)
    assert s.replies().startswith("421 ") and s.control.closed


def test_per_address_limit(site: Site) -> None:
    first = Session(site, max_per_ip=2)
    second = Session(site, first.link, first.server)
    third = Session(site, first.link, first.server)
    assert third.control.take().startswith(b"421 Too many connections from your address.")
    second.control.lose(None)
    fourth = Session(site, first.link, first.server)
    assert fourth.control.take().startswith(b"220 ")


# -- permissions and the jail --------------------------------------------------------------

#: letter -> commands that need it (and should work with it, on the test site)
NEEDS = {
    "e": ["CWD sub", "CDUP"],
    "l": ["LIST", "NLST", "MLSD", "MLST hello.txt", "STAT hello.txt", "SIZE hello.txt",
          "MDTM hello.txt"],
    "r": ["RETR hello.txt", "HASH hello.txt"],
    "a": ["APPE hello.txt"],
    "d": ["DELE hello.txt", "RMD empty"],
    "f": ["RNFR hello.txt"],
    "m": ["MKD newdir"],
    "w": ["STOR new.txt", "STOU"],
    "M": ["SITE CHMOD 640 hello.txt"],
    "T": ["MFMT 20200102030405 hello.txt"],
}


@pytest.mark.parametrize("letter", list(PERMS))
def test_every_permission_letter(site: Site, letter: str) -> None:
    (site.root / "empty").mkdir()
    without = Session(site)
    without.login(f"no_{letter}")
    with_all = Session(site)
    with_all.login("alice")
    for command in NEEDS[letter]:
        if command == "CDUP":
            with_all.send("CWD sub")
        refused = without.send(command)
        assert refused.startswith("550 Not enough privileges"), (command, refused)
        allowed = with_all.send(command)
        assert not allowed.startswith("550"), (command, allowed)
        if allowed.startswith("425"):  # a transfer: allowed, just no data connection
            continue
    assert (site.root / "hello.txt").exists() or letter == "d"


@pytest.mark.parametrize("command", [
    "RETR ../outside/secret.txt", "RETR /../outside/secret.txt", "RETR sub/../../x",
    "RETR leak", "RETR leakdir/secret.txt", "CWD leakdir", "CWD ..", "LIST leakdir",
    "SIZE leak", "MDTM leak", "DELE leak/..", "MKD ../evil", "MKD leakdir/evil",
    "RNFR ../outside/secret.txt", "STOR ../evil.txt", "STOR leakdir/evil.txt",
    "APPE leak", "MLST leak", "HASH leak", "RMD leakdir/..",
    "MFMT 20200102030405 leak", "MFMT 20200102030405 ../outside/secret.txt",
    "SITE CHMOD 777 leak", "SITE CHMOD 777 leakdir", "SITE CHMOD 600 ../outside/secret.txt",
])
def test_paths_outside_the_home_are_refused(session: Session, site: Site, command: str) -> None:
    session.login()
    before = site.files()
    reply = session.send(command)
    assert reply.startswith("550 "), reply
    assert site.files() == before
    assert (site.outside / "secret.txt").read_bytes() == b"top secret\n"
    assert not (site.outside / "evil").exists()


def test_rnto_outside_is_refused(session: Session, site: Site) -> None:
    session.login()
    assert session.send("RNFR hello.txt").startswith("350")
    assert session.send("RNTO ../outside/stolen.txt").startswith("550")
    assert session.send("RNTO x.txt").startswith("503")  # RNFR was used up
    assert (site.root / "hello.txt").exists() and not (site.outside / "stolen.txt").exists()


def test_absolute_paths_are_inside_the_home(session: Session, site: Site) -> None:
    session.login("carol")  # home: <root>/carol, created on login
    assert (site.root / "carol").is_dir()
    assert session.send("SIZE /hello.txt").startswith("550")  # /hello.txt is carol/hello.txt
    assert session.send("MKD /mine").startswith('257 "/mine"')
    assert (site.root / "carol" / "mine").is_dir()
    assert session.send("CWD /mine").startswith("250")
    assert session.send("PWD").startswith('257 "/mine"')


def test_hidden_files(session: Session) -> None:
    session.login()
    session.send("STAT .")
    assert ".hidden" not in session.send("STAT .")
    assert ".hidden" in session.send("STAT -a .")
    assert session.send("SIZE .hidden").startswith("213 9")


# -- transfers over fake data links --------------------------------------------------------

def test_retr_uses_sendfile_and_reports(session: Session, site: Site) -> None:
    session.login()
    session.send("TYPE I")
    channel = session.pasv()
    assert session.send("REST 3").startswith("350")
    assert session.send("RETR hello.txt").startswith("150 ")
    data = channel.accept()
    assert data is not None
    session.link.pump()
    assert data.files and data.written() == b"lo world\n"
    assert session.replies().startswith("226 ")


def test_data_connection_before_or_after_the_command(session: Session) -> None:
    session.login()
    channel = session.pasv()
    data = channel.accept()  # connects first, as most clients do
    assert codes(session.send("NLST")) == ["125", "226"]
    assert data is not None and b"hello.txt\r\n" in data.written()
    assert session.send("RETR hello.txt").startswith("425 ")  # each connection serves one transfer


def test_data_connection_from_another_address_is_refused(session: Session) -> None:
    session.login()
    channel = session.pasv()
    assert channel.accept(("10.9.9.9", 5555)) is None


def test_passive_listener_timeout(session: Session) -> None:
    session.login()
    channel = session.pasv()
    session.send("RETR hello.txt")
    channel.fail(TimeoutError())
    assert session.replies().startswith("425 Can't open data connection: timed out.")
    assert session.send("NOOP").startswith("200")


def test_upload_is_atomic(session: Session, site: Site) -> None:
    session.login()
    session.send("TYPE I")
    channel = session.pasv()
    session.send("STOR new.bin")
    data = channel.accept()
    assert data is not None
    payload = os.urandom(200_000)
    for start in range(0, len(payload), 7000):
        data.feed(payload[start : start + 7000])
    assert not (site.root / "new.bin").exists()  # not under its name until complete
    assert len(site.temporaries()) == 1
    data.feed_eof()
    session.link.pump()
    assert session.replies().startswith("226 ")
    assert (site.root / "new.bin").read_bytes() == payload
    assert not site.temporaries()


def test_failed_upload_leaves_nothing_and_old_file_stays(session: Session, site: Site) -> None:
    session.login()
    session.send("TYPE I")
    channel = session.pasv()
    session.send("STOR hello.txt")  # overwriting an existing file
    data = channel.accept()
    assert data is not None
    data.feed(b"partial")
    data.lose(ConnectionResetError())
    assert session.replies().startswith("426 ")
    assert (site.root / "hello.txt").read_bytes() == b"hello world\n"
    assert not site.temporaries()


def test_abor_during_upload_and_commands_queue_meanwhile(session: Session, site: Site) -> None:
    session.login()
    channel = session.pasv()
    session.send("STOR new.bin")
    data = channel.accept()
    assert data is not None
    data.feed(b"some bytes")
    assert session.send("PWD") == ""  # waits for the transfer
    assert session.send("STAT").startswith("211-")  # answered at once
    replies = session.send("ABOR")
    assert codes(replies) == ["426", "226", "257"]
    assert not (site.root / "new.bin").exists() and not site.temporaries()


def test_abor_before_the_data_connection_arrives(session: Session) -> None:
    session.login()
    channel = session.pasv()
    session.send("RETR hello.txt")
    assert codes(session.send("ABOR")) == ["426", "226"]
    assert channel.closed


def test_a_transfer_that_stands_still_is_aborted_by_the_data_timeout(site: Site) -> None:
    s = Session(site, data_timeout=10)
    s.login()
    channel = s.pasv()
    s.send("STOR slow.bin")
    data = channel.accept()
    assert data is not None
    data.feed(b"x" * 1000)
    s.link.clock.advance(10)  # a first look at its progress
    data.feed(b"y")
    s.link.clock.advance(10)  # it moved: it goes on
    assert not data.closed and s.replies() == ""
    s.link.clock.advance(10)  # a whole period without a byte
    assert data.aborted
    assert s.replies().startswith("426 Data connection timed out (no progress for 10s)")
    assert s.send("NOOP").startswith("200")
    assert not (site.root / "slow.bin").exists() and not site.temporaries()


def test_a_large_retr_goes_out_in_pieces(session: Session, site: Site) -> None:
    """Piece by piece (see FileSender), and whole."""
    payload = os.urandom(PIECE_MIN + 2 * PIECE_MIN + 4 * PIECE_MIN + 12345)
    (site.root / "large.bin").write_bytes(payload)
    session.login()
    session.send("TYPE I")
    channel = session.pasv()
    assert session.send("RETR large.bin").startswith("150 ")
    data = channel.accept()
    assert data is not None
    session.link.pump()
    assert data.written() == payload
    # pieces grow while the client keeps up (here, at once)
    assert [count for _, _, count in data.files][:3] == [
        PIECE_MIN - TAIL, 2 * PIECE_MIN - TAIL, 4 * PIECE_MIN - TAIL]
    assert all(count < PIECE_MAX for _, _, count in data.files)
    assert session.replies().startswith("226 ")


def test_ascii_mode_converts_line_ends(session: Session, site: Site) -> None:
    session.login()
    session.send("TYPE A")
    channel = session.pasv()
    session.send("RETR lines.txt")
    data = channel.accept()
    session.link.pump()
    assert data is not None and data.written() == b"one\r\ntwo\r\nthree\r\n"
    channel = session.pasv()
    session.send("STOR back.txt")
    data = channel.accept()
    assert data is not None
    data.feed(b"a\r")
    data.feed(b"\nb\r\n")
    data.feed_eof()
    session.link.pump()
    assert (site.root / "back.txt").read_bytes() == b"a\nb\n"


def test_active_mode_only_to_the_client(session: Session) -> None:
    session.login()
    assert session.send("PORT 10,0,0,1,200,10").startswith("501 ")
    assert session.send("EPRT |1|10.0.0.1|51210|").startswith("501 ")
    assert session.send("PORT 127,0,0,1,0,21").startswith("501 ")  # privileged port
    assert session.send("EPRT |3|127.0.0.1|5000|").startswith("522")
    session.send("TYPE I")
    assert session.send("PORT 127,0,0,1,200,10").startswith("200 ")
    assert session.send("RETR hello.txt").startswith("150 ")
    channel = session.control.channels[-1]
    assert channel.target == ("127.0.0.1", 200 * 256 + 10)
    data = channel.accept()
    session.link.pump()
    assert data is not None and data.written() == b"hello world\n"
    assert session.replies().startswith("226")


def test_pasv_reply_and_masquerade(site: Site) -> None:
    s = Session(site, masquerade_address="203.0.113.7")
    s.login()
    reply = s.send("PASV")
    assert reply.startswith("227 Entering Passive Mode (203,0,113,7,")
    assert s.send("EPSV 2").startswith("522")


def test_feat_help_stat_opts(session: Session) -> None:
    feat = session.send("FEAT")
    assert feat.startswith("211-") and " MLST type*;" in feat and " UTF8" in feat
    assert "AUTH TLS" not in feat  # no certificate configured
    assert session.send("AUTH TLS").startswith("500")
    assert session.send("HELP").startswith("214-")
    assert session.send("HELP RETR").startswith("214 Syntax: RETR")
    assert session.send("OPTS UTF8 ON").startswith("200")
    session.login()
    assert session.send("OPTS MLST type;size;").startswith("200 MLST OPTS type;size;")
    assert session.send("MLST hello.txt").splitlines()[1] == " type=file;size=12; /hello.txt"
    assert session.send("TYPE E").startswith("504")
    assert session.send("MODE B").startswith("504") and session.send("MODE S").startswith("200")
    assert session.send("STRU R").startswith("504") and session.send("STRU F").startswith("200")


def test_mfmt_site_chmod_and_allo(session: Session, site: Site) -> None:
    assert " MFMT" in session.send("FEAT")
    session.login()
    hello = site.root / "hello.txt"
    atime = hello.stat().st_atime
    assert session.send("MFMT 20200102030405 hello.txt") == \
        "213 Modify=20200102030405; /hello.txt\r\n"
    assert hello.stat().st_mtime == 1_577_934_245  # UTC
    assert hello.stat().st_atime == atime  # only the modification time
    assert session.send("MDTM hello.txt") == "213 20200102030405\r\n"
    assert session.send("MFMT 20200102030405 sub").startswith("213")  # folders too
    for bad in ("MFMT 2020 hello.txt", "MFMT 20201302030405 hello.txt", "MFMT hello.txt",
                "MFMT 20200102030405"):
        assert session.send(bad).startswith("501"), bad
    assert session.send("MFMT 20200102030405 missing.txt").startswith("550")
    assert session.send("SITE CHMOD 600 hello.txt") == "200 SITE CHMOD successful.\r\n"
    assert hello.stat().st_mode & 0o7777 == 0o600
    for bad in ("SITE CHMOD 4755 hello.txt", "SITE CHMOD 1777 sub", "SITE CHMOD 9 hello.txt",
                "SITE CHMOD u+x hello.txt", "SITE CHMOD 644"):
        assert session.send(bad).startswith("501"), bad
    assert hello.stat().st_mode & 0o7777 == 0o600  # setuid, setgid and sticky: never
    assert session.send("SITE HELP").startswith("214-")
    assert session.send("SITE UTIME x").startswith("500")
    assert session.send("ALLO 1000").startswith("202")


def test_users_file_changes_are_picked_up(session: Session, site: Site) -> None:
    from ionet.ftp.accounts import add_user

    add_user(site.users, "dave", "dave-pw", ".", "elr")
    session.send("USER dave")
    assert session.send("PASS dave-pw").startswith("230")


def test_upload_of_an_existing_name_as_anonymous_is_refused(session: Session) -> None:
    session.send("USER anonymous")
    assert session.send("PASS guest@").startswith("230")
    assert session.send("STOR hello.txt").startswith("550")
    assert session.send("DELE hello.txt").startswith("550")


def test_empty_upload_that_beats_its_job(session: Session, site: Site) -> None:
    session.login()
    channel = session.pasv()
    data = channel.accept()
    assert data is not None
    session.control.feed(b"STOR empty.txt\r\n")  # 125 sent, the job handed over...
    data.feed_eof()  # ...but the client's EOF is processed first
    replies = session.replies()
    assert codes(replies) == ["125", "226"], replies
    assert (site.root / "empty.txt").read_bytes() == b"" and not site.temporaries()


def test_upload_that_arrives_whole_before_its_job(session: Session, site: Site) -> None:
    session.login()
    channel = session.pasv()
    data = channel.accept()
    assert data is not None
    session.control.feed(b"TYPE I\r\nSTOR early.txt\r\n")
    data.resume_reading()  # an engine that read anyway
    data.feed(b"early bytes")
    data.feed_eof()
    assert codes(session.replies()) == ["200", "125", "226"]
    assert (site.root / "early.txt").read_bytes() == b"early bytes"


def test_simultaneous_logins_share_one_check(site: Site) -> None:
    first = Session(site)
    calls: list[str] = []
    verify = first.server.settings.authorizer.verify

    def counting(name: str, pw: str) -> object:
        calls.append(name)
        return verify(name, pw)

    first.server.settings.authorizer.verify = counting  # type: ignore[method-assign,assignment]
    first.control.run_workers = False  # hold the check, as a busy pool would
    second = Session(site, first.link, first.server)
    second.control.run_workers = False
    for s in (first, second):
        s.send("USER alice")
        assert s.send(f"PASS {password('alice')}") == ""
    assert not second.control.pending_workers  # it waits for the first one's check
    first.control.run_pending_workers()
    assert first.replies().startswith("230") and second.replies().startswith("230")
    assert calls == ["alice"]


def test_no_temporary_file_survives_any_ending(session: Session, site: Site) -> None:
    session.login()
    # the client goes away after STOR, before its data connection arrives
    session.pasv()
    session.send("STOR a.bin")
    assert len(site.temporaries()) == 1
    session.control.lose(ConnectionResetError())
    assert not site.temporaries()
    # both connections die while the job is being handed over
    other = Session(site)
    other.login()
    channel = other.pasv()
    data = channel.accept()
    assert data is not None
    other.control.feed(b"STOR b.bin\r\n")  # the hand-over is queued, not yet run
    data.lose(ConnectionResetError())
    other.control.lose(None)
    other.link.pump()
    assert not site.temporaries() and not (site.root / "b.bin").exists()


def test_a_password_already_verified_needs_no_worker(site: Site) -> None:
    first = Session(site)
    first.login()
    second = Session(site, first.link, first.server)
    second.control.run_workers = False
    second.send("USER alice")
    assert second.send(f"PASS {password('alice')}").startswith("230")
    assert second.send("USER bob") == "530 Can't change to another user.\r\n"
    third = Session(site, first.link, first.server)
    third.control.run_workers = False
    third.send("USER alice")
    assert third.send("PASS not-it") == ""  # not cached: off to a worker (held here)
    assert third.control.pending_workers


def test_passive_ports_rotate_without_copying_the_range() -> None:
    from ionet.ftp.control import RotatedPorts

    ports = RotatedPorts(range(60000, 60005), 3)
    assert list(ports) == [60003, 60004, 60000, 60001, 60002]
    assert len(ports) == 5 and ports[0] == 60003 and ports[-1] == 60002
