"""Records a stray quote ran on into, when the record still read as a good one.

A quote opened in a cell and never closed there takes the line break and the next records
into that cell, up to the next quote. Mostly that record then fails (text after the closing
quote, too many fields) and its reject says so (`plan.run_on_hint`). But when the next quote
is the opening quote of the same column in a later record, the closing quote falls on a field
boundary and the record has exactly its header's number of fields: it read as a good record
whose text cell held the following records, which were in no row of the results, silently
lost (a partner-file audit: `"Austin` on line 2, a whole call on line 3, `"Boston"` on line 4).

That shape is recognisable from the cell alone: read as lines, its first line holds the
separators of the columns after its own (its record's rest), each middle line a whole
record's, and its last line those of the columns before its own (the start of the record
where the next quote was). A legitimate multi-line text (an address, a description) matches
all three only by a coincidence of counts; such a record is refused with a sentence saying
which lines went into it, and the partner sends them again with the quote closed.

Only records followed by a gap in the accepted rows' line numbers can span lines, so a clean
file costs one pass over its line numbers.
"""

from __future__ import annotations

import bisect
import collections
import re
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectbatch.parser import header_hints
from connectbatch.parser import plan as csvplan
from connectbatch.parser.rejects import Reject

_LINE_BREAK = re.compile(r"\r\n|\n|\r")


def refuse(
    plan: csvplan.Plan,
    table: pa.Table,
    lines: pa.Array | pa.ChunkedArray,
    rejects: list[Reject],
    keys: dict[int, str],
    qualifiers: dict[int, str],
) -> tuple[pa.Table, pa.Array | pa.ChunkedArray]:
    """The table and its line numbers without the run-on records; each is added to `rejects`
    (then in line order) with the key and qualifier it read to `keys` and `qualifiers`, so
    the partner's results name the record. Only the cells of records followed by a gap that
    no rejected record explains are read into Python (a few, or a rejected record's count)."""
    texts = _text_columns(plan, table)
    if not texts or table.num_rows == 0 or plan.ncols < 2:  # one column: no separator to count
        return table, lines
    n = table.num_rows
    starts = _one_array(lines)
    before, after = starts.slice(0, n - 1), starts.slice(1)
    one = _int64s([1]).cast(before.type)[0]
    gaps = _one_array(pc.indices_nonzero(pc.greater(pc.subtract(after, before), one))).to_pylist()
    # A gap after a record is a rejected record (or a blank line) unless the record took the
    # lines itself: one whose next line starts a rejected record took none.
    refused = {r.line for r in rejects}
    gap_starts = before.take(_int64s(gaps)).to_pylist() if gaps else []
    rows = [row for row, start in zip(gaps, gap_starts, strict=True) if start + 1 not in refused]
    rows.append(n - 1)  # the last record may span lines too
    found: dict[int, Reject] = {}
    delimiter = chr(plan.delimiter)
    for (name, position), row, text in _broken_cells(table, texts, rows):
        if row in found or not _runs_on(text, delimiter, position, plan.ncols):
            continue
        line, spanned = int(starts[row].as_py()), len(_LINE_BREAK.split(text))
        found[row] = Reject(line, name, header_hints.cut(text), _reason(line, spanned), spanned)
        for slot, read in ((plan.key_slot, keys), (plan.qualifier_slot, qualifiers)):
            value = _text_at(plan, table, slot, row)
            if value is not None:
                read[line] = value
    if not found:
        return table, lines
    rejects += found.values()
    rejects.sort(key=lambda r: r.line)
    keep = np.ones(n, dtype=bool)
    keep[list(found)] = False
    bits = pa.py_buffer(np.packbits(keep, bitorder="little").tobytes())
    mask = pa.Array.from_buffers(pa.bool_(), n, [None, bits])
    return table.filter(mask), lines.filter(mask)


def _int64s(values: list[int]) -> pa.Array:
    """Python ints as an Arrow array without `pa.array`, which imports pandas on first use
    (~0.2 s of a process's first parse; parser.blocks avoids it likewise)."""
    data = np.asarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data.tobytes())])


