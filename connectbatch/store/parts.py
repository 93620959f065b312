"""Parquet parts: a big file's accepted rows stored as one Parquet file beside the database.

DuckDB's INSERT of a million 51-column rows from Arrow costs ~2.7 s and ~750 MB of buffers;
writing the same Arrow table as Parquet ~1.2 s, and DuckDB scans it back in ~0.1 s (issue 13).
So a file of at least `data.PARQUET_MIN_ROWS` rows becomes `<db dir>/parts/<type>/f<file>-p<n>-<pid>.parquet`
(written to a temporary name, fsynced, renamed), and a row in `data_parts`, written in the
load's own transaction, is what makes it count: a rolled-back load deletes its file
(`db.on_rollback`), and a crash leaves a file without a row that `remove_orphans` deletes.
Small files stay in the `data_<type>` table, so the views never list thousands of files.

Readers see both through two views per data type (`refresh_views`): `parts_<type>` (the
committed parts' rows, with the table's columns in its order and types, and their row
versions from `data_ends`, since a Parquet file is never rewritten) and `rows_<type>` = the
table UNION ALL `parts_<type>` (`db.all_rows`). Adding a part changes no view.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectbatch import schemas
from connectbatch.store.anchor import alive
from connectbatch.store.db import ROW_HISTORY_COLUMNS, Database, data_table, on_rollback, private_dir, quote

# Parquet row groups as DuckDB's own (122,880 rows): its scans split work by row group.
ROW_GROUP_ROWS = 122_880
# snappy: 1.15 -> ~1.3 CPU s for 1M rows, a third of the bytes of uncompressed
COMPRESSION = "snappy"
# A column whose sample snappy shrinks by less than this share is stored uncompressed.
MIN_SAVING = 0.2
SAMPLE_ROWS = 8_192
# A column whose sample holds more distinct values than this share of its rows is written
# without a dictionary.
MAX_DISTINCT = 0.5
_HISTORY = {name for name, _ in ROW_HISTORY_COLUMNS}


def writer_options(schema: pa.Schema, data_type: str, sample: pa.Table | None = None) -> dict[str, object]:
    """How every part is written (pq.write_table / pq.ParquetWriter keywords).

    Column statistics (each row group's min and max) only where a reader can skip row groups
    by them: numbers and times (the run/file/line columns, event dates, ids) and the data
    type's key columns (a vendor's increasing ids). On free text (user agents, URLs, cities,
    statuses that every row group holds) they prune nothing, and computing them was 0.24 s of
    the 1.4 CPU s that writing a 1M-row part took (issue 13).

    Compression per column, from the first rows (`sample`) of the file: snappy only where it
    saves at least MIN_SAVING of the column's encoded bytes. Dictionary and run-length
    encoding already leave little to a column of few values, and random ids, times and
    amounts do not compress: snappy over all of them was ~0.17 CPU s of the 1.4 for ~4 % of
    the bytes (issue 13).

    Dictionary encoding, likewise, only where the sample's values repeat (at most
    MAX_DISTINCT of them distinct): on ids, URLs and line numbers the writer filled a
    dictionary page per row group, found it too large and wrote the values plain anyway,
    ~10 % of the write's CPU for no saving (issue 13). A column of few values over the
    sample (a country, a status) keeps its dictionary; the file comes out smaller too."""
    keys = set(schemas.get(data_type).key_columns)
    stats = [
        f.name
        for f in schema
        if f.name in keys or not (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    ]
    options: dict[str, object] = {"compression": COMPRESSION, "write_statistics": stats}
    if sample is not None and sample.num_rows:
        sample = sample.slice(0, SAMPLE_ROWS)
        options["use_dictionary"] = _repeating(sample)
        options["compression"] = _compression_by_column(sample, options)
    return options


def _repeating(sample: pa.Table) -> list[str]:
    """The columns whose sample values repeat enough for a dictionary (MAX_DISTINCT)."""
    most = MAX_DISTINCT * sample.num_rows
    return [
        name
        for name, column in zip(sample.column_names, sample.columns, strict=True)
        if pc.count_distinct(column, mode="all").as_py() <= most
    ]


def _compression_by_column(sample: pa.Table, options: dict[str, object]) -> dict[str, str]:
    """Each column's codec: the sample written compressed, its column chunks' sizes compared."""
    sink = pa.BufferOutputStream()
    pq.write_table(sample, sink, **options)
    metadata = pq.read_metadata(pa.BufferReader(sink.getvalue()))
    chosen = dict.fromkeys(sample.column_names, COMPRESSION)
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for i in range(row_group.num_columns):
            chunk = row_group.column(i)
            if chunk.path_in_schema in chosen and chunk.total_compressed_size > (1 - MIN_SAVING) * max(
                1, chunk.total_uncompressed_size
            ):
                chosen[chunk.path_in_schema] = "none"
    return chosen


def parts_view(data_type: str) -> str:
    return f"parts_{schemas.get(data_type).key}"


def root(con: duckdb.DuckDBPyConnection) -> Path:
    """The parts folder beside the database file the connection is on."""
    found = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()  # fetchall: a fetchone leaves the result open and the next statement fails
    if not found or not found[0][0]:
        raise RuntimeError("Parquet parts need a database file")
    return Path(str(found[0][0])).parent / "parts"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def write(con: duckdb.DuckDBPyConnection, data_type: str, file_id: int, staged: pa.Table) -> int:
    """Store `staged` (the table's columns plus run_id, file_id, connection_id, line) as a new
    part of the file inside the caller's transaction; returns its rows."""
    path, rel, folder, part = _next_part(con, data_type, file_id)
    tmp = path.with_name(path.name + ".tmp")
    on_rollback(con, lambda: _unlink(path, tmp))
    try:
        options = writer_options(staged.schema, data_type, staged)
        pq.write_table(staged, tmp, row_group_size=ROW_GROUP_ROWS, **options)
        _publish(tmp, path, folder)
    except BaseException:
        _unlink(path, tmp)
        raise
    _register(con, data_type, file_id, part, rel, staged.num_rows)
    return int(staged.num_rows)


def stream_path(con: duckdb.DuckDBPyConnection, data_type: str, file_id: int) -> Path:
    """Where a streamed ingest writes a file's part before its load (pipeline/stream.py):
    beside the parts, under a name the views never read (`.stream`) and that
    `remove_orphans` deletes once the writing process is gone."""
    key = schemas.get(data_type).key
    folder = private_dir(root(con) / key)
    return folder / f"f{file_id}-p0-{os.getpid()}.parquet.stream"


def adopt(con: duckdb.DuckDBPyConnection, data_type: str, file_id: int, written: Path, rows: int) -> int:
    """Make the Parquet file a streamed ingest wrote (`stream_path`, the staged columns, as
    `write` would store them) the file's next part inside the caller's transaction: renamed
    to its part name, counted once the transaction commits, deleted if it rolls back."""
    path, rel, folder, part = _next_part(con, data_type, file_id)
    on_rollback(con, lambda: _unlink(path, written))
    _publish(written, path, folder)
    _register(con, data_type, file_id, part, rel, rows)
    return rows


def _next_part(con: duckdb.DuckDBPyConnection, data_type: str, file_id: int) -> tuple[Path, str, Path, int]:
    """The file's next part: (its path, its path under the parts folder, its folder, its
    number)."""
    key = schemas.get(data_type).key
    [(part,)] = con.execute(
        "SELECT coalesce(max(part), -1) + 1 FROM data_parts WHERE file_id = ?", [file_id]
    ).fetchall()
    rel = f"{key}/f{file_id}-p{int(part)}-{os.getpid()}.parquet"
    folder = private_dir(root(con) / key)
    return folder / Path(rel).name, rel, folder, int(part)


def _publish(tmp: Path, path: Path, folder: Path) -> None:
    """Durably rename a written part into place: its bytes, then its name."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _register(
    con: duckdb.DuckDBPyConnection, data_type: str, file_id: int, part: int, rel: str, rows: int
) -> None:
    """The `data_parts` row that makes a part count (at commit), and the views' first read."""
    key = schemas.get(data_type).key
    con.execute(
        "INSERT INTO data_parts (file_id, part, data_type, path, rows) VALUES (?, ?, ?, ?, ?)",
        [file_id, part, key, rel, rows],
    )
    if not reads_parts(con, key):  # the type's first part, and its load did not call `ready`
        refresh_views(con, key, with_parts=True)


def ready(db: Database, data_type: str) -> None:
    """Point the type's views at its parts folder, in a transaction of its own, before a load
    that may write the type's first part opens its own (which must see the views so: it
    creates the part's actions through them). Done in the load's transaction instead, two
    loads of a type's first parts at once (two partners' big files) each changed the views,
    and the second failed on their catalog entry ("write-write conflict"): a Failed run for
    a file the partner had been told was received (crash audit). The views keep only the
    parts `data_parts` names, so reading the folder early shows nothing early. One thread at
    a time (`_READY`), so the second finds it done rather than conflicting (another process
    cannot write the file meanwhile: DuckDB locks it)."""
    key = schemas.get(data_type).key
    with _READY, db.transaction() as con:
        if not reads_parts(con, key):
            refresh_views(con, key, with_parts=True)


_READY = threading.Lock()


def _unlink(*paths: Path) -> None:
    for p in paths:
        with contextlib.suppress(OSError):
            p.unlink()


PLACEHOLDER = "_columns.parquet"


def refresh_views(con: duckdb.DuckDBPyConnection, data_type: str, *, with_parts: bool = False) -> None:
    """(Re)create `parts_<type>` and `rows_<type>` for the table's columns now: at migration
    (once per table, and whenever it gains a column or the database moved) and when a data
    type gets its first part (`with_parts`; also when `data_parts` lists one already).

    Until then `parts_<type>` is empty and costs nothing (a glob and footer reads cost ~3 ms
    a query: small-file work never pays it). After it, the views never list files, so adding
    a part is no DDL (two loads committing parts at once would conflict on a view's catalog
    entry): `parts_<type>` reads every Parquet file of the folder and keeps those a
    `data_parts` row names, which makes a part visible exactly when its load commits; an
    empty placeholder with the table's columns gives every column its type."""
    key = schemas.get(data_type).key
    table = data_table(key)
    if not with_parts:
        with_parts = bool(
            con.execute("SELECT 1 FROM data_parts WHERE data_type = ? LIMIT 1", [key]).fetchall()
        )
    if not with_parts:
        con.execute(f"CREATE OR REPLACE VIEW {parts_view(key)} AS SELECT * FROM {table} WHERE false")
        con.execute(f"CREATE OR REPLACE VIEW rows_{key} AS SELECT * FROM {table}")
        return
    con.execute(f"CREATE OR REPLACE VIEW {parts_view(key)} AS {_parts_select(con, key)}")
    con.execute(
        f"CREATE OR REPLACE VIEW rows_{key} AS "
        f"SELECT * FROM {table} UNION ALL SELECT * FROM {parts_view(key)}"
    )


def _parts_select(con: duckdb.DuckDBPyConnection, key: str) -> str:
    table = data_table(key)
    folder = private_dir(root(con) / key)
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position",
        [table],
    ).fetchall()
    stored = [quote(str(name)) for name, _ in columns if name not in _HISTORY]
    placeholder = folder / PLACEHOLDER
    tmp = folder / (PLACEHOLDER + f".{os.getpid()}.tmp")
    con.execute(
        f"COPY (SELECT {', '.join(stored)} FROM {table} LIMIT 0) TO {_lit(str(tmp))} (FORMAT parquet)"
    )
    os.chmod(tmp, 0o600)
    os.replace(tmp, placeholder)
    select = []
    for name, sql_type in columns:
        col = quote(str(name))
        if name in _HISTORY:
            select.append(f"e.{col}")
        else:  # a part written before the table gained a column reads NULL there
            select.append(f"CAST(p.{col} AS {sql_type}) AS {col}")
    prefix = str(folder.parent) + "/"
    source = f"read_parquet({_lit(str(folder / '*.parquet'))}, union_by_name = true, filename = true)"
    return (
        f"SELECT {', '.join(select)} FROM {source} p "
        f"JOIN data_parts dp ON dp.data_type = {_lit(key)} AND p.filename = {_lit(prefix)} || dp.path "
        "LEFT JOIN data_ends e ON e.file_id = p.file_id AND e.line = p.line"
    )


