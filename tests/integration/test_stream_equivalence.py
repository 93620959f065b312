"""A big file streamed (pipeline/stream.py) ends exactly as the whole parse ends it: the same
run counters, rejects, validation report, actions, stored rows and results-file bytes, when
it loads (as a Parquet part or inserted) and when it is held for review; and the file the
stream wrote never outlives the ingest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from helpers.bench_files import generated_calls

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.parser import api, batches
from connectbatch.pipeline import commit, stream
from connectbatch.services import Services
from connectbatch.settings import Settings
from connectbatch.store import Database
from connectbatch.store import data as data_store


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_calls(tmp_path_factory.mktemp("stream") / "calls.csv", rows=4000, seed=5)


def _ingest(home: Path, path: Path, max_age_days: int) -> dict[str, Any]:
    services = Services(Settings(home=home, lock_timeout=10.0, validation_max_age_days=max_age_days))
    services.create_connection(
        Connection(
            name="Big", data_type="call_conversions", direction=Direction.INBOUND,
            method=Method.SFTP, methodology=Methodology.PUSH, lock_days=3650,
        )
    )  # fmt: skip
    run = services.ingest_file("Big", path)
    [(_file, report)] = services.validation(run.id)
    verdict = _without_clock(json.loads(report.to_json()))
    results = [p for p in services.results_files("Big") if p.name.endswith(".results.csv")]
    actions = services.actions("Big", limit=10_000)
    parts_dir = home / "parts"
    leftovers = sorted(p.name for p in parts_dir.rglob("*.stream")) if parts_dir.exists() else []
    return {
        "run": (run.status, run.review, run.rows_accepted, run.rows_rejected, run.actions_created),
        "rejects": [(r.line, r.column, r.value, r.reason) for r in services.rejects(run.id)],
        "report": verdict,
        "actions": sorted((a.line, a.source_key, a.amount, a.status, a.event_date) for a in actions),
        "results": [p.read_bytes() for p in results],
        # a held batch's file as the review reads it, its schema's marks included
        "held": [
            {k: v for k, v in (pq.read_schema(p).metadata or {}).items() if k != b"ARROW:schema"}
            for p in sorted((home / "runs").rglob("*.parquet"))
        ],
        "leftovers": leftovers,
    }


def _without_clock(value: Any) -> Any:
    """The report without what follows the clock: when it was made, the event-date window."""
    if isinstance(value, dict):
        return {
            k: _without_clock(v)
            for k, v in value.items()
            if k not in ("validated_at", "parameters", "min_value", "max_value")
        }
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


@pytest.mark.parametrize(
    ("max_age_days", "part_rows"),
    [(100_000, 1), (100_000, 10**9), (90, 1)],
    ids=["loaded-as-part", "loaded-into-table", "held-for-review"],
)
def test_a_streamed_file_ends_as_the_whole_parse_ends_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, calls: Path, max_age_days: int, part_rows: int
) -> None:
    monkeypatch.setattr(data_store, "PARQUET_MIN_ROWS", part_rows)
    whole = _ingest(tmp_path / "whole", calls, max_age_days)
    monkeypatch.setattr(stream, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(batches, "BATCH_BYTES", 100_000)  # ~12 batches
    streamed = _ingest(tmp_path / "streamed", calls, max_age_days)
    assert streamed == whole
    assert whole["rejects"] and whole["results"] and not streamed["leftovers"]
    if max_age_days == 90:
        assert whole["report"]["success"] is False and not whole["actions"]
    else:
        assert len(whole["actions"]) == whole["run"][2] > 3900


@pytest.mark.parametrize("part_rows", [1, 10**9], ids=["loaded-as-part", "loaded-into-table"])
def test_records_loaded_meanwhile_are_judged_again_as_the_whole_parse_judges_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, calls: Path, part_rows: int
) -> None:
    """Another load commits five of the file's records between its validation and its load
    (`LoadedMeanwhile`): the file is judged again. The streamed one was judged on the columns
    it had kept for its load (keys, event dates) and failed 16 expectations, 13 of them
    critical, on every other column; the whole parse names only the loaded records."""
    monkeypatch.setattr(data_store, "PARQUET_MIN_ROWS", part_rows)
    pre = api.parse_file(calls, "call_conversions")
    sneaked: list[int] = []
    ready = commit.ready_for_parts

    def meanwhile(db: Database, connection: Connection, computed: Any) -> None:
        if not sneaked:  # before the file's load transaction opens, once an ingest
            sneaked.append(1)
            with db.transaction() as con:
                data_store.insert_rows(
                    con, "call_conversions", run_id=999, file_id=999, connection_id=connection.id,
                    table=pre.table.slice(10, 5), lines=pre.lines.slice(10, 5),
                )  # fmt: skip
        ready(db, connection, computed)

    monkeypatch.setattr(commit, "ready_for_parts", meanwhile)
    whole = _ingest(tmp_path / "whole", calls, 100_000)
    sneaked.clear()
    monkeypatch.setattr(stream, "STREAM_MIN_BYTES", 0)
    monkeypatch.setattr(batches, "BATCH_BYTES", 100_000)
    streamed = _ingest(tmp_path / "streamed", calls, 100_000)
    assert streamed == whole
    assert whole["run"][1] == "quarantined" and not whole["actions"]
    [failed] = [o for o in whole["report"]["outcomes"] if not o["success"]]
    assert "already loaded" in json.dumps(failed)
