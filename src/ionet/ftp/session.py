"""Login, security and settings: the commands about the conversation itself.

USER and PASS (the argon2 check runs off the loop through
:meth:`FtpServer.check_login`; a failure is answered only after the login
guard's delay, and enough of them ban the address), QUIT; AUTH TLS, PBSZ
and PROT (RFC 4217: the control connection turns to TLS mid-conversation);
and the session's settings and facts: SYST, FEAT, OPTS, NOOP, HELP, TYPE,
MODE, STRU.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ionet.core.protocol import Outcome
from ionet.ftp.accounts import User
from ionet.ftp.commands import COMMANDS, help_lines
from ionet.ftp.core import ControlCore, printable
from ionet.ftp.fs import ALL_FACTS, FSError, VirtualFS
from ionet.ftp.tls import TLSLayer

log = logging.getLogger("ionet.ftp")


class SessionCommands(ControlCore):
    """Logging in, securing the connection, and the session's settings."""

    # -- access control --------------------------------------------------------------------

    def ftp_USER(self, arg: str) -> None:
        if self.user is not None:
            self._reply(530, "Can't change to another user.")
            return
        authorizer = self.settings.authorizer
        if authorizer.is_anonymous(arg):
            if not authorizer.anonymous:
                self.username = None
                self._reply(530, "Anonymous access is not allowed.")
                return
            self.username = arg
            self._reply(331, "Anonymous login ok, send your e-mail address as password.")
            return
        self.username = arg
        self._reply(331, "Username ok, send password.")

    def ftp_PASS(self, arg: str) -> None:
        if self.user is not None:
            self._reply(503, "User already authenticated.")
            return
        name = self.username
        if name is None:
            self._reply(503, "Login with USER first.")
            return
        self.username = None
        self.waiting = True
        assert self.transport is not None
        self.server.check_login(self.transport, name, arg,
                                lambda outcome: self._login_checked(name, outcome))

    def _login_checked(self, name: str, outcome: Outcome[User | None]) -> None:
        if self.closing:
            return
        guard = self.settings.guard
        user: User | None = None
        if outcome.error is not None:
            log.error("login check for %s failed: %s", name, outcome.error)
        else:
            user = outcome.value
        if user is not None:
            try:
                home = user.home
                if not home.exists() and _inside(home, self.settings.root):
                    home.mkdir(parents=True, exist_ok=True)
                self.fs = VirtualFS(home)
            except (OSError, FSError) as exc:
                log.error("user %s: home folder %s unusable: %s", user.name, user.home, exc)
                user = None
        if user is None:
            banned = guard.failed(self.peer_ip)
            log.info("%s: failed login as %r", self.peer_ip, name)
            assert self.transport is not None
            self.transport.call_later(guard.delay, lambda: self._login_failed(banned))
            return
        guard.succeeded(self.peer_ip)
        self.user = user
        self.waiting = False
        log.info("%s: logged in", self._who())
        self._reply(230, "Login successful.")
        self._drain()

    def _login_failed(self, banned: bool) -> None:
        if self.closing:
            return
        self.waiting = False
        self._reply(530, "Authentication failed.")
        if banned:
            self._reply(421, "Too many failed logins from your address; try again later.")
            self._close()
            return
        self._drain()

    def ftp_QUIT(self, arg: str) -> None:
        self._reply(221, "Goodbye.")
        self._close()

    def ftp_AUTH(self, arg: str) -> None:
        mode = arg.strip().upper()
        if self.tls is not None:
            self._reply(503, "Already using TLS.")
        elif self.user is not None:
            self._reply(503, "AUTH must come before login.")
        elif mode not in ("TLS", "TLS-C", "SSL", "TLS-P"):
            self._reply(504, f"AUTH {printable(mode)} not supported; use AUTH TLS.")
        else:
            assert self.settings.tls is not None
            if self.framer.pending:  # bytes after AUTH before our 234: not a TLS client
                self._reply(503, "Send nothing after AUTH until its reply.")
                self._close()
                return
            self._reply(234, f"AUTH {mode} successful.")
            self.tls = TLSLayer(self.settings.tls, self._write_raw)
            if mode in ("SSL", "TLS-P"):
                self.pbsz = self.prot_private = True

    def ftp_PBSZ(self, arg: str) -> None:
        if self.tls is None:
            self._reply(503, "PBSZ not allowed on insecure control connection.")
        else:
            self.pbsz = True
            self._reply(200, "PBSZ=0 successful.")

    def ftp_PROT(self, arg: str) -> None:
        level = arg.strip().upper()
        if self.tls is None:
            self._reply(503, "PROT not allowed on insecure control connection.")
        elif not self.pbsz:
            self._reply(503, "You must issue the PBSZ command prior to PROT.")
        elif level == "C":
            self.prot_private = False
            self._reply(200, "Protection set to Clear.")
        elif level == "P":
            self.prot_private = True
            self._reply(200, "Protection set to Private.")
        elif level in ("S", "E"):
            self._reply(536, f"PROT {level} unsupported (use C or P).")
        else:
            self._reply(504, "Unrecognized PROT type (use C or P).")

    # -- session settings ------------------------------------------------------------------

    def ftp_SYST(self, arg: str) -> None:
        self._reply(215, "UNIX Type: L8")

    def ftp_FEAT(self, arg: str) -> None:
        features = [" EPRT", " EPSV", " HASH SHA-256*", " MDTM", " MFMT",
                    " MLST " + "".join(f"{f}{'*' if f in self.facts else ''};" for f in ALL_FACTS),
                    " REST STREAM", " SIZE", " TVFS", " UTF8"]
        if self.settings.tls is not None:
            features[:0] = [" AUTH TLS", " AUTH SSL"]
            features += [" PBSZ", " PROT"]
        self._reply_multi(211, "Features supported:", features, "End")

    def ftp_OPTS(self, arg: str) -> None:
        name, _, value = arg.partition(" ")
        name, value = name.upper(), value.strip()
        if name in ("UTF8", "UTF-8") and value.upper() in ("ON", ""):
            self._reply(200, "Always in UTF8 mode.")
        elif name == "MLST":
            wanted = [f.lower() for f in value.split(";") if f]
            self.facts = [f for f in ALL_FACTS if f in wanted]
            self._reply(200, "MLST OPTS " + "".join(f + ";" for f in self.facts))
        elif name == "HASH" and value.upper() in ("", "SHA-256"):
            self._reply(200, "SHA-256")
        else:
            self._reply(501, f"Invalid OPTS: {printable(arg)}.")

    def ftp_NOOP(self, arg: str) -> None:
        self._reply(200, "I successfully did nothing.")

    def ftp_ALLO(self, arg: str) -> None:
        # RFC 959: a server that needs no reservation treats ALLO as a NOOP;
        # some clients send it before every STOR.
        self._reply(202, "No storage allocation necessary.")

    def ftp_HELP(self, arg: str) -> None:
        if arg:
            command = COMMANDS.get(arg.strip().upper())
            if command is None:
                self._reply(501, "Unrecognized command.")
            else:
                self._reply(214, command.help)
        else:
            self._reply_multi(214, "The following commands are recognized:",
                              help_lines(self.settings.tls is not None), "Help command successful.")

    def ftp_TYPE(self, arg: str) -> None:
        kind = arg.upper().replace(" ", "")
        if kind in ("A", "AN"):
            self.binary = False
            self._reply(200, "Type set to: ASCII.")
        elif kind in ("I", "L8"):
            self.binary = True
            self._reply(200, "Type set to: Binary.")
        else:
            self._reply(504, f"Unsupported type \"{printable(arg)}\".")

    def ftp_MODE(self, arg: str) -> None:
        if arg.upper() == "S":
            self._reply(200, "Transfer mode set to: S")
        else:
            self._reply(504, "Unimplemented MODE type (only S).")

    def ftp_STRU(self, arg: str) -> None:
        if arg.upper() == "F":
            self._reply(200, "File transfer structure set to: F.")
        else:
            self._reply(504, "Unimplemented STRU type (only F).")


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or lies under it (symlinks resolved)."""
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False
