"""The pipeline commands of `connectbatch` (connection, ingest, runs, run show, rejects, retry,
actions, action, lock, quarantine) against a real data directory under tmp_path.

`main()` runs in-process. The first validation in a process imports great-expectations (a few
seconds), so the read-only checks share one module-scoped data directory with two ingests; a
test that changes state (locking, quarantine, retry) gets a data directory of its own.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import getpass
import io
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import cli, cli_error, cli_json

from connectbatch.cli import main

HEADER = (
    "CampaignId", "MediaId", "EventDate", "ActionTrackerId", "CallProvider", "CallSessionId",
    "CallerId", "CalledPhoneNumber", "CallDuration", "TalkDuration", "SaleAmount",
)  # fmt: skip
GOOD_ROWS = 30  # plus one rejected row: 1 in 31 stays under the 5 % reject-rate threshold
PUSH = ["--direction", "inbound", "--method", "sftp", "--methodology", "push"]


def write_calls(path: Path, session_ids: Sequence[str], *, bad_campaign: bool = False) -> Path:
    """A call-conversion file dated yesterday (inside the validation window)."""
    when = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = [
        ["1234", "98765", when, "20001", "Invoca", key, f"+1555{i:07d}", "+18005550100",
         "185", "160", "12.50"]
        for i, key in enumerate(session_ids)
    ]  # fmt: skip
    if bad_campaign:
        rows.append(["12a4", "98765", when, "20001", "Invoca", "cs-bad", "+15550000000",
                     "+18005550100", "185", "160", "12.50"])  # fmt: skip
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([HEADER, *rows])
    return path


# --------------------------------------------------------------------------------- helpers


def quietly(*argv: str) -> tuple[int, str]:
    """For module fixtures, where capsys is not available."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    assert "Traceback" not in err.getvalue()
    return code, out.getvalue()


@dataclass(frozen=True)
class World:
    folder: Path
    good: Path
    first_text: str  # `ingest` in text form
    second: dict[str, Any]  # the same file again, --json


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Connection Acme (push) with one good file ingested twice: run 1 loads, run 2 is a
    duplicate. Tests using it only read, or change actions 1 and 2."""
    folder = tmp_path_factory.mktemp("world")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONNECTBATCH_HOME", str(folder / "home"))
        mp.delenv("CONNECTBATCH_DB", raising=False)
        assert quietly("connection", "add", "--name", "Acme", *PUSH)[0] == 0
        keys = [f"cs-{i:03d}" for i in range(GOOD_ROWS)]
        good = write_calls(folder / "good.csv", keys, bad_campaign=True)
        code, first = quietly("ingest", str(good), "--connection", "Acme")
        assert code == 0, first
        code, second = quietly("ingest", str(good), "--connection", "Acme", "--json")
        assert code == 0, second
        yield World(folder, good, first, json.loads(second))


@pytest.fixture
def in_world(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("CONNECTBATCH_HOME", str(world.folder / "home"))
    return world


# ----------------------------------------------------------------------------- connections


def test_push_connection_prints_its_login_once(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = cli(capsys, "connection", "add", "--name", "Acme", "--type", "call_conversions", *PUSH)

    assert "created connection 1: Acme" in out
    assert "will not be shown again" in out
    login = dict(line.split(None, 1) for line in out.split("shown again.")[1].strip().splitlines())
    assert login["port"] == "2222" and login["username"].startswith("cb_acme")
    password = login["password"]
    assert len(password) >= 16
    for argv in (["connection", "list"], ["connection", "show", "Acme"]):
        assert password not in cli(capsys, *argv)
        assert password not in cli(capsys, *argv, "--json")
    shown = cli_json(capsys, "connection", "show", "acme")  # names are case-insensitive
    assert [c["kind"] for c in shown["credentials"]] == ["provisioned"]
    assert shown["credentials"][0]["username"] == login["username"]


def test_an_email_connection_needs_its_attachment_pattern(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed: "The Email method requires that you add a wildcard pattern that matches
    filenames of attachments". Without one the CLI took `*`: a signature image001.png became a
    file, and a Failed run marked the connection Failed."""
    cli_error(
        capsys, "connection", "add", "--name", "Mailbox", "--direction", "inbound",
        "--method", "email", "--methodology", "push", mentions="--pattern: is required for the Email method",
    )  # fmt: skip


