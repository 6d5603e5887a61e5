"""The virtual filesystem of one FTP session: a home folder that the client sees as "/".

Every path a client names goes through three steps (pyftpdlib's ``ftpnorm``,
``ftp2fs`` and ``validpath``):

1. :meth:`VirtualFS.ftpnorm` joins it to the current directory and removes
   ``.`` and ``..``.  A path that climbs above "/" (``../etc``, ``/../x``) is
   refused, rather than silently clamped, so a client learns at once that it
   asked for something outside its home.
2. :meth:`VirtualFS.ftp2fs` maps the virtual path onto the real one under the
   home folder: ``/pub/a.txt`` becomes ``<home>/pub/a.txt``.  An "absolute"
   client path is therefore always relative to the home.
3. :meth:`VirtualFS.validpath` resolves symlinks (``os.path.realpath``) and
   checks with ``os.path.commonpath`` that the result is still inside the
   home.  A symlink inside the home that points out of it is refused, even
   though the client-side path looks harmless.

Every refusal is a :class:`FSError` carrying the FTP reply code (550).

The listing formats live here too: ``LIST`` (``ls -l`` style, which people
read), ``NLST`` (bare names) and ``MLSD``/``MLST`` facts (RFC 3659, which
programs read).  Times are UTC, month names English whatever the locale.
"""

from __future__ import annotations

import datetime
import errno
import os
import posixpath
import re
import stat
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ALL_FACTS",
    "DEFAULT_FACTS",
    "Entry",
    "FSError",
    "Upload",
    "VirtualFS",
    "format_list",
    "format_mlsx",
    "format_nlst",
    "mdtm",
]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: ``ls -l`` shows the year instead of the time for files older than this.
_SIX_MONTHS = 180 * 24 * 3600

#: MLST facts we can report, and those on by default (OPTS MLST changes them).
ALL_FACTS = ("type", "size", "modify", "perm", "unique", "unix.mode")
DEFAULT_FACTS = ALL_FACTS


class FSError(Exception):
    """A path the client may not use, or a filesystem call that failed.

    ``code`` is the FTP reply to send (550 unless said otherwise).
    """

    def __init__(self, message: str, code: int = 550) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def os_error(exc: OSError, vpath: str) -> FSError:
    """Turn an OSError into a reply a client understands, without host paths."""
    reasons = {
        errno.ENOENT: "No such file or directory",
        errno.EEXIST: "File exists",
        errno.ENOTDIR: "Not a directory",
        errno.EISDIR: "Is a directory",
        errno.ENOTEMPTY: "Directory not empty",
        errno.EACCES: "Permission denied",
        errno.EPERM: "Operation not permitted",
        errno.ENOSPC: "No space left on device",
        errno.ENAMETOOLONG: "File name too long",
        errno.EXDEV: "Cannot move across devices",
    }
    reason = reasons.get(exc.errno or 0, exc.strerror or "Filesystem error")
    code = 452 if exc.errno == errno.ENOSPC else 550
    return FSError(f"{vpath}: {reason}.", code)


@dataclass(frozen=True)
class Entry:
    """One name in a listing, with the stat of what it points to."""

    name: str
    st: os.stat_result


