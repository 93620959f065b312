"""Staging and the file ledger: the first thing that happens to a received file.

The bytes are copied under `<home>/staging/<sha256>` (once per content) and the file is
recorded in the ledger (name, size, sha256, source) before anything parses it, so a retry
can run it again from disk. Bytes already loaded (or awaiting review) for the connection are
a duplicate: recorded as such, and nothing else happens to them.

Staged bytes are never trusted blindly: a copy already present under the name is re-hashed
before it is used (a disk error or a killed copy may have damaged it), and a damaged copy is
replaced by the fresh bytes that just arrived. `verify` is what a retry calls before it
parses a staged copy that no delivery brings again. Folders and files are the service
user's only (0700 / 0600): staged bytes are partners' data.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from connectbatch.errors import ConnectBatchError, ParseError
from connectbatch.mapping import check as mapping_check
from connectbatch.mapping import sample as mapping_sample
from connectbatch.models import Connection, FileRecord, FileState, Run
from connectbatch.pipeline import staging_copy
from connectbatch.pipeline.staging_copy import CHUNK
from connectbatch.pipeline.staging_copy import flush_later as flush_later
from connectbatch.pipeline.staging_copy import settle as settle
from connectbatch.store import Database, run_groups
from connectbatch.store import mappings as mapping_store
from connectbatch.store import runs as run_store
from connectbatch.store.anchor import node_tag
from connectbatch.store.db import private_dir

if TYPE_CHECKING:
    from connectbatch.pipeline.ahead import Taken

# Temporary copies carry the copying process's id, so a later start can tell the leftovers of
# a killed copy (removed) from a copy another live process is making (left alone).
INCOMING_PREFIX = ".incoming-"


class StagingError(OSError):
    """The staged copy of a file is missing or does not hold the bytes it was named after."""


@dataclass(frozen=True)
class Received:
    """A file as it reached us: its bytes on local disk and where it came from."""

    name: str
    path: Path
    source: str
    remote_path: str | None = None
    mtime: dt.datetime | None = None
    # The bytes are ours to take (a fetched temporary file, removed after the ingest): staging
    # renames them into place instead of copying them.
    disposable: bool = False


@dataclass
class Staged:
    """The staged copy of a file's bytes, named by their sha256."""

    sha256: str
    size: int
    path: Path


@dataclass
class Entry:
    """The ledger row of a received file, and why it goes no further when it is a duplicate."""

    record: FileRecord
    duplicate_message: str | None = None
    # With `record(..., read_mapping=True)` and not a duplicate: the connection's field mapping
    # as the ledger transaction read it (and noted on the run), so the ingest needs no
    # transaction of its own for it. `mapping_read` tells "no mapping" from "not read".
    mapping: mapping_store.SavedMapping | None = None
    mapping_read: bool = False
    early: Taken | None = None  # the file computed while this entry committed (pipeline/ahead.py)


def stage(staging: Path, path: Path, move: bool = False, *, flush_now: bool = False) -> Staged:
    """Copy the bytes into staging under their sha256 (once), hashing as we go. A copy
    already under that name is kept only if its own bytes still hash to the name; a damaged
    one is replaced by these fresh bytes.

    With `move` (bytes that are ours to take, `Received.disposable`) they are hashed where
    they lie and renamed into place: a big pulled file is not written a second time (the copy
    of 393 MB took ~1 s, issue 13). Across file systems the rename fails and they are copied.

    A big copy is flushed to disk on a helper thread (`staging_copy`) once the caller has
    committed the file's ledger entry (`flush_later`), so that commit does not wait behind
    it; `settle` waits for it, or flushes it then if it never started. With `flush_now` (the
    entry is recorded by another process) it starts at once."""
    if move:
        moved = _move_in(staging, path, flush_now)
        if moved is not None:
            return moved
    private_dir(staging)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=staging, prefix=f"{INCOMING_PREFIX}{os.getpid()}-{node_tag()}-")
    try:
        with open(path, "rb", buffering=0) as src, os.fdopen(fd, "wb", buffering=0) as dst:
            kernel = staging_copy.kernel_copy_hashing(src, dst, digest)
            size = kernel if kernel is not None else staging_copy.copy_hashing(src, dst, digest)
            if size < staging_copy.FLUSH_LATER_BYTES:
                os.fsync(dst.fileno())
        target = staging / digest.hexdigest()
        if target.exists() and problem(target, digest.hexdigest()) is None:
            os.unlink(tmp)
            os.utime(target)  # used again: retention counts from now
            return Staged(digest.hexdigest(), size, target)
        os.replace(tmp, target)  # mkstemp made it 0600
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if size >= staging_copy.FLUSH_LATER_BYTES:
        _flush(digest.hexdigest(), target, flush_now)
    return Staged(digest.hexdigest(), size, target)


def _flush(sha256: str, target: Path, now: bool) -> None:
    staging_copy.owe_flush(sha256, target)
    if now:
        staging_copy.flush_later(sha256)


def failure_message(exc: OSError, staging: Path) -> str:
    """Why a file could not be staged (a full disk, an unreadable source), naming where."""
    return f"staging failed ({exc.filename or staging}): {exc.strerror or exc}"


