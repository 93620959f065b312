"""Changing pending actions from the command line, and what a run that changes actions
reports: the same rules as an action-modifications file, and counts that say what happened.

`main()` runs in-process against a data directory of the test's own (the first validation in
a process imports great-expectations: a few seconds)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from helpers.cli import cli, cli_error, cli_json

HEADER = (
    "CampaignId", "MediaId", "EventDate", "ActionTrackerId", "CallProvider", "CallSessionId",
    "CallerId", "CalledPhoneNumber", "CallDuration", "TalkDuration", "SaleAmount",
)  # fmt: skip
PUSH = ["--direction", "inbound", "--method", "sftp", "--methodology", "push"]


def write_calls(path: Path, keys: Sequence[str], amount: str = "49.99") -> Path:
    """A call-conversion file dated yesterday (inside the validation window)."""
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [
        ["1234", "98765", when, "20001", "Invoca", key, f"+1555{i:07d}", "+18005550100",
         "185", "160", amount]
        for i, key in enumerate(keys)
    ]  # fmt: skip
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([HEADER, *rows])
    return path


def write_rows(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([header, *rows])
    return path


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    """A fresh data directory with connection Acme and three PENDING actions of 49.99
    (A-000001 .. A-000003)."""
    monkeypatch.setenv("CONNECTBATCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONNECTBATCH_DB", raising=False)
    cli(capsys, "connection", "add", "--name", "Acme", *PUSH)
    cli(capsys, "ingest", str(write_calls(tmp_path / "calls.csv", ["k1", "k2", "k3"])),
        "--connection", "Acme")  # fmt: skip
    return tmp_path


def unchanged(capsys: pytest.CaptureFixture[str], label: str) -> None:
    """The action is still PENDING at 49.99, with nothing in its audit trail."""
    shown = cli_json(capsys, "action", "audit", label)
    assert (shown["status"], shown["amount"], shown["audit"]) == ("PENDING", "49.99", [])


# ----------------------------------------------------------------------------- amounts


@pytest.mark.parametrize("amount", ["NaN", "nan", "-NaN", "sNaN", "Infinity", "abc", ""])
def test_an_amount_that_is_no_number_is_refused_not_an_internal_error(
    acme: Path, capsys: pytest.CaptureFixture[str], amount: str
) -> None:
    cli_error(
        capsys, "action", "modify", "A-000001", f"--amount={amount}", mentions=f"{amount!r} is not an amount"
    )
    unchanged(capsys, "A-000001")


def test_an_amount_written_like_thousands_is_refused_saying_both_readings(
    acme: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'49.990' typed for 49,990 with a point between thousands: it was taken as 49.99."""
    cli_error(
        capsys, "action", "modify", "A-000001", "--amount=49.990",
        mentions="ambiguous: 49.990 reads as 49.99 but is written like 49,990",
    )  # fmt: skip
    unchanged(capsys, "A-000001")


