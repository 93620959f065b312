"""A record's identity: the text that stands for its key columns, alike in Arrow and in DuckDB.

Why: a data type may be identified by more than one column. The call-conversion spec says
VendorEventId "will be unique for call event and unique for the conversion event": a vendor
such as Invoca sends one row for the call and one for each conversion (signal, sale) of that
call, all with the call's CallSessionId and each with its own VendorEventId. Keyed on
CallSessionId alone, the conversion rows were held as repeats of the call.

Every "already loaded", "repeated in the batch" and "replaces the stored record" decision
compares this one text, computed by `texts` over an Arrow batch and by `sql` over stored
rows, so the two can never disagree. With one key column it is that column as text
(unchanged: existing key-index entries stay valid). With a qualifier column (VendorEventId) it
is the first column, escaped so that it holds no unit separator, then the separator and the
qualifier when there is one. The escape makes the text injective: ("a\\x1fb", none) and
("a", "b") differ, so no partner value can make two records one.
"""

from __future__ import annotations

from collections.abc import Collection

import pyarrow as pa
import pyarrow.compute as pc

from connectbatch.schemas import DataType

SEPARATOR = "\x1f"  # ASCII unit separator; never left in an escaped first column


def texts(dtype: DataType, table: pa.Table) -> pa.Array:
    """The identity text of each row of `table` (null where the first key column is null:
    such a row has no identity and is rejected by the not-null rule). A qualifier column the
    table lacks is empty in every row, as it is stored."""
    first = _string(table.column(dtype.key_columns[0]))
    return first if len(dtype.key_columns) == 1 else _qualified(dtype, table, escape(first), SEPARATOR)


def escape(values: pa.Array) -> pa.Array:
    """`values` with each backslash doubled and each SEPARATOR written as a backslash and
    "u": text that holds no SEPARATOR, from which the value can be read back. Values without
    either character (nearly all ids) are returned as they are: two scans for the characters
    cost ~60 ms a million values, the replacements ~500 ms."""
    if pc.any(pc.match_substring(values, "\\")).as_py():
        values = pc.replace_substring(values, "\\", "\\\\")
    if pc.any(pc.match_substring(values, SEPARATOR)).as_py():
        values = pc.replace_substring(values, SEPARATOR, "\\u")
    return values


def sql(dtype: DataType, alias: str = "", columns: Collection[str] | None = None) -> str:
    """The same text as `texts`, as a DuckDB expression over stored columns (`alias.` each);
    `columns`: those the relation has, when it may lack the qualifier (None: it has all)."""
    prefix = f"{alias}." if alias else ""
    first = f'CAST({prefix}"{dtype.key_columns[0]}" AS VARCHAR)'
    if len(dtype.key_columns) == 1:
        return first
    escaped = f"replace(replace({first}, '\\', '\\\\'), chr(31), '\\u')"
    if columns is not None and dtype.key_columns[1] not in columns:
        return escaped
    return _qualified_sql(dtype, prefix, escaped, "chr(31)")


def shown(dtype: DataType, table: pa.Table) -> pa.Array:
    """Each row's key as a person reads it: "C-1", or "C-1 / T-2" with a VendorEventId."""
    first = _string(table.column(dtype.key_columns[0]))
    return first if len(dtype.key_columns) == 1 else _qualified(dtype, table, first, " / ")


def shown_sql(dtype: DataType) -> str:
    """`shown` as a DuckDB expression over stored columns."""
    first = f'CAST("{dtype.key_columns[0]}" AS VARCHAR)'
    return first if len(dtype.key_columns) == 1 else _qualified_sql(dtype, "", first, "' / '")


def described(dtype: DataType) -> str:
    """How a partner reads the identity in a message: "CallSessionId" or "CallSessionId with
    VendorEventId"."""
    return " with ".join(dtype.key_columns)


def _qualified(dtype: DataType, table: pa.Table, first: pa.Array, separator: str) -> pa.Array:
    """`first`, then `separator` and the qualifier in the rows that have one."""
    if dtype.key_columns[1] not in table.column_names:
        return first
    qualifier = _string(table.column(dtype.key_columns[1]))
    return pc.coalesce(pc.binary_join_element_wise(first, qualifier, separator), first)


def _qualified_sql(dtype: DataType, prefix: str, first: str, separator: str) -> str:
    """`_qualified` in DuckDB (`||` gives null with a null qualifier, as the join does)."""
    qualifier = f'CAST({prefix}"{dtype.key_columns[1]}" AS VARCHAR)'
    return f"coalesce({first} || {separator} || {qualifier}, {first})"


def _string(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):  # one chunk as it is: combine_chunks copies even one
        column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
