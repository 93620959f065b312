"""Why each row of a held batch is held (pipeline/results_held.py): the rows that failed
say what and show their value as the batch holds it; the others name the failing lines."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

from connectbatch.pipeline.results_held import held_reasons
from connectbatch.pipeline.validation import ExpectationOutcome, ValidationReport


def _report(*outcomes: ExpectationOutcome) -> ValidationReport:
    failed = [o for o in outcomes if not o.success]
    return ValidationReport(
        data_type="call_conversions", success=not failed, critical_failures=[o.summary() for o in failed],
        warnings=[], outcomes=list(outcomes), rows_accepted=21, rows_rejected=0,
        validated_at="2026-12-01T00:00:00+00:00", parameters={}, raw={},
    )  # fmt: skip


def _negative(rows: list[int], lines: list[int], count: int | None = None) -> ExpectationOutcome:
    return ExpectationOutcome(
        expectation_type="expect_column_values_to_be_between", columns=["SaleAmount"], severity="critical",
        description="SaleAmount must not be negative.", success=False,
        observed_value={"unexpected_count": count or len(rows), "element_count": 21},
        unexpected_sample=[-5.0] * len(rows), unexpected_rows=rows, unexpected_lines=lines,
    )  # fmt: skip


def _batch(amounts: list[str]) -> tuple[pa.Table, pa.Array]:
    table = pa.table({"SaleAmount": pa.array([Decimal(a) for a in amounts], pa.decimal128(18, 2))})
    return table, pa.array(range(2, 2 + len(amounts)), pa.int64())  # the header is line 1


def test_the_failing_row_says_what_it_failed_and_the_others_name_its_line() -> None:
    table, lines = _batch(["49.99"] * 20 + ["-5.00"])

    held = held_reasons(_report(_negative([20], [22])), table, lines, {"SaleAmount": "amount"}, "")

    assert held.by_line == {22: "held for review: SaleAmount must not be negative (amount -5.00)"}
    assert held.batch == "held for review with the batch: line 22 failed 'SaleAmount must not be negative'"
    assert held.failures == [
        {"expectation": "SaleAmount must not be negative", "columns": ["amount"], "rows_failed": 1,
         "lines": [22], "examples": ["-5.00"]},
    ]  # fmt: skip
    assert held.texts == ["SaleAmount must not be negative. Found 1 of 21 rows (line 22), e.g. -5.00."]


def test_many_failing_rows_are_each_named_and_the_batch_names_the_first_lines() -> None:
    table, lines = _batch(["-1.50"] * 25)

    held = held_reasons(_report(_negative(list(range(25)), list(range(2, 22)))), table, lines, {}, "")

    assert sorted(held.by_line) == list(range(2, 27))  # every failing row, not only the first 20
    assert held.by_line[26] == "held for review: SaleAmount must not be negative (SaleAmount -1.50)"
    assert held.batch.endswith("failed 'SaleAmount must not be negative'")
    assert "lines 2, 3," in held.batch and "(first 20 of 25 rows)" in held.batch


def test_a_row_that_failed_one_rule_still_names_the_other_rule_holding_the_batch() -> None:
    table, lines = _batch(["-5.00", "1.00", "2.00"])
    unique = ExpectationOutcome(
        expectation_type="expect_column_values_to_be_unique", columns=["SaleAmount"], severity="critical",
        description="CallSessionId must be unique.", success=False,
        observed_value={"unexpected_count": 1, "element_count": 3}, unexpected_rows=[2], unexpected_lines=[4],
    )  # fmt: skip

    held = held_reasons(_report(_negative([0], [2]), unique), table, lines, {}, "")

    assert held.by_line[2] == (
        "held for review: SaleAmount must not be negative (SaleAmount -5.00); "
        "also with the batch: line 4 failed 'CallSessionId must be unique'"
    )
    assert held.batch == (
        "held for review with the batch: line 2 failed 'SaleAmount must not be negative'; "
        "line 4 failed 'CallSessionId must be unique'"
    )


def test_without_a_report_every_row_gives_the_holds_message() -> None:
    held = held_reasons(None, None, None, {}, "quarantined: too many rejects")
    assert held.batch == "held for review: quarantined: too many rejects" and held.by_line == {}


def test_a_rule_over_a_column_derived_for_the_check_shows_the_value_it_reported() -> None:
    """The already-loaded rule checks a key column the batch does not hold: its examples in
    the partner's summary were "()", while the run's reason said "gr-1"."""
    table, lines = _batch(["1.00", "2.00"])
    loaded = ExpectationOutcome(
        expectation_type="expect_column_values_to_be_null", columns=["CallSessionId_already_loaded"],
        severity="critical", description="CallSessionId already loaded for this connection.", success=False,
        observed_value={"unexpected_count": 1, "element_count": 2}, unexpected_sample=["gr-1"],
        unexpected_rows=[1], unexpected_lines=[3],
    )  # fmt: skip

    held = held_reasons(_report(loaded), table, lines, {}, "")

    assert held.failures[0]["examples"] == ["gr-1"]
    assert held.texts == [
        "CallSessionId already loaded for this connection. Found 1 of 2 rows (line 3), e.g. gr-1."
    ]


def test_a_time_out_of_the_date_window_says_which_side_it_is_out_on() -> None:
    """It showed "2026-12-07 01:30:00.000000Z" under "must not be in the future, nor more than
    90 days old", leaving the partner to work out which."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ahead, old = now + dt.timedelta(hours=5), now - dt.timedelta(days=120, hours=1)
    table = pa.table({"EventDate": pa.array([ahead, old, now], pa.timestamp("us", tz="UTC"))})
    window = ExpectationOutcome(
        expectation_type="expect_column_values_to_be_between", columns=["EventDate"], severity="critical",
        description="EventDate must not be in the future, nor more than 90 days old.", success=False,
        observed_value={"unexpected_count": 2, "element_count": 3},
        unexpected_rows=[0, 1], unexpected_lines=[2, 3],
    )  # fmt: skip

    held = held_reasons(_report(window), table, pa.array([2, 3, 4], pa.int64()), {}, "")

    assert held.failures[0]["examples"] == [
        f"{ahead:%Y-%m-%d %H:%M:%S} UTC, in the future",
        f"{old:%Y-%m-%d %H:%M:%S} UTC, 120 days old",
    ]
