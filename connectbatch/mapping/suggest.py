"""Propose a mapping from a partner's header to a data type's columns.

Evidence, strongest first, each line keeping the reason it was chosen:
1. the exact name; 2. the same name once case, spaces, underscores and punctuation are
ignored; 3. a name from the vendor dictionary (`vendors`); 4. a similar name (rapidfuzz
token similarity, with a few call-tracking synonyms). The sample *values* then raise or
lower each candidate (`values.fit`) and break the ties names cannot: the longer of two
durations is the call's, the number that repeats less is the caller's.
Each of our columns is assigned at most once (best score first); lines below
`UNSURE_BELOW` are flagged for the analyst.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from connectbatch import schemas
from connectbatch.mapping import values as vals
from connectbatch.mapping import vendors
from connectbatch.mapping.sample import Sample

UNSURE_BELOW = 0.8
FUZZY_FLOOR = 72.0  # rapidfuzz score (0..100) under which a name is no evidence at all

EXACT = 1.0
NORMALISED = 0.97
DICTIONARY = 0.95
DICTIONARY_GENERIC = 0.88  # a dictionary name that is a common word (vendors.GENERIC)
REQUIRED_BONUS = 0.02  # between equally similar names, a required column is the likelier one

# Words vendors use for the same thing; applied to both sides before fuzzy comparison.
_SYNONYMS = {
    "phone": "number", "num": "number", "no": "number", "tel": "number", "telephone": "number",
    "ani": "caller", "calling": "caller", "customer": "caller", "from": "caller",
    "dialed": "called", "dnis": "called", "to": "called", "destination": "called", "tracking": "called",
    "length": "duration", "secs": "duration", "seconds": "duration", "time": "date",
    "timestamp": "date", "datetime": "date", "start": "date", "connected": "talk", "connect": "talk",
    "billable": "talk", "uuid": "id", "identifier": "id", "zipcode": "zip",
    "postal": "zip", "state": "region", "revenue": "amount", "value": "amount", "sale": "amount",
    "recordingurl": "recording", "url": "", "the": "", "s": "", "of": "", "in": "",
}  # fmt: skip
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|[^A-Za-z0-9]+")


def tokens(name: str) -> str:
    """'CallerPhoneNumber' / 'caller_phone_number' -> 'caller number number' (synonyms applied)."""
    words = [w.lower() for w in _CAMEL.split(name.strip()) if w]
    mapped = [_SYNONYMS.get(w, w) for w in words]
    return " ".join(w for w in mapped if w)


@dataclass(frozen=True)
class Line:
    """One partner column: where it goes (None: ignored), how sure, and why."""

    header: str
    target: str | None
    confidence: float
    reason: str
    unsure: bool = False


@dataclass(frozen=True)
class Suggestion:
    data_type: str
    lines: list[Line]
    preamble: dict[str, str] = field(default_factory=dict)

    @property
    def mapping(self) -> dict[str, str | None]:
        return {line.header: line.target for line in self.lines}

    @property
    def missing_required(self) -> list[str]:
        """Required columns no line feeds that a constant can fill. The data type's key is
        not among them (`missing_keys`): one value for every row makes every row after the
        first a duplicate, so only the partner can send it."""
        dtype = schemas.get(self.data_type)
        fed = {line.target for line in self.lines}
        return [c for c in dtype.required_columns if c not in fed and c not in dtype.key_columns]

    @property
    def missing_keys(self) -> list[str]:
        """Key columns (CallSessionId, ...) no line feeds: the partner must send them."""
        dtype = schemas.get(self.data_type)
        fed = {line.target for line in self.lines}
        return [c for c in dtype.required_columns if c not in fed and c in dtype.key_columns]

    def to_json(self) -> dict[str, Any]:
        """The CLI's `mapping suggest --json` document: mapping, confidence, reasons."""
        return {
            "mapping": self.mapping,
            "confidence": {line.header: round(line.confidence, 2) for line in self.lines},
            "reasons": {
                line.header: ("unsure: " if line.unsure else "") + line.reason for line in self.lines
            },
        }


@dataclass
class _Candidate:
    header_index: int
    target: str | None
    score: float
    reason: str
    source: str  # exact | normalised | dictionary | similar | values