def test_setting_the_amount_an_action_already_has_changes_nothing(
    acme: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for same in ("49.99", "49.9900"):  # "49.990" is refused: 49990 with a point between thousands?
        cli_error(capsys, "action", "modify", "A-000001", "--amount", same, "--reason", "again",
                  mentions="A-000001 already has the amount 49.99; nothing changed")  # fmt: skip
    unchanged(capsys, "A-000001")

    # a modified action set to its current amount changes nothing either; to another, it does
    cli(capsys, "action", "modify", "A-000002", "--amount", "30")
    cli_error(capsys, "action", "modify", "A-000002", "--amount", "30.00", mentions="nothing changed")
    cli(capsys, "action", "modify", "A-000002", "--amount", "49.99")
    audit = cli_json(capsys, "action", "audit", "A-000002")
    assert [(e["old_amount"], e["new_amount"]) for e in audit["audit"]] == [
        ("49.99", "30.00"),
        ("30.00", "49.99"),
    ]


def test_an_amount_with_more_than_two_decimals_is_refused_as_in_a_file(
    acme: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for amount in ("12.345", "12.355", "0.001"):
        cli_error(capsys, "action", "modify", "A-000001", "--amount", amount,
                  mentions="has more than 2 decimal places")  # fmt: skip
    unchanged(capsys, "A-000001")

    # extra zeros are no extra precision, and the amounts a file may hold are accepted
    assert cli_json(capsys, "action", "modify", "A-000001", "--amount", "12.3400")["amount"] == "12.34"
    assert cli_json(capsys, "action", "modify", "A-000002", "--amount", "1,234.50")["amount"] == "1234.50"
    cli_error(capsys, "action", "modify", "A-000003", "--amount", "1" * 17, mentions="too large")
    cli_error(capsys, "action", "modify", "A-000003", "--amount", "$49.99", mentions="nothing changed")
    assert cli_json(capsys, "action", "modify", "A-000003", "--amount", "$12.50")["amount"] == "12.50"


# -------------------------------------------------------------------------- run counts


def test_a_modifications_run_counts_actions_changed_not_created(
    acme: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli(capsys, "connection", "add", "--name", "Acme mods", "--type", "action_modifications", *PUSH)
    mods = write_rows(
        acme / "mods.csv",
        ["ActionId", "Amount", "Reason"],
        [["A-000001", "10", "partial return"], ["A-000002", "0", "returned"], ["A-000003", "49.99", "same"]],
    )

    out = cli(capsys, "ingest", str(mods), "--connection", "Acme mods")

    assert "0 created, 2 changed" in out, out
    run = cli_json(capsys, "run", "show", "2")
    assert (run["actions_created"], run["actions_changed"], run["rows_unchanged"]) == (0, 2, 1)
    summary = json.loads(next((acme / "home").rglob("run2-*.summary.json")).read_text())
    assert summary["actions_created"] == 0
    assert cli(capsys, "runs").splitlines()[0].split()[-3:] == ["CREATED", "CHANGED", "REASON"]
    newest = cli_json(capsys, "runs", "--limit", "1")[0]
    assert (newest["id"], newest["actions_created"], newest["actions_changed"]) == (2, 0, 2)


def test_a_corrected_redelivery_counts_the_replaced_action_as_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONNECTBATCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONNECTBATCH_DB", raising=False)
    cli(capsys, "connection", "add", "--name", "Beta", *PUSH, "--redelivery", "supersede")
    cli(capsys, "ingest", str(write_calls(tmp_path / "first.csv", ["b1", "b2"])), "--connection", "Beta")
    corrected = write_calls(tmp_path / "second.csv", ["b1"], amount="60.00")
    with corrected.open("a", encoding="utf-8", newline="") as f:  # b2 again as stored, and 20 new
        first = (tmp_path / "first.csv").read_text().splitlines()
        f.write(first[2] + "\n")
        new = write_calls(tmp_path / "new.csv", [f"n{i}" for i in range(20)])
        f.write("\n".join(new.read_text().splitlines()[1:]) + "\n")

    run = cli_json(capsys, "ingest", str(corrected), "--connection", "Beta")

    assert (run["rows_accepted"], run["actions_created"], run["actions_changed"]) == (22, 20, 1)
    assert (run["rows_replaced"], run["rows_unchanged"]) == (1, 1)
    assert "20 created, 1 changed" in cli(capsys, "run", "show", str(run["id"]))
    assert cli_json(capsys, "actions", "--connection", "Beta")["total"] == 22


# ------------------------------------------------------------------- modification dates

MODS = ["ActionId", "Amount", "Reason", "ModificationDate"]


def _at(hours: float) -> str:
    """An ISO time `hours` from now (negative: ago)."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_newest_modification_date_wins_and_future_dates_are_refused(
    acme: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ModificationDate is when the change happened at the brand. Files out of order: a
    change dated before the one an action carries arrives later and must not overwrite it
    (it did: the last file processed won). A date in the future, or after the action locks,
    is refused. An undated row takes the processing time, so a person's change made since
    counts as newer than a backdated row."""
    cli(capsys, "connection", "add", "--name", "Acme mods", "--type", "action_modifications", *PUSH)
    newer = write_rows(acme / "newer.csv", MODS, [
        ["A-000001", "20.00", "price match", _at(-1)],
        ["A-000001", "25.00", "same file, older line", _at(-2)],
    ])  # fmt: skip
    older = write_rows(acme / "older.csv", MODS, [
        ["A-000001", "30.00", "sent late", _at(-3)],
        ["A-000002", "0", "returned", _at(48)],
        ["A-000003", "0", "returned", _at(24 * 40)],
        ["A-000003", "10.00", "no date", ""],
    ])  # fmt: skip

    first = cli_json(capsys, "ingest", str(newer), "--connection", "Acme mods")
    second = cli_json(capsys, "ingest", str(older), "--connection", "Acme mods")

    assert (first["actions_changed"], first["rows_rejected"]) == (1, 1)
    assert (second["actions_changed"], second["rows_rejected"]) == (1, 3)
    shown = cli_json(capsys, "action", "audit", "A-000001")
    assert (shown["status"], shown["amount"]) == ("MODIFIED", "20.00")
    assert [e["new_amount"] for e in shown["audit"]] == ["20.00"]
    assert cli_json(capsys, "action", "audit", "A-000002")["status"] == "PENDING"
    assert cli_json(capsys, "action", "audit", "A-000003")["amount"] == "10.00"
    (first_reject,) = cli_json(capsys, "rejects", str(first["id"]))
    assert (first_reject["line"], first_reject["column"], first_reject["key"]) == (
        3,
        "ModificationDate",
        "A-000001",
    )
    assert "before the newer change of A-000001" in first_reject["reason"]
    listed = cli_json(capsys, "rejects", str(second["id"]))
    assert {r["column"] for r in listed} == {"ModificationDate"}
    second_rejects = {r["line"]: r["reason"] for r in listed}
    assert "before the newer change of A-000001" in second_rejects[2]
    assert "in the future" in second_rejects[3]
    assert "at or after A-000003 locks" in second_rejects[4]

    cli(capsys, "action", "modify", "A-000002", "--amount", "40", "--reason", "by hand")
    late = write_rows(acme / "late.csv", MODS, [["A-000002", "0", "returned", _at(-1)]])
    run = cli_json(capsys, "ingest", str(late), "--connection", "Acme mods", code=1)  # no row applied: Failed
    assert (run["status"], run["rows_rejected"]) == ("Failed", 1)
    assert cli_json(capsys, "action", "audit", "A-000002")["amount"] == "40.00"


def test_a_modification_date_a_few_hours_ahead_counts_as_now(
    acme: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A brand whose wall times are a few hours ahead of the connection's time zone (or
    whose clock runs fast) sends fresh changes dated "in the future": up to 14 hours ahead
    (the widest UTC offset) they count as made now, not refused; further ahead still is."""
    cli(capsys, "connection", "add", "--name", "Acme mods", "--type", "action_modifications", *PUSH)
    mods = write_rows(acme / "ahead.csv", MODS, [
        ["A-000001", "20.00", "two hours ahead", _at(2)],
        ["A-000002", "0", "a day ahead", _at(24)],
    ])  # fmt: skip
    run = cli_json(capsys, "ingest", str(mods), "--connection", "Acme mods")
    assert (run["actions_changed"], run["rows_rejected"]) == (1, 1)
    assert cli_json(capsys, "action", "audit", "A-000001")["amount"] == "20.00"
    (reject,) = cli_json(capsys, "rejects", str(run["id"]))
    assert (reject["line"], reject["column"]) == (3, "ModificationDate")
    assert "in the future" in reject["reason"]


def test_a_modification_dated_before_the_event_it_changes_is_refused(
    acme: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by a partner manager: a change dated 2019 was applied (and audited as effective
    then) to a call of this week: a change cannot happen before what it changes."""
    cli(capsys, "connection", "add", "--name", "Acme mods", "--type", "action_modifications", *PUSH)
    mods = write_rows(acme / "old.csv", MODS, [["A-000001", "10.00", "returned", "2019-01-01T00:00:00Z"]])
    run = cli_json(capsys, "ingest", str(mods), "--connection", "Acme mods", code=1)  # no row applied: Failed
    assert (run["actions_changed"], run["rows_rejected"]) == (0, 1)
    (reject,) = cli_json(capsys, "rejects", str(run["id"]))
    assert (reject["line"], reject["column"], reject["key"]) == (2, "ModificationDate", "A-000001")
    assert "before the event of A-000001" in reject["reason"]
    assert cli_json(capsys, "action", "audit", "A-000001")["status"] == "PENDING"


def test_a_refused_modification_date_is_shown_as_the_brand_wrote_it(
    acme: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by a partner audit: a Los Angeles brand's "2019-01-01 00:00:00" was shown in
    the reject as "2019-01-01T08:00:00+00:00", a value found nowhere in its file."""
    cli(capsys, "connection", "add", "--name", "Acme mods", "--type", "action_modifications",
        "--timezone", "America/Los_Angeles", *PUSH)  # fmt: skip
    mods = write_rows(acme / "old.csv", MODS, [["A-000001", "10.00", "returned", "2019-01-01 00:00:00"]])
    run = cli_json(capsys, "ingest", str(mods), "--connection", "Acme mods", code=1)
    (reject,) = cli_json(capsys, "rejects", str(run["id"]))
    assert (reject["column"], reject["value"]) == ("ModificationDate", "2019-01-01 00:00:00")
    assert "dated 2019-01-01 08:00:00 UTC" in reject["reason"]


def test_a_locked_reversal_is_still_found_and_shown_as_one(
    acme: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Actions audit: once locked, `actions --status REVERSED` found no reversal, and the list
    showed `LOCKED 0.00`, while the export and sync-back still said reversed."""
    cli(capsys, "action", "reverse", "A-000001", "--reason", "returned")
    cli(capsys, "action", "modify", "A-000002", "--amount", "30")
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cli(capsys, "lock", "--now", later, "--early")

    reversed_ = cli(capsys, "actions", "--status", "REVERSED")
    assert "A-000001" in reversed_ and "LOCKED (REVERSED)" in reversed_ and "A-000002" not in reversed_
    assert "LOCKED (MODIFIED)" in cli(capsys, "actions", "--status", "MODIFIED")
    every = cli(capsys, "actions")
    assert "A-000003" in every and every.count("LOCKED (") == 2  # the approved one: plain LOCKED
    assert cli(capsys, "action", "audit", "A-000001").startswith("action A-000001  LOCKED (REVERSED)")
