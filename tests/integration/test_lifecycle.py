"""Pending actions: modify, reverse, lock, the audit trail, and action-modification files."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from helpers import call_csv, modifications_csv
from helpers.store import count, results_of

from connectbatch.models import Action, ActionStatus, RunStatus
from connectbatch.pipeline.dryrun import Would
from connectbatch.pipeline.lifecycle import ActionError
from connectbatch.services import InvalidInputError, NotFoundError, Services


@pytest.fixture
def actions(services: Services, make_connection) -> list[Action]:
    """Ten PENDING actions of connection Acme (lock period 30 days), amounts 10.00 ... 19.00."""
    make_connection("Acme", lock_days=30)
    run = services.ingest_bytes("Acme", "calls.csv", call_csv(10))
    assert run.status is RunStatus.COMPLETED, run.reason
    found = services.actions("Acme")
    assert [a.status for a in found] == [ActionStatus.PENDING] * 10
    return found


def test_modify_changes_the_amount_and_is_audited(services: Services, actions: list[Action]) -> None:
    a = actions[0]
    before = dt.datetime.now(dt.UTC)

    changed = services.modify_action(a.label, "25.50", reason="upsell confirmed", actor="alice")

    assert changed.status is ActionStatus.MODIFIED
    assert changed.amount == Decimal("25.50")
    assert changed.original_amount == a.amount == Decimal("10.00")
    assert services.action(a.id) == changed
    [entry] = services.audit(a.id)
    assert (entry.actor, entry.change) == ("alice", "modify")
    assert (entry.old_status, entry.new_status) == ("PENDING", "MODIFIED")
    assert (entry.old_amount, entry.new_amount) == (Decimal("10.00"), Decimal("25.50"))
    assert entry.reason == "upsell confirmed"
    assert (
        before - dt.timedelta(seconds=5)
        <= entry.changed_at
        <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    )

    # a second change is audited from the new state; other actions are untouched
    services.modify_action(a.id, Decimal("30"), reason=None, actor="bob")
    second = services.audit(a.id)[1]
    assert (second.actor, second.old_status, second.old_amount, second.new_amount) == (
        "bob", "MODIFIED", Decimal("25.50"), Decimal("30.00"),
    )  # fmt: skip
    assert services.action(actions[1].id).status is ActionStatus.PENDING
    assert services.audit(actions[1].id) == []


def test_reverse_needs_a_reason_and_sets_the_amount_to_zero(
    services: Services, actions: list[Action]
) -> None:
    a = actions[1]
    for empty in ("", "   "):
        with pytest.raises(ActionError, match="reason"):
            services.reverse_action(a.id, empty, actor="alice")
    with pytest.raises(ActionError, match="reason"):  # amount 0 is a reversal too
        services.modify_action(a.id, "0", reason=None, actor="alice")
    assert services.action(a.id).status is ActionStatus.PENDING
    assert services.audit(a.id) == []

    reversed_ = services.reverse_action(a.label, "customer returned the goods", actor="alice")

    assert reversed_.status is ActionStatus.REVERSED
    assert reversed_.amount == Decimal("0.00")
    assert reversed_.original_amount == Decimal("11.00")
    assert reversed_.reason == "customer returned the goods"
    [entry] = services.audit(a.id)
    assert (entry.actor, entry.change, entry.old_status, entry.new_status) == (
        "alice", "reverse", "PENDING", "REVERSED",
    )  # fmt: skip
    assert (entry.old_amount, entry.new_amount) == (Decimal("11.00"), Decimal("0.00"))
    with pytest.raises(ActionError, match="already reversed"):
        services.reverse_action(a.id, "again", actor="alice")


def test_bad_changes_are_refused_with_clear_errors(services: Services, actions: list[Action]) -> None:
    a = actions[2]
    with pytest.raises(ActionError, match="negative"):
        services.modify_action(a.id, "-1", reason="x", actor="alice")
    with pytest.raises(ActionError, match="not an amount"):
        services.modify_action(a.id, "ten", reason="x", actor="alice")
    with pytest.raises(ActionError, match="A-999999"):
        services.modify_action(999_999, "1", reason="x", actor="alice")
    with pytest.raises(ActionError, match="not an action id"):
        services.modify_action("bogus", "1", reason="x", actor="alice")
    with pytest.raises(NotFoundError):
        services.action(999_999)
    assert services.audit(a.id) == []


def test_lock_at_a_given_time(services: Services, actions: list[Action]) -> None:
    first_lock = min(a.lock_at for a in actions)
    last_lock = max(a.lock_at for a in actions)
    assert first_lock < last_lock  # the fixture's event dates differ
    services.modify_action(actions[0].id, "12.34", reason="fix", actor="alice")

    assert services.lock_actions(now=first_lock - dt.timedelta(seconds=1), early=True) == 0
    due_first = sum(a.lock_at <= first_lock for a in actions)
    assert services.lock_actions(now=first_lock, early=True, actor="carol") == due_first
    assert services.lock_actions(now=last_lock, early=True, actor="carol") == len(actions) - due_first
    assert services.lock_actions(now=last_lock + dt.timedelta(days=1), early=True) == 0  # idempotent

    locked = services.actions("Acme")
    assert {a.status for a in locked} == {ActionStatus.LOCKED}
    assert services.count_actions("Acme", "LOCKED") == len(actions)
    assert locked[0].amount == Decimal("12.34")  # locking keeps the modified amount
    entry = services.audit(actions[0].id)[-1]
    # a lock before the lock period ends is the person's, said so (it read "system", "lock
    # period ended", as if the lock job had run)
    assert (entry.actor, entry.change, entry.old_status, entry.new_status) == (
        "carol", "lock", "MODIFIED", "LOCKED",
    )  # fmt: skip
    assert (entry.reason or "").startswith("locked early by carol, as due by ")

    for change in (
        lambda: services.modify_action(actions[3].id, "1.00", reason="late", actor="alice"),
        lambda: services.reverse_action(actions[3].id, "late", actor="alice"),
        lambda: services.modify_action(actions[3].id, "0", reason="late", actor="alice"),
    ):
        with pytest.raises(ActionError, match=r"A-\d{6} is locked.*can no longer change"):
            change()
    assert services.action(actions[3].id).amount == actions[3].amount
    assert [e.change for e in services.audit(actions[3].id)] == ["lock"]


def test_a_passed_lock_time_refuses_changes_before_the_lock_job_ran(
    services: Services, settings, actions: list[Action]
) -> None:
    a = actions[4]
    later = a.lock_at + dt.timedelta(minutes=1)
    after_lock = Services(settings, clock=lambda: later)  # same data directory, 30 days on

    with pytest.raises(ActionError, match="locked"):
        after_lock.modify_action(a.id, "99.00", reason="too late", actor="alice")
    with pytest.raises(ActionError, match="locked"):
        after_lock.reverse_action(a.id, "too late", actor="alice")

    assert services.action(a.id).status is ActionStatus.PENDING  # the lock job has not run
    assert services.action(a.id).amount == a.amount
    assert services.audit(a.id) == []
    # a minute before its lock time the same change is still allowed
    before = Services(settings, clock=lambda: a.lock_at - dt.timedelta(minutes=1))
    assert (
        before.modify_action(a.id, "99.00", reason="in time", actor="alice").status is ActionStatus.MODIFIED
    )


def test_an_action_modifications_file(services: Services, make_connection, actions: list[Action]) -> None:
    # actions of a second connection whose lock period is over at once
    make_connection("Old calls", lock_days=0)
    services.ingest_bytes("Old calls", "old.csv", call_csv(2, prefix="old"))
    # already past their lock when created: LOCKED at once (issue 11, late-events policy "lock")
    assert services.lock_actions() == 0
    locked = services.actions("Old calls")[0]
    assert locked.status is ActionStatus.LOCKED
    make_connection("Acme returns", data_type="action_modifications")
    modify, reverse = actions[0], actions[1]
    data = modifications_csv(
        [
            (modify.label, "15.00", "price corrected"),  # line 2: applied
            (str(reverse.id), "0", "returned"),  # line 3: applied, a reversal
            ("A-999999", "5.00", "unknown"),  # line 4: no such action
            (locked.label, "1.00", "too late"),  # line 5: locked
        ]
    )

    run = services.ingest_bytes("Acme returns", "returns.csv", data)

    assert run.status is RunStatus.COMPLETED, run.reason
    [f] = services.run_files(run.id)
    assert f.state == "loaded"

    m = services.action(modify.id)
    assert (m.status, m.amount, m.reason) == (
        ActionStatus.MODIFIED,
        Decimal("15.00"),
        "price corrected",
    )
    r = services.action(reverse.id)
    assert (r.status, r.amount, r.reason) == (ActionStatus.REVERSED, Decimal("0.00"), "returned")
    for action, change in ((modify, "modify"), (reverse, "reverse")):
        [entry] = services.audit(action.id)
        assert (entry.actor, entry.change) == (f"file:{f.id}", change)
    assert services.action(locked.id).amount == locked.amount
    assert [e.change for e in services.audit(locked.id)] == ["lock"]
    untouched = [a for a in services.actions("Acme") if a.id not in (modify.id, reverse.id)]
    assert {a.status for a in untouched} == {ActionStatus.PENDING}
    assert services.count_actions() == 12  # a modifications file creates no actions

    rejects = {r.line: r for r in services.rejects(run.id)}
    assert sorted(rejects) == [4, 5]
    assert (rejects[4].column, rejects[4].value) == ("ActionId", "A-999999")
    assert "no such action" in rejects[4].reason
    assert rejects[5].value == locked.label and "locked" in rejects[5].reason

    rows, summary = results_of(services, "Acme returns", run.id)
    assert [(int(r["Line"]), r["Status"]) for r in rows] == [
        (2, "ACCEPTED"), (3, "ACCEPTED"), (4, "REJECTED"), (5, "REJECTED"),
    ]  # fmt: skip
    assert "no such action" in rows[2]["Reason"] and "locked" in rows[3]["Reason"]
    assert (summary["rows_accepted"], summary["rows_rejected"]) == (2, 2)
    assert (run.rows_accepted, run.rows_rejected) == (2, 2)
    # Only the rows that stand are stored: exports and the data view read them, and listed
    # the refused ones as changes made (actions audit); the rejects keep the others.
    assert count(services, "action_modifications", run_id=run.id) == 2


def test_a_released_modifications_file_reports_the_rows_it_could_not_apply(
    services: Services, make_connection, actions: list[Action]
) -> None:
    make_connection("Acme returns", data_type="action_modifications")
    data = modifications_csv(
        [
            (actions[0].label, "15.00", "price corrected"),  # line 2: applied on release
            (actions[1].label, "-3.00", "typo"),  # line 3: negative -> quarantined, then refused
            ("A-999999", "1.00", "unknown"),  # line 4: no such action
        ]
    )
    run = services.ingest_bytes("Acme returns", "returns.csv", data)
    assert run.review == "quarantined"
    assert "Amount must not be negative" in (run.reason or "")
    assert "(line 3), e.g. -3.00." in (run.reason or "")  # as sent: it said -3.0, GX's float
    assert services.action(actions[0].id).status is ActionStatus.PENDING

    released = services.release(run.id, actor="carol")

    assert released.status is RunStatus.COMPLETED
    assert (released.rows_accepted, released.rows_rejected) == (1, 2)
    assert (released.actions_created, released.actions_changed) == (0, 1)  # applied, none created
    assert services.action(actions[0].id).amount == Decimal("15.00")
    assert services.action(actions[1].id).status is ActionStatus.PENDING
    [entry] = services.audit(actions[0].id)
    [f] = services.run_files(run.id)
    assert entry.actor == f"file:{f.id}"
    assert (f.state, f.rows_accepted, f.rows_rejected) == ("loaded", 1, 2)
    rejects = {r.line: r.reason for r in services.rejects(run.id)}
    assert sorted(rejects) == [3, 4]
    assert "negative" in rejects[3] and "no such action" in rejects[4]
    # the negative row names its Amount (it named the ActionId beside it), keyed by the action
    [negative] = [r for r in services.rejects(run.id) if r.line == 3]
    assert (negative.column, negative.value, negative.key) == ("Amount", "-3.00", actions[1].label)
    rows, summary = results_of(services, "Acme returns", run.id)
    assert [(int(r["Line"]), r["Status"]) for r in rows] == [
        (2, "ACCEPTED"), (3, "REJECTED"), (4, "REJECTED"),
    ]  # fmt: skip
    assert (summary["rows_accepted"], summary["rows_rejected"]) == (1, 2)


def test_a_modifications_file_changes_only_its_own_partners_actions(
    services: Services, make_connection, actions: list[Action]
) -> None:
    """Issue 11: a modifications connection of another partner cannot change Acme's actions;
    the row is refused exactly like an id that does not exist (no information leak)."""
    services.add_partner("Rival", "publisher")
    rival = services.partner("Rival").id
    make_connection("Rival returns", data_type="action_modifications", partner_id=rival)
    data = modifications_csv([(actions[0].label, "0", "returned"), ("A-999999", "0", "returned")])

    run = services.ingest_bytes("Rival returns", "returns.csv", data)

    assert services.action(actions[0].id).status is ActionStatus.PENDING
    assert services.audit(actions[0].id) == []
    reasons = {r.line: r.reason for r in services.rejects(run.id)}
    assert sorted(reasons) == [2, 3] and reasons[2] == reasons[3]  # same words as an unknown id

    # The same file through Acme's own partner applies.
    make_connection("Acme returns", data_type="action_modifications")
    own = modifications_csv([(actions[0].label, "0", "returned")])
    services.ingest_bytes("Acme returns", "returns.csv", own)
    assert services.action(actions[0].id).status is ActionStatus.REVERSED


def test_a_held_modifications_file_does_not_undo_a_change_a_person_made_while_it_waited(
    services: Services, make_connection, actions: list[Action]
) -> None:
    """Found by a partner manager: an undated row of a held file was dated at its release,
    so it counted as newer than a reversal a person made while the file waited, and undid
    it. An undated row is dated when its file arrived."""
    make_connection("Acme returns", data_type="action_modifications")
    data = modifications_csv(
        [(actions[0].label, "41.00", "partial refund"), (actions[1].label, "-3.00", "typo")]  # held
    )
    run = services.ingest_bytes("Acme returns", "returns.csv", data)
    assert run.review == "quarantined"
    services.reverse_action(actions[0].id, "fraud confirmed", actor="rita")

    released = services.release(run.id, actor="carol")

    assert released.rows_rejected == 2
    kept = services.action(actions[0].id)
    assert (kept.status, kept.amount) == (ActionStatus.REVERSED, Decimal("0.00"))
    [refused] = [r for r in services.rejects(run.id) if r.line == 2]
    assert refused.column == "ModificationDate" and "before the newer change" in (refused.reason or "")


def test_a_modifications_file_whose_every_row_is_refused_fails_and_may_come_again(
    services: Services, make_connection
) -> None:
    """It ended Completed, its file 'loaded': the brand was never told nothing applied, and
    the same bytes sent again once the actions existed were a duplicate, never applied."""
    make_connection("Acme", lock_days=30)
    make_connection("Acme returns", data_type="action_modifications")
    early = modifications_csv([("A-000001", "15.00", "price corrected"), ("A-000002", "0", "returned")])

    run = services.ingest_bytes("Acme returns", "returns.csv", early)  # no action exists yet

    assert run.status is RunStatus.FAILED
    assert "every row was rejected (2 of 2): no action changed" in (run.reason or "")
    assert "line 2: ActionId: no such action" in (run.reason or "")
    [f] = services.run_files(run.id)
    assert (f.state, f.rows_accepted, f.rows_rejected) == ("rejected", 0, 2)
    assert count(services, "action_modifications", run_id=run.id) == 0  # nothing kept of it
    rows, summary = results_of(services, "Acme returns", run.id)
    assert [(int(r["Line"]), r["ActionId"], r["Status"]) for r in rows] == [
        (0, "", "FILE_REJECTED"), (2, "A-000001", "REJECTED"), (3, "A-000002", "REJECTED"),
    ]  # fmt: skip  # each row names the action it asked for (the ActionIds were empty)
    assert (summary["status"], summary["rows_accepted"], summary["rows_rejected"]) == ("rejected", 0, 2)

    services.ingest_bytes("Acme", "calls.csv", call_csv(2))
    again = services.ingest_bytes("Acme returns", "returns.csv", early)  # the same bytes

    assert again.status is RunStatus.COMPLETED, again.reason
    assert (again.rows_accepted, again.actions_changed) == (2, 2)
    assert [a.status for a in services.actions("Acme")] == [ActionStatus.MODIFIED, ActionStatus.REVERSED]


def test_the_lock_job_is_system_and_a_person_cannot_pose_as_it(services: Services, make_connection) -> None:
    make_connection("Acme", lock_days=30)
    services.ingest_bytes("Acme", "calls.csv", call_csv(1))
    [action] = services.actions("Acme")
    services.clock = lambda: action.lock_at + dt.timedelta(minutes=1)  # the lock period has passed
    assert services.lock_actions() == 1
    assert [(e.actor, e.reason) for e in services.audit(action.id)] == [("system", "lock period ended")]
    for who in ("system", "System", "file:12", "FILE:3"):
        with pytest.raises(InvalidInputError, match="names the lock job or a file in the audit trail"):
            services.actor(who)


def test_a_change_without_a_reason_does_not_keep_the_last_ones(
    services: Services, actions: list[Action]
) -> None:
    services.reverse_action(actions[0].id, "manual return", actor="alice")
    changed = services.modify_action(actions[0].id, "20.00", reason=None, actor="alice")
    assert (changed.status, changed.amount, changed.reason) == (ActionStatus.MODIFIED, Decimal("20.00"), None)
    assert [e.reason for e in services.audit(actions[0].id)] == ["manual return", None]


def test_an_undated_row_refused_for_its_date_shows_no_date_it_never_had(
    services: Services, make_connection
) -> None:
    """An undated row takes its file's arrival as its date; refused for it (a person changed
    the action since), its reject showed that arrival time as if the brand had written it."""
    import pyarrow as pa

    from connectbatch.pipeline import lifecycle

    make_connection("Acme", lock_days=30)
    services.ingest_bytes("Acme", "calls.csv", call_csv(1))
    [action] = services.actions("Acme")
    services.modify_action(action.id, "20.00", reason="by hand", actor="carol")
    rows = pa.table({"ActionId": ["A-000001"], "Amount": ["5.00"], "Reason": ["late file"],
                     lifecycle.DATE: pa.array([None], pa.timestamp("us", tz="UTC"))})  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    with services.db.transaction() as con:
        applied = lifecycle.apply_modifications(
            con, rows, pa.array([2], pa.int64()), actor="file:9", now=now,
            undated_at=now - dt.timedelta(minutes=5),
        )  # fmt: skip
    [reject] = applied.rejects
    assert (reject.column, reject.value) == (lifecycle.DATE, "")
    assert "before the newer change" in reject.reason


def test_a_modification_already_in_effect_is_answered_unchanged(
    services: Services, make_connection, actions: list[Action]
) -> None:
    """Found by the partner-files audit: a reversal sent again (and an amount the action
    already has) changed nothing, as they should, but the results file answered them
    ACCEPTED with no reason, like the rows that did change an action."""
    make_connection("Acme returns", data_type="action_modifications")
    first, second = actions[0], actions[1]
    services.ingest_bytes("Acme returns", "m1.csv", modifications_csv([(first.label, "0", "returned")]))
    again = modifications_csv(
        [
            (first.label, "0", "returned (sent again)"),  # line 2: already reversed
            (second.label, str(second.amount), "same amount"),  # line 3: the amount it has
            (second.label, "1.00", "corrected"),  # line 4: applied
        ]
    )

    run = services.ingest_bytes("Acme returns", "m2.csv", again)

    assert run.status is RunStatus.COMPLETED, run.reason
    rows, _summary = results_of(services, "Acme returns", run.id)
    reasons = {int(r["Line"]): (r["Status"], r["Reason"]) for r in rows}
    for line in (2, 3):
        status, reason = reasons[line]
        assert status == "ACCEPTED" and reason.startswith("unchanged: the action already stands so")
    assert reasons[4] == ("ACCEPTED", "")
    assert [e.change for e in services.audit(first.id)] == ["reverse"]  # nothing new


def test_a_modifications_file_sent_again_in_other_bytes_does_not_undo_later_changes(
    services: Services, make_connection, actions: list[Action], tmp_path: Path
) -> None:
    """Actions audit: the brand's file set A-1 to 12.00 and reversed A-2; a person then
    corrected A-1 to 13.00 and a later file restored A-2's amount. The same file sent again
    gzipped (the ledger compares bytes) applied every row again: A-1 back to 12.00, A-2
    reversed again, all ACCEPTED. It changes nothing now and says so; a dated row whose date
    is newer is a new change and applies."""
    import gzip

    make_connection("Acme returns", data_type="action_modifications")
    one, two = actions[0], actions[1]
    original = modifications_csv([(one.label, "12.00", "Partial return"), (two.label, "0", "Returned")])
    services.ingest_bytes("Acme returns", "returns.csv", original)
    services.modify_action(one.id, "13.00", reason="checked with the brand", actor="alice")
    services.ingest_bytes("Acme returns", "restore.csv", modifications_csv([(two.label, "11.00", "Kept")]))

    run = services.ingest_bytes(
        "Acme returns", "returns.csv.gz", gzip.compress(original.replace(b"\n", b"\r\n"))
    )

    assert run.status is RunStatus.COMPLETED, run.reason
    assert (services.action(one.id).amount, services.action(two.id).amount) == (
        Decimal("13.00"),
        Decimal("11.00"),
    )
    rows, _summary = results_of(services, "Acme returns", run.id)
    for row in rows:
        assert row["Status"] == "ACCEPTED"
        assert row["Reason"].startswith("unchanged: an earlier file made this same change"), row
    assert [e.actor for e in services.audit(one.id)][1:] == ["alice"]  # nothing new
    sample = tmp_path / "returns.csv"
    sample.write_bytes(original)
    dry = services.dry_run_file("Acme returns", sample)
    assert {row.status for row in dry.rows if row.line} == {Would.UNCHANGED}  # the dry run says so too

    later = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    dated = f"ActionId,Amount,Reason,ModificationDate\n{one.label},12.00,Partial return,{later}\n".encode()
    services.ingest_bytes("Acme returns", "returns-dated.csv", dated)
    assert services.action(one.id).amount == Decimal("12.00")  # dated after the person's change


def test_a_released_modifications_file_none_of_whose_rows_applies_is_refused_and_may_come_again(
    services: Services, make_connection, actions: list[Action]
) -> None:
    """Actions audit: ingested directly such a file is refused (FILE_REJECTED, "may be sent
    again once the actions exist"); released, it was Completed and loaded, and the same bytes
    sent once the action existed came back DUPLICATE: the change was never made."""
    make_connection("Acme returns", data_type="action_modifications")
    data = modifications_csv([("A-000099", "15.00", "partial"), (actions[0].label, "-1.00", "typo")])
    run = services.ingest_bytes("Acme returns", "returns.csv", data)
    assert run.review == "quarantined"

    released = services.release(run.id, actor="carol")

    assert released.status is RunStatus.FAILED
    assert (released.reason or "").startswith("every row was rejected (2 of 2): no action changed")
    [f] = services.run_files(run.id)
    assert f.state == "rejected"
    rows, _summary = results_of(services, "Acme returns", run.id)
    assert [(int(r["Line"]), r["Status"]) for r in rows] == [
        (0, "FILE_REJECTED"),
        (2, "REJECTED"),
        (3, "REJECTED"),
    ]
    again = services.ingest_bytes("Acme returns", "returns.csv", data)  # the same bytes, later
    assert again.review == "quarantined"  # judged again, not dropped as a duplicate
