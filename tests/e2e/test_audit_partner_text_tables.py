"""Tables that carry partner text show it with control characters and bidi overrides made
visible, as the rejects and files tables already did (an attacker audit, 2026-12-07):

* a connection's History table: a run's Reason quotes the file's name as the partner's server
  or the command line gave it ("bad<RLO>vsc.exe" read as "badexe.csv");
* Pending actions and its audit trail: the Reason column of an action-modifications file is
  the partner's cell, shown as sent (an escape sequence, an override)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import call_csv, modifications_csv
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60
RAW = ("\u202e", "\x1b")

pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def connection(services: Services, name: str, data_type: str) -> Connection:
    created, _ = services.create_connection(
        Connection(name, data_type, Direction.INBOUND, Method.SFTP, Methodology.PUSH, pattern="*"),
        partner="Acme",
    )
    return created


def cells(at: AppTest, column: str) -> list[str]:
    """Every cell of `column` in the page's tables."""
    return [str(v) for d in at.dataframe if column in d.value.columns for v in d.value[column]]


def test_the_history_table_shows_a_file_names_override_in_a_runs_reason_escaped(tmp_path: Path) -> None:
    services = Services()
    services.add_partner("Acme", "vendor")
    calls = connection(services, "Calls", "call_conversions")
    sent = tmp_path / "bad\u202evsc.exe"
    sent.write_bytes(b"Caller,Duration\r\n1,2\r\n")
    services.ingest_file(calls.id, sent)  # `connectbatch ingest`: the name as the file has it

    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.button(key=f"history_{calls.id}").click().run()
    assert not at.exception, at.exception
    [reason] = cells(at, "Reason")
    assert reason.startswith("bad\\u202evsc.exe: line 1:"), reason


def test_pending_actions_and_the_audit_trail_show_a_partners_reason_escaped() -> None:
    services = Services()
    services.add_partner("Acme", "vendor")
    calls, mods = (
        connection(services, "Calls", "call_conversions"),
        connection(services, "Mods", "action_modifications"),
    )
    services.ingest_bytes(calls.id, "calls.csv", call_csv(2))
    services.ingest_bytes(
        mods.id, "mods.csv", modifications_csv([("A-000001", "5.00", "price\u202e fixed\x1b[31m")])
    )

    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.switch_page("app_pages/actions.py").run()
    at.selectbox(key="actions_detail").set_value(1).run()
    assert not at.exception, at.exception
    reasons = [r for r in cells(at, "Reason") if "price" in r]
    assert len(reasons) == 2, cells(at, "Reason")  # the actions table and the audit trail
    for reason in reasons:
        assert not any(c in reason for c in RAW), reason
        assert reason == "price\\u202e fixed\\x1b[31m"


def test_the_expectations_tables_show_partner_values_escaped() -> None:
    """The "Unexpected values (sample)" column quotes the partner's cells (here keys a batch
    repeats): on the Validation page and in the History tab's run details alike."""
    services = Services()
    services.add_partner("Acme", "vendor")
    calls = connection(services, "Calls", "call_conversions")
    services.ingest_bytes(
        calls.id,
        "calls.csv",
        call_csv(3, overrides={i: {"CallSessionId": "k\u202eey\x1b"} for i in range(3)}),
    )

    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.switch_page("app_pages/validation.py").run()
    assert not at.exception, at.exception
    on_validation = [v for v in cells(at, "Unexpected values (sample)") if "ey" in v]
    at.switch_page("app_pages/connections.py").run()
    at.button(key=f"history_{calls.id}").click().run()
    assert not at.exception, at.exception
    in_history = [v for v in cells(at, "Unexpected values (sample)") if "ey" in v]
    assert on_validation and in_history, (on_validation, in_history)
    for value in on_validation + in_history:
        assert not any(c in value for c in RAW) and "k\\u202eey\\x1b" in value, value
