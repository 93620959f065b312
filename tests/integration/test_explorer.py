"""The partner screens' services: the call-data explorer (filters, KPIs, charts, paging,
CSV export) and the pending-actions list (search, bulk changes, locked actions).

Every expectation is computed in Python from the very rows that were loaded, so a test
states what a partner manager would count by hand."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import CALL_COLUMNS, call_rows, iso, to_csv

from connectbatch.explorer import DURATION_BUCKETS, CallFilter
from connectbatch.models import ActionStatus, Connection, Direction, Method, Methodology, RunStatus
from connectbatch.services import InvalidInputError, Services
from connectbatch.settings import Settings

Row = dict[str, str]
COLUMNS = (*CALL_COLUMNS, "CallerPhoneNumberCountry")
TODAY = dt.datetime.now(dt.UTC).date()


def day(days_ago: int) -> dt.date:
    return TODAY - dt.timedelta(days=days_ago)


def noon(days_ago: int) -> dt.datetime:
    d = day(days_ago)
    return dt.datetime(d.year, d.month, d.day, 12, tzinfo=dt.UTC)


def varied_rows() -> list[Row]:
    """30 calls over three days, two providers, three media partners, two countries, one
    call in five cancelled (no talk, no sale), and durations in several buckets."""
    rows: list[Row] = call_rows(30)
    for i, row in enumerate(rows):
        row["EventDate"] = iso(noon(1 + i % 3) + dt.timedelta(minutes=i))
        row["MediaId"] = "98765" if i < 15 else "98766" if i < 25 else "98770"
        row["CallProvider"] = "Invoca" if i % 2 == 0 else "CallRail"
        row["CallerPhoneNumberCountry"] = "CA" if i % 10 == 0 else "US"
        if i % 5 == 0:
            row.update(CallStatus="CANCEL", TalkDuration="0", SaleAmount="")
    rows[1].update(CallDuration="10", TalkDuration="5")
    rows[2].update(CallDuration="45", TalkDuration="40")
    rows[3].update(CallDuration="2000", TalkDuration="100")
    return rows


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Services, list[Row]]:
    """One data directory with the varied calls, shared by the tests that only read it."""
    services = Services(Settings(home=tmp_path_factory.mktemp("explorer") / "home", lock_timeout=10.0))
    services.create_connection(
        Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    data = varied_rows()
    run = services.ingest_bytes("Acme", "calls.csv", to_csv(data, COLUMNS))
    assert run.status is RunStatus.COMPLETED, run.reason
    assert run.rows_accepted == len(data)
    return services, data


@pytest.fixture
def shared(loaded: tuple[Services, list[Row]]) -> Services:
    return loaded[0]


@pytest.fixture
def rows(loaded: tuple[Services, list[Row]]) -> list[Row]:
    return loaded[1]


def when(row: Row) -> dt.datetime:
    return dt.datetime.fromisoformat(row["EventDate"].replace("Z", "+00:00"))


def matching(rows: list[Row], f: CallFilter) -> list[Row]:
    """The filter applied by hand."""

    def keep(r: Row) -> bool:
        d = when(r).date()
        return (
            (f.start is None or d >= f.start)
            and (f.end is None or d <= f.end)
            and (not f.campaigns or int(r["CampaignId"]) in f.campaigns)
            and (not f.media_ids or int(r["MediaId"]) in f.media_ids)
            and (not f.statuses or r["CallStatus"] in f.statuses)
            and (not f.providers or r["CallProvider"] in f.providers)
            and (not f.countries or r["CallerPhoneNumberCountry"] in f.countries)
        )

    return [r for r in rows if keep(r)]


FILTERS = {
    "none": CallFilter(),
    "one day": CallFilter(start=day(2), end=day(2)),
    "from a day on": CallFilter(start=day(2)),
    "campaigns": CallFilter(campaigns=(1000, 1002)),
    "media partner": CallFilter(media_ids=(98766,)),
    "status": CallFilter(statuses=("CANCEL",)),
    "provider": CallFilter(providers=("CallRail",)),
    "country": CallFilter(countries=("CA",)),
    "combined": CallFilter(start=day(3), end=day(2), statuses=("ANSWER",), providers=("Invoca",)),
    "nothing matches": CallFilter(media_ids=(1,)),
}


def test_filter_options_offer_the_distinct_values_loaded(shared: Services, rows: list[Row]) -> None:
    options = shared.call_filter_options()

    assert options.statuses == ["ANSWER", "CANCEL"]
    assert options.providers == ["CallRail", "Invoca"]
    assert options.countries == ["CA", "US"]
    assert options.media_ids == [98765, 98766, 98770]  # busiest first: 15, 10, 5 calls
    assert sorted(options.campaigns) == [1000, 1001, 1002]
    assert (options.first_day, options.last_day) == (day(3), day(1))


def test_an_empty_database_offers_nothing_and_counts_zero(services: Services) -> None:
    assert services.call_filter_options().is_empty
    summary = services.call_summary(CallFilter())
    assert summary.kpis.calls == 0
    assert summary.kpis.answered_rate == 0.0
    assert summary.per_day.num_rows == 0
    assert summary.top_media.num_rows == 0
    assert summary.durations.column("calls").to_pylist() == [0] * len(DURATION_BUCKETS)
    assert services.call_rows(CallFilter()).num_rows == 0


@pytest.mark.parametrize("name", list(FILTERS))
def test_kpis_count_the_filtered_calls(shared: Services, rows: list[Row], name: str) -> None:
    f = FILTERS[name]
    expected = matching(rows, f)

    kpis = shared.call_summary(f).kpis

    assert kpis.calls == len(expected)
    assert kpis.answered == sum(r["CallStatus"] == "ANSWER" for r in expected)
    assert kpis.talk_seconds == sum(int(r["TalkDuration"]) for r in expected)
    assert kpis.sales == sum(bool(r["SaleAmount"]) for r in expected)
    assert kpis.sale_amount == sum(
        (Decimal(r["SaleAmount"]) for r in expected if r["SaleAmount"]), Decimal(0)
    )
    if expected:
        assert kpis.answered_rate == pytest.approx(kpis.answered / len(expected))
        assert kpis.average_talk_seconds == pytest.approx(kpis.talk_seconds / len(expected))


def test_every_filter_changes_what_is_counted(shared: Services, rows: list[Row]) -> None:
    everything = shared.call_summary(CallFilter()).kpis.calls
    assert everything == len(rows)
    for name, f in FILTERS.items():
        if name not in ("none", "from a day on"):
            assert shared.call_summary(f).kpis.calls < everything, name


def test_calls_per_day_are_counted_by_status(shared: Services, rows: list[Row]) -> None:
    per_day = shared.call_summary(CallFilter()).per_day.to_pylist()

    expected = Counter((when(r).date(), r["CallStatus"]) for r in rows)
    assert {(p["day"], p["status"]): p["calls"] for p in per_day} == expected
    assert [(p["day"], p["status"]) for p in per_day] == sorted(expected)


def test_top_media_partners_come_busiest_first(shared: Services, rows: list[Row]) -> None:
    top = shared.call_summary(CallFilter(), top=2).top_media.to_pylist()

    assert [(t["media_id"], t["calls"]) for t in top] == [(98765, 15), (98766, 10)]
    first = [r for r in rows if r["MediaId"] == "98765"]
    assert top[0]["answered"] == sum(r["CallStatus"] == "ANSWER" for r in first)
    assert top[0]["sale_amount"] == sum(Decimal(r["SaleAmount"]) for r in first if r["SaleAmount"])


@pytest.mark.parametrize("column", ["CallDuration", "TalkDuration"])
def test_duration_histogram_puts_each_call_in_its_bucket(
    shared: Services, rows: list[Row], column: Any
) -> None:
    durations = shared.call_summary(CallFilter(), duration=column).durations

    def bucket(seconds: int) -> int:
        return max(i for i, (lower, _label) in enumerate(DURATION_BUCKETS) if seconds >= lower)

    counted = Counter(bucket(int(r[column])) for r in rows)
    assert durations.column("bucket").to_pylist() == [label for _lower, label in DURATION_BUCKETS]
    assert durations.column("calls").to_pylist() == [counted[i] for i in range(len(DURATION_BUCKETS))]


def test_pages_show_every_filtered_call_once_newest_first(shared: Services, rows: list[Row]) -> None:
    f = FILTERS["provider"]
    expected = matching(rows, f)

    pages = [shared.call_rows(f, page=n, page_size=4) for n in (1, 2, 3, 4, 5)]

    assert [p.num_rows for p in pages] == [4, 4, 4, 3, 0]  # 15 CallRail calls
    seen = [r for p in pages for r in p.to_pylist()]
    assert sorted(r["CallSessionId"] for r in seen) == sorted(r["CallSessionId"] for r in expected)
    assert [r["EventDate"] for r in seen] == sorted((r["EventDate"] for r in seen), reverse=True)
    assert all(r["ActionId"].startswith("A-") and r["ActionStatus"] == "PENDING" for r in seen)


def test_csv_export_holds_exactly_the_filtered_calls(
    shared: Services, rows: list[Row], tmp_path: Path
) -> None:
    f = FILTERS["combined"]
    expected = {r["CallSessionId"]: r for r in matching(rows, f)}
    assert expected

    out = tmp_path / "out"
    out.mkdir()
    count = shared.export_calls_csv(f, out / "calls.csv")

    exported = list(csv.DictReader(io.StringIO((out / "calls.csv").read_text(encoding="utf-8"))))
    assert count == len(exported) == len(expected)
    assert {r["CallSessionId"] for r in exported} == set(expected)
    for row in exported:
        sent = expected[row["CallSessionId"]]
        assert (row["CallProvider"], row["CallStatus"], row["TalkDuration"]) == (
            sent["CallProvider"], sent["CallStatus"], sent["TalkDuration"],
        )  # fmt: skip
        assert Decimal(row["SaleAmount"]) == Decimal(sent["SaleAmount"])
        assert row["ActionId"].startswith("A-")
    assert [p.name for p in out.iterdir()] == ["calls.csv"]  # no temporary file left


def test_filter_values_are_data_not_sql(shared: Services, rows: list[Row]) -> None:
    hostile = CallFilter(providers=("Invoca' OR '1'='1",), statuses=("ANSWER'); DROP TABLE actions; --",))

    assert shared.call_summary(hostile).kpis.calls == 0
    assert shared.call_summary(CallFilter()).kpis.calls == len(rows)
    assert shared.count_actions() == len(rows)


def test_bad_filters_and_pages_are_refused_with_the_field_named(shared: Services) -> None:
    with pytest.raises(InvalidInputError) as caught:
        shared.call_summary(CallFilter(start=day(1), end=day(3)))
    assert caught.value.field == "end"
    with pytest.raises(InvalidInputError, match="page"):
        shared.call_rows(CallFilter(), page=0)
    with pytest.raises(InvalidInputError, match="page_size"):
        shared.call_rows(CallFilter(), page_size=5000)
    with pytest.raises(InvalidInputError, match="duration"):
        shared.call_summary(CallFilter(), duration="IvrDuration")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- pending actions


def test_actions_are_found_by_source_key_action_id_connection_and_status(
    services: Services, make_connection: Any
) -> None:
    make_connection("Acme")
    rows = varied_rows()
    services.ingest_bytes("Acme", "calls.csv", to_csv(rows, COLUMNS))
    make_connection("Other")
    services.ingest_bytes("Other", "calls.csv", to_csv(call_rows(3, prefix="other"), CALL_COLUMNS))
    everything = services.find_actions()
    assert everything.total == len(rows) + 3
    assert [a.id for a in everything.actions] == sorted((a.id for a in everything.actions), reverse=True)

    assert {a.source_key for a in services.find_actions(search="OTHER-").actions} == {
        "other-0000", "other-0001", "other-0002",
    }  # fmt: skip
    target = services.find_actions("Acme", search="cs-0007").actions[0]
    assert target.source_key == "cs-0007"
    assert [a.id for a in services.find_actions(search=target.label).actions] == [target.id]
    assert services.find_actions("Other").total == 3

    services.reverse_action(target.id, "returned", "alice")
    reversed_ = services.find_actions(statuses=("reversed",))
    assert (reversed_.total, reversed_.actions[0].id) == (1, target.id)
    assert services.find_actions(statuses=("PENDING", "REVERSED")).total == len(rows) + 3

    second = services.find_actions(page=2, page_size=10)
    assert [a.id for a in second.actions] == [a.id for a in everything.actions[10:20]]


def test_a_change_to_many_actions_reports_each_and_locked_ones_fail(
    services: Services, make_connection: Any
) -> None:
    make_connection("Fresh", lock_days=30)
    make_connection("Old", lock_days=1)
    services.ingest_bytes("Fresh", "calls.csv", to_csv(call_rows(2, prefix="fresh"), CALL_COLUMNS))
    old_rows = call_rows(1, prefix="old", event_date=noon(5))
    services.ingest_bytes("Old", "calls.csv", to_csv(old_rows, CALL_COLUMNS))
    fresh = services.find_actions("Fresh").actions
    [old] = services.find_actions("Old").actions
    page = services.find_actions()
    assert page.is_locked(old) and page.days_to_lock(old) == 0
    assert not page.is_locked(fresh[0]) and 28 < page.days_to_lock(fresh[0]) < 30

    locked_audit = services.audit(old.id)  # created LOCKED: its event is past the lock period
    outcomes = services.change_actions(
        [fresh[0].id, old.id, fresh[1].id], reverse=False, amount="42.50", reason="renegotiated",
        actor="alice",
    )  # fmt: skip

    assert [(o.action_id, o.ok) for o in outcomes] == [
        (fresh[0].id, True),
        (old.id, False),
        (fresh[1].id, True),
    ]
    assert "locked" in outcomes[1].message
    assert services.action(old.id).amount == old.amount
    assert services.audit(old.id) == locked_audit  # the refused change left no trace
    for a in fresh:
        changed = services.action(a.id)
        assert (changed.status, changed.amount) == (ActionStatus.MODIFIED, Decimal("42.50"))
        assert services.audit(a.id)[-1].actor == "alice"

    again = services.change_actions([a.id for a in fresh], reverse=True, reason="fraud", actor="bob")
    assert all(o.ok and o.action is not None and o.action.status is ActionStatus.REVERSED for o in again)
    twice = services.change_actions([fresh[0].id], reverse=True, reason="fraud", actor="bob")
    assert not twice[0].ok and "already reversed" in twice[0].message


def test_a_change_needs_actions_a_person_and_for_a_reversal_a_reason(
    services: Services, make_connection: Any
) -> None:
    make_connection("Acme")
    services.ingest_bytes("Acme", "calls.csv", to_csv(call_rows(2), CALL_COLUMNS))
    first = services.find_actions().actions[0]
    with pytest.raises(InvalidInputError) as caught:
        services.change_actions([first.id], reverse=True, reason="  ", actor="alice")
    assert caught.value.field == "reason"
    with pytest.raises(InvalidInputError) as caught:
        services.change_actions([first.id], reverse=False, amount="1", actor=" ")
    assert caught.value.field == "actor"
    with pytest.raises(InvalidInputError) as caught:
        services.change_actions([], reverse=False, amount="1", actor="alice")
    assert caught.value.field == "actions"
    assert services.action(first.id).status is ActionStatus.PENDING


def test_csv_export_defuses_formulas_in_partner_text(services: Services, tmp_path: Path) -> None:
    """A partner's `=HYPERLINK(...)` in a text cell must reach the spreadsheet as text: the
    call-data download used to write it as a live formula (the exports already escaped)."""
    services.create_connection(
        Connection("Formulas", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH)
    )
    data = call_rows(2)
    data[0]["SubId1"] = '=HYPERLINK("http://evil.example","x")'
    data[1]["SubId1"] = "-2+cmd|' /C calc'!A0"
    run = services.ingest_bytes("Formulas", "calls.csv", to_csv(data, (*CALL_COLUMNS, "SubId1")))
    assert run.status is RunStatus.COMPLETED, run.reason

    target = tmp_path / "calls.csv"
    services.export_calls_csv(CallFilter(), target)

    cells = {r["CallSessionId"]: r["SubId1"] for r in csv.DictReader(io.StringIO(target.read_text("utf-8")))}
    assert cells[data[0]["CallSessionId"]] == '\'=HYPERLINK("http://evil.example","x")'
    assert cells[data[1]["CallSessionId"]] == "'-2+cmd|' /C calc'!A0"
