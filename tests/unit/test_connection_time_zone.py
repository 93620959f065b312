"""A connection's time zone reads dates without an offset. "EST" and "MST" are IANA names, but
one fixed offset all year: a New York partner's summer calls were an hour off, silently (found
by a partner audit). A connection is refused them, with the zone a person means."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import InvalidInputError, Services
from connectbatch.settings import Settings


def _draft(timezone: str) -> Connection:
    return Connection(
        "calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH, timezone=timezone
    )


@pytest.mark.parametrize("zone, region, fixed", [("EST", "America/New_York", "America/Panama"),
                                                 ("MST", "America/Denver", "America/Phoenix")])  # fmt: skip
def test_a_fixed_abbreviation_is_refused_with_the_zone_meant(
    tmp_path: Path, zone: str, region: str, fixed: str
) -> None:
    services = Services(Settings(home=tmp_path / "home"))
    services.add_partner("p", "brand")
    with pytest.raises(InvalidInputError, match=f"{zone} is one offset all year.*use {region}.*or {fixed}"):
        services.create_connection(_draft(zone), partner="p")
    made, _login = services.create_connection(_draft(region), partner="p")
    assert made.timezone == region
