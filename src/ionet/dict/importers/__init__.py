"""Readers for dictionary files: one module per format, one entry point.

``ionet dict import FILE`` calls :func:`read`, which picks the reader (by
``--format`` or by looking at the file) and returns the dictionaries in the
file, each a :class:`~ionet.dict.store.DictionaryMeta` and a lazy iterator
of entries; the store imports each in one transaction.

=========  ======================================================  ===================
format     files                                                   module
=========  ======================================================  ===================
dictd      ``name.index`` + ``name.dict`` or ``name.dict.dz``      :mod:`.dictd`
stardict   ``name.ifo`` + ``name.idx[.gz]`` + ``name.dict[.dz]``   :mod:`.stardict`
csv        ECDICT's 13 columns, or ``word,translation``            :mod:`.table`
cedict     CC-CEDICT text (plain or gzip): two dictionaries        :mod:`ionet.dict.cedict`
lines      the course's ``word   meaning`` lines                   :mod:`.lines`
=========  ======================================================  ===================

Readers are pure functions of the files: no store, no progress bar, so
tests feed them small files they write themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ionet.core.errors import UserError
from ionet.dict.store import DictionaryMeta, Entry

__all__ = ["FORMATS", "Imported", "detect_format", "read"]

#: The names ``--format`` accepts ("auto" guesses).
FORMATS = ("auto", "dictd", "stardict", "csv", "lines", "cedict")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class Imported:
    """One dictionary read from a file, ready for ``Store.replace_dictionary``.

    Attributes:
        meta: name, descriptions, key rule.
        entries: the entries, read lazily (iterate once).
        total: how many entries to expect, for a progress bar (None: unknown).
    """

    meta: DictionaryMeta
    entries: Iterable[Entry]
    total: int | None = None


def check_name(name: str) -> str:
    """A dictionary name must be one RFC 2229 atom: no spaces or quotes.

    Raises:
        UserError: the name is not 1-64 letters, digits, ``_ . -``.
    """
    if not _NAME.match(name) or name in ("*", "!"):
        raise UserError(f"bad dictionary name {name!r}: use 1-64 letters, digits, '_', '.', '-'")
    return name


def detect_format(path: Path) -> str:
    """Guess a file's format from its name and, failing that, its first lines."""
    name = path.name.lower()
    if name.endswith(".index"):
        return "dictd"
    if name.endswith((".ifo", ".idx", ".idx.gz")):
        return "stardict"
    if name.endswith((".dict", ".dict.dz")):
        stem = path.name[: -len(".dz")] if name.endswith(".dz") else path.name
        stem = stem[: -len(".dict")]
        if (path.parent / f"{stem}.ifo").exists():
            return "stardict"
        return "dictd"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith(".u8") or "cedict" in name:
        return "cedict"
    from ionet.dict import cedict
    try:
        with cedict.open_text(path) as stream:
            head = [line for _, line in zip(range(200), stream, strict=False)]
    except (OSError, UnicodeDecodeError, EOFError):
        return "lines"
    _, entries = cedict.parse(head)
    return "cedict" if entries else "lines"


def read(path: Path, fmt: str = "auto", name: str | None = None) -> list[Imported]:
    """Read the dictionaries in ``path``.

    Args:
        path: the file (for dictd and StarDict, any file of the set).
        fmt: one of :data:`FORMATS`.
        name: the dictionary name; by default the file's stem (``wn`` for
            ``wn.index``), ``cedict`` for CC-CEDICT.

    Raises:
        UserError: missing or unreadable files, an unknown format, a bad name.
    """
    if not path.exists():
        raise UserError(f"no such file: {path}")
    if fmt == "auto":
        fmt = detect_format(path)
    readers: dict[str, Callable[[Path, str | None], list[Imported]]] = {
        "dictd": _dictd, "stardict": _stardict, "csv": _csv, "lines": _lines, "cedict": _cedict,
    }
    try:
        reader = readers[fmt]
    except KeyError:
        raise UserError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}") from None
    if name is not None:
        check_name(name)
    return reader(path, name)


def default_name(path: Path) -> str:
    """``wn`` for ``wn.index``, ``ecdict`` for ``ecdict.csv``: the stem, made a valid name."""
    stem = path.name
    for suffix in (".gz", ".dz", ".dict", ".index", ".ifo", ".idx", ".csv", ".txt", ".u8"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "imported"
    return check_name(cleaned[:64])


def _dictd(path: Path, name: str | None) -> list[Imported]:
    from ionet.dict.importers import dictd
    return [dictd.read(path, name)]


def _stardict(path: Path, name: str | None) -> list[Imported]:
    from ionet.dict.importers import stardict
    return [stardict.read(path, name)]


def _csv(path: Path, name: str | None) -> list[Imported]:
    from ionet.dict.importers import table
    return [table.read(path, name)]


def _lines(path: Path, name: str | None) -> list[Imported]:
    from ionet.dict.importers import lines
    return [lines.read(path, name)]


def _cedict(path: Path, name: str | None) -> list[Imported]:
    from ionet.dict import cedict
    header, entries = cedict.read_file(path)
    chinese, english = cedict.metas(header, name or "cedict")
    zh_count = sum(2 if e.traditional != e.simplified else 1 for e in entries)
    return [Imported(chinese, cedict.chinese_english(entries), zh_count),
            Imported(english, cedict.english_chinese(entries), None)]
