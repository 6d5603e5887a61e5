"""StarDict dictionaries: ``name.ifo``, ``name.idx[.gz]``, ``name.dict[.dz]``, ``name.syn``.

* ``.ifo`` is text: the line ``StarDict's dict ifo file``, then ``key=value``
  lines: ``bookname``, ``wordcount``, ``idxoffsetbits`` (64 in version
  3.0.0 files with big dictionaries, else 32), ``sametypesequence``,
  ``description``, ``author``, ``website``...
* ``.idx`` is binary, one record per word: the word in UTF-8, a NUL, then
  the offset and size of its data in ``.dict`` (big-endian, 32 or 64 bits
  for the offset, 32 for the size).
* ``.dict`` holds the data.  With ``sametypesequence=tm`` every record is
  those fields in that order without type letters: lower-case types are
  text, NUL-terminated except the last; upper-case types are binary, with
  a 32-bit size first except the last.  Without it, each field starts with
  its type letter, sized the same way.
* ``.syn`` (optional): synonyms, each a word, a NUL and the 32-bit number
  of the ``.idx`` record it stands for.

Text types: ``m`` plain, ``l`` local encoding, ``t`` phonetic (shown in
brackets), ``y`` yinbiao, ``g`` Pango markup, ``x`` XDXF, ``h`` HTML,
``k`` KingSoft XML, ``w`` MediaWiki: markup is stripped to plain text (the
DICT protocol and the terminal show text).  Binary types (sounds, pictures)
are skipped.
"""

from __future__ import annotations

import gzip
import html
import re
import struct
from collections.abc import Iterator
from pathlib import Path

from ionet.core.errors import UserError
from ionet.dict.importers import Imported, default_name
from ionet.dict.store import DictionaryMeta, Entry

_TAG = re.compile(r"<[^>]*>")
_BREAK = re.compile(r"<br\s*/?>|</p>|</div>|</li>", re.IGNORECASE)
_MARKUP_TYPES = set("gxhk")
_TEXT_TYPES = set("mltygxhkw")


