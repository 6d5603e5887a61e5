"""WebFrame: a small WSGI web framework, the course's "HTTPServer 3.0" application side.

A project is a folder with ``settings.py``, ``urls.py``, ``views.py``,
``templates/`` and ``static/`` (see ``examples/site``); ``App.from_project``
turns it into a WSGI app that any WSGI server runs::

    ionet http serve --app wsgi:app               # in the ionet HTTP server
    ionet web serve PROJECT                       # its own process (split.py) ...
    ionet http serve --upstream 127.0.0.1:9000    # ... behind the HTTP server
    gunicorn wsgi:app                             # or any WSGI server

The pieces, one module each::

    app.py        App: hooks, dispatch, error pages, session saving
    routing.py    path(), include(), Router: convertors, 405 via PARTIAL, reverse()
    request.py    Request: query, headers, cookies, form, JSON, files, client address
    response.py   Response, HTMLResponse, JSONResponse, RedirectResponse, FileResponse...
    templates.py  Jinja2, autoescaping on; render()
    sessions.py   signed-cookie sessions
    static.py     the static folder, jailed, with ETag/304
    multipart.py  multipart/form-data uploads
    settings.py   Settings from settings.py
    errors.py     HTTPError and friends, error pages
    split.py      the framework's side of the split: a framed JSON protocol
    testing.py    Client: call the app in-process, as a browser would

It imports nothing from ``ionet.http``: the framework knows no server.
"""

from ionet.web.app import App, ProjectError, load_project
from ionet.web.errors import (
    BadRequest,
    Forbidden,
    HTTPError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
)
from ionet.web.multipart import UploadedFile
from ionet.web.request import Request
from ionet.web.response import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamResponse,
)
from ionet.web.routing import Convertor, NoReverseMatch, Router, include, path
from ionet.web.sessions import Session
from ionet.web.settings import Settings
from ionet.web.templates import render

__all__ = [
    "App", "BadRequest", "Convertor", "FileResponse", "Forbidden", "HTMLResponse", "HTTPError",
    "JSONResponse", "MethodNotAllowed", "NoReverseMatch", "NotFound", "PayloadTooLarge",
    "ProjectError", "RedirectResponse", "Request", "Response", "Router", "Session", "Settings",
    "StreamResponse", "UploadedFile", "include", "load_project", "path", "render",
]
