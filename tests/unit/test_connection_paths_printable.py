"""A connection's folder, archive folder and file pattern are refused control characters
(an app audit saved the folder '/a\\x00b'): a NUL cuts the path short in a server written in C,
a newline splits an FTP command, and a bidi override makes the page show another folder than
the one pulled from."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from connectbatch.models import AfterSuccess, Connection, Direction, Method, Methodology
from connectbatch.services import InvalidInputError, Services
from connectbatch.settings import Settings


def _pull(**changes: object) -> Connection:
    c = Connection(
        "vendor", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host="sftp.example.com", folder="/outbox", pattern="*.csv",
    )  # fmt: skip
    return replace(c, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "field, value",
    [
        ("folder", "/a\x00b"),
        ("folder", "/calls\nDELE x"),
        ("folder", "/in\u202ecsv"),
        ("pattern", "*\r.csv"),
        ("pattern", "a\x00*.csv"),
    ],
)
def test_control_characters_are_refused_by_field(tmp_path: Path, field: str, value: str) -> None:
    services = Services(Settings(home=tmp_path / "home"))
    with pytest.raises(InvalidInputError, match=f"{field}.*control character"):
        services.check_connection(_pull(**{field: value}))


def test_an_archive_folder_with_a_control_character_is_refused(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path / "home"))
    draft = _pull(after_success=AfterSuccess.ARCHIVE, archive_folder="/done\x07")
    with pytest.raises(InvalidInputError, match=r"archive_folder.*control character"):
        services.check_connection(draft)


def test_an_update_cannot_bring_one_in(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path / "home"))
    services.add_partner("p", "brand")
    made, _login = services.create_connection(_pull(), partner="p")
    with pytest.raises(InvalidInputError, match=r"folder.*control character"):
        services.update_connection(made.id, folder="/a\x00b")
    assert services.connection(made.id).folder == "/outbox"


def test_printable_unicode_stays_allowed(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path / "home"))
    checked = services.check_connection(_pull(folder="/Données/Appels 2026", pattern="Appels_*.csv"))
    assert checked.folder == "/Données/Appels 2026"


def test_a_minimum_age_past_thirty_days_is_refused_by_field(tmp_path: Path) -> None:
    """99,999,999,999,999 s reached the database as an INT32 error (found by the CLI audit)."""
    services = Services(Settings(home=tmp_path / "home"))
    with pytest.raises(InvalidInputError, match=r"min_age_seconds.*30 days"):
        services.check_connection(_pull(min_age_seconds=99_999_999_999_999))
    assert services.check_connection(_pull(min_age_seconds=3600)).min_age_seconds == 3600
