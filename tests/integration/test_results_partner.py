"""Issue 11, defects 5, 6 and 8, through the services façade: results files in the partner's
words (their header names, the ActionId, a line for whole-file outcomes, why a batch is
held), events already past their lock period (lock or refuse, per connection), and a held
batch that reads "Needs review", not "Failed"."""

from __future__ import annotations

import datetime as dt

from connectbatch.models import ActionStatus, ConnectionStatus, Redelivery, RunStatus
from connectbatch.services import Services
from tests.helpers import CALL_COLUMNS, call_csv, call_rows, fresh_date, iso, modifications_csv, to_csv
from tests.helpers.store import count, results_of

N = 6


def _renamed(columns: dict[str, str], n: int = N, **kwargs: object) -> bytes:
    """A call file whose header spells some columns the partner's way."""
    rows = [{columns.get(k, k): v for k, v in row.items()} for row in call_rows(n, **kwargs)]  # type: ignore[arg-type]
    return to_csv(rows, [columns.get(c, c) for c in CALL_COLUMNS])


# ------------------------------------------------------------------ defect 6: results files


def test_results_use_the_partners_own_header_and_carry_the_action_id(
    services: Services, make_connection
) -> None:
    make_connection("Acme")
    run = services.ingest_bytes("Acme", "calls.csv", _renamed({"CallSessionId": "callsessionid"}))
    assert run.status is RunStatus.COMPLETED, run.reason

    rows, _ = results_of(services, "Acme", run.id)

    assert list(rows[0]) == ["Line", "callsessionid", "VendorEventId", "ActionId", "Status", "Reason"]
    labels = {a.source_key: a.label for a in services.actions("Acme")}
    assert len(labels) == N
    for row in rows:
        assert row["Status"] == "ACCEPTED"
        assert row["ActionId"] == labels[row["callsessionid"]]  # A-000123, as pending actions show it
        assert row["ActionId"].startswith("A-") and len(row["ActionId"]) == 8


def test_a_mapped_column_comes_back_under_the_partners_name(services: Services, make_connection) -> None:
    make_connection("Mapped", column_map={"session": "CallSessionId"})
    bad = {2: {"CallDuration": "abc"}}
    run = services.ingest_bytes("Mapped", "calls.csv", _renamed({"CallSessionId": "session"}, overrides=bad))

    rows, _ = results_of(services, "Mapped", run.id)

    assert "session" in rows[0] and "CallSessionId" not in rows[0]
    rejected = next(r for r in rows if r["Status"] == "REJECTED")
    assert rejected["session"] == "cs-0002" and rejected["ActionId"] == ""
    assert "CallDuration" in rejected["Reason"]


def test_a_duplicate_file_gets_a_results_file_that_says_so(services: Services, make_connection) -> None:
    make_connection("Acme")
    data = call_csv(N)
    services.ingest_bytes("Acme", "calls.csv", data)
    again = services.ingest_bytes("Acme", "calls-again.csv", data)

    rows, summary = results_of(services, "Acme", again.id)

    assert summary["status"] == "duplicate"
    [row] = rows  # one line about the whole file, not an empty file
    assert (row["Line"], row["Status"], row["CallSessionId"]) == ("0", "DUPLICATE", "")
    assert "calls.csv" in row["Reason"]


def test_a_header_only_file_gets_a_line_zero_saying_it_held_no_rows(
    services: Services, make_connection
) -> None:
    make_connection("Acme")
    run = services.ingest_bytes("Acme", "header_only.csv", to_csv([], CALL_COLUMNS))
    assert run.status is RunStatus.COMPLETED, run.reason

    rows, summary = results_of(services, "Acme", run.id)

    [row] = rows
    assert (row["Line"], row["Status"], row["CallSessionId"]) == ("0", "ACCEPTED", "")
    assert "no data rows" in row["Reason"] and row["Reason"] == summary["message"]
    assert (summary["status"], summary["rows_accepted"]) == ("loaded", 0)


def test_a_wrong_header_gets_a_file_level_line(services: Services, make_connection) -> None:
    make_connection("Acme")
    run = services.ingest_bytes("Acme", "export.csv", b"Date,Caller,Duration\r\n2026-03-01,+15550001,63\r\n")

    rows, summary = results_of(services, "Acme", run.id)

    assert summary["status"] == "rejected"
    [row] = rows
    assert (row["Line"], row["Status"]) == ("0", "FILE_REJECTED")
    assert "header" in row["Reason"] and row["Reason"] == summary["message"]


