"""The file-system commands: where you are, what is there, facts about files, changes.

PWD, CWD and CDUP; the listings (LIST, NLST and MLSD over a data
connection, MLST and STAT on the control connection); file facts (SIZE,
MDTM, HASH, the last computed off the loop); and changes (DELE, MKD, RMD,
RNFR/RNTO, and MFMT and SITE CHMOD, with which mirroring clients keep a
file's time and mode).  Every path goes through the session's
:class:`~ionet.ftp.fs.VirtualFS`, so nothing outside the user's home is
reachable; its :class:`~ionet.ftp.fs.FSError` becomes the reply.
"""

from __future__ import annotations

import hashlib
import os
import stat

from ionet.core.protocol import Outcome
from ionet.ftp.data import BytesSender
from ionet.ftp.fs import (
    Entry,
    FSError,
    format_list,
    format_mlsx,
    format_nlst,
    mdtm,
    os_error,
    parse_time_val,
)
from ionet.ftp.transfers import TransferCommands


class FileCommands(TransferCommands):
    """Navigation, listings, file facts and file management.

    Built on :class:`TransferCommands` because LIST, NLST and MLSD answer
    over a data connection, as RETR does.
    """

    # -- navigation ------------------------------------------------------------------------

    def ftp_PWD(self, arg: str) -> None:
        self._reply(257, f"{_quote(self._vfs().cwd)} is the current directory.")

    def ftp_CWD(self, arg: str) -> None:
        vpath = self._vfs().chdir(arg or "/")
        self._reply(250, f"{_quote(vpath)} is the current directory.")

    def ftp_CDUP(self, arg: str) -> None:
        self.ftp_CWD("..")

    # -- listings --------------------------------------------------------------------------

    def _entries(self, path: str, show_hidden: bool) -> tuple[str, list[Entry]]:
        fs = self._vfs()
        vpath, fspath, st = fs.stat(path)
        if stat.S_ISDIR(st.st_mode):
            return vpath, fs.listdir(fspath, show_hidden)
        return vpath, [Entry(os.path.basename(fspath), st)]

    def ftp_LIST(self, arg: str) -> None:
        show_hidden, path = _list_args(arg)
        vpath, entries = self._entries(path, show_hidden)
        data = format_list(entries).encode("utf-8", "surrogateescape")
        self._start_transfer("LIST", vpath, BytesSender(data), "Here comes the directory listing.",
                             "Directory send OK.")

    def ftp_NLST(self, arg: str) -> None:
        show_hidden, path = _list_args(arg)
        vpath, entries = self._entries(path, show_hidden)
        data = format_nlst(entries).encode("utf-8", "surrogateescape")
        self._start_transfer("NLST", vpath, BytesSender(data), "Here comes the directory listing.",
                             "Directory send OK.")

    def ftp_MLSD(self, arg: str) -> None:
        fs = self._vfs()
        vpath, fspath = fs.directory(arg or ".")
        perms = self.user.perm if self.user else ""
        lines = [format_mlsx(e.name, e.st, self.facts, perms) + "\r\n"
                 for e in fs.listdir(fspath, show_hidden=False)]
        data = "".join(lines).encode("utf-8", "surrogateescape")
        self._start_transfer("MLSD", vpath, BytesSender(data), "Here comes the directory listing.",
                             "Directory send OK.")

    def ftp_MLST(self, arg: str) -> None:
        vpath, _, st = self._vfs().stat(arg or ".")
        perms = self.user.perm if self.user else ""
        line = " " + format_mlsx(vpath, st, self.facts, perms)
        self._reply_multi(250, f"Listing {vpath}", [line], "End.")

    def ftp_STAT(self, arg: str) -> None:
        if arg:
            if self.user is None:
                self._reply(530, "Log in with USER and PASS first.")
                return
            if not self._permitted("l", "STAT"):
                return
            show_hidden, path = _list_args(arg)
            vpath, entries = self._entries(path, show_hidden)
            lines = format_list(entries).splitlines()
            self._reply_multi(213, f"Status of \"{vpath}\":", lines, "End of status.")
            return
        if self.transfer is not None:
            state = f"Transfer in progress: {self.transfer.command} {self.transfer.path}"
        elif self.slot is not None:
            state = "Data connection: passive, waiting" if self.slot.conn is None else \
                "Data connection: open"
        else:
            state = "Data connection: closed"
        lines = [
            f"Connected to: {self.peer_ip}",
            f"Logged in as: {self.user.name}" if self.user else
            "Waiting for password." if self.state == "PASS" else "Waiting for username.",
            f"TYPE: {'BINARY' if self.binary else 'ASCII'}; STRUcture: File; MODE: Stream",
            state,
        ]
        self._reply_multi(211, "FTP server status:", lines, "End of status.")

    # -- file facts ------------------------------------------------------------------------

    def ftp_SIZE(self, arg: str) -> None:
        _, _, st = self._vfs().file(arg)
        self._reply(213, str(st.st_size))

    def ftp_MDTM(self, arg: str) -> None:
        _, _, st = self._vfs().file(arg)
        self._reply(213, mdtm(st.st_mtime))

    def ftp_HASH(self, arg: str) -> None:
        vpath, fspath, st = self._vfs().file(arg)
        assert self.transport is not None
        self.waiting = True

        def digest() -> str:
            with open(fspath, "rb") as file:
                return hashlib.file_digest(file, "sha256").hexdigest()

        def done(outcome: Outcome[str]) -> None:
            self.waiting = False
            if outcome.error is not None:
                error = outcome.error
                self._reply(550, os_error(error, vpath).message
                            if isinstance(error, OSError) else str(error))
            else:
                self._reply(213, f"SHA-256 0-{st.st_size} {outcome.value} {vpath}")
            self._drain()

        self.transport.run_in_worker(digest, done)

    # -- file management -------------------------------------------------------------------

    def ftp_DELE(self, arg: str) -> None:
        fs = self._vfs()
        vpath, fspath = fs.resolve(arg)
        if os.path.isdir(fspath) and not os.path.islink(fspath):
            raise FSError(f"{vpath}: Is a directory (use RMD).")
        try:
            os.remove(fspath)
        except OSError as exc:
            raise os_error(exc, vpath) from None
        self._reply(250, "File removed.")

    def ftp_MFMT(self, arg: str) -> None:
        """Set a file's (or folder's) modification time; the access time stays."""
        timeval, _, path = arg.partition(" ")
        if not path:
            raise FSError("Syntax error: MFMT needs a time and a path.", 501)
        when = parse_time_val(timeval)
        vpath, fspath, st = self._vfs().stat(path)
        try:
            os.utime(fspath, (st.st_atime, when))
        except OSError as exc:
            raise os_error(exc, vpath) from None
        self._reply(213, f"Modify={timeval}; {vpath}")

    def ftp_SITE(self, arg: str) -> None:
        name, _, rest = arg.partition(" ")
        name = name.upper()
        if name == "HELP":
            self._reply_multi(214, "The following SITE commands are recognized:",
                              [" CHMOD HELP"], "Help SITE command successful.")
        elif name == "CHMOD":
            self._site_chmod(rest)
        else:
            self._reply(500, "Unknown SITE command (SITE HELP lists them).")

    def _site_chmod(self, arg: str) -> None:
        """``SITE CHMOD mode path``: permission bits only, never setuid/setgid/sticky."""
        if not self._permitted("M", "SITE CHMOD"):
            return
        mode_text, _, path = arg.strip().partition(" ")
        if not path or not mode_text or set(mode_text) - set("01234567"):
            raise FSError("Syntax error: SITE CHMOD needs an octal mode and a path.", 501)
        mode = int(mode_text, 8)
        if mode > 0o777:
            raise FSError("Only permission bits (up to 777) may be set.", 501)
        vpath, fspath, _ = self._vfs().stat(path)
        try:
            os.chmod(fspath, mode)
        except OSError as exc:
            raise os_error(exc, vpath) from None
        self._reply(200, "SITE CHMOD successful.")

    def ftp_MKD(self, arg: str) -> None:
        vpath, fspath = self._vfs().resolve(arg)
        try:
            os.mkdir(fspath)
        except OSError as exc:
            raise os_error(exc, vpath) from None
        self._reply(257, f"{_quote(vpath)} directory created.")

    def ftp_RMD(self, arg: str) -> None:
        fs = self._vfs()
        vpath, fspath = fs.resolve(arg)
        if vpath == "/":
            raise FSError("Can't remove the home folder.")
        if vpath == fs.cwd or fs.cwd.startswith(vpath + "/"):
            raise FSError(f"{vpath}: Can't remove the current directory.")
        try:
            os.rmdir(fspath)
        except OSError as exc:
            raise os_error(exc, vpath) from None
        self._reply(250, "Directory removed.")

    def ftp_RNFR(self, arg: str) -> None:
        fs = self._vfs()
        vpath, fspath = fs.resolve(arg)
        if vpath == "/":
            raise FSError("Can't rename the home folder.")
        if not os.path.lexists(fspath):
            raise FSError(f"{vpath}: No such file or directory.")
        self.rnfr = (vpath, fspath)
        self._reply(350, "Ready for destination name.")

    def ftp_RNTO(self, arg: str) -> None:
        source, self.rnfr = self.rnfr, None
        if source is None:
            self._reply(503, "Bad sequence of commands: use RNFR first.")
            return
        vpath, fspath = self._vfs().resolve(arg)
        if vpath == "/":
            raise FSError("Can't overwrite the home folder.")
        try:
            os.rename(source[1], fspath)
        except OSError as exc:
            raise os_error(exc, vpath) from None
        self._reply(250, "Renaming ok.")


def _list_args(arg: str) -> tuple[bool, str]:
    """Split ``LIST -la path`` into (show hidden files, path)."""
    show_hidden = False
    path = arg.strip()
    while path.startswith("-"):
        option, _, path = path.partition(" ")
        show_hidden = show_hidden or "a" in option or "A" in option
        path = path.lstrip()
    return show_hidden, path or "."


def _quote(vpath: str) -> str:
    """A path in a 257 reply: in double quotes, inner quotes doubled (RFC 959)."""
    return '"' + vpath.replace('"', '""').replace("\n", "\0") + '"'
