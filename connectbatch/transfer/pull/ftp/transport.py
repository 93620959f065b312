"""The FTP/FTPS pull transport (ftplib), registered as method ``"ftp"``: log in, list, download,
and tidy up after a run.

Partners run every kind of FTP server, so this module assumes little:

* **Passive mode** (the default): few firewalls let a server connect back (`active`: from it only).
  ftplib ignores the address in a PASV reply for the control connection's peer: a server
  behind NAT announcing its private address works, and a reply naming another host is no bounce.
* **MLSD when the server has it, LIST otherwise.** MLSD (RFC 3659) gives machine-readable
  type, size and UTC modification time in one listing. Older or minimal servers (vsftpd,
  for one) lack it; for them the folder is read with LIST (Unix or DOS style lines, or bare
  names from NLST when LIST is unreadable) and each *matching* file is asked for its exact
  SIZE (in binary mode; `probe` says when a refusal still means a file) and MDTM. Support
  is taken from FEAT, and a 500/502 reply to MLSD is believed over FEAT (some servers
  advertise MLST but refuse MLSD).
* **TLS** (`FtpSpec.tls`): explicit (AUTH TLS) or implicit (port 990), then PROT P. The data
  connection resumes the control connection's TLS session (vsftpd and other hardened servers
  refuse one that does not; plain ftplib does not). Certificates are checked against the
  system store unless `verify` is off or `ca_file` names the CA to trust.
* **One version of a file** (`_changed`): MLST, or SIZE and MDTM, in the listing's own terms
  (`probe.now`), after a download and before a delete or archive: a file written over while read, or
  replaced after it was taken, is not loaded as one, nor removed unread.

Every failure is a `TransportError` saying which host and port, which command failed and what
the server answered. The password is never part of a message.
"""

from __future__ import annotations

import datetime as dt
import ftplib
import posixpath
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from connectbatch.errors import (
    RemoteFileChangedError,
    RemoteFileRefusedError,
    TransportError,
)
from connectbatch.models import AfterSuccess
from connectbatch.transfer.base import (
    Endpoint,
    RemoteFile,
    Transport,
    after_success_action,
    changed_since,
    over_limit,
    register,
    too_large,
)
from connectbatch.transfer.naming import archived_name, is_entry_name, matches
from connectbatch.transfer.pull import stopping
from connectbatch.transfer.pull.ftp import active, failures, names, probe, reading
from connectbatch.transfer.pull.ftp.listing import (
    Entry,
    parse_ftp_time,
    parse_list_line,
    parse_mlsd_facts,
)
from connectbatch.transfer.pull.ftp.names import printable, readable
from connectbatch.transfer.pull.ftp.tls import ImplicitFTPTLS, SessionReusingFTPTLS
from connectbatch.transfer.pull.limits import too_many_entries
from connectbatch.transfer.specs import FtpSpec, FtpTls

DEFAULT_PORT = 21
IMPLICIT_TLS_PORT = 990
# Large reads keep the per-block Python overhead small next to the network time: with the
# ftplib default (8 KiB) a loopback transfer is bound by callback calls, not by the socket.
BLOCKSIZE = 1024 * 1024
# What ftplib raises: reply errors, OSError (socket, ssl, timeouts), EOFError, ValueError (newline in path).
_ERRORS: tuple[type[BaseException], ...] = (*ftplib.all_errors, ValueError)
# A kept login idle for longer than this is checked with NOOP before use: servers close idle
# control connections (vsftpd after 300 s), and a run may spend minutes parsing between calls.
IDLE_PROBE_SECONDS = 15.0
# Replies to RETR that refuse one file (gone, not readable), the login still in step:
# 450 file unavailable, 550 not found / no access, 551, 553 name not allowed.
FILE_REFUSED = ("450", "550", "551", "553")