class VirtualFS:
    """One session's view of the disk: ``home`` is "/", and nothing else is reachable.

    Args:
        home: the folder the client sees as "/"; must exist.
    """

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = os.path.realpath(home)
        if not os.path.isdir(self.home):
            raise FSError(f"home folder {os.fspath(home)!r} does not exist", 530)
        #: The current directory, as the client sees it (always absolute, normalised).
        self.cwd = "/"

    # -- path mapping ------------------------------------------------------

    def ftpnorm(self, ftppath: str) -> str:
        """Normalise a client path to an absolute virtual path.

        >>> fs = VirtualFS.__new__(VirtualFS); fs.cwd = "/a"
        >>> fs.ftpnorm("b/../c"), fs.ftpnorm("/x//y/."), fs.ftpnorm("")
        ('/a/c', '/x/y', '/a')

        Raises:
            FSError: the path climbs above "/" or contains a NUL byte.
        """
        if "\0" in ftppath:
            raise FSError("Invalid path (NUL byte).", 501)
        path = ftppath if ftppath.startswith("/") else posixpath.join(self.cwd, ftppath)
        parts: list[str] = []
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise FSError(f"{ftppath}: Outside the home folder.")
                parts.pop()
            else:
                parts.append(part)
        return "/" + "/".join(parts)

    def ftp2fs(self, vpath: str) -> str:
        """The real path of a normalised virtual path (no check)."""
        relative = vpath.lstrip("/")
        return os.path.join(self.home, relative) if relative else self.home

    def fs2ftp(self, fspath: str) -> str:
        """The virtual path of a real path inside the home."""
        relative = os.path.relpath(fspath, self.home)
        return "/" if relative == "." else "/" + relative.replace(os.sep, "/")

    def validpath(self, fspath: str) -> bool:
        """True if ``fspath``, symlinks resolved, is inside the home.

        ``fspath`` comes from :meth:`ftp2fs` (the real home, then normalised
        components), so if no component under the home is a symlink it is
        inside; only when one is do we pay for a full ``realpath``.
        """
        if fspath == self.home:
            return True
        if fspath.startswith(self.home + os.sep):
            path = self.home
            for part in fspath[len(self.home) + 1 :].split(os.sep):
                path = os.path.join(path, part)
                try:
                    if stat.S_ISLNK(os.lstat(path).st_mode):
                        break
                except OSError:
                    return True  # the rest does not exist: nothing to follow
            else:
                return True
        real = os.path.realpath(fspath)
        try:
            return os.path.commonpath([real, self.home]) == self.home
        except ValueError:
            return False

    def resolve(self, ftppath: str) -> tuple[str, str]:
        """``(virtual path, real path)`` of a client path, checked against the jail.

        Raises:
            FSError: outside the home (by ``..`` or through a symlink).
        """
        vpath = self.ftpnorm(ftppath)
        fspath = self.ftp2fs(vpath)
        if not self.validpath(fspath):
            raise FSError(f"{vpath}: Outside the home folder.")
        return vpath, fspath

    # -- queries -------------------------------------------------------------

    def stat(self, ftppath: str) -> tuple[str, str, os.stat_result]:
        """Resolve and stat a path that must exist.

        Raises:
            FSError: outside the home, or it does not exist.
        """
        vpath, fspath = self.resolve(ftppath)
        try:
            return vpath, fspath, os.stat(fspath)
        except OSError as exc:
            raise os_error(exc, vpath) from None

    def file(self, ftppath: str) -> tuple[str, str, os.stat_result]:
        """Like :meth:`stat`, for a path that must be a regular file."""
        vpath, fspath, st = self.stat(ftppath)
        if not stat.S_ISREG(st.st_mode):
            raise FSError(f"{vpath}: Not a regular file.")
        return vpath, fspath, st

    def directory(self, ftppath: str) -> tuple[str, str]:
        """Resolve a path that must be a directory."""
        vpath, fspath, st = self.stat(ftppath)
        if not stat.S_ISDIR(st.st_mode):
            raise FSError(f"{vpath}: Not a directory.")
        return vpath, fspath

    def chdir(self, ftppath: str) -> str:
        """Change the current directory; returns the new one."""
        vpath, fspath = self.directory(ftppath)
        if not os.access(fspath, os.X_OK):
            raise FSError(f"{vpath}: Permission denied.")
        self.cwd = vpath
        return vpath

    def listdir(self, fspath: str, show_hidden: bool = False) -> list[Entry]:
        """The entries of a directory, sorted, stat'ed through symlinks.

        Dot files are left out unless ``show_hidden``; so are names that
        cannot be listed safely: symlinks leading out of the home, and broken
        ones.
        """
        try:
            names = os.listdir(fspath)
        except OSError as exc:
            raise os_error(exc, self.fs2ftp(fspath)) from None
        entries = []
        for name in sorted(names):
            if name.startswith(".") and not show_hidden:
                continue
            path = os.path.join(fspath, name)
            try:
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    if not self.validpath(path):
                        continue
                    st = os.stat(path)
            except OSError:
                continue
            entries.append(Entry(name, st))
        return entries


# -- listing formats -----------------------------------------------------------

def _ls_time(mtime: float, now: float) -> str:
    t = time.gmtime(mtime)
    month = _MONTHS[t.tm_mon - 1]
    if abs(now - mtime) > _SIX_MONTHS:
        return f"{month} {t.tm_mday:2d}  {t.tm_year}"
    return f"{month} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}"


def format_list(entries: Iterable[Entry], now: float | None = None) -> str:
    """``LIST`` lines, as ``ls -l`` prints them (``\\r\\n`` after each)."""
    now = time.time() if now is None else now
    lines = []
    for entry in entries:
        st = entry.st
        name = entry.name.replace("\r", "").replace("\n", "")
        lines.append(
            f"{stat.filemode(st.st_mode)} {st.st_nlink:3d} ftp      ftp      "
            f"{st.st_size:>12d} {_ls_time(st.st_mtime, now)} {name}\r\n"
        )
    return "".join(lines)


def format_nlst(entries: Iterable[Entry]) -> str:
    """``NLST`` lines: bare names."""
    return "".join(entry.name + "\r\n" for entry in entries)


