"""Batch validation: each rule a reviewer relies on, the report they read, and the suites on
disk. GX is imported once for the whole session (connectbatch.pipeline.validation caches its context),
so the tests here cost a few hundred milliseconds each after the first."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import pytest

from connectbatch import schemas
from connectbatch.parser.api import ParseResult, parse_bytes
from connectbatch.pipeline import review, validation
from connectbatch.pipeline.validation import ExpectationOutcome, ValidationReport, suites, validate

REPO = Path(__file__).resolve().parents[2]
CC = "call_conversions"
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)  # conftest's rows have EventDate 2026-03-01


class CallCsv(Protocol):  # the conftest builder
    def __call__(self, *rows: Mapping[str, str]) -> bytes: ...


class Calls(Protocol):
    def __call__(self, *rows: Mapping[str, str]) -> ParseResult: ...


@pytest.fixture
def calls(call_csv: CallCsv) -> Calls:
    """Rows (only the cells that matter) -> a parsed call-conversion batch."""

    def run(*rows: Mapping[str, str]) -> ParseResult:
        return parse_bytes(call_csv(*rows), CC)

    return run


def ids(n: int) -> list[dict[str, str]]:
    return [{"CallSessionId": f"cs-{i}"} for i in range(n)]


def check(result: ParseResult, **kw: Any) -> ValidationReport:
    kw.setdefault("now", NOW)
    kw.setdefault("rows_rejected", result.rows_rejected)
    return validate(result.table, CC, **kw)


def failed(report: ValidationReport) -> dict[str, ExpectationOutcome]:
    """Failed outcomes by name, e.g. 'expect_column_values_to_be_null(CallSessionId)'."""
    return {o.name: o for o in report.outcomes if not o.success}


UNIQUE = "expect_compound_columns_to_be_unique(CallSessionId, VendorEventId)"
TALK = "expect_column_pair_values_a_to_be_greater_than_b(CallDuration, TalkDuration)"
IVR = "expect_column_pair_values_a_to_be_greater_than_b(CallDuration, IvrDuration)"
EVENT_DATE = "expect_column_values_to_be_between(EventDate)"
SALE = "expect_column_values_to_be_between(SaleAmount)"
LOADED = "expect_column_values_to_be_null(CallSessionId_already_loaded)"
REJECT_RATE = "connectbatch_reject_rate_below()"


# ------------------------------------------------------------------ verdicts


def test_clean_batch_passes_every_expectation(calls: Calls) -> None:
    rows = [
        {**ids(3)[0], "SaleAmount": "$1,234.50", "CallStatus": "answer", "IvrDuration": "12"},
        {**ids(3)[1], "CallDuration": "60", "TalkDuration": "60", "CallerPhoneNumberCountry": "ca"},
        ids(3)[2],
    ]
    report = check(calls(*rows))
    assert report.success
    assert report.critical_failures == [] and report.warnings == [] and report.reason == ""
    assert all(o.success for o in report.outcomes)
    suite = validation.load_suite(CC)
    assert len(report.outcomes) == len(suite["expectations"]) + 1  # + the reject rate
    assert [o.expectation_id for o in report.outcomes[:-1]] == [
        e["id"] for e in suite["expectations"]
    ]  # suite order, not GX's
    sale = next(o for o in report.outcomes if o.name == SALE)
    assert sale.observed_value["max"] == 1234.5  # decimals reach GX as numbers


def test_duplicate_call_session_id_fails_critical_with_the_duplicates_in_the_sample(
    calls: Calls,
) -> None:
    result = calls({"CallSessionId": "dup"}, {"CallSessionId": "ok"}, {"CallSessionId": "dup"})
    report = check(result)
    assert not report.success
    outcome = failed(report)[UNIQUE]
    assert outcome.severity == "critical"
    assert outcome.unexpected_sample == [{"CallSessionId": "dup", "VendorEventId": None}] * 2
    assert outcome.unexpected_rows == [0, 2]
    assert [result.lines[i].as_py() for i in outcome.unexpected_rows] == [2, 4]  # file lines
    assert outcome.observed_value["unexpected_count"] == 2
    assert any("must be unique" in f and 'e.g. "dup", "dup".' in f for f in report.critical_failures)
    assert review.sample(outcome) == "dup, dup"


def test_a_call_and_its_conversion_events_share_the_call_session_id(calls: Calls) -> None:
    """The spec's VendorEventId is "unique for call event and unique for the conversion
    event": one call's rows share the CallSessionId and differ in VendorEventId (Invoca's
    complete_call_id and transaction_id). Only a repeated pair is a duplicate."""
    call = {"CallSessionId": "call-1", "VendorEventId": "ev-call"}
    sale = {"CallSessionId": "call-1", "VendorEventId": "ev-sale"}
    report = check(calls(call, sale, {"CallSessionId": "call-2"}))
    assert report.success, report.critical_failures
    repeated = check(calls(call, sale, dict(sale)))
    assert failed(repeated)[UNIQUE].unexpected_rows == [1, 2]
    # an event id of one call may be reused by another call: the pair identifies the event
    assert check(calls(call, {"CallSessionId": "call-2", "VendorEventId": "ev-call"})).success
    # without an event id, two rows of one call are still a repeat
    assert not check(calls({"CallSessionId": "c"}, {"CallSessionId": "c"})).success


def test_an_event_already_loaded_is_told_from_another_event_of_its_call(calls: Calls) -> None:
    from connectbatch.schemas import record_key

    batch = calls(
        {"CallSessionId": "call-1", "VendorEventId": "ev-call"},
        {"CallSessionId": "call-1", "VendorEventId": "ev-sale"},
        {"CallSessionId": "call-1"},
    )
    loaded = record_key.texts(schemas.get(CC), batch.table).to_pylist()
    report = check(batch, already_loaded=[loaded[0]])
    outcome = failed(report)[LOADED]
    assert outcome.unexpected_rows == [0] and outcome.unexpected_sample == ["call-1 / ev-call"]
    assert "CallSessionId with VendorEventId already loaded" in outcome.description
    plain = failed(check(batch, already_loaded=[loaded[2]]))[LOADED]
    assert plain.unexpected_rows == [2] and plain.unexpected_sample == ["call-1"]


def test_talk_duration_longer_than_call_duration_warns(calls: Calls) -> None:
    """A warning, not a hold: the spec relates no two durations and vendors round them."""
    report = check(calls({**ids(2)[0], "CallDuration": "60", "TalkDuration": "61"}, ids(2)[1]))
    assert report.success and report.warnings
    outcome = failed(report)[TALK]
    assert outcome.severity == "warning"
    assert outcome.unexpected_sample == [[60, 61]]
    assert outcome.unexpected_rows == [0]


def test_event_dates_in_the_future_or_older_than_the_window_fail(calls: Calls) -> None:
    future = (NOW + timedelta(hours=1)).isoformat()
    stale = (NOW - timedelta(days=91)).isoformat()
    a, b, c = ids(3)
    report = check(calls({**a, "EventDate": future}, b, {**c, "EventDate": stale}))
    assert not report.success
    outcome = failed(report)[EVENT_DATE]
    assert outcome.unexpected_rows == [0, 2]
    assert outcome.unexpected_sample == [
        "2026-03-15T13:00:00+00:00",
        "2025-12-14T12:00:00+00:00",
    ]
    assert outcome.kwargs["min_value"].startswith("2025-12-15T12:00:00")  # NOW - 90 days
    assert outcome.kwargs["max_value"].startswith("2026-03-15T12:05:00")  # NOW + CLOCK_SKEW
    assert outcome.observed_value["min"] == "2025-12-14T12:00:00+00:00"
    assert report.parameters["max_age_days"] == 90


def test_an_event_date_a_minute_ahead_of_our_clock_passes(calls: Calls) -> None:
    # Found with a partner whose clock ran a minute fast: a call that had just ended, sent at
    # once, held the whole batch as "in the future". A few minutes' skew is tolerated.
    a, b = ids(2)
    ahead = calls({**a, "EventDate": (NOW + timedelta(minutes=1)).isoformat()}, b)
    assert check(ahead).success
    later = calls({**a, "EventDate": (NOW + timedelta(minutes=10)).isoformat()}, b)
    assert failed(check(later))[EVENT_DATE].unexpected_rows == [0]


def test_event_date_window_follows_now_and_max_age_days(calls: Calls) -> None:
    result = calls({"EventDate": "2025-12-01T00:00:00Z"})
    assert not check(result).success
    assert check(result, max_age_days=120).success
    assert not check(result, now=datetime(2025, 11, 30)).success  # naive "now" is UTC


def test_the_window_is_told_in_days_not_by_a_setting_name(calls: Calls) -> None:
    """The description reaches partners (quarantine reasons, results files): it said
    "(max_age_days before the time of validation)", a name they cannot look up."""
    result = calls({"EventDate": "2025-12-01T00:00:00Z"})
    for days in (90, 45):
        [outcome] = [o for o in check(result, max_age_days=days).outcomes if o.name == EVENT_DATE]
        assert "max_age_days" not in outcome.description
        assert f"more than {days} days old" in outcome.description
        assert f"more than {days} days old" in outcome.summary()


def test_negative_sale_amount_fails(calls: Calls) -> None:
    report = check(calls({**ids(2)[0], "SaleAmount": "-12.50"}, {**ids(2)[1], "SaleAmount": "0"}))
    assert not report.success
    outcome = failed(report)[SALE]
    assert outcome.severity == "critical"
    assert outcome.unexpected_sample == [-12.5]
    assert outcome.unexpected_rows == [0]


def test_already_loaded_call_session_ids_fail(calls: Calls) -> None:
    result = calls(*ids(3))
    report = check(result, already_loaded=["cs-2", "cs-0", "not-in-this-batch"])
    assert not report.success
    outcome = failed(report)[LOADED]
    assert outcome.severity == "critical"
    assert outcome.unexpected_sample == ["cs-0", "cs-2"]
    assert outcome.unexpected_rows == [0, 2]
    assert "CallSessionId with VendorEventId already loaded for this connection" in outcome.description
    # the partner reads it in the results file: no name of our helper column
    assert "_already_loaded" not in outcome.summary()
    assert check(result, already_loaded=["elsewhere"]).success
    assert not any(o.name == LOADED for o in check(result).outcomes)  # no ids, no rule


def test_reject_rate_above_the_threshold_fails(calls: Calls) -> None:
    result = calls(*ids(3), {"CallSessionId": "cs-9", "CampaignId": "abc"})  # 1 of 4 rejected
    assert result.rows_rejected == 1
    report = check(result)
    assert not report.success
    outcome = failed(report)[REJECT_RATE]
    assert outcome.severity == "critical"
    assert outcome.observed_value["reject_rate"] == 0.25
    assert "1 of 4 rows rejected" in report.critical_failures[0]
    assert check(result, max_reject_rate=0.25).success


def test_warnings_are_listed_but_do_not_block(calls: Calls) -> None:
    report = check(
        calls(
            {**ids(2)[0], "CallDuration": "90000", "TalkDuration": "100"},
            {**ids(2)[1], "CallDuration": "60", "TalkDuration": "30", "IvrDuration": "75"},
        )
    )
    assert report.success
    assert report.critical_failures == []
    assert len(report.warnings) == 2
    assert {IVR, "expect_column_values_to_be_between(CallDuration)"} == set(failed(report))
    assert all(o.severity == "warning" for o in failed(report).values())


def test_empty_batch_passes_unless_every_row_was_rejected(call_csv: CallCsv) -> None:
    empty = parse_bytes(call_csv(), CC)
    assert empty.table.num_rows == 0
    assert check(empty).success
    report = check(empty, rows_rejected=3)
    assert not report.success and list(failed(report)) == [REJECT_RATE]


def test_report_round_trips_through_json(calls: Calls) -> None:
    report = check(calls({"CallSessionId": "a"}, {"CallSessionId": "a", "SaleAmount": "-1"}),
                   already_loaded=["a"])  # fmt: skip
    text = report.to_json()
    again = ValidationReport.from_json(text)
    assert again == report
    assert again.to_json() == text
    assert again.raw["success"] is False and len(again.raw["results"]) == len(report.outcomes) - 1


def test_parallel_validations_do_not_mix_batches(calls: Calls) -> None:
    good, bad = calls(*ids(2)), calls({"CallSessionId": "x"}, {"CallSessionId": "x"})
    reports: dict[str, ValidationReport] = {}

    def run(name: str, result: ParseResult) -> None:
        reports[name] = check(result)

    threads = [threading.Thread(target=run, args=a) for a in [("good", good), ("bad", bad)]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reports["good"].success and not reports["bad"].success


def test_every_data_type_template_row_passes_its_suite() -> None:
    for key, dt in schemas.REGISTRY.items():
        result = parse_bytes(dt.template_csv(NOW).encode(), key)  # dated the day before NOW
        report = validate(result.table, key, now=NOW)
        assert report.success, (key, report.critical_failures)
        assert not [o for o in report.outcomes if o.exception], key


# ------------------------------------------------------------------ suites on disk


def generator() -> ModuleType:
    path = REPO / "scripts" / "generate_expectations.py"
    spec = importlib.util.spec_from_file_location("generate_expectations", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_suites_equal_the_generator_output() -> None:
    gen = generator()
    for key in schemas.REGISTRY:
        path = REPO / "expectations" / f"{key}.json"
        assert path.is_file(), f"{path} is missing: run scripts/generate_expectations.py"
        assert path.read_text(encoding="utf-8") == gen.render(key), (
            f"{path.name} is stale: run scripts/generate_expectations.py"
        )
    assert sorted(p.stem for p in (REPO / "expectations").glob("*.json")) == sorted(schemas.REGISTRY)


def test_every_expectation_has_a_severity_a_description_and_a_stable_id() -> None:
    for key in schemas.REGISTRY:
        suite = validation.build_suite(key)
        assert suite == validation.build_suite(key)
        seen = set()
        for exp in suite["expectations"]:
            assert exp["meta"]["severity"] in ("critical", "warning"), exp
            assert exp["severity"] == exp["meta"]["severity"]
            assert exp["meta"]["description"].endswith("."), exp
            assert exp["id"] not in seen
            seen.add(exp["id"])


def test_call_conversion_suite_has_the_hand_written_rules() -> None:
    by_name = {
        f"{e['type']}({', '.join(suites.columns(e['kwargs']))})": e
        for e in validation.build_suite(CC)["expectations"]
    }
    assert by_name[UNIQUE]["meta"]["severity"] == "critical"
    assert by_name[TALK]["kwargs"]["or_equal"] is True
    assert by_name[IVR]["meta"]["severity"] == "warning"
    assert by_name[SALE]["kwargs"] == {"column": "SaleAmount", "min_value": 0}
    assert by_name[EVENT_DATE]["kwargs"]["max_value"] == {"$PARAMETER": "max_event_date"}
    for col in ("CallDuration", "TalkDuration"):
        exp = by_name[f"expect_column_values_to_be_between({col})"]
        assert exp["kwargs"]["max_value"] == 86_400 and exp["meta"]["severity"] == "warning"
    status = by_name["expect_column_values_to_be_in_set(CallStatus)"]
    assert status["kwargs"]["value_set"] == list(schemas.CALL_STATUSES)
    # CallerId may be empty in an UNKNOWN_CALLERID call: the parser checks it row by row
    required = {c.name for c in schemas.CALL_CONVERSIONS.columns if c.required and c.empty_when is None}
    assert "CallerId" not in required and "CallerId" in schemas.CALL_CONVERSIONS.required_columns
    not_null = {n[len("expect_column_values_to_not_be_null(") : -1] for n in by_name
                if n.startswith("expect_column_values_to_not_be_null(")}  # fmt: skip
    assert not_null == required


# ------------------------------------------------------------------ process behaviour

OFFLINE_SCRIPT = """
import datetime, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args[1:] or args)
    raise OSError("network disabled by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.getaddrinfo = refuse
socket.create_connection = refuse

from connectbatch.pipeline import review, validation
from connectbatch.pipeline.validation import suites
from connectbatch.parser.api import parse_bytes
assert "great_expectations" not in sys.modules, "importing validation must not import GX"
validation.build_suite("call_conversions")
assert "great_expectations" not in sys.modules, "build_suite must not import GX"
data = b"CampaignId,MediaId,EventDate,ActionTrackerId,CallProvider,CallSessionId,CallerId,"
data += b"CalledPhoneNumber,CallDuration,TalkDuration\\n1,2,2026-03-01T00:00:00Z,3,x,a,1,2,9,8\\n"
result = parse_bytes(data, "call_conversions")
now = datetime.datetime(2026, 3, 2)
report = validation.validate(result.table, "call_conversions", now=now)
assert report.success, report.critical_failures
assert attempts == [], attempts
print("offline ok")
"""


@pytest.mark.slow
def test_validation_works_offline_and_gx_is_imported_only_when_validating() -> None:
    """A fresh process (GX's import included) with every socket connect refused: a network
    call would show up in `attempts` or, on a machine without internet, as a hang."""
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "offline ok" in done.stdout
    assert "Calculating Metrics" not in done.stderr  # GX's tqdm bars are off


def test_report_json_is_plain_json() -> None:
    outcome = ExpectationOutcome("t", ["c"], "warning", "d.", False, {"unexpected_count": 1})
    report = ValidationReport(CC, True, [], [outcome.summary()], [outcome], 1, 0, "x", {}, {})
    assert json.loads(report.to_json())["outcomes"][0]["severity"] == "warning"


def test_validation_reads_the_committed_suites_not_a_regenerated_copy() -> None:
    """The suites folder is the repository's expectations/ (a module moved one level deeper
    once pointed it at a folder that does not exist, and the generator's output was used)."""
    assert validation.suite_path(CC) == REPO / "expectations" / f"{CC}.json"
    assert validation.suite_path(CC).is_file()


# ------------------------------------------------------------------ failing rows' file lines


def test_failed_expectations_name_the_file_lines_of_their_rows(calls: Calls) -> None:
    """Line numbers come from the batch's `lines`, so a parser reject (line 3 here) or a
    multi-line field does not shift them: the reviewer opens the file where GX pointed."""
    result = calls(
        {"CallSessionId": "dup"},
        {"CallSessionId": "bad", "CampaignId": "x"},  # line 3: rejected by the parser
        {"CallSessionId": "ok", "CallProvider": "two\nlines"},  # lines 4-5
        {"CallSessionId": "dup", "CallDuration": "60", "TalkDuration": "61"},  # line 6
    )
    assert result.lines.to_pylist() == [2, 4, 6]
    report = check(result, lines=result.lines)
    assert failed(report)[UNIQUE].unexpected_lines == [2, 6]
    assert failed(report)[TALK].unexpected_lines == [6]
    assert failed(report)[UNIQUE].lines_text() == "2, 6"
    assert all(o.unexpected_lines == [] for o in report.outcomes if o.success)
    again = ValidationReport.from_json(report.to_json())
    stored = json.loads(report.to_json())["outcomes"]
    assert [o["unexpected_lines"] for o in stored if not o["success"]] == [[2, 6], [6], []]
    assert again == report


def test_failed_rows_lines_keep_the_first_twenty_and_say_how_many_failed(calls: Calls) -> None:
    rows = [{**row, "CallDuration": "60", "TalkDuration": "61"} for row in ids(31)]
    report = check(calls(*rows, *ids(40)[31:]), lines=calls(*rows, *ids(40)[31:]).lines)
    outcome = failed(report)[TALK]
    assert outcome.unexpected_lines == list(range(2, 22))
    assert outcome.lines_text().endswith(", 21, … (first 20 of 31 rows)")


def test_lines_must_match_the_batch(calls: Calls) -> None:
    with pytest.raises(ValueError, match="lines has 1 entries for a batch of 2 rows"):
        check(calls(*ids(2)), lines=[2])


def test_a_report_stored_before_line_numbers_still_loads() -> None:
    outcome = ExpectationOutcome("t", ["c"], "warning", "d.", False, {"unexpected_count": 1})
    data = json.loads(ValidationReport(CC, True, [], [], [outcome], 1, 0, "x", {}, {}).to_json())
    del data["outcomes"][0]["unexpected_lines"]
    again = ValidationReport.from_json(json.dumps(data))
    assert again.outcomes[0].unexpected_lines == [] and again.outcomes[0].lines_text() == ""


def test_review_table_shows_the_failing_lines(calls: Calls) -> None:
    result = calls({"CallSessionId": "dup"}, {"CallSessionId": "dup"})
    rows = review.outcome_rows(check(result, lines=result.lines))
    assert rows[0]["Lines"] == "2, 3"
    assert all(row["Lines"] == "" for row in rows[1:])


@pytest.mark.parametrize("engine", ["columnar", "gx"])
def test_validating_leaves_the_cached_suite_as_it_was(calls: Calls, engine: str) -> None:
    """The suite is read once per process and no longer deep-copied for every batch: neither
    the run-time rule nor a change to a report's raw result may reach the cached suite."""
    before = json.dumps(suites.load_suite(CC), sort_keys=True)
    report = check(calls(*ids(2)), already_loaded=["cs-1"], engine=engine)
    for r in report.raw["results"]:
        r["expectation_config"]["meta"]["severity"] = "changed"
        r["expectation_config"]["kwargs"].clear()
    assert json.dumps(suites.load_suite(CC), sort_keys=True) == before
    assert not any(o.name == LOADED for o in check(calls(*ids(2)), engine=engine).outcomes)


def test_review_table_names_the_already_loaded_rule_by_the_record_identity(calls: Calls) -> None:
    """The rule is about an event of a call (CallSessionId with VendorEventId), not the call:
    its Columns cell said CallSessionId, which another event of the same call shares."""
    report = check(calls(*ids(2)), already_loaded=["cs-1"])
    [row] = [r for r in review.outcome_rows(report) if "already loaded" in r["Expectation"]]
    assert row["Columns"] == "CallSessionId with VendorEventId"