def test_held_rows_say_which_line_failed_which_expectation(services: Services, make_connection) -> None:
    """The failing row (line 3) carries the expectation and its amount as sent; every other
    row says it waits for the batch and names line 3; the summary names the line too."""
    make_connection("Acme")
    run = services.ingest_bytes("Acme", "neg.csv", call_csv(N, overrides={1: {"SaleAmount": "-5.00"}}))
    assert run.review == "quarantined"

    rows, summary = results_of(services, "Acme", run.id)

    assert {r["Status"] for r in rows} == {"QUARANTINED"}
    reasons = {r["Line"]: r["Reason"] for r in rows}
    assert reasons.pop("3") == "held for review: SaleAmount must not be negative (SaleAmount -5.00)"
    assert set(reasons.values()) == {
        "held for review with the batch: line 3 failed 'SaleAmount must not be negative'"
    }
    [failure] = summary["validation"]["failures"]
    assert (failure["lines"], failure["rows_failed"], failure["examples"]) == ([3], 1, ["-5.00"])
    assert summary["validation"]["critical_failures"] == [
        f"SaleAmount must not be negative. Found 1 of {N} rows (line 3), e.g. -5.00."
    ]
    assert "(line 3)" in summary["message"] and "-5.0." not in summary["message"]


def test_after_release_the_results_keep_the_partners_header_and_name_the_actions(
    services: Services, make_connection
) -> None:
    make_connection("Acme")
    # held for a phone number a spreadsheet mangled (a negative amount would stay out on release)
    data = _renamed({"CallSessionId": "callSessionId"}, overrides={1: {"CallerId": "1.55512E+10"}})
    held = services.ingest_bytes("Acme", "neg.csv", data)
    assert held.review == "quarantined"

    services.release(held.id, note="ok", actor="bob")

    rows, _ = results_of(services, "Acme", held.id)
    labels = {a.source_key: a.label for a in services.actions("Acme")}
    assert "callSessionId" in rows[0]
    assert [r["ActionId"] for r in rows] == [labels[r["callSessionId"]] for r in rows]
    assert {r["Status"] for r in rows} == {"ACCEPTED"}


def test_a_formula_in_a_key_or_header_is_neutralised(services: Services, make_connection) -> None:
    make_connection("Acme", column_map={"=cmd|x": "CallSessionId"})
    data = _renamed({"CallSessionId": "=cmd|x"}, overrides={0: {"CallSessionId": "=HYPERLINK(1)"}})
    run = services.ingest_bytes("Acme", "calls.csv", data)

    rows, _ = results_of(services, "Acme", run.id)

    assert "'=cmd|x" in rows[0]
    assert rows[0]["'=cmd|x"] == "'=HYPERLINK(1)"


# ------------------------------------------------------------------ defect 5: late events


def _late_file(lock_days: int) -> bytes:
    """Rows 0-1 older than the lock period (still inside validation's 90 days), 2-5 fresh."""
    old = iso(fresh_date(lock_days + 10))
    return call_csv(N, overrides={0: {"EventDate": old}, 1: {"EventDate": old}})


def test_late_events_are_created_locked_with_a_reason(services: Services, make_connection) -> None:
    make_connection("Acme", lock_days=30)
    run = services.ingest_bytes("Acme", "calls.csv", _late_file(30))
    assert run.status is RunStatus.COMPLETED, run.reason
    assert run.actions_created == N

    by_key = {a.source_key: a for a in services.actions("Acme")}
    late = [by_key["cs-0000"], by_key["cs-0001"]]
    assert all(a.status is ActionStatus.LOCKED for a in late)
    assert all(a.reason == "event older than the 30-day lock period" for a in late)
    assert {a.status for a in by_key.values() if a not in late} == {ActionStatus.PENDING}
    [entry] = services.audit(late[0].id)
    assert (entry.change, entry.new_status, entry.reason) == (
        "lock", "LOCKED", "event older than the 30-day lock period",
    )  # fmt: skip
    assert services.lock_actions() == 0  # nothing was left PENDING past its lock

    [(_, report)] = services.validation(run.id)
    assert report.success
    [outcome] = [o for o in report.outcomes if o.expectation_type == "connectbatch_events_within_lock_period"]
    assert not outcome.success and outcome.severity == "warning"
    assert outcome.observed_value["unexpected_count"] == 2
    assert any("30-day lock period" in w for w in report.warnings)

    rows, _ = results_of(services, "Acme", run.id)
    reasons = {r["CallSessionId"]: r["Reason"] for r in rows}
    assert reasons["cs-0000"] == "action created LOCKED: event older than the 30-day lock period"
    assert reasons["cs-0002"] == ""