def _read_maybe_gzip(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def find_files(path: Path) -> tuple[Path, Path, Path, Path | None]:
    """The ``.ifo``, ``.idx[.gz]``, ``.dict[.dz]`` and optional ``.syn`` of a dictionary.

    Raises:
        UserError: a required file is missing.
    """
    name = path.name
    for suffix in (".ifo", ".idx.gz", ".idx", ".dict.dz", ".dict", ".syn"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    folder = path.parent

    def first(*names: str) -> Path | None:
        return next((folder / n for n in names if (folder / n).exists()), None)

    ifo = first(f"{name}.ifo")
    idx = first(f"{name}.idx", f"{name}.idx.gz")
    data = first(f"{name}.dict", f"{name}.dict.dz")
    for found, what in ((ifo, ".ifo"), (idx, ".idx"), (data, ".dict or .dict.dz")):
        if found is None:
            raise UserError(f"StarDict dictionary {name}: no {what} in {folder}")
    assert ifo is not None and idx is not None and data is not None
    return ifo, idx, data, first(f"{name}.syn")


def parse_ifo(text: str) -> dict[str, str]:
    """The ``key=value`` fields of an ``.ifo`` file.

    Raises:
        UserError: the magic first line is missing.
    """
    lines = text.splitlines()
    if not lines or not lines[0].startswith("StarDict's dict ifo file"):
        raise UserError("not a StarDict .ifo file (its first line must be "
                        "\"StarDict's dict ifo file\")")
    fields = {}
    for line in lines[1:]:
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def parse_idx(raw: bytes, offset_bits: int = 32) -> list[tuple[str, int, int]]:
    """``(word, offset, size)`` of every ``.idx`` record, in file order."""
    offset_format = ">Q" if offset_bits == 64 else ">I"
    record = struct.Struct(offset_format + "I")
    words, pos = [], 0
    while pos < len(raw):
        end = raw.index(b"\0", pos)
        word = raw[pos:end].decode("utf-8", errors="replace")
        offset, size = record.unpack_from(raw, end + 1)
        words.append((word, offset, size))
        pos = end + 1 + record.size
    return words


def parse_syn(raw: bytes) -> list[tuple[str, int]]:
    """``(synonym, idx record number)`` of every ``.syn`` record."""
    synonyms, pos = [], 0
    while pos < len(raw):
        end = raw.index(b"\0", pos)
        (number,) = struct.unpack_from(">I", raw, end + 1)
        synonyms.append((raw[pos:end].decode("utf-8", errors="replace"), number))
        pos = end + 5
    return synonyms


def split_fields(block: bytes, types: str | None) -> list[tuple[str, bytes]]:
    """A ``.dict`` record as ``(type, data)`` fields (see the module docstring)."""
    fields: list[tuple[str, bytes]] = []
    pos = 0
    if types:
        for i, kind in enumerate(types):
            last = i == len(types) - 1
            if last:
                data, pos = block[pos:], len(block)
            elif kind.isupper():
                (size,) = struct.unpack_from(">I", block, pos)
                data, pos = block[pos + 4:pos + 4 + size], pos + 4 + size
            else:
                end = block.find(b"\0", pos)
                end = len(block) if end < 0 else end
                data, pos = block[pos:end], end + 1
            fields.append((kind, data))
        return fields
    while pos < len(block):
        kind = chr(block[pos])
        pos += 1
        if kind.isupper():
            (size,) = struct.unpack_from(">I", block, pos)
            data, pos = block[pos + 4:pos + 4 + size], pos + 4 + size
        else:
            end = block.find(b"\0", pos)
            end = len(block) if end < 0 else end
            data, pos = block[pos:end], end + 1
        fields.append((kind, data))
    return fields


def field_text(kind: str, data: bytes) -> str | None:
    """The plain text of one field, or None for binary data."""
    if kind not in _TEXT_TYPES:
        return None
    text = data.decode("utf-8", errors="replace").rstrip("\0")
    if kind in _MARKUP_TYPES:
        text = html.unescape(_TAG.sub("", _BREAK.sub("\n", text)))
    if kind in "ty":
        text = f"[{text}]"
    return text.strip("\n")


def read(path: Path, name: str | None = None) -> Imported:
    """Read a StarDict dictionary (give any of its files).

    Raises:
        UserError: missing or malformed files.
    """
    ifo_path, idx_path, data_path, syn_path = find_files(path)
    try:
        info = parse_ifo(ifo_path.read_text(encoding="utf-8", errors="replace"))
        bits = int(info.get("idxoffsetbits", "32"))
        words = parse_idx(_read_maybe_gzip(idx_path), bits)
        data = _read_maybe_gzip(data_path)
        synonyms = parse_syn(syn_path.read_bytes()) if syn_path is not None else []
    except (OSError, ValueError, struct.error, EOFError) as exc:
        raise UserError(f"cannot read StarDict dictionary {ifo_path.stem}: {exc}") from None
    types = info.get("sametypesequence") or None
    title = info.get("bookname") or ifo_path.stem
    details = [info.get("description", "").replace("<br>", "\n")]
    for field in ("author", "website", "email", "date", "version"):
        if info.get(field):
            details.append(f"{field}: {info[field]}")
    meta = DictionaryMeta(name or default_name(ifo_path), title[:255],
                          "\n".join(d for d in details if d) or title)

    def text_of(offset: int, size: int) -> str:
        parts = [field_text(kind, raw) for kind, raw in split_fields(data[offset:offset + size],
                                                                    types)]
        return "\n".join(p for p in parts if p)

    def entries() -> Iterator[Entry]:
        for word, offset, size in words:
            yield Entry(word, f"{word}\n{_indent(text_of(offset, size))}")
        for synonym, number in synonyms:
            if 0 <= number < len(words):
                word, offset, size = words[number]
                yield Entry(synonym, f"{word}\n{_indent(text_of(offset, size))}")

    return Imported(meta, entries(), len(words) + len(synonyms))


def _indent(text: str) -> str:
    return "\n".join(f"   {line}" if line else "" for line in text.splitlines())
