"""The rows of a released batch that still stay out, each with a reject that says why.

A reviewer who releases a held batch accepts the batch, not what no load may ever do: a record
loaded twice (its key already loaded for the connection, or repeated inside the batch) or an
action with a negative amount. Validation held the batch for these; the release leaves them
out and answers each line (quarantine.release).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from connectbatch import schemas
from connectbatch.parser.api import Reject
from connectbatch.pipeline import load
from connectbatch.schemas import record_key
from connectbatch.store import connections as connection_store
from connectbatch.store import data as data_store


def without_loaded_keys(
    con: duckdb.DuckDBPyConnection,
    dtype: schemas.DataType,
    connection_id: int,
    table: pa.Table,
    lines: pa.Array,
    *,
    loaded: bool = True,
    repeated: bool = True,
) -> tuple[pa.Table, pa.Array, list[Reject]]:
    """Drop the rows whose key the connection has already loaded (`loaded`), and every row
    after the first of a key the batch itself repeats (`repeated`): validation held the batch
    for either; a reviewer who releases it accepts the batch, not two actions for one call.
    Return a reject for each (the partner's results answer every line). A key already loaded
    only where repeats are refused (`refuses_repeats`): where they replace stored records
    (`merges_repeats`: supersede, catalogs) loading merges it. But a key the batch itself
    repeats is left out there too: loading merges a row into what is stored, not into the
    rows loaded with it, and a released supersede batch made two payable actions for one
    order, a catalog two current versions of one item (audit). A release asks for the two
    apart, with the rows refused for their values in between (quarantine.release): a row
    already loaded is that, whatever else it holds, and a row refused for its amount holds no
    key a later row would repeat."""
    connection = connection_store.get(con, connection_id)
    refusing = load.refuses_repeats(dtype, connection)
    if table.num_rows == 0 or not (refusing or (repeated and load.merges_repeats(dtype, connection))):
        return table, lines, []
    loaded = loaded and refusing
    key = dtype.key_columns[0]
    identities = record_key.texts(dtype, table)
    existing = set(data_store.existing_keys(con, dtype.key, connection_id, table)) if loaded else set()
    first: dict[str, int] = {}
    keep: list[bool] = []
    refused: list[Reject] = []
    shown_keys = table.column(key).to_pylist()
    for line, identity, value in zip(lines.to_pylist(), identities.to_pylist(), shown_keys, strict=True):
        shown = None if value is None else str(value)
        if identity is not None and identity in existing:
            refused.append(Reject(int(line), key, shown, ALREADY_LOADED))
        elif repeated and identity is not None and identity in first:
            refused.append(Reject(int(line), key, shown, REPEATED_IN_FILE.format(line=first[identity])))
        else:
            if identity is not None:
                first[identity] = int(line)
            keep.append(True)
            continue
        keep.append(False)
    if not refused:
        return table, lines, []
    mask = pa.array(keep, pa.bool_())
    return table.filter(mask), lines.filter(mask), refused


def without_negative_amounts(
    dtype: schemas.DataType, table: pa.Table, lines: pa.Array
) -> tuple[pa.Table, pa.Array, list[Reject]]:
    """Drop the rows with a negative amount in any amount column (the suites hold a batch
    for each), or whose event date is so far ahead that no lock date can follow it (year
    9999: the action could not be listed), with a reject for each: a released batch must not
    make an action that no person could make (a modification to a negative amount is
    refused), nor store a catalog price, a shipping cost or a discount below zero (they were
    stored as sent: only the action's amount was looked at)."""
    if table.num_rows == 0 or dtype.key == "action_modifications":  # lifecycle judges their amounts
        return table, lines, []
    unlockable: list[Reject] = []
    if dtype.action_columns is not None:
        table, lines, unlockable = _without_unlockable_dates(dtype, table, lines)
    refused: list[Reject] = []
    for column in dtype.columns:
        if column.kind is not schemas.Kind.DECIMAL or column.name not in table.column_names:
            continue
        values = table.column(column.name)
        negative = pc.fill_null(pc.less(values, pa.scalar(0, values.type)), False)
        if not pc.any(negative).as_py():
            continue
        found = zip(lines.filter(negative).to_pylist(), values.filter(negative).to_pylist(), strict=True)
        why = NEGATIVE_AMOUNT if column.name == (dtype.action_columns or ("",))[0] else NEGATIVE_VALUE
        refused += [Reject(int(line), column.name, str(value), why) for line, value in found]
        keep = pc.invert(negative)
        table, lines = table.filter(keep), lines.filter(keep)
    return table, lines, unlockable + sorted(refused, key=lambda r: r.line)


def _without_unlockable_dates(
    dtype: schemas.DataType, table: pa.Table, lines: pa.Array
) -> tuple[pa.Table, pa.Array, list[Reject]]:
    assert dtype.action_columns is not None
    event = dtype.action_columns[1]
    values = table.column(event)
    late = pc.fill_null(pc.greater(values, pa.scalar(LAST_EVENT, values.type)), False)
    if not pc.any(late).as_py():
        return table, lines, []
    found = zip(lines.filter(late).to_pylist(), values.filter(late).to_pylist(), strict=True)
    refused = [Reject(int(line), event, value.isoformat(), UNLOCKABLE_DATE) for line, value in found]
    keep = pc.invert(late)
    return table.filter(keep), lines.filter(keep), refused


# Why a released held batch leaves out a row (its key was loaded meanwhile or before).
ALREADY_LOADED = "already loaded for this connection; left out (a re-sent record is never loaded twice)"
REPEATED_IN_FILE = "repeats the key of line {line} of this file; left out (a record is loaded once)"
NEGATIVE_AMOUNT = "a negative amount cannot become an action; left out (send a reversal or a modification)"
NEGATIVE_VALUE = "must not be negative; left out (send the row again with the right value)"
# Past this an action's lock date (3,650 days at most later) leaves the calendar Python shows.
LAST_EVENT = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
UNLOCKABLE_DATE = "an event date this far ahead cannot become an action; left out (check the date)"
