"""Near matches without scanning: prefix, Levenshtein, substring and soundex.

When a word is not found, the service offers "did you mean" suggestions, and
DICT's ``MATCH`` offers the same strategies by name.  A table scan per query
(computing the edit distance to 147,000 headwords) costs about a second in
Python, so :class:`KeyIndex` keeps each dictionary's distinct keys in memory,
sorted, loaded once per process (a few MB per 100k keys), and answers from
them in milliseconds:

*prefix*
    Keys starting with ``p`` are one contiguous run of the sorted list:
    two ``bisect`` calls find it, O(log n).  (``ionet.ds.binary_search``
    finds one item; a range needs bisect's left/right pair.)

*Levenshtein distance <= d*
    The sorted list is a trie in disguise: the keys sharing a prefix form a
    run, and ``bisect`` finds where the run of each next character ends.  A
    depth-first walk carries one row of the edit-distance table per prefix
    and abandons a prefix as soon as every cell of its row exceeds ``d``.
    Walked from the root, though, every prefix of up to ``d`` characters
    survives (it is within ``d`` of the empty string), so the walk would
    visit every 2-character prefix of the dictionary: thousands in English,
    tens of thousands in Chinese (half a second).  Hence the pigeonhole
    principle: cut the word into ``d + 1`` pieces; ``d`` edits leave at
    least one piece untouched.  If the *first* piece is untouched, every
    match starts with it, and the walk starts from that (narrow) run instead
    of the root.  If the *last* piece is untouched, the same holds for the
    reversed word in a second sorted list of reversed keys.  For ``d = 1``
    the word is cut in halves, and the one edit that touches both (swapping
    the two characters where they meet) is checked on its own: the answer
    is exact (``MATCH lev``, as dictd's, which counts a swap as one edit).
    For ``d = 2`` a match whose two edits fall in the first and the last
    third is missed: suggestions are a heuristic, and a walk from the root
    for the rare remainder would cost a hundred times more.

*substring, soundex*
    A substring can be anywhere, so it is a scan of the in-memory list
    (~10 ms per 100k keys, C-speed ``in``), as dictd does.  Soundex codes
    are computed once per index, on first use, into a code -> keys map.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from ionet.dict.keys import soundex

__all__ = ["KeyIndex", "levenshtein", "suggestion_distance"]


def levenshtein(a: str, b: str, limit: int | None = None) -> int:
    """The edit distance between ``a`` and ``b``: insertions, deletions,
    substitutions and transpositions of two adjacent characters, each one
    edit (the "optimal string alignment" distance; dictd's ``lev`` counts a
    transposition as one edit too, so ``appel`` matches ``apple``).

    With ``limit``, stops early and returns ``limit + 1`` once the distance
    is sure to exceed it.
    """
    if limit is not None and abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cell = min(current[j - 1] + 1, previous[j] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cell = min(cell, before[j - 2] + 1)
            current.append(cell)
        if limit is not None and min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return previous[-1]


def suggestion_distance(word: str) -> int:
    """How many edits a suggestion may be from ``word``: none for one
    character (every other character would do), 1 up to 5 characters, 2
    beyond (one edit in a 3-letter word already changes a third of it)."""
    if len(word) <= 1:
        return 0
    return 1 if len(word) <= 5 else 2


def _after(prefix: str) -> str:
    """The least string greater than every string starting with ``prefix``."""
    last = ord(prefix[-1])
    return prefix + "\U0010ffff" if last >= 0x10FFFF else prefix[:-1] + chr(last + 1)


def _prefix_range(keys: Sequence[str], prefix: str, lo: int = 0, hi: int | None = None
                  ) -> tuple[int, int]:
    """The run ``keys[start:end]`` of keys that start with ``prefix``."""
    hi = len(keys) if hi is None else hi
    if not prefix:
        return lo, hi
    start = bisect_left(keys, prefix, lo, hi)
    return start, bisect_left(keys, _after(prefix), start, hi)


class KeyIndex:
    """The sorted distinct keys of one dictionary, and the searches on them.

    Args:
        keys: the keys; sorted and deduplicated here.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys: list[str] = sorted(set(keys))
        self.reversed_keys: list[str] = sorted(key[::-1] for key in self.keys)
        self._soundex: dict[str, list[str]] | None = None
        self._singles: list[str] | None = None  # one-character keys, on first use

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        at = bisect_left(self.keys, key)
        return at < len(self.keys) and self.keys[at] == key

    def prefix(self, prefix: str, limit: int | None = None) -> list[str]:
        """Keys starting with ``prefix``, in order (at most ``limit``)."""
        start, end = _prefix_range(self.keys, prefix)
        if limit is not None:
            end = min(end, start + limit)
        return self.keys[start:end]

    def substring(self, part: str, limit: int | None = None) -> list[str]:
        """Keys containing ``part`` (a scan of the list), in order."""
        found = []
        for key in self.keys:
            if part in key:
                found.append(key)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def sounds_like(self, word: str) -> list[str]:
        """Keys with the same Soundex code as ``word``, in order."""
        if self._soundex is None:
            table: dict[str, list[str]] = {}
            for key in self.keys:
                code = soundex(key)
                if code:
                    table.setdefault(code, []).append(key)
            self._soundex = table  # one assignment: safe if two threads race here
        return list(self._soundex.get(soundex(word), ()))

    def within(self, word: str, distance: int) -> list[tuple[int, str]]:
        """Keys within ``distance`` edits of ``word``, as ``(distance, key)``, closest first.

        Exact for ``distance`` 0 and 1; for 2 and more, matches whose edits
        touch both the first and the last part of ``word`` may be missed (see
        the module docstring).
        """
        if distance <= 0:
            return [(0, word)] if word in self else []
        if not word:
            return sorted((len(key), key) for key in self.keys if len(key) <= distance)
        found: dict[str, int] = {}
        n = len(word)
        if distance == 1:
            if n == 1:
                return self._near_one_character(word)
            # Two halves.  One edit leaves one of them untouched, except a
            # swap of the two characters where the halves meet: checked alone.
            cut = n // 2
            if n % 2 == 0:
                swapped = word[:cut - 1] + word[cut] + word[cut - 1] + word[cut + 1:]
                if swapped != word and swapped in self:
                    found[swapped] = 1
        else:
            # distance + 1 pieces, a character apart (so that a swap touches
            # one piece at most); only the first and last serve as a run.
            cut = (n - distance) // (distance + 1)
        head, tail = (word[:cut], word[n - cut:]) if cut >= 1 else ("", "")
        for key, dist in _walk(self.keys, word, head, distance):
            found[key] = dist
        for rkey, dist in _walk(self.reversed_keys, word[::-1], tail[::-1], distance):
            found[rkey[::-1]] = dist
        return sorted(((d, k) for k, d in found.items()), key=lambda item: (item[0], item[1]))

    def _near_one_character(self, ch: str) -> list[tuple[int, str]]:
        """Keys within one edit of a one-character word: every one-character
        key, and two-character keys holding it (without a walk from the
        root, which in Chinese would meet every two-character prefix)."""
        if self._singles is None:
            self._singles = [key for key in self.keys if len(key) == 1]
        found = {key: (0 if key == ch else 1) for key in self._singles}
        for key in self.prefix(ch) + self.suffix(ch):
            if len(key) == 2:
                found[key] = 1
        return sorted(((d, k) for k, d in found.items()), key=lambda item: (item[0], item[1]))

    def suffix(self, suffix: str, limit: int | None = None) -> list[str]:
        """Keys ending with ``suffix`` (a prefix run of the reversed keys), in order."""
        start, end = _prefix_range(self.reversed_keys, suffix[::-1])
        found = sorted(key[::-1] for key in self.reversed_keys[start:end])
        return found if limit is None else found[:limit]

    def scored_suggestions(self, word: str, limit: int = 10
                           ) -> list[tuple[tuple[int, int, int], str]]:
        """"Did you mean" keys for ``word`` with a score, lower is better: one
        edit away first (swapped letters, then same length, then the others),
        then completions of ``word`` (shortest first), then two edits away."""
        if not word:
            return []
        scored: dict[str, tuple[int, int, int]] = {}
        letters = sorted(word)
        for d, key in self.within(word, suggestion_distance(word)):
            if key != word:
                swapped = 0 if d == 1 and sorted(key) == letters else 1
                scored[key] = (0 if d == 1 else 2, swapped, abs(len(key) - len(word)))
        for key in self.prefix(word, limit=200):
            if key != word and key not in scored:
                scored[key] = (1, len(key) - len(word), 0)
        ranked = sorted(scored.items(), key=lambda item: (item[1], item[0]))
        return [(score, key) for key, score in ranked[:limit]]

    def suggest(self, word: str, limit: int = 10) -> list[str]:
        """"Did you mean" keys for ``word``, best first (see ``scored_suggestions``)."""
        return [key for _, key in self.scored_suggestions(word, limit)]


