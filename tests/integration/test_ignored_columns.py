"""A file's columns that the connection does not read (not in its data type's format, not
mapped) are named on its run and in the partner's summary: a misnamed revenue column
("Revenue" for SaleAmount) loaded every row with no amount, ACCEPTED, and nobody was told."""

from __future__ import annotations

from pathlib import Path

from helpers import call_csv
from helpers.store import results_of

from connectbatch.models import RunStatus
from connectbatch.services import Services


def with_columns(data: bytes, names: str, values: str) -> bytes:
    header, *rows = data.replace(b"\r\n", b"\n").rstrip(b"\n").split(b"\n")
    return b"\n".join([header + names.encode(), *(r + values.encode() for r in rows)]) + b"\n"


def test_a_column_not_read_is_named_on_the_run_and_in_the_summary(
    services: Services, make_connection
) -> None:
    make_connection("Acme")
    data = with_columns(call_csv(2), ",Revenue,CurrencyCode", ",99.00,EUR")

    run = services.ingest_bytes("Acme", "calls.csv", data)

    assert run.status is RunStatus.COMPLETED
    assert run.reason == (
        "calls.csv: columns not read (not in the Call conversions format, nor mapped): Revenue, CurrencyCode"
    )
    _rows, summary = results_of(services, "Acme", run.id)
    assert summary["ignored_columns"] == ["Revenue", "CurrencyCode"]


def test_a_file_reading_every_column_has_no_remark(services: Services, make_connection) -> None:
    make_connection("Acme")
    run = services.ingest_bytes("Acme", "calls.csv", call_csv(2))
    assert run.reason is None
    assert results_of(services, "Acme", run.id)[1]["ignored_columns"] == []


def test_files_loaded_together_each_name_their_own(
    services: Services, make_connection, tmp_path: Path
) -> None:
    make_connection("Acme")
    paths = []
    for i, extra in enumerate(["Revenue", "", "Notes"]):
        data = call_csv(2, prefix=f"f{i}")
        path = tmp_path / f"f{i}.csv"
        path.write_bytes(with_columns(data, f",{extra}", ",x") if extra else data)
        paths.append(path)

    runs = services.ingest_files("Acme", paths)

    assert [r.status for r in runs] == [RunStatus.COMPLETED] * 3
    assert [r.reason for r in runs] == [
        "f0.csv: columns not read (not in the Call conversions format, nor mapped): Revenue",
        None,
        "f2.csv: columns not read (not in the Call conversions format, nor mapped): Notes",
    ]
