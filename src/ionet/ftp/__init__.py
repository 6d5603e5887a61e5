"""The file server: FTP (RFC 959 and its common extensions), IO-free on the core contract.

``control`` is the control connection, put together from ``core`` (state,
command queue, dispatch, replies), ``session`` (login, AUTH TLS, settings),
``transfers`` (data connections, RETR/STOR, the data timeout) and ``files``
(navigation, listings, file facts and changes); ``server`` holds what all
connections of one server share (``FtpSettings``, ``FtpServer``), and
``commands`` the command table.  ``data`` is the data connections (sendfile
downloads, atomic uploads, listings), ``fs`` the per-user virtual
filesystem (a jail around the home folder), ``accounts`` the users file,
argon2 hashes, permissions and failed-login bans, and ``client`` the
interactive client and the parallel ranged download, on top of the
standard ``ftplib``.
"""

from ionet.ftp.accounts import Authorizer, LoginGuard, User
from ionet.ftp.control import FtpControl
from ionet.ftp.server import FtpServer, FtpSettings, build_server

__all__ = [
           "Authorizer",
           "FtpControl",
           "FtpServer",
           "FtpSettings",
           "LoginGuard",
           "User",
           "build_server",
]
