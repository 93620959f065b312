"""Lock-aware triage: what locks in the next N days and still needs a person, by partner and
by time left, read with a clock the test sets; each kind of item appears, and goes when it is
resolved; the review queue carries each held batch's lock deadline; `connectbatch triage`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import replace

import pytest
from helpers import call_csv, modifications_csv
from helpers.clock import Clock

from connectbatch.cli import main
from connectbatch.models import Connection, PartnerType, Role, RunStatus
from connectbatch.services import InvalidInputError, PermissionDeniedError, Services
from connectbatch.settings import Settings
from connectbatch.triage import Triage, TriageKind

HELD = {2: {"CallerId": "1.55512E+10"}}  # a critical failure: the batch is quarantined


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Spikes above 5 % would be quarantined under the default limit (an item of their own).
    return replace(settings, max_reject_rate=0.5)


@pytest.fixture
def services(settings: Settings, clock: Clock) -> Services:
    return Services(settings, clock=clock)


def partner(services: Services, name: str) -> int:
    return services.add_partner(name, PartnerType.VENDOR).id


def kinds(found: Triage) -> list[tuple[str, TriageKind]]:
    return [(i.connection, i.kind) for i in found.items]


def test_items_are_grouped_by_partner_and_ordered_by_time_left(
    services: Services, make_connection: Callable[..., Connection], clock: Clock
) -> None:
    alpha, beta = partner(services, "Alpha"), partner(services, "Beta")
    make_connection("Alpha calls", lock_days=4, partner_id=alpha)
    make_connection("Beta slow", lock_days=6, partner_id=beta)
    make_connection("Beta fast", lock_days=3, partner_id=beta)
    for name in ("Beta slow", "Alpha calls", "Beta fast"):
        assert services.ingest_bytes(name, "held.csv", call_csv(20, overrides=HELD)).review == "quarantined"

    found = services.triage(7)

    # The earliest event is 1.4 days old: locks 1.6 (Beta fast), 2.6 (Alpha), 4.6 days (Beta slow) ahead.
    assert [g.partner for g in found.groups] == ["Beta", "Alpha"]
    assert [[i.connection for i in g.items] for g in found.groups] == [
        ["Beta fast", "Beta slow"],
        ["Alpha calls"],
    ]
    left = [i.time_left(clock.now) for i in found.items]
    assert dt.timedelta(days=1.55) < left[0] < left[1] and left[2] < left[1]
    assert {i.kind for i in found.items} == {TriageKind.QUARANTINED}
    assert found.items[0].count == 20

    # The window follows the clock: two days later Beta fast is past its lock time (still
    # listed: releasing it now creates its actions LOCKED) and Alpha falls within one day.
    assert [i.connection for i in services.triage(2).items] == ["Beta fast"]
    clock.now += dt.timedelta(days=2)
    later = services.triage(1)
    assert [(i.connection, i.time_left(clock.now) < dt.timedelta(0)) for i in later.items] == [
        ("Beta fast", True), ("Alpha calls", False),
    ]  # fmt: skip
    assert [g.partner for g in services.triage(1, partners=(alpha,)).groups] == ["Alpha"]


def test_a_released_or_discarded_batch_leaves_the_triage_and_the_queue_shows_its_deadline(
    services: Services, make_connection: Callable[..., Connection], clock: Clock
) -> None:
    make_connection("Acme", lock_days=5)
    kept = services.ingest_bytes("Acme", "a.csv", call_csv(20, overrides=HELD))
    dropped = services.ingest_bytes("Acme", "b.csv", call_csv(20, prefix="b", overrides=HELD))

    queue = {q.run.id: q for q in services.review_queue()}
    deadline = queue[kept.id].lock_deadline
    assert deadline is not None  # 5 days after the earliest event (1.4 days old)
    assert abs(deadline - (clock.now + dt.timedelta(days=3.6))) < dt.timedelta(seconds=30)
    assert [i.run_id for i in services.triage().items] == [kept.id, dropped.id]

    services.release(kept.id, "fine")
    services.discard(dropped.id, "resend")

    assert services.triage().items == []
    assert all(q.lock_deadline is None for q in services.review_queue())


def test_a_reject_spike_appears_and_goes_when_a_good_file_follows(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    make_connection("Acme", lock_days=5)
    for n in range(3):  # the usual: no rejects
        assert services.ingest_bytes("Acme", f"ok{n}.csv", call_csv(20, prefix=f"ok{n}")).rows_rejected == 0
    bad = {i: {"SaleAmount": "lots"} for i in range(6)}
    spiking = services.ingest_bytes("Acme", "spike.csv", call_csv(20, prefix="sp", overrides=bad))
    assert spiking.status is RunStatus.COMPLETED and spiking.rows_rejected == 6

    [item] = services.triage().items
    assert (item.kind, item.run_id, item.count) == (TriageKind.REJECT_SPIKE, spiking.id, 6)
    assert "6 of 20 rows rejected (30.0%)" in item.detail
    assert item.deadline == min(a.lock_at for a in services.actions("Acme") if a.run_id == spiking.id)

    services.ingest_bytes("Acme", "fixed.csv", call_csv(20, prefix="fx"))
    assert services.triage().items == []


def test_a_refused_change_request_appears_until_someone_changes_the_action(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    make_connection("Acme", lock_days=5)
    make_connection("Acme returns", data_type="action_modifications")
    services.ingest_bytes("Acme", "calls.csv", call_csv(5))
    first, second = services.actions("Acme")[:2]
    mods = modifications_csv([(first.label, "-5.00", "refund"), (second.label, "1", "ok")])
    held = services.ingest_bytes("Acme returns", "mods.csv", mods)  # a negative amount: held
    # Released anyway: the negative row is refused by the lifecycle, the other one applies.
    assert services.release(held.id, "apply what can be applied").rows_rejected == 1

    [item] = services.triage().items
    assert (item.kind, item.action_id, item.connection) == (TriageKind.REFUSED_CHANGE, first.id, "Acme")
    assert item.deadline == first.lock_at
    assert "cannot be negative" in item.detail and "Acme returns" in item.detail

    services.reverse_action(first.id, "refund agreed with the partner", actor="rita")
    assert services.triage().items == []


def test_a_held_modifications_batch_locks_with_the_actions_it_names(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    make_connection("Acme", lock_days=5)
    make_connection("Acme returns", data_type="action_modifications")
    services.ingest_bytes("Acme", "calls.csv", call_csv(5))
    named = services.actions("Acme")[2:4]
    mods = modifications_csv([(a.label, "-1", "bad") for a in named] + [("A-999999", "0", "unknown")])
    held = services.ingest_bytes("Acme returns", "mods.csv", mods)
    assert held.review == "quarantined"

    [item] = services.triage().items
    assert (item.kind, item.run_id, item.connection) == (TriageKind.QUARANTINED, held.id, "Acme returns")
    assert item.deadline == min(a.lock_at for a in named)


def test_a_connection_whose_last_file_failed_lists_its_actions_locking_soon(
    services: Services, make_connection: Callable[..., Connection], clock: Clock
) -> None:
    make_connection("Acme", lock_days=5)
    make_connection("Calm", lock_days=30)  # its actions lock long after the window
    services.ingest_bytes("Acme", "calls.csv", call_csv(8))
    services.ingest_bytes("Calm", "calls.csv", call_csv(8))
    for name in ("Acme", "Calm"):
        failed = services.ingest_bytes(name, "broken.csv", b"not,a,call,file\r\n1,2,3,4\r\n")
        assert failed.status is RunStatus.FAILED

    [item] = services.triage().items
    assert (item.kind, item.connection, item.count, item.run_id) == (
        TriageKind.FAILED_CONNECTION, "Acme", 8, services.runs("Acme")[0].id,
    )  # fmt: skip
    assert item.deadline == min(a.lock_at for a in services.actions("Acme"))
    assert kinds(services.triage(30)) == [
        ("Acme", TriageKind.FAILED_CONNECTION),
        ("Calm", TriageKind.FAILED_CONNECTION),
    ]

    clock.now += dt.timedelta(days=5)  # every action has locked: nothing left to save
    assert services.triage().items == []
    clock.now -= dt.timedelta(days=5)
    services.ingest_bytes("Acme", "again.csv", call_csv(3, prefix="again"))
    assert kinds(services.triage()) == []


def test_a_file_refused_for_its_content_asks_the_partner_to_resend_not_a_retry(
    services: Services, make_connection: Callable[..., Connection], settings: Settings,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Triage said `retry N` for a file with a wrong header: the retry read the same bytes,
    failed the same way, and triage then said `retry N+1`. Only the partner can fix it."""
    monkeypatch.setenv("CONNECTBATCH_HOME", str(settings.home))
    make_connection("Acme", lock_days=5)
    services.ingest_bytes("Acme", "calls.csv", call_csv(8))
    refused = services.ingest_bytes("Acme", "badhdr.csv", b"Foo,Bar\r\n1,2\r\n")

    assert main(["triage"]) == 0
    text = capsys.readouterr().out
    assert "the partner fixes the file and sends it again" in text and f"retry {refused.id}" not in text
    [item] = services.triage().items
    assert (item.kind, item.run_id, item.resend) == (TriageKind.FAILED_CONNECTION, refused.id, True)
    assert "badhdr.csv: line 1: the header lacks required" in item.detail
    assert "the partner must fix it and send it again" in item.detail
    # ... unless the connection is taught to read it: a saved field mapping makes a retry load
    assert "field mapping" in item.detail and "map its columns on the connection" in text

    again = services.retry(refused.id)  # the same bytes: refused the same way
    assert again.status is RunStatus.FAILED
    [item] = services.triage().items
    assert (item.run_id, item.resend) == (again.id, True)


