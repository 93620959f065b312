"""The "map it or rename it" hints of a refused header point at the right column.

A partner whose vendor export lacks our names reads the refusal and renames or maps what it
offers. Spelling alone offered Invoca's `calling_phone_number` (the caller's number) for
CalledPhoneNumber and its `duration` for TalkDuration as well as CallDuration: followed,
the hint would load the caller's number as the called one. Names the vendor dictionary
knows are offered for the column they feed, and never for another.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectbatch.errors import ParseError
from connectbatch.parser.api import parse_bytes

CallCsv = Callable[..., bytes]  # the conftest builder

# Invoca Transactions API columns (the order of its docs; see the shared corpus), no data.
INVOCA = (
    "advertiser_campaign_id,advertiser_campaign_id_from_network,affiliate_id,"
    "affiliate_id_from_network,calling_phone_number,complete_call_id,connect_duration,"
    "destination_phone_number,duration,ivr_duration,start_time_local,start_time_utc,start_time_xml,"
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
    assert hint("EventDate", "start_time_xml") in message  # an ISO time; _utc is milliseconds
    assert "start_time_utc" not in message


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


# ------------------------------------------------------------------ a wide header, fast (issue 13)
# A 400,000-name header is refused in well under a second: the names are matched and hinted
# without a Python step per name. These hold the fast forms to the plain ones they replace.

_NAME = st.text(alphabet=st.sampled_from(list("aAbBσΣςİıßﬁ_ -\t\u00a0'.1")), min_size=0, max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(_NAME, min_size=0, max_size=150))
def test_header_keys_are_each_name_trimmed_and_lower_cased(names: list[str]) -> None:
    """Lower-cased as one string (final sigmas, dotted capitals and ligatures included)."""
    from connectbatch.parser.plan import header_keys

    assert header_keys(names) == [name.strip().lower() for name in names]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="ab\u00e9\u00ff", max_size=4), min_size=0, max_size=80))
def test_a_header_is_decoded_as_each_name_is(names: list[str]) -> None:
    from connectbatch.parser.plan import decode_header

    fields = [name.encode() for name in names]
    assert decode_header(fields, 1) == names


def test_a_header_name_that_is_not_utf8_is_still_named() -> None:
    from connectbatch.parser.plan import decode_header

    with pytest.raises(ParseError, match="header column 2 is not valid utf-8 text"):
        decode_header([b"ok", b"caf\xe9", b"x"], 1)
    with pytest.raises(ParseError, match="header column 3 contains a NUL byte"):
        decode_header([b"ok", b"a", b"b\x00"], 1)


def _closest_by_extract(word: str, choices: list[str], avoid: set[str]) -> str | None:
    """The way before issue 13's last change: process.extract per word over distinct names."""
    import difflib

    from rapidfuzz import fuzz, process

    from connectbatch.parser import header_hints

    distinct = list(dict.fromkeys(choices))
    if len(distinct) > header_hints.CLOSE_CANDIDATES:
        found = process.extract(
            word, distinct, scorer=fuzz.ratio, processor=None,
            limit=header_hints.CLOSE_CANDIDATES, score_cutoff=header_hints.CLOSE_CUTOFF * 100,
        )  # fmt: skip
        distinct = [choice for choice, _score, _index in found]
    distinct = [choice for choice in distinct if choice not in avoid]
    close = difflib.get_close_matches(word, distinct, 1, header_hints.CLOSE_CUTOFF)
    return close[0] if close else None


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.text(alphabet="campigd_", min_size=5, max_size=12), min_size=0, max_size=120),
    st.lists(st.sampled_from(["campaignid", "mediaid", "campaign", "gid"]), min_size=1, max_size=4),
    st.sets(st.text(alphabet="campigd_", min_size=5, max_size=12), max_size=3),
)
def test_the_candidates_in_one_call_are_those_extract_gave(
    choices: list[str], words: list[str], avoid: set[str]
) -> None:
    """Many near names (more than CLOSE_CANDIDATES, ties, repeats): the one compiled call
    picks what one extract per word over the distinct names picked."""
    from connectbatch.parser.header_hints import closest_each

    expected = [_closest_by_extract(word, choices, avoid) for word in words]
    assert closest_each(words, choices, [avoid] * len(words)) == expected


def test_ties_and_repeats_beyond_the_candidates_pick_as_extract_did() -> None:
    """More than CLOSE_CANDIDATES names score alike, each written several times."""
    from connectbatch.parser.header_hints import CLOSE_CANDIDATES, closest_each

    near = [f"campaign{i:02d}" for i in range(CLOSE_CANDIDATES * 3)] + ["campaign_id", "campaignid_"]
    choices = [name for name in near for _ in range(3)][::-1]
    for avoid in (set(), {"campaign_id"}, {"campaign_id", "campaignid_"}):
        words = ["campaignid", "campaign", "mediaid"]
        expected = [_closest_by_extract(word, choices, avoid) for word in words]
        assert closest_each(words, choices, [avoid] * 3) == expected
        assert expected[0] is not None


def test_an_optional_column_spelled_another_way_is_refused_not_dropped(
    engine: str, call_csv: CallCsv
) -> None:
    """ "Call Status" and "sale_amount" were unknown names: their values were dropped without a
    word and every call became ANSWER with no SaleAmount. The header is refused like a
    missing required column, with the same hint; a map (or the exact name) loads them."""
    data = call_csv({"Call Status": "FAILURE", "sale_amount": "49.99"}).decode()
    message = refusal(data, engine)
    assert "the header spells a column of ours another way" in message
    assert hint("CallStatus", "Call Status") in message and hint("SaleAmount", "sale_amount") in message
    mapped = parse_bytes(
        data.encode(), "call_conversions", engine=engine,  # type: ignore[arg-type]
        column_map={"Call Status": "CallStatus", "sale_amount": "SaleAmount"},
    )  # fmt: skip
    assert mapped.table.column("CallStatus").to_pylist() == ["FAILURE"]
    # beside the exact name, another spelling stays an unknown column, as before
    both = call_csv({"CallStatus": "FAILURE", "Call Status": "CANCEL"})
    parsed = parse_bytes(both, "call_conversions", engine=engine)  # type: ignore[arg-type]
    assert parsed.table.column("CallStatus").to_pylist() == ["FAILURE"]


def test_a_file_without_its_header_line_is_told_so(engine: str) -> None:
    """An export without its header line: its first row was read as the header, and the
    refusal listed every required column as missing, never saying that line 1 is data."""
    rows = (
        "1234,98765,2026-12-06T14:05:09Z,20001,Invoca,cs-1,+15551234567,+18005550100,185,160\n"
        "1234,98765,2026-12-06T14:06:09Z,20001,Invoca,cs-2,+15551234568,+18005550100,85,60\n"
    )
    message = refusal(rows, engine)
    assert message.startswith("line 1 looks like a row of data, not a header")
    assert "CampaignId" in message and "CallSessionId" in message  # the header it needs


def test_a_header_of_other_names_is_not_taken_for_data(engine: str) -> None:
    message = refusal("id,date,phone,amount\n1,2026-12-06,+1555,2.50\n", engine)
    assert "looks like a row of data" not in message and "the header lacks required" in message
