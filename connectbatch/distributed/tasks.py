"""The two Celery tasks a worker runs; neither opens the DuckDB file.

Both are retried with backoff for transient errors (the network, a busy shared volume:
OSError, which TransportError is, and the transfer libraries' own errors); after the last
retry the task fails and the coordinator records the run or file Failed with the reason
(the dead letter). Their payloads are sealed (`sealed`): logins never sit in Redis in clear.

A pull runs under a deadline (`pull_deadline`), as in embedded mode (`stopping`): a server
that sends a byte now and then held its worker for ever. The deadline is kept under the
broker's visibility timeout, as Redis delivers a task again to another worker once it has
gone unacknowledged that long (tasks are acknowledged at their end): a pull outliving it
ran twice at once, then again, until every worker was held by one partner's server. A cut
pull is not retried (it would be cut again): it comes back as `{"cut": reason}`, for the
coordinator to record a Failed run, leaving the login's status alone.
"""

from __future__ import annotations

import datetime as dt
import ftplib
import functools
import glob
import imaplib
import logging
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import paramiko
from celery import shared_task

from connectbatch.distributed import output
from connectbatch.distributed.app import PARSE_TASK, PULL_TASK
from connectbatch.distributed.sealed import unseal
from connectbatch.errors import (
    RemoteFileChangedError,
    RemoteFileRefusedError,
    RemoteFileTooLargeError,
    TransportError,
)
from connectbatch.models import Connection
from connectbatch.pipeline import ingest, staging
from connectbatch.pipeline.commit import Stopwatch
from connectbatch.secrets import SecretBox
from connectbatch.settings import Settings
from connectbatch.store import taken
from connectbatch.store.anchor import alive
from connectbatch.store.db import private_dir
from connectbatch.transfer import base
from connectbatch.transfer.pull import stopping

TRANSIENT: tuple[type[BaseException], ...] = (
    OSError, paramiko.SSHException, imaplib.IMAP4.error, *ftplib.all_errors,
)  # fmt: skip
MAX_RETRIES = 3
log = logging.getLogger("connectbatch.distributed.tasks")
DONE_STATES = ("loaded", "duplicate")
REFUSED_STATES = ("rejected", "discarded")  # the same bytes would be refused again


@functools.cache
def worker_settings() -> Settings:
    """The worker's settings (CONNECTBATCH_HOME holds the shared staging folder and key)."""
    return Settings.from_env()


def _box(settings: Settings) -> SecretBox:
    return SecretBox.for_home(settings.home, settings.secret_key)


def remote_key(path: str, size: int | None, mtime: dt.datetime | None) -> str:
    """How coordinator and worker name a remote file version (path, size, time)."""
    return f"{path}\0{size}\0{mtime.isoformat() if mtime is not None else ''}"


@dataclass(frozen=True)
class _Line:
    """A settled ledger line as the coordinator sends it (`remote_key` -> state)."""

    id: int  # its place in the coordinator's list: the ledger's order
    remote_path: str
    size: int | None
    mtime: dt.datetime | None
    state: str


class Settled:
    """What earlier runs settled (the coordinator's `settled`: `remote_key` -> state), matched
    by the embedded pull's own index (`store.taken.Settled`): by path, size and time, a listing
    without a size by path and time, a time known to the day only by its date; each listed
    file compares only the versions of its own path (a loop over every settled file per listed
    one made a listing of 200,000 old FTP files, times by day, take hours)."""

    def __init__(self, settled: dict[str, str]) -> None:
        lines = []
        for k, (key, state) in enumerate(settled.items()):
            path, size, when = key.split("\0")
            mtime = dt.datetime.fromisoformat(when) if when else None
            lines.append(_Line(k, path, None if size == "None" else int(size), mtime, state))
        self.index = taken.Settled(lines)

    def state(self, remote: base.RemoteFile) -> str | None:
        """The state an earlier run left this listed file version in (None: not settled)."""
        found = self.index.taken_before(remote.path, remote.size, remote.mtime, by_day=remote.time_by_day)
        return found.state if found is not None else None


def settled_state(settled: dict[str, str], remote: base.RemoteFile) -> str | None:
    """`Settled(settled).state(remote)`, for one file."""
    return Settled(settled).state(remote)