def test_a_run_that_failed_on_our_side_is_still_to_retry(
    services: Services, make_connection: Callable[..., Connection], monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectbatch.pipeline.ingest import Ingestor

    make_connection("Acme", lock_days=5)
    services.ingest_bytes("Acme", "calls.csv", call_csv(8))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk went away")

    with monkeypatch.context() as patched:
        patched.setattr(Ingestor, "_process", broken)
        failed = services.ingest_bytes("Acme", "more.csv", call_csv(3, prefix="more"))
    assert failed.status is RunStatus.FAILED

    [item] = services.triage().items
    assert (item.kind, item.run_id, item.resend) == (TriageKind.FAILED_CONNECTION, failed.id, False)
    assert "the disk went away" in item.detail and "send it again" not in item.detail


def test_triage_is_for_reviewers_and_checks_its_window(services: Services) -> None:
    assert services.triage().groups == []
    with pytest.raises(InvalidInputError, match="days"):
        services.triage(0)
    pam = services.as_user(services.add_user("pam", Role.PARTNER_MANAGER, "a long password!"))
    with pytest.raises(PermissionDeniedError, match="may not triage"):
        pam.triage()
    rita = services.as_user(services.add_user("rita", Role.REVIEWER, "a long password!"))
    assert rita.triage().items == []


def test_the_triage_command_prints_the_items_as_json(
    services: Services, make_connection: Callable[..., Connection], settings: Settings,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("CONNECTBATCH_HOME", str(settings.home))
    make_connection("Acme", lock_days=5)
    held = services.ingest_bytes("Acme", "held.csv", call_csv(20, overrides=HELD))

    assert main(["triage", "--days", "4", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["days"] == 4
    [group] = payload["partners"]
    [item] = group["items"]
    assert (item["kind"], item["run_id"], item["count"]) == ("quarantined", held.id, 20)
    assert 3.5 * 86400 < item["seconds_left"] < 3.7 * 86400  # 5 days after an event 1.4 days old

    assert main(["triage"]) == 0
    text = capsys.readouterr().out
    assert "Quarantined batch" in text and f"quarantine release|discard {held.id}" in text
    assert main(["triage", "--days", "1"]) == 0
    assert "nothing locks within 1 day" in capsys.readouterr().out
