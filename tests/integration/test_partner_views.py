"""The partner screens filter by partner and name it (issue 11): the call-data explorer, the
pending actions, the review queue and the clicks browser keep only the rows of connections
that belong to the chosen partners, and show a publisher's MediaIds as "Name (id)".

Two partners with one call-conversion and one clicks connection each; one partner's name is
hostile text, which must stay data (bound as a parameter), never SQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from helpers import call_csv
from helpers.typed import typed_csv

from connectbatch.browse import BrowseFilter
from connectbatch.explorer import CallFilter
from connectbatch.models import Connection, PartnerType
from connectbatch.services import InvalidInputError, Services

HOSTILE = 'O\'Brien"; DROP TABLE partners; -- =HYPERLINK("x")'
LEADWAVE_CALLS, HOSTILE_CALLS = 12, 5


def two_partners(services: Services, make_connection: Callable[..., Connection]) -> tuple[int, int]:
    """Leadwave Media (a publisher with MediaId 98765) and the hostile-named brand, each with
    a call-conversion connection that delivered calls and a clicks connection."""
    leadwave = services.add_partner("Leadwave Media", PartnerType.PUBLISHER, media_ids=[98765, "98766"])
    hostile = services.add_partner(HOSTILE, PartnerType.BRAND)
    make_connection("Leadwave calls", partner_id=leadwave.id)
    make_connection("Brand calls", partner_id=hostile.id)
    make_connection("Leadwave clicks", "clicks", partner_id=leadwave.id)
    make_connection("Brand clicks", "clicks", partner_id=hostile.id)
    media = {i: {"MediaId": "98765" if i % 2 else "11111"} for i in range(LEADWAVE_CALLS)}
    run = services.ingest_bytes(
        "Leadwave calls", "a.csv", call_csv(LEADWAVE_CALLS, prefix="lw", overrides=media)
    )
    assert run.rows_accepted == LEADWAVE_CALLS, run.reason
    run = services.ingest_bytes("Brand calls", "b.csv", call_csv(HOSTILE_CALLS, prefix="br"))
    assert run.rows_accepted == HOSTILE_CALLS, run.reason
    services.ingest_bytes("Leadwave clicks", "c.csv", typed_csv("clicks", 7, prefix="lc", overrides={
        i: {"MediaId": "98766"} for i in range(7)}))  # fmt: skip
    services.ingest_bytes("Brand clicks", "d.csv", typed_csv("clicks", 3, prefix="bc"))
    return leadwave.id, hostile.id


def test_the_explorer_filters_by_partner_and_names_media_partners(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    leadwave, hostile = two_partners(services, make_connection)

    options = services.call_filter_options()
    assert options.partners == [(leadwave, "Leadwave Media"), (hostile, HOSTILE)]
    assert options.media_label(98765) == "Leadwave Media (98765)"
    assert options.media_label(11111) == "11111"
    assert services.call_summary(CallFilter()).kpis.calls == LEADWAVE_CALLS + HOSTILE_CALLS
    assert services.call_summary(CallFilter(partners=(leadwave,))).kpis.calls == LEADWAVE_CALLS
    assert services.call_summary(CallFilter(partners=(hostile,))).kpis.calls == HOSTILE_CALLS
    assert services.call_summary(CallFilter(partners=(leadwave, hostile))).kpis.calls == 17

    top = services.call_summary(CallFilter(partners=(leadwave,))).top_media
    assert dict(
        zip(top.column("media_partner").to_pylist(), top.column("calls").to_pylist(), strict=True)
    ) == {
        "Leadwave Media (98765)": 6,
        "11111": 6,
    }
    rows = services.call_rows(CallFilter(partners=(hostile,)), page_size=100)
    assert rows.num_rows == HOSTILE_CALLS
    assert set(rows.column("Partner").to_pylist()) == {HOSTILE}
    assert set(rows.column("MediaPartner").to_pylist()) == {"Leadwave Media (98765)"}  # the helper's MediaId


def test_pending_actions_and_the_review_queue_filter_by_partner(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    leadwave, hostile = two_partners(services, make_connection)
    brand_calls = services.connection("Brand calls").id

    page = services.find_actions(partners=(hostile,), page_size=100)
    assert page.total == HOSTILE_CALLS
    assert {a.connection_id for a in page.actions} == {brand_calls}
    assert services.find_actions(partners=(leadwave,)).total == LEADWAVE_CALLS
    assert services.connection_partners()[brand_calls] == HOSTILE

    queue = services.review_queue(partners=(hostile,))
    assert {q.connection for q in queue} == {"Brand calls", "Brand clicks"}
    assert {q.partner for q in queue} == {HOSTILE}
    assert {q.partner for q in services.review_queue()} == {"Leadwave Media", HOSTILE}
    # the page's reject-rate trend follows the same filter (it drew every partner's runs)
    assert {name for name, _, _ in services.reject_rates(partners=(hostile,))} == {
        "Brand calls",
        "Brand clicks",
    }
    everything = services.reject_rates()
    assert len(everything) == 4 and [t for _, t, _ in everything] == sorted(t for _, t, _ in everything)
    assert services.reject_rates(limit=1) == everything[-1:]  # the newest runs


def test_the_clicks_browser_filters_by_partner_and_names_media_partners(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    leadwave, hostile = two_partners(services, make_connection)

    options = services.browse_options("clicks")
    assert options.partners == [(leadwave, "Leadwave Media"), (hostile, HOSTILE)]
    summary = services.browse_summary("clicks", BrowseFilter(partners=(leadwave,)))
    assert summary.rows == 7
    assert summary.top.column("value").to_pylist() == ["Leadwave Media (98766)"]
    rows = services.browse_rows("clicks", BrowseFilter(partners=(hostile,)))
    assert rows.num_rows == 3
    assert set(rows.column("Partner").to_pylist()) == {HOSTILE}


def test_a_partner_filter_is_ids_never_sql(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    two_partners(services, make_connection)

    with pytest.raises(InvalidInputError, match="partner ids are whole numbers"):
        services.call_summary(CallFilter(partners=("1) OR (1=1",)))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="partner ids"):
        services.find_actions(partners=("0 OR 1=1",))  # type: ignore[arg-type]
    assert services.call_summary(CallFilter(partners=(999,))).kpis.calls == 0
    assert services.partner(HOSTILE).name == HOSTILE  # the table is still there


def test_media_ids_belong_to_one_partner(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    leadwave, _hostile = two_partners(services, make_connection)

    with pytest.raises(InvalidInputError, match="MediaId 98765 already belongs to 'Leadwave Media'"):
        services.add_partner("Other", PartnerType.PUBLISHER, media_ids=[98765])
    with pytest.raises(InvalidInputError, match="not a MediaId"):
        services.add_partner("Other", PartnerType.PUBLISHER, media_ids=["abc"])
    assert services.partner("Leadwave Media").media_ids == [98765, 98766]

    updated = services.update_partner(leadwave, media_ids=[98766, 12])
    assert updated.media_ids == [12, 98766]
    assert services.media_names() == {12: "Leadwave Media", 98766: "Leadwave Media"}
    other = services.add_partner("Other", PartnerType.PUBLISHER, media_ids=[98765])
    assert other.media_ids == [98765]
    services.update_partner(leadwave, notes="keeps its MediaIds")
    assert services.partner(leadwave).media_ids == [12, 98766]
    services.delete_partner(other.id)
    assert 98765 not in services.media_names()
