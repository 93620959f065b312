"""The "map it or rename it" hints of a refused header point at the right column.

A partner whose vendor export lacks our names reads the refusal and renames or maps what it
offers. Spelling alone offered Invoca's `calling_phone_number` (the caller's number) for
CalledPhoneNumber and its `duration` for TalkDuration as well as CallDuration: followed,
the hint would load the caller's number as the called one. Names the vendor dictionary
knows are offered for the column they feed, and never for another.
"""

from __future__ import annotations

import pytest

from connectbatch.errors import ParseError
from connectbatch.parser.api import parse_bytes

# Invoca Transactions API columns (the order of its docs; see the shared corpus), no data.
INVOCA = (
    "advertiser_campaign_id,advertiser_campaign_id_from_network,affiliate_id,"
    "affiliate_id_from_network,calling_phone_number,complete_call_id,connect_duration,"
    "destination_phone_number,duration,ivr_duration,start_time_local,start_time_utc,"
    "transaction_id\n"
)
# Google Ads "Conversions from calls", with its preamble line.
GOOGLE = (
    "Parameters:TimeZone=America/Los_Angeles\r\n"
    "Caller's Phone Number,Call Start Time,Conversion Name,Conversion Time,"
    "Conversion Value,Conversion Currency\r\n"
)


def refusal(data: str, engine: str) -> str:
    with pytest.raises(ParseError) as err:
        parse_bytes(data.encode(), "call_conversions", engine=engine)  # type: ignore[arg-type]
    return str(err.value)


def hint(column: str, name: str) -> str:
    return f"{column} (the file has {name!r}; map it or rename it)"


def test_invoca_names_are_offered_for_the_columns_they_feed(engine: str) -> None:
    message = refusal(INVOCA, engine)
    assert hint("CallerId", "calling_phone_number") in message
    assert hint("CalledPhoneNumber", "destination_phone_number") in message
    assert hint("CallDuration", "duration") in message
    assert hint("TalkDuration", "connect_duration") in message
    assert hint("CallSessionId", "complete_call_id") in message
    assert hint("EventDate", "start_time_utc") in message


def test_a_known_name_is_never_offered_for_another_column(engine: str) -> None:
    message = refusal(INVOCA, engine)
    assert hint("CalledPhoneNumber", "calling_phone_number") not in message
    assert hint("TalkDuration", "duration") not in message


def test_the_google_ads_callers_number_is_offered_as_the_caller_not_the_called(engine: str) -> None:
    message = refusal(GOOGLE, engine)
    assert hint("CallerId", "Caller's Phone Number") in message
    assert hint("CalledPhoneNumber", "Caller's Phone Number") not in message
    assert hint("EventDate", "Conversion Time") in message


def test_an_unknown_near_miss_is_still_offered(engine: str) -> None:
    """The dictionary only adds knowledge: a name it does not know keeps its spelling hint."""
    data = "Campaign_Id,MediaId,EventDate,ActionTrackerId,CallProvider,CallSessionId,CallerId,"
    data += "CalledPhoneNumber,CallDuration,TalkDuration\n"
    message = refusal(data, engine)
    assert message.endswith(hint("CampaignId", "Campaign_Id"))


def test_vendor_names_are_found_as_normalising_every_name_finds_them() -> None:
    """`vendor_names` skips the Python step per name (a 400,000-name header: issue 13) and
    must answer as normalising every name in header order does, line breaks included."""
    from connectbatch.mapping import vendors
    from connectbatch.parser.header_hints import vendor_names

    known = vendors.known_names("call_conversions")
    for keys in (
        ["metric1", "caller_id", "callerid", "start_time", "calling_phone_number", "duration"],
        ["callerid", "caller id", "call\nid", "caller\nid", "x" * 300, "", "start time", "starttime"],
        [f"metric{i}" for i in range(1000)] + ["duration"],
    ):
        expected: dict[str, str] = {}
        for key in keys:
            expected.setdefault(vendors.normalise(key), key)
        assert vendor_names(keys, known) == {n: k for n, k in expected.items() if n in known}
