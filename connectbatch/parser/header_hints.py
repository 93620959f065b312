"""What a refused header says to help: the missing columns, each with the file's name that
looks like it ("map it or rename it"), and the delimiter the header looks separated by.

A refusal is the partner's first contact with a wrong export, so its hints must be right when
they are given: a name the vendor dictionary knows is offered only for the column it feeds.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Sequence

import numpy as np
from rapidfuzz import fuzz, process

from connectbatch.mapping import vendors
from connectbatch.schemas import DataType

MAX_VALUE_CHARS = 120  # a value quoted in a message is cut after this many characters


def cut(value: str) -> str:
    return value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS] + "…"


# Delimiters a partner's export is likely to use, tried when the header does not fit ours.
HINT_DELIMITERS = (",", ";", "\t", "|")


def delimiter_hint(
    split: Callable[[int], list[str] | None],
    delimiter: int,
    data_type: DataType,
    renames: dict[str, str],
) -> str:
    """ "; the header looks ';'-separated: ..." when the header line, split by another
    likely delimiter, names every required column; "" otherwise.

    A semicolon file read with commas is one long column name, so the plain message lists
    every required column as missing and never says why. `split(d)` gives the header's
    names under delimiter byte d (None if it does not split cleanly); it runs once per
    candidate, once per header, not per missing column. `renames` is the normalised
    column map (partner name -> schema name, lower case)."""
    required = {name.lower() for name in data_type.required_columns}
    for candidate in HINT_DELIMITERS:
        if ord(candidate) == delimiter:
            continue
        names = split(ord(candidate))
        if not names or len(names) < 2:
            continue
        found = set()
        for name in names:
            key = name.strip().strip('"').strip().lower()
            found.add(renames.get(key, key))
        if required <= found:
            shown = "a tab" if candidate == "\t" else repr(candidate)
            label = "tab" if candidate == "\t" else repr(candidate)
            return f"; the header looks {label}-separated: set the connection's delimiter to {shown}"
    return ""


# The missing-columns message names at most this many columns ("and K more" for the rest):
# a schema has at most 10 required columns today, so this only bounds a future or relaxed one.
MAX_MISSING_NAMED = 10
# A missing column is compared with at most this many of the file's names that rapidfuzz
# finds closest; only those go through difflib, whose wording and cutoff the message keeps.
CLOSE_CANDIDATES = 25
CLOSE_CUTOFF = 0.75  # difflib ratio at which an unknown name is offered as "map it or rename it"


def missing_message(
    missing: list[str], unknown: Sequence[str], spelling: Callable[[str], str], data_type: DataType, line: int
) -> str:
    """ "the header lacks required ... columns: A (the file has 'A_'; map it or rename it), B".

    `unknown`: the file's names that map to no column, trimmed and lower-cased, in header
    order (a name may come twice); `spelling(key)`: how the file first wrote it.

    A header may hold hundreds of thousands of names (a wrong file, a transposed export), so
    nothing here takes a Python step per name, and the missing columns are compared with all
    of them by rapidfuzz (compiled, in one call) before difflib confirms the few closest:
    rapidfuzz's ratio (longest common subsequence) is never below difflib's
    (Ratcliff-Obershelp matches are a common subsequence), so a name difflib would accept is
    among rapidfuzz's candidates unless CLOSE_CANDIDATES closer ones crowd it out.

    A name the vendor dictionary (`mapping.vendors`) knows is offered for the column it
    feeds and never for another: spelling alone offered Invoca's `calling_phone_number`
    (the caller) for CalledPhoneNumber and its `duration` for TalkDuration, a hint that
    would load the wrong number or the wrong duration if followed."""
    known = vendors.known_names(data_type.key)
    named = {key: known[norm][0] for norm, key in vendor_names(unknown, known).items()}  # -> ours
    shown = missing[:MAX_MISSING_NAMED]
    by_vendor = {name: next((key for key, ours in named.items() if ours == name), None) for name in shown}
    spelled = [name for name in shown if by_vendor[name] is None]
    avoid = [{key for key, ours in named.items() if ours != name} for name in spelled]
    close = dict(zip(spelled, closest_each([name.lower() for name in spelled], unknown, avoid), strict=True))
    hints = []
    for name in shown:
        found = by_vendor[name] or close[name]
        if found is not None:
            hints.append(f"{name} (the file has {cut(spelling(found).strip())!r}; map it or rename it)")
        else:
            hints.append(name)
    more = len(missing) - MAX_MISSING_NAMED
    listed = ", ".join(hints) + (f" and {more} more" if more > 0 else "")
    if len(missing) == len(data_type.required_columns) and looks_like_data(unknown):
        return (
            f"line {line} looks like a row of data, not a header: the file must begin with a header "
            f"line naming its columns; the required {data_type.label.lower()} columns are {listed}"
        )
    return (
        f"line {line}: the header lacks required {data_type.label.lower()} column"
        f"{'s' if len(missing) > 1 else ''}: {listed}"
    )


# A cell of data rather than a column's name: a number, an amount, a phone number, a date or
# a time ("1234", "$12.50", "+15551234567", "2026-12-06T14:05:09Z", "12/06/2026 2:05 PM").
_DATA_CELL = re.compile(r"^[+\-$(]?\d[\d\s.,:/+\-]*(?:[tz]|\s?[ap]m)?[\d\s.,:/+\-]*[z)]?$", re.IGNORECASE)
_CELLS_LOOKED_AT = 50  # a header of 400,000 names is judged by its first ones


def looks_like_data(names: Sequence[str]) -> bool:
    """Whether a refused header's names (trimmed, lower-cased) are mostly data cells: an
    export without its header line, whose first row was read as the header. Every required
    column is then missing, and the message said so, not that the header itself was absent."""
    cells = [name for name in names[:_CELLS_LOOKED_AT] if name]
    return len(cells) >= 3 and 2 * sum(bool(_DATA_CELL.match(cell)) for cell in cells) >= len(cells)


def misspelled_message(
    unknown: Sequence[str], absent: Sequence[str], spelling: Callable[[str], str], line: int
) -> str | None:
    """Why a header whose names spell optional columns of ours another way ("Call Status",
    "sale_amount") is refused, or None. Left unmapped, such a column's values were dropped
    without a word and its default applied: every call ANSWER, no SaleAmount. The partner
    maps or renames it, as for a required column; `unknown`: the header's unmapped names,
    trimmed and lower-cased; `absent`: the columns of ours no name maps to."""
    wanted = {vendors.normalise(name): name for name in absent}
    found = vendor_names(unknown, wanted)
    if not found:
        return None
    hints = [
        f"{wanted[norm]} (the file has {cut(spelling(key).strip())!r}; map it or rename it)"
        for norm, key in list(found.items())[:MAX_MISSING_NAMED]
    ]
    return (
        f"line {line}: the header spells a column of ours another way, so its values would not be "
        f"loaded: {', '.join(hints)}"
    )


# A trimmed, lower-cased name with a character `vendors.normalise` drops, one per line.
_NOT_NORMAL = re.compile(r"^[^\n]*[^0-9a-z\n][^\n]*$", re.MULTILINE)


def vendor_names(keys: Sequence[str], known: Collection[str]) -> dict[str, str]:
    """normalised name -> the first of `keys` (trimmed, lower-cased names, in header order)
    that normalises to it, for the names in `known` only. Without a Python step per name:
    a name of letters and digits is its own normal form (a set intersection finds those),
    and only the others, found by one regular expression over them all, are normalised."""
    hits = {key: key for key in set(keys) & set(known)}
    joined = "\n".join(keys)
    if joined.count("\n") == len(keys) - 1:
        others = _NOT_NORMAL.findall(joined)
    else:  # a name with a line break in it (a quoted header field): one by one
        others = [key for key in keys if not (key.isascii() and key.isalnum())]
    for key in others:
        if (norm := vendors.normalise(key)) in known:
            hits[key] = norm
    by_norm: dict[str, str] = {}
    for key in [key for key in keys if key in hits]:  # header order
        by_norm.setdefault(hits[key], key)
    return by_norm


def closest(word: str, choices: list[str], avoid: Collection[str] = ()) -> str | None:
    """The choice difflib.get_close_matches(word, choices, 1, CLOSE_CUTOFF) would return,
    looked for among the CLOSE_CANDIDATES choices rapidfuzz scores highest, `avoid` left out
    (names known to mean another column)."""
    return closest_each([word], choices, [avoid])[0]


def closest_each(
    words: list[str], choices: Sequence[str], avoid: Sequence[Collection[str]]
) -> list[str | None]:
    """`closest` of each word (with its own `avoid`), the rapidfuzz scores of all of them in
    one compiled call on every core: one `process.extract` per word took ~25 ms over 400,000
    names, mostly in reading the choices again (issue 13). The candidates are those extract
    would give over the distinct choices: the CLOSE_CANDIDATES highest scores at or over the
    cutoff, ties by first position."""
    if len(choices) <= CLOSE_CANDIDATES or not words:
        pools = [list(dict.fromkeys(choices))] * len(words)
    else:
        cutoff = CLOSE_CUTOFF * 100
        scores = process.cdist(
            words, choices, scorer=fuzz.ratio, processor=None, score_cutoff=cutoff,
            dtype=np.float64, workers=-1,
        )  # fmt: skip
        pools = []
        for row in scores:
            first = {choices[i]: i for i in reversed(np.flatnonzero(row >= cutoff).tolist())}  # a repeat once
            at = np.fromiter(first.values(), np.int64, len(first))
            if len(at) > CLOSE_CANDIDATES:
                at = at[np.lexsort((at, -row[at]))[:CLOSE_CANDIDATES]]
            pools.append([choices[i] for i in at])
    picked: list[str | None] = []
    for word, pool, skip in zip(words, pools, avoid, strict=True):
        kept = [choice for choice in pool if choice not in skip] if skip else pool
        close = difflib.get_close_matches(word, kept, 1, CLOSE_CUTOFF)
        picked.append(close[0] if close else None)
    return picked
