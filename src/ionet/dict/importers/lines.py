"""The course's word list: one ``word   meaning`` per line.

The course project ships a ``dict.txt`` like::

    abandon          v.  go away from a person or thing or place not intending to return
    a priori         adj.  ...   (some lists have headwords of several words)

The headword ends at a tab or at the first run of two or more spaces; a
line with neither splits at its first space.  Blank lines and lines without
a meaning are skipped.  The file is UTF-8, or GB18030 (the Chinese
Windows encoding) when it is not valid UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ionet.core.errors import UserError
from ionet.dict.importers import Imported, default_name
from ionet.dict.store import DictionaryMeta, Entry

_WIDE_GAP = re.compile(r"^(\S.*?)(?:\t+| {2,})(\S.*)$")
_ONE_GAP = re.compile(r"^(\S+)\s+(\S.*)$")


def split_line(line: str) -> tuple[str, str] | None:
    """``(word, meaning)`` of one line, or None if it has no meaning.

    >>> split_line("a priori      adj. from the former")
    ('a priori', 'adj. from the former')
    >>> split_line("apple n. a fruit")
    ('apple', 'n. a fruit')
    """
    line = line.strip()
    match = _WIDE_GAP.match(line) or _ONE_GAP.match(line)
    if match is None:
        return None
    return match.group(1).strip(), match.group(2).strip()


def read(path: Path, name: str | None = None) -> Imported:
    """Read a ``word   meaning`` file.

    Raises:
        UserError: the file cannot be read or has no such line.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030", errors="replace")
    pairs = [pair for pair in map(split_line, text.splitlines()) if pair is not None]
    if not pairs:
        raise UserError(f"{path} has no 'word   meaning' lines")
    meta = DictionaryMeta(name or default_name(path), f"{path.stem} (word list)",
                          f"Imported from the word list {path.name}.")

    def entries() -> Iterator[Entry]:
        for word, meaning in pairs:
            yield Entry(word, f"{word}\n   {meaning}")

    return Imported(meta, entries(), len(pairs))
