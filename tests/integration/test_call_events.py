"""A call and its conversion events: the spec's VendorEventId "will be unique for call event
and unique for the conversion event", so one CallSessionId carries a call row and a row for
each conversion (Invoca's complete_call_id and transaction_id). Each event is a record of its
own: loaded once, refused when re-sent, replaced alone in supersede mode, and named with its
VendorEventId in the partner's results file."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

from helpers import CALL_COLUMNS, call_row, fresh_date, iso, to_csv
from helpers.store import count, results_of

from connectbatch.explorer import CallFilter
from connectbatch.models import Redelivery, RunStatus
from connectbatch.services import Services

COLUMNS = (*CALL_COLUMNS, "VendorEventId")


def _events(*events: tuple[str, str | None, str]) -> bytes:
    """(CallSessionId, VendorEventId, SaleAmount) per row."""
    rows = []
    for i, (session, event, amount) in enumerate(events):
        row = call_row(i)
        # the events of a call repeat its durations
        row.update(
            CallSessionId=session,
            VendorEventId=event or "",
            SaleAmount=amount,
            CallDuration="120",
            TalkDuration="60",
        )
        rows.append(row)
    return to_csv(rows, COLUMNS)


def test_a_call_and_its_conversions_load_as_events_of_one_call(services: Services, make_connection) -> None:
    make_connection("Acme")
    data = _events(("call-1", "ev-call", "0.00"), ("call-1", "ev-sale", "49.00"), ("call-2", None, "5.00"))

    run = services.ingest_bytes("Acme", "calls.csv", data)

    assert run.status is RunStatus.COMPLETED, run.reason
    assert (run.rows_accepted, run.actions_created) == (3, 3)
    amounts = sorted((a.source_key, a.amount) for a in services.actions("Acme", limit=10))
    # each action names its event, as pending actions list it and search finds it
    assert amounts == [
        ("call-1 / ev-call", Decimal("0.00")),
        ("call-1 / ev-sale", Decimal("49.00")),
        ("call-2", Decimal("5.00")),
    ]
    assert [a.source_key for a in services.find_actions(search="ev-sale").actions] == ["call-1 / ev-sale"]
    rows, _ = results_of(services, "Acme", run.id)
    events = [(r["CallSessionId"], r["VendorEventId"], r["Status"]) for r in rows if r["Line"] != "0"]
    assert events == [
        ("call-1", "ev-call", "ACCEPTED"),
        ("call-1", "ev-sale", "ACCEPTED"),
        ("call-2", "", "ACCEPTED"),
    ]


def test_a_vendor_event_id_under_two_calls_loads_with_a_warning(services: Services, make_connection) -> None:
    """The spec makes a VendorEventId unique to its event, so one repeated under another
    CallSessionId is a vendor's mistake the partner must hear of; both rows are distinct
    records (different calls), so they load."""
    make_connection("Acme")
    data = _events(("call-1", "ev-7", "10.00"), ("call-2", "ev-7", "20.00"), ("call-3", None, "5.00"))

    run = services.ingest_bytes("Acme", "calls.csv", data)

    assert run.status is RunStatus.COMPLETED, run.reason
    assert run.actions_created == 3
    [(_, report)] = services.validation(run.id)
    assert report.success
    [outcome] = [
        o for o in report.outcomes
        if o.expectation_type == "expect_column_values_to_be_unique" and o.columns == ["VendorEventId"]
    ]  # fmt: skip
    assert not outcome.success and outcome.severity == "warning"
    assert outcome.observed_value["unexpected_count"] == 2
    assert outcome.unexpected_lines == [2, 3]
    assert any("VendorEventId should be unique" in w for w in report.warnings)
    _, summary = results_of(services, "Acme", run.id)
    assert "VendorEventId should be unique" in str(summary)


def test_a_resent_event_is_held_and_a_new_event_of_the_call_is_not(
    services: Services, make_connection
) -> None:
    make_connection("Acme")
    services.ingest_bytes(
        "Acme", "day1.csv", _events(("call-1", "ev-call", "0.00"), ("call-2", None, "5.00"))
    )

    # the sale of call-1 arrives the next day: a new event, not a repeat of the call
    later = services.ingest_bytes("Acme", "day2.csv", _events(("call-1", "ev-sale", "49.00")))
    assert later.status is RunStatus.COMPLETED, later.reason
    assert later.actions_created == 1

    # the partner re-sends the call event and call-2 beside a second sale of call-1
    resent = _events(
        ("call-1", "ev-call", "0.00"), ("call-1", "ev-sale-2", "12.00"), ("call-2", None, "5.00")
    )
    held = services.ingest_bytes("Acme", "day3.csv", resent)
    assert held.review == "quarantined"
    [(_, report)] = services.validation(held.id)
    [loaded] = [o for o in report.outcomes if not o.success]
    assert "CallSessionId with VendorEventId already loaded" in loaded.description
    assert loaded.unexpected_lines == [2, 4]

    released = services.release(held.id, actor="alice")
    assert (released.rows_accepted, released.rows_duplicate, released.actions_created) == (1, 2, 1)
    assert services.count_actions("Acme") == 4
    assert count(services, "call_conversions") == 4


def test_a_corrected_event_replaces_only_itself(services: Services, make_connection) -> None:
    make_connection("Fixes", redelivery=Redelivery.SUPERSEDE)
    first = _events(("call-1", "ev-call", "0.00"), ("call-1", "ev-sale", "49.00"))
    services.ingest_bytes("Fixes", "calls.csv", first)

    fixed = services.ingest_bytes("Fixes", "calls-fixed.csv", _events(("call-1", "ev-sale", "39.00")))

    assert fixed.status is RunStatus.COMPLETED, fixed.reason
    amounts = sorted(a.amount for a in services.actions("Fixes", limit=10))
    assert amounts == [Decimal("0.00"), Decimal("39.00")]  # the call event kept its amount
    assert services.count_actions("Fixes") == 2


def test_sync_back_names_the_event_an_action_change_is_about(services: Services, make_connection) -> None:
    """A modified or reversed action comes back with its event's VendorEventId: the partner's
    record is the event, and its call's other events share the CallSessionId."""
    make_connection("Acme", sync_back=["files"])
    services.ingest_bytes(
        "Acme", "calls.csv", _events(("call-1", "ev-call", "0.00"), ("call-1", "ev-sale", "49.00"))
    )
    sale = next(a for a in services.actions("Acme", limit=10) if a.amount == Decimal("49.00"))
    services.sync_back_now("Acme", trigger="test")  # the loads, reported once

    services.modify_action(sale.id, "39.00", reason="partial refund", actor="alice")
    done = services.sync_back_now("Acme", trigger="test")

    [sent] = done.sent
    rows = list(
        csv.DictReader(
            io.StringIO((services.settings.outbound / str(sent.connection_id) / sent.file_name).read_text())
        )
    )
    [changed] = [r for r in rows if r["Change"] == "modified"]
    assert (changed["CallSessionId"], changed["VendorEventId"], changed["ActionId"]) == (
        "call-1",
        "ev-sale",
        sale.label,
    )


