"""The Validation page's rejects download is a CSV a reviewer opens in a spreadsheet: a
partner's cell that looks like a formula must stay text (escaping.csv_cell)."""

from __future__ import annotations

import csv
import importlib
import io

from helpers import call_csv

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services


def test_the_rejects_download_escapes_formula_cells() -> None:
    page = importlib.import_module("app_pages.validation")  # the UI only renders as __main__
    services = Services()
    services.add_partner("Acme", "vendor")
    draft = Connection("Acme calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    services.create_connection(draft, partner="Acme")
    hostile = call_csv(3, prefix="f", overrides={1: {"CampaignId": '=HYPERLINK("http://x.example","y")'}})
    run = services.ingest_bytes("Acme calls", "=cmd.csv", hostile)
    names = {f.id: f.name for f in services.run_files(run.id)}

    rows = list(csv.reader(io.StringIO(page.rejects_csv(services, run.id, names).decode())))

    assert rows[0] == ["File", "Line", "Key", "Column", "Value", "Reason"]
    [reject] = [r for r in rows[1:] if r[3] == "CampaignId"]
    assert reject[0] == "'=cmd.csv"
    assert reject[2] == "f-0001"  # the row's key, as the parser read it
    assert reject[4] == '\'=HYPERLINK("http://x.example","y")'


def test_the_history_tabs_rejects_download_escapes_formula_cells_too() -> None:
    """A connection's History tab offers the same download (app_pages/_run_history.py): it
    wrote the partner's `=HYPERLINK(...)` and a file named `=cmd.csv` as they came."""
    from app_pages import _ui

    services = Services()
    services.add_partner("Acme", "vendor")
    draft = Connection("Acme calls", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    services.create_connection(draft, partner="Acme")
    hostile = call_csv(3, prefix="f", overrides={1: {"CampaignId": "@SUM(1+1)*cmd|' /C calc'!A0"}})
    run = services.ingest_bytes("Acme calls", "=cmd.csv", hostile)
    names = {f.id: f.name for f in services.run_files(run.id)}

    rows = list(csv.reader(io.StringIO(_ui.rejects_csv(services.rejects(run.id), names).decode())))

    assert rows[0] == ["File", "Line", "Key", "Column", "Value", "Reason"]
    [reject] = [r for r in rows[1:] if r[3] == "CampaignId"]
    assert reject[0] == "'=cmd.csv"
    assert reject[2] == "f-0001"  # the row's key, as the parser read it
    assert reject[4] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert reject[1] == "3"  # the physical line: the header is line 1, data row 1 is line 3
