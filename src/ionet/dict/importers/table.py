"""CSV dictionaries: ECDICT's 13 columns, or plain ``word,translation``.

ECDICT (https://github.com/skywind3000/ECDICT, MIT licence) is the common
free English-Chinese CSV; its columns are::

    word, phonetic, definition, translation, pos, collins, oxford, tag,
    bnc, frq, exchange, detail, audio

``definition`` (English) and ``translation`` (Chinese) hold several lines
written as the two characters ``\\n``; ``tag`` lists exam word lists
(``zk gk cet4``).  A two-column file is ``word,translation`` with the same
escapes.  A first row naming the columns (``word,...``) is skipped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from ionet.core.errors import UserError
from ionet.dict.cedict import open_text
from ionet.dict.importers import Imported, default_name
from ionet.dict.store import DictionaryMeta, Entry

ECDICT_COLUMNS = ("word", "phonetic", "definition", "translation", "pos", "collins", "oxford",
                  "tag", "bnc", "frq", "exchange", "detail", "audio")

_TAG_NAMES = {"zk": "中考", "gk": "高考", "cet4": "CET-4", "cet6": "CET-6", "ky": "考研",
              "toefl": "TOEFL", "ielts": "IELTS", "gre": "GRE"}


def unescape(text: str) -> str:
    """ECDICT's ``\\n`` escapes to newlines (``\\\\`` stays a backslash)."""
    return text.replace("\\\\", "\0").replace("\\n", "\n").replace("\\r", "").replace("\0", "\\")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in unescape(text).splitlines() if line.strip()]


def ecdict_text(row: list[str]) -> str:
    """The definition text of one ECDICT row: head line, Chinese, English, tags."""
    fields = dict(zip(ECDICT_COLUMNS, row, strict=False))
    word = fields["word"].strip()
    head = f"{word} [{fields['phonetic'].strip()}]" if fields.get("phonetic", "").strip() else word
    body = _lines(fields.get("translation", "")) + _lines(fields.get("definition", ""))
    tags = [_TAG_NAMES.get(tag, tag) for tag in fields.get("tag", "").split()]
    if tags:
        body.append("(" + ", ".join(tags) + ")")
    return "\n".join([head] + [f"   {line}" for line in body])


def read(path: Path, name: str | None = None) -> Imported:
    """Read a CSV dictionary (ECDICT or two columns).

    Raises:
        UserError: the file cannot be read, or its rows have neither 13 nor
            2+ columns.
    """
    try:
        with open_text(path) as stream:
            rows = [row for row in csv.reader(io.StringIO(stream.read())) if row]
    except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    if rows and rows[0] and rows[0][0].strip().lower() in ("word", "headword", "单词"):
        rows = rows[1:]
    if not rows:
        raise UserError(f"{path} has no rows")
    widths = {len(row) for row in rows[:100]}
    ecdict = max(widths) >= len(ECDICT_COLUMNS) - 1  # the audio column is often empty/absent
    if not ecdict and min(widths) < 2:
        raise UserError(f"{path}: expected ECDICT's 13 columns or word,translation rows")
    title = f"{path.stem} (ECDICT CSV)" if ecdict else f"{path.stem} (CSV word list)"
    meta = DictionaryMeta(name or default_name(path), title,
                          f"Imported from {path.name}" + (
                              "; ECDICT format (https://github.com/skywind3000/ECDICT)"
                              if ecdict else ""))

    def entries() -> Iterator[Entry]:
        for row in rows:
            word = row[0].strip()
            if not word:
                continue
            if ecdict:
                yield Entry(word, ecdict_text(row + [""] * (len(ECDICT_COLUMNS) - len(row))))
            else:
                body = [line for cell in row[1:] for line in _lines(cell)]
                yield Entry(word, "\n".join([word] + [f"   {line}" for line in body]))

    return Imported(meta, entries(), len(rows))
