"""Templates: Jinja2 with autoescaping on, and the helpers a page needs.

Every ``{{ value }}`` is HTML-escaped, whatever the template's extension:
a comment typed as ``<script>alert(1)</script>`` is shown as text, never run.
Markup that is really meant as markup has to say so (``{{ html|safe }}``, or
``markupsafe.Markup`` in Python), which makes it visible in review.

Templates see, besides what the view passes:

    request            the Request (``request.path``, ``request.session``)
    url(name, **kw)    a route's URL by name (``url("word", word="hi")``)
    static(path)       a static file's URL (``static("style.css")``)
    settings           the project's Settings

Compiled templates are cached; with ``DEBUG`` they are reloaded when their
file changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from ionet.web.response import HTMLResponse

if TYPE_CHECKING:
    from ionet.web.request import Request

__all__ = ["Templates", "render"]


class Templates:
    """A folder of Jinja2 templates.

    Args:
        directory: where the templates are (None: no templates; rendering
            raises ``jinja2.TemplateNotFound``).
        debug: reload changed templates, and fail loudly on undefined names.
        globals: names every template sees.
    """

    def __init__(self, directory: Path | None, *, debug: bool = False,
                 globals: dict[str, Any] | None = None) -> None:
        self.directory = directory
        loader: jinja2.BaseLoader = (jinja2.FileSystemLoader(str(directory))
                                     if directory is not None else jinja2.DictLoader({}))
        self.env = jinja2.Environment(
            loader=loader,
            autoescape=True,
            auto_reload=debug,
            undefined=jinja2.StrictUndefined if debug else jinja2.Undefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(globals or {})

    def exists(self, name: str) -> bool:
        try:
            self.env.get_template(name)
        except jinja2.TemplateNotFound:
            return False
        return True

    def render(self, name: str, context: dict[str, Any]) -> str:
        """Render template ``name`` with ``context``.

        Raises:
            jinja2.TemplateNotFound: no such template.
            jinja2.TemplateError: a syntax error, or (debug) an undefined name.
        """
        return self.env.get_template(name).render(context)

    def render_string(self, source: str, context: dict[str, Any]) -> str:
        """Render a template given as text (still autoescaped)."""
        return self.env.from_string(source).render(context)


def render(request: Request, template: str, context: dict[str, Any] | None = None, /, *,
           status: int = 200, **kwargs: Any) -> HTMLResponse:
    """Render ``template`` for ``request`` into an HTML response::

        return render(request, "word.html", word=word)

    The context is ``context`` and the keyword arguments (any name but
    ``status``, which is the response's status).

    Raises:
        jinja2.TemplateNotFound / jinja2.TemplateError: as :meth:`Templates.render`.
    """
    app = request.app
    assert app is not None, "render() needs a request from an app"
    values: dict[str, Any] = {"request": request, "url": request.url_for,
                              "static": app.static_helper(request)}
    values.update(context or {})
    values.update(kwargs)
    return HTMLResponse(app.templates.render(template, values), status)

