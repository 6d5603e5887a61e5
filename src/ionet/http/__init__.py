"""HTTP/1.1: an IO-free server protocol, static files and a WSGI gateway.

The pieces, each in its own module::

    parser.py     bytes -> Request objects (httptools/llhttp), limits, smuggling checks
    protocol.py   HttpProtocol: keep-alive, pipelining in order, timeouts, 100-continue
    status.py     status lines, error pages, the cached Date header, HttpError
    limits.py     HttpLimits: sizes and timeouts
    static.py     StaticFiles: safe paths, ETag/304, Range/206, sendfile
    wsgi.py       WSGIGateway: PEP 3333 apps, run in the worker pool on loop engines
    mount.py      Mount: files under /static/, an app for the rest; Site and
                  compose(): pages other services put into one server (the chat)
    accesslog.py  Common Log Format
    cli.py        ``ionet http serve``

Serving a folder from Python::

    from ionet.core.config import Endpoint
    from ionet.core.server import serve
    from ionet.http import HttpService, StaticFiles

    service = HttpService(StaticFiles("public"))
    serve([Endpoint("http", "tcp", "127.0.0.1", 8000, service)], "epoll")
"""

from ionet.http.accesslog import AccessLog
from ionet.http.limits import HttpLimits
from ionet.http.mount import Mount
from ionet.http.parser import Request, RequestParser
from ionet.http.protocol import Handler, HttpProtocol, HttpService
from ionet.http.static import StaticFiles
from ionet.http.status import HttpError
from ionet.http.wsgi import FileWrapper, WSGIGateway, load_app

__all__ = [
    "AccessLog", "FileWrapper", "Handler", "HttpError", "HttpLimits", "HttpProtocol",
    "HttpService", "Mount", "Request", "RequestParser", "StaticFiles", "WSGIGateway", "load_app",
]