def test_late_events_are_refused_when_the_connection_says_so(services: Services, make_connection) -> None:
    make_connection("Strict", lock_days=30, late_events="refuse")
    run = services.ingest_bytes("Strict", "calls.csv", _late_file(30))
    assert run.status is RunStatus.COMPLETED, run.reason
    assert (run.rows_accepted, run.rows_rejected, run.actions_created) == (N - 2, 2, N - 2)
    assert count(services, "call_conversions") == N - 2
    assert {a.status for a in services.actions("Strict")} == {ActionStatus.PENDING}

    rows, _ = results_of(services, "Strict", run.id)
    refused = [r for r in rows if r["Status"] == "REJECTED"]
    assert [r["CallSessionId"] for r in refused] == ["cs-0000", "cs-0001"]
    assert all("event older than the 30-day lock period" in r["Reason"] for r in refused)
    [(_, report)] = services.validation(run.id)
    [outcome] = [o for o in report.outcomes if o.expectation_type == "connectbatch_events_within_lock_period"]
    assert outcome.observed_value["unexpected_count"] == 2 and "refuse" in outcome.description


def test_the_policy_is_kept_and_changed_on_the_connection(services: Services, make_connection) -> None:
    assert make_connection("Acme").late_events == "lock"
    changed = services.update_connection("Acme", late_events="refuse")
    assert services.connection("Acme").late_events == "refuse" == changed.late_events


def test_the_demo_creates_no_action_already_due_to_lock_unannounced(services: Services) -> None:
    from connectbatch import demo

    demo.load(services)
    now = dt.datetime.now(dt.UTC)
    pending = services.actions(status="PENDING", limit=100_000)
    assert pending and all(a.lock_at > now for a in pending)
    locked = services.actions(status="LOCKED", limit=100_000)
    assert 0 < len(locked) <= 10
    assert all(a.reason == "event older than the 30-day lock period" for a in locked)


# ------------------------------------------------------------------ defect 8: Needs review


def test_a_held_batch_reads_needs_review_until_it_is_decided(services: Services, make_connection) -> None:
    make_connection("Acme")
    held = services.ingest_bytes("Acme", "neg.csv", call_csv(N, overrides={0: {"SaleAmount": "-1"}}))
    assert held.status is RunStatus.NEEDS_REVIEW and held.review == "quarantined"
    assert services.connection("Acme").status is ConnectionStatus.NEEDS_REVIEW

    # a later clean run does not bury the held batch
    clean = services.ingest_bytes("Acme", "more.csv", call_csv(N, prefix="m"))
    assert clean.status is RunStatus.COMPLETED
    assert services.connection("Acme").status is ConnectionStatus.NEEDS_REVIEW

    released = services.release(held.id, actor="bob")
    assert released.status is RunStatus.COMPLETED
    assert services.connection("Acme").status is ConnectionStatus.COMPLETED


def test_another_connections_held_batch_does_not_touch_this_ones_status(
    services: Services, make_connection
) -> None:
    """A clean run's connection status is decided in one statement (issue 13): only this
    connection's held batches make it Needs review."""
    make_connection("Acme")
    make_connection("Other")
    held = services.ingest_bytes("Other", "neg.csv", call_csv(N, overrides={0: {"SaleAmount": "-1"}}))
    assert held.status is RunStatus.NEEDS_REVIEW
    clean = services.ingest_bytes("Acme", "ok.csv", call_csv(N, prefix="o"))
    assert clean.status is RunStatus.COMPLETED
    assert services.connection("Acme").status is ConnectionStatus.COMPLETED
    assert services.connection("Other").status is ConnectionStatus.NEEDS_REVIEW


