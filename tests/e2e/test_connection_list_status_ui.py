"""The Connections list's Status column shows only the seed's statuses (None, In Progress,
Completed, Failed). A connection whose batch awaits a reviewer reads Completed there, and its
"Needs review" link to the run sits under its name: in the Status cell the link widened the
column and pushed the row's actions onto a second line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.app_login import log_in
from streamlit.testing.v1 import AppTest

from connectbatch import webapp
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import Services
from tests.helpers import call_csv

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 60
SEED_STATUSES = {"None", "In Progress", "Completed", "Failed"}


@pytest.fixture(autouse=True)
def fresh_engine(app_environment: None) -> Iterator[None]:
    webapp.engine.clear()
    yield
    engine, _ = webapp.engine()
    engine.stop()
    webapp.engine.clear()


def held_connection() -> tuple[int, int]:
    """(connection id, run id) of a connection whose one batch is held for review."""
    services = Services()
    created, _ = services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    run = services.ingest_bytes("Acme", "neg.csv", call_csv(5, overrides={0: {"SaleAmount": "-1"}}))
    assert run.review == "quarantined"
    return created.id, run.id


def find_block(node: Any, key: str) -> Any:
    """The container with Streamlit key `key` under `node` (AppTest has no key lookup for them)."""
    if getattr(node, "proto", None) is not None and str(getattr(node.proto, "id", "")).endswith(f"-{key}"):
        return node
    for child in getattr(node, "children", {}).values():
        found = find_block(child, key)
        if found is not None:
            return found
    return None


def cells(at: AppTest, key: str) -> list[Any]:
    """The columns of the list row (or header) with container key `key`, in order."""
    block = find_block(at.main, key)
    assert block is not None, f"no {key} on the page"
    [columns] = block.children.values()  # the row's one st.columns
    return list(columns.children.values())


def elements(column: Any, kind: str) -> list[Any]:
    return [e for e in column.children.values() if e.type == kind]


def test_a_held_connection_reads_completed_in_status_and_links_to_its_review_under_its_name() -> None:
    connection_id, run_id = held_connection()
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    assert not at.exception, at.exception

    header = [elements(c, "markdown")[0].value.strip("*") for c in cells(at, "list_header")]
    row = cells(at, f"row_{connection_id}")
    assert len(row) == len(header)
    status = row[header.index("Status")]
    assert elements(status, "page_link") == []
    [badge] = [m.value for m in elements(status, "markdown")]
    assert badge.endswith(":green-badge[Completed]")
    assert badge.rsplit("[", 1)[1].rstrip("]") in SEED_STATUSES

    [link] = [e.proto for e in elements(row[header.index("Name")], "page_link")]
    assert link.label == "Needs review"
    assert f"run={run_id}" in link.query_string


def test_the_status_filter_finds_a_held_connection_by_what_it_shows_and_by_needs_review() -> None:
    held_connection()
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()

    for chosen in (["Completed"], ["Needs review"]):
        at.multiselect(key="filter_status").set_value(chosen).run()
        assert not at.exception, at.exception
        assert [c.value for c in at.caption if "connections" in c.value][-1] == "1 of 1 connections"
    at.multiselect(key="filter_status").set_value(["Failed"]).run()
    assert "No connection matches these filters." in [i.value for i in at.info]
