"""What our hosted SFTP/FTP servers need from the rest of ConnectBatch, in one place.

The protocol servers only speak their protocol. They ask the gateway who a login is
(`authenticate`), where that login may read and write (`Account.home`, `writable`), and
tell it when an upload is complete (`upload_complete`), which ingests the file in a worker
thread so an upload never waits for parsing. Uploads of one connection that finish while
an earlier one of it is being ingested wait, then go in together (`Services.ingest_files`:
each its own run, one commit for their ledger entries and one for their loads; at most
GROUP_MAX_FILES files or GROUP_MAX_BYTES bytes at a time), so a partner sending a hundred
small files is not held to one commit round per file; one connection's turns never hold
a worker waiting for each other (`_ingest_waiting`). Homes:
- inbound push connections: `<home>/push/<connection id>/`, writable, uploads ingested;
- outbound "Pull from us" connections: `<home>/outbound/<connection id>/`, read-only, its
  exports; an inbound connection's results go to its own, which no login maps (mailed).

A partner tests a file before go-live in a `dry-run/` folder it makes in its push home: an
upload there is never ingested, but checked as the connection would load it, storing nothing
(`pipeline.dryrun`, on a worker of its own); `<file>.results.csv` appears beside it and the
report is mailed to the return address. The servers' size limit applies there as anywhere.

A provisioned login several push connections of one partner share (credentials reuse) has
one home, its owner's (`<home>/push/<owner connection id>/`); each finished upload goes to
the one connection whose folder and file pattern match it (`route`). A file matching none,
or several, is not ingested: a line in those connections' history says why, and the file
stays where it is (never dropped, never ingested twice). A login of one connection takes the
uploads its file pattern matches; another file (a `_SUCCESS` marker, a checksum, a `.txt` on a
`*.csv` connection) is left where it is with a line in the history, instead of becoming a
Failed run that marks the connection Failed.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from connectbatch.escaping import visible
from connectbatch.models import Connection, Credential, Direction, Method, Methodology, Run, RunStatus
from connectbatch.pipeline import dryrun, group, history
from connectbatch.secrets import check_password, hash_password
from connectbatch.services import Services
from connectbatch.settings import PUSH_QUOTA_BYTES
from connectbatch.store import connections as connection_store
from connectbatch.store import credentials as credential_store
from connectbatch.store import events as event_store
from connectbatch.store.db import private_dir
from connectbatch.transfer.naming import hidden_from_readers, is_in_flight, matches
from connectbatch.transfer.push.completed import Claimed, Completed, Waiting
from connectbatch.transfer.push.partials import LOADING
from connectbatch.transfer.push.quota import PushQuota
from connectbatch.transfer.push.routing import dry_run_folder, is_dry_run, route
from connectbatch.transfer.push.writers import OpenWrites

# History lines of an upload a shared login made that no single connection takes.
PUSH_UNROUTED = "push_unrouted"
# History lines of an upload whose name the connection's file pattern does not match.
PUSH_UNMATCHED = "push_unmatched"
# History lines of uploads refused because the push folder would pass its quota (`quota`).
PUSH_OVER_QUOTA = event_store.PUSH_OVER_QUOTA

log = logging.getLogger("connectbatch.transfer.push")

_DUMMY_HASH = hash_password("not-a-real-login")

# The most waiting uploads of one connection ingested together: a group's computed files are
# held in memory until it loads, so a burst of big files goes in several turns (the same
# limits as the files a pull fetches; here so tests can lower them for the gateway alone).
GROUP_MAX_FILES = group.GROUP_MAX_FILES
GROUP_MAX_BYTES = group.GROUP_MAX_BYTES

# How uploads are taken in: the routed uploads of one connection (in arrival order) -> their
# runs, in the same order (None where no run was made).
Take = Callable[[int, list[Path]], Sequence[Run | None]]


@dataclass(frozen=True)
class Account:
    """A logged-in partner: which connection, which folder, what they may do there."""

    username: str
    connection_id: int
    connection_name: str
    home: Path
    writable: bool
    max_file_bytes: int
    # The connection's transfer method: a login works only over its own (an SFTP push login
    # is refused by the FTP server and vice versa); the servers check it.
    method: Method = Method.SFTP
    # A login shared by several push connections: their ids (uploads are routed among them
    # by folder and pattern); empty when the login belongs to one connection.
    routes: tuple[int, ...] = ()
    # Bytes the files waiting in `home` may take together (`quota`).
    push_quota_bytes: int = PUSH_QUOTA_BYTES
    # The provisioned login's credential: a session asks `Gateway.revoked` whether it is still
    # there before it writes (None: an account not made from a credential).
    credential_id: int | None = None

    def shows(self, name: str) -> bool:
        """Whether this login may see the entry `name`: a read-only login never sees a file
        we have not published yet (`naming.hidden_from_readers`); a push login sees its own."""
        return self.writable or not hidden_from_readers(name)


class Gateway:
    def __init__(
        self,
        services: Services,
        workers: int = 2,
        ingest: Take | None = None,
    ) -> None:
        self.services = services
        # How routed uploads are taken in: ingested here as a group (embedded), or each staged,
        # recorded and handed to the workers by the coordinator (distributed mode).
        self._take: Take = ingest or (lambda cid, paths: services.ingest_files(cid, list(paths), "push"))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="push-ingest")
        # Dry runs on a worker of their own: a partner's big trial uploads held others' loads.
        self._trials = ThreadPoolExecutor(max_workers=1, thread_name_prefix="push-dry-run")
        self._pending: set[Future[Run | None]] = set()
        self._lock = threading.Lock()
        # Finished uploads per connection, each with the future its run is given to.
        self._waiting: dict[int, list[Waiting]] = {}
        # Runs of one connection update the same rows (its status, its ledger): DuckDB
        # rejects such concurrent transactions ("Conflict on update"), so one at a time.
        self._connection_locks: dict[int, threading.Lock] = {}
        # Bytes waiting in each push folder, for both servers (a connection's several logins,
        # and the connections sharing a login, fill the same folder).
        self.quota = PushQuota()
        # Files open for writing on both servers: never read or removed while they are.
        self.writes = OpenWrites.of(services.settings.home / "push")
        # Finished uploads not taken in yet, noted on disk: taken in again after a crash (`replay`).
        self.completed = Completed(services.settings.home / "push")

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account for a provisioned login, or None (wrong user or password alike)."""
        with self.services.db.connect() as con:
            found = credential_store.by_username(con, username)
        if found is None:
            check_password(password, _DUMMY_HASH)  # same cost: timing does not reveal users
            return None
        return self._account_of(username, found[0]) if check_password(password, found[1]) else None

    def authenticate_key(self, username: str, key_type: str, key_blob: bytes) -> Account | None:
        """The account whose authorized public keys (OpenSSH lines) hold this key, or None."""
        with self.services.db.connect() as con:
            found = credential_store.keys_by_username(con, username)
        if found is None:
            return None
        credential, lines = found
        wanted = (key_type, base64.b64encode(key_blob).decode("ascii"))
        if not any(tuple(line.split()[:2]) == wanted for line in lines):
            return None
        return self._account_of(username, credential)

    def _account_of(self, username: str, credential: Credential) -> Account | None:
        """The account of a provisioned login: its connection's, or -- shared by several push
        connections -- its owner's home, routing uploads among them."""
        with self.services.db.connect() as con:
            ids = credential_store.connection_ids(con, credential.id)
        try:
            owner = self.services.connection(credential.connection_id)
        except LookupError:
            return None
        account = replace(self.account(username, owner), credential_id=credential.id)
        if len(ids) > 1 and owner.methodology is Methodology.PUSH:
            account = replace(account, routes=tuple(ids))
        return account

    def revoked(self, account: Account) -> str | None:
        """Why a logged-in session may no longer act (its login's credential or its
        connection was deleted since it logged in: the account is resolved once, at login),
        or None. One look at the store, made when a session opens a file, lists a folder or
        completes an upload, so a deletion stops the sessions already in too."""
        with self.services.db.connect() as con:
            found = credential_store.provisioned_id(con, account.username)
            connection_there = connection_store.exists(con, account.connection_id)
        if not connection_there:
            what = f"the connection of login {account.username!r} was deleted"
        elif found is None or (account.credential_id is not None and found != account.credential_id):
            what = f"login {account.username!r} was revoked"
        else:
            return None
        return f"permission denied: {what}; nothing more is accepted and the session is closed"

    def account(self, username: str, connection: Connection) -> Account:
        settings = self.services.settings
        if connection.direction is Direction.OUTBOUND:
            home, writable = settings.outbound / str(connection.id), False
        else:
            home, writable = settings.home / "push" / str(connection.id), True
        private_dir(home)  # the push root and every home 0700: other users list no partner's files
        return Account(
            username=username,
            connection_id=connection.id,
            connection_name=connection.name,
            home=home.resolve(),
            writable=writable and connection.methodology is Methodology.PUSH,
            max_file_bytes=settings.max_file_bytes,
            method=connection.method,
            push_quota_bytes=settings.push_quota_bytes,
        )

    def upload_complete(self, account: Account, path: Path) -> Future[Run | None] | None:
        """A file finished uploading (closed, or renamed from .part): ingest it. Files still
        named as in flight (`naming.is_in_flight`, the same names a pull skips), and files
        outside the account's home, are ignored."""
        path = Path(path)
        if not account.writable or is_in_flight(path.name):
            return None
        if account.home not in path.resolve().parents:
            return None
        connection_id = account.connection_id
        trial = is_dry_run(account, path)
        if account.routes:
            routed = self._route(account, path, trial)
            if routed is None:
                return None
            connection_id = routed
        elif not trial and not self._pattern_takes(connection_id, path):
            return None
        stamp = self.writes.stamp(path)
        if not trial:
            return self._take_in(connection_id, path, stamp, self.completed.note(connection_id, path))
        return self._track(self._trials.submit(self._dry_run, account, path, connection_id, stamp))

    def _take_in(self, connection_id: int, path: Path, stamp: int, note: Path | None) -> Future[Run | None]:
        future: Future[Run | None] = Future()
        with self._lock:
            self._waiting.setdefault(connection_id, []).append(Waiting(path, future, stamp, note))
        self._pool.submit(self._ingest_waiting, connection_id)  # one turn per upload
        return self._track(future)

    def _track(self, future: Future[Run | None]) -> Future[Run | None]:
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def replay(self) -> list[Future[Run | None]]:
        """Take in the finished uploads a killed process, or an ingest that failed (the
        database busy), left noted (`completed`): at the start, then hourly."""
        taken = []
        for noted in self.completed.waiting():
            log.info("taking in a finished upload not taken in before: %s", noted.path)
            taken.append(
                self._take_in(noted.connection_id, noted.path, self.writes.stamp(noted.path), noted.note)
            )
        return taken

    def upload_over_quota(self, account: Account, path: Path) -> None:
        """A server refused an upload for the push quota (and removed its partial file): a
        line in the connection's history, written by the pool so that the FTP server's loop
        never waits on the database (`wait()` waits for it too)."""
        try:
            future: Future[Run | None] = self._pool.submit(self._over_quota, account, visible(path.name))
        except RuntimeError:  # shutting down: the log says it (the servers stop first)
            log.warning("upload refused for the push quota, not recorded: %s", visible(path.name))
            return
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _over_quota(self, account: Account, name: str) -> None:
        try:
            history.push_over_quota(
                self.services.db, account.connection_id, name, account.push_quota_bytes, self.services.clock()
            )
        except Exception:  # the server thread must go on; the log keeps the reason
            log.exception("could not record an upload refused for the push quota: %s", name)

    def _forget(self, future: Future[Run | None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _route(self, account: Account, path: Path, trial: bool = False) -> int | None:
        """The one connection of a shared login that takes this upload; None (recorded in
        the history of the connections concerned) when none or several match. A dry run
        (`trial`) is routed as the same file uploaded beside its `dry-run/` folder."""
        relative = PurePosixPath(path.resolve().relative_to(account.home).as_posix())
        if trial:
            relative = PurePosixPath(*[p for p in relative.parts if not dry_run_folder(p)])
        connections: list[Connection] = []
        for connection_id in account.routes:
            with contextlib.suppress(LookupError):
                connections.append(self.services.connection(connection_id))
        chosen = route(connections, relative)
        if len(chosen) == 1:
            return chosen[0].id
        shown = visible(str(relative))
        if chosen:
            names = ", ".join(repr(visible(c.name)) for c in chosen)
            reason = (
                f"{shown}: uploaded with a login these connections share, and it matches the folder "
                f"and pattern of {len(chosen)} of them ({names}); not ingested, so it is not loaded "
                "twice. Make the patterns or folders distinct, then upload it again."
            )
        else:
            reason = (
                f"{shown}: uploaded with a shared login, but no connection using it has a folder "
                "and pattern that match it; not ingested. Check the file name, or a connection's "
                "folder and pattern."
            )
        log.warning("push upload not routed: %s", reason)
        self._not_taken([c.id for c in chosen or connections if c.id is not None], PUSH_UNROUTED, reason)
        return None

    def _not_taken(self, connection_ids: list[int], kind: str, reason: str) -> None:
        """A line in these connections' history saying why an upload was not ingested."""
        now = self.services.clock()
        try:
            with self.services.db.transaction() as con:
                for connection_id in connection_ids:
                    event_store.record(con, connection_id, kind, reason, now)
        except Exception:  # the server thread must go on; the log keeps the reason
            log.exception("could not record a push upload that was not taken: %s", reason)

    def _pattern_takes(self, connection_id: int, path: Path) -> bool:
        """Whether the connection's file pattern matches the upload's name; when not, a line
        in its history says so and the file stays where it is."""
        try:
            connection = self.services.connection(connection_id)
        except LookupError:  # deleted meanwhile: ingesting says so
            return True
        pattern = connection.pattern or "*"
        if matches(path.name, pattern):
            return True
        reason = (
            f"{visible(path.name)}: uploaded, but its name does not match the connection's file "
            f"pattern {visible(pattern)!r}; not ingested, left where it is (for "
            "CONNECTBATCH_PARTIAL_UPLOAD_GRACE_HOURS). Upload it under a matching name, or change "
            "the connection's file pattern."
        )
        log.info("push upload not taken: %s", reason)
        self._not_taken([connection_id], PUSH_UNMATCHED, reason)
        return False

    def _ingest_waiting(self, connection_id: int) -> None:
        """One turn of a connection's ingests: the uploads waiting for it when its turn comes
        (none when an earlier turn took them), ingested together. Every future gets its run,
        or None when the upload went meanwhile, is being written again (the newer upload's
        own completion queues it again), or its ingest failed (logged; the upload stays). A turn
        never waits in the pool for the connection's running one (a partner's follow-ups held
        both workers, so every other partner waited for its whole big ingest): it returns, and
        the running turn queues a new one at the back when uploads still wait."""
        with self._lock:
            one_at_a_time = self._connection_locks.setdefault(connection_id, threading.Lock())
        if not one_at_a_time.acquire(blocking=False):
            return  # the running turn looks for waiting uploads after it lets go
        try:
            taken = self._next_group(connection_id)
            try:
                self._ingest_group(connection_id, taken)
            except Exception:  # the pool would keep it unread: said here, the uploads stay
                log.exception("push ingest failed", extra={"connection_id": connection_id})
            finally:  # never leave a caller waiting
                for upload in taken:
                    if not upload.future.done():
                        upload.future.set_result(None)
        finally:
            one_at_a_time.release()
        if self._waiting.get(connection_id):  # after letting go: none whose turn found it taken stays
            with contextlib.suppress(RuntimeError):  # shutting down: `replay` takes it next start
                self._pool.submit(self._ingest_waiting, connection_id)

    def _next_group(self, connection_id: int) -> list[Waiting]:
        """The oldest waiting uploads of the connection, up to GROUP_MAX_FILES files and
        GROUP_MAX_BYTES bytes (at least one); the rest wait for a later turn."""
        taken: list[Waiting] = []
        size = 0
        with self._lock:
            waiting = self._waiting.get(connection_id, [])
            while waiting and len(taken) < GROUP_MAX_FILES:
                with contextlib.suppress(OSError):
                    size += os.stat(waiting[0].path).st_size
                if taken and size > GROUP_MAX_BYTES:
                    break
                taken.append(waiting.pop(0))
            if not waiting:
                self._waiting.pop(connection_id, None)
        return taken

    def _ingest_group(self, connection_id: int, taken: list[Waiting]) -> None:
        # The same name uploaded again before its turn: one ingest of its latest version.
        latest: dict[Path, Waiting] = {}
        futures: dict[Path, list[Future[Run | None]]] = {}
        for upload in taken:
            latest.pop(upload.path, None)  # kept in arrival order of the latest
            latest[upload.path] = upload
            futures.setdefault(upload.path, []).append(upload.future)
        claimed: list[Claimed] = []
        for path, upload in latest.items():
            found = self._claim(path, upload.stamp)
            if found is None:  # written again, renamed or deleted before we got to it
                for future in futures[path]:
                    future.set_result(None)
            else:
                claimed.append(replace(found, futures=futures[path]))
        try:
            self._load(connection_id, claimed)
        finally:  # the upload has gone by the time its caller learns its run
            kept = {item.path for item in claimed if not item.loaded}  # noted still: taken again
            for item in claimed:
                self._finish(item)
                for future in item.futures:
                    future.set_result(item.run)
            for upload in taken:
                self.completed.settle(upload.note, taken=upload.path not in kept)

    def _claim(self, path: Path, stamp: int) -> Claimed | None:
        """Give a waiting upload a private name for its ingest (`writers.OpenWrites.claim`):
        never one a session is writing, nor one written again since it was queued."""
        aside = self.services.settings.home / "push" / LOADING / uuid.uuid4().hex / path.name
        inode = self.writes.claim(path, stamp, aside)
        if inode is None:
            with contextlib.suppress(OSError):
                aside.parent.rmdir()
            return None
        return Claimed(path, aside, inode)

    def _finish(self, item: Claimed) -> None:
        """A loaded upload goes (its bytes are staged by sha256, results go to the outbound
        folder); one not loaded stays where the partner left it. Its private name goes."""
        self.writes.finish(item.path, item.inode, loaded=item.loaded)
        with contextlib.suppress(OSError):
            os.unlink(item.aside)
        with contextlib.suppress(OSError):
            item.aside.parent.rmdir()

    def _load(self, connection_id: int, claimed: list[Claimed]) -> None:
        if not claimed:
            return
        try:
            runs = list(self._take(connection_id, [item.aside for item in claimed]))
        except LookupError as exc:
            # An upload deleted since it was claimed (or the connection) refuses the whole
            # call before anything is recorded: each of the others is taken alone.
            if len(claimed) == 1:
                log.warning("push upload not ingested: %s", exc, extra={"connection_id": connection_id})
                return
            for item in claimed:
                if item.aside.exists():  # one deleted meanwhile is not tried again
                    self._load(connection_id, [item])
            return
        except Exception:
            log.exception("push ingest failed", extra={"connection_id": connection_id})
            return
        for item, run in zip(claimed, runs, strict=True):
            item.loaded, item.run = not self._unstaged(run), run

    def _unstaged(self, run: Run | None) -> bool:
        """Whether a run failed before its upload's bytes were staged (a full disk): its retry
        has nothing to run, so the upload stays, noted, for `replay` to take in again."""
        if run is None or run.status is not RunStatus.FAILED:
            return False
        return any(not f.sha256 for f in self.services.run_files(run.id))

    def _dry_run(
        self, account: Account, path: Path, connection_id: int | None = None, stamp: int = 0
    ) -> Run | None:
        """A file dropped in a `dry-run/` folder: checked as the connection would load it,
        nothing stored (`pipeline.dryrun`); the results file is written beside it and mailed
        to the return address; then the upload goes, as an ingested one does (and, as one,
        never while a session writes it)."""
        connection_id = account.connection_id if connection_id is None else connection_id
        item = self._claim(path, stamp)
        if item is None:
            return None
        try:
            dry = self.services.dry_run_file(
                connection_id, item.aside, path.name, source=account.method.value
            )
            dryrun.write_beside(dry, path.parent)
            to = self.services.dry_run_return_address(dry.connection)
            dryrun.mail(self.services.outbox, to, dry)
        except Exception:
            log.exception("push dry run failed", extra={"connection_id": connection_id})
            return None
        else:
            item.loaded = True
            return None
        finally:
            self._finish(item)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the ingests started so far (tests, and a clean shutdown)."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.result(timeout=timeout)

    def close(self) -> None:
        self._trials.shutdown(wait=True)
        self._pool.shutdown(wait=True)
