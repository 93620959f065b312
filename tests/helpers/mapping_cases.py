"""Vendor header sets with the mapping a person would choose: the accuracy table of the
field-mapping suggestions (tests/unit/test_mapping_accuracy.py, bench/bench_mapping.py).

Each case is (name, header, truth, source): `truth` maps a header to our column; headers
not in it have no counterpart (ignored). Sample rows are generated from the truth (an
E.164 number for a phone column, a longer call than talk duration...), so the values the
engine uses as evidence look like a real export's. Two sets come from the shared corpus
(`SHARED_CASES`, read from ../shared/corpora/call-tracking-formats); the others are
written here from the vendors' public documentation, cited per case. Several deliberately
use names that are NOT in the dictionary (the home-grown and the mixed-up cases), so
the table measures the fuzzy and value evidence too, not only the dictionary.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from connectbatch import schemas


@dataclass(frozen=True)
class Case:
    name: str
    header: list[str]
    truth: dict[str, str]  # header -> our column; headers left out have no counterpart
    source: str
    rows: int = 8
    overrides: dict[str, list[str]] = field(default_factory=dict)  # header -> its own values

    def sample_csv(self) -> bytes:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\r\n")
        w.writerow(self.header)
        for r in range(self.rows):
            w.writerow([self._value(h, r) for h in self.header])
        return out.getvalue().encode()

    def _value(self, header: str, r: int) -> str:
        if header in self.overrides:
            vals = self.overrides[header]
            return vals[r % len(vals)]
        return value_for(self.truth.get(header), r)


def value_for(target: str | None, r: int) -> str:
    """A plausible cell of our column `target` (None: free text) for row r."""
    if target is None:
        return f"text {r}"
    col = schemas.CALL_CONVERSIONS.column(target) if target in schemas.CALL_CONVERSIONS.column_names else None
    if target == "CallerId":
        return f"+1555{1000000 + r * 7919:07d}"
    if target == "CalledPhoneNumber":
        return "+18005550100" if r % 2 else "+18005550101"
    if target == "CallDuration":
        return str(120 + r * 37)
    if target == "TalkDuration":
        return str(60 + r * 11)
    if target == "IvrDuration":
        return str(5 + r)
    if target == "EventDate":
        return f"2026-03-0{1 + r % 9}T14:{10 + r:02d}:09Z"
    if target == "SaleAmount":
        return f"{40 + r}.50"
    if target == "CallRecording":
        return f"https://rec.example.com/{r}.mp3"
    if col is not None and col.kind is schemas.Kind.INTEGER:
        return str(1000 + r)
    return f"{target.lower()}-{r}"


CALLRAIL = Case(
    "CallRail calls (API v3)",
    ["id", "answered", "business_phone_number", "customer_city", "customer_country", "customer_name",
     "customer_phone_number", "customer_state", "direction", "duration", "recording", "start_time",
     "tracking_phone_number", "voicemail", "source", "value"],
    {"id": "CallSessionId", "customer_city": "City", "customer_country": "Country",
     "customer_phone_number": "CallerId", "customer_state": "Region", "duration": "CallDuration",
     "recording": "CallRecording", "start_time": "EventDate", "tracking_phone_number": "CalledPhoneNumber",
     "source": "TrafficSource", "value": "SaleAmount"},
    "apidocs.callrail.com, Calls: the call object",
)  # fmt: skip

RINGBA_UI = Case(
    "Ringba call details report (UI export)",
    ["Campaign", "Publisher", "Target", "Buyer", "Inbound Call ID", "Call Date", "Caller ID", "Dialed #",
     "Number Pool", "Time To Call", "Call Length In Seconds", "Connected Call Length In Seconds",
     "Revenue", "Payout", "Recording Url"],
    {"Inbound Call ID": "CallSessionId", "Call Date": "EventDate", "Caller ID": "CallerId",
     "Dialed #": "CalledPhoneNumber", "Call Length In Seconds": "CallDuration",
     "Connected Call Length In Seconds": "TalkDuration", "Recording Url": "CallRecording"},
    "support.ringba.com, Call Details Report Column Dictionary",
)  # fmt: skip

RINGBA_API = Case(
    "Ringba call logs (API)",
    ["inboundCallId", "callDt", "inboundPhoneNumber", "number", "callLengthInSeconds",
     "connectedCallLengthInSeconds", "recordingUrl", "campaignName", "publisherName"],
    {"inboundCallId": "CallSessionId", "callDt": "EventDate", "inboundPhoneNumber": "CallerId",
     "number": "CalledPhoneNumber", "callLengthInSeconds": "CallDuration",
     "connectedCallLengthInSeconds": "TalkDuration", "recordingUrl": "CallRecording"},
    "developers.ringba.com, Call Logs: callLogs columns",
)  # fmt: skip

CTM = Case(
    "CallTrackingMetrics calls",
    ["id", "sid", "account_id", "name", "caller_number", "tracking_number", "receiving_number",
     "called_at", "unix_time", "duration", "talk_time", "ring_time", "city", "state", "postal_code",
     "country", "audio", "tracking_label", "source"],
    {"sid": "CallSessionId", "caller_number": "CallerId", "tracking_number": "CalledPhoneNumber",
     "called_at": "EventDate", "duration": "CallDuration", "talk_time": "TalkDuration", "city": "City",
     "state": "Region", "postal_code": "Zip", "country": "Country", "audio": "CallRecording",
     "tracking_label": "PromoNumberDescription", "source": "TrafficSource"},
    "calltrackingmetrics.com API reference, Calls: list calls (call fields)",
    overrides={"id": [str(900000 + r) for r in range(8)],
               "unix_time": [str(1772374209 + r) for r in range(8)],
               "account_id": ["1234"], "ring_time": ["4", "6", "9"]},
)  # fmt: skip

MARCHEX = Case(
    "Marchex call log",
    ["Call ID", "Call Start", "Caller Number", "Tracking Number", "Forward Number", "Call Duration",
     "Talk Time", "Caller City", "Caller State", "Caller Zip", "Disposition"],
    {"Call ID": "CallSessionId", "Call Start": "EventDate", "Caller Number": "CallerId",
     "Tracking Number": "CalledPhoneNumber", "Call Duration": "CallDuration", "Talk Time": "TalkDuration",
     "Caller City": "City", "Caller State": "Region", "Caller Zip": "Zip"},
    "Marchex Call Analytics help: call log export fields",
)  # fmt: skip

RETREAVER = Case(
    "Retreaver calls",
    ["uuid", "caller", "dialed_number", "created_at", "duration", "connected_duration", "campaign_name",
     "billable_minutes"],
    {"uuid": "CallSessionId", "caller": "CallerId", "dialed_number": "CalledPhoneNumber",
     "created_at": "EventDate", "duration": "CallDuration", "connected_duration": "TalkDuration"},
    "retreaver.com API docs, Calls",
)  # fmt: skip

HOME_GROWN = Case(
    "Home-grown export (names not in the dictionary)",
    ["Campaign ID", "Media Partner ID", "Action Tracker", "Call Provider", "Session", "Caller Phone",
     "Dialed Number", "Call Start (UTC)", "Total Call Seconds", "Talk Seconds", "Zip Code", "Sale Amt",
     "Sub ID 1", "Agent Name"],
    {"Campaign ID": "CampaignId", "Media Partner ID": "MediaId", "Action Tracker": "ActionTrackerId",
     "Call Provider": "CallProvider", "Session": "CallSessionId", "Caller Phone": "CallerId",
     "Dialed Number": "CalledPhoneNumber", "Call Start (UTC)": "EventDate",
     "Total Call Seconds": "CallDuration", "Talk Seconds": "TalkDuration", "Zip Code": "Zip",
     "Sale Amt": "SaleAmount", "Sub ID 1": "SubId1"},
    "written for this table: the impact.com call-conversion spec's meanings, a partner's own names",
)  # fmt: skip

AMBIGUOUS = Case(
    "Two durations and two numbers named alike (values decide)",
    ["call_id", "phone_number_a", "phone_number_b", "event_time", "duration_a", "duration_b"],
    {"call_id": "CallSessionId", "phone_number_a": "CalledPhoneNumber", "phone_number_b": "CallerId",
     "event_time": "EventDate", "duration_a": "TalkDuration", "duration_b": "CallDuration"},
    "written for this table: the tie-breaking rules (the longer duration is the call's; the "
    "tracking number repeats, the caller's varies)",
)  # fmt: skip

WRITTEN_CASES = [CALLRAIL, RINGBA_UI, RINGBA_API, CTM, MARCHEX, RETREAVER, HOME_GROWN, AMBIGUOUS]

# Shared corpus files (relative to <shared>/corpora/call-tracking-formats) -> truth.
SHARED_CASES: dict[str, dict[str, str]] = {
    "google_ads_call_conversions_header_only.csv": {
        "Caller's Phone Number": "CallerId", "Conversion Time": "EventDate",
        "Conversion Name": "DispositionName", "Conversion Value": "SaleAmount",
    },
    "invoca_transactions_api_advertiser_columns_header_only.csv": {
        "advertiser_campaign_id_from_network": "CampaignId", "affiliate_id_from_network": "MediaId",
        "advertiser_promo_line_description": "PromoNumberDescription",
        "call_source_description": "TrafficSource", "calling_phone_number": "CallerId", "city": "City",
        "complete_call_id": "CallSessionId", "connect_duration": "TalkDuration",
        "destination_phone_number": "CalledPhoneNumber", "duration": "CallDuration",
        "ivr_duration": "IvrDuration", "keypress_1": "Key1", "keypress_2": "Key2", "keypress_3": "Key3",
        "keypress_4": "Key4", "keypresses": "Keypresses", "mobile": "PhoneType", "opt_in_SMS": "OptInSms",
        "recording": "CallRecording", "region": "Region", "repeat_calling_phone_number": "RepeatCaller",
        "start_time_xml": "EventDate", "transaction_id": "VendorEventId", "verified_zip": "Zip",
    },
}  # fmt: skip


def shared_case(path_name: str, data: bytes) -> Case:
    """A corpus file (header only, maybe a preamble) as a case with generated rows."""
    lines = [ln for ln in data.decode("utf-8").splitlines() if ln.strip()]
    header_line = next(ln for ln in lines if not ln.lower().startswith("parameters:"))
    header = next(csv.reader([header_line]))
    return Case(f"shared: {path_name}", header, SHARED_CASES[path_name], "corpora/call-tracking-formats")


@dataclass(frozen=True)
class Score:
    name: str
    with_counterpart: int
    right: int
    wrong_required: list[str]
    false_positives: list[str]
    wrong: list[str]

    @property
    def share(self) -> float:
        return self.right / self.with_counterpart if self.with_counterpart else 1.0


def score(case: Case, mapping: dict[str, str | None]) -> Score:
    """Columns mapped right without help, wrong required columns (a required column fed by
    the wrong header, or a header that feeds one not fed at all), false positives."""
    required = set(schemas.CALL_CONVERSIONS.required_columns)
    right = 0
    wrong: list[str] = []
    wrong_required: list[str] = []
    false_pos: list[str] = []
    for header in case.header:
        truth = case.truth.get(header)
        got = mapping.get(header)
        if truth is not None:
            if got == truth:
                right += 1
            else:
                wrong.append(f"{header} -> {got} (want {truth})")
        elif got is not None:
            false_pos.append(f"{header} -> {got}")
        if got != truth and (got in required or truth in required):
            wrong_required.append(f"{header} -> {got} (want {truth})")
    return Score(case.name, len(case.truth), right, wrong_required, false_pos, wrong)
