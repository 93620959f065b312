"""The file, review and after-success states live once, as enums in connectbatch.models: the
database stores their values, and neither the pipeline nor the store spells them out again."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import pytest

import connectbatch
from connectbatch.models import AfterSuccess, FileState, ReviewState
from connectbatch.store import Database
from connectbatch.store import runs as run_store

PACKAGE = Path(connectbatch.__file__).parent
SCHEMA = (PACKAGE / "store" / "migrations" / "001_init.sql").read_text(encoding="utf-8")


def _documented(column: str) -> set[str]:
    """The values the schema's comment lists for a column (`-- a | b | c`)."""
    match = re.search(rf"^\s*{column}\s+VARCHAR[^\n]*--\s*([^\n]+)$", SCHEMA, re.MULTILINE)
    assert match, column
    return {v.strip() for v in match[1].split("|")} - {"NULL"}


@pytest.mark.parametrize(
    ("column", "enum"), [("state", FileState), ("review", ReviewState), ("after_success", AfterSuccess)]
)
def test_every_stored_value_is_a_member_of_its_enum(column: str, enum: type[StrEnum]) -> None:
    assert _documented(column) == {m.value for m in enum}


def test_pipeline_and_store_spell_no_state_out_as_a_string() -> None:
    values = {m.value for e in (FileState, ReviewState, AfterSuccess) for m in e}
    quoted = re.compile("[\"'](" + "|".join(sorted(values)) + ")[\"']")
    sources = [*(PACKAGE / "pipeline").rglob("*.py"), *(PACKAGE / "store").glob("*.py")]
    found = {
        f"{p.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for p in sources
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if quoted.search(line)
    }
    assert found == set(), "use the enums in connectbatch.models"


def test_ledger_and_runs_read_back_as_enums_and_refuse_unknown_states(tmp_path: Path) -> None:
    db = Database(tmp_path / "cb.duckdb")
    with db.transaction() as con:
        run = run_store.create(con, connection_id=1, trigger="cli", owner=(None, 1, None))
        run_store.set_review(con, run.id, ReviewState.QUARANTINED, None)
        record = run_store.record_file(
            con, connection_id=1, run_id=run.id, name="a.csv", source="cli", size=1, sha256="x",
            state="skipped",
        )  # fmt: skip
        with pytest.raises(ValueError):
            run_store.record_file(
                con, connection_id=1, run_id=run.id, name="b.csv", source="cli", size=1, sha256="y",
                state="sideways",
            )  # fmt: skip
        assert record.state is FileState.SKIPPED
        assert run_store.get(con, run.id).review is ReviewState.QUARANTINED
        assert [r.id for r in run_store.quarantined(con)] == [run.id]
