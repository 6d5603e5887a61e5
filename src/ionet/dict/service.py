"""The dictionary service: what both front doors share.

One :class:`DictService` object holds what every connection of a server
shares (the store, the accounts, each dictionary's in-memory key index) and
offers the operations both protocols need: look up a word across the chosen
dictionaries with "did you mean" suggestions, match with a DICT strategy,
record and read the history.  The JSON protocol (``protocol.py``) and the
DICT protocol (``rfc2229.py``) are only two ways of asking it.

Every method here may block (queries, hashing): protocols call them through
``transport.run_in_worker``.  State is in the object, not in module globals,
so a test can run two services side by side.

Caches, per process:

* the list of dictionaries, for :data:`DB_LIST_TTL` seconds (another
  process, ``ionet dict import``, may add one meanwhile);
* each dictionary's :class:`~ionet.dict.suggest.KeyIndex`, until its
  ``generation`` changes (it was imported again).  :meth:`warm` loads them
  before a server forks, so that fork and ``--workers`` children share
  the memory instead of each loading its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ionet.dict.accounts import Accounts
from ionet.dict.keys import key_for
from ionet.dict.store import DatabaseInfo, Definition, HistoryEntry, Store
from ionet.dict.suggest import KeyIndex

#: Seconds the list of dictionaries is cached.
DB_LIST_TTL = 2.0
#: Suggestions offered for a word that was not found.
SUGGESTIONS = 10
#: Headwords one dictionary contributes to a MATCH at most.
MATCH_LIMIT = 5000
#: The longest word accepted for a look-up (characters).
MAX_WORD = 256

#: DICT match strategies: name -> description (``SHOW STRAT``).  ``lev`` is
#: the default, as in dictd.
STRATEGIES = {
    "exact": "Match headwords exactly (ignoring case)",
    "prefix": "Match prefixes",
    "suffix": "Match suffixes",
    "substring": "Match substring occurring anywhere in a headword",
    "lev": "Match headwords within Levenshtein distance one",
    "soundex": "Match using SOUNDEX algorithm",
}
DEFAULT_STRATEGY = "lev"


class UnknownDatabase(Exception):
    """A dictionary name that does not exist."""


class UnknownStrategy(Exception):
    """A match strategy that does not exist."""


@dataclass
class LookupResult:
    """What a look-up found: definitions, or suggestions when there are none."""

    word: str
    definitions: list[Definition] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)


def iso_time(when: float) -> str:
    """Seconds since the epoch as ISO 8601 UTC: ``2024-05-01T12:00:00Z``."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DictService:
    """The shared state and operations of one dictionary server.

    Args:
        store: the storage (already set up).
        accounts: account operations (built on ``store`` if None).
        login_delay: seconds a protocol waits before saying a login failed.
        monotonic: the clock for cache ages.
    """

    def __init__(self, store: Store, accounts: Accounts | None = None,
                 login_delay: float = 1.0, monotonic: Callable[[], float] = time.monotonic
                 ) -> None:
        self.store = store
        self.accounts = accounts or Accounts(store)
        self.login_delay = login_delay
        self._monotonic = monotonic
        self._dbs: list[DatabaseInfo] = []
        self._dbs_at = float("-inf")
        self._indexes: dict[int, tuple[int, KeyIndex]] = {}
        self.started = time.time()

    # -- dictionaries ---------------------------------------------------------

    def databases(self) -> list[DatabaseInfo]:
        """Every dictionary, in order (cached for :data:`DB_LIST_TTL` seconds)."""
        now = self._monotonic()
        if now - self._dbs_at > DB_LIST_TTL:
            self._dbs = self.store.databases()
            self._dbs_at = now
        return self._dbs

    def select(self, selector: str) -> list[DatabaseInfo]:
        """The dictionaries ``selector`` names: ``*`` and ``!`` all of them, else one.

        Raises:
            UnknownDatabase: no dictionary has that name.
        """
        dbs = self.databases()
        if selector in ("*", "!"):
            return list(dbs)
        for db in dbs:
            if db.name == selector:
                return [db]
        raise UnknownDatabase(selector)

    def index(self, db: DatabaseInfo) -> KeyIndex:
        """The in-memory key index of ``db``, loaded on first use."""
        cached = self._indexes.get(db.id)
        if cached is not None and cached[0] == db.generation:
            return cached[1]
        index = KeyIndex(self.store.keys(db.id))
        self._indexes[db.id] = (db.generation, index)  # one assignment: thread-safe
        return index

    def warm(self) -> None:
        """Load every dictionary's key index now (before a server forks)."""
        self._dbs_at = float("-inf")
        for db in self.databases():
            self.index(db)

    # -- look-ups ---------------------------------------------------------------

    def define(self, word: str, selector: str = "*", user: str | None = None,
               suggest: bool = True) -> LookupResult:
        """Look ``word`` up in the dictionaries ``selector`` names.

        ``!`` stops at the first dictionary with a match.  When nothing
        matches and ``suggest`` is true, the result carries "did you mean"
        keys.  A look-up by a logged-in ``user`` goes into their history.

        Raises:
            UnknownDatabase: ``selector`` names no dictionary.
        """
        word = word.strip()
        dbs = self.select(selector)
        result = LookupResult(word)
        names = {db.id: db.name for db in dbs}
        for group in (dbs[i:i + 1] for i in range(len(dbs))) if selector == "!" else [dbs]:
            by_rule: dict[str, list[int]] = {}
            for db in group:
                by_rule.setdefault(db.keyrule, []).append(db.id)
            rows: list[tuple[int, str, str]] = []
            for rule, ids in by_rule.items():
                rows.extend(self.store.definitions(ids, key_for(word, rule)))
            if len(by_rule) > 1:
                order = {db.id: n for n, db in enumerate(group)}
                rows.sort(key=lambda row: order[row[0]])
            result.definitions.extend(Definition(names[db_id], w, text) for db_id, w, text in rows)
            if result.definitions:
                break
        if not result.definitions and suggest:
            result.suggestions = self.suggest(word, dbs)
        if user is not None and word:
            self.store.add_history(user, word, time.time())
        return result

    def suggest(self, word: str, dbs: list[DatabaseInfo], limit: int = SUGGESTIONS) -> list[str]:
        """"Did you mean" keys for ``word`` from ``dbs``, best first."""
        scored: dict[str, tuple[int, ...]] = {}
        for order, db in enumerate(dbs):
            key = key_for(word, db.keyrule)
            for score, candidate in self.index(db).scored_suggestions(key, limit):
                rank = (*score, order)
                if candidate not in scored or rank < scored[candidate]:
                    scored[candidate] = rank
        return [key for key, _ in sorted(scored.items(), key=lambda item: (item[1], item[0]))
                ][:limit]

    def match(self, selector: str, strategy: str, word: str) -> list[tuple[str, str]]:
        """DICT ``MATCH``: ``(dictionary, headword)`` pairs for ``word``.

        ``!`` stops at the first dictionary with a match; ``.`` is the
        default strategy.

        Raises:
            UnknownDatabase, UnknownStrategy.
        """
        if strategy == ".":
            strategy = DEFAULT_STRATEGY
        if strategy not in STRATEGIES:
            raise UnknownStrategy(strategy)
        found: list[tuple[str, str]] = []
        for db in self.select(selector):
            index = self.index(db)
            key = key_for(word, db.keyrule)
            if not key:
                continue
            if strategy == "exact":
                keys = [key] if key in index else []
            elif strategy == "prefix":
                keys = index.prefix(key, MATCH_LIMIT)
            elif strategy == "suffix":
                keys = index.suffix(key, MATCH_LIMIT)
            elif strategy == "substring":
                keys = index.substring(key, MATCH_LIMIT)
            elif strategy == "soundex":
                keys = index.sounds_like(key)[:MATCH_LIMIT]
            else:  # lev
                keys = [k for d, k in index.within(key, 1) if d > 0][:MATCH_LIMIT]
            if keys:
                found.extend((db.name, headword) for headword in self.store.headwords(db.id, keys))
                if selector == "!":
                    break
        return found

    # -- history ----------------------------------------------------------------

    def history(self, name: str, limit: int = 10) -> list[HistoryEntry]:
        """``name``'s look-ups, newest first (``limit`` 0: all)."""
        return self.store.history(name, limit)

    # -- about ------------------------------------------------------------------

    def about(self) -> str:
        """Where the data comes from: every dictionary's name, size and information."""
        parts = ["ionet dictionary service.  Dictionaries on this server:"]
        for db in self.databases():
            parts.append(f"\n== {db.name}: {db.short} ({db.entries} entries) ==\n{db.info.strip()}")
        if len(parts) == 1:
            parts.append("(none yet: import one with 'ionet dict import FILE')")
        return "\n".join(parts)
