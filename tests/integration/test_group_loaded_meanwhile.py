"""Group commit asks again, inside its load transaction, whether the files' records were
loaded meanwhile (`commit.still_new`), as a file alone does: the group's "already loaded"
check runs before the load, and a push of the same records may load in between (found by an
audit with two real processes for single files; the group had the same gap)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import call_csv
from helpers.store import count

from connectbatch.models import RunStatus
from connectbatch.pipeline import group, staging
from connectbatch.services import Services


def test_records_loaded_between_the_check_and_the_group_load_are_not_loaded_twice(
    services: Services, make_connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_connection("Acme")
    first, second = tmp_path / "calls_a.csv", tmp_path / "calls_b.csv"
    first.write_bytes(call_csv(5, prefix="a"))
    second.write_bytes(call_csv(4, prefix="b"))
    other = tmp_path / "calls_a_crlf.csv"  # the same records as `first`, other bytes
    other.write_bytes(call_csv(5, prefix="a").replace(b"\n", b"\r\n"))
    settle = staging.settle
    raced: list[Any] = []

    def meanwhile(sha256: str) -> None:  # the group settles its copies right before its load
        if not raced:
            raced.append(None)  # once: the push's own settle comes through here too
            raced[0] = services.ingest_file("Acme", other, trigger="push")
        settle(sha256)

    monkeypatch.setattr(group.staging, "settle", meanwhile)
    runs = services.ingest_files("Acme", [first, second])

    assert raced and raced[0].status is RunStatus.COMPLETED and raced[0].actions_created == 5
    statuses = sorted(r.status.value for r in runs)
    assert statuses == [RunStatus.COMPLETED.value, RunStatus.NEEDS_REVIEW.value], [r.reason for r in runs]
    assert count(services, "actions") == 5 + 4  # `first`'s records once (the push's), `second`'s
