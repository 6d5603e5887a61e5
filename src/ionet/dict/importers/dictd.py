"""dictd databases: ``name.index`` and ``name.dict`` (or dictzip ``name.dict.dz``).

The index is text, one headword per line, tab-separated::

    apple<TAB>Bx4<TAB>C/       headword, offset, length
    apple<TAB>Bx4<TAB>C/<TAB>Apple   (some dictfmt versions: the original headword)

Offset and length are numbers in base 64, most significant digit first,
with the digits ``A-Z a-z 0-9 + /`` (so ``B`` is 1 and ``BA`` is 64): the
byte range of the definition in the uncompressed ``.dict`` file.  A
``.dict.dz`` is gzip with extra headers (dictzip), so ``gzip`` reads it
whole; we need every definition anyway.

Entries named ``00-database-*`` (``00databaseshort`` in older files) are
not words but metadata: ``short`` (the one-line name ``SHOW DB`` lists),
``info`` (``SHOW INFO``), ``url``, and flags: ``allchars`` (keys keep every
character), ``utf8``, ``case-sensitive``.  Their text starts with the
headword line itself, which is dropped.

Keys follow dictd's normalisation: without ``allchars``, dictd compares only
letters, digits and spaces, so ``'hood`` is found as ``hood``; that is key
rule ``alnum`` (``ionet.dict.keys``), ``fold`` otherwise.  Case is folded
either way: this service's look-ups are case-insensitive.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

from ionet.core.errors import UserError
from ionet.dict.importers import Imported, default_name
from ionet.dict.store import DictionaryMeta, Entry

#: dictd's base-64 digits, in value order.
B64_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = {ch: value for value, ch in enumerate(B64_DIGITS)}


def b64_number(text: str) -> int:
    """Decode one of dictd's base-64 numbers.

    >>> b64_number("B"), b64_number("BA"), b64_number("Bx4")
    (1, 64, 7288)

    Raises:
        ValueError: a character outside the alphabet, or an empty string.
    """
    if not text:
        raise ValueError("empty base-64 number")
    value = 0
    for ch in text:
        try:
            value = value * 64 + _B64_VALUE[ch]
        except KeyError:
            raise ValueError(f"bad base-64 digit {ch!r} in {text!r}") from None
    return value


def b64_encode(value: int) -> str:
    """The inverse of :func:`b64_number` (tests write dictd files with it)."""
    if value < 0:
        raise ValueError("negative offset")
    digits = ""
    while True:
        value, digit = divmod(value, 64)
        digits = B64_DIGITS[digit] + digits
        if not value:
            return digits


def find_files(path: Path) -> tuple[Path, Path]:
    """The ``.index`` and ``.dict[.dz]`` of the database ``path`` belongs to.

    Raises:
        UserError: one of the two is missing.
    """
    name = path.name
    for suffix in (".index", ".dict.dz", ".dict"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    index = path.parent / f"{name}.index"
    for candidate in (path.parent / f"{name}.dict.dz", path.parent / f"{name}.dict"):
        if candidate.exists():
            data = candidate
            break
    else:
        raise UserError(f"no {name}.dict or {name}.dict.dz beside {index}")
    if not index.exists():
        raise UserError(f"no dictd index {index}")
    return index, data


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # dictd's pre-UTF-8 databases are 8-bit


def read(path: Path, name: str | None = None) -> Imported:
    """Read a dictd database (give any of its files).

    Raises:
        UserError: missing files, or an index line that is not
            ``headword TAB offset TAB length``.
    """
    index_path, data_path = find_files(path)
    try:
        if data_path.name.endswith(".dz"):
            with gzip.open(data_path, "rb") as stream:
                data = stream.read()
        else:
            data = data_path.read_bytes()
        index_lines = index_path.read_bytes().splitlines()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UserError(f"cannot read {data_path.name}: {exc}") from None

    rows: list[tuple[str, int, int]] = []
    meta: dict[str, str] = {}
    for number, raw in enumerate(index_lines, 1):
        if not raw.strip():
            continue
        fields = _decode(raw).split("\t")
        if len(fields) < 3:
            raise UserError(f"{index_path.name} line {number}: expected headword, offset "
                            "and length separated by tabs")
        try:
            offset, length = b64_number(fields[1]), b64_number(fields[2])
        except ValueError as exc:
            raise UserError(f"{index_path.name} line {number}: {exc}") from None
        headword = fields[3] if len(fields) > 3 and fields[3] else fields[0]
        if offset + length > len(data):
            raise UserError(f"{index_path.name} line {number}: entry beyond the end of "
                            f"{data_path.name}")
        label = fields[0].lower()
        if label.startswith(("00-database-", "00database")):
            field = label.replace("00-database-", "").replace("00database", "")
            text = _decode(data[offset:offset + length])
            # The text repeats the headword on its first line.
            meta[field] = text.split("\n", 1)[1] if "\n" in text else ""
            continue
        rows.append((headword, offset, length))

    short = " ".join(meta.get("short", "").split()) or f"{index_path.stem} (dictd)"
    info = meta.get("info", "").strip("\n") or meta.get("long", "").strip()
    if meta.get("url", "").strip():
        info += f"\n\nURL: {meta['url'].strip()}"
    keyrule = "fold" if "allchars" in meta else "alnum"
    dict_meta = DictionaryMeta(name or default_name(index_path), short[:255],
                               info or short, keyrule)

    def entries() -> Iterator[Entry]:
        seen: set[tuple[str, int, int]] = set()
        for headword, offset, length in rows:
            marker = (headword.lower(), offset, length)
            if marker in seen:  # the same block listed twice under one headword
                continue
            seen.add(marker)
            yield Entry(headword, _decode(data[offset:offset + length]).rstrip("\n"))

    return Imported(dict_meta, entries(), len(rows))