def test_a_dry_run_names_the_event_already_loaded_not_the_call(
    services: Services, make_connection, tmp_path: Path
) -> None:
    make_connection("Acme")
    services.ingest_bytes("Acme", "day1.csv", _events(("call-1", "ev-call", "0.00")))
    trial = tmp_path / "day2.csv"
    trial.write_bytes(_events(("call-1", "ev-call", "0.00"), ("call-1", "ev-sale", "49.00")))

    dry = services.dry_run_file("Acme", trial)

    by_line = {r.line: r for r in dry.rows}
    assert by_line[2].status.name == "DUPLICATE"
    assert "CallSessionId with VendorEventId call-1 / ev-call is already loaded" in by_line[2].reason
    assert by_line[3].status.name != "DUPLICATE"  # another event of the same call
    rows = list(csv.DictReader(io.StringIO(dry.csv_bytes().decode())))
    assert [(r["CallSessionId"], r["VendorEventId"]) for r in rows if r["Line"] != "0"] == [
        ("call-1", "ev-call"),
        ("call-1", "ev-sale"),
    ]


def test_the_call_explorer_counts_a_call_once_whatever_its_events(
    services: Services, make_connection
) -> None:
    """Partner managers read calls: a call with three events is one call (answered or not,
    its talk time once), and its three rows stay listed and downloadable."""
    make_connection("Acme")
    data = _events(
        ("call-1", "ev-call", "0.00"), ("call-1", "ev-sale", "10.00"), ("call-1", "ev-sale-2", "5.00")
    )
    services.ingest_bytes("Acme", "calls.csv", data + _events(("call-2", None, "0.00")).split(b"\r\n", 1)[1])

    summary = services.call_summary(CallFilter())

    kpis = summary.kpis
    assert (kpis.calls, kpis.rows, kpis.answered, kpis.sales) == (2, 4, 2, 2)
    assert kpis.talk_seconds == 2 * 60 and kpis.sale_amount == Decimal("15.00")
    assert sum(summary.per_day.column("calls").to_pylist()) == 2
    assert summary.top_media.column("calls").to_pylist() == [2]
    assert sum(summary.durations.column("calls").to_pylist()) == 2