def suggest(sample: Sample, data_type: str) -> Suggestion:
    """The best mapping for `sample`'s header onto `data_type` (see the module docstring)."""
    dtype = schemas.get(data_type)
    profiles = [vals.profile(sample.values(i)) for i in range(len(sample.header))]
    candidates: list[_Candidate] = []
    for i, header in enumerate(sample.header):
        candidates.extend(_candidates(i, header, dtype, profiles[i]))
    chosen = _assign(candidates, len(sample.header))
    _prefer_filled(chosen, sample, dtype, profiles)
    _value_only(chosen, sample, dtype, profiles)
    _break_ties(chosen, sample, profiles)
    close = _close_calls(candidates, chosen)
    lines = []
    for i, header in enumerate(sample.header):
        c = chosen.get(i)
        if c is None:
            lines.append(Line(header, None, 0.8, "no column of ours looks like it: ignored"))
            continue
        conf = round(min(c.score, 1.0), 3)
        reason = c.reason + (f"; almost as close: {close[i]}" if i in close else "")
        lines.append(Line(header, c.target, conf, reason, conf < UNSURE_BELOW or i in close))
    return Suggestion(data_type, lines, dict(sample.preamble))


def suggest_header(header: Sequence[str], data_type: str) -> Suggestion:
    """A suggestion from names alone (no rows): for messages about a changed header."""
    return suggest(Sample(list(header), []), data_type)


def _candidates(i: int, header: str, dtype: schemas.DataType, p: vals.Profile) -> list[_Candidate]:
    out: list[_Candidate] = []
    name = header.strip()
    if not name:
        return out
    norm = vendors.normalise(name)
    for col in dtype.columns:
        if name == col.name:
            return [_Candidate(i, col.name, EXACT, "exact name", "exact")]
    for col in dtype.columns:
        if norm and norm == vendors.normalise(col.name):
            return [
                _Candidate(
                    i, col.name, NORMALISED, "same name ignoring case, spaces and punctuation", "normalised"
                )
            ]
    known = vendors.known_names(dtype.key).get(norm)
    if known is not None:
        target, vendor = known
        weight = DICTIONARY_GENERIC if norm in vendors.GENERIC else DICTIONARY
        if target is None:
            why = f"known {vendor} column with no counterpart: ignored"
            return [_Candidate(i, None, weight, why, "dictionary")]
        named = _Candidate(i, target, weight, f"known {vendor} column name", "dictionary")
        found = _with_values(named, dtype, p)
        return [found] if found is not None else []
    mine = tokens(name)
    for col in dtype.columns:
        theirs = tokens(col.name)
        if _name_for_id(mine, theirs):
            continue
        ratio = max(
            fuzz.token_sort_ratio(mine, theirs),
            0.9 * fuzz.token_set_ratio(mine, theirs) if _may_contain(mine, theirs) else 0.0,
            fuzz.ratio(norm, vendors.normalise(col.name)),
        )
        if ratio < FUZZY_FLOOR:
            continue
        score = 0.55 + 0.3 * (ratio - FUZZY_FLOOR) / (100 - FUZZY_FLOOR)
        if col.required:
            score += REQUIRED_BONUS
        similar = _Candidate(i, col.name, score, f"similar name ({ratio:.0f}%)", "similar")
        found = _with_values(similar, dtype, p)
        if found is not None:
            out.append(found)
    return out


# Words that change what a column is: 'CallerPhoneNumberCountry' is not the caller's number,
# 'CallStatus' not the call's start. A column named with one never matches a header without it.
_QUALIFIERS = frozenset({"country", "name", "description", "status", "type"})


_FILLER = frozenset({"call", "id", "number"})


def _may_contain(mine: str, theirs: str) -> bool:
    """Whether 'one holds the other' is evidence: "media partner id" holds "media id", but a
    single word ('agent') only names a column that adds nothing but filler ('session' ->
    CallSessionId), not one that adds meaning ('agent' is not UserAgent)."""
    a, b = set(mine.split()), set(theirs.split())
    return len(a) > 1 or (b - a) <= _FILLER


