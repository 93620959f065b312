"""Triage's pure rules: what a reject spike is and when it is answered, the order of partners
and items, and the time left in words."""

from __future__ import annotations

import datetime as dt

from connectbatch.models import FileState
from connectbatch.triage import (
    RatedRun,
    TriageItem,
    TriageKind,
    group,
    refused_for_content,
    time_left_text,
    unresolved_spikes,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def rated(
    run_id: int, rejected: int, *, connection: int = 1, completed: bool = True, reviewed: bool = False
) -> RatedRun:
    return RatedRun(run_id, connection, completed, reviewed, rows=100, rejected=rejected)


def item(partner: int, hours: float, kind: TriageKind = TriageKind.QUARANTINED, run: int = 1) -> TriageItem:
    return TriageItem(
        kind, NOW + dt.timedelta(hours=hours), partner, f"conn{partner}", partner, f"P{partner}", run, 1, ""
    )


def test_a_spike_is_three_times_the_usual_and_above_five_percent() -> None:
    usual = [rated(1, 2), rated(2, 3), rated(3, 2)]  # median 2 %

    assert [r.run_id for r in unresolved_spikes([*usual, rated(4, 7)])] == [4]  # 7 % > 6 % and > 5 %
    assert unresolved_spikes([*usual, rated(4, 6)]) == []  # not above 3 x the median
    assert unresolved_spikes([rated(1, 0), rated(2, 5)]) == []  # not above the 5 % floor
    assert [r.run_id for r in unresolved_spikes([rated(1, 40)])] == [1]  # a first file: no usual yet


def test_a_later_ordinary_completed_run_answers_a_spike_and_a_reviewed_run_is_no_spike() -> None:
    runs = [rated(1, 1), rated(2, 1), rated(3, 30)]

    assert unresolved_spikes([*runs, rated(4, 1, completed=False)]) == [runs[2]]  # a failed run is no answer
    assert unresolved_spikes([*runs, rated(4, 1)]) == []
    assert unresolved_spikes([*runs, rated(4, 1, connection=2)]) == [runs[2]]  # another connection's
    assert unresolved_spikes([rated(1, 1), rated(2, 1), rated(3, 30, reviewed=True)]) == []


def test_partners_are_ordered_by_their_most_urgent_item_and_items_by_time_left() -> None:
    found = group(
        [item(1, 50), item(2, 30), item(1, 10, TriageKind.FAILED_CONNECTION), item(2, 30, run=2),
         item(1, 10, TriageKind.QUARANTINED, run=3)],
        NOW, 7,
    )  # fmt: skip

    assert [g.partner for g in found.groups] == ["P1", "P2"]
    assert [(i.kind, i.deadline - NOW) for i in found.groups[0].items] == [
        (TriageKind.QUARANTINED, dt.timedelta(hours=10)),  # same deadline: the one settled here first
        (TriageKind.FAILED_CONNECTION, dt.timedelta(hours=10)),
        (TriageKind.QUARANTINED, dt.timedelta(hours=50)),
    ]
    assert [i.run_id for i in found.groups[1].items] == [1, 2]
    assert found.as_dict()["partners"][0]["items"][0]["seconds_left"] == 36000


def test_time_left_in_words() -> None:
    assert time_left_text(NOW + dt.timedelta(days=3, hours=4, minutes=5), NOW) == "3 d 4 h"
    assert time_left_text(NOW + dt.timedelta(hours=5, minutes=20), NOW) == "5 h 20 min"
    assert time_left_text(NOW + dt.timedelta(minutes=12), NOW) == "12 min"
    assert time_left_text(NOW - dt.timedelta(days=2), NOW) == "past its lock time by 2 d 0 h"


def test_a_run_failed_only_by_a_refused_file_is_for_the_partner_to_resend() -> None:
    assert refused_for_content([FileState.REJECTED])
    assert refused_for_content([FileState.LOADED, FileState.REJECTED])  # a retry runs only the refused one
    assert not refused_for_content([FileState.REJECTED, FileState.FAILED])  # ours failed too: retry
    assert not refused_for_content([FileState.FAILED])  # an internal error, an interrupted process
    assert not refused_for_content([])  # a pull that could not reach the server
