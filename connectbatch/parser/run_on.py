"""Records a stray quote ran on into, when the record still read as a good one.

A quote opened in a cell and never closed there takes the line break and the next records
into that cell, up to the next quote. Mostly that record then fails (text after the closing
quote, too many fields) and its reject says so (`reasons.run_on_hint`). But when the next quote
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

Only a quoted text field can hold a line break, and both cores list each one they read
(CoreOutput.broken): a file without one costs nothing here.
"""

from __future__ import annotations

import collections
import re

import numpy as np
import pyarrow as pa

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
    broken: list[tuple[int, int]],
) -> tuple[pa.Table, pa.Array | pa.ChunkedArray]:
    """The table and its line numbers without the run-on records; each is added to `rejects`
    (then in line order) with the key and qualifier it read to `keys` and `qualifiers`, so
    the partner's results name the record. `broken`: the (line, field) of every text field a
    quote held a line break in (CoreOutput.broken, from either core): only those cells can
    hide a run-on, so a file without one costs nothing, and one with a thousand quoted line
    breaks a thousand cell reads (looking at every record followed by a gap in the line
    numbers cost 5-8 % of the 1M-row bench file's parse)."""
    if not broken or table.num_rows == 0 or plan.ncols < 2:  # one column: no separator to count
        return table, lines
    starts = _one_array(lines)
    # a view of the line numbers, not a copy (nor `to_numpy`, which imports pandas: ~0.2 s)
    at = np.frombuffer(starts.buffers()[1], dtype=np.int64, count=len(starts), offset=starts.offset * 8)
    rows = np.searchsorted(at, [line for line, _ in broken]).tolist()
    names = collections.Counter(table.column_names)  # a raw parse may repeat a name: not looked at
    found: dict[int, Reject] = {}
    delimiter = chr(plan.delimiter)
    for (line, field), row in zip(broken, rows, strict=True):
        slot = plan.field_slot[field] if field < len(plan.field_slot) else -1
        if slot < 0 or row >= len(at) or at[row] != line or row in found:
            continue  # not a kept record (rejected: its reject says what happened)
        name = plan.slots[slot].name
        if names[name] != 1:
            continue
        text = table.column(name)[row].as_py()
        if text is None or not _runs_on(text, delimiter, field + 1, plan.ncols):
            continue
        spanned = len(_LINE_BREAK.split(text))
        found[row] = Reject(line, name, header_hints.cut(text), _reason(line, spanned), spanned)
        for key_slot, read in ((plan.key_slot, keys), (plan.qualifier_slot, qualifiers)):
            value = _text_at(plan, table, key_slot, row)
            if value is not None:
                read[line] = value
    if not found:
        return table, lines
    rejects += found.values()
    rejects.sort(key=lambda r: r.line)
    keep = np.ones(len(at), dtype=bool)
    keep[list(found)] = False
    bits = pa.py_buffer(np.packbits(keep, bitorder="little").tobytes())
    mask = pa.Array.from_buffers(pa.bool_(), len(at), [None, bits])
    return table.filter(mask), lines.filter(mask)


def _one_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


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
