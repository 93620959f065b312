"""What is inside a .zip or .gz: the one CSV file, with what operating systems add around it
left out, and a plain refusal of what ConnectBatch does not unpack."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from connectbatch.errors import ParseError
from connectbatch.parser.api import parse_file

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