def reads_parts(con: duckdb.DuckDBPyConnection, data_type: str) -> bool:
    """Whether `parts_<type>` reads the parts folder beside the database where it is now."""
    key = schemas.get(data_type).key
    found = con.execute(
        "SELECT sql FROM duckdb_views() WHERE view_name = ? AND NOT internal", [parts_view(key)]
    ).fetchall()
    folder = root(con) / key
    glob = _lit(str(folder / "*.parquet"))
    return bool(found) and glob in str(found[0][0]) and (folder / PLACEHOLDER).exists()


def views_current(con: duckdb.DuckDBPyConnection, data_type: str) -> bool:
    """Whether the views exist and, once the type has parts, read them where they are now."""
    key = schemas.get(data_type).key
    exists = con.execute(
        "SELECT 1 FROM duckdb_views() WHERE view_name = ? AND NOT internal", [parts_view(key)]
    ).fetchall()
    if not exists:
        return False
    has_parts = con.execute("SELECT 1 FROM data_parts WHERE data_type = ? LIMIT 1", [key]).fetchall()
    return not has_parts or reads_parts(con, key)


def remove_orphans(con: duckdb.DuckDBPyConnection) -> list[Path]:
    """Delete part files no committed `data_parts` row names (a load that crashed between
    writing its part and committing), and temporary ones; a live process's files are left
    alone (its load may still commit)."""
    base = root(con)
    if not base.is_dir():
        return []
    known = {str(r[0]) for r in con.execute("SELECT path FROM data_parts").fetchall()}
    removed = []
    for path in sorted(base.glob("*/f*-p*-*.parquet*")):
        rel = f"{path.parent.name}/{path.name}"
        if rel in known:
            continue
        pid_text = path.name.split(".parquet", 1)[0].rsplit("-", 1)[-1]
        pid = int(pid_text) if pid_text.isdigit() else 0
        if pid and (pid == os.getpid() or alive(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed
