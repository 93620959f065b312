"""The results CSV's bytes: rows in line order, every text cell escaped like
`escaping.csv_cell`, written a slice at a time (issue 13: a million-row results file took
~1.2 s and ~330 MB at the ingest's peak; `results` decides what the rows say), and the key
cells of the rejected rows (`rejected_keys`)."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from connectbatch import settings
from connectbatch.escaping import FORMULA_PATTERN, FORMULA_STARTS

__all__ = [
    "WRITE_ROWS",
    "index_in",
    "line_order",
    "neutralise_formulas",
    "rejected_keys",
    "take_rows",
    "write",
]


# Rows of the results file put in line order, escaped and written at a time: a million-row
# file's sorted copy is never whole in memory (issue 13: ~170 MB at the ingest's peak).
WRITE_ROWS = 65_536


def write(
    table: pa.Table,
    order: pa.Array | None,
    names: list[str],
    fh: BinaryIO,
) -> None:
    """`table` as CSV in the row order `order` (as it is when None), its cells escaped
    (`neutralise_formulas`) and its header `names`, one slice of WRITE_ROWS rows at a time.

    A file of several slices has them made (put in order, escaped, encoded) on the parse's
    threads, one a thread ahead, and written in order: each is Arrow work that releases the GIL,
    ~0.25 s on one core for a million rows (issue 13)."""
    schema = pa.schema([pa.field(name, f.type) for name, f in zip(names, table.schema, strict=True)])
    options = pacsv.WriteOptions(quoting_style="needed")
    fh.write(_encoded(schema.empty_table(), options))  # the header line

    def encoded(start: int) -> bytes:
        part = (
            table.slice(start, WRITE_ROWS)
            if order is None
            else take_rows(table, order[start : start + WRITE_ROWS].to_numpy().astype(np.int64))
        )
        return _encoded(neutralise_formulas(part).rename_columns(names), _NO_HEADER)

    starts = range(0, table.num_rows, WRITE_ROWS)
    threads = min(settings.parse_threads(), len(starts))
    if threads < 2:
        for start in starts:
            fh.write(encoded(start))
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="results") as pool:
        ahead: deque[Future[bytes]] = deque()
        for start in starts:
            ahead.append(pool.submit(encoded, start))
            if len(ahead) > threads:  # one slice a thread in hand: each holds its rows and bytes
                fh.write(ahead.popleft().result())
        while ahead:
            fh.write(ahead.popleft().result())


_NO_HEADER = pacsv.WriteOptions(quoting_style="needed", include_header=False)


def _encoded(table: pa.Table, options: pacsv.WriteOptions) -> bytes:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, write_options=options)
    return bytes(sink.getvalue())


def take_rows(table: pa.Table, indices: np.ndarray) -> pa.Table:
    """`table.take(indices)`, copying only the windows of rows the indices fall in. Arrow's
    take from a chunked string column joins the whole column first, and did so for every
    slice: 0.67 s of a 1M-row results file with rejects (issue 13). A slice in line order
    falls in two windows (its run of accepted rows, some rejected ones from the end)."""
    if not len(indices):
        return table.slice(0, 0)
    wanted = np.sort(indices)
    runs = np.split(wanted, np.flatnonzero(np.diff(wanted) > WRITE_ROWS) + 1)
    lows = np.array([int(run[0]) for run in runs], np.int64)
    sizes = np.array([int(run[-1]) + 1 - int(run[0]) for run in runs], np.int64)
    window = pa.concat_tables(
        [table.slice(lo, n) for lo, n in zip(lows, sizes, strict=True)]
    ).combine_chunks()
    run_of = np.searchsorted(lows, indices, side="right") - 1
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    return window.take(pa.array(starts[run_of] + indices - lows[run_of]))


def line_order(table: pa.Table) -> pa.Array | None:
    """`write`'s `order` for `table`: None when its Line column is in order already (a file
    without rejects is written as it is, without the sort and a copy of every row in its
    order, issue 13)."""
    lines = table["Line"]
    if lines.null_count == 0 and _rising(lines.to_numpy()):
        return None
    return pc.sort_indices(table, [("Line", "ascending")])


def index_in(wanted: pa.Array, lines: pa.Array) -> pa.Array:
    """`pc.index_in(wanted, value_set=lines)` (int32, null where absent), by binary search
    when `lines` ascend, as a parse's lines do: hashing a million lines to find a few
    thousand rejected ones took ~0.13 s of a 1M-row file's results (issue 13)."""
    values = lines.to_numpy(zero_copy_only=False) if lines.null_count == 0 else None
    if values is None or wanted.null_count or not _rising(values):
        return pc.index_in(wanted, value_set=lines)
    want = wanted.to_numpy(zero_copy_only=False)
    at = np.searchsorted(values, want)
    found = at < len(values)
    found[found] = values[at[found]] == want[found]
    return pa.array(np.where(found, at, 0).astype(np.int32), pa.int32(), mask=~found)