def _move_in(staging: Path, path: Path, flush_now: bool) -> Staged | None:
    """`stage` by renaming `path` into staging; None when it lies on another file system."""
    private_dir(staging)
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
        if size < staging_copy.FLUSH_LATER_BYTES:
            os.fsync(src.fileno())  # the fetch may not have: the staged bytes must be on disk
    sha256 = digest.hexdigest()
    target = staging / sha256
    if target.exists() and problem(target, sha256) is None:
        os.utime(target)  # used again: retention counts from now
        return Staged(sha256, size, target)  # the caller removes its own copy
    os.chmod(path, 0o600)
    try:
        os.replace(path, target)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            return None
        raise
    os.utime(target)  # a fetch may have kept the remote file's old time: retention counts from now
    if size >= staging_copy.FLUSH_LATER_BYTES:
        _flush(sha256, target, flush_now)
    return Staged(sha256, size, target)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def problem(path: Path, sha256: str) -> str | None:
    """Why the staged copy at `path` cannot be used as the bytes named `sha256`, or None."""
    if not sha256:
        return (
            f"no staged copy: the file was never staged ({path}); send the file again, unless it "
            "was an upload to our SFTP/FTP server: that one stays there and is taken in again by "
            "itself, at the server's start and hourly"
        )
    try:
        actual = sha256_of(path)
    except FileNotFoundError:
        return f"the staged copy {path} is gone; send the file again"
    except OSError as exc:
        return f"the staged copy {path} cannot be read: {exc.strerror or exc}"
    if actual != sha256:
        return (
            f"the staged copy {path} is damaged: sha256 mismatch (its bytes hash to {actual[:12]}…, "
            f"not {sha256[:12]}…); send the file again"
        )
    return None


def verify(staging: Path, sha256: str) -> Path:
    """The staged copy of these bytes, checked against its name; StagingError if it is
    missing or damaged (a retry must never parse other bytes than were received)."""
    path = staging / sha256 if sha256 else staging
    message = problem(path, sha256)
    if message is not None:
        raise StagingError(message)
    return path


def record(
    db: Database,
    run: Run,
    connection: Connection,
    received: Received,
    staged: Staged,
    *,
    read_mapping: bool = False,
) -> Entry:
    """Record the file in the ledger, in one transaction with the duplicate check so two
    deliveries of the same bytes cannot both pass it; with `read_mapping`, a file to process
    also gets the connection's current field mapping in that transaction (recorded on the run).
    Then the staged copy's flush starts (`stage`)."""
    try:
        with db.transaction() as con:
            return record_in(con, run, connection, received, staged, read_mapping=read_mapping)
    finally:
        flush_later(staged.sha256)


def record_in(
    con: duckdb.DuckDBPyConnection,
    run: Run,
    connection: Connection,
    received: Received,
    staged: Staged,
    *,
    read_mapping: bool = False,
) -> Entry:
    """`record` inside the caller's transaction: the single-file ingest records its file in
    the transaction that opens its run, and a group of waiting files all of theirs in one
    (one commit instead of two per file, issue 13)."""
    # called through the module: the crash-recovery test hooks run_store.record_file
    entry = run_store.record_file(
        con, connection_id=connection.id, run_id=run.id, name=received.name,
        source=received.source, size=staged.size, sha256=staged.sha256,
        remote_path=received.remote_path, mtime=received.mtime,
    )  # fmt: skip
    earlier, interrupted = run_store.earlier_with_hash(con, connection.id, staged.sha256)
    earlier = still_duplicate(con, connection, staged.sha256, earlier)
    if earlier is None:
        if interrupted is not None and run.trigger == "push":  # the upload a dead process left
            run_store.retry_of_interrupted(con, run.id, interrupted)
        if not read_mapping:
            return Entry(entry)
        saved = mapping_store.current(con, connection.id)
        if saved is not None:  # a new run has none: no write
            mapping_store.set_run_version(con, run.id, saved.version)
        return Entry(entry, mapping=saved, mapping_read=True)
    return Entry(entry, mark_duplicate(con, run.id, entry.id, earlier))


def still_duplicate(
    con: duckdb.DuckDBPyConnection, connection: Connection, sha256: str, earlier: FileRecord | None
) -> FileRecord | None:
    """`earlier`, the file whose bytes these repeat, unless the repeat is news: a product
    catalog holds what its newest file says, so a file of other bytes loaded since makes the
    old bytes a change again (a sale's end re-sent the regular prices and was dropped as a
    duplicate, the catalog kept the sale's; data-types audit). Its rows merge as any
    catalog file's do: the unchanged ones are counted unchanged, nothing is doubled."""
    if earlier is None or connection.data_type != "product_catalogs" or earlier.state != FileState.LOADED:
        return earlier
    return None if run_store.changed_since(con, connection.id, sha256) else earlier


