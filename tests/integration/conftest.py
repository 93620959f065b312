"""Fixtures for the integration tests: a real DuckDB file under tmp_path, reached only
through `Services`, as the UI and the CLI reach it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # `import helpers` (tests/helpers/) from any test folder
    sys.path.insert(0, str(TESTS))

from connectbatch.models import Connection, Direction, Method, Methodology  # noqa: E402
from connectbatch.pipeline import validation  # noqa: E402
from connectbatch.services import Services  # noqa: E402
from connectbatch.settings import Settings  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def gx_warm() -> None:
    """Import great-expectations once for the whole session (~3-5 s), before any timing."""
    validation.gx_context()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", lock_timeout=10.0)


@pytest.fixture
def services(settings: Settings) -> Services:
    return Services(settings)


MakeConnection = Callable[..., Connection]


@pytest.fixture
def make_connection(services: Services) -> MakeConnection:
    """`make_connection("Acme")` -> an inbound push-over-SFTP connection of call conversions."""

    def make(name: str = "Acme", data_type: str = "call_conversions", **attrs: object) -> Connection:
        draft = Connection(
            name=name,
            data_type=data_type,
            direction=Direction.INBOUND,
            method=Method.SFTP,
            methodology=Methodology.PUSH,
            **attrs,  # type: ignore[arg-type]
        )
        created, provisioned = services.create_connection(draft)
        assert provisioned is not None  # push connections get a login, shown once
        return created

    return make
