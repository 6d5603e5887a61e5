"""URL routing: ``urlpatterns`` in, (view, parameters) out, and back again.

A project's ``urls.py`` lists its routes, as Django's does::

    from ionet.web import path
    from . import views

    urlpatterns = [
        path("/", views.home, name="home"),
        path("/word/<str:word>", views.word, name="word"),
        path("/item/<int:id>", views.item, methods=["GET", "DELETE"]),
        path("/files/<path:rest>", views.files),
    ]

A pattern's ``<type:name>`` parts are *convertors* (starlette's word): each
has a regular expression, a ``convert`` from the matched text to a value
(``int`` gives an ``int``), and a ``to_string`` for the way back, which
:meth:`Router.reverse` uses to build a URL from a route's name.

Matching (:meth:`Router.match`) gives one of three answers, as starlette's
``Match`` does: ``FULL`` (path and method fit), ``PARTIAL`` (the path fits
but no route takes this method: the app answers 405 with ``Allow``) or
``NONE`` (404).  Routes are tried in order and the first full match wins.
Routes without parameters are found by a dictionary lookup, so a site with
many fixed pages pays no regex per route; the order rule still holds, since
only parameterised routes listed *before* the fixed one are tried first.

A route takes GET (and so HEAD) unless it names its ``methods``, as
bottle, Flask and starlette do: a view written for GET does not get a POST
by surprise.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

__all__ = [
    "CONVERTORS",
    "Convertor",
    "IntConvertor",
    "Match",
    "NoReverseMatch",
    "PathConvertor",
    "Route",
    "Router",
    "StringConvertor",
    "include",
    "path",
]

T = TypeVar("T")
View = Callable[..., Any]


class Convertor(Generic[T]):
    """A ``<type:name>`` part of a pattern: its regex, and conversions both ways."""

    #: What the part matches in a (percent-decoded) path.
    regex = ""
    #: Characters left unescaped when :meth:`Router.reverse` quotes the value.
    safe = ""

    def convert(self, value: str) -> T:
        """The matched text -> the value passed to the view."""
        raise NotImplementedError

    def to_string(self, value: T) -> str:
        """A value -> the path text (before quoting) that :meth:`convert` gives back."""
        raise NotImplementedError


class StringConvertor(Convertor[str]):
    """``<str:name>`` (or ``<name>``): one path segment, no ``/``."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        value = str(value)
        if not value or "/" in value:
            raise ValueError(f"a str parameter is one non-empty segment, not {value!r}")
        return value


class IntConvertor(Convertor[int]):
    """``<int:name>``: decimal digits, given to the view as an ``int``."""

    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        if isinstance(value, bool) or int(value) < 0:
            raise ValueError(f"an int parameter is a natural number, not {value!r}")
        return str(int(value))


class PathConvertor(Convertor[str]):
    """``<path:name>``: the rest of the path, ``/`` included (never empty)."""

    regex = ".+"
    safe = "/"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        value = str(value)
        if not value:
            raise ValueError("a path parameter must not be empty")
        return value


#: The convertors every router knows; ``Router(convertors=...)`` adds more.
CONVERTORS: dict[str, Convertor[Any]] = {
    "str": StringConvertor(),
    "int": IntConvertor(),
    "path": PathConvertor(),
}

_PARAM = re.compile(r"<(?:(?P<type>[a-zA-Z_][a-zA-Z0-9_]*):)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
_METHOD = re.compile(r"[A-Z]+\Z")


class NoReverseMatch(LookupError):
    """No route has that name, or the parameters do not fit its pattern."""


class Match(enum.Enum):
    NONE = 0
    PARTIAL = 1  # the path fits, the method does not: 405
    FULL = 2


@dataclass
class Route:
    """One entry of ``urlpatterns``: a pattern, its view, a name, its methods.

    Built with :func:`path`; compiled by the :class:`Router` that holds it.
    """

    pattern: str
    view: View
    name: str | None = None
    methods: frozenset[str] | None = frozenset({"GET", "HEAD"})
    # Set by Router.compile:
    regex: re.Pattern[str] | None = field(default=None, repr=False)
    params: dict[str, Convertor[Any]] = field(default_factory=dict, repr=False)
    parts: list[tuple[str, str | None]] = field(default_factory=list, repr=False)

    def allows(self, method: str) -> bool:
        return self.methods is None or method in self.methods


def path(pattern: str, view: View, *, name: str | None = None,
         methods: Iterable[str] | None = ("GET",)) -> Route:
    """A route: ``pattern`` served by ``view``.

    Args:
        pattern: a path starting with ``/``; ``<type:name>`` parts capture
            parameters, passed to the view as keyword arguments.
        view: ``view(request, **params)``, returning a Response, a str
            (HTML), a dict or list (JSON), or ``(body, status)``.
        name: for :meth:`Router.reverse` and the templates' ``url()``.
        methods: the methods taken (GET implies HEAD); None takes every
            method, leaving the view to check ``request.method``.

    Raises:
        ValueError: a malformed pattern or method name.
    """
    if not pattern.startswith("/"):
        raise ValueError(f"a route pattern starts with '/': {pattern!r}")
    allowed: frozenset[str] | None = None
    if methods is not None:
        if isinstance(methods, str):
            methods = [methods]
        names = {method.upper() for method in methods}
        for method in names:
            if not _METHOD.match(method):
                raise ValueError(f"not a method name: {method!r}")
        if "GET" in names:
            names.add("HEAD")
        allowed = frozenset(names)
    return Route(pattern, view, name, allowed)


def include(prefix: str, routes: Iterable[Route | Iterable[Any]]) -> list[Route]:
    """``routes`` (another ``urlpatterns``) under ``prefix``: ``include("/api", api.urls)``."""
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"an include prefix looks like '/api', not {prefix!r}")
    return [Route(prefix + route.pattern if route.pattern != "/" else prefix, route.view,
                  route.name, route.methods)
            for route in _flatten(routes)]


