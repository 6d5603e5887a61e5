"""Routing: convertors, order, reverse(), 404 / 405 (PARTIAL), include()."""

from __future__ import annotations

import pytest

from ionet.web.routing import (
    Convertor,
    Match,
    NoReverseMatch,
    Router,
    include,
    path,
)


def view(request, **params):  # type: ignore[no-untyped-def]
    return params


def other(request, **params):  # type: ignore[no-untyped-def]
    return params


def test_convertors_match_and_convert() -> None:
    router = Router([
        path("/word/<str:word>", view, name="word"),
        path("/item/<int:number>", view, name="item"),
        path("/files/<path:rest>", view, name="files"),
        path("/plain/<name>", view, name="plain"),
    ])
    assert router.match("GET", "/word/hello")[2] == {"word": "hello"}
    assert router.match("GET", "/word/café")[2] == {"word": "café"}
    assert router.match("GET", "/word/a/b")[0] is Match.NONE  # str stops at "/"
    match, _, params, _ = router.match("GET", "/item/42")
    assert match is Match.FULL and params == {"number": 42} and type(params["number"]) is int
    assert router.match("GET", "/item/x42")[0] is Match.NONE
    assert router.match("GET", "/item/-1")[0] is Match.NONE
    assert router.match("GET", "/files/a/b/c.txt")[2] == {"rest": "a/b/c.txt"}
    assert router.match("GET", "/files/")[0] is Match.NONE  # path is never empty
    assert router.match("GET", "/plain/x")[2] == {"name": "x"}


def test_first_route_in_order_wins_fixed_or_not() -> None:
    router = Router([
        path("/word/<str:word>", view),
        path("/word/about", other),  # shadowed: listed after the parameterised one
        path("/fixed", other),
        path("/<str:anything>", view),
    ])
    assert router.match("GET", "/word/about")[1].view is view  # type: ignore[union-attr]
    assert router.match("GET", "/fixed")[1].view is other  # type: ignore[union-attr]
    assert router.match("GET", "/else")[1].view is view  # type: ignore[union-attr]


def test_methods_partial_match_gives_allowed() -> None:
    router = Router([
        path("/items", view, methods=["GET"]),
        path("/items", other, methods=["POST"]),
        path("/thing/<int:n>", view, methods=["PUT", "DELETE"]),
        path("/any", view, methods=None),
    ])
    assert router.match("GET", "/items")[1].view is view  # type: ignore[union-attr]
    assert router.match("HEAD", "/items")[1].view is view  # type: ignore[union-attr]
    assert router.match("POST", "/items")[1].view is other  # type: ignore[union-attr]
    match, route, _, allowed = router.match("DELETE", "/items")
    assert match is Match.PARTIAL and route is None
    assert allowed == {"GET", "HEAD", "POST"}
    match, _, _, allowed = router.match("GET", "/thing/3")
    assert match is Match.PARTIAL and allowed == {"PUT", "DELETE"}
    assert router.match("PATCH", "/any")[0] is Match.FULL
    assert router.match("GET", "/nothing")[0] is Match.NONE


def test_a_later_route_can_take_the_method_an_earlier_fixed_one_refuses() -> None:
    router = Router([path("/x", view, methods=["GET"]), path("/<str:s>", other, methods=["POST"])])
    assert router.match("POST", "/x")[1].view is other  # type: ignore[union-attr]


def test_reverse_round_trips_and_quotes() -> None:
    router = Router([
        path("/word/<str:word>", view, name="word"),
        path("/item/<int:number>/edit", view, name="edit"),
        path("/files/<path:rest>", view, name="files"),
        path("/", view, name="home"),
    ])
    assert router.reverse("home") == "/"
    assert router.reverse("word", word="hello world") == "/word/hello%20world"
    assert router.reverse("word", word="café") == "/word/caf%C3%A9"
    assert router.reverse("word", word="a?b#c") == "/word/a%3Fb%23c"
    assert router.reverse("edit", number=7) == "/item/7/edit"
    assert router.reverse("files", rest="a b/c.txt") == "/files/a%20b/c.txt"
    with pytest.raises(NoReverseMatch):
        router.reverse("nope")
    with pytest.raises(NoReverseMatch):
        router.reverse("word")  # missing parameter
    with pytest.raises(NoReverseMatch):
        router.reverse("word", word="x", extra=1)
    with pytest.raises(NoReverseMatch):
        router.reverse("word", word="a/b")  # str holds one segment
    with pytest.raises(NoReverseMatch):
        router.reverse("edit", number=-3)
    with pytest.raises(NoReverseMatch):
        router.reverse("edit", number="seven")


def test_custom_convertor() -> None:
    class Hex(Convertor[int]):
        regex = "[0-9a-f]+"

        def convert(self, value: str) -> int:
            return int(value, 16)

        def to_string(self, value: int) -> str:
            return format(value, "x")

    router = Router([path("/color/<hex:rgb>", view, name="color")], convertors={"hex": Hex()})
    assert router.match("GET", "/color/ff00ff")[2] == {"rgb": 0xFF00FF}
    assert router.reverse("color", rgb=255) == "/color/ff"


def test_include_prefixes_and_flattens() -> None:
    api = [path("/", view, name="api"), path("/users/<int:id>", view, name="user")]
    router = Router([path("/", other, name="home"), include("/api", api)])
    assert router.match("GET", "/api")[1].view is view  # type: ignore[union-attr]
    assert router.match("GET", "/api/users/3")[2] == {"id": 3}
    assert router.reverse("user", id=3) == "/api/users/3"


@pytest.mark.parametrize("pattern", ["no-slash", "/<unknown:x>", "/<a>/<a>", "/bad<"])
def test_malformed_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        Router([path(pattern, view)])


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError):
        Router([path("/a", view, name="x"), path("/b", view, name="x")])



@pytest.mark.parametrize(("imports", "forbidden"), [
    ("ionet.web, ionet.web.split, ionet.web.testing, ionet.web.cli", "ionet.http"),
    ("ionet.http, ionet.http.upstream, ionet.http.cli", "ionet.web"),
])
def test_the_framework_and_the_server_do_not_import_each_other(imports: str,
                                                               forbidden: str) -> None:
    import subprocess
    import sys

    code = (f"import sys, {imports}; "
            f"bad = [m for m in sys.modules if m.startswith({forbidden!r})]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
