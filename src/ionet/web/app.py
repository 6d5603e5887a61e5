"""The App: a WSGI application built from a project's settings and urlpatterns.

One request goes through these steps, each in one place::

    Request(environ)                      request.py: parsed lazily
    before_request hooks                  may answer early (a login check)
    STATIC_URL?  -> the static folder     static.py
    Router.match(method, path)            routing.py: FULL / PARTIAL (405) / NONE (404)
    view(request, **params)               the project's views.py
    make_response(result)                 response.py: str -> HTML, dict -> JSON
    (an HTTPError, or any exception)      errors.py: the error page (500: logged)
    after_request hooks, in reverse       may change the response (a header)
    session cookie, if the session changed
    -> start_response, body               (no body for HEAD; Content-Length kept)

The app imports nothing from ``ionet.http``: it is a plain PEP 3333 app, so
``gunicorn wsgi:app`` runs it as well as ``ionet http serve --app wsgi:app``
or, split into its own process, ``ionet web serve``.

Views run in whatever thread the server gives them, several at once, so
what they share must be safe to share: the App itself is read-only after
construction, and each request has its own :class:`Request`.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import re
import secrets
import sys
import traceback
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from ionet.web.errors import HTTPError, MethodNotAllowed, NotFound, error_html, reason
from ionet.web.request import Request
from ionet.web.response import (
    HTMLResponse,
    RedirectResponse,
    Response,
    make_response,
)
from ionet.web.routing import Convertor, Match, Router
from ionet.web.sessions import CookieSessions, SessionTooLarge
from ionet.web.settings import Settings
from ionet.web.static import StaticFolder
from ionet.web.templates import Templates

__all__ = ["App", "ProjectError", "load_project"]

log = logging.getLogger("ionet.web")

BeforeHook = Callable[[Request], Any]
AfterHook = Callable[[Request, Response], Response | None]

_loaded = itertools.count(1)


class ProjectError(ValueError):
    """A project folder that cannot be loaded: missing files, a broken module."""


def load_project(directory: str | Path) -> tuple[str, types.ModuleType]:
    """Import a project folder as a fresh package; return its name and settings module.

    Each call gives the folder a new package name (``_ionet_project_3_site``),
    so two apps loaded from one folder in one process (two tests, say) do
    not share module state.  The project's modules import each other
    relatively: ``from . import views``.

    Raises:
        ProjectError: not a folder, or its settings module fails to import.
    """
    folder = Path(directory).resolve()
    if not folder.is_dir():
        raise ProjectError(f"no project folder at {folder}")
    label = re.sub(r"\W", "_", folder.name) or "project"
    package = f"_ionet_project_{next(_loaded)}_{label}"
    module = types.ModuleType(package, f"the WebFrame project in {folder}")
    module.__path__ = [str(folder)]
    module.__package__ = package
    module.__file__ = str(folder / "__init__.py")
    sys.modules[package] = module
    if not (folder / "settings.py").is_file():
        return package, types.ModuleType(f"{package}.settings")
    try:
        settings = importlib.import_module(f"{package}.settings")
    except Exception as exc:
        raise ProjectError(f"{folder / 'settings.py'}: {type(exc).__name__}: {exc}") from exc
    return package, settings


class App:
    """A WebFrame application: a WSGI callable.

    Args:
        routes: the urlpatterns (see :mod:`ionet.web.routing`).
        settings: the project's settings; by default DEBUG off and a random
            SECRET_KEY (sessions then last as long as the process).
        package: the project's package, for MIDDLEWARE given as dotted names.
        convertors: extra ``<type:name>`` convertors.

    Build one from a project folder with :meth:`from_project`.
    """

    def __init__(self, routes: Iterable[Any] = (), settings: Settings | None = None, *,
                 package: str | None = None,
                 convertors: dict[str, Convertor[Any]] | None = None) -> None:
        self.settings = settings or Settings(secret_key=secrets.token_hex(32))
        self.package = package
        self.router = Router(routes, convertors)
        self.sessions = CookieSessions(self.settings.secret_key, self.settings.session_max_age)
        self.templates = Templates(self.settings.folder(self.settings.templates),
                                   debug=self.settings.debug,
                                   globals={"settings": self.settings})
        static = self.settings.folder(self.settings.static)
        self.static = StaticFolder(static, self.settings.static_url) if static else None
        #: A namespace for the project's own shared objects (a database pool).
        self.state = types.SimpleNamespace()
        self._before: list[BeforeHook] = []
        self._after: list[AfterHook] = []
        for item in self.settings.middleware:
            self.add_middleware(item)

    @classmethod
    def from_project(cls, directory: str | Path, **overrides: Any) -> App:
        """The app of a project folder: ``settings.py``, ``urls.py`` and the rest.

        Args:
            directory: the folder.
            overrides: settings to replace, by lower-case name (``debug=True``).

        Raises:
            ProjectError: a missing or broken settings or urls module, or an
                invalid setting.
        """
        folder = Path(directory).resolve()
        package, settings_module = load_project(folder)
        try:
            settings = Settings.from_module(settings_module, folder, **overrides)
        except (TypeError, ValueError) as exc:
            raise ProjectError(f"{folder / 'settings.py'}: {exc}") from None
        urls_name = f"{package}.{settings.root_urlconf}"
        try:
            urls = importlib.import_module(urls_name)
        except ModuleNotFoundError as exc:
            if exc.name == urls_name:
                raise ProjectError(f"{folder} has no {settings.root_urlconf}.py") from None
            raise ProjectError(f"{folder}: {exc}") from exc
        except Exception as exc:
            raise ProjectError(f"{folder / settings.root_urlconf}.py: "
                               f"{type(exc).__name__}: {exc}") from exc
        routes = getattr(urls, "urlpatterns", None)
        if routes is None:
            raise ProjectError(f"{urls.__file__} defines no urlpatterns")
        try:
            return cls(routes, settings, package=package)
        except (TypeError, ValueError, ImportError, AttributeError) as exc:
            raise ProjectError(f"{folder}: {exc}") from exc

    # -- hooks ------------------------------------------------------------------

    def before_request(self, hook: BeforeHook) -> BeforeHook:
        """Decorator: ``hook(request)`` runs before every view; a return value
        other than None is the response (the view is skipped)."""
        self._before.append(hook)
        return hook

    def after_request(self, hook: AfterHook) -> AfterHook:
        """Decorator: ``hook(request, response)`` runs after every response,
        error pages included; it may return a replacement response."""
        self._after.append(hook)
        return hook

    def add_middleware(self, item: Any) -> None:
        """Add an object with ``before_request`` and/or ``after_request``
        methods, or a dotted name of one (a class is instantiated first).

        Raises:
            ImportError / AttributeError: the dotted name does not resolve.
            TypeError: the object has neither method.
        """
        if isinstance(item, str):
            item = self._resolve(item)
        if isinstance(item, type):
            item = item()
        before, after = getattr(item, "before_request", None), getattr(item, "after_request", None)
        if before is None and after is None:
            raise TypeError(f"middleware {item!r} has no before_request or after_request")
        if before is not None:
            self._before.append(before)
        if after is not None:
            self._after.append(after)

    def _resolve(self, dotted: str) -> Any:
        module_name, _, attribute = dotted.rpartition(".")
        if not module_name:
            raise ImportError(f"middleware {dotted!r} is not a dotted name (module.attribute)")
        candidates = [f"{self.package}.{module_name}"] if self.package else []
        for candidate in [*candidates, module_name]:
            try:
                module = importlib.import_module(candidate)
            except ModuleNotFoundError as exc:
                if exc.name != candidate:
                    raise
                continue
            return getattr(module, attribute)
        raise ImportError(f"cannot find middleware {dotted!r}")

    # -- URLs ---------------------------------------------------------------------

    def url_for(self, name: str, **params: Any) -> str:
        """A route's path by name (without the mount point; see ``Request.url_for``)."""
        return self.router.reverse(name, **params)

    def static_helper(self, request: Request) -> Callable[[str], str]:
        """The templates' ``static(path)`` for ``request``."""
        base = request.script_name + self.settings.static_url

        def static(path: str) -> str:
            return base + quote(path.lstrip("/"))

        return static

    # -- answering ------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ, self)
        response = self.handle(request)
        if request.method == "HEAD":
            headers = response.wsgi_headers()
            response.close()
            start_response(response.status_text, headers)
            return []
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        """The response to ``request``: the view's, or an error page.  Never raises
        (except ``KeyboardInterrupt``, ``SystemExit`` and ``MemoryError``)."""
        try:
            response = self._respond(request)
        except HTTPError as exc:
            response = self.error_response(request, exc.status, exc.message, exc.headers)
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - the one boundary: any bug is a 500 page
            response = self._crashed(request, exc, "the view")
        for hook in reversed(self._after):
            try:
                response = hook(request, response) or response
            except HTTPError as exc:
                response = self.error_response(request, exc.status, exc.message, exc.headers)
            except MemoryError:
                raise
            except Exception as exc:  # noqa: BLE001 - as above, for the hooks
                response = self._crashed(request, exc, f"after_request hook {hook!r}")
                break
        return self._save_session(request, response)

    def _respond(self, request: Request) -> Response:
        for hook in self._before:
            early = hook(request)
            if early is not None:
                return make_response(early)
        path = request.path
        if self.static is not None and self.static.handles(path):
            return self.static.serve(request)
        match, route, params, allowed = self.router.match(request.method, path)
        if match is Match.FULL:
            assert route is not None
            request.params = params
            return make_response(route.view(request, **params))
        if match is Match.PARTIAL:
            if request.method == "OPTIONS":
                return Response(b"", 204, [("Allow", ", ".join(sorted(allowed)))], None)
            raise MethodNotAllowed(allowed)
        if path != "/":
            # "/about/" for "/about" (or the reverse): send the browser to the
            # route that exists; 308 keeps the method and body.
            other = path[:-1] if path.endswith("/") else path + "/"
            if self.router.match(request.method, other)[0] is not Match.NONE:
                query = request.query_string
                location = quote(request.script_name + other) + ("?" + query if query else "")
                return RedirectResponse(location, 308)
        raise NotFound()

    def _crashed(self, request: Request, exc: Exception, where: str) -> Response:
        log.error("%s %s: %s failed", request.method, request.path, where, exc_info=exc)
        return self.error_response(request, 500, exc=exc)

    def error_response(self, request: Request, status: int, message: str = "",
                       headers: list[tuple[str, str]] | None = None,
                       exc: BaseException | None = None) -> Response:
        """The error page for ``status``: the project's ``<status>.html``
        template if it has one, else the built-in page.  In debug mode, a 500
        shows the traceback of ``exc``."""
        page = None
        if exc is not None and self.settings.debug:
            text = "".join(traceback.format_exception(exc))
            page = error_html(status, f"{type(exc).__name__}: {exc}", text)
        elif self.templates.directory is not None:
            name = f"{status}.html"
            try:
                if self.templates.exists(name):
                    page = self.templates.render(name, {
                        "request": request, "status": status, "reason": reason(status),
                        "message": message, "url": request.url_for,
                        "static": self.static_helper(request)})
            except jinja2.TemplateError as failure:
                log.error("error page %s failed", name, exc_info=failure)
        if page is None:
            page = error_html(status, message)
        response = HTMLResponse(page, status)
        for name, value in headers or ():
            response.set_header(name, value)
        return response

    def _save_session(self, request: Request, response: Response) -> Response:
        session = request._session
        if session is None:
            return response
        if response.get_header("Vary") is None:
            response.add_header("Vary", "Cookie")
        if not session.modified or response.status >= 500:
            return response
        settings = self.settings
        try:
            if session:
                response.set_cookie(settings.session_cookie_name, self.sessions.dump(session),
                                    max_age=settings.session_max_age,
                                    secure=settings.session_cookie_secure)
            else:
                response.delete_cookie(settings.session_cookie_name)
        except (SessionTooLarge, TypeError) as exc:
            response.close()
            return self._crashed(request, exc, "saving the session")
        return response

