"""Constant columns: a fixed value for a column the partner's export cannot carry (the
CampaignId of a single-campaign vendor, the CallProvider of a vendor that never names
itself). A constant fills the column where the file has no value; a value in the file wins.
A constant also wins over the column's schema default: the analyst who set CallStatus to
CANCEL for a connection means CANCEL, not the ANSWER the schema assumes for everyone.

A constant is a cell the analyst types once instead of the partner sending it on every row,
so it is read by the parser itself (`parsed`: a one-row file of the constants), never by a
second set of rules: whatever a cell of the column may hold, a constant may hold, and a
constant that the parser would refuse is refused when it is saved, with the parser's reason.

The parser sees the constant's column as optional and without a default (`relax`), so a
file without it is not refused and no default fills it first; `fill` then writes the typed
constant into every empty cell, before validation.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io

import pyarrow as pa
import pyarrow.compute as pc

from connectbatch import schemas
from connectbatch.errors import ConfigurationError, ParseError
from connectbatch.schemas import DataType


@dataclasses.dataclass(frozen=True)
class ParsedConstants:
    """The constants as the parser read them: typed values, or why it refused them."""

    values: dict[str, pa.Scalar]  # our column -> typed value (empty when any was refused)
    problems: tuple[str, ...]  # one sentence per refused constant


def check(data_type: DataType, constants: dict[str, str]) -> dict[str, str]:
    """The constants with our canonical column names; refuses unknown columns, the data
    type's first key column (a row's own id is never the same for every row; a second one,
    VendorEventId, only tells apart events of one call) and values the
    parser would refuse in a cell of that column (with the parser's own reason)."""
    by_lower = {c.name.lower(): c for c in data_type.columns}
    out: dict[str, str] = {}
    for name, value in constants.items():
        col = by_lower.get(name.strip().lower())
        if col is None:
            raise ConfigurationError(f"constant for {name!r}: not a column of {data_type.label}")
        if col.name in data_type.key_columns[:1]:
            raise ConfigurationError(
                f"constant for {col.name}: {col.name} identifies each row of {data_type.label}, "
                "so it must come from the file; one value for every row would make every file "
                "of more than one row a file of duplicates"
            )
        if col.name in out:
            raise ConfigurationError(f"constant for {col.name}: given twice")
        text = str(value).strip()
        if not text:
            raise ConfigurationError(f"constant for {col.name}: the value is empty")
        out[col.name] = text
    problems = parsed(data_type, out).problems
    if problems:
        raise ConfigurationError("; ".join(problems))
    return out


def parsed(data_type: DataType, constants: dict[str, str], timezone: str = "UTC") -> ParsedConstants:
    """`constants` read by the parser as one record of `data_type` (see the module docstring).

    Timestamps without an offset are read in `timezone`, as the file's own cells are (the
    connection's, or the file's preamble's); checking a constant when it is saved uses UTC."""
    return _parsed(data_type.key, tuple(constants.items()), timezone)


@functools.lru_cache(maxsize=256)
def _parsed(data_type_key: str, items: tuple[tuple[str, str], ...], timezone: str) -> ParsedConstants:
    """Cached: `fill` runs once per parsed batch with the same few constants."""
    from connectbatch.parser.api import parse_bytes  # the parser imports this module

    dtype = schemas.get(data_type_key)
    given = dict(items)
    if not given:
        return ParsedConstants({}, ())
    # The other required columns take the schema's examples, which the parser accepts
    # (tests/unit/test_mapping.py holds every data type's template to that), so only a
    # constant can be refused.
    others = [c for c in dtype.columns if c.required and c.name not in given]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*given, *(c.name for c in others)])
    writer.writerow([*given.values(), *(c.example for c in others)])
    try:
        result = parse_bytes(out.getvalue().encode("utf-8"), data_type_key, threads=1, timezone=timezone)
    except ParseError as exc:  # not expected for a header of our own names; say so plainly
        return ParsedConstants({}, (f"constants: {exc}",))
    problems = tuple(
        f"constant for {r.column}: {given.get(r.column or '', r.value)!r}: {r.reason}" for r in result.rejects
    )
    if problems or not result.table.num_rows:
        return ParsedConstants({}, problems or ("constants: the parser accepted no record",))
    return ParsedConstants({name: result.table.column(name)[0] for name in given}, ())


def relax(data_type: DataType, constants: dict[str, str]) -> DataType:
    """The data type as the parser should read it: constant columns optional and without a
    default, so an absent column or an empty cell stays null for `fill` to give the constant."""
    if not constants:
        return data_type
    cols = tuple(
        dataclasses.replace(c, required=False, default=None) if c.name in constants else c
        for c in data_type.columns
    )
    return dataclasses.replace(data_type, columns=cols)


def fill(table: pa.Table, data_type: DataType, constants: dict[str, str], timezone: str = "UTC") -> pa.Table:
    """Empty cells of each constant column take the constant, a time without an offset read
    in the file's `timezone`; the result has the data type's own schema (required columns
    non-nullable again). A constant saved before it was checked as it is now and that the
    parser refuses stops the file rather than being written."""
    found = parsed(data_type, constants, timezone)
    if found.problems:
        raise ConfigurationError(
            "; ".join(found.problems) + " (save the connection's field mapping with a valid constant)"
        )
    for name, value in found.values.items():
        i = table.schema.get_field_index(name)
        filled = pc.fill_null(table.column(i), value)
        table = table.set_column(i, table.schema.field(i), filled)
    return table.cast(data_type.arrow_schema())