@register("ftp")
class FtpTransport(Transport):
    """One FTP/FTPS login, opened on first use and kept for the run.

    A connection is opened lazily so that constructing a transport never touches the
    network, and it is dropped after any error that may have left the control connection
    out of step (timeouts, resets, TLS failures): the next call logs in afresh.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._port = endpoint.port or DEFAULT_PORT
        self._spec = endpoint.spec_of(FtpSpec)
        self._tls = self._spec.tls
        if endpoint.port is None and self._tls is FtpTls.IMPLICIT:
            self._port = IMPLICIT_TLS_PORT
        self._proto = "FTP" if self._tls is FtpTls.NONE else "FTPS"
        self._ftp: ftplib.FTP | None = None
        # None: not known yet. FEAT decides; a 500/502 reply to MLSD overrides FEAT.
        self._mlsd: bool | None = None
        self._mdtm = True
        self._last_used = 0.0

    # -- the Transport protocol ------------------------------------------------------------

    def list_files(self, folder: str, pattern: str) -> list[RemoteFile]:
        """The regular files in `folder` whose names match `pattern`, sorted by name.

        Folders, links to folders and in-flight names (`*.part`, `*.tmp`, ...) are left out.
        Sizes are in bytes and times are timezone-aware UTC (None when the server cannot
        tell).
        """
        folder = self._absolute(folder)
        ftp = self._connect()
        try:
            ftp.cwd(folder)
        except ftplib.error_perm as exc:
            raise self._error(
                f"CWD {folder}",
                exc,
                problem=f"folder {folder!r} does not exist or cannot be opened",
            ) from exc
        except ftplib.all_errors as exc:
            raise self._fail(f"CWD {folder}", exc) from exc

        entries: list[Entry] | None = None
        listed_by = probe.MLSD
        if self._mlsd is not False:
            entries = self._list_mlsd(ftp, folder)
        if entries is None:
            entries, listed_by = self._list_fallback(ftp, folder, pattern)
        else:  # a link MLSD lists as itself (ProFTPD): sized and timed as its target
            links = [e for e in entries if e.kind == "link" and matches(readable(e.name), pattern)]
            entries = [e for e in entries if e.kind == "file"] + self._probed(ftp, folder, links)

        # entry.name is the name as sent (`names`): the ref to fetch it by; people, the
        # ledger and the pattern see its readable text.
        found = [
            RemoteFile(
                name=readable(entry.name),
                path=posixpath.join(folder, readable(entry.name)),
                size=entry.size,
                mtime=entry.mtime,
                ref=posixpath.join(folder, entry.name),
                # A time known to the day only is matched by its date (`pull.collect`).
                extra={
                    "listed_by": probe.PROBED if entry.probed else listed_by,
                    "mtime_precision": str(entry.precision),
                },
            )
            for entry in entries
            if entry.kind == "file" and is_entry_name(entry.name) and matches(readable(entry.name), pattern)
        ]
        return sorted(found, key=lambda remote: remote.name)

    def fetch(self, remote: RemoteFile, target: Path) -> None:
        """Download `remote` in binary mode into `target` (replaced if present). A failed
        transfer, or a file changed since the listing (`_changed`), removes the partial target.
        A file the server will not send (gone since the listing, not readable by our login: a
        450/550 reply) raises RemoteFileRefusedError, so that only this file is not taken."""
        path = remote.path
        wire = remote.ref or path
        limit = self._endpoint.max_bytes
        if over_limit(remote, limit):
            assert limit is not None
            raise too_large(self._where(), path, limit)
        ftp = self._connect()
        written = 0
        try:
            with target.open("wb") as out:

                def write(block: bytes) -> None:
                    nonlocal written
                    if limit is not None and written + len(block) > limit:
                        # A server that never ends the data connection: stop at the limit.
                        self._drop()  # the RETR's reply is still due: the login is out of step
                        raise too_large(self._where(), path, limit)
                    out.write(block)
                    written += len(block)

                with self._step(f"RETR {path}"):
                    try:
                        ftp.retrbinary(f"RETR {wire}", write, blocksize=BLOCKSIZE)
                    except (ftplib.error_perm, ftplib.error_temp) as exc:
                        if str(exc)[:3] not in FILE_REFUSED:
                            raise
                        user = self._endpoint.username or "anonymous"
                        raise RemoteFileRefusedError(
                            printable(
                                f"{self._where()}: RETR {path} failed: {self._detail(exc)}: the "
                                "file was deleted or renamed since the listing, or user "
                                f"{user} may not read it"
                            )
                        ) from exc
            self._last_used = time.monotonic()
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        short = remote.size is not None and written != remote.size
        why = f"read {written} bytes, listed {remote.size}" if short else self._changed(ftp, remote, wire)
        if why:  # still being written, or written over while we read it (two versions in one copy)
            target.unlink(missing_ok=True)
            raise RemoteFileChangedError(
                f"{self._where()}: {path} changed while being fetched ({why}): is the partner "
                "still writing it?"
            )

    def after_success(self, remote: RemoteFile, action: str, archive_folder: str | None) -> None:
        """Leave, archive (rename into `archive_folder`, absolute or relative to the file's
        folder, created when missing) or delete the remote file, unless it changed since it
        was taken. An archived file never overwrites one of the same name (RNTO silently
        replaces on most servers): it gets a UTC timestamp (`naming.archived_name`)."""
        what = after_success_action(action)
        path = remote.path
        wire = remote.ref or path
        if what is AfterSuccess.LEAVE:
            return
        ftp = self._connect()
        why = self._changed(ftp, remote, wire)
        if why:  # replaced after our fetch: deleting or archiving it would lose that version
            raise RemoteFileChangedError(f"{self._where()}: {path} changed after it was taken ({why})")
        if what is AfterSuccess.DELETE:
            with self._step(f"DELE {path}"):
                ftp.delete(wire)
            return
        if not archive_folder:
            raise TransportError(f"{self._where()}: archiving {path} needs an archive folder")
        destination_folder = posixpath.normpath(posixpath.join(posixpath.dirname(path), archive_folder))
        self._ensure_folder(ftp, destination_folder)
        taken = self._names_in(ftp, destination_folder)
        name = archived_name(remote.name, taken, dt.datetime.now(dt.UTC))
        destination = posixpath.join(destination_folder, name)
        with self._step(f"RNFR {path} / RNTO {destination}"):
            ftp.rename(wire, destination)

    def close(self) -> None:
        """QUIT politely; a server that already hung up is not an error at this point."""
        ftp, self._ftp = self._ftp, None
        if ftp is None:
            return
        try:
            ftp.quit()
        except _ERRORS:
            pass
        finally:
            ftp.close()

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> ftplib.FTP:
        """The logged-in connection, opened (again) when there is none or the kept one no
        longer answers after being idle."""
        if self._ftp is not None and time.monotonic() - self._last_used > IDLE_PROBE_SECONDS:
            try:
                self._ftp.voidcmd("NOOP")
            except _ERRORS:
                self._drop()
        if self._ftp is not None:
            self._last_used = time.monotonic()
            return self._ftp
        endpoint = self._endpoint
        timeout = endpoint.timeout
        ftp: ftplib.FTP
        if self._tls is FtpTls.IMPLICIT:
            ftp = ImplicitFTPTLS(context=self._ssl_context(), timeout=timeout, encoding=names.ENCODING)
        elif self._tls is FtpTls.EXPLICIT:
            ftp = SessionReusingFTPTLS(context=self._ssl_context(), timeout=timeout, encoding=names.ENCODING)
        else:
            ftp = active.PlainFTP(timeout=timeout, encoding=names.ENCODING)
        user = endpoint.username or "anonymous"
        try:
            with self._step("connect"):
                ftp.connect(endpoint.host, self._port, timeout=timeout)
            if isinstance(ftp, ftplib.FTP_TLS) and self._tls is FtpTls.EXPLICIT:
                with self._step("AUTH TLS (TLS handshake)"):
                    ftp.auth()
            with self._step(f"login as {user!r}"):
                ftp.login(user, endpoint.password or "")
            if isinstance(ftp, ftplib.FTP_TLS):
                with self._step("PROT P"):
                    ftp.prot_p()
            ftp.set_pasv(self._spec.passive)
            with self._step("TYPE I"):
                ftp.voidcmd("TYPE I")
            self._read_features(ftp)
        except BaseException:
            ftp.close()
            raise
        self._ftp = ftp
        self._last_used = time.monotonic()
        return ftp

    def _drop(self) -> None:
        """Forget the connection without a QUIT (it is broken or out of step)."""
        stale, self._ftp = self._ftp, None
        if stale is not None:
            with suppress(OSError):
                stale.close()

    def _ssl_context(self) -> ssl.SSLContext:
        ca_file, verify = self._spec.ca_file, self._spec.verify
        try:
            context = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(
                f"{self._where()}: cannot load the CA file {ca_file!r}: {self._detail(exc)}"
            ) from exc
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return stopping.stoppable(context)

    def _read_features(self, ftp: ftplib.FTP) -> None:
        """Learn from FEAT whether MLSD and MDTM exist; a server without FEAT (500/502)
        leaves both to be tried."""
        try:
            reply = ftp.sendcmd("FEAT")
        except ftplib.error_perm:
            return
        except ftplib.all_errors as exc:
            raise self._fail("FEAT", exc) from exc
        features = {
            line.strip().split(" ", 1)[0].upper() for line in reply.splitlines()[1:-1] if line.strip()
        }
        self._mlsd = "MLST" in features or "MLSD" in features
        self._mdtm = "MDTM" in features

    # -- listing -----------------------------------------------------------------------------

    def _list_mlsd(self, ftp: ftplib.FTP, folder: str) -> list[Entry] | None:
        """MLSD of the current folder, or None when the server refuses MLSD itself."""
        entries: list[Entry] = []
        try:
            for name, facts in reading.mlsd(ftp, None, lambda: self._too_many(folder)):
                entry = parse_mlsd_facts(name, facts)
                if entry is not None:
                    entries.append(entry)
        except ftplib.error_perm as exc:
            if str(exc)[:3] in ("500", "502", "504"):
                self._mlsd = False
                return None
            raise self._error(f"MLSD {folder}", exc) from exc
        except TransportError:  # cut short (`_too_many`); TransportError is an OSError
            raise
        except ftplib.all_errors as exc:
            raise self._fail(f"MLSD {folder}", exc) from exc
        self._mlsd = True
        return entries

    def _list_fallback(self, ftp: ftplib.FTP, folder: str, pattern: str) -> tuple[list[Entry], str]:
        """LIST (or NLST when LIST lines are unreadable), then SIZE/MDTM for the files that
        matter. Only matching names are asked about: a folder with thousands of old files
        must not cost thousands of round trips."""
        with self._step(f"LIST {folder}"):
            lines = reading.lines(ftp, "LIST", lambda: self._too_many(folder))
        parsed = [parse_list_line(line) for line in lines if line.strip()]
        listed_by = "LIST"
        entries = [entry for entry in parsed if entry is not None]
        if parsed and not entries:
            listed_by = "NLST"
            with self._step(f"NLST {folder}"):
                names = reading.nlst(ftp, None, lambda: self._too_many(folder))
            entries = [Entry(posixpath.basename(name), "unknown", None, None) for name in names]

        kinds = ("file", "link", "unknown")
        wanted = [e for e in entries if e.kind in kinds and matches(readable(e.name), pattern)]
        return self._probed(ftp, folder, wanted), listed_by

    def _probed(self, ftp: ftplib.FTP, folder: str, entries: list[Entry]) -> list[Entry]:
        """`entries` as files to take, sized and timed (a folder, a dead link left out: `probe`)."""
        if entries:  # LIST, NLST and MLSD leave the session in TYPE A, where servers refuse SIZE
            with self._step("TYPE I"):
                ftp.voidcmd("TYPE I")
        found: list[Entry | None] = []
        for entry in entries:
            with self._step(f"SIZE {posixpath.join(folder, entry.name)}"):
                found.append(probe.listed_file(ftp, folder, entry, self._mdtm_of))
        return [entry for entry in found if entry is not None]

    def _changed(self, ftp: ftplib.FTP, remote: RemoteFile, wire: str) -> str | None:
        """How the file at `wire` now differs from the listed `remote` (`base.changed_since`,
        `probe.now`), or None when it looks the same or the server cannot say."""
        with self._step(f"checking {remote.path}"):
            return changed_since(remote, *probe.now(ftp, remote, wire, self._mdtm_of))

    def _mdtm_of(self, ftp: ftplib.FTP, path: str) -> dt.datetime | None:
        if not self._mdtm:
            return None
        try:
            reply = ftp.sendcmd(f"MDTM {path}")
        except ftplib.error_perm as exc:
            if str(exc)[:3] in ("500", "502"):
                self._mdtm = False
            return None
        except ftplib.all_errors as exc:
            raise self._fail(f"MDTM {path}", exc) from exc
        parts = reply.split(maxsplit=1)
        return parse_ftp_time(parts[1]) if len(parts) == 2 and parts[0] == "213" else None

    def _names_in(self, ftp: ftplib.FTP, folder: str) -> set[str]:
        """Every name in `folder` (any type), to avoid overwriting on archive."""
        try:
            if self._mlsd:
                return {name for name, _facts in reading.mlsd(ftp, folder, lambda: self._too_many(folder))}
            names = reading.nlst(ftp, folder, lambda: self._too_many(folder))
            return {posixpath.basename(name.rstrip("/")) for name in names}
        except ftplib.error_perm as exc:
            if str(exc)[:3] in ("450", "550"):  # some servers answer NLST of an empty folder so
                return set()
            raise self._error(f"listing {folder}", exc) from exc
        except TransportError:
            raise
        except ftplib.all_errors as exc:
            raise self._fail(f"listing {folder}", exc) from exc

    def _ensure_folder(self, ftp: ftplib.FTP, folder: str) -> None:
        """CWD to check, MKD each missing level; a concurrent creator is not an error."""
        if self._can_cwd(ftp, folder):
            return
        current = "/"
        for part in [part for part in folder.split("/") if part]:
            current = posixpath.join(current, part)
            if self._can_cwd(ftp, current):
                continue
            try:
                ftp.mkd(current)
            except ftplib.error_perm as exc:
                if not self._can_cwd(ftp, current):
                    raise self._error(f"MKD {current}", exc) from exc
            except ftplib.all_errors as exc:
                raise self._fail(f"MKD {current}", exc) from exc

    def _can_cwd(self, ftp: ftplib.FTP, folder: str) -> bool:
        try:
            ftp.cwd(folder)
        except ftplib.error_perm:
            return False
        except ftplib.all_errors as exc:
            raise self._fail(f"CWD {folder}", exc) from exc
        return True

    # -- errors ------------------------------------------------------------------------------

    def _absolute(self, folder: str) -> str:
        if not folder or not folder.startswith("/"):
            raise TransportError(
                f"{self._where()}: the folder must be an absolute path starting with '/', got {folder!r}"
            )
        return posixpath.normpath(folder) if folder != "/" else "/"

    def _too_many(self, folder: str) -> TransportError:
        """A listing cut at `limits.MAX_LISTED_ENTRIES`; its closing reply is still due."""
        self._drop()
        return TransportError(printable(too_many_entries(self._where(), folder)))

    def _where(self) -> str:
        return f"{self._proto} {self._endpoint.host}:{self._port}"

    @contextmanager
    def _step(self, command: str) -> Iterator[None]:
        """Turn whatever ftplib, socket or ssl raise during `command` into a TransportError."""
        try:
            yield
        except TransportError:
            raise
        except _ERRORS as exc:
            raise self._fail(command, exc) from exc

    def _fail(self, command: str, exc: BaseException) -> TransportError:
        """The error for `command`. Drops the connection unless the server answered in
        order: a 4xx/5xx reply leaves the control connection usable, a timeout, reset or
        TLS failure may not, and the next call should log in afresh."""
        answered = isinstance(exc, ftplib.error_perm | ftplib.error_temp) and not str(exc).startswith("421")
        if not answered:
            self._drop()
        return self._error(command, exc)

    def _error(self, command: str, exc: BaseException, problem: str = "") -> TransportError:
        return failures.failure(self._proto, self._endpoint, self._port, command, exc, problem)

    def _detail(self, exc: BaseException) -> str:
        return failures.detail(self._proto, self._endpoint, self._port, exc)