def _flatten(routes: Iterable[Any]) -> list[Route]:
    flat: list[Route] = []
    for item in routes:
        if isinstance(item, Route):
            flat.append(item)
        elif isinstance(item, (list, tuple)):
            flat.extend(_flatten(item))
        else:
            raise TypeError(f"urlpatterns holds routes (made with path()), not {item!r}")
    return flat


class Router:
    """Match paths to routes, and names back to paths.

    Args:
        routes: ``urlpatterns``; nested lists (from :func:`include`) are flattened.
        convertors: extra ``<type:...>`` convertors by type name.

    Raises:
        ValueError: a pattern names an unknown convertor, repeats a
            parameter, or two routes share a name.
    """

    def __init__(self, routes: Iterable[Any] = (),
                 convertors: dict[str, Convertor[Any]] | None = None) -> None:
        self.convertors = {**CONVERTORS, **(convertors or {})}
        self.routes = _flatten(routes)
        self.by_name: dict[str, Route] = {}
        #: Fixed path -> [(index, route)], in order.
        self._fixed: dict[str, list[tuple[int, Route]]] = {}
        #: Parameterised routes, in order.
        self._dynamic: list[tuple[int, Route]] = []
        for index, route in enumerate(self.routes):
            self._compile(route)
            if route.name is not None:
                if route.name in self.by_name:
                    raise ValueError(f"two routes are named {route.name!r}")
                self.by_name[route.name] = route
            if route.params:
                self._dynamic.append((index, route))
            else:
                self._fixed.setdefault(route.pattern, []).append((index, route))

    def _compile(self, route: Route) -> None:
        regex: list[str] = ["^"]
        parts: list[tuple[str, str | None]] = []
        params: dict[str, Convertor[Any]] = {}
        position = 0
        for found in _PARAM.finditer(route.pattern):
            literal = route.pattern[position:found.start()]
            regex.append(re.escape(literal))
            parts.append((literal, None))
            kind, name = found["type"] or "str", found["name"]
            convertor = self.convertors.get(kind)
            if convertor is None:
                raise ValueError(f"unknown convertor {kind!r} in {route.pattern!r} "
                                 f"(known: {', '.join(sorted(self.convertors))})")
            if name in params:
                raise ValueError(f"parameter {name!r} appears twice in {route.pattern!r}")
            params[name] = convertor
            regex.append(f"(?P<{name}>{convertor.regex})")
            parts.append(("", name))
            position = found.end()
        literal = route.pattern[position:]
        if "<" in literal or ">" in literal:
            raise ValueError(f"malformed parameter in {route.pattern!r}")
        regex.append(re.escape(literal) + "$")
        parts.append((literal, None))
        route.regex = re.compile("".join(regex))
        route.params = params
        route.parts = parts

    def match(self, method: str, path: str) -> tuple[Match, Route | None, dict[str, Any],
                                                     frozenset[str]]:
        """Find the route for ``method`` and (percent-decoded) ``path``.

        Returns:
            ``(Match.FULL, route, params, _)`` for a hit;
            ``(Match.PARTIAL, None, {}, allowed)`` when routes fit the path
            but none takes ``method`` (``allowed``: the methods that would);
            ``(Match.NONE, None, {}, _)`` otherwise.
        """
        allowed: set[str] = set()
        winner: Route | None = None  # the first fixed route that takes the method
        limit = len(self.routes)
        fixed = self._fixed.get(path)
        if fixed:
            for index, route in fixed:
                if route.allows(method):
                    winner, limit = route, index
                    break
                assert route.methods is not None
                allowed |= route.methods
        for index, route in self._dynamic:
            if index > limit:
                break
            assert route.regex is not None
            found = route.regex.match(path)
            if found is None:
                continue
            if not route.allows(method):
                assert route.methods is not None
                allowed |= route.methods
                continue
            try:
                params = {name: route.params[name].convert(text)
                          for name, text in found.groupdict().items()}
            except ValueError:
                continue
            return Match.FULL, route, params, frozenset()
        if winner is not None:
            return Match.FULL, winner, {}, frozenset()
        if allowed:
            return Match.PARTIAL, None, {}, frozenset(allowed)
        return Match.NONE, None, {}, frozenset()

    def reverse(self, name: str, **params: Any) -> str:
        """The path of route ``name`` with ``params`` filled in, percent-encoded.

        Raises:
            NoReverseMatch: no such name, missing or extra parameters, or a
                value its convertor refuses (a ``/`` in a str parameter).
        """
        route = self.by_name.get(name)
        if route is None:
            raise NoReverseMatch(f"no route named {name!r}")
        if set(params) != set(route.params):
            raise NoReverseMatch(f"route {name!r} takes {sorted(route.params)}, "
                                 f"not {sorted(params)}")
        pieces = []
        for literal, param in route.parts:
            if param is None:
                pieces.append(quote(literal, safe="/:@!$&'()*+,;=-._~"))
                continue
            convertor = route.params[param]
            try:
                text = convertor.to_string(params[param])
            except (TypeError, ValueError) as exc:
                raise NoReverseMatch(f"route {name!r}, parameter {param!r}: {exc}") from None
            if not re.fullmatch(convertor.regex, text):
                raise NoReverseMatch(f"route {name!r}: {text!r} does not fit <{param}>")
            pieces.append(quote(text, safe=convertor.safe))
        return "".join(pieces)

    def names(self) -> Sequence[str]:
        return list(self.by_name)
