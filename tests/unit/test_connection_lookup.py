"""Looking a connection up: a person's words by name first, the code's ids by id.

`Services.connection(int)` read the id as a name first ("1"), so a connection named "1" stood
in for connection 1 wherever the code passes an id (our servers' sessions, the gateway, the
app), and an id cost three queries instead of one."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import NotFoundError, Services
from connectbatch.settings import Settings


def _push(services: Services, name: str) -> Connection:
    connection, _login = services.create_connection(
        Connection(name, "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH), partner="p"
    )
    return connection


def test_an_id_finds_its_connection_and_a_name_that_looks_like_one_finds_that_name(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path / "home"))
    services.add_partner("p", "brand")
    named = _push(services, "2")  # named as the next connection's id will be
    first = _push(services, "alpha")
    assert first.id == 2, "ids are given in order"
    assert services.connection(first.id).name == "alpha"
    assert services.connection(named.id).id == named.id
    assert services.connection(str(first.id)).id == named.id  # typed by a person: the name
    assert services.connection("ALPHA").id == first.id
    with pytest.raises(NotFoundError):
        services.connection(named.id + 100)