def pull_deadline(settings: Settings) -> tuple[float, str]:
    """The seconds a worker's pull may take, and the reason it fails with past them:
    CONNECTBATCH_PULL_DEADLINE, unless that reaches into the last third of the visibility
    timeout (at most its last minute), kept for closing the pull, staging the file it had
    just fetched and storing the result; the task is acknowledged before it could be
    delivered again. Raise CONNECTBATCH_VISIBILITY_TIMEOUT for longer pulls."""
    visibility = float(settings.visibility_timeout)
    cap = visibility - min(60.0, visibility / 3)
    if settings.pull_deadline <= cap:
        return settings.pull_deadline, stopping.overdue(settings.pull_deadline)
    return cap, stopping.overdue(
        cap, "CONNECTBATCH_PULL_DEADLINE, kept under CONNECTBATCH_VISIBILITY_TIMEOUT"
    )


@shared_task(  # type: ignore[untyped-decorator]  # celery ships no type hints
    name=PULL_TASK, autoretry_for=TRANSIENT, max_retries=MAX_RETRIES,
    retry_backoff=2, retry_backoff_max=60, retry_jitter=False,
)  # fmt: skip
def pull(sealed: str) -> dict[str, Any]:
    """List the connection's folder; fetch into staging each file no run settled, old enough
    and not refused by the transport; tidy (archive/delete) those an earlier run loaded. The
    others come back unfetched, for the coordinator to record why they wait; so does a file
    the server will not send (`refused`: no read permission), which costs that file only,
    as in embedded mode, never the files beside it. A tidy-up the server refuses (no
    permission to delete) is reported (`untidy`), not raised: failing the pull would fail
    every later one too and hold back every new file (`collect` says the same).

    On e-mail (`settles_refused`: a mail never changes) a mail is marked processed once its
    outcome is recorded, as embedded mode does, but the record is the coordinator's: a mail
    whose file a run rejected or a reviewer discarded is marked here (the ledger says so);
    one refused here (sender not allowed, over the limit: `settles`) or that brought no
    file (`unmatched`, for the connection's history) comes back first, and the next pull
    marks it (`mark`: the remote paths the coordinator recorded)."""
    settings = worker_settings()
    job = unseal(_box(settings), sealed)
    deadline, reason = pull_deadline(settings)
    with stopping.pulling(deadline, reason) as flight:
        try:
            return _pull(settings, job, flight)
        except Exception:
            if not flight.stopped:  # the server's or the network's: retried, then the dead letter
                raise
    log.warning("pull cut: %s", flight.reason)
    return {"cut": flight.reason}


def _pull(settings: Settings, job: dict[str, Any], flight: stopping.Flight) -> dict[str, Any]:
    """The pull's listing, fetches and tidy-ups (`pull`); a file's own failure once the pull
    was cut raises, as its cause is the cut, not the file."""
    connection: Connection = job["connection"]
    endpoint = base.limited(job["endpoint"], settings.max_file_bytes)
    settled = Settled(job["settled"])
    mark = frozenset(job.get("mark", ()))  # absent from an older coordinator's payload
    now = dt.datetime.now(dt.UTC)
    transport = base.open_transport(connection.method.value, endpoint)
    settles = transport.settles_refused
    incoming = _incoming(settings)
    files: list[dict[str, Any]] = []
    untidy: list[list[str]] = []  # [name, the server's answer] of files not archived/deleted
    try:
        listing = transport.list_files(connection.folder or "", connection.pattern)
        unmatched = [
            _entry(r)
            for r in getattr(transport, "unmatched", ())
            if not (r.path in mark and _marked(transport, r))
        ]
        for remote in listing:
            state = settled.state(remote)
            if state in DONE_STATES:  # settled by an earlier run: only tidied up
                try:
                    transport.after_success(remote, connection.after_success, connection.archive_folder)
                except TransportError as exc:  # loaded all the same: said, never failing the pull
                    log.warning("taken but not tidied up: %s", exc)
                    untidy.append([remote.name, str(exc)])
                continue
            if settles and (remote.path in mark or state in REFUSED_STATES) and _marked(transport, remote):
                continue  # its ledger line is its record
            entry = _entry(remote)
            # listed over the limit: not fetched (a fetch would stop at the limit on every
            # poll); the coordinator records it once, in `collect._decision`'s words, with
            # this worker's limit (the one that applied, should the coordinator's differ)
            over = state is None and base.over_limit(remote, endpoint.max_bytes)
            if over and endpoint.max_bytes is not None:
                entry["too_large"] = base.too_large("", remote.path, endpoint.max_bytes).reason
            entry["settles"] = settles and bool(over or entry["extra"].get("skip"))
            if not (state is not None or entry["extra"].get("skip") or over) and base.old_enough(
                remote, connection.min_age_seconds, now
            ):
                target = incoming / "payload"
                try:
                    transport.fetch(remote, target)
                except RemoteFileChangedError as exc:  # still being written: it waits
                    if flight.stopped:
                        raise
                    entry["extra"]["skip"] = exc.reason
                    entry["settles"] = settles and isinstance(exc, RemoteFileTooLargeError)
                    files.append(entry)
                    continue
                except RemoteFileRefusedError as exc:  # that file only: the others go on
                    if flight.stopped:
                        raise
                    entry.update(refused=exc.reason, note=f"{remote.name} not taken: {exc}")
                    files.append(entry)
                    continue
                # ours: renamed in; its ledger entry is the coordinator's, so flushed at once
                staged = staging.stage(settings.staging, target, move=True, flush_now=True)
                target.unlink(missing_ok=True)
                entry.update(sha256=staged.sha256, size_staged=staged.size)
            files.append(entry)
        if flight.stopped:  # cut while tidying up or marking (said, not raised): cut all the same
            raise ConnectionAbortedError(flight.reason)
        return {
            "files": files,
            "unmatched": unmatched,
            "untidy": untidy,
            "host_key": getattr(transport, "host_key", None),
            "fingerprint": getattr(transport, "host_key_fingerprint", None),
        }
    finally:
        transport.close()
        shutil.rmtree(incoming, ignore_errors=True)


