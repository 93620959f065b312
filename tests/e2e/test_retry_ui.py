"""Retrying a failed run from the app: the connection's History tab, where the seed sends a
person to see why a connection Failed and where Triage's "Open the connection (retry)" leads.
The CLI had `connectbatch retry RUN_ID`; the app had no way to run a failed file again."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import call_csv
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.models import Connection, ConnectionStatus, Direction, Method, Methodology, Role, RunStatus
from connectbatch.pipeline.ingest import Ingestor
from connectbatch.services import Services

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
TIMEOUT = 60

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def failed_push_run(monkeypatch: pytest.MonkeyPatch) -> tuple[Services, int, int]:
    """A push connection whose file failed mid-parse (its staged bytes kept): (services,
    connection id, run id)."""
    services = Services()
    created, _ = services.create_connection(
        Connection("Acme calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                   pattern="*.csv"),
    )  # fmt: skip
    with monkeypatch.context() as patched:

        def hiccup(*_args: object, **_kwargs: object) -> None:
            raise OSError("disk hiccup")

        patched.setattr(Ingestor, "compute_file", hiccup)
        run = services.ingest_bytes("Acme calls", "calls.csv", call_csv(3))
    assert run.status is RunStatus.FAILED
    return services, created.id, run.id


def test_a_failed_run_is_retried_from_the_history_tab(monkeypatch: pytest.MonkeyPatch) -> None:
    services, connection_id, run_id = failed_push_run(monkeypatch)
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), role=Role.ANALYST).run()
    at.button(key=f"history_{connection_id}").click().run()
    assert not at.exception, at.exception

    at.button(key=f"retry_{run_id}").click().run()

    assert not at.exception, at.exception
    assert any(f"Run {run_id + 1} of Acme calls completed" in s.value for s in at.success), at.success
    [again, first] = services.runs(connection_id)
    assert (again.retry_of, again.status, again.rows_accepted) == (run_id, RunStatus.COMPLETED, 3)
    assert first.status is RunStatus.FAILED
    assert services.connection(connection_id).status is ConnectionStatus.COMPLETED
    # The new run is the one shown now: it completed, so there is nothing to retry.
    assert not [b for b in at.button if str(b.key).startswith("retry_")]


def test_a_failed_run_retried_already_offers_no_second_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    services, connection_id, run_id = failed_push_run(monkeypatch)
    services.retry(run_id)
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), role=Role.ANALYST).run()
    at.button(key=f"history_{connection_id}").click().run()
    assert not at.exception, at.exception
    assert not [b for b in at.button if str(b.key).startswith("retry_")]
    at.selectbox(key=f"history_run_{connection_id}").set_value(run_id).run()  # the failed one
    assert not [b for b in at.button if str(b.key).startswith("retry_")]
    assert any(f"Retried as run {run_id + 1}." in c.value for c in at.caption)


def test_a_completed_runs_remark_is_shown_with_it() -> None:
    """A completed run's remark (here the columns its file had that were not read) showed only
    in the list's Reason column, where nobody looks at a run that went well."""
    services = Services()
    created, _ = services.create_connection(
        Connection("Acme calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH,
                   pattern="*.csv"),
    )  # fmt: skip
    header, *rows = call_csv(2).decode().splitlines()
    data = "\r\n".join([header + ",Revenue", *(r + ",9.99" for r in rows)]) + "\r\n"
    run = services.ingest_bytes("Acme calls", "calls.csv", data.encode())
    assert run.status is RunStatus.COMPLETED
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), role=Role.ANALYST).run()
    at.button(key=f"history_{created.id}").click().run()
    assert not at.exception, at.exception
    assert any("columns not read" in i.value and "Revenue" in i.value for i in at.info), at.info
