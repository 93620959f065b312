"""The key index: which record keys each connection has loaded, as 64-bit hashes.

The "already loaded" check (and a merging load's search for the stored record a row repeats)
asked the stored rows themselves: a scan of every row the connection ever loaded, per file.
That is 2 ms on a fresh store and 48 ms once the connection holds a million rows in a Parquet
part (issue 13), and it grows with history, so a partner's small files got slower every
month. Stored rows are never deleted, so an append-only table of (data type, connection,
hash of the record's identity text, file id), written in the load's own transaction, answers "which
files may hold these keys" by scanning 8-byte hashes (~2.4 ms a million); the rows are then
read only from those files, and not at all for a file of new keys (the usual case).

The hash is DuckDB's `hash()` of the key as text: 0.02 s a million keys, where the stable
`md5_number_lower` took 0.43 s of a 1M-row ingest. `hash()` may change between DuckDB
versions, so the index records which version hashed it and is rebuilt from the stored rows at
the first open by another (`fill`). A collision only costs a read of the stored rows, which
are compared exactly. The release before the index loads rows without entries: files it
loaded into an index already filled (run again after the upgrade) are indexed at the next
open (`catch_up`).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import duckdb
import pyarrow as pa

from connectbatch import schemas
from connectbatch.schemas import record_key
from connectbatch.store.db import all_rows, data_table, own_transaction, quote

# Above this many candidate files the stored rows are read without a file filter (a literal
# IN list of that many ids costs more to plan than the scan it would save).
MAX_FILE_FILTER = 1000

# What computed the stored hashes: entries made by another are rebuilt (`fill`).
# "record key": hashes of the identity text (schemas.record_key), which for call conversions
# holds VendorEventId too; an index of CallSessionIds alone is rebuilt.
HASHED_BY = f"duckdb {duckdb.__version__} hash(VARCHAR) record key"


def _hash(expression: str) -> str:
    return f"hash(CAST({expression} AS VARCHAR))"


def add(
    con: duckdb.DuckDBPyConnection,
    data_type: str,
    source: str | pa.Table,
    columns: Collection[str] | None = None,
) -> None:
    """Index the keys of rows just stored, read from `source`: a relation (SQL) or an Arrow
    table with the stored columns (`connection_id`, `file_id` and the data type's key
    columns; `columns` names them when it may lack one, stored empty), inside the load's
    transaction."""
    dtype = schemas.get(data_type)
    if not dtype.key_columns:
        return
    key = record_key.sql(dtype, columns=columns)
    if not isinstance(source, str):
        _cb_keyed = source  # read by name (store/db.py, "Arrow tables by name")
        source = "_cb_keyed"
    con.execute(
        f"INSERT INTO data_keys SELECT ?, connection_id, {_hash(key)}, file_id "
        f"FROM {source} WHERE {quote(dtype.key_columns[0])} IS NOT NULL",
        [dtype.key],
    )


def files_with(
    con: duckdb.DuckDBPyConnection, data_type: str, connection_id: int, incoming: str, params: list[object]
) -> list[int]:
    """The files of the connection that may hold one of the identity texts (`record_key`)
    in column `k` of the relation `incoming` (bound with `params`): a superset, by hash, of
    those that do."""
    rows = con.execute(
        "SELECT DISTINCT file_id FROM data_keys WHERE data_type = ? AND connection_id = ? "
        f"AND key_hash IN (SELECT {_hash('k')} FROM {incoming})",
        [schemas.get(data_type).key, connection_id, *params],
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def file_filter(files: list[int], column: str = "d.file_id") -> str:
    """A WHERE clause term that keeps the stored rows of `files` (ints, so inlined: a
    constant IN list lets DuckDB skip the row groups and Parquet parts of other files)."""
    if len(files) > MAX_FILE_FILTER:
        return "TRUE"
    return f"{column} IN ({', '.join(str(int(f)) for f in files)})"


def fill(con: duckdb.DuckDBPyConnection, data_type: str, file: Path) -> None:
    """(Re)build a data type's index from its stored rows when it was not built by this
    DuckDB version's `hash()`: at the first open after the upgrade that added the index or
    changed DuckDB (the data tables and views exist by then). One scan, once. An index this
    version built is only completed (`catch_up`). `file`: the database's, whose commits
    `db.own_transaction` counts."""
    key = schemas.get(data_type).key
    built = con.execute("SELECT hashed_by FROM data_keys_filled WHERE data_type = ?", [key]).fetchall()
    if built and built[0][0] == HASHED_BY:
        catch_up(con, key, file)
        return
    with own_transaction(con, file):
        con.execute("DELETE FROM data_keys WHERE data_type = ?", [key])
        add(con, key, all_rows(key))
        con.execute(
            "INSERT OR REPLACE INTO data_keys_filled (data_type, hashed_by, filled_at) "
            "VALUES (?, ?, current_timestamp)",
            [key, HASHED_BY],
        )


def unindexed_files(con: duckdb.DuckDBPyConnection, data_type: str) -> list[int]:
    """Files with stored rows of the data type but no entry in the index. A load writes a
    file's rows and its entries in one transaction, so a file is indexed whole or not at all;
    parts are named by `data_parts`, so no Parquet file is read to find them."""
    key = schemas.get(data_type).key
    rows = con.execute(
        f"SELECT file_id FROM (SELECT DISTINCT file_id FROM {data_table(key)} "
        "UNION SELECT file_id FROM data_parts WHERE data_type = ?) "
        "EXCEPT SELECT DISTINCT file_id FROM data_keys WHERE data_type = ?",
        [key, key],
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def catch_up(con: duckdb.DuckDBPyConnection, data_type: str, file: Path) -> list[int]:
    """Index the rows of files an older release loaded after this index was filled, and
    return those files. The release before the index stores rows without entries: run again
    after an upgrade (a downgrade and back, or an old process still running beside a new
    one), it left files the "already loaded" check could not see, and their records were
    loaded a second time when re-sent. Rows are never deleted, so such a file stays without
    entries until indexed here, at the next open (a file whose keys are all empty is looked
    at again each time and adds nothing)."""
    key = schemas.get(data_type).key
    if not schemas.get(data_type).key_columns:
        return []
    files = unindexed_files(con, key)
    if files:
        ids = ", ".join(str(f) for f in files)  # every one: a file left out would stay unseen
        with own_transaction(con, file):
            add(con, key, f"(SELECT * FROM {all_rows(key)} WHERE file_id IN ({ids}))")
    return files
