"""One record type for a rejected row, from the parser to the store: `Reject` (line, column,
value, reason); the stored row adds only where it belongs (run, file) and the row's key as far
as it could be read (migration 026)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from connectbatch.models import RejectRow
from connectbatch.parser.api import Reject
from connectbatch.store import Database
from connectbatch.store import runs as run_store


def test_the_stored_reject_row_is_a_reject_plus_its_run_and_file() -> None:
    assert [f.name for f in fields(RejectRow)] == [
        "run_id",
        "file_id",
        *(f.name for f in fields(Reject) if f.compare),
        "key",
        "qualifier",
    ]  # fmt: skip  (`spans` is the parse's, for the reject rate: not stored)


def test_rejects_read_back_as_they_were_stored(tmp_path: Path) -> None:
    rejects = [
        Reject(3, "CallDuration", "ten", "not a whole number"),
        Reject(7, None, None, "expected 10 fields, saw 9"),
    ]
    db = Database(tmp_path / "cb.duckdb")
    with db.transaction() as con:
        run_store.insert_rejects(con, run_id=1, file_id=2, rejects=rejects)
        run_store.insert_rejects(con, run_id=1, file_id=2, rejects=[])
        stored = run_store.rejects_of_run(con, 1)
    assert [Reject(r.line, r.column, r.value, r.reason) for r in stored] == rejects
    assert {(r.run_id, r.file_id) for r in stored} == {(1, 2)}


def test_a_few_rejects_and_many_are_stored_alike(tmp_path: Path, monkeypatch) -> None:
    """Up to SMALL_LIST rejects go as bound lists (no register/unregister, issue 13), more as
    an Arrow table: both store the same rows, partner bytes (NUL, quotes, bidi marks) intact."""
    rejects = [
        Reject(3, "CallDuration", "te\x00n", "not a whole number"),
        Reject(4, "Campaign_Id", "x'); DROP TABLE runs; --\"", "unknown campaign"),
        Reject(5, "Media", "\u202egnp.exe", "too long"),
        Reject(7, None, None, "expected 10 fields, saw 9"),
    ]
    keys = {3: "cs-\x00'3", 5: "\u202ecs-5"}  # the rows' keys, by line (partner bytes too)
    events = {3: "ev-'3", 7: "ev-7"}  # their VendorEventIds, as far as read
    db = Database(tmp_path / "cb.duckdb")
    with db.transaction() as con:
        run_store.insert_rejects(con, run_id=1, file_id=2, rejects=rejects, keys=keys, qualifiers=events)
        monkeypatch.setattr(run_store, "SMALL_LIST", 0)  # the large path, same rejects
        run_store.insert_rejects(con, run_id=3, file_id=4, rejects=rejects, keys=keys, qualifiers=events)
        small = run_store.rejects_of_run(con, 1)
        large = run_store.rejects_of_run(con, 3)
    assert [Reject(r.line, r.column, r.value, r.reason) for r in small] == rejects
    assert [Reject(r.line, r.column, r.value, r.reason) for r in large] == rejects
    assert [r.key for r in small] == [r.key for r in large] == [keys[3], None, keys[5], None]
    assert [r.qualifier for r in small] == [r.qualifier for r in large] == [events[3], None, None, events[7]]
    assert [r.shown_key for r in small] == [f"{keys[3]} / {events[3]}", None, keys[5], " / ev-7"]


def test_the_rejects_of_one_line_read_back_in_the_order_of_its_columns(tmp_path: Path) -> None:
    """A row with several bad fields (an Excel row of empty cells) lists them in the file's
    column order; sorted by line alone, DuckDB gave them back shuffled, so a results file
    rewritten after a release listed a row's reasons in another order than the one before."""
    columns = [f"Column{i}" for i in range(10)]
    rejects = [Reject(line, c, "", "is required") for line in range(2, 9) for c in columns]
    db = Database(tmp_path / "cb.duckdb")
    with db.transaction() as con:
        run_store.insert_rejects(con, run_id=1, file_id=2, rejects=rejects)
        stored = run_store.rejects_of_run(con, 1)
    assert [(r.line, r.column) for r in stored] == [(r.line, r.column) for r in rejects]