def test_push_connection_json_carries_the_login(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    added = cli_json(
        capsys, "connection", "add", "--name", "Mailbox", "--direction", "inbound",
        "--method", "email", "--methodology", "push", "--return-email", "ops@acme.example",
        "--pattern", "calls_*.csv",
    )  # fmt: skip

    assert added["connection"]["method"] == "email"
    assert added["connection"]["return_email"] == "ops@acme.example"
    login = added["provisioned"]
    assert login["email_address"].endswith("@connectbatch.local")
    assert login["username"] and login["password"]
    assert login["password"] not in cli(capsys, "connection", "list", "--json")


def test_pull_connection_reads_the_password_from_stdin_and_never_shows_it(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-Pa55\n"))

    out = cli(
        capsys, "connection", "add", "--name", "Vendor", "--direction", "inbound",
        "--method", "sftp", "--methodology", "pull", "--host", "sftp.vendor.example",
        "--port", "22", "--folder", "/outgoing", "--pattern", "Calls_*.csv",
        "--username", "acme", "--password-stdin", "--schedule", "0 6 * * *",
    )  # fmt: skip

    assert "credential stored (encrypted)" in out
    assert "will not be shown again" not in out
    shown = cli(capsys, "connection", "show", "Vendor")
    assert "sftp.vendor.example:22" in shown and "0 6 * * *" in shown
    as_json = cli_json(capsys, "connection", "show", "Vendor")
    (credential,) = as_json["credentials"]
    assert credential["username"] == "acme" and credential["has_secret"] is True
    for text in (out, shown, json.dumps(as_json), cli(capsys, "connection", "list")):
        assert "s3cret-Pa55" not in text

    monkeypatch.setattr(sys, "stdin", io.StringIO("n3w-Pa55\n"))
    edited = cli(capsys, "connection", "edit", "Vendor", "--password-stdin")
    assert "new main credential stored" in edited and "n3w-Pa55" not in edited
    main_first = cli_json(capsys, "connection", "show", "Vendor")["credentials"]
    assert [(c["is_main"], c["username"]) for c in main_first] == [(True, "acme"), (False, "acme")]


def test_edit_changes_only_the_options_given(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "connection", "add", "--name", "Acme", *PUSH, "--schedule", "*/15 * * * *")

    edited = cli_json(capsys, "connection", "edit", "Acme", "--lock-days", "7", "--pattern", "*.csv")
    assert edited["connection"]["lock_days"] == 7
    assert edited["connection"]["pattern"] == "*.csv"
    assert edited["connection"]["schedule"] == "*/15 * * * *"
    assert edited["provisioned"] is None

    out = cli(capsys, "connection", "edit", "1", "--schedule", "", "--name", "Acme Calls")
    assert "updated connection 1: Acme Calls" in out
    listed = cli_json(capsys, "connection", "list")
    assert [(c["name"], c["schedule"], c["lock_days"]) for c in listed] == [("Acme Calls", None, 7)]
    cli_error(capsys, "connection", "edit", "Acme Calls", mentions="nothing to change")


def test_redelivery_and_catalog_mode_flags(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    added = cli_json(capsys, "connection", "add", "--name", "Acme", *PUSH, "--redelivery", "supersede")
    assert added["connection"]["redelivery"] == "supersede"
    assert added["connection"]["catalog_mode"] == "updates"  # the default
    cli(capsys, "connection", "add", "--name", "Shop", "--type", "product_catalogs", *PUSH)
    edited = cli_json(capsys, "connection", "edit", "Shop", "--catalog-mode", "snapshot")
    assert (edited["connection"]["catalog_mode"], edited["connection"]["redelivery"]) == (
        "snapshot", "new_keys_only",
    )  # fmt: skip
    assert "re-delivery" in cli(capsys, "connection", "show", "Acme")


def test_delete_asks_for_yes(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli(capsys, "connection", "add", "--name", "Acme", *PUSH)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal: no one to ask

    cli_error(capsys, "connection", "delete", "Acme", mentions="--yes")
    assert "deleted connection 1: Acme" in cli(capsys, "connection", "delete", "Acme", "--yes")

    assert cli_json(capsys, "connection", "list") == []
    assert "no connections yet" in cli(capsys, "connection", "list")
    cli_error(capsys, "connection", "show", "Acme", mentions="no connection named 'Acme'")


PULL = ["--direction", "inbound", "--method", "sftp", "--methodology", "pull", "--host", "h"]


@pytest.mark.parametrize(
    ("extra", "mentions"),
    [
        (["--type", "phone_calls", *PUSH], "--type: unknown data type 'phone_calls'"),
        ([*PULL, "--folder", "incoming/calls"], "--folder: must be an absolute path"),
        ([*PUSH, "--schedule", "every day"], "--schedule: 'every day' is not a cron expression"),
        (
            [*PUSH, "--return-email", "ops-at-acme"],
            "--return-email: 'ops-at-acme' is not an e-mail",
        ),
        ([*PUSH, "--timezone", "Mars/Olympus"], "--timezone"),
        ([*PUSH, "--port", "http"], "argument --port: expected a whole number"),
        (["--direction", "sideways", "--method", "sftp", "--methodology", "push"], "sideways"),
        ([*PUSH, "--username", "bob"], "are for pull connections"),
        ([*PULL, "--folder", "/x", "--password", "a", "--password-stdin"], "not both"),
        ([*PULL, "--folder", "/x", "--key-file", "/nonexistent/id_rsa"], "--key-file: cannot read"),
        (
            ["--direction", "outbound", "--method", "sftp", "--methodology", "push"],
            "--methodology: outbound connections",
        ),
    ],
)
def test_bad_connection_values_are_one_error_line(
    in_world: World, capsys: pytest.CaptureFixture[str], extra: list[str], mentions: str
) -> None:
    cli_error(capsys, "connection", "add", "--name", "Bad", *extra, mentions=mentions)
    assert [c["name"] for c in cli_json(capsys, "connection", "list")] == ["Acme"]


def test_a_name_is_used_once(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "connection", "add", "--name", "Acme", *PUSH)
    cli_error(capsys, "connection", "add", "--name", "Acme", *PUSH, mentions="already exists")


# --------------------------------------------------------------------------- ingest and runs


def test_ingest_prints_the_run(in_world: World, capsys: pytest.CaptureFixture[str]) -> None:
    out = in_world.first_text
    assert out.startswith("run 1  Completed  connection Acme")
    assert f"{GOOD_ROWS} accepted, 1 rejected, 0 duplicates" in out
    assert f"{GOOD_ROWS} created" in out
    assert "good.csv  loaded" in out

    run = cli_json(capsys, "run", "show", "1")
    assert run["status"] == "Completed" and run["connection"] == "Acme"
    assert (run["rows_accepted"], run["rows_rejected"], run["actions_created"]) == (
        GOOD_ROWS,
        1,
        GOOD_ROWS,
    )
    assert [f["state"] for f in run["files"]] == ["loaded"]
    (check,) = run["validation"]
    assert check["success"] is True and check["critical_failures"] == []
    assert all({"name", "severity", "success", "summary"} <= set(o) for o in check["outcomes"])


def test_the_same_file_again_is_a_duplicate(in_world: World, capsys: pytest.CaptureFixture[str]) -> None:
    again = in_world.second
    assert again["id"] == 2 and again["status"] == "Completed"
    assert (again["rows_accepted"], again["rows_duplicate"], again["actions_created"]) == (
        0,
        GOOD_ROWS,
        0,
    )
    (ledger,) = again["files"]
    assert ledger["state"] == "duplicate" and "same content as 'good.csv'" in ledger["message"]
    assert cli_json(capsys, "actions", "--connection", "Acme")["total"] == GOOD_ROWS


def test_runs_lists_the_history(in_world: World, capsys: pytest.CaptureFixture[str]) -> None:
    out = cli(capsys, "runs")
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["RUN", "CONNECTION", "TRIGGER", "STATUS"]
    assert [row.split()[0] for row in rows] == ["2", "1"]
    assert "UTC" in rows[0]

    runs = cli_json(capsys, "runs", "--connection", "Acme", "--limit", "1")
    assert [r["id"] for r in runs] == [2]
    cli_error(capsys, "runs", "--connection", "Nobody", mentions="no connection named 'Nobody'")
    cli_error(capsys, "runs", "--limit", "0", mentions="--limit")
    # over what the store takes: an "internal error" with DuckDB's message before, exit 3
    for command in (["runs", "--limit"], ["actions", "--offset"], ["rejects", "1", "--limit"]):
        cli_error(capsys, *command, str(10**20), mentions="must be at most 9,223,372,036,854,775,807")


def test_run_show_has_files_and_validation(in_world: World, capsys: pytest.CaptureFixture[str]) -> None:
    out = cli(capsys, "run", "show", "1")

    assert "files:" in out and "good.csv" in out
    assert "validation of file 1 (good.csv): passed; 0 critical failures" in out
    cli_error(capsys, "run", "show", "99", mentions="there is no run 99")
    cli_error(capsys, "run", "show", "abc", mentions="'abc' is not a run id")


def test_rejects_list_line_column_value_and_reason(
    in_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    out = cli(capsys, "rejects", "1")
    header, row = out.splitlines()
    assert header.split() == ["FILE", "LINE", "KEY", "COLUMN", "VALUE", "REASON"]
    # the file by its name (it was its number)
    assert row.split()[:5] == ["good.csv", str(GOOD_ROWS + 2), "'cs-bad'", "CampaignId", "'12a4'"]

    (reject,) = cli_json(capsys, "rejects", "1", "--limit", "5")
    assert (reject["file"], reject["line"], reject["key"], reject["column"], reject["value"]) == (
        "good.csv",
        GOOD_ROWS + 2,
        "cs-bad",
        "CampaignId",
        "12a4",
    )
    assert reject["reason"]
    assert "no rejected rows" in cli(capsys, "rejects", "2")


# --------------------------------------------------------------------------------- actions


def test_actions_list_with_days_to_lock(in_world: World, capsys: pytest.CaptureFixture[str]) -> None:
    page = cli_json(capsys, "actions", "--limit", "5", "--offset", "10")
    assert page["total"] == GOOD_ROWS
    assert [a["label"] for a in page["actions"]] == [f"A-{i:06d}" for i in range(11, 16)]
    assert {a["days_to_lock"] for a in page["actions"]} <= {29, 30}  # lock 30 days, dated yesterday
    assert {a["connection"] for a in page["actions"]} == {"Acme"}

    out = cli(capsys, "actions", "--connection", "Acme", "--status", "pending", "--limit", "3")
    lines = out.splitlines()
    assert "LOCKS IN" in lines[0]
    assert lines[1].startswith("A-0000")
    assert "days" in lines[1] and "UTC" in lines[1]
    assert lines[-1].startswith("1-3 of ") and lines[-1].endswith(" actions")
    cli_error(capsys, "actions", "--status", "maybe", mentions="--status")


def test_modify_reverse_and_audit(
    in_world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    modified = cli_json(capsys, "action", "modify", "1", "--amount", "20", "--reason", "price fix",
                        "--actor", "alice")  # fmt: skip
    assert (modified["label"], modified["status"], modified["amount"]) == (
        "A-000001",
        "MODIFIED",
        "20.00",
    )
    assert modified["original_amount"] == "12.50"

    monkeypatch.setattr(getpass, "getuser", lambda: "tester")
    out = cli(capsys, "action", "modify", "A-000001", "--amount", "21.5")
    assert out.startswith("action A-000001  MODIFIED  amount 21.50 (original 12.50)")

    reversed_ = cli_json(capsys, "action", "reverse", "a2", "--reason", "refund")
    assert (reversed_["status"], reversed_["amount"]) == ("REVERSED", "0.00")

    audit = cli_json(capsys, "action", "audit", "1")
    assert [(e["actor"], e["change"], e["new_amount"]) for e in audit["audit"]] == [
        ("alice", "modify", "20.00"),
        ("tester", "modify", "21.50"),
    ]
    text = cli(capsys, "action", "audit", "A-000002")
    assert "PENDING -> REVERSED" in text and "12.50 -> 0.00" in text and "refund" in text

    cli_error(capsys, "action", "reverse", "1", mentions="--reason")
    cli_error(capsys, "action", "modify", "x", "--amount", "1", mentions="not an action id")
    cli_error(capsys, "action", "modify", "9999", "--amount", "1", mentions="no action A-009999")
    cli_error(capsys, "action", "modify", "3", "--amount", "-1", mentions="cannot be negative")
    cli_error(capsys, "action", "audit", "A-009999", mentions="no action A-009999")


def test_lock_then_changes_are_refused(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli(capsys, "connection", "add", "--name", "Acme", *PUSH, "--lock-days", "10")
    cli(capsys, "ingest", str(write_calls(tmp_path / "few.csv", ["k1", "k2", "k3"])),
        "--connection", "Acme")  # fmt: skip

    assert cli(capsys, "lock").startswith("locked 0 actions due by ")
    locked = cli_json(capsys, "lock", "--now", "2100-01-01T00:00:00Z", "--early")
    assert locked == {"locked": 3, "now": "2100-01-01T00:00:00+00:00"}

    assert cli_json(capsys, "actions", "--status", "LOCKED")["total"] == 3
    cli_error(capsys, "action", "modify", "1", "--amount", "5", mentions="locked")
    cli_error(capsys, "action", "reverse", "A-000002", "--reason", "late", mentions="locked")
    cli_error(capsys, "lock", "--now", "next week", mentions="not an ISO 8601 time")
    assert cli_json(capsys, "action", "audit", "3")["audit"][0]["change"] == "lock"


def test_lock_at_a_future_time_is_refused_without_early(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`lock --now` in the future locks actions before their lock period ends, for good: a
    mistyped year must not do that silently. It is refused (exit 2, nothing locked) unless
    --early says it is meant; a past or present --now needs no flag."""
    cli(capsys, "connection", "add", "--name", "Acme", *PUSH, "--lock-days", "10")
    cli(capsys, "ingest", str(write_calls(tmp_path / "few.csv", ["k1", "k2", "k3"])),
        "--connection", "Acme")  # fmt: skip

    cli_error(capsys, "lock", "--now", "2100-01-01T00:00:00Z",
              mentions="2100-01-01 00:00:00 UTC is in the future")  # fmt: skip
    cli_error(capsys, "lock", "--now", "2100-01-01T00:00:00Z", mentions="add --early")
    assert cli_json(capsys, "actions", "--status", "PENDING")["total"] == 3
    assert cli_json(capsys, "lock", "--now", "2020-01-01T00:00:00Z")["locked"] == 0


def test_ingest_of_several_files_gives_each_its_run(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Several files: a run each, committed as a group (issue 13); exit 1 when one did not
    load, the others loaded all the same."""
    cli(capsys, "connection", "add", "--name", "Acme", *PUSH)
    one = write_calls(tmp_path / "one.csv", ["g1", "g2"])
    two = write_calls(tmp_path / "two.csv", ["g3"])
    held = write_calls(tmp_path / "held.csv", ["g4", "g4"])  # a key twice: held for review

    runs = cli_json(capsys, "ingest", str(one), str(two), str(held), "--connection", "Acme", code=1)

    assert [r["status"] for r in runs] == ["Completed", "Completed", "Needs review"]
    assert [[f["name"] for f in r["files"]] for r in runs] == [["one.csv"], ["two.csv"], ["held.csv"]]
    assert cli_json(capsys, "actions")["total"] == 3
    text = cli(capsys, "ingest", str(one), str(two), "--connection", "Acme")  # both duplicates now
    assert text.count("Completed") == 2 and "one.csv" in text and "two.csv" in text


# ------------------------------------------------------------------------- quarantine, retry


def test_quarantine_release_and_discard(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli(capsys, "connection", "add", "--name", "Acme", *PUSH)
    repeats = write_calls(tmp_path / "repeats.csv", ["r1", "r2", "r1", "r2", "r3"])
    other = write_calls(tmp_path / "other.csv", ["o1", "o1"])

    held = cli_json(capsys, "ingest", str(repeats), "--connection", "Acme", code=1)
    assert (held["status"], held["review"], held["actions_created"]) == ("Needs review", "quarantined", 0)
    assert "CallSessionId" in held["reason"]
    out = cli(capsys, "ingest", str(other), "--connection", "Acme", code=1)
    assert out.startswith("run 2  Needs review (quarantined)")

    listed = cli(capsys, "quarantine", "list")
    assert "repeats.csv" in listed and "other.csv" in listed
    assert [r["id"] for r in cli_json(capsys, "quarantine", "list")] == [2, 1]
    assert cli_json(capsys, "actions")["total"] == 0

    released = cli_json(capsys, "quarantine", "release", "1", "--note", "checked", "--actor", "bob")
    # r1, r2, r3: a key the batch repeats is loaded once (the repeats answered as rejected)
    assert (released["status"], released["review"], released["actions_created"]) == (
        "Completed",
        "released",
        3,
    )
    discarded = cli_json(capsys, "quarantine", "discard", "2", "--note", "junk")
    assert discarded["review"] == "discarded"
    assert [f["state"] for f in discarded["files"]] == ["discarded"]

    assert "nothing is quarantined" in cli(capsys, "quarantine", "list")
    assert cli_json(capsys, "quarantine", "list") == []
    assert cli_json(capsys, "actions")["total"] == 3
    cli_error(capsys, "quarantine", "release", "1", mentions="not quarantined")
    cli_error(capsys, "quarantine", "discard", "7", mentions="no run 7")


def test_retrying_a_discarded_run_says_a_reviewer_discarded_it(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """It said "its files were loaded, duplicates or never fetched", none of which is so."""
    cli(capsys, "connection", "add", "--name", "Acme", *PUSH)
    repeats = write_calls(tmp_path / "repeats.csv", ["r1", "r2", "r1"])
    held = cli_json(capsys, "ingest", str(repeats), "--connection", "Acme", code=1)
    cli_json(capsys, "quarantine", "discard", str(held["id"]), "--note", "junk")

    error = cli_error(capsys, "retry", str(held["id"]), mentions="was discarded by a reviewer")
    assert "the partner must send the file again" in error and "loaded, duplicates" not in error


def test_retry_a_failed_run(home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cli(capsys, "connection", "add", "--name", "Acme", *PUSH)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")  # no required column: rejected before validation

    failed = cli_json(capsys, "ingest", str(wrong), "--connection", "Acme", code=1)
    assert failed["status"] == "Failed" and "required" in failed["reason"]
    assert [f["state"] for f in failed["files"]] == ["rejected"]

    again = cli_json(capsys, "retry", str(failed["id"]), code=1)
    assert (again["retry_of"], again["trigger"]) == (failed["id"], "retry")
    assert "retry of run 1" in cli(capsys, "run", "show", str(again["id"]))
    cli_error(capsys, "retry", "99", mentions="no run 99")


def test_ingest_input_errors(in_world: World, capsys: pytest.CaptureFixture[str]) -> None:
    cli_error(capsys, "ingest", "missing.csv", "--connection", "Acme", mentions="no file")
    # A folder or a pipe is named as such, not as a file that is not there.
    cli_error(capsys, "ingest", str(in_world.folder), "--connection", "Acme", mentions="is a folder")
    fifo = in_world.folder / "calls.fifo"
    os.mkfifo(fifo)
    try:
        cli_error(capsys, "ingest", str(fifo), "--connection", "Acme", mentions="not a regular file")
    finally:
        fifo.unlink()
    cli_error(capsys, "ingest", str(in_world.good), "--connection", "Nobody", mentions="Nobody")
    cli_error(capsys, "ingest", str(in_world.good), mentions="--connection")
    cli_error(capsys, "retry", "1", mentions="only failed runs can be retried")
    cli_error(capsys, "quarantine", "release", "1", mentions="not quarantined")
    cli_error(capsys, "connection", mentions="SUBCOMMAND")


@pytest.mark.parametrize("data_type", ["call_conversions", "conversions", "clicks", "product_catalogs"])
def test_the_downloaded_template_ingests_as_it_is(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, data_type: str
) -> None:
    """A partner's first test is often the template itself: its example row must load on
    the day it is downloaded. Its date was fixed (2026-03-01), so once that was more than
    90 days ago the template was quarantined as too old."""
    cli(capsys, "connection", "add", "--name", "T", "--type", data_type, *PUSH)
    template = tmp_path / "template.csv"
    template.write_text(cli(capsys, "template", data_type), encoding="utf-8")
    run = cli_json(capsys, "ingest", str(template), "--connection", "T")
    assert (run["status"], run["rows_accepted"], run["rows_rejected"]) == ("Completed", 1, 0), run


def test_a_file_whose_every_row_is_rejected_is_refused_not_held_with_nothing_to_release(
    home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Every row rejected: there is nothing a reviewer could release (it was quarantined
    "with 0 rows to release", and releasing made a Completed run that loaded nothing). The
    file is refused at once: run Failed with the first reject in its reason, the rejects
    listed, a results file telling the partner each row's reason and the whole file's."""
    cli(capsys, "connection", "add", "--name", "Acme", *PUSH)
    bad = tmp_path / "bad.csv"
    bad.write_text(write_calls(tmp_path / "x.csv", ["b1", "b2"]).read_text().replace("\n1234,", "\n12a4,"))

    run = cli_json(capsys, "ingest", str(bad), "--connection", "Acme", code=1)

    assert (run["status"], run["review"], run["rows_rejected"], run["actions_created"]) == (
        "Failed",
        None,
        2,
        0,
    )
    assert "every row was rejected (2 of 2)" in run["reason"] and "line 2: CampaignId" in run["reason"]
    assert [f["state"] for f in run["files"]] == ["rejected"]
    assert cli_json(capsys, "quarantine", "list") == []
    listed = cli_json(capsys, "rejects", str(run["id"]))
    assert [(r["line"], r["column"], r["key"]) for r in listed] == [
        (2, "CampaignId", "b1"),
        (3, "CampaignId", "b2"),
    ]
    (answer,) = (home / "outbound").glob("*/*bad.csv.results.csv")
    rows = list(csv.DictReader(answer.open(encoding="utf-8")))
    assert [(r["Line"], r["CallSessionId"], r["Status"]) for r in rows] == [
        ("0", "", "FILE_REJECTED"),
        ("2", "b1", "REJECTED"),
        ("3", "b2", "REJECTED"),
    ]
    assert "every row was rejected" in rows[0]["Reason"] and "CampaignId" in rows[1]["Reason"]


def test_locks_in_counts_the_whole_units_left() -> None:
    """It said "1 day" for an action locking in 3 minutes (days rounded up)."""
    import datetime as dt
    from decimal import Decimal

    from connectbatch.cli.actions import _locks
    from connectbatch.models import Action, ActionStatus

    now = dt.datetime(2026, 12, 6, 22, 0, tzinfo=dt.UTC)

    def locks_in(left: dt.timedelta) -> str:
        action = Action(
            id=1, connection_id=1, run_id=1, line=2, data_type="call_conversions", source_key="c",
            event_date=now, amount=Decimal(1), original_amount=Decimal(1), status=ActionStatus.PENDING,
            lock_at=now + left,
        )  # fmt: skip
        return _locks(action, now)

    assert locks_in(dt.timedelta(minutes=3)) == "3 minutes"
    assert locks_in(dt.timedelta(seconds=20)) == "1 minute"
    assert locks_in(dt.timedelta(hours=5, minutes=59)) == "5 hours"
    assert locks_in(dt.timedelta(days=2, hours=23)) == "2 days"
    assert locks_in(dt.timedelta(days=1)) == "1 day"
    assert locks_in(dt.timedelta(0)) == "due"


def test_run_show_says_which_run_retried_it(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found by a push audit: a run a start took in again (its upload, as run N) still read
    "nothing was loaded; retry it" in `run show`, where the app says "Retried as run N"."""
    from connectbatch.services import Services
    from connectbatch.settings import Settings

    cli(capsys, "connection", "add", "--name", "Acme", "--type", "call_conversions", *PUSH)
    services = Services(Settings.from_env())
    connection = services.connection("Acme")
    first = services.ingestor.finish_run(services.ingestor.start_run(connection, "push"), "interrupted")
    again = services.ingestor.finish_run(services.ingestor.start_run(connection, "push", retry_of=first.id))

    assert f"  retried   as run {again.id} (Completed)\n" in cli(capsys, "run", "show", str(first.id))
    assert cli_json(capsys, "run", "show", str(first.id))["retried_as"] == again.id
    assert cli_json(capsys, "run", "show", str(again.id))["retried_as"] is None