def record_group(
    con: duckdb.DuckDBPyConnection,
    runs: list[Run],
    connection: Connection,
    files: list[tuple[Received, Staged]],
) -> list[Entry]:
    """`record_in(read_mapping=True)` for several files, each of its own run, in a fixed
    number of statements (group commit). The caller keeps the bytes of the files distinct:
    a repeat within the group would not see the first as loaded yet."""
    records = run_groups.record_files(
        con, connection.id,
        [
            (run.id, r.name, r.source, s.size, s.sha256, r.remote_path, r.mtime)
            for run, (r, s) in zip(runs, files, strict=True)
        ],
    )  # fmt: skip
    hashes = [s.sha256 for _, s in files]
    earlier, interrupted = run_groups.earlier_files_with_hashes(con, connection.id, hashes)
    earlier = {sha: e for sha, e in earlier.items() if still_duplicate(con, connection, sha, e)}
    for run, (_, s) in zip(runs, files, strict=True):  # uploads a dead process left: their retries
        if s.sha256 in interrupted and s.sha256 not in earlier and run.trigger == "push":
            run_store.retry_of_interrupted(con, run.id, interrupted[s.sha256])
    saved = mapping_store.current(con, connection.id)
    fresh = [run.id for run, (_, s) in zip(runs, files, strict=True) if s.sha256 not in earlier]
    if saved is not None:  # a new run has none: no write
        mapping_store.set_runs_version(con, fresh, saved.version)
    entries = []
    for run, record, (_, s) in zip(runs, records, files, strict=True):
        before = earlier.get(s.sha256)
        if before is None:
            entries.append(Entry(record, mapping=saved, mapping_read=True))
        else:
            entries.append(Entry(record, mark_duplicate(con, run.id, record.id, before)))
    return entries


def mapping_for(
    db: Database, run: Run, connection: Connection, staged: Staged, entry: Entry | None = None
) -> mapping_store.SavedMapping | None:
    """The connection's current field mapping, recorded on the run (by the ledger
    transaction when `entry` says it read it); a file whose header lost a mapped column
    is refused (ParseError) with the suggested update."""
    if entry is not None and entry.mapping_read:
        saved = entry.mapping
    else:
        with db.transaction() as con:
            saved = mapping_store.current(con, connection.id)
            if saved is not None:  # a new run has none: no write, no commit
                mapping_store.set_run_version(con, run.id, saved.version)
    return check_mapped_header(connection, staged, saved)


def check_mapped_header(
    connection: Connection, staged: Staged, saved: mapping_store.SavedMapping | None
) -> mapping_store.SavedMapping | None:
    """`saved` when the staged file's header still has the columns it maps; a header that
    lost a mapped column is refused (ParseError) with the suggested update."""
    if saved is None:
        return None
    with open(staged.path, "rb") as fh:
        head = fh.read(mapping_sample.SAMPLE_BYTES)
    try:
        sample = mapping_sample.read_sample(
            head, encoding=connection.encoding, delimiter=connection.delimiter, rows=20
        )
    except ConnectBatchError:
        return saved  # the parser says what is wrong with the file, in its own words
    message = mapping_check.mismatch_message(sample, saved.columns, saved.version, connection.data_type)
    if message is not None:
        raise ParseError(message)
    return saved


def mark_duplicate(con: duckdb.DuckDBPyConnection, run_id: int, file_id: int, earlier: FileRecord) -> str:
    """Record a ledger entry as a duplicate of the `earlier` file with the same bytes (inside
    the caller's transaction) and count its rows as duplicates; returns the reason given. Of
    a file held for review nothing is loaded yet ("not loaded again" said it was): it says so."""
    same = f"same content as {earlier.name!r} (file {earlier.id}, run {earlier.run_id})"
    if earlier.state == FileState.QUARANTINED:
        message = (
            f"{same}, which is held for review: a reviewer loads or refuses it, and this copy is "
            "not loaded; send it again if the reviewer refuses the first"
        )
    else:
        message = f"{same}; not loaded again"
    run_store.set_file_state(con, file_id, FileState.DUPLICATE, message)
    run_store.add_counters(con, run_id, rows_duplicate=earlier.rows_accepted)
    return message


@dataclass(frozen=True)
class Removal:
    """A staged copy retention removed."""

    sha256: str
    size: int
    last_used_at: dt.datetime


def cleanup(staging: Path, db: Database, retention_days: int, now: dt.datetime) -> list[Removal]:
    """Remove staged copies unused for longer than `retention_days` (0: keep all), except
    those a run In Progress or a quarantined batch still needs; record each removal."""
    if retention_days <= 0 or not staging.is_dir():
        return []
    cutoff = now - dt.timedelta(days=retention_days)
    with db.connect() as con:
        needed = run_store.staged_hashes_in_use(con)
    removed: list[Removal] = []
    for path in sorted(staging.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.name in needed:
            continue
        info = path.stat()
        used = dt.datetime.fromtimestamp(info.st_mtime, dt.UTC)
        if used >= cutoff:
            continue
        path.unlink(missing_ok=True)
        removal = Removal(path.name, info.st_size, used)
        with db.transaction() as con:
            run_store.record_staging_removal(
                con, removal.sha256, removal.size, used, now,
                f"retention: unused for more than {retention_days} days",
            )  # fmt: skip
        removed.append(removal)
    return removed
