"""Records sent again (issue 11, defects 1, 2 and 7): catalog updates and snapshots keep their
history, modification files are events applied in order, and a connection in `supersede`
mode lets a corrected file replace still-pending actions. Each test fails on the code before
(the repeated keys quarantined the whole batch)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from helpers import call_csv, fresh_date, iso, modifications_csv, to_csv
from helpers.store import results_of

from connectbatch.models import ActionStatus, CatalogMode, Redelivery, RunStatus
from connectbatch.services import Services
from connectbatch.store import data as data_store
from connectbatch.store.db import all_rows

CATALOG_COLUMNS = ("CatalogItemId", "Name", "Url", "CurrentPrice", "Currency")


def catalog_csv(items: dict[str, str], *, newline: str = "\r\n") -> bytes:
    """A catalog file: SKU -> CurrentPrice."""
    rows = [
        {"CatalogItemId": sku, "Name": f"Widget {sku}", "Url": f"https://example.com/p/{sku}",
         "CurrentPrice": price, "Currency": "USD"}
        for sku, price in items.items()
    ]  # fmt: skip
    return to_csv(rows, CATALOG_COLUMNS, newline=newline)


def stored(services: Services, data_type: str, columns: str, where: str = "TRUE") -> list[tuple[Any, ...]]:
    with services.db.connect() as con:
        return con.execute(
            f"SELECT {columns} FROM {all_rows(data_type)} WHERE {where} ORDER BY file_id, line"
        ).fetchall()


def current_prices(services: Services, connection_id: int) -> dict[str, Decimal]:
    rows = stored(
        services, "product_catalogs", '"CatalogItemId", "CurrentPrice"',
        f"valid_to IS NULL AND connection_id = {connection_id}",
    )  # fmt: skip
    return dict(rows)


# ---------------------------------------------------------------- 1. product catalogs


def test_a_catalog_update_changes_the_item_and_keeps_the_old_version(
    services: Services, make_connection
) -> None:
    shop = make_connection("Shop", data_type="product_catalogs")
    first = services.ingest_bytes("Shop", "catalog-1.csv", catalog_csv({"SKU-1": "19.99", "SKU-2": "5.00"}))
    assert first.status is RunStatus.COMPLETED, first.reason

    second = services.ingest_bytes("Shop", "catalog-2.csv", catalog_csv({"SKU-1": "17.99", "SKU-2": "5.00"}))

    assert second.status is RunStatus.COMPLETED, second.reason  # was: quarantined, "already loaded"
    assert second.review is None
    assert (second.rows_accepted, second.rows_duplicate) == (2, 0)
    assert (second.rows_replaced, second.rows_unchanged, second.rows_removed) == (1, 1, 0)
    assert current_prices(services, shop.id) == {"SKU-1": Decimal("17.99"), "SKU-2": Decimal("5.00")}
    [f2] = services.run_files(second.id)
    # the previous price stays queryable, ended by the file that changed it
    [old] = stored(
        services, "product_catalogs", '"CurrentPrice", valid_to, superseded_by, end_reason',
        "valid_to IS NOT NULL",
    )  # fmt: skip
    assert (old[0], old[2], old[3]) == (Decimal("19.99"), f2.id, "updated")
    assert old[1] is not None
    assert len(stored(services, "product_catalogs", "*")) == 3  # 2 + the new SKU-1 version

    # the same items again in new bytes: nothing changes, nothing is an error
    third = services.ingest_bytes(
        "Shop", "catalog-3.csv", catalog_csv({"SKU-2": "5.00", "SKU-1": "17.99"}, newline="\n")
    )
    assert third.status is RunStatus.COMPLETED, third.reason
    assert (third.rows_unchanged, third.rows_replaced, third.rows_duplicate) == (2, 0, 0)
    assert len(stored(services, "product_catalogs", "*")) == 3


def test_a_catalog_snapshot_marks_the_items_it_leaves_out_removed(
    services: Services, make_connection
) -> None:
    full = make_connection("Full feed", data_type="product_catalogs", catalog_mode=CatalogMode.SNAPSHOT)
    partial = make_connection("Updates feed", data_type="product_catalogs")
    assert services.connection("Full feed").catalog_mode is CatalogMode.SNAPSHOT
    assert partial.catalog_mode is CatalogMode.UPDATES
    three = {"SKU-1": "1.00", "SKU-2": "2.00", "SKU-3": "3.00"}
    for name in ("Full feed", "Updates feed"):
        assert services.ingest_bytes(name, f"{name}-1.csv", catalog_csv(three)).status is RunStatus.COMPLETED

    runs = {
        name: services.ingest_bytes(name, f"{name}-2.csv", catalog_csv({"SKU-1": "1.00", "SKU-3": "3.50"}))
        for name in ("Full feed", "Updates feed")
    }

    snap = runs["Full feed"]
    assert snap.status is RunStatus.COMPLETED, snap.reason
    assert (snap.rows_unchanged, snap.rows_replaced, snap.rows_removed) == (1, 1, 1)
    assert "Full feed-2.csv: 1 catalog item not in this snapshot marked removed" in (snap.reason or "")
    assert current_prices(services, full.id) == {"SKU-1": Decimal("1.00"), "SKU-3": Decimal("3.50")}
    [removed] = stored(
        services, "product_catalogs", '"CatalogItemId", end_reason',
        f"connection_id = {full.id} AND end_reason = 'removed'",
    )  # fmt: skip
    assert removed == ("SKU-2", "removed")
    # an update feed changes only what it lists
    assert runs["Updates feed"].rows_removed == 0
    assert set(current_prices(services, partial.id)) == {"SKU-1", "SKU-2", "SKU-3"}

    # an item listed again comes back as a new current version
    back = services.ingest_bytes("Full feed", "full-3.csv", catalog_csv({**three, "SKU-3": "3.50"}))
    assert back.status is RunStatus.COMPLETED, back.reason
    assert current_prices(services, full.id)["SKU-2"] == Decimal("2.00")
    assert (back.rows_unchanged, back.rows_replaced, back.rows_removed) == (2, 0, 0)


def test_a_catalog_results_file_says_which_items_were_unchanged_and_which_updated(
    services: Services, make_connection
) -> None:
    """Found by the data-types audit: every row of a catalog file read ACCEPTED with no
    reason, whether it changed nothing, replaced the stored item or added a new one."""
    make_connection("Shop", data_type="product_catalogs")
    services.ingest_bytes("Shop", "catalog-1.csv", catalog_csv({"A": "1.00", "B": "2.00"}))

    run = services.ingest_bytes("Shop", "catalog-2.csv", catalog_csv({"A": "1.00", "B": "2.50", "D": "4.00"}))

    assert (run.rows_unchanged, run.rows_replaced) == (1, 1)
    rows, _summary = results_of(services, "Shop", run.id)
    said = {r["CatalogItemId"]: (r["Status"], r["Reason"]) for r in rows}
    assert said["A"] == ("ACCEPTED", "unchanged: identical to the record already stored")
    assert said["B"][0] == "ACCEPTED" and said["B"][1].startswith("updated: replaces the stored record")
    assert said["D"] == ("ACCEPTED", "")


def test_a_catalog_update_that_leaves_columns_out_keeps_their_stored_values(
    services: Services, make_connection
) -> None:
    """Found by the data-types audit: a price-only update stored the item with no
    description and image and read its JPY price as USD, the default currency. A column the
    file sends empty still empties it; a new item takes the defaults."""
    shop = make_connection("Shop", data_type="product_catalogs")
    full = "CatalogItemId,Name,Url,CurrentPrice,Currency,Description,OriginalPrice\r\n"
    full += "J,Chawan,https://e.com/j,1299,JPY,Handmade bowl,1500\r\n"
    assert services.ingest_bytes("Shop", "full.csv", full.encode()).status is RunStatus.COMPLETED
    update = "CatalogItemId,Name,Url,CurrentPrice,OriginalPrice\r\nJ,Chawan,https://e.com/j,1499,\r\n"
    update += "K,Cup,https://e.com/k,10,\r\n"

    run = services.ingest_bytes("Shop", "prices.csv", update.encode())

    assert run.status is RunStatus.COMPLETED, run.reason
    columns = '"CatalogItemId", "CurrentPrice", "Currency", "Description", "OriginalPrice"'
    rows = stored(services, "product_catalogs", columns, f"valid_to IS NULL AND connection_id = {shop.id}")
    assert sorted(rows) == [
        ("J", Decimal("1499.00"), "JPY", "Handmade bowl", None),
        ("K", Decimal("10.00"), "USD", None, None),
    ]


@pytest.mark.parametrize("mode", [CatalogMode.UPDATES, CatalogMode.SNAPSHOT])
def test_a_catalog_file_sent_again_after_another_changed_the_items_is_applied_again(
    services: Services, make_connection, mode: CatalogMode
) -> None:
    """Found by the data-types audit: the regular prices, sent again byte for byte when a
    sale ended, were dropped as a duplicate of the first file and the catalog kept the sale's
    prices (a snapshot sent again did not bring back the items a later one removed). The
    same bytes with nothing loaded since are still a duplicate."""
    shop = make_connection("Shop", data_type="product_catalogs", catalog_mode=mode)
    regular = catalog_csv({"SKU-1": "19.99", "SKU-2": "5.00"})
    assert services.ingest_bytes("Shop", "regular.csv", regular).status is RunStatus.COMPLETED
    again = services.ingest_bytes("Shop", "regular-again.csv", regular)
    assert again.rows_duplicate == 2 and again.files_loaded == 0
    sale = services.ingest_bytes("Shop", "sale.csv", catalog_csv({"SKU-1": "14.99"}))
    assert sale.status is RunStatus.COMPLETED, sale.reason

    restored = services.ingest_bytes("Shop", "regular-restored.csv", regular)

    assert restored.status is RunStatus.COMPLETED, restored.reason
    assert (restored.files_loaded, restored.rows_duplicate, restored.rows_replaced) == (1, 0, 1)
    assert current_prices(services, shop.id) == {"SKU-1": Decimal("19.99"), "SKU-2": Decimal("5.00")}
    [f] = services.run_files(restored.id)
    assert f.state == "loaded"


@pytest.mark.parametrize("body", ["", "\r\n,,,,\r\n,,,,\r\n"], ids=["header only", "empty rows"])
def test_a_snapshot_that_lists_no_items_removes_none(services: Services, make_connection, body: str) -> None:
    # Found by trying real partner files: a header-only snapshot (a broken export) marked the
    # whole catalog removed, while its results said "nothing was loaded".
    full = make_connection("Full feed", data_type="product_catalogs", catalog_mode=CatalogMode.SNAPSHOT)
    three = {"SKU-1": "1.00", "SKU-2": "2.00", "SKU-3": "3.00"}
    assert services.ingest_bytes("Full feed", "full-1.csv", catalog_csv(three)).status is RunStatus.COMPLETED
    header = catalog_csv({}).rstrip(b"\r\n")

    empty = services.ingest_bytes("Full feed", "full-2.csv", header + body.encode())

    assert empty.rows_removed == 0
    assert "the snapshot lists no items, so no catalog item was marked removed" in (empty.reason or "")
    assert set(current_prices(services, full.id)) == {"SKU-1", "SKU-2", "SKU-3"}


# ---------------------------------------------------------------- 2. modification events


def test_a_later_modifications_file_changes_the_same_action_again(
    services: Services, make_connection
) -> None:
    make_connection("Acme", lock_days=30)
    assert services.ingest_bytes("Acme", "calls.csv", call_csv(3)).status is RunStatus.COMPLETED
    a, b, _ = services.actions("Acme")
    make_connection("Acme returns", data_type="action_modifications")
    first = services.ingest_bytes(
        "Acme returns", "mods-1.csv", modifications_csv([(a.label, "15.00", "price corrected")])
    )
    assert first.status is RunStatus.COMPLETED, first.reason
    reversal = modifications_csv([(a.label, "0", "returned"), (b.label, "20.00", "upsell")])

    second = services.ingest_bytes("Acme returns", "mods-2.csv", reversal)

    assert second.status is RunStatus.COMPLETED, second.reason  # was: quarantined, duplicate keys
    assert second.review is None
    assert (second.rows_accepted, second.rows_rejected, second.actions_created) == (2, 0, 0)
    assert second.actions_changed == 2  # changed, not created
    changed = services.action(a.id)
    assert (changed.status, changed.amount, changed.reason) == (
        ActionStatus.REVERSED,
        Decimal("0.00"),
        "returned",
    )
    assert [(e.change, e.new_amount) for e in services.audit(a.id)] == [
        ("modify", Decimal("15.00")), ("reverse", Decimal("0.00")),
    ]  # fmt: skip

    # the same bytes again: a ledger duplicate, nothing applied
    again = services.ingest_bytes("Acme returns", "mods-2-again.csv", reversal)
    [f] = services.run_files(again.id)
    assert f.state == "duplicate"
    # the same events re-sent in a new file: already in effect, so nothing changes and
    # nothing is refused (reversing a reversed action, setting the amount it has)
    resent = services.ingest_bytes("Acme returns", "mods-2-resent.csv", reversal.replace(b"\r\n", b"\n"))
    assert resent.status is RunStatus.COMPLETED, resent.reason
    assert (resent.rows_accepted, resent.rows_rejected, resent.rows_unchanged) == (2, 0, 2)
    assert (resent.actions_created, resent.actions_changed) == (0, 0)
    assert len(services.audit(a.id)) == 2 and len(services.audit(b.id)) == 1
    assert services.action(b.id).amount == Decimal("20.00")
    assert services.rejects(resent.id) == []


def test_one_modifications_file_may_change_an_action_twice_in_order(
    services: Services, make_connection
) -> None:
    make_connection("Acme", lock_days=30)
    services.ingest_bytes("Acme", "calls.csv", call_csv(2))
    a, _ = services.actions("Acme")
    make_connection("Acme returns", data_type="action_modifications")
    events = modifications_csv([(a.label, "15.00", "price corrected"), (a.label, "0", "returned")])

    run = services.ingest_bytes("Acme returns", "mods.csv", events)

    assert run.status is RunStatus.COMPLETED, run.reason  # was: quarantined, ActionId not unique
    assert services.action(a.id).status is ActionStatus.REVERSED
    assert [e.change for e in services.audit(a.id)] == ["modify", "reverse"]  # line order


# ---------------------------------------------------------------- 7. supersede mode


EVENT = fresh_date(2)


def test_supersede_replaces_pending_actions_and_leaves_changed_ones(
    services: Services, make_connection
) -> None:
    acme = make_connection("Acme", lock_days=30, redelivery=Redelivery.SUPERSEDE)
    assert acme.redelivery is Redelivery.SUPERSEDE
    first = services.ingest_bytes("Acme", "calls.csv", call_csv(3, event_date=EVENT))
    assert first.status is RunStatus.COMPLETED, first.reason
    a, b, c = services.actions("Acme")
    services.reverse_action(b.id, "customer returned the goods", actor="alice")
    corrected = call_csv(
        4, event_date=EVENT, overrides={0: {"SaleAmount": "99.00"}, 1: {"SaleAmount": "55.00"}}
    )  # row 0: A still pending -> replaced; row 1: B reversed -> refused; row 2 same; row 3 new

    run = services.ingest_bytes("Acme", "calls-corrected.csv", corrected)

    assert run.status is RunStatus.COMPLETED, run.reason  # was: quarantined, already loaded
    assert run.review is None
    assert (run.rows_replaced, run.rows_unchanged, run.rows_rejected) == (1, 1, 1)
    assert run.rows_accepted == 3
    [f] = services.run_files(run.id)
    replaced = services.action(a.id)  # same ActionId: partners quote it
    assert (replaced.status, replaced.amount, replaced.original_amount) == (
        ActionStatus.PENDING, Decimal("99.00"), Decimal("99.00"),
    )  # fmt: skip
    [entry] = services.audit(a.id)
    assert (entry.actor, entry.change) == (f"file:{f.id}", "supersede")
    assert (entry.old_amount, entry.new_amount) == (Decimal("10.00"), Decimal("99.00"))
    kept = services.action(b.id)
    assert (kept.status, kept.amount) == (ActionStatus.REVERSED, Decimal("0.00"))
    assert services.action(c.id).amount == c.amount and services.audit(c.id) == []
    [reject] = services.rejects(run.id)
    assert reject.line == 3 and "REVERSED" in reject.reason and reject.value == "cs-0001"
    assert services.count_actions() == 4  # one new record, one new action
    # history: the replaced row stays, ended by the corrected file
    current = stored(services, "call_conversions", '"CallSessionId", "SaleAmount"', "valid_to IS NULL")
    assert sorted(current) == [
        ("cs-0000", Decimal("99.00")), ("cs-0001", Decimal("11.00")),
        ("cs-0002", Decimal("12.00")), ("cs-0003", Decimal("13.00")),
    ]  # fmt: skip
    assert stored(services, "call_conversions", "superseded_by, end_reason", "valid_to IS NOT NULL") == [
        (f.id, "updated")
    ]


def test_a_correction_that_locks_its_action_is_answered_as_a_correction(
    services: Services, make_connection
) -> None:
    """Found by a partner audit: a record re-sent with an event date past the lock period
    locked its action, and the results line said "action created LOCKED" while the run said
    0 created, 1 changed."""
    make_connection("Acme", lock_days=30, redelivery=Redelivery.SUPERSEDE)
    services.ingest_bytes("Acme", "calls.csv", call_csv(2, event_date=EVENT))
    late = iso(fresh_date(40))
    run = services.ingest_bytes(
        "Acme", "fix.csv", call_csv(2, event_date=EVENT, overrides={0: {"EventDate": late}})
    )

    assert run.status is RunStatus.COMPLETED, run.reason
    assert (run.rows_replaced, run.actions_created) == (1, 0)
    rows, _ = results_of(services, "Acme", run.id)
    reasons = {r["CallSessionId"]: r["Reason"] for r in rows}
    assert reasons["cs-0000"].startswith("record corrected; its action is now LOCKED: event older than")
    assert reasons["cs-0001"].startswith("unchanged")


def test_new_keys_only_stays_the_default(services: Services, make_connection) -> None:
    acme = make_connection("Acme", lock_days=30)
    assert acme.redelivery is Redelivery.NEW_KEYS_ONLY
    services.ingest_bytes("Acme", "calls.csv", call_csv(2, event_date=EVENT))
    run = services.ingest_bytes(
        "Acme", "again.csv", call_csv(2, event_date=EVENT, overrides={0: {"SaleAmount": "99.00"}})
    )
    assert run.review == "quarantined" and "already loaded" in (run.reason or "")


def test_a_crash_while_superseding_leaves_nothing_changed(
    services: Services, make_connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_connection("Acme", lock_days=30, redelivery=Redelivery.SUPERSEDE)
    services.ingest_bytes("Acme", "calls.csv", call_csv(2, event_date=EVENT))
    before = services.actions("Acme")
    rows_before = stored(services, "call_conversions", "*")
    original = data_store.insert_rows
    calls: list[int] = []

    def crash_on_the_corrected_rows(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 2:  # new records went in; the corrected ones break
            raise OSError("disk gone")
        return original(*args, **kwargs)

    monkeypatch.setattr(data_store, "insert_rows", crash_on_the_corrected_rows)
    run = services.ingest_bytes(
        "Acme", "fix.csv", call_csv(3, event_date=EVENT, overrides={0: {"SaleAmount": "99.00"}})
    )

    assert run.status is RunStatus.FAILED
    assert services.actions("Acme") == before
    assert stored(services, "call_conversions", "*") == rows_before
    assert all(services.audit(a.id) == [] for a in before)
    assert (run.rows_replaced, run.rows_accepted) == (0, 0)


def test_a_released_catalog_update_applies_the_new_version(services: Services, make_connection) -> None:
    shop = make_connection("Shop", data_type="product_catalogs")
    services.ingest_bytes("Shop", "catalog-1.csv", catalog_csv({"SKU-1": "19.99", "SKU-2": "5.00"}))
    held = services.ingest_bytes("Shop", "catalog-2.csv", catalog_csv({"SKU-1": "17.99", "SKU-2": "-1.00"}))
    assert held.review == "quarantined" and "must not be negative" in (held.reason or "")

    released = services.release(held.id, actor="carol")

    assert released.status is RunStatus.COMPLETED
    assert (released.rows_replaced, released.rows_duplicate) == (1, 0)  # was: 0 accepted, 2 duplicates
    # the negative price that held the batch is left out, with its reject; SKU-2 keeps 5.00
    assert current_prices(services, shop.id) == {"SKU-1": Decimal("17.99"), "SKU-2": Decimal("5.00")}
    [refused] = services.rejects(held.id)
    assert (refused.column, refused.value) == ("CurrentPrice", "-1.00")


# ---------------------------------------------------------------- 4. padded keys


def test_a_key_sent_again_with_a_trailing_space_is_already_loaded(
    services: Services, make_connection
) -> None:
    make_connection("Acme", lock_days=30)
    padded = {0: {"CallSessionId": "dup-1 "}}
    first = services.ingest_bytes("Acme", "calls.csv", call_csv(1, event_date=EVENT, overrides=padded))
    assert first.status is RunStatus.COMPLETED, first.reason
    again = services.ingest_bytes(
        "Acme", "again.csv", call_csv(1, event_date=EVENT, overrides={0: {"CallSessionId": "dup-1"}})
    )
    # was: a second call and a second pending action for the same CallSessionId
    assert again.review == "quarantined" and "already loaded" in (again.reason or "")
    assert stored(services, "call_conversions", '"CallSessionId"') == [("dup-1",)]