def rejected_keys(
    lines: list[int], key_columns: list[str], parsed: pa.Table | None, read: list[dict[int, str] | None]
) -> dict[str, pa.Array]:
    """Key column -> the key of each rejected line: a row refused after parsing (load, lifecycle)
    has it among the `parsed` rows, a row the parser refused what it could read of each key
    column, if anything (`read`: the parser's reject_keys and reject_qualifiers)."""
    found = [(read[i] if i < len(read) else None) or {} for i in range(len(key_columns))]
    keys = {k: pa.array([found[i].get(ln) for ln in lines], pa.string()) for i, k in enumerate(key_columns)}
    if parsed is not None and lines:
        at = index_in(pa.array(lines, pa.int64()), parsed["Line"].combine_chunks())
        keys = {k: pc.coalesce(pc.take(parsed[k].combine_chunks(), at), v) for k, v in keys.items()}
    return keys


def _rising(values: np.ndarray) -> bool:
    return bool(np.all(values[1:] > values[:-1]))


def neutralise_formulas(table: pa.Table) -> pa.Table:
    """Every text cell as `escaping.csv_cell` makes it, vectorised for files of millions of
    rows (a test keeps the two equal): cells a spreadsheet would run as a formula
    (`=HYPERLINK(...)`, `@SUM(A1)`, ...) get a leading `'`. The partner's keys and header names
    come back to them, and to us, in this file, and opening it must not execute anything
    (CSV injection).

    Only a cell whose first character is one of `= + - @ TAB CR` is looked at further, so a
    column without one is kept as it is, uncopied (issue 13: every cell through a regex, a
    quoted copy and a choice took ~0.6 s of a 1M-row file's results)."""
    for index, column_field in enumerate(table.schema):
        if not pa.types.is_string(column_field.type) and not pa.types.is_large_string(column_field.type):
            continue
        column = table.column(index)
        first = pc.utf8_slice_codeunits(column, 0, 1)
        maybe = pc.fill_null(pc.is_in(first, value_set=_FORMULA_STARTS.cast(column_field.type)), False)
        if not pc.any(maybe).as_py():
            continue
        flat = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        maybe = maybe.combine_chunks() if isinstance(maybe, pa.ChunkedArray) else maybe
        candidates = flat.take(pc.indices_nonzero(maybe))
        risky = pc.match_substring_regex(candidates, FORMULA_PATTERN)
        if not pc.any(risky).as_py():
            continue
        quote, nothing = pa.scalar("'", column_field.type), pa.scalar("", column_field.type)
        replaced = pc.if_else(risky, pc.binary_join_element_wise(quote, candidates, nothing), candidates)
        table = table.set_column(index, column_field, pc.replace_with_mask(flat, maybe, replaced))
    return table


# The first characters a formula can start with (escaping.FORMULA_STARTS).
_FORMULA_STARTS = pa.array(list(FORMULA_STARTS), pa.string())
