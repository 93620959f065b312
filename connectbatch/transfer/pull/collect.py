"""Collect: one pull run for a connection — list, choose, fetch, ingest, tidy up.

What a run takes from the remote listing, and why it skips the rest, is recorded in the
ledger (state `skipped` with the reason), so a person can see every file a run saw:
- names matching the wildcard but still being written (`.part`, `.tmp`, ...) never match;
- files younger than the connection's minimum age wait for the next run;
- a file that changes while it is fetched (still being written under its final name) waits
  for a later run, and the files beside it go on (nothing is wrong with the login);
- a file over CONNECTBATCH_MAX_FILE_BYTES, listed so or growing past it while fetched (a
  server whose download never ends), is not taken: the download stops at the limit;
- a file already loaded with the same remote path, size and time is not fetched again
  (the sha256 check in ingest would catch it too, but only after a download); a time the
  transport knows to the day only (`extra["mtime_precision"] == "day"`: an FTP LIST line of
  a file older than six months, where the hours were shown before) matches by its date;
- a file a reviewer discarded is not taken again (that would hold it for review again);
- on e-mail (a mail never changes: `Transport.settles_refused`) an attachment rejected as a
  whole, discarded or over the limit is recorded once and its mail marked processed, never
  fetched again;
- a file the server refuses to send (not readable by our login, gone since the listing) is
  recorded as skipped with what the partner must fix, once for the same file and reason; the
  files beside it go on, and later runs try it again.
One line per decision: a file skipped for the same reason as before is not recorded again,
and a file an earlier run took adds nothing (that run's line is its record), so a scheduled
poll of a folder with old files in it does not fill the ledger. With `quiet_when_settled`
(scheduled pulls) a poll that finds nothing new records no run at all.
A mail that brought nothing matching (no attachment, or none whose name matches) is no file:
it goes to the connection's history (`pipeline.history`), which may answer the sender.
The remote file is archived or deleted only after its ingest succeeded (loaded, or a
duplicate of something already loaded). A server that refuses that tidy-up (no permission to
delete or rename) does not fail the run: the file was loaded, the ledger keeps later runs
from taking it again (same path, size and time), and the run's note says what to fix; a
run failing on it instead would fail every later run too and hold back every new file.
Fetched files go in together, in listing order (up to
`group.GROUP_MAX_FILES` files or `group.GROUP_MAX_BYTES` bytes at a time, group commit:
`pipeline/group.ingest_in_run`), so a folder of many small files costs a few commits, not
two a file. A transport error fails the run (what was fetched before it still goes in) and
marks the credential Error with the message, as the Improvado settings screen shows it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from connectbatch.errors import (
    ConfigurationError,
    DataConnectionError,
    RemoteFileChangedError,
    RemoteFileDamagedError,
    RemoteFileRefusedError,
    RemoteFileTooLargeError,
    TransportError,
)
from connectbatch.models import AfterSuccess, Connection, FileRecord, Run
from connectbatch.pipeline import group, history, ingest
from connectbatch.secrets import SecretBox
from connectbatch.store import Database, taken
from connectbatch.store import runs as run_store
from connectbatch.store.db import private_dir
from connectbatch.store.taken import Settled, Skipped
from connectbatch.transfer import base
from connectbatch.transfer.pull import login, stopping
from connectbatch.transfer.pull.notes import RunNotes

log = logging.getLogger("connectbatch.transfer.pull.collect")

DONE_STATES = ("loaded", "duplicate")
# What `_decision` says of a file a run does not take: an earlier run settled it, or it is
# refused as it is (settled too where the transport `settles_refused`: a mail never changes).
TAKEN, REJECTED, TOO_LARGE = "taken", "rejected", "too large"


def pull(
    ingestor: ingest.Ingestor,
    box: SecretBox,
    connection: Connection,
    trigger: str = "schedule",
    open_transport: base.Opener = base.open_transport,
    *,
    endpoint: base.Endpoint | None = None,
    quiet_when_empty: bool = False,
    quiet_when_settled: bool = False,
    retry_of: int | None = None,
) -> Run | None:
    """One pull run (`retry_of`: the failed run it retries, recorded on the new one).
    Never raises for remote or file problems: they end up in the run.
    The engine's stop or CONNECTBATCH_PULL_DEADLINE ends it at once (`stopping`): a Failed run.

    `endpoint` overrides the connection's own login (e-mail push reads our shared inbound
    mailbox). With `quiet_when_empty` (frequent polling), nothing is recorded when there is
    nothing to take or the server cannot be reached, so the history shows deliveries only.
    With `quiet_when_settled` (scheduled pulls), nothing is recorded when every listed file
    was settled before (taken, or skipped for the same reason); an unreachable server still
    fails a run, as it should be seen and retried.
    """
    with stopping.pulling(ingestor.settings.pull_deadline) as flight:
        return _pull(
            ingestor, box, connection, trigger, open_transport, endpoint, quiet_when_empty,
            quiet_when_settled, flight, retry_of,
        )  # fmt: skip


def _pull(
    ingestor: ingest.Ingestor,
    box: SecretBox,
    connection: Connection,
    trigger: str,
    open_transport: base.Opener,
    endpoint: base.Endpoint | None,
    quiet_when_empty: bool,
    quiet_when_settled: bool,
    flight: stopping.Flight,
    retry_of: int | None = None,
) -> Run | None:
    db = ingestor.db
    credential_id: int | None = None
    # Why the run fails before it connects, or why the first look failed: the run records
    # it rather than connecting again (a server that never answers cost two timeouts, a run
    # twice as long as its message said).
    failed: TransportError | None = None
    # An error the first look raised that is no TransportError (a bug, a server's answer no
    # parser foresaw): the run records it as an internal error. It escaped before any run
    # existed, so a scheduled pull left only a traceback in the log and the login open.
    crashed: Exception | None = None
    if endpoint is None:
        try:
            endpoint, credential_id = login.endpoint_for(db, box, connection)
        except ConfigurationError as exc:
            # The key cannot open the stored login (it changed): a Failed run says so, where a
            # scheduled pull used to raise before any run existed (a traceback in the log only).
            endpoint = base.Endpoint(host=connection.host or "", port=connection.port)
            failed = TransportError(str(exc))
    endpoint = base.limited(endpoint, ingestor.settings.max_file_bytes)
    transport: base.Transport | None = None
    listing: list[base.RemoteFile] | None = None
    if (quiet_when_empty or quiet_when_settled) and failed is None:
        try:
            transport = login.open_pinned(db, connection.method.value, endpoint, open_transport)
            listing = _list(ingestor, connection, transport)
            settled, skipped = _ledger(db, connection, listing)
            listing = [
                r
                for r in listing
                if _needs_run(ingestor, connection, transport, r, settled=settled, skipped=skipped)
            ]
        except TransportError as exc:
            if transport is not None:
                transport.close()
                transport = None
            if quiet_when_empty:
                why = flight.reason if flight.stopped else exc  # cut: not the server's words
                log.warning("poll failed: %s", why, extra={"connection_id": connection.id})
                return None
            listing, failed = None, exc  # recorded by the run below
        except Exception as exc:
            if transport is not None:
                transport.close()
                transport = None
            if quiet_when_empty:  # a mailbox poll: said in the log, as its transport errors are
                log.exception("poll crashed", extra={"connection_id": connection.id})
                return None
            listing, crashed = None, exc  # recorded by the run below, then raised
        if listing is not None and not listing:
            assert transport is not None
            transport.close()
            return None
    try:
        run = ingestor.start_run(connection, trigger, retry_of)
    except BaseException:  # another process's run is going: the listed transport closes
        if transport is not None:
            transport.close()
        raise
    pinned_now: list[str] = []
    notes = RunNotes(str(connection.after_success or ""))  # what the run says, not failing
    incoming = Path(tempfile.mkdtemp(prefix=f"run{run.id}-", dir=_incoming(ingestor)))
    try:
        if crashed is not None:
            raise crashed
        if failed is not None:
            raise failed
        if transport is None:
            transport = login.open_pinned(db, connection.method.value, endpoint, open_transport, pinned_now)
            if pinned_now:
                with db.transaction() as con:
                    run_store.note(con, run.id, pinned_now[0])
        if listing is None:
            listing = _list(ingestor, connection, transport)
        _take_all(ingestor, connection, run, transport, listing, incoming, notes)
        login.credential_ok(db, credential_id)
    except TransportError as exc:
        if flight.stopped:  # we cut it (a stop, its deadline): the login is not in question
            log.warning("pull stopped: %s", flight.reason, extra={"run_id": run.id})
            return ingestor.finish_run(run, failed_reason=notes.text(flight.reason))
        log.warning("pull failed: %s", exc, extra={"run_id": run.id, "connection_id": connection.id})
        if not isinstance(exc, DataConnectionError):  # the login worked: it is not in question
            login.credential_error(db, credential_id, str(exc))
        return ingestor.finish_run(run, failed_reason=notes.text(str(exc)))
    except BaseException as exc:  # never leave a run In Progress behind a live process
        log.exception("pull crashed", extra={"run_id": run.id, "connection_id": connection.id})
        # recorded even on a full disk, and never masking the error that goes on up
        ingestor.fail_run(run, f"internal error: {type(exc).__name__}: {exc}")
        raise
    finally:
        if transport is not None:
            transport.close()
        shutil.rmtree(incoming, ignore_errors=True)
    if notes.text():
        with db.transaction() as con:
            run_store.note(con, run.id, notes.text(*pinned_now))
    return ingestor.finish_run(run)


def _take_all(
    ingestor: ingest.Ingestor,
    connection: Connection,
    run: Run,
    transport: base.Transport,
    listing: list[base.RemoteFile],
    incoming: Path,
    notes: RunNotes,
) -> None:
    """Fetch the listed files the run takes, and ingest them a group at a time."""
    fetched: list[tuple[base.RemoteFile, Path]] = []
    size = 0
    settled, skipped = _ledger(ingestor.db, connection, listing)
    try:
        for k, remote in enumerate(listing):
            target = incoming / f"payload-{k}"
            if not _fetch(ingestor, connection, run, transport, remote, target, notes, (settled, skipped)):
                continue
            notes.came_from(remote.name, remote.extra.get("forwarded", ""))  # a forwarded mail
            fetched.append((remote, target))
            size += target.stat().st_size
            if len(fetched) >= group.GROUP_MAX_FILES or size >= group.GROUP_MAX_BYTES:
                taken, fetched, size = fetched, [], 0
                _ingest_fetched(ingestor, connection, run, transport, taken, notes)
    except TransportError:  # what was fetched before a failed fetch goes in; the run then fails
        _ingest_fetched(ingestor, connection, run, transport, fetched, notes)
        raise
    _ingest_fetched(ingestor, connection, run, transport, fetched, notes)


def _ingest_fetched(
    ingestor: ingest.Ingestor,
    connection: Connection,
    run: Run,
    transport: base.Transport,
    fetched: list[tuple[base.RemoteFile, Path]],
    notes: RunNotes,
) -> None:
    """Ingest fetched files together, then tidy up (archive or delete) each remote file
    whose ingest succeeded."""
    received = [
        ingest.Received(
            remote.name, target, connection.method.value, remote.path, remote.mtime, disposable=True
        )
        for remote, target in fetched
    ]
    records = group.ingest_in_run(ingestor, run, connection, received)
    for (remote, target), record in zip(fetched, records, strict=True):
        target.unlink(missing_ok=True)
        if record.state in DONE_STATES:
            _tidy(transport, connection, remote, notes)
        elif record.state == REJECTED:
            _settle_refused(transport, connection, remote, notes)


def _settle_refused(
    transport: base.Transport, connection: Connection, remote: base.RemoteFile, notes: RunNotes | None
) -> None:
    """A file refused for good (its ledger line says why) on a transport whose files never
    change (`settles_refused`, e-mail): marked as handled, never archived or deleted, so it is
    not fetched, nor a run made for it, on every later poll. Elsewhere it stays as it is."""
    if transport.settles_refused:
        _tidy(transport, connection, remote, notes, refused=True)


def _tidy(
    transport: base.Transport,
    connection: Connection,
    remote: base.RemoteFile,
    notes: RunNotes | None,
    *,
    refused: bool = False,
) -> None:
    """Archive or delete a remote file an earlier step settled (`refused`: only mark it, see
    `_settle_refused`). A refusal is noted (`notes`, when a run is going on) and logged, never
    raised: see the module docstring."""
    action, folder = (
        (AfterSuccess.LEAVE, None) if refused else (connection.after_success, connection.archive_folder)
    )
    try:
        transport.after_success(remote, action, folder)
    except RemoteFileChangedError as exc:  # the partner replaced it after our fetch: not ours
        log.warning("taken, then replaced; left there: %s", exc, extra={"connection_id": connection.id})
        if notes is not None:
            notes.replaced(remote.name)
    except TransportError as exc:
        log.warning("taken but not tidied up: %s", exc, extra={"connection_id": connection.id})
        if notes is not None:
            notes.not_tidied(remote.name, str(exc))


def _fetch(
    ingestor: ingest.Ingestor,
    connection: Connection,
    run: Run,
    transport: base.Transport,
    remote: base.RemoteFile,
    target: Path,
    notes: RunNotes,
    ledger: tuple[Settled[FileRecord], Skipped],
) -> bool:
    """Fetch one listed file to `target` (True), or record why it is not taken now. `ledger`:
    what earlier runs settled and skipped of the listing (`_ledger`)."""
    db = ingestor.db
    settled, skipped = ledger
    if not _needs_run(ingestor, connection, transport, remote, notes, settled=settled, skipped=skipped):
        return False
    refused = remote.extra.get("skip") if remote.extra else None
    if refused:  # the transport refused it (an e-mail from a sender not allowed): record, tidy
        with db.transaction() as con:
            run_store.record_file(
                con, connection_id=connection.id, run_id=run.id, name=remote.name,
                source=connection.method.value, size=remote.size or 0, sha256="",
                remote_path=remote.path, mtime=remote.mtime, state="skipped", message=refused,
            )  # fmt: skip
        log.warning("skipped %s: %s", remote.name, refused, extra={"run_id": run.id})
        transport.after_success(remote, AfterSuccess.LEAVE, None)
        return False
    reason, outcome = _decision(db, ingestor, connection, remote, settled)
    if reason is not None:  # a new decision (`_needs_run` drops those made before)
        with db.transaction() as con:
            run_store.record_file(
                con, connection_id=connection.id, run_id=run.id, name=remote.name,
                source=connection.method.value, size=remote.size or 0, sha256="",
                remote_path=remote.path, mtime=remote.mtime, state="skipped", message=reason,
            )  # fmt: skip
        if outcome in (REJECTED, TOO_LARGE):
            _settle_refused(transport, connection, remote, notes)
        return False
    try:
        transport.fetch(remote, target)
    except RemoteFileChangedError as exc:  # still being written: it waits, the others go on
        log.info("not taken now: %s", exc.reason, extra={"run_id": run.id})
        with db.transaction() as con:
            run_store.record_file(
                con, connection_id=connection.id, run_id=run.id, name=remote.name,
                source=connection.method.value, size=remote.size or 0, sha256="",
                remote_path=remote.path, mtime=remote.mtime, state="skipped", message=exc.reason,
            )  # fmt: skip
        if isinstance(exc, RemoteFileTooLargeError | RemoteFileDamagedError):  # cannot pass as it is: settled
            _settle_refused(transport, connection, remote, notes)
        return False
    except RemoteFileRefusedError as exc:  # that file only: the login works, the others go on
        log.warning("not taken: %s", exc, extra={"run_id": run.id})
        with db.transaction() as con:
            size = remote.size or 0
            if run_store.skipped_before(
                con, connection.id, remote.path, size, remote.mtime, exc.reason, by_day=remote.time_by_day
            ):
                return False  # recorded by an earlier run: one line per decision
            run_store.record_file(
                con, connection_id=connection.id, run_id=run.id, name=remote.name,
                source=connection.method.value, size=size, sha256="",
                remote_path=remote.path, mtime=remote.mtime, state="skipped", message=exc.reason,
            )  # fmt: skip
        notes.refused.append(f"{remote.name} not taken: {exc}")
        return False
    return True


def _list(
    ingestor: ingest.Ingestor, connection: Connection, transport: base.Transport
) -> list[base.RemoteFile]:
    """The listing; the mails it took nothing from (an e-mail transport's `unmatched`) are
    recorded in the connection's history here (answered when safe) and marked processed."""
    listing = transport.list_files(connection.folder or "", connection.pattern)
    for remote in list(getattr(transport, "unmatched", ())):
        history.unmatched_mail(ingestor.db, ingestor.outbox, connection, remote.extra or {}, ingestor.clock())
        transport.after_success(remote, AfterSuccess.LEAVE, None)
    return listing


def _needs_run(
    ingestor: ingest.Ingestor,
    connection: Connection,
    transport: base.Transport,
    remote: base.RemoteFile,
    notes: RunNotes | None = None,
    *,
    settled: Settled[FileRecord] | None = None,
    skipped: Skipped | None = None,
) -> bool:
    """False for what a run would add no line for: a file an earlier run settled (tidied up
    here; a refusal goes to `notes`), a file skipped before for the same reason (`skipped`:
    the listing's skip lines, read once by `_ledger`, instead of a query per file)."""
    extra = remote.extra or {}
    if extra.get("skip"):
        return True
    reason, outcome = _decision(ingestor.db, ingestor, connection, remote, settled)
    if reason is None:
        return True
    if outcome == TAKEN:
        _tidy(transport, connection, remote, notes)
        return False
    if outcome == REJECTED and transport.settles_refused:  # its rejected line is its record
        _settle_refused(transport, connection, remote, notes)
        return False
    if skipped is None:
        with ingestor.db.connect() as con:
            skipped = Skipped.of(con, connection.id, [remote.path])
    found = skipped.before(remote.path, remote.size or 0, remote.mtime, reason, by_day=remote.time_by_day)
    if found is not None and outcome == TOO_LARGE:
        _settle_refused(transport, connection, remote, notes)
    return found is None


def _incoming(ingestor: ingest.Ingestor) -> Path:
    return private_dir(ingestor.settings.home / "incoming")  # fetched bytes: the service user's only


def _skip_reason(
    db: Database, ingestor: ingest.Ingestor, connection: Connection, remote: base.RemoteFile
) -> tuple[str | None, bool]:
    """(why the file is not taken now, or None; whether an earlier run settled it)."""
    reason, outcome = _decision(db, ingestor, connection, remote)
    return reason, outcome == TAKEN


def _ledger(
    db: Database, connection: Connection, listing: list[base.RemoteFile]
) -> tuple[Settled[FileRecord], Skipped]:
    """What earlier runs settled and skipped of the listed paths: one statement for the whole
    listing."""
    with db.connect() as con:
        return taken.of_listing(con, connection.id, (r.path for r in listing))


def _decision(
    db: Database,
    ingestor: ingest.Ingestor,
    connection: Connection,
    remote: base.RemoteFile,
    settled: Settled[FileRecord] | None = None,
) -> tuple[str | None, str]:
    """(why the file is not taken now, or None; `TAKEN` when an earlier run settled it,
    `REJECTED` or `TOO_LARGE` when it is refused as it is, "" when a later run may take it).
    `settled`: the listing's ledger lines, read once (`_settled`), instead of a query."""
    if not base.old_enough(remote, connection.min_age_seconds, ingestor.clock()):
        return f"younger than the minimum age of {connection.min_age_seconds} s; taken by a later run", ""
    limit = ingestor.settings.max_file_bytes
    if base.over_limit(remote, limit):  # recorded once, never fetched (a fetch would stop anyway)
        return base.too_large("", remote.path, limit).reason, TOO_LARGE
    if settled is None:
        with db.connect() as con:
            settled = Settled.of(con, connection.id, [remote.path])
    earlier = settled.taken_before(remote.path, remote.size, remote.mtime, by_day=remote.time_by_day)
    if earlier is None:
        return None, ""
    if earlier.state in ("rejected", "discarded"):
        # The same bytes would fail the same way (or be held again against the reviewer's
        # decision): wait for the partner to send a new file.
        return f"{earlier.state} in run {earlier.run_id} ({earlier.message}); send a corrected file", REJECTED
    taken = TAKEN if earlier.state in DONE_STATES else ""
    return f"already taken in run {earlier.run_id} (same path, size and time)", taken