def _walk(keys: Sequence[str], word: str, start: str, distance: int) -> list[tuple[str, int]]:
    """Keys starting with ``start`` within ``distance`` of ``word``: a depth-first
    walk of the implicit trie, one edit-distance row per prefix (and the row
    before it, for transpositions)."""
    n = len(word)
    # The rows of ``start`` itself: the distances from start to each prefix of word.
    before: list[int] = []
    row = list(range(n + 1))
    for i, ch in enumerate(start):
        before, row = row, _next_row(word, row, before, ch, start[i - 1] if i else "")
    if min(row) > distance:
        return []
    lo, hi = _prefix_range(keys, start)
    found: list[tuple[str, int]] = []
    stack = [(start, row, before, lo, hi)]
    while stack:
        prefix, row, before, lo, hi = stack.pop()
        depth = len(prefix)
        last = prefix[-1] if prefix else ""
        i = lo
        if i < hi and len(keys[i]) == depth:  # the prefix is itself a key
            if row[n] <= distance:
                found.append((keys[i], row[n]))
            i += 1
        while i < hi:
            ch = keys[i][depth]
            child = prefix + ch
            end = bisect_left(keys, _after(child), i, hi)
            new = _next_row(word, row, before, ch, last)
            if min(new) <= distance:
                stack.append((child, new, row, i, end))
            i = end
    return found


def _next_row(word: str, row: list[int], before: list[int], ch: str, last: str) -> list[int]:
    """The edit-distance row after appending ``ch`` to a prefix ending in
    ``last`` (``row``: that prefix's row, ``before``: its parent's row)."""
    new = [row[0] + 1]
    for j in range(1, len(word) + 1):
        wj = word[j - 1]
        cell = min(new[j - 1] + 1, row[j] + 1, row[j - 1] + (wj != ch))
        if j > 1 and last and ch == word[j - 2] and last == wj:
            cell = min(cell, before[j - 2] + 1)
        new.append(cell)
    return new