def _name_for_id(mine: str, theirs: str) -> bool:
    """'campaign name' is not 'campaign id' (a name never feeds an id column, or back), and
    a header lacking a qualifier word of the column (`_QUALIFIERS`) is not that column."""
    a, b = set(mine.split()), set(theirs.split())
    if ("name" in a and "id" in b and "name" not in b) or ("id" in a and "name" in b and "id" not in b):
        return True
    return bool((b & _QUALIFIERS) - a)


US_DATE_SCORE = 0.5  # the right column by name, in a form the parser refuses: flagged
EMPTY_SCORE = 0.6  # a required column's name, but no value in the sample: flagged
SIBLING_SCORE = 0.7  # a column named like the empty one, with values that fit: flagged


def _with_values(c: _Candidate, dtype: schemas.DataType, p: vals.Profile) -> _Candidate | None:
    """Values that fit raise the candidate; values that contradict it drop it (a wrong
    required column is worse than none: the analyst is told the column is missing). A date
    column written as US dates is the exception: the name is right and only the format is
    wrong, so it stays, flagged, with what the partner must change."""
    if c.target is None:
        return c
    column = dtype.column(c.target)
    if column.required and p.empty:
        c.score = min(c.score, EMPTY_SCORE)
        c.reason += f"; but it is empty in every sample row (a row without {column.name} is rejected)"
        return c
    fit = vals.fit(column, p)
    if fit is None:
        return c
    if fit >= 0.8:
        c.score = min(c.score + 0.05, 0.99)
        c.reason += f"; values fit ({p.describe(column)})"
    elif column.kind is schemas.Kind.TIMESTAMP and p.us_date >= 0.8:
        c.score = min(c.score, US_DATE_SCORE)
        c.reason += f"; but the values are {vals.US_DATES}"
    elif fit < 0.5 and c.source == "dictionary" and _format_only(column):
        # A vendor's known name for a phone or date column: the name is evidence enough, and
        # only the values' format is wrong. Dropped, the column was "missing" with a constant
        # proposed for it (one CallerId for every row). Kept, flagged, saying what is wrong.
        c.score = min(c.score, US_DATE_SCORE)
        c.reason += f"; but {1 - fit:.0%} of the sample values are not {vals.wanted(column)}"
        c.reason += f" (e.g. {p.cells[0]!r}); ask the partner for that format" if p.cells else ""
    elif fit < 0.5:
        return None
    return c


def _format_only(column: schemas.Column) -> bool:
    """Whether values that do not fit a column can only be in another format (phone numbers,
    dates), not other content (a campaign's name under a vendor's "Campaign", not its id)."""
    return column.name in vals.PHONE_COLUMNS or column.kind is schemas.Kind.TIMESTAMP


def _assign(candidates: list[_Candidate], n: int) -> dict[int, _Candidate]:
    """Greedy, best score first: each header once, each of our columns once."""
    chosen: dict[int, _Candidate] = {}
    taken: set[str] = set()
    for c in sorted(candidates, key=lambda c: (-c.score, c.header_index)):
        if c.header_index in chosen or (c.target is not None and c.target in taken):
            continue
        chosen[c.header_index] = c
        if c.target is not None:
            taken.add(c.target)
    return chosen


def _close_calls(candidates: list[_Candidate], chosen: dict[int, _Candidate]) -> dict[int, str]:
    """Header -> the runner-up column, where only a similar name decided and another column
    scored nearly as well ('duration_a' between CallDuration and TalkDuration): unsure."""
    out: dict[int, str] = {}
    for i, c in chosen.items():
        if c.source != "similar":
            continue
        rivals = [
            o.target for o in candidates
            if o.header_index == i and o is not c and o.target not in (None, c.target)
            and c.score - o.score < 0.05
        ]  # fmt: skip
        if rivals:
            out[i] = ", ".join(rivals)
    return out


