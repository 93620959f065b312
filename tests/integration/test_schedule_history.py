"""History noise (issue 11, defect 11) against a real OpenSSH sshd: a per-minute schedule
polling a folder that still holds files it took adds no line per poll, a file skipped for the
same reason is recorded once, and a trigger skipped because a run is still going is in the
connection's history (coalesced), in the app's history tab and in `connectbatch history`."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import call_csv

from connectbatch.cli import main
from connectbatch.engine import Engine
from connectbatch.engine.scheduler import Scheduler
from connectbatch.models import Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.transfer.specs import SftpSpec

if TYPE_CHECKING:
    from sshd import Sshd

pytest_plugins = ["sshd"]


def sftp_pull(services: Services, server: Sshd, folder: Path, **attrs: object) -> Connection:
    draft = Connection(
        "Partner SFTP", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PULL,
        host=server.host, port=server.port, folder=str(folder), pattern="Calls_*.csv",
        schedule="* * * * *", transfer=SftpSpec(), **attrs,  # type: ignore[arg-type]
    )  # fmt: skip
    created, _ = services.create_connection(draft, CredentialInput("partner", server.user, server.password))
    return created


def ledger(services: Services, name: str) -> list[tuple[str, str, str | None]]:
    return [(f.name, f.state, f.message) for r in services.runs(name) for f in services.run_files(r.id)]


def test_scheduled_polls_of_files_already_taken_add_no_history(
    services: Services, sshd_server: Sshd, sftp_folder: Path
) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    sshd_server.put(sftp_folder, "Calls_2026_a.csv", call_csv(3, prefix="a"), old)
    connection = sftp_pull(services, sshd_server, sftp_folder)
    engine = Engine(services)  # the scheduler's own job, fired three times as the cron would

    for _ in range(3):
        engine.scheduler._scheduled(connection.id, 0)

    [run] = services.runs("Partner SFTP")  # one run: the one that took the file
    assert run.status is RunStatus.COMPLETED and run.files_loaded == 1
    assert ledger(services, "Partner SFTP") == [("Calls_2026_a.csv", "loaded", None)]

    # Run now still shows a run (a person asked), but no "already taken" line per old file
    manual = services.pull("Partner SFTP")
    assert manual.status is RunStatus.COMPLETED and services.run_files(manual.id) == []


def test_a_file_skipped_for_the_same_reason_is_recorded_once(
    services: Services, sshd_server: Sshd, sftp_folder: Path
) -> None:
    young = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)  # still too young for a while
    sshd_server.put(sftp_folder, "Calls_2026_b.csv", call_csv(2, prefix="b"), young)
    connection = sftp_pull(services, sshd_server, sftp_folder, min_age_seconds=3600)
    engine = Engine(services)

    for _ in range(3):
        engine.scheduler._scheduled(connection.id, 0)

    skipped = ledger(services, "Partner SFTP")
    assert len(skipped) == 1 and skipped[0][1] == "skipped" and "minimum age" in (skipped[0][2] or "")
    assert len(services.runs("Partner SFTP")) == 1


def test_a_compressed_file_on_the_server_matches_by_its_name_without_gz(
    services: Services, sshd_server: Sshd, sftp_folder: Path
) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    sshd_server.put(sftp_folder, "Calls_2026_c.csv.gz", gzip.compress(call_csv(4, prefix="c")), old)
    sftp_pull(services, sshd_server, sftp_folder)  # pattern Calls_*.csv

    run = services.pull("Partner SFTP")

    assert (run.status, run.files_loaded, run.rows_accepted) == (RunStatus.COMPLETED, 1, 4)


def test_a_trigger_skipped_while_a_run_is_going_is_in_the_history(
    services: Services,
    settings: Settings,
    sshd_server: Sshd,
    sftp_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    connection = sftp_pull(services, sshd_server, sftp_folder)
    started, release = threading.Event(), threading.Event()

    def slow_pull(c: Connection, trigger: str):  # type: ignore[no-untyped-def]
        run = services.ingestor.start_run(c, trigger)  # a run that takes a while
        started.set()
        release.wait(20)
        return services.ingestor.finish_run(run)

    scheduler = Scheduler(
        services.connections, slow_pull, services.lock_actions,
        on_skipped=lambda c: services.record_skipped_trigger(c.id),
    )  # fmt: skip
    worker = threading.Thread(target=scheduler._scheduled, args=(connection.id, 0))
    worker.start()
    try:
        assert started.wait(10)
        for _ in range(3):  # three more minutes pass while the run goes on
            scheduler._scheduled(connection.id, 0)
    finally:
        release.set()
        worker.join(20)
    [run] = services.runs("Partner SFTP")

    [event] = services.connection_events("Partner SFTP")  # coalesced: one line
    assert event.kind == "trigger_skipped" and event.count == 3 and event.run_id == run.id
    since = f"{event.at:%Y-%m-%d %H:%M} UTC"
    assert f"skipped 3 scheduled triggers since {since} while run {run.id} was going" in event.message

    monkeypatch.setenv("CONNECTBATCH_HOME", str(settings.home))
    monkeypatch.delenv("CONNECTBATCH_DB", raising=False)
    assert main(["history", "--connection", "Partner SFTP", "--json"]) == 0
    [shown] = json.loads(capsys.readouterr().out)
    assert (shown["kind"], shown["count"], shown["connection"]) == ("trigger_skipped", 3, "Partner SFTP")
    assert main(["history"]) == 0
    assert "skipped 3 scheduled triggers" in capsys.readouterr().out
