"""Deterministic generator of realistic call-conversion CSV files.

Why this exists: the parser benchmark and the parser's large-file tests need the *same* bytes every
time (so numbers compare between commits and machines), and those bytes must look like what
call-tracking vendors actually send — mixed ISO 8601 forms, quoted user agents, doubled quotes,
embedded newlines, sparse optional columns and a small, known share of broken rows.  A synthetic
file of uniform cells would flatter every parser and exercise nothing.

Usage::

    python bench/generate.py OUT.csv [--rows N] [--seed S]

Speed: every value is drawn from a pool precomputed *already CSV-encoded* (quoted where needed).
Per row only ~15 columns are drawn independently (ids, dates, phones, durations, location); the
~30 sparse optional columns arrive together as one pre-drawn :class:`_Extras` combination.  So a
row costs a few list look-ups and one ``",".join``, and chunks are encoded and written in blocks.

Broken rows are placed deterministically: data row ``i`` (0-based, header excluded) is broken when
``i % BAD_ROW_PERIOD == BAD_ROW_OFFSET`` (0.5 % of rows); :func:`bad_row_kind` says how, so tests
can predict exactly which rows a correct parser must reject.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

# The 51 columns of the call-conversion spec, in spec order.  Kept here rather than imported from
# the schema registry so the generator does not depend on the package it is used to measure.
COLUMNS: tuple[str, ...] = (
    "CampaignId",
    "MediaId",
    "EventDate",
    "ActionTrackerId",
    "CallProvider",
    "CallSessionId",
    "CallerId",
    "CalledPhoneNumber",
    "CallDuration",
    "TalkDuration",
    "AdId",
    "CallStatus",
    "CallerPhoneNumberCountry",
    "CalledPhoneNumberCountry",
    "SubId1",
    "SubId2",
    "SubId3",
    "ClickId",
    "Country",
    "City",
    "Region",
    "Zip",
    "RepeatCaller",
    "PhoneType",
    "CallRecording",
    "IvrDuration",
    "Keypresses",
    "Key1",
    "Key2",
    "Key3",
    "Key4",
    "TrafficSource",
    "OptInSms",
    "UserAgent",
    "DispositionName",
    "SaleAmount",
    "ReferenceId",
    "CustomConversionEvent1Name",
    "CustomConversionEvent2Name",
    "CustomConversionEvent3Name",
    "CustomConversionEvent1Value",
    "CustomConversionEvent2Value",
    "CustomConversionEvent3Value",
    "VendorEventId",
    "PromoNumberDescription",
    "CustomCallEvent1Name",
    "CustomCallEvent2Name",
    "CustomCallEvent3Name",
    "CustomCallEvent1Value",
    "CustomCallEvent2Value",
    "CustomCallEvent3Value",
)
COL: dict[str, int] = {name: i for i, name in enumerate(COLUMNS)}

BAD_ROW_PERIOD = 200  # one broken row per 200 data rows = 0.5 %
BAD_ROW_OFFSET = 137  # not 0: the first rows stay clean, as peers infer types from them
BAD_ROW_KINDS: tuple[str, ...] = (
    "campaign_not_integer",  # CampaignId = abc
    "impossible_event_date",  # EventDate = 2026-02-30T10:00:00Z
    "negative_call_duration",  # CallDuration = -5
    "amount_two_separators",  # SaleAmount = 12.34.56
    "unknown_call_status",  # CallStatus = MAYBE
    "invalid_country",  # CallerPhoneNumberCountry = UK
    "empty_call_session_id",  # CallSessionId empty (required)
    "missing_field",  # the AdId cell is dropped: 50 fields instead of 51
    "invalid_utf8",  # City starts with the bytes ff fe
)

FORMAT_VERSION = 2  # bump when the bytes for a given (rows, seed) change; caches key on it
DEFAULT_ROWS = 1_000_000
DEFAULT_SEED = 42
CHUNK_ROWS = 50_000  # rows built, encoded and written per block (~20 MB)
EXTRAS_POOL_SIZE = 1 << 16  # distinct combinations of the sparse optional columns

_MASK128 = (1 << 128) - 1


def bad_row_kind(index: int) -> str | None:
    """Return how data row ``index`` (0-based, header excluded) is broken, or None if it is valid.

    Exposed so tests can compute the exact rejects a correct parser must report.
    """
    if index % BAD_ROW_PERIOD != BAD_ROW_OFFSET:
        return None
    return BAD_ROW_KINDS[(index // BAD_ROW_PERIOD) % len(BAD_ROW_KINDS)]


def csv_field(value: str) -> str:
    """Encode one value as an RFC 4180 field, quoted only when it has to be."""
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


# --- static vocabularies --------------------------------------------------------------------------

# (name, weight, recording URL prefix)
_PROVIDERS: tuple[tuple[str, int, str], ...] = (
    ("Invoca", 30, "recordings.invoca.net"),
    ("CallRail", 25, "app.callrail.com/calls"),
    ("Ringba", 15, "media.ringba.com/recordings"),
    ("Marchex", 10, "recordings.marchex.io"),
    ("CallTrackingMetrics", 8, "app.calltrackingmetrics.com/recordings"),
    ("DialogTech", 5, "secure.dialogtech.com/rec"),
    ("Retreaver", 4, "retreaver.com/recordings"),
    ("WhatConverts", 3, "app.whatconverts.com/recording"),
)

# (country, city, region, first zip (0 = none), area codes, weight).  New England, New Jersey and
# Puerto Rico give zips with leading zeros.
_LOCATIONS: tuple[tuple[str, str, str, int, tuple[str, ...], int], ...] = (
    ("US", "New York", "NY", 10001, ("212", "646", "917"), 60),
    ("US", "Los Angeles", "CA", 90001, ("213", "310", "323"), 45),
    ("US", "Chicago", "IL", 60601, ("312", "773"), 35),
    ("US", "Houston", "TX", 77001, ("713", "832"), 30),
    ("US", "Phoenix", "AZ", 85001, ("602", "480"), 22),
    ("US", "Philadelphia", "PA", 19102, ("215", "267"), 20),
    ("US", "San Antonio", "TX", 78201, ("210",), 18),
    ("US", "San Diego", "CA", 92101, ("619", "858"), 18),
    ("US", "Dallas", "TX", 75201, ("214", "469"), 18),
    ("US", "San José", "CA", 95110, ("408",), 12),
    ("US", "Austin", "TX", 78701, ("512", "737"), 12),
    ("US", "Jacksonville", "FL", 32202, ("904",), 11),
    ("US", "Columbus", "OH", 43004, ("614",), 11),
    ("US", "Charlotte", "NC", 28202, ("704", "980"), 11),
    ("US", "Indianapolis", "IN", 46201, ("317",), 10),
    ("US", "Seattle", "WA", 98101, ("206",), 10),
    ("US", "Denver", "CO", 80202, ("303", "720"), 10),
    ("US", "Boston", "MA", 2108, ("617", "857"), 10),
    ("US", "Nashville", "TN", 37201, ("615",), 9),
    ("US", "Detroit", "MI", 48201, ("313",), 8),
    ("US", "Portland", "OR", 97201, ("503", "971"), 8),
    ("US", "Las Vegas", "NV", 89101, ("702",), 8),
    ("US", "Miami", "FL", 33101, ("305", "786"), 8),
    ("US", "Atlanta", "GA", 30303, ("404", "678"), 8),
    ("US", "Minneapolis", "MN", 55401, ("612",), 6),
    ("US", "Newark", "NJ", 7102, ("973", "862"), 5),
    ("US", "Jersey City", "NJ", 7302, ("201",), 4),
    ("US", "Hartford", "CT", 6103, ("860",), 4),
    ("US", "Providence", "RI", 2903, ("401",), 3),
    ("US", "Portland", "ME", 4101, ("207",), 2),
    ("US", "Manchester", "NH", 3101, ("603",), 2),
    ("US", "Burlington", "VT", 5401, ("802",), 1),
    ("US", "San Juan", "PR", 901, ("787",), 2),
    ("US", "Coeur d'Alene", "ID", 83814, ("208",), 1),
    ("US", "Winston-Salem", "NC", 27101, ("336",), 2),
    ("CA", "Toronto", "ON", 0, ("416", "647"), 8),
    ("CA", "Vancouver", "BC", 0, ("604", "778"), 4),
    ("CA", "Montréal", "QC", 0, ("514", "438"), 4),
    ("CA", "Calgary", "AB", 0, ("403",), 2),
    ("GB", "London", "England", 0, ("20",), 4),
    ("GB", "Manchester", "England", 0, ("161",), 1),
    ("GB", "Edinburgh", "Scotland", 0, ("131",), 1),
)

# Most contain "(KHTML, like Gecko)", so most UserAgent cells end up quoted.
_USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",  # noqa: E501
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",  # noqa: E501
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",  # noqa: E501
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.6312.99 Mobile Safari/537.36",  # noqa: E501
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",  # noqa: E501
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67",  # noqa: E501
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",  # noqa: E501
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",  # noqa: E501
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",  # noqa: E501
    "Mozilla/5.0 (Linux; Android 14; SM-A546U) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",  # noqa: E501
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/460.0.0.48.109;FBBV/585432016]",  # noqa: E501
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36 Instagram 327.1.0.40.94",  # noqa: E501
)

# The 8 spec values, mostly ANSWER, some in lower or title case, some empty (default ANSWER).
_STATUSES: tuple[tuple[str, int], ...] = (
    ("ANSWER", 850),
    ("answer", 25),
    ("Answer", 10),
    ("", 30),
    ("INCOMPLETE", 20),
    ("CANCEL", 18),
    ("cancel", 2),
    ("IVR_DROPOFF", 15),
    ("NO_TRANSFER_ATTEMPT", 10),
    ("FAILURE", 8),
    ("CONGESTION", 6),
    ("UNKNOWN_CALLERID", 6),
)
_ANSWERED = frozenset({"ANSWER", "answer", "Answer", ""})  # only these have talk time

# EventDate shapes (rendered by _event_date) and their weights.
_DATE_FORMS: tuple[tuple[str, int], ...] = (
    ("Z", 80),  # 2026-03-01T14:05:09Z
    ("+02:00", 4),  # 2026-03-01T14:05:09+02:00
    ("-05:00", 5),  # 2026-03-01T14:05:09-05:00
    ("frac3Z", 5),  # 2026-03-01T14:05:09.123Z
    ("frac6-05:00", 1),  # 2026-03-01T14:05:09.123456-05:00
    ("space", 4),  # 2026-03-01 14:05:09  (no offset: UTC by convention)
    ("spaceZ", 1),  # 2026-03-01 14:05:09Z
)
_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 4, 8, 14, 18, 20, 20, 18, 18, 18, 17, 15, 12, 9, 7, 5, 4, 2, 1)
_FIRST_DAY = 20454  # 2026-01-01 as days since 1970-01-01
_DAYS = 90  # 2026-01-01 .. 2026-03-31

_PROMO_DESCRIPTIONS: tuple[str, ...] = (
    "Google Ads - Brand",
    "Google Ads - Generic",
    "Bing Ads",
    "Radio spot, morning drive",
    'Billboard "Call Now" I-95',
    "Direct mail Q1",
    "Website header",
    "Landing page /quote",
    "TV spot 30s",
)

# Agent notes (CustomCallEvent1Value): commas, doubled quotes and, rarely, an embedded newline.
_NOTES: tuple[tuple[str, int], ...] = (
    ("Callback requested", 30),
    ("Callback requested, after 5pm", 20),
    ('He said "hi"', 10),
    ('Asked for the "premium" plan', 10),
    ("Wrong number", 10),
    ("Caller asked about financing.\nWants a call back on Tuesday.", 2),
)

_SUB_IDS: tuple[str, ...] = (
    "fb_spring",
    "gads_brand",
    "gads_generic",
    "newsletter_0312",
    "tiktok_ugc",
    "partner-123",
    "yt_preroll",
)

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# --- pools ----------------------------------------------------------------------------------------


class _Extras(NamedTuple):
    """One pre-drawn combination of the sparse columns (and small per-row picks).

    A NamedTuple documents the order while still unpacking positionally, at tuple speed.
    """

    frac3: str
    frac6: str
    area_pick: int  # which of the location's area codes
    zip_pick: int  # which of the location's zips
    call_decimal: bool  # CallDuration written as "63.0"
    talk_decimal: bool  # TalkDuration written as "63.0"
    ivr_on: bool
    ad_id: str
    caller_country_on: bool  # CallerPhoneNumberCountry filled for US callers
    called_country: str
    country_on: bool
    city_on: bool  # City and Region
    zip_on: bool  # US only
    sub1: str
    sub2: str
    sub3: str
    click_id: str
    repeat_caller: str
    phone_type: str
    keys: tuple[str, str, str, str, str]  # Keypresses, Key1..Key4
    traffic_source: str
    opt_in_sms: str
    user_agent: str
    disposition: str
    sale_amount: str
    reference_id: str
    conversion_events: tuple[str, str, str, str, str, str]  # 3 names, then 3 values
    vendor_event_on: bool
    promo: str
    call_events: tuple[str, str, str, str, str, str]  # 3 names, then 3 values
    recording_on: bool


_Location = tuple[str, str, str, list[str], tuple[str, ...]]


@dataclass(frozen=True)
class _Pools:
    """Precomputed, CSV-encoded value pools, drawn from the seeded RNG once per file."""

    campaigns: list[str]
    campaign_index: list[int]
    trackers: list[tuple[str, str, str]]
    tracker_slot: list[int]
    media: list[str]
    days: list[str]
    hours: list[str]
    minsec: list[str]
    date_forms: list[str]
    provider_index: list[int]
    provider_names: list[str]
    recording_hosts: list[str]
    location_index: list[int]
    locations: list[_Location]
    seven_digits: list[str]
    called_numbers: list[str]
    call_durations: list[int]
    talk_percent: list[int]
    statuses: list[str]
    extras: list[_Extras]
    session_salt: int


def _weighted(pairs: Sequence[tuple[str, int]]) -> list[str]:
    """Expand ``(value, weight)`` pairs into a flat pool, so ``choices`` needs no weights."""
    return [csv_field(value) for value, weight in pairs for _ in range(weight)]


def _sparse(values: Sequence[str], fill_percent: int) -> list[str]:
    """Pool in which ``fill_percent`` % of draws give one of ``values`` and the rest ``""``."""
    encoded = [csv_field(v) for v in values]
    return encoded * fill_percent + [""] * (len(encoded) * (100 - fill_percent))


def _flags(percent: int) -> list[bool]:
    """Pool of 100 booleans, ``percent`` of them True."""
    return [True] * percent + [False] * (100 - percent)


def _civil_from_days(z: int) -> tuple[int, int, int]:
    """Days since 1970-01-01 → (year, month, day) (H. Hinnant's algorithm, exact)."""
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (yoe + era * 400 + (m <= 2), m, d)


def _amount_text(cents: int, style: int) -> str:
    """Render an amount as vendors do: ``12.50``, ``1,234.50``, ``12.5``, ``$45.00``, ``45``."""
    units, rest = divmod(cents, 100)
    if style < 6:  # 60 %
        return f"{units:,}.{rest:02d}" if units >= 1000 else f"{units}.{rest:02d}"
    if style == 6:  # 10 %
        return f"{units}.{rest:02d}".rstrip("0").rstrip(".")
    if style < 9:  # 20 %
        return f"${units:,}.{rest:02d}"
    return str(units)  # 10 %


def _build_extras(rng: random.Random) -> list[_Extras]:
    """Draw ``EXTRAS_POOL_SIZE`` combinations of the sparse columns, each column independently."""
    k = EXTRAS_POOL_SIZE
    ch = rng.choices
    ad_ids = [str(a) for a in rng.sample(range(100000, 9999999), 800)]
    sub_values = [*_SUB_IDS, *(f"sub_{rng.randrange(10000):04d}" for _ in range(300))]
    click_ids = ["".join(rng.choices(_B62, k=22)) for _ in range(20_000)]
    keys: list[tuple[str, str, str, str, str]] = [
        *[("", "", "", "", "")] * 85,
        *[("1", "Sales", "", "", "")] * 6,
        *[("2", "Support", "", "", "")] * 4,
        *[("1|3", "Sales", "Financing", "", "")] * 2,
        *[("2|0|1", "Support", "Operator", "Sales", "")] * 2,
        ("3|1|2|0", "Billing", "Sales", "Support", "Operator"),
    ]
    amounts = [
        _amount_text(max(100, int(rng.lognormvariate(9.0, 1.2))), rng.randrange(10)) for _ in range(4000)
    ]
    maybe_later = csv_field('Customer said "maybe later"')
    conversion_events: list[tuple[str, str, str, str, str, str]] = [
        *[("", "", "", "", "", "")] * 88,
        *[("plan", "", "", "Premium", "", "")] * 4,
        *[("plan", "", "", "Basic", "", "")] * 4,
        *[("plan", "term", "", "Premium", "12 months", "")] * 2,
        *[("plan", "term", "note", "Basic", "24 months", maybe_later)] * 2,
    ]
    notes = _weighted(_NOTES)
    call_events: list[tuple[str, str, str, str, str, str]] = [
        *[("", "", "", "", "", "")] * (19 * len(notes)),
        *[("Notes", "", "", note, "", "") for note in notes],
    ]
    traffic = (("google", 20), ("bing", 5), ("facebook", 8), ("direct", 5), ("email", 3), ("", 59))
    dispositions = (
        ("Sale", 10),
        ("Lead", 15),
        ("Qualified Call", 10),
        ("Appointment Set", 5),
        ("Not Interested", 5),
        ("", 55),
    )
    columns = (
        ch([f".{i:03d}" for i in range(1000)], k=k),
        ch([f".{rng.randrange(1_000_000):06d}" for _ in range(1000)], k=k),
        ch(range(6), k=k),
        ch(range(10), k=k),
        ch(_flags(3), k=k),
        ch(_flags(3), k=k),
        ch(_flags(35), k=k),
        ch(_sparse(ad_ids, 60), k=k),
        ch(_flags(55), k=k),
        ch(_weighted((("US", 50), ("", 48), ("CA", 2))), k=k),
        ch(_flags(70), k=k),
        ch(_flags(75), k=k),
        ch(_flags(80), k=k),
        ch(_sparse(sub_values, 40), k=k),
        ch(_sparse(sub_values, 20), k=k),
        ch(_sparse(sub_values, 8), k=k),
        ch(_sparse(click_ids, 45), k=k),
        ch(_weighted((("New", 40), ("Repeat", 15), ("", 45))), k=k),
        ch(_weighted((("mobile", 35), ("landline", 12), ("voip", 3), ("", 50))), k=k),
        ch(keys, k=k),
        ch(_weighted(traffic), k=k),
        ch(_weighted((("true", 5), ("false", 10), ("", 85))), k=k),
        ch(_sparse(_USER_AGENTS, 75), k=k),
        ch(_weighted(dispositions), k=k),
        ch(_sparse(amounts, 35), k=k),
        ch(_sparse([f"DC-{rng.randrange(100000):05d}" for _ in range(500)], 20), k=k),
        ch(conversion_events, k=k),
        ch(_flags(60), k=k),
        ch(_sparse(_PROMO_DESCRIPTIONS, 30), k=k),
        ch(call_events, k=k),
        ch(_flags(85), k=k),
    )
    return [_Extras._make(values) for values in zip(*columns, strict=True)]


def _build_pools(rng: random.Random) -> _Pools:
    """Draw every vocabulary the rows are sampled from; all randomness comes from ``rng``."""
    campaigns = [str(c) for c in rng.sample(range(1000, 99999), 40)]
    # A few big campaigns and a long tail (weight ~ 1/rank).
    campaign_index = [i for i in range(len(campaigns)) for _ in range(max(1, 120 // (i + 1)))]
    tracker_ids = [str(t) for t in rng.sample(range(10000, 99999), 3 * len(campaigns))]
    trackers = [
        (tracker_ids[3 * i], tracker_ids[3 * i + 1], tracker_ids[3 * i + 2]) for i in range(len(campaigns))
    ]
    media = [str(m) for m in rng.sample(range(100000, 9999999), 4000)]

    days = []
    for d in range(_DAYS):
        y, m, dd = _civil_from_days(_FIRST_DAY + d)
        days.append(f"{y:04d}-{m:02d}-{dd:02d}")

    locations: list[_Location] = []
    location_index: list[int] = []
    for i, (country, city, region, zip0, areas, weight) in enumerate(_LOCATIONS):
        zips = [f"{zip0 + 2 * z:05d}" for z in range(10)] if zip0 else [""] * 10
        locations.append((country, csv_field(city), csv_field(region), zips, areas))
        location_index.extend([i] * weight)

    toll_free = ("800", "888", "877", "866", "855")
    local = ("212", "312", "415", "512", "617", "713")
    called_numbers = [
        f"+1{rng.choice(toll_free if n < 800 else local)}{rng.randrange(2000000, 9999999)}"
        for n in range(2000)
    ]
    return _Pools(
        campaigns=campaigns,
        campaign_index=campaign_index,
        trackers=trackers,
        tracker_slot=[0] * 6 + [1] * 3 + [2],
        media=media[:200] * 10 + media,  # a couple of hundred very active partners
        days=days,
        hours=[f"{h:02d}" for h, w in enumerate(_HOUR_WEIGHTS) for _ in range(w)],
        minsec=[f":{m:02d}:{s:02d}" for m in range(60) for s in range(60)],
        date_forms=[form for form, w in _DATE_FORMS for _ in range(w)],
        provider_index=[i for i, (_, w, _) in enumerate(_PROVIDERS) for _ in range(w)],
        provider_names=[p[0] for p in _PROVIDERS],
        recording_hosts=[p[2] for p in _PROVIDERS],
        location_index=location_index,
        locations=locations,
        seven_digits=[f"{rng.randrange(200, 1000)}{rng.randrange(10000):04d}" for _ in range(50_000)],
        called_numbers=called_numbers,
        call_durations=[min(3600, max(1, int(rng.lognormvariate(5.0, 0.9)))) for _ in range(20_000)],
        talk_percent=[min(100, max(0, int(rng.gauss(82, 12)))) for _ in range(1000)],
        statuses=_weighted(_STATUSES),
        extras=_build_extras(rng),
        session_salt=rng.getrandbits(128),
    )


# --- rows -----------------------------------------------------------------------------------------


def _session_int(index: int, salt: int) -> int:
    """Bijective 128-bit mix of the row index: unique, random-looking session ids without a set.

    Each step (xor with a right shift; multiplication by an odd constant mod 2**128) is a
    bijection, so two rows can never get the same id.
    """
    x = (index ^ salt) & _MASK128
    x ^= x >> 67
    x = (x * 0x9E3779B97F4A7C15F39CC0605CEDC835) & _MASK128
    x ^= x >> 59
    x = (x * 0xC2B2AE3D27D4EB4F165667B19E3779F9) & _MASK128
    x ^= x >> 71
    return x


def _event_date(form: str, day: str, hour: str, minsec: str, frac3: str, frac6: str) -> str:
    """Render one EventDate in one of the ISO 8601 shapes seen in vendor files."""
    if form == "Z":
        return f"{day}T{hour}{minsec}Z"
    if form == "frac3Z":
        return f"{day}T{hour}{minsec}{frac3}Z"
    if form == "frac6-05:00":
        return f"{day}T{hour}{minsec}{frac6}-05:00"
    if form == "space":
        return f"{day} {hour}{minsec}"
    if form == "spaceZ":
        return f"{day} {hour}{minsec}Z"
    return f"{day}T{hour}{minsec}{form}"  # "+02:00" / "-05:00"


def _corrupt(row: list[str], kind: str) -> None:
    """Apply one kind of breakage (see ``BAD_ROW_KINDS``) to an otherwise valid row, in place."""
    if kind == "campaign_not_integer":
        row[COL["CampaignId"]] = "abc"
    elif kind == "impossible_event_date":
        row[COL["EventDate"]] = "2026-02-30T10:00:00Z"
    elif kind == "negative_call_duration":
        row[COL["CallDuration"]] = "-5"
        row[COL["TalkDuration"]] = "0"
        row[COL["IvrDuration"]] = ""
    elif kind == "amount_two_separators":
        row[COL["SaleAmount"]] = "12.34.56"
    elif kind == "unknown_call_status":
        row[COL["CallStatus"]] = "MAYBE"
    elif kind == "invalid_country":
        row[COL["CallerPhoneNumberCountry"]] = "UK"
    elif kind == "empty_call_session_id":
        row[COL["CallSessionId"]] = ""
    elif kind == "missing_field":
        del row[COL["AdId"]]
    elif kind == "invalid_utf8":
        # Lone surrogates become the raw bytes ff fe under the "surrogateescape" encoder.
        row[COL["City"]] = "\udcff\udcfe" + (row[COL["City"]] or "Springfield")
    else:
        raise ValueError(f"unknown bad-row kind {kind!r}")


def _chunk_lines(p: _Pools, rng: random.Random, start: int, n: int) -> list[str]:
    """Build the CSV lines (without newlines) of data rows ``start .. start + n - 1``."""
    ch = rng.choices
    camp = ch(p.campaign_index, k=n)
    slot = ch(p.tracker_slot, k=n)
    media = ch(p.media, k=n)
    day = ch(p.days, k=n)
    hour = ch(p.hours, k=n)
    minsec = ch(p.minsec, k=n)
    form = ch(p.date_forms, k=n)
    prov = ch(p.provider_index, k=n)
    loc = ch(p.location_index, k=n)
    seven = ch(p.seven_digits, k=n)
    called = ch(p.called_numbers, k=n)
    call_dur = ch(p.call_durations, k=n)
    talk_pct = ch(p.talk_percent, k=n)
    status = ch(p.statuses, k=n)
    extras = ch(p.extras, k=n)

    campaigns, trackers, locations = p.campaigns, p.trackers, p.locations
    names, hosts, salt = p.provider_names, p.recording_hosts, p.session_salt
    lines: list[str] = []
    append = lines.append
    for j in range(n):
        i = start + j
        c = camp[j]
        country, city, region, zips, areas = locations[loc[j]]
        (
            frac3, frac6, area_pick, zip_pick, call_decimal, talk_decimal, ivr_on, ad_id,
            caller_country_on, called_country, country_on, city_on, zip_on, sub1, sub2, sub3,
            click_id, repeat_caller, phone_type, keys, traffic_source, opt_in_sms, user_agent,
            disposition, sale_amount, reference_id, conversion_events, vendor_event_on, promo,
            call_events, recording_on,
        ) = extras[j]  # fmt: skip
        h = f"{_session_int(i, salt):032x}"
        pv = prov[j]
        if country == "GB":
            caller = f"+44{areas[0]}{seven[j]}"
        else:
            caller = f"+1{areas[area_pick % len(areas)]}{seven[j]}"
        st = status[j]
        cd = call_dur[j]
        td = cd * talk_pct[j] // 100 if st in _ANSWERED else 0
        us = country == "US"
        row = [
            campaigns[c],
            media[j],
            _event_date(form[j], day[j], hour[j], minsec[j], frac3, frac6),
            trackers[c][slot[j]],
            names[pv],
            f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}",
            caller,
            called[j],
            f"{cd}.0" if call_decimal else str(cd),
            f"{td}.0" if talk_decimal else str(td),
            ad_id,
            st,
            country if (caller_country_on or not us) else "",
            called_country,
            sub1,
            sub2,
            sub3,
            click_id,
            country if country_on else "",
            city if city_on else "",
            region if city_on else "",
            zips[zip_pick] if zip_on else "",
            repeat_caller,
            phone_type,
            f"https://{hosts[pv]}/{h}.mp3" if recording_on else "",
            str(min(cd - td, 45)) if ivr_on else "",
            *keys,
            traffic_source,
            opt_in_sms,
            user_agent,
            disposition,
            sale_amount,
            reference_id,
            *conversion_events,
            f"{names[pv][:3].lower()}_{h[12:28]}" if vendor_event_on else "",
            promo,
            *call_events,
        ]
        if i % BAD_ROW_PERIOD == BAD_ROW_OFFSET:
            _corrupt(row, BAD_ROW_KINDS[(i // BAD_ROW_PERIOD) % len(BAD_ROW_KINDS)])
        append(",".join(row))
    return lines


def generate(path: str | os.PathLike[str], rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> None:
    """Write a header plus ``rows`` data rows of call-conversion CSV (LF line endings) to ``path``.

    The bytes depend only on ``(rows, seed)`` (given CPython's ``random``), so cached benchmark
    files and test fixtures are reproducible.  Writing goes to ``<path>.tmp`` and is renamed at the
    end, so an interrupted run never leaves a truncated file that a cache would take as complete.
    """
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    rng = random.Random(seed)
    pools = _build_pools(rng)
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb", buffering=1 << 22) as out:
        out.write((",".join(COLUMNS) + "\n").encode("ascii"))
        for start in range(0, rows, CHUNK_ROWS):
            lines = _chunk_lines(pools, rng, start, min(CHUNK_ROWS, rows - start))
            lines.append("")  # so the block ends with a newline
            out.write("\n".join(lines).encode("utf-8", "surrogateescape"))
    os.replace(tmp, target)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Write a deterministic call-conversion CSV file.")
    parser.add_argument("out", type=Path, help="output CSV path")
    parser.add_argument(
        "--rows", type=int, default=DEFAULT_ROWS, help=f"data rows (default {DEFAULT_ROWS:,})"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"RNG seed (default {DEFAULT_SEED})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; reports size and speed on stderr so stdout stays clean."""
    args = _parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    generate(args.out, args.rows, args.seed)
    elapsed = time.perf_counter() - t0
    size = args.out.stat().st_size
    per_row = size / args.rows if args.rows else 0.0
    print(
        f"wrote {args.out}: {args.rows:,} rows, {size / 1e6:.1f} MB ({per_row:.0f} B/row) "
        f"in {elapsed:.1f} s ({args.rows / elapsed:,.0f} rows/s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