def _value_only(
    chosen: dict[int, _Candidate], sample: Sample, dtype: schemas.DataType, profiles: list[vals.Profile]
) -> None:
    """A required column still unfed, and exactly one unnamed column whose values fit it
    (E.164 numbers, timestamps): propose it, flagged."""
    taken = {c.target for c in chosen.values() if c.target is not None}
    for col in dtype.columns:
        if (
            not col.required
            or col.name in taken
            or col.kind not in (schemas.Kind.TIMESTAMP, schemas.Kind.STRING)
        ):
            continue
        if col.kind is schemas.Kind.STRING and col.name not in vals.PHONE_COLUMNS:
            continue
        fits = [
            i for i in range(len(sample.header))
            if i not in chosen and (vals.fit(col, profiles[i]) or 0.0) >= 0.9
        ]  # fmt: skip
        if len(fits) == 1:
            i = fits[0]
            chosen[i] = _Candidate(
                i, col.name, 0.5, f"values look like {profiles[i].describe(col)}", "values"
            )
            taken.add(col.name)


def _prefer_filled(
    chosen: dict[int, _Candidate], sample: Sample, dtype: schemas.DataType, profiles: list[vals.Profile]
) -> None:
    """A required column fed by a partner column that is empty in the whole sample (Invoca's
    advertiser_campaign_id_from_network when the advertiser's network sets none) would make
    the ingest reject every row. A column named like it (advertiser_campaign_id) or like ours
    whose values fit feeds it instead, flagged; the empty one is then ignored, flagged too."""
    for e, empty in list(chosen.items()):
        if empty.target is None or not profiles[e].empty or not dtype.column(empty.target).required:
            continue
        column = dtype.column(empty.target)
        best: tuple[float, int] | None = None
        for h, header in enumerate(sample.header):
            other = chosen.get(h)
            if h == e or not profiles[h].filled or (other is not None and other.target is not None):
                continue
            if (vals.fit(column, profiles[h]) or 0.0) < 0.8:  # no evidence is not enough here
                continue
            related = _relatedness(header, sample.header[e], column.name)
            if related and (best is None or related > best[0]):
                best = (related, h)
        if best is None:
            continue
        h = best[1]
        name, target = sample.header[e], empty.target
        chosen[h] = _Candidate(
            h, target, SIBLING_SCORE,
            f"values fit ({profiles[h].describe(column)}) where {name!r} is empty in every sample row",
            "values",
        )  # fmt: skip
        chosen[e] = _Candidate(
            e, None, EMPTY_SCORE,
            f"empty in every sample row: {sample.header[h]!r} feeds {target} instead; ignored", "values",
        )  # fmt: skip


def _relatedness(header: str, empty: str, ours: str) -> float:
    """How strongly `header`'s name says it holds what the empty column (or our column)
    was meant to: 2 when one name contains the other ('affiliate_id' in
    'affiliate_id_from_network'), else the fuzzy similarity to our name (0..1), 0 below
    `FUZZY_FLOOR`."""
    a, b = vendors.normalise(header), vendors.normalise(empty)
    if min(len(a), len(b)) >= 4 and (a in b or b in a):
        return 2.0
    ratio = fuzz.token_sort_ratio(tokens(header), tokens(ours))
    return ratio / 100 if ratio >= FUZZY_FLOOR else 0.0


def _swap(chosen: dict[int, _Candidate], a: int, b: int, reason: str) -> None:
    ca, cb = chosen[a], chosen[b]
    ca.target, cb.target = cb.target, ca.target
    for c in (ca, cb):
        c.reason += f"; {reason}"
        c.score = min(c.score, 0.85)


def _break_ties(chosen: dict[int, _Candidate], sample: Sample, profiles: list[vals.Profile]) -> None:
    """Names alone cannot tell two durations or two phone numbers apart; values can."""
    where = {c.target: i for i, c in chosen.items() if c.target is not None}
    weak = {i for i, c in chosen.items() if c.source in ("similar", "values")}
    call, talk = where.get("CallDuration"), where.get("TalkDuration")
    if call is not None and talk is not None and {call, talk} & weak:
        mc, mt = profiles[call].median, profiles[talk].median
        if mc is not None and mt is not None and mt > mc:
            _swap(chosen, call, talk, "values: the longer duration is the call's, the shorter the talk time")
    caller, called = where.get("CallerId"), where.get("CalledPhoneNumber")
    if caller is not None and called is not None and {caller, called} & weak:
        distinct_caller = len(set(sample.values(caller)))
        distinct_called = len(set(sample.values(called)))
        if distinct_called > distinct_caller > 0:
            _swap(chosen, caller, called, "values: the caller's number varies, the tracking number repeats")