def _incoming(settings: Settings) -> Path:
    """A fresh folder for this pull's downloads, named by host and process, after removing
    those a killed pull of this host left (a worker SIGKILLed, or OOM-killed, mid-fetch left
    its partial download there for good; the folder may be shared by several hosts)."""
    root = private_dir(settings.home / "incoming")
    prefix = f"pull-{socket.gethostname()}-"
    for stale in root.glob(f"{glob.escape(prefix)}*"):
        pid = stale.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=root))


def _entry(remote: base.RemoteFile) -> dict[str, Any]:
    """A listed file as the pull's result carries it to the coordinator (plain JSON)."""
    return {
        "name": remote.name, "remote_path": remote.path, "size": remote.size,
        "mtime": remote.mtime.isoformat() if remote.mtime is not None else None,
        "extra": {k: v for k, v in (remote.extra or {}).items() if isinstance(v, str)},
        "sha256": None,
    }  # fmt: skip


def _marked(transport: base.Transport, remote: base.RemoteFile) -> bool:
    """Mark a mail settled by a recorded refusal as processed, never archived (True); a
    server that refuses (False) leaves it to come back, and be marked, next time."""
    try:
        transport.after_success(remote, "leave", None)
    except TransportError as exc:
        log.warning("could not mark %s processed: %s", remote.name, exc)
        return False
    return True


# The settings a file's verdict depends on: the coordinator's, sent with each parse task. A
# worker judged by its own (a distributed audit: one with CONNECTBATCH_MAX_AGE_DAYS=1 held a
# batch that the coordinator's 90 days loaded, so the outcome hung on which worker took it).
VERDICT_SETTINGS = ("max_file_bytes", "validation_max_age_days", "max_reject_rate")


def verdict_settings(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in VERDICT_SETTINGS}


@shared_task(  # type: ignore[untyped-decorator]  # celery ships no type hints
    name=PARSE_TASK, autoretry_for=(OSError,), max_retries=MAX_RETRIES,
    dont_autoretry_for=(staging.StagingError,),  # a missing or damaged staged copy stays so
    retry_backoff=2, retry_backoff_max=60, retry_jitter=False,
)  # fmt: skip
def parse(sealed: str) -> dict[str, Any]:
    """Parse and validate one staged file (checked against its sha256 first) and write the
    output for the loader; the "already loaded keys" check waits for load time."""
    settings = worker_settings()
    job = unseal(_box(settings), sealed)
    settings = replace(settings, **job.get("verdict", {}))
    connection: Connection = job["connection"]
    sha256: str = job["sha256"]
    run_id: int = job["run_id"]
    path = staging.verify(settings.staging, sha256)
    clock = Stopwatch()
    computed = ingest.compute(settings, connection, path, job["mapping"], job["now"], clock)
    output.write(settings.staging, sha256, run_id, computed)
    return {"sha256": sha256, "run_id": run_id, "laps": clock.laps}
