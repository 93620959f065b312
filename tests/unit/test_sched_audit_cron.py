"""crontab's shorthands as schedules: `@daily` is how many people write a daily pull, and
cron's manual lists them; they were refused as "wrong number of fields; got 1, expected 5"."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from connectbatch.engine import cron
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import CredentialInput, InvalidInputError, Services
from connectbatch.settings import Settings
from connectbatch.transfer.specs import FtpSpec, FtpTls

WEDNESDAY_NOON = dt.datetime(2027, 1, 6, 12, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("shorthand", "first"),
    [
        ("@hourly", dt.datetime(2027, 1, 6, 13, 0, tzinfo=dt.UTC)),
        ("@daily", dt.datetime(2027, 1, 7, 0, 0, tzinfo=dt.UTC)),
        ("@midnight", dt.datetime(2027, 1, 7, 0, 0, tzinfo=dt.UTC)),
        ("@weekly", dt.datetime(2027, 1, 10, 0, 0, tzinfo=dt.UTC)),  # Sunday, as cron
        ("@monthly", dt.datetime(2027, 2, 1, 0, 0, tzinfo=dt.UTC)),
        ("@yearly", dt.datetime(2028, 1, 1, 0, 0, tzinfo=dt.UTC)),
        ("@annually", dt.datetime(2028, 1, 1, 0, 0, tzinfo=dt.UTC)),
        ("@Daily", dt.datetime(2027, 1, 7, 0, 0, tzinfo=dt.UTC)),
    ],
)
def test_a_crontab_shorthand_runs_when_cron_would(shorthand: str, first: dt.datetime) -> None:
    assert cron.trigger(shorthand).get_next_fire_time(None, WEDNESDAY_NOON) == first


def pull(schedule: str) -> Connection:
    return Connection(
        "Partner FTP", "call_conversions", Direction.INBOUND, Method.FTP, Methodology.PULL,
        host="127.0.0.1", port=21, folder="/", pattern="*.csv", schedule=schedule,
        transfer=FtpSpec(tls=FtpTls.NONE),
    )  # fmt: skip


def test_a_connection_may_be_scheduled_daily_by_shorthand(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path / "home"))
    created, _ = services.create_connection(pull("@daily"), CredentialInput("partner", "bob", "pw-1"))
    assert services.connection(created.id).schedule == "@daily"


def test_reboot_is_refused_saying_why(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path / "home"))
    with pytest.raises(InvalidInputError, match="@reboot names no time"):
        services.create_connection(pull("@reboot"), CredentialInput("partner", "bob", "pw-1"))
