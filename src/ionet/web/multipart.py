"""``multipart/form-data`` (RFC 7578): the body of a form that uploads files.

A browser sends such a form as parts separated by a boundary line::

    --BOUNDARY\\r\\n
    Content-Disposition: form-data; name="title"\\r\\n
    \\r\\n
    hello\\r\\n
    --BOUNDARY\\r\\n
    Content-Disposition: form-data; name="photo"; filename="cat.png"\\r\\n
    Content-Type: image/png\\r\\n
    \\r\\n
    <bytes>\\r\\n
    --BOUNDARY--\\r\\n

The body has already been read whole, under ``MAX_UPLOAD_SIZE`` (the request
checks ``Content-Length`` before reading a byte), so parsing works on bytes
in memory: one ``find`` per boundary, no copy of the file data beyond the
slice handed out.  A part count and a part-header size limit keep a
malicious body from costing more than its size.

Filenames are the client's: :func:`safe_filename` keeps the last path
component only (old browsers send ``C:\\\\Users\\\\ann\\\\cat.png``) and drops
control characters, so ``UploadedFile.filename`` can be shown, but is never a
path to write to without a folder you choose.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MultipartError", "UploadedFile", "parse_multipart", "parse_options", "safe_filename"]

#: Most parts accepted in one body.
MAX_PARTS = 1000
#: Largest header block of one part.
MAX_PART_HEADER = 16 * 1024

_TOKEN_OR_QUOTED = re.compile(
    r';\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data."""


@dataclass
class UploadedFile:
    """One file from a multipart form.

    Attributes:
        field: the form field's name.
        filename: the client's file name, reduced by :func:`safe_filename`.
        content_type: what the client says the file is (not checked!).
        data: the file's bytes.
    """

    field: str
    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def open(self) -> io.BytesIO:
        """The data as a file object."""
        return io.BytesIO(self.data)

    def save(self, destination: str | Path) -> Path:
        """Write the data to ``destination`` (a file path, or a folder to put
        ``filename`` in); returns the file's path."""
        target = Path(destination)
        if target.is_dir():
            if not self.filename:
                raise ValueError("the upload has no file name: give a file path")
            target = target / self.filename
        target.write_bytes(self.data)
        return target


def parse_options(value: str) -> tuple[str, dict[str, str]]:
    """``'form-data; name="a"; filename="b.txt"'`` -> ``("form-data", {...})``.

    Parameter names are lower-cased; quoted values are unquoted.
    """
    main, _, rest = value.partition(";")
    options: dict[str, str] = {}
    for found in _TOKEN_OR_QUOTED.finditer(";" + rest):
        name, raw = found[1].lower(), found[2].strip()
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            # Only \\ and \" are unescaped: browsers send a Windows path's
            # single backslashes as they are (C:\Users\ann\cat.png).
            raw = raw[1:-1].replace("\\\\", "\\").replace('\\"', '"')
        options[name] = raw
    return main.strip().lower(), options


def safe_filename(name: str) -> str:
    """The last path component of a client's file name, without control
    characters; ``""`` for ``.``, ``..`` or nothing."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())
    return "" if name in (".", "..") else name.strip()


def parse_multipart(body: bytes, content_type: str, charset: str = "utf-8"
                    ) -> tuple[list[tuple[str, str]], list[UploadedFile]]:
    """Split a multipart/form-data ``body`` into form fields and files.

    Args:
        body: the whole request body.
        content_type: the request's Content-Type, with its ``boundary``.
        charset: how text fields are decoded.

    Returns:
        ``(fields, files)``: ``(name, value)`` pairs in order, and the parts
        that carried a ``filename``.

    Raises:
        MultipartError: no boundary, a missing delimiter, a part without a
            name, too many parts, or a part header over the limit.
    """
    _, options = parse_options(content_type)
    boundary = options.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise MultipartError("no usable boundary in Content-Type")
    delimiter = b"--" + boundary.encode("latin-1")
    fields: list[tuple[str, str]] = []
    files: list[UploadedFile] = []
    # The first delimiter may follow a preamble; the others follow CRLF.
    start = body.find(delimiter)
    if start < 0:
        raise MultipartError("the body has no boundary line")
    position = start + len(delimiter)
    separator = b"\r\n" + delimiter
    for _ in range(MAX_PARTS + 1):
        if body.startswith(b"--", position):
            return fields, files  # the closing delimiter; the epilogue is ignored
        line_end = body.find(b"\r\n", position)
        if line_end < 0 or body[position:line_end].strip(b" \t"):
            raise MultipartError("a boundary line is followed by junk")
        head_start = line_end + 2
        if body.startswith(b"\r\n", head_start):  # a part without headers
            head_end = head_start - 2
        else:
            head_end = body.find(b"\r\n\r\n", head_start, head_start + MAX_PART_HEADER + 4)
            if head_end < 0:
                raise MultipartError("a part's headers are missing or too long")
        headers = _part_headers(body[head_start:head_end])
        data_start = head_end + 4
        data_end = body.find(separator, data_start)
        if data_end < 0:
            raise MultipartError("the body ends inside a part (no closing boundary)")
        disposition, params = parse_options(headers.get("content-disposition", ""))
        if disposition != "form-data" or "name" not in params:
            raise MultipartError("a part has no Content-Disposition: form-data; name=...")
        name = params["name"]
        data = body[data_start:data_end]
        if "filename" in params:
            files.append(UploadedFile(name, safe_filename(params["filename"]),
                                      headers.get("content-type", "application/octet-stream"),
                                      data))
        else:
            _, type_options = parse_options(headers.get("content-type", "text/plain"))
            encoding = type_options.get("charset", charset)
            try:
                fields.append((name, data.decode(encoding, "replace")))
            except LookupError:
                fields.append((name, data.decode(charset, "replace")))
        position = data_end + len(separator)
    raise MultipartError(f"more than {MAX_PARTS} parts")


def _part_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(b"\r\n"):
        if not line:
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            raise MultipartError(f"malformed part header {line[:80]!r}")
        # RFC 7578 section 5.1: browsers send UTF-8 file names as they are.
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("utf-8", "replace")
    return headers
