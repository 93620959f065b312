"""Staging and the file ledger: the first thing that happens to a received file.

The bytes are copied under `<home>/staging/<sha256>` (once per content) and the file is
recorded in the ledger (name, size, sha256, source) before anything parses it, so a retry
can run it again from disk. Bytes already loaded (or awaiting review) for the connection are
a duplicate: recorded as such, and nothing else happens to them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from connectbatch.models import Connection, FileRecord, FileState, Run
from connectbatch.store import Database
from connectbatch.store import runs as run_store

CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Received:
    """A file as it reached us: its bytes on local disk and where it came from."""

    name: str
    path: Path
    source: str
    remote_path: str | None = None
    mtime: dt.datetime | None = None


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


def stage(staging: Path, path: Path) -> Staged:
    """Copy the bytes into staging under their sha256 (once), hashing as we go."""
    staging.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=staging, prefix=".incoming-")
    try:
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
        target = staging / digest.hexdigest()
        if target.exists():
            os.unlink(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Staged(digest.hexdigest(), size, target)


def record(db: Database, run: Run, connection: Connection, received: Received, staged: Staged) -> Entry:
    """Record the file in the ledger, in one transaction with the duplicate check so two
    deliveries of the same bytes cannot both pass it."""
    with db.transaction() as con:
        # called through the module: the crash-recovery test hooks run_store.record_file
        entry = run_store.record_file(
            con, connection_id=connection.id, run_id=run.id, name=received.name,
            source=received.source, size=staged.size, sha256=staged.sha256,
            remote_path=received.remote_path, mtime=received.mtime,
        )  # fmt: skip
        earlier = run_store.loaded_file_with_hash(con, connection.id, staged.sha256)
        if earlier is None:
            return Entry(entry)
        message = (
            f"same content as {earlier.name!r} (file {earlier.id}, run {earlier.run_id}); not loaded again"
        )
        run_store.set_file_state(con, entry.id, FileState.DUPLICATE, message)
        run_store.add_counters(con, run.id, rows_duplicate=earlier.rows_accepted)
    return Entry(entry, message)
