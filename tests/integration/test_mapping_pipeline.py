"""Field mapping through the whole pipeline (issue 12, part 1): a vendor export with its own
names and without CampaignId/CallProvider loads with the saved mapping and its constants;
each run records the mapping version it parsed with; a file whose header lost a mapped
column fails clearly with a suggested update; a Google Ads `Parameters:TimeZone=` preamble
is split off and its zone used for dates without an offset."""

from __future__ import annotations

import zoneinfo

from helpers import call_rows, fresh_date, to_csv
from helpers.store import count

from connectbatch.models import RunStatus
from connectbatch.services import Services

N = 12
RENAMES = {
    "CallSessionId": "complete_call_id", "CallerId": "calling_phone_number",
    "CalledPhoneNumber": "destination_phone_number", "CallDuration": "duration",
    "TalkDuration": "connect_duration", "EventDate": "start_time_xml", "MediaId": "affiliate_id_from_network",
    "ActionTrackerId": "ActionTrackerId", "SaleAmount": "SaleAmount", "City": "city",
}  # fmt: skip


def vendor_csv(n: int, *, prefix: str = "cs", drop: tuple[str, ...] = ()) -> bytes:
    rows = [{RENAMES[k]: v for k, v in r.items() if k in RENAMES} for r in call_rows(n, prefix=prefix)]
    columns = [c for c in RENAMES.values() if c not in drop]
    return to_csv(rows, columns)


def test_a_vendor_export_loads_with_the_suggested_mapping_and_constants(
    services: Services, make_connection
) -> None:
    make_connection("Invoca feed")
    data = vendor_csv(N)
    suggestion = services.suggest_mapping("Invoca feed", data)
    assert suggestion.missing_required == ["CampaignId", "CallProvider"]
    assert not [line for line in suggestion.lines if line.target is None]

    before = services.ingest_bytes("Invoca feed", "no-mapping.csv", data)
    assert before.status is RunStatus.FAILED and before.mapping_version is None

    saved = services.set_mapping(
        "Invoca feed", suggestion.mapping, {"CampaignId": "1234", "CallProvider": "Invoca"}
    )
    run = services.ingest_bytes("Invoca feed", "calls.csv", data)
    assert run.status is RunStatus.COMPLETED, run.reason
    assert (run.rows_accepted, run.mapping_version) == (N, saved.version)
    assert count(services, "call_conversions", CampaignId=1234, CallProvider="Invoca") == N


def test_a_header_that_no_longer_matches_fails_with_a_suggested_update(
    services: Services, make_connection
) -> None:
    make_connection("Invoca feed")
    services.set_mapping("Invoca feed", services.suggest_mapping("Invoca feed", vendor_csv(3)).mapping,
                         {"CampaignId": "1234", "CallProvider": "Invoca"})  # fmt: skip
    second = services.set_mapping(
        "Invoca feed", services.suggest_mapping("Invoca feed", vendor_csv(3)).mapping,
        {"CampaignId": "1234", "CallProvider": "Invoca"},
    )  # fmt: skip
    changed = vendor_csv(N, prefix="x").replace(b"calling_phone_number", b"Caller ID", 1)

    run = services.ingest_bytes("Invoca feed", "renamed.csv", changed)

    assert run.status is RunStatus.FAILED and run.mapping_version == second.version == 2
    reason = run.reason or ""
    assert "no longer matches field mapping version 2" in reason, reason
    assert "'calling_phone_number' (-> CallerId) is missing" in reason
    assert '"Caller ID": "CallerId"' in reason  # the suggested update
    [f] = services.run_files(run.id)
    assert f.state == "rejected"
    assert count(services, "call_conversions") == 0


def test_a_google_ads_preamble_sets_the_files_time_zone(services: Services, make_connection) -> None:
    make_connection("Google calls")
    when = fresh_date(2).replace(hour=12, minute=0, second=0)
    rows = call_rows(2)
    for r in rows:
        r["EventDate"] = when.strftime("%Y-%m-%d %H:%M:%S")  # no offset: the file's zone
    body = to_csv(rows, list(rows[0]))
    data = b"Parameters:TimeZone=America/New_York\r\n" + body

    run = services.ingest_bytes("Google calls", "google.csv", data)

    assert run.status is RunStatus.COMPLETED, run.reason
    with services.db.connect() as con:
        got = con.execute("SELECT min(EventDate) FROM data_call_conversions").fetchone()
    assert got is not None
    expected = when.replace(tzinfo=None).replace(tzinfo=zoneinfo.ZoneInfo("America/New_York"))
    assert got[0] == expected  # not 12:00 UTC, the connection's zone


def test_a_constant_is_stored_instead_of_the_schema_default(services: Services, make_connection) -> None:
    make_connection("Invoca feed")
    data = vendor_csv(N)
    constants = {
        "CampaignId": "1234",
        "CallProvider": "Invoca",
        "CalledPhoneNumberCountry": "gb",
        "CallStatus": "cancel",
    }
    services.set_mapping("Invoca feed", services.suggest_mapping("Invoca feed", data).mapping, constants)

    run = services.ingest_bytes("Invoca feed", "calls.csv", data)

    assert run.status is RunStatus.COMPLETED, run.reason
    assert count(services, "call_conversions", CalledPhoneNumberCountry="GB", CallStatus="CANCEL") == N
