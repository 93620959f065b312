"""What our hosted SFTP/FTP servers need from the rest of ConnectBatch, in one place.

The protocol servers only speak their protocol. They ask the gateway who a login is
(`authenticate`), where that login may read and write (`Account.home`, `writable`), and
tell it when an upload is complete (`upload_complete`), which ingests the file in a worker
thread so an upload never waits for parsing. Homes:
- inbound push connections: `<home>/push/<connection id>/`, writable, uploads ingested;
- outbound "Pull from us" connections: `<home>/outbound/<connection id>/`, read-only, where
  results files and exports are written.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from connectbatch.models import Connection, Direction, Method, Methodology, Run
from connectbatch.secrets import check_password, hash_password
from connectbatch.services import Services
from connectbatch.store import credentials as credential_store
from connectbatch.transfer.naming import is_in_flight

log = logging.getLogger("connectbatch.transfer.push")

_DUMMY_HASH = hash_password("not-a-real-login")


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


class Gateway:
    def __init__(self, services: Services, workers: int = 2) -> None:
        self.services = services
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="push-ingest")
        self._pending: set[Future[Run | None]] = set()
        self._lock = threading.Lock()
        # Runs of one connection update the same rows (its status, its ledger): DuckDB
        # rejects such concurrent transactions ("Conflict on update"), so one at a time.
        self._connection_locks: dict[int, threading.Lock] = {}

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account for a provisioned login, or None (wrong user or password alike)."""
        with self.services.db.connect() as con:
            found = credential_store.by_username(con, username)
        if found is None:
            check_password(password, _DUMMY_HASH)  # same cost: timing does not reveal users
            return None
        if not check_password(password, found[1]):
            return None
        credential, _hash = found
        try:
            connection = self.services.connection(credential.connection_id)
        except LookupError:
            return None
        return self.account(username, connection)

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
        try:
            connection = self.services.connection(credential.connection_id)
        except LookupError:
            return None
        return self.account(username, connection)

    def account(self, username: str, connection: Connection) -> Account:
        settings = self.services.settings
        if connection.direction is Direction.OUTBOUND:
            home, writable = settings.outbound / str(connection.id), False
        else:
            home, writable = settings.home / "push" / str(connection.id), True
        home.mkdir(parents=True, exist_ok=True)
        return Account(
            username=username,
            connection_id=connection.id,
            connection_name=connection.name,
            home=home.resolve(),
            writable=writable and connection.methodology is Methodology.PUSH,
            max_file_bytes=settings.max_file_bytes,
            method=connection.method,
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
        future = self._pool.submit(self._ingest, account, path)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Run | None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _ingest(self, account: Account, path: Path) -> Run | None:
        with self._lock:
            one_at_a_time = self._connection_locks.setdefault(account.connection_id, threading.Lock())
        with one_at_a_time:
            try:
                before = os.stat(path)
            except OSError:
                return None  # renamed or deleted again before we got to it
            try:
                run = self.services.ingest_file(account.connection_id, path, trigger="push")
            except Exception:
                log.exception("push ingest failed", extra={"connection_id": account.connection_id})
                return None
            # Its bytes are staged by sha256 and results go to the outbound folder, so the
            # upload can go -- unless the partner re-sent the same name meanwhile.
            with contextlib.suppress(OSError):
                after = os.stat(path)
                if (after.st_ino, after.st_size, after.st_mtime_ns) == (
                    before.st_ino, before.st_size, before.st_mtime_ns,
                ):  # fmt: skip
                    os.unlink(path)
            return run

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the ingests started so far (tests, and a clean shutdown)."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.result(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
