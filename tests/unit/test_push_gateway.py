"""The push gateway ingests a finished upload and never one still named as in flight: the same
names a pull skips (`connectbatch.transfer.naming`), whichever hosted server received it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.transfer.naming import IN_FLIGHT_SUFFIXES
from connectbatch.transfer.push.gateway import Account, Gateway


class _Services:
    """Just enough of `Services` to see which uploads the gateway hands to ingestion."""

    def __init__(self, home: Path) -> None:
        self.ingested: list[str] = []
        self.settings = SimpleNamespace(home=home)  # the gateway's registry of open writes

    def connection(self, connection_id: int) -> Connection:
        """The upload's connection, whose file pattern the gateway checks: takes any name."""
        return Connection("Partner calls", "call_conversions", Direction.INBOUND, Method.SFTP,
                          Methodology.PUSH, id=connection_id, pattern="*")  # fmt: skip

    def ingest_files(self, connection_id: int, paths: list[Path], trigger: str) -> list[Any]:
        self.ingested += [path.name for path in paths]
        return [None for _ in paths]


@pytest.fixture
def gateway_and_account(tmp_path: Path) -> Any:
    services = _Services(tmp_path / "home")
    gateway = Gateway(services, workers=1)  # type: ignore[arg-type]
    account = Account("partner", 7, "Partner calls", tmp_path.resolve(), True, 1 << 20)
    yield gateway, account, services
    gateway.close()


@pytest.mark.parametrize("suffix", IN_FLIGHT_SUFFIXES)
def test_an_upload_still_named_as_in_flight_is_not_ingested(gateway_and_account: Any, suffix: str) -> None:
    gateway, account, services = gateway_and_account
    upload = account.home / f"calls.csv{suffix.upper()}"
    upload.write_bytes(b"partial")
    assert gateway.upload_complete(account, upload) is None
    gateway.wait(timeout=10)
    assert services.ingested == []
    assert upload.exists()


def test_a_finished_upload_is_ingested(gateway_and_account: Any) -> None:
    gateway, account, services = gateway_and_account
    upload = account.home / "calls.csv"
    upload.write_bytes(b"done")
    assert gateway.upload_complete(account, upload) is not None
    gateway.wait(timeout=10)
    assert services.ingested == ["calls.csv"]
