"""What is inside a .zip or .gz: the one CSV file, with what operating systems add around it
left out, and a plain refusal of what ConnectBatch does not unpack."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile
from pathlib import Path

import pytest
from helpers import call_csv

from connectbatch.errors import ParseError
from connectbatch.parser.api import parse_bytes, parse_file

TEXT = "id,name\n1,a\n"


def zipped(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


@pytest.mark.parametrize(
    "junk",
    [".DS_Store", "Thumbs.db", "desktop.ini", "exports/Desktop.ini", "._calls.csv", "exports/._calls.csv",
     "__MACOSX/._calls.csv", "exports/"],
)  # fmt: skip
def test_operating_system_files_beside_the_csv_are_left_out(engine: str, tmp_path: Path, junk: str) -> None:
    archive = zipped(tmp_path / "calls.zip", {"exports/calls.csv": TEXT, junk: b"\x00\x05\x16\x07junk"})
    result = parse_file(archive, None, engine=engine)  # type: ignore[arg-type]
    assert result.table.to_pylist() == [{"id": "1", "name": "a"}]


def test_a_zip_of_two_files_is_refused_calling_them_files_not_csv_files(tmp_path: Path) -> None:
    archive = zipped(tmp_path / "two.zip", {"calls.csv": TEXT, "README.txt": "hello", ".DS_Store": b"\x00"})
    with pytest.raises(ParseError) as raised:
        parse_file(archive, None)
    assert str(raised.value) == (
        "a ZIP archive must hold one CSV file and nothing else; "
        "this one holds 2 files (calls.csv, README.txt)"
    )


@pytest.mark.parametrize(
    "members, message",
    [
        ({}, "the ZIP archive is empty; it must hold one CSV file"),
        ({"exports/": ""}, "the ZIP archive holds no file (only folders); it must hold one CSV file"),
        ({"Thumbs.db": b"\x00", "__MACOSX/._x": b"\x00"},
         "the ZIP archive holds no file but system files (Thumbs.db, __MACOSX/._x); "
         "it must hold one CSV file"),
    ],
    ids=["empty", "folders", "junk-only"],
)  # fmt: skip
def test_a_zip_without_a_file_says_what_it_holds(
    tmp_path: Path, members: dict[str, str], message: str
) -> None:
    archive = zipped(tmp_path / "none.zip", members)
    with pytest.raises(ParseError) as raised:
        parse_file(archive, None)
    assert str(raised.value) == message


def tarred(text: str) -> bytes:
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w") as archive:
        info = tarfile.TarInfo("calls.csv")
        info.size = len(text.encode())
        archive.addfile(info, io.BytesIO(text.encode()))
    return packed.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return packed.getvalue()


CSV = TEXT.encode()
SEND = "send CSV, .gz or .zip"


@pytest.mark.parametrize(
    "data, message",
    [
        (bz2.compress(CSV), f"bzip2-compressed files are not read: {SEND}"),
        (lzma.compress(CSV), f"xz-compressed files are not read: {SEND}"),
        (b"\x28\xb5\x2f\xfd" + b"\x00" * 20, f"Zstandard-compressed files are not read: {SEND}"),
        (b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 30, f"7-Zip archives are not read: {SEND}"),
        (b"Rar!\x1a\x07\x01\x00" + b"\x00" * 30, f"RAR archives are not read: {SEND}"),
        (tarred(TEXT), f"tar archives are not read: {SEND}"),
        (gzip.compress(gzip.compress(CSV)),
         "the file inside the gzip file is itself compressed (gzip): gzip the CSV itself, once"),
        (gzip.compress(tarred(TEXT)),
         "the file inside the gzip file is a tar archive: gzip the CSV itself"),
        (gzip.compress(zip_bytes({"calls.csv": CSV})),
         "the file inside the gzip file is a ZIP archive: gzip the CSV itself, or send the .zip alone"),
        (zip_bytes({"calls.csv.gz": gzip.compress(CSV)}),
         "calls.csv.gz inside the ZIP archive is itself compressed (gzip): "
         "put the CSV itself in the ZIP, or send the .gz alone"),
        (zip_bytes({"calls.zip": zip_bytes({"calls.csv": CSV})}),
         "calls.zip inside the ZIP archive is a ZIP archive: put the CSV itself in the ZIP"),
        (zip_bytes({"calls.csv.bz2": bz2.compress(CSV)}),
         "calls.csv.bz2 inside the ZIP archive is itself compressed (bzip2): put the CSV itself in the ZIP"),
        (zip_bytes({"calls.pdf": b"%PDF-1.7\n"}),
         "calls.pdf inside the ZIP archive is a PDF document, not a CSV file"),
    ],
    ids=["bz2", "xz", "zstd", "7z", "rar", "tar", "gz-in-gz", "tar-gz", "zip-in-gz", "gz-in-zip",
         "zip-in-zip", "bz2-in-zip", "pdf-in-zip"],
)  # fmt: skip
def test_compression_that_is_not_read_is_named_with_what_to_send(
    engine: str, tmp_path: Path, data: bytes, message: str
) -> None:
    """These were read as text and refused as 'header column 1 contains a NUL byte; is this
    a CSV file?', which says nothing of what to send instead."""
    (tmp_path / "upload").write_bytes(data)
    for parse in (
        lambda: parse_file(tmp_path / "upload", None, engine=engine),  # type: ignore[arg-type]
        lambda: parse_bytes(data, None, engine=engine),  # type: ignore[arg-type]
    ):
        with pytest.raises(ParseError) as raised:
            parse()
        assert str(raised.value) == message


def test_the_decompressed_size_limit_holds_for_a_gzip_inside_a_zip(tmp_path: Path) -> None:
    bomb = zip_bytes({"calls.csv.gz": gzip.compress(b"a\n" + b"0\n" * 2_000_000)})
    with pytest.raises(ParseError, match="limit of 1,000 bytes once decompressed"):
        parse_bytes(bomb, None, max_bytes=1_000)


@pytest.mark.parametrize("method", [zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2, zipfile.ZIP_DEFLATED])
def test_a_damaged_zip_member_is_refused_as_damaged_whatever_its_compression(
    engine: str, method: int
) -> None:
    """A pull audit: a damaged LZMA member failed the file with "parse failed: LZMAError"
    (our own error, not the file's), so each pull fetched it and failed it again."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        z.writestr("Calls_1.csv", call_csv(2000))
    data = bytearray(buf.getvalue())
    for i in range(60, 200):  # inside the member's compressed bytes
        data[i] ^= 0x5A
    with pytest.raises(ParseError, match=r"^the compressed file is damaged"):
        parse_bytes(bytes(data), "call_conversions", engine=engine)  # type: ignore[arg-type]