def mdtm(mtime: float) -> str:
    """A time as ``YYYYMMDDHHMMSS`` in UTC (MDTM, MLST ``modify``)."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(mtime))


_TIME_VAL = re.compile(r"(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:\.(\d{1,9}))?")


def parse_time_val(text: str) -> float:
    """RFC 3659's ``time-val`` (``YYYYMMDDHHMMSS[.sss]``, UTC) as a POSIX time.

    Raises:
        FSError (501): not such a time, or not a real date ("20230230...").
    """
    match = _TIME_VAL.fullmatch(text)
    if match is None:
        raise FSError(f"Not a time: {text[:40]!r}; use YYYYMMDDHHMMSS (UTC).", 501)
    *fields, fraction = match.groups()
    try:
        when = datetime.datetime(*map(int, fields), tzinfo=datetime.timezone.utc)
    except ValueError as exc:
        raise FSError(f"Not a time: {text!r} ({exc}).", 501) from None
    return when.timestamp() + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def format_mlsx(name: str, st: os.stat_result, facts: Iterable[str], perms: str,
                kind: str | None = None) -> str:
    """One MLSD/MLST line: ``fact=value;...; name`` (RFC 3659), without line end.

    ``perms`` are the session's pyftpdlib-style letters; they are translated
    to RFC 3659 ``perm`` letters for this entry.  ``kind`` overrides ``type``
    (``cdir``/``pdir``).
    """
    is_dir = stat.S_ISDIR(st.st_mode)
    out = []
    for fact in facts:
        if fact == "type":
            out.append(f"type={kind or ('dir' if is_dir else 'file')}")
        elif fact == "size" and not is_dir:
            out.append(f"size={st.st_size}")
        elif fact == "modify":
            out.append(f"modify={mdtm(st.st_mtime)}")
        elif fact == "perm":
            out.append(f"perm={_rfc3659_perm(is_dir, perms)}")
        elif fact == "unique":
            out.append(f"unique={st.st_dev:x}g{st.st_ino:x}")
        elif fact == "unix.mode":
            out.append(f"unix.mode=0{stat.S_IMODE(st.st_mode):o}")
    clean = name.replace("\r", "").replace("\n", "")
    return ";".join(out) + "; " + clean


def _rfc3659_perm(is_dir: bool, perms: str) -> str:
    letters = []
    if is_dir:
        for ours, theirs in (("w", "c"), ("d", "d"), ("e", "e"), ("f", "f"), ("l", "l"),
                             ("m", "m"), ("d", "p")):
            if ours in perms:
                letters.append(theirs)
    else:
        for ours, theirs in (("a", "a"), ("d", "d"), ("f", "f"), ("r", "r"), ("w", "w")):
            if ours in perms:
                letters.append(theirs)
    return "".join(letters)


# -- uploads -------------------------------------------------------------------

def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Read once at import (os.umask can only be read by setting it, which is not
#: thread-safe); new files get the mode ``open()`` would give them.
_FILE_MODE = 0o666 & ~_current_umask()


class Upload:
    """A file being received, and what to do when it is complete or abandoned.

    Modes:
        ``new``      write a hidden temporary file beside the target, then
                     rename it into place (atomic: no half file is ever seen
                     under the target's name, and a failed upload leaves nothing);
        ``unique``   the same, for STOU: the final name is reserved first;
        ``append``   APPE: append to the file in place (so resuming keeps what
                     arrived before);
        ``restart``  REST n + STOR: overwrite in place from byte ``offset``.

    The file object is used from the data connection's context; ``commit``
    and ``abort`` are called there too, once, by whoever finishes the transfer.
    """

    def __init__(self, fspath: str, vpath: str, mode: str = "new", offset: int = 0) -> None:
        self.fspath = fspath
        self.vpath = vpath
        self.mode = mode
        self.temp: str | None = None
        self.done = False
        folder = os.path.dirname(fspath)
        try:
            if mode in ("new", "unique"):
                if mode == "unique":
                    os.close(os.open(fspath, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE))
                fd, self.temp = tempfile.mkstemp(prefix=".ionet-", suffix=".part", dir=folder)
                os.fchmod(fd, _FILE_MODE)
                self.file = os.fdopen(fd, "wb", buffering=256 * 1024)
            elif mode == "append":
                self.file = open(fspath, "ab", buffering=256 * 1024)  # noqa: SIM115
            elif mode == "restart":
                self.file = open(fspath, "r+b", buffering=256 * 1024)  # noqa: SIM115
                self.file.truncate(offset)
                self.file.seek(offset)
            else:
                raise ValueError(f"unknown upload mode {mode!r}")
        except OSError as exc:
            if mode == "unique":
                _unlink_quietly(fspath)
            raise os_error(exc, vpath) from None

    def commit(self) -> None:
        """The upload is complete: close, and move the temporary file into place.

        Raises:
            FSError: the data could not be written or renamed (disk full...).
        """
        if self.done:
            return
        self.done = True
        try:
            self.file.close()
            if self.temp is not None:
                os.replace(self.temp, self.fspath)
                self.temp = None
        except OSError as exc:
            self._cleanup()
            raise os_error(exc, self.vpath) from None

    def abort(self) -> None:
        """The upload failed or was aborted: drop what a new file received."""
        if self.done:
            return
        self.done = True
        try:
            self.file.close()
        except OSError:
            pass
        self._cleanup()

    def _cleanup(self) -> None:
        if self.temp is not None:
            _unlink_quietly(self.temp)
            self.temp = None
            if self.mode == "unique":
                _unlink_quietly(self.fspath)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
