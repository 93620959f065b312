"""The app's "File format & dry run" screen runs a partner dry run for a picked connection
(issue 12, part 3): the same path as the dry-run/ folders and the +dryrun address, with the
connection's own settings and already-loaded keys, and nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import call_csv
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60


pytestmark = pytest.mark.usefixtures("own_engine")  # tests/e2e/conftest.py


def stored(services: Services) -> tuple[int, ...]:
    with services.db.connect() as con:
        return tuple(
            int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
            for t in ("data_call_conversions", "actions", "runs", "files")
        )


def test_the_dry_run_screen_checks_a_file_as_the_picked_connection(tmp_path: Path) -> None:
    services = Services()
    draft = Connection(
        "Acme \x1b[31mcalls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH
    )
    connection, _ = services.create_connection(draft)
    live = tmp_path / "live.csv"
    live.write_bytes(call_csv(2, prefix="live"))
    services.ingest_file(connection.id, live)
    before = stored(services)

    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.switch_page("app_pages/parse_preview.py").run()
    picker = at.selectbox(key="dry_run_connection")
    assert "Acme \\x1b[31mcalls" in picker.options  # partner text escaped (escaping.visible)
    assert not any("\x1b" in str(o) for o in picker.options)
    picker.set_value(connection.id).run()
    assert not at.exception, at.exception
    trial = call_csv(3, prefix="live", overrides={2: {"CampaignId": "abc"}}).decode()
    at.text_area(key="dry_run_paste").set_value(trial).run()
    assert not at.exception, at.exception

    [warning] = at.warning
    assert "Nothing was stored" in warning.value and "would be held for review" in warning.value
    [results] = [d.value for d in at.dataframe if "Status" in d.value.columns]
    statuses = dict(zip(results["Line"], results["Status"], strict=True))
    assert statuses == {
        0: "DRY_RUN", 2: "WOULD_BE_DUPLICATE", 3: "WOULD_BE_DUPLICATE", 4: "WOULD_BE_REJECTED",
    }  # fmt: skip
    assert stored(services) == before  # the same outcome as a partner's drop: nothing stored
    [event] = services.connection_events(connection.id)
    assert event.kind == "dry_run" and "via app" in event.message


def test_a_dry_run_shows_a_value_that_reorders_text_escaped() -> None:
    """The results table of a dry run showed partner text raw: a bidi override in a rejected
    value (or a key) made it read as something else (the Validation page's rejects too)."""
    services = Services()
    draft = Connection("Acme calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    connection, _ = services.create_connection(draft)
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.switch_page("app_pages/parse_preview.py").run()
    at.selectbox(key="dry_run_connection").set_value(connection.id).run()
    trial = call_csv(2, prefix="\u202eeno", overrides={1: {"CampaignId": "\u202eRTL\u202c"}}).decode()
    at.text_area(key="dry_run_paste").set_value(trial).run()
    assert not at.exception, at.exception

    [results] = [d.value for d in at.dataframe if "Status" in d.value.columns]
    cells = [str(cell) for cell in results.to_numpy().ravel()]
    assert not any("\u202e" in cell for cell in cells), cells
    assert any("\\u202eRTL\\u202c" in cell for cell in cells), cells


def _format_dry_run(trial: str) -> None:  # an AppTest script: the upload AppTest cannot make
    from app_pages import parse_preview

    parse_preview._show_dry_run(trial.encode(), "call_conversions", None, ",", "UTC")


def test_partner_text_in_a_dry_runs_messages_is_shown_literally() -> None:
    """A file's unknown header names went into the dry run's message as Markdown:
    `[x](https://…)` was a link, `![p](…)` an image the reviewer's browser fetched, `:red[…]`
    a colour, and an HTML reference (`&period;`) was decoded."""
    hostile = "[click](https://evil.example) ![p](https://evil.example/p.png) :red[x] www&period;evil"
    header, *rows = call_csv(2, prefix="md").decode().splitlines()
    trial = "\n".join([f'{header},"{hostile}"', *(row + ",1" for row in rows)]) + "\n"

    at = log_in(AppTest.from_function(_format_dry_run, args=(trial,), default_timeout=TIMEOUT)).run()
    assert not at.exception, at.exception
    [unknown] = [i.value for i in at.info if "Columns not in the data type" in i.value]
    assert "\\[click\\](https:" in unknown and "!\\[p\\]" in unknown and "\\[x\\]" in unknown, unknown
    assert "www\\&period;evil" in unknown, unknown
