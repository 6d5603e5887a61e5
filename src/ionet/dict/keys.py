"""Search keys: how a headword is normalised so that look-ups ignore case.

Every entry is stored with its headword as written (``word``: "Apple",
"蘋果") and a *key* (``norm``): the form that look-ups compare.  A query is
normalised by the same rule and compared with ``=`` or an index range, so a
case-insensitive look-up never needs ``LOWER(word)`` (which no index can
serve) and never scans the table.

Two rules exist, chosen per dictionary when it is imported:

``fold``
    Unicode NFC, ``str.casefold`` (``"Straße"`` and ``"STRASSE"`` meet), runs
    of white space collapsed to one space, the ends stripped.  Every format
    but dictd uses this.
``alnum``
    dictd's rule for databases without ``00-database-allchars``: the fold
    rule, then every character that is neither alphanumeric nor a space
    dropped, so ``'hood`` is found as ``hood``.

Keys are capped at :data:`MAX_KEY` characters, because MySQL can index a
``VARCHAR`` only so long; a longer headword is still stored whole in ``word``.

Soundex lives here too, since it is one more way of turning a word into a key.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

__all__ = ["KEY_RULES", "MAX_KEY", "alnum", "fold", "key_for", "soundex"]

#: The longest key stored (characters); MySQL's index limit sets it.
MAX_KEY = 190

_SPACES = re.compile(r"\s+")


def fold(word: str) -> str:
    """The default key: NFC, case-folded, white space collapsed.

    >>> fold("  Apple   Pie ")
    'apple pie'
    """
    return _SPACES.sub(" ", unicodedata.normalize("NFC", word).casefold()).strip()[:MAX_KEY]


def alnum(word: str) -> str:
    """dictd's key for non-``allchars`` databases: fold, keep letters, digits, spaces.

    >>> alnum("'Hood")
    'hood'
    """
    kept = "".join(ch for ch in fold(word) if ch.isalnum() or ch == " ")
    return _SPACES.sub(" ", kept).strip()


#: Rule name (stored with each dictionary) -> key function.
KEY_RULES: dict[str, Callable[[str], str]] = {"fold": fold, "alnum": alnum}


def key_for(word: str, rule: str = "fold") -> str:
    """The key of ``word`` under ``rule`` (``fold`` or ``alnum``).

    Raises:
        ValueError: an unknown rule.
    """
    try:
        return KEY_RULES[rule](word)
    except KeyError:
        raise ValueError(f"unknown key rule {rule!r}") from None


_SOUNDEX_CODES = {
    **dict.fromkeys("bfpv", "1"), **dict.fromkeys("cgjkqsxz", "2"), **dict.fromkeys("dt", "3"),
    "l": "4", **dict.fromkeys("mn", "5"), "r": "6",
}


def soundex(word: str) -> str:
    """American Soundex (Knuth's version, as dictd uses): a letter and three digits.

    Letters with the same code separated only by ``h`` or ``w`` count once;
    vowels separate them.  Non-ASCII letters are ignored, and a word with no
    ASCII letter has the empty code.

    >>> soundex("Robert"), soundex("Rupert"), soundex("Ashcraft"), soundex("Tymczak")
    ('R163', 'R163', 'A261', 'T522')
    """
    letters = [ch for ch in word.lower() if "a" <= ch <= "z"]
    if not letters:
        return ""
    first = letters[0]
    digits: list[str] = []
    previous = _SOUNDEX_CODES.get(first, "")
    for ch in letters[1:]:
        code = _SOUNDEX_CODES.get(ch, "")
        if code and code != previous:
            digits.append(code)
            if len(digits) == 3:
                break
        if ch not in "hw":  # h and w do not separate equal codes
            previous = code
    return (first.upper() + "".join(digits)).ljust(4, "0")
