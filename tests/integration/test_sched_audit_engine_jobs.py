"""The engine's scheduled pulls over months of `serve`: schedules changed by another process
(the CLI beside `serve`) are followed without a restart, and a scheduled time that passed
while the process could not run (frozen, the machine asleep, the clock stepped forward) is
run once, late, not dropped. A real engine and APScheduler, a real port nothing listens on
(each pull fails at once: a Failed run a person sees)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator

import pytest
from helpers.ports import free_port

from connectbatch.engine import Engine
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.transfer.specs import FtpSpec, FtpTls


def ftp_pull(services: Services, name: str, schedule: str) -> Connection:
    draft = Connection(
        name, "call_conversions", Direction.INBOUND, Method.FTP, Methodology.PULL,
        host="127.0.0.1", port=free_port(), folder="/", pattern="*.csv", schedule=schedule,
        transfer=FtpSpec(tls=FtpTls.NONE),
    )  # fmt: skip
    created, _ = services.create_connection(draft, CredentialInput("partner", "bob", "pw-never-used-1"))
    return created


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    started = Engine(Services(settings))
    yield started
    started.stop()


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def test_schedules_made_or_changed_by_another_process_are_followed_within_minutes(
    settings: Settings, engine: Engine
) -> None:
    """`connectbatch connection add/edit --schedule` beside a running `serve`: only the app's
    own edits reached its scheduler, so a pull added by the CLI never ran and an edited one
    kept its old times until a restart."""
    cli = Services(settings)  # another process: it shares only the database with the engine
    edited = ftp_pull(cli, "Edited", "0 6 * * *")
    engine.start(servers=False)
    assert engine.scheduler.next_run(edited.id) is not None

    added = ftp_pull(cli, "Added", "0 0 1 1 *")
    cli.update_connection("Edited", schedule="30 7 * * *")

    assert wait_for(lambda: engine.scheduler.next_run(added.id) is not None, 90)
    new_time = engine.scheduler.next_run(edited.id)
    assert new_time is not None and (new_time.hour, new_time.minute) == (7, 30)
    next_new_year = engine.scheduler.next_run(added.id)
    assert next_new_year is not None and (next_new_year.month, next_new_year.day) == (1, 1)


def test_a_scheduled_time_passed_while_the_process_was_frozen_runs_once_late(
    settings: Settings, engine: Engine
) -> None:
    """APScheduler's default grace of 600 s dropped a run whose time had passed by more
    (a `serve` stopped with SIGSTOP or a suspended VM for an hour, an NTP step forward):
    "Run time of job ... was missed", and a daily pull waited a day more."""
    services = engine.services
    connection = ftp_pull(services, "Daily", "0 2 * * *")
    engine.start(servers=False)
    assert services.runs(connection.id) == []  # made just now: nothing missed at start

    # What the scheduler finds when it runs again after an hour frozen: the 02:00 time passed.
    an_hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    engine.scheduler._scheduler.modify_job(f"pull-{connection.id}", next_run_time=an_hour_ago)

    assert wait_for(lambda: len(services.runs(connection.id)) >= 1, 20)
    time.sleep(2)
    (run,) = services.runs(connection.id)
    assert run.trigger == "schedule"
    next_time = engine.scheduler.next_run(connection.id)
    assert next_time is not None and next_time > dt.datetime.now(dt.UTC)  # then its usual times


def test_a_pull_every_minute_to_a_server_that_is_down_fails_once_a_minute_and_skips_nothing(
    settings: Settings, engine: Engine
) -> None:
    """Each failed scheduled run added a retry a minute later, the time of the next scheduled
    run: one of the two found the other going, and the history said every minute that a
    trigger was skipped "while a run was going" (or a retry ran beside the schedule)."""
    services = engine.services
    connection = ftp_pull(services, "Every minute", "* * * * *")
    engine.start(servers=False)
    while dt.datetime.now(dt.UTC).second < 58:  # fired just before a minute starts
        time.sleep(0.2)
    engine.scheduler._scheduler.modify_job(f"pull-{connection.id}", next_run_time=dt.datetime.now(dt.UTC))
    time.sleep(68)  # that run, the minute's, the next minute's (and a retry's, had one come)

    runs = services.runs(connection.id)
    assert [r.trigger for r in runs] == ["schedule"] * 3
    assert services.connection_events(connection.id) == []  # no trigger skipped
