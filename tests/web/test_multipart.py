"""multipart/form-data parsing on its own: boundaries, part headers, limits."""

from __future__ import annotations

import pytest

from ionet.web.multipart import (
    MultipartError,
    parse_multipart,
    parse_options,
    safe_filename,
)

CT = 'multipart/form-data; boundary="b0und"'


def body(*parts: bytes, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    return preamble + b"".join(b"--b0und\r\n" + part + b"\r\n" for part in parts) \
        + b"--b0und--\r\n" + epilogue


def test_fields_files_preamble_and_epilogue() -> None:
    data = body(b'Content-Disposition: form-data; name="a"\r\n\r\none\r\ntwo',
                b'Content-Disposition: form-data; name="f"; filename="x.bin"\r\n'
                b"Content-Type: application/octet-stream\r\n\r\n\r\n--b0un-d\r\n",
                b'Content-Disposition: form-data; name="a"\r\n\r\n',
                preamble=b"ignored preamble\r\n", epilogue=b"ignored too")
    fields, files = parse_multipart(data, CT)
    assert fields == [("a", "one\r\ntwo"), ("a", "")]
    assert len(files) == 1 and files[0].data == b"\r\n--b0un-d\r\n"
    assert files[0].filename == "x.bin" and files[0].field == "f"


@pytest.mark.parametrize("data", [
    b"--b0und\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
    b"--b0und\r\nno colon here\r\n\r\nx\r\n--b0und--",
    b"--b0und\r\nContent-Type: text/plain\r\n\r\nx\r\n--b0und--",
    b"no boundary at all",
    b"--b0undjunk\r\n",
])
def test_malformed_bodies_are_refused(data: bytes) -> None:
    with pytest.raises(MultipartError):
        parse_multipart(data, CT)


def test_no_boundary_parameter() -> None:
    with pytest.raises(MultipartError):
        parse_multipart(b"", "multipart/form-data")


def test_too_many_parts() -> None:
    part = b'Content-Disposition: form-data; name="a"\r\n\r\nx'
    with pytest.raises(MultipartError):
        parse_multipart(body(*[part] * 1001), CT)


def test_options_and_file_names() -> None:
    assert parse_options('form-data; name="a;b"; filename="q\\"uote.txt"') == (
        "form-data", {"name": "a;b", "filename": 'q"uote.txt'})
    assert safe_filename("C:\\Users\\ann\\cat.png") == "cat.png"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("..") == ""
    assert safe_filename("a\x00b\nc.txt") == "abc.txt"