def test_a_discarded_batch_no_longer_needs_review(services: Services, make_connection) -> None:
    make_connection("Acme")
    held = services.ingest_bytes("Acme", "neg.csv", call_csv(N, overrides={0: {"SaleAmount": "-1"}}))

    discarded = services.discard(held.id, note="junk", actor="bob")

    assert discarded.status is RunStatus.FAILED and "discarded by bob" in (discarded.reason or "")
    assert services.connection("Acme").status is ConnectionStatus.FAILED


def test_failed_means_a_failed_file(services: Services, make_connection) -> None:
    make_connection("Acme")
    run = services.ingest_bytes("Acme", "junk.csv", b"")
    assert run.status is RunStatus.FAILED
    assert services.connection("Acme").status is ConnectionStatus.FAILED


def test_a_discarded_batch_keeps_the_keys_of_its_rejected_rows(services: Services, make_connection) -> None:
    """The results file rewritten after a discard names the rejected rows as the first one
    did (their keys, as the parser read them), not only their lines."""
    make_connection("Acme")
    bad = {1: {"EventDate": "bad"}, 2: {"EventDate": "bad"}}  # 20 % rejected: the batch is held
    held = services.ingest_bytes("Acme", "q.csv", call_csv(10, prefix="qq", overrides=bad))
    assert held.review == "quarantined"
    before, _ = results_of(services, "Acme", held.id)

    services.discard(held.id, note="wrong export", actor="bob")

    rows, _ = results_of(services, "Acme", held.id)
    rejected = [(r["Line"], r["CallSessionId"]) for r in rows if r["Status"] == "REJECTED"]
    assert rejected == [(r["Line"], r["CallSessionId"]) for r in before if r["Status"] == "REJECTED"]
    assert [key for _, key in rejected] == ["qq-0001", "qq-0002"]


def test_the_summary_counts_the_actions_a_file_changed_apart_from_those_it_created(
    services: Services, make_connection
) -> None:
    """A modifications file creates no action but changes some; a corrected re-delivery
    re-points one: the summary JSON says so (`actions_changed`, as the run counts it)."""
    make_connection("Acme", redelivery=Redelivery.SUPERSEDE)
    first = services.ingest_bytes("Acme", "calls.csv", call_csv(N))
    _, summary = results_of(services, "Acme", first.id)
    assert (summary["actions_created"], summary["actions_changed"]) == (N, 0)

    make_connection("Acme returns", data_type="action_modifications")
    labels = sorted(a.label for a in services.actions("Acme"))
    mods = services.ingest_bytes(
        "Acme returns",
        "mods.csv",
        modifications_csv([(labels[0], "5.00", "upsell"), (labels[1], "0", "returned")]),
    )
    _, summary = results_of(services, "Acme returns", mods.id)
    assert (summary["actions_created"], summary["actions_changed"]) == (0, 2)
    assert services.run(mods.id).actions_changed == 2

    fixed = services.ingest_bytes("Acme", "fix.csv", call_csv(3, overrides={2: {"SaleAmount": "99.00"}}))
    _, summary = results_of(services, "Acme", fixed.id)
    assert (summary["actions_created"], summary["actions_changed"]) == (0, 1)

    rows = [(labels[2], "7.00", "ok"), (labels[3], "-5", "negative")]
    held = services.ingest_bytes("Acme returns", "held.csv", modifications_csv(rows))
    assert held.review == "quarantined"  # the negative amount fails an expectation
    services.release(held.id, note="checked", actor="bob")
    _, summary = results_of(services, "Acme returns", held.id)
    assert (summary["actions_created"], summary["actions_changed"]) == (0, 1)


def test_a_row_refused_for_a_stray_quote_after_its_key_is_named_in_the_results(
    services: Services, make_connection
) -> None:
    """Found by both audits: a stray quote in a cell after the key (UserAgent, a catalog's
    Name) answered the row with no CallSessionId, though the key had been read."""
    make_connection("Acme")
    data = call_csv(N, overrides={2: {"UserAgent": "@stray@"}}, columns=[*CALL_COLUMNS, "UserAgent"])
    run = services.ingest_bytes("Acme", "stray.csv", data.replace(b"@stray@", b'"quoted" agent'))
    assert run.rows_rejected == 1
    rows, _summary = results_of(services, "Acme", run.id)
    [refused] = [r for r in rows if r["Status"] == "REJECTED"]
    assert refused["Line"] == "4" and refused["CallSessionId"] == "cs-0002"
    assert "unexpected text after a closing quote" in refused["Reason"]