def test_a_call_whose_sale_came_after_midnight_is_one_call_of_its_first_day(
    services: Services, make_connection
) -> None:
    """Calls per day counted a call on every day one of its events fell on: a call at
    23:30 with its sale at 00:30 was two calls in the chart and one in the KPIs."""
    make_connection("Acme")
    night = fresh_date(2).replace(hour=23, minute=30, second=0)
    rows = to_csv(
        [
            {**call_row(0), "CallSessionId": "call-1", "VendorEventId": "ev-call", "EventDate": iso(night)},
            {**call_row(1), "CallSessionId": "call-1", "VendorEventId": "ev-sale",
             "EventDate": iso(night + dt.timedelta(hours=1)), "SaleAmount": "10.00"},
        ],
        COLUMNS,
    )  # fmt: skip
    assert services.ingest_bytes("Acme", "calls.csv", rows).status is RunStatus.COMPLETED

    per_day = services.call_summary(CallFilter()).per_day.to_pylist()

    assert [(p["day"], p["calls"]) for p in per_day] == [(night.date(), 1)]


def _changed(data: bytes, event: str, **values: str) -> bytes:
    """`data` with `values` in the row of `event`."""
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    for row in rows:
        if row["VendorEventId"] == event:
            row.update(values)
    return to_csv(rows, COLUMNS)


def _broken(data: bytes, event: str) -> bytes:
    """`data` with the row of `event` made unreadable (a duration that is not a number)."""
    return _changed(data, event, CallDuration="abc")


