"""The views of the example site: a home page, a guestbook form, JSON, a word page.

Each view takes the request (and the route's parameters) and returns a
response: ``render(...)`` for a template, a dict for JSON, a str for HTML.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass

from ionet.web import NotFound, RedirectResponse, Request, render


@dataclass
class Entry:
    number: int
    name: str
    message: str
    time: float


class Guestbook:
    """The messages, newest last.  Views run in several threads at once: a lock.

    It lives in ``app.state``, so two apps (two tests) have two guestbooks.
    It is in memory: a restart empties it, and each worker process has its
    own (a real site would use a database).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._entries: list[Entry] = []
        self._count = 0

    def add(self, name: str, message: str) -> Entry:
        with self._lock:
            self._count += 1
            entry = Entry(self._count, name, message, time.time())
            self._entries = [*self._entries, entry][-self.size:]
            return entry

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)

    def get(self, number: int) -> Entry | None:
        return next((e for e in self.entries() if e.number == number), None)


_state_lock = threading.Lock()


def book(request: Request) -> Guestbook:
    """The app's guestbook, kept in ``app.state`` (made on first use)."""
    app = request.app
    assert app is not None
    with _state_lock:
        if not hasattr(app.state, "guestbook"):
            app.state.guestbook = Guestbook(request.settings.extra.get("GUESTBOOK_SIZE", 50))
        return app.state.guestbook


def home(request: Request):
    return render(request, "home.html", count=len(book(request).entries()))


def guestbook(request: Request):
    errors: list[str] = []
    name = request.session.get("name", "")
    message = ""
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        message = request.form.get("message", "").strip()
        if not 1 <= len(name) <= 40:
            errors.append("Your name should be 1 to 40 characters.")
        if not 1 <= len(message) <= 500:
            errors.append("The message should be 1 to 500 characters.")
        if not errors:
            entry = book(request).add(name, message)
            request.session["name"] = name
            request.session["notice"] = f"Thank you, {name}: your message is number {entry.number}."
            # Post/redirect/get: reloading the result page does not post again.
            return RedirectResponse(request.url_for("guestbook"))
    notice = request.session.pop("notice") if "notice" in request.session else None
    status = 400 if errors else 200
    return render(request, "guestbook.html", status=status, entries=book(request).entries(),
                  errors=errors, name=name, message=message, notice=notice)


def messages_json(request: Request):
    entries = book(request).entries()
    return {"count": len(entries), "messages": [asdict(entry) for entry in entries]}


def message_json(request: Request, number: int):
    entry = book(request).get(number)
    if entry is None:
        raise NotFound(f"no message number {number}")
    return asdict(entry)


def word(request: Request, word: str):
    return render(request, "word.html", word=word, letters=sorted(set(word.lower())))


def hello(request: Request):
    return "Hello, World!"
