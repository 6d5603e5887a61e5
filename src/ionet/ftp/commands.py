"""The FTP command table: what each command needs, in one place.

Like pyftpdlib's ``proto_cmds``, one table drives three things in the control
connection: argument checks (501 when an argument is missing or forbidden),
login and permission checks (530 / 550), and the text of ``HELP``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Longest command line accepted (pyftpdlib's limit); longer: "500 Command too long."
MAX_LINE = 2048


@dataclass(frozen=True)
class Command:
    """One FTP command.

    Attributes:
        perm: the permission letter it needs (see ``accounts``), or "".
        auth: it needs a logged-in user.
        arg: True: an argument is required; False: none allowed; None: optional.
        help: the syntax line HELP shows.
        during_transfer: it is answered at once while a transfer runs
            (ABOR, STAT, NOOP); other commands wait for the transfer to end.
    """

    perm: str
    auth: bool
    arg: bool | None
    help: str
    during_transfer: bool = False


C = Command
COMMANDS: dict[str, Command] = {
    "ABOR": C("", True, False, "Syntax: ABOR (abort transfer).", during_transfer=True),
    "ALLO": C("", True, None, "Syntax: ALLO <SP> bytes (noop; allocate storage)."),
    "APPE": C("a", True, True, "Syntax: APPE <SP> file-name (append data to file)."),
    "AUTH": C("", False, True, "Syntax: AUTH <SP> TLS (set up secure control channel)."),
    "CDUP": C("e", True, False, "Syntax: CDUP (go to parent directory)."),
    "CWD": C("e", True, None, "Syntax: CWD [<SP> dir-name] (change working directory)."),
    "DELE": C("d", True, True, "Syntax: DELE <SP> file-name (delete file)."),
    "EPRT": C("", True, True, "Syntax: EPRT <SP> |proto|ip|port| (extended active mode)."),
    "EPSV": C("", True, None, "Syntax: EPSV [<SP> proto/\"ALL\"] (extended passive mode)."),
    "FEAT": C("", False, False, "Syntax: FEAT (list all new features supported)."),
    "HASH": C("r", True, True, "Syntax: HASH <SP> file-name (SHA-256 of a file)."),
    "HELP": C("", False, None, "Syntax: HELP [<SP> cmd] (show help)."),
    "LIST": C("l", True, None, "Syntax: LIST [<SP> [-a] path] (list files)."),
    "MDTM": C("l", True, True, "Syntax: MDTM [<SP> path] (file last modification time)."),
    "MFMT": C("T", True, True,
              "Syntax: MFMT <SP> YYYYMMDDHHMMSS <SP> path (set modification time)."),
    "MKD": C("m", True, True, "Syntax: MKD <SP> path (create directory)."),
    "MLSD": C("l", True, None, "Syntax: MLSD [<SP> path] (list directory)."),
    "MLST": C("l", True, None, "Syntax: MLST [<SP> path] (show information about path)."),
    "MODE": C("", False, True, "Syntax: MODE <SP> mode (noop; set data transfer mode)."),
    "NLST": C("l", True, None, "Syntax: NLST [<SP> path] (list path in a compact form)."),
    "NOOP": C("", False, False, "Syntax: NOOP (just do nothing).", during_transfer=True),
    "OPTS": C("", False, True, "Syntax: OPTS <SP> cmd [<SP> option] (set option for command)."),
    "PASS": C("", False, None, "Syntax: PASS [<SP> password] (set user password)."),
    "PASV": C("", True, False, "Syntax: PASV (open passive data connection)."),
    "PBSZ": C("", False, True, "Syntax: PBSZ <SP> 0 (negotiate TLS buffer)."),
    "PORT": C("", True, True, "Syntax: PORT <sp> h,h,h,h,p,p (open active data connection)."),
    "PROT": C("", False, True, "Syntax: PROT <SP> [C|P] (set up un/secure data channel)."),
    "PWD": C("", True, False, "Syntax: PWD (get current working directory)."),
    "QUIT": C("", False, False, "Syntax: QUIT (quit current session)."),
    "REST": C("", True, True, "Syntax: REST <SP> offset (set file offset)."),
    "RETR": C("r", True, True, "Syntax: RETR <SP> file-name (retrieve a file)."),
    "RMD": C("d", True, True, "Syntax: RMD <SP> dir-name (remove directory)."),
    "RNFR": C("f", True, True, "Syntax: RNFR <SP> file-name (rename (source name))."),
    "RNTO": C("f", True, True, "Syntax: RNTO <SP> file-name (rename (destination name))."),
    "SITE": C("", True, True, "Syntax: SITE <SP> site-command (SITE HELP for the list)."),
    "SIZE": C("l", True, True, "Syntax: SIZE <SP> file-name (get file size)."),
    "STAT": C("l", False, None, "Syntax: STAT [<SP> path name] (server stats [list files]).",
              during_transfer=True),
    "STOR": C("w", True, True, "Syntax: STOR <SP> file-name (store a file)."),
    "STOU": C("w", True, None, "Syntax: STOU [<SP> name] (store a file with a unique name)."),
    "STRU": C("", False, True, "Syntax: STRU <SP> type (noop; set file structure)."),
    "SYST": C("", False, False, "Syntax: SYST (get operating system type)."),
    "TYPE": C("", False, True, "Syntax: TYPE <SP> [A | I] (set transfer type)."),
    "USER": C("", False, True, "Syntax: USER <SP> user-name (set username)."),
    "XCUP": C("e", True, False, "Syntax: XCUP (obsolete; go to parent directory)."),
    "XCWD": C("e", True, None, "Syntax: XCWD [<SP> dir-name] (obsolete; change directory)."),
    "XMKD": C("m", True, True, "Syntax: XMKD <SP> path (obsolete; create directory)."),
    "XPWD": C("", True, False, "Syntax: XPWD (obsolete; get current dir)."),
    "XRMD": C("d", True, True, "Syntax: XRMD <SP> dir-name (obsolete; remove directory)."),
}
del C

#: Obsolete spellings served by the modern command's handler.
ALIASES = {"XCUP": "CDUP", "XCWD": "CWD", "XMKD": "MKD", "XPWD": "PWD", "XRMD": "RMD"}

#: Commands that only make sense with TLS configured.
TLS_COMMANDS = frozenset({"AUTH", "PBSZ", "PROT"})


def help_lines(tls: bool) -> list[str]:
    """The command names, eight to a line, for ``HELP`` without argument."""
    names = [name for name in sorted(COMMANDS) if tls or name not in TLS_COMMANDS]
    return [" " + " ".join(f"{name:<5}" for name in names[i : i + 8]).rstrip()
            for i in range(0, len(names), 8)]