def _keys(rows: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    return [(r["CallSessionId"], r["VendorEventId"], r["Status"]) for r in rows if r["Line"] != "0"]


def test_a_rejected_event_is_named_by_its_call_and_event(
    services: Services, make_connection, tmp_path: Path
) -> None:
    """A row the parser refuses keeps its VendorEventId beside its CallSessionId, in the
    results file and the dry run: "call-1" alone reads as the call event, which loaded."""
    make_connection("Acme")
    others = [(f"call-{i}", None, "5.00") for i in range(2, 26)]  # one bad row in 26: loaded
    data = _broken(_events(("call-1", "ev-call", "0.00"), ("call-1", "ev-sale", "49.00"), *others), "ev-sale")
    trial = tmp_path / "calls.csv"
    trial.write_bytes(data)

    dry = services.dry_run_file("Acme", trial)
    run = services.ingest_bytes("Acme", "calls.csv", data)

    assert (run.rows_accepted, run.rows_rejected) == (25, 1)
    rows, _ = results_of(services, "Acme", run.id)
    assert _keys(rows)[:2] == [("call-1", "ev-call", "ACCEPTED"), ("call-1", "ev-sale", "REJECTED")]
    tried = list(csv.DictReader(io.StringIO(dry.csv_bytes().decode())))
    assert _keys(tried)[:2] == [
        ("call-1", "ev-call", "WOULD_BE_ACCEPTED"),
        ("call-1", "ev-sale", "WOULD_BE_REJECTED"),
    ]


def test_a_released_batch_names_the_events_it_rejected_and_left_out(
    services: Services, make_connection
) -> None:
    make_connection("Acme")
    services.ingest_bytes("Acme", "day1.csv", _events(("call-1", "ev-call", "0.00")))
    resent = _events(
        ("call-1", "ev-call", "0.00"), ("call-1", "ev-sale", "49.00"), ("call-1", "ev-bad", "1.00")
    )
    held = services.ingest_bytes("Acme", "day2.csv", _broken(resent, "ev-bad"))
    assert held.review == "quarantined"
    rows, _ = results_of(services, "Acme", held.id)
    assert ("call-1", "ev-bad", "REJECTED") in _keys(rows)  # held: the parser's reject named

    services.release(held.id, actor="alice")

    rows, _ = results_of(services, "Acme", held.id)
    assert _keys(rows) == [
        ("call-1", "ev-call", "REJECTED"),  # already loaded: left out by the release
        ("call-1", "ev-sale", "ACCEPTED"),
        ("call-1", "ev-bad", "REJECTED"),
    ]


def _status_rows(services: Services) -> list[dict[str, str]]:
    done = services.sync_back_now("Acme", trigger="test")
    folder = services.settings.outbound
    return [
        row
        for sent in done.sent
        for row in csv.DictReader(
            io.StringIO((folder / str(sent.connection_id) / sent.file_name).read_text())
        )
    ]


def test_status_files_name_a_rejected_event_by_its_call_and_event(
    services: Services, make_connection, tmp_path: Path
) -> None:
    """The stored reject keeps the VendorEventId beside the CallSessionId, so the status file
    (sync-back), the CLI and the review screens name the event, whether the file loaded
    alone, in a group, or was held and released."""
    make_connection("Acme", sync_back=["files"])
    others = [(f"{{}}-{i}", None, "5.00") for i in range(2, 26)]

    def calls(prefix: str) -> bytes:
        rows = [(f"{prefix}-1", "ev-call", "0.00"), (f"{prefix}-1", "ev-sale", "49.00")]
        return _broken(_events(*rows, *[(s.format(prefix), e, a) for s, e, a in others]), "ev-sale")

    alone = services.ingest_bytes("Acme", "alone.csv", calls("al"))
    paths = [tmp_path / "g1.csv", tmp_path / "g2.csv"]
    for path in paths:
        path.write_bytes(calls(path.stem))
    services.ingest_files("Acme", paths)
    held = services.ingest_bytes(
        "Acme",
        "held.csv",
        _broken(_events(("hd-1", "ev-call", "0.00"), ("hd-1", "ev-sale", "1.00")), "ev-sale"),
    )
    assert held.review == "quarantined"
    services.release(held.id, note="ok", actor="bob")

    assert [r.shown_key for r in services.rejects(alone.id)] == ["al-1 / ev-sale"]
    rejected = [(r["CallSessionId"], r["VendorEventId"]) for r in _status_rows(services) if r["Line"] == "3"]
    assert sorted(rejected) == [
        ("al-1", "ev-sale"),
        ("g1-1", "ev-sale"),
        ("g2-1", "ev-sale"),
        ("hd-1", "ev-sale"),
    ]


def test_a_late_event_refused_is_named_by_its_call_and_event(services: Services, make_connection) -> None:
    """Under the `refuse` late-events policy the refused row leaves the batch: its results row
    took the CallSessionId alone, so the late call event read as the whole call."""
    make_connection("Acme", lock_days=30, late_events="refuse")
    events = _events(("call-1", "ev-call", "0.00"), ("call-1", "ev-sale", "49.00"))
    run = services.ingest_bytes(
        "Acme", "calls.csv", _changed(events, "ev-call", EventDate=iso(fresh_date(40)))
    )

    assert (run.rows_accepted, run.rows_rejected) == (1, 1)
    rows, _ = results_of(services, "Acme", run.id)
    assert _keys(rows) == [("call-1", "ev-call", "REJECTED"), ("call-1", "ev-sale", "ACCEPTED")]