def _broken_cells(
    table: pa.Table, texts: list[tuple[str, int]], rows: list[int]
) -> Iterator[tuple[tuple[str, int], int, str]]:
    """(text column, row, cell) of the cells of `rows` (ascending) that hold a line break.
    A few cells (a clean file: its last row) are read one by one (~40 µs for 39 columns); more
    in one array, one regex call (a file with thousands of rejected records)."""
    if len(rows) * len(texts) <= _FEW_CELLS:
        for row in rows:
            for text in texts:
                cell = table.column(text[0])[row].as_py()
                if cell is not None and ("\n" in cell or "\r" in cell):
                    yield text, row, cell
        return
    suspects = _rows_of(table.select([name for name, _ in texts]), rows)
    columns = [_one_array(column) for column in suspects.columns]
    if len({column.type for column in columns}) > 1:  # string and large_string
        columns = [column.cast(pa.large_string()) for column in columns]
    cells = pa.concat_arrays(columns)
    for at in _one_array(pc.indices_nonzero(pc.match_substring_regex(cells, r"[\r\n]"))).to_pylist():
        yield texts[at // len(rows)], rows[at % len(rows)], cells[at].as_py()


_FEW_CELLS = 256


def _rows_of(table: pa.Table, rows: list[int]) -> pa.Table:
    """The rows (ascending) of a table, taken batch by batch: `Table.take` joins a chunked
    column's chunks first (~3 ms a column of the 1M-row file, parsed on two threads)."""
    parts, first = [], 0
    for batch in table.to_batches():
        end = first + batch.num_rows
        lo, hi = bisect.bisect_left(rows, first), bisect.bisect_left(rows, end)
        if hi > lo:
            parts.append(batch.take(_int64s([r - first for r in rows[lo:hi]])))
        first = end
    return pa.Table.from_batches(parts, schema=table.schema).combine_chunks()


def _one_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _text_columns(plan: csvplan.Plan, table: pa.Table) -> list[tuple[str, int]]:
    """(name, file position from 1) of each text column the file feeds: only text keeps a
    line break (a typed cell holding one is refused for its value). A raw parse may repeat
    a name: such columns are not looked at."""
    names = collections.Counter(table.column_names)
    texts = []
    for position, slot_index in enumerate(plan.field_slot, start=1):
        slot = plan.slots[slot_index] if slot_index >= 0 else None
        if slot is not None and slot.kind in _TEXT and names[slot.name] == 1:
            texts.append((slot.name, position))
    return texts


_TEXT = (csvplan.CoreKind.STRING, csvplan.CoreKind.RAW)


def _text_at(plan: csvplan.Plan, table: pa.Table, slot: int, row: int) -> str | None:
    """The record's value of a slot (-1: none) as text, for the results to name it."""
    if slot < 0 or plan.slots[slot].name not in table.column_names:
        return None
    value = table.column(plan.slots[slot].name)[row].as_py()
    return None if value is None else str(value)


def _runs_on(text: str, delimiter: str, position: int, ncols: int) -> bool:
    """Whether the cell at `position` (from 1) of an `ncols`-column file holds the rest of its
    record, whole records, then the start of a record up to this column (see the module
    docstring). A row ending with one delimiter more than the header is allowed for."""
    parts = _LINE_BREAK.split(text)
    if len(parts) < 2 or parts[-1].count(delimiter) != position - 1:
        return False
    if parts[0].count(delimiter) not in (ncols - position, ncols - position + 1):
        return False
    return all(p.count(delimiter) in (ncols - 1, ncols) for p in parts[1:-1])


def _reason(line: int, spanned: int) -> str:
    last = line + spanned - 1
    if spanned == 2:
        taken = f"line {last:,} went into it instead of being read as a record of its own"
    else:
        taken = f"lines {line + 1:,} to {last:,} went into it instead of being read as records of their own"
    return (
        f"a quote opened in this cell closes only on line {last:,}, so {taken}; close the quote "
        "(or double a quote that is part of the text) and send these lines again"
    )
