"""The SFTP pull transport (paramiko), registered as method ``"sftp"``: connect, check the host
key, log in, list, download, and tidy up after a run.

A transport object holds one SSH connection; use it from one thread at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import logging
import os
import posixpath
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import paramiko

from connectbatch.errors import RemoteFileChangedError, TransportError
from connectbatch.models import AfterSuccess
from connectbatch.transfer import paramiko_log
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
from connectbatch.transfer.errors import describe_network_error
from connectbatch.transfer.naming import archived_name, is_entry_name, matches
from connectbatch.transfer.pull.sftp.download import (
    MAX_PACKET_SIZE,
    WINDOW_SIZE,
    RequestIds,
    download,
    refused,
    request_size,
)
from connectbatch.transfer.pull.sftp.keys import (
    HOST_KEY_ALGORITHMS,
    check_host_key,
    load_private_key,
    parse_host_key,
)
from connectbatch.transfer.pull.sftp.listing import list_folder, ref_of, regular_file, wire_path
from connectbatch.transfer.specs import SftpSpec

log = logging.getLogger("connectbatch.transfer.pull.sftp")
# paramiko's own log (a traceback per failed handshake): under ours, at DEBUG; failures are
# reported as TransportError (transfer/paramiko_log.py).
PARAMIKO_LOG = paramiko_log.quiet("connectbatch.transfer.pull.sftp.paramiko")

DEFAULT_PORT = 22
KEEPALIVE_SECONDS = 30

# AES-GCM first: paramiko's AES-CTR needs an HMAC pass per packet, GCM authenticates in the
# same OpenSSL call. The rest keeps paramiko's order, so old servers still connect.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


@register("sftp")
class SftpTransport(Transport):
    """One SSH/SFTP session to a partner's server. Connects (and checks the host key) on
    construction, so configuration and connectivity problems surface when the run opens it."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.spec = endpoint.spec_of(SftpSpec)
        self.host = endpoint.host
        self.port = endpoint.port or DEFAULT_PORT
        self.timeout = float(endpoint.timeout)
        self.host_key: str | None = None
        self.host_key_fingerprint: str | None = None
        self.server_version: str | None = None
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._request_ids = RequestIds()

        if not self.host:
            raise TransportError("no host name given for the SFTP connection")
        if not endpoint.username:
            raise TransportError(f"no user name given for the SFTP connection to {self.where}")
        if not endpoint.password and not endpoint.private_key:
            raise TransportError(f"no password or private key given for the SFTP connection to {self.where}")
        self._pinned = parse_host_key(endpoint.host_key) if endpoint.host_key else None
        self._pkey = (
            load_private_key(endpoint.private_key, endpoint.key_passphrase) if endpoint.private_key else None
        )
        try:
            self._connect()
        except BaseException:
            self.close()
            raise

    # --- public API ------------------------------------------------------------------------------

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def cipher(self) -> str | None:
        """The negotiated cipher (server to client), for diagnostics and the benchmark."""
        return self._transport.remote_cipher if self._transport is not None else None

    def list_files(self, folder: str, pattern: str) -> list[RemoteFile]:
        """Regular files directly in `folder` whose names match `pattern`, oldest first.

        Not recursive; folders, links to folders or to nothing and in-flight names (`*.part`,
        ...) are left out: what we take must be a finished file the partner put there for us.
        A link to a file counts as that file (`listing.regular_file`)."""
        self._check_folder(folder)
        with self._errors(f"listing folder {folder}"):
            try:
                entries = list_folder(self._client(), wire_path(folder), f"SFTP {self.where}")
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    if self._exists(self._client(), folder):  # OpenSSH says so for a file too
                        raise TransportError(f"{folder} on host {self.host} is a file, not a folder") from exc
                    raise TransportError(f"folder {folder} does not exist on host {self.host}") from exc
                if exc.errno == errno.EACCES:
                    raise TransportError(
                        f"permission denied listing folder {folder} on host {self.host} "
                        f"(user {self.endpoint.username})"
                    ) from exc
                raise
        found: list[RemoteFile] = []
        for listed in entries:
            if not (is_entry_name(listed.name) and matches(listed.name, pattern)):
                continue
            with self._errors(f"listing folder {folder}"):
                attributes = regular_file(self._client(), folder, listed)
            if attributes is None:
                continue
            path = posixpath.join(folder, listed.name)
            found.append(
                RemoteFile(
                    listed.name, path, attributes.st_size, _mtime(attributes), ref=ref_of(folder, listed.raw)
                )
            )
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        found.sort(key=lambda remote: (remote.mtime or epoch, remote.name))
        return found

    def fetch(self, remote: RemoteFile, target: Path) -> None:
        """Download `remote` to `target` with pipelined reads (see the module docstring).

        The local file is removed again if the transfer fails, so a partial download is never
        mistaken for the file. If the remote size differs from the listed size the file was
        still changing: fail, and the next run lists it afresh. A file the server will not
        open for us (gone since the listing, not readable by our login) raises
        RemoteFileRefusedError: that file alone is not taken."""
        path = remote.path
        target = Path(target)
        limit = self.endpoint.max_bytes
        if over_limit(remote, limit):
            assert limit is not None
            raise too_large(f"SFTP {self.where}", path, limit)
        client = self._client()
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            raise TransportError(
                f"cannot write the downloaded file to {target}: {self._describe(exc)}"
            ) from exc
        ok = False
        try:
            try:
                with self._errors(f"downloading {path}"):
                    try:
                        handle = client.open(wire_path(remote.ref or path), "rb")
                    except OSError as exc:
                        refusal = refused(exc, self.host, self.where, path, self.endpoint.username)
                        if refusal is None:  # no answer about the file: the connection failed
                            raise
                        raise refusal from exc
                    try:
                        size = remote.size if remote.size is not None else handle.stat().st_size
                        channel = client.get_channel()
                        assert channel is not None
                        received = download(
                            channel,
                            handle.handle,
                            size or 0,
                            fd,
                            size=request_size(self.spec.request_size, self.server_version),
                            ids=self._request_ids,
                            where=self.where,
                            path=path,
                            abandon=self._discard_sftp,
                            limit=limit,
                        )
                        after = handle.stat()  # the open file's own: rewritten while we read it?
                    finally:
                        with contextlib.suppress(Exception):
                            handle.close()
            finally:
                os.close(fd)
            if remote.size is not None and received != remote.size:
                raise RemoteFileChangedError(
                    f"file {path} on host {self.host} changed while being fetched (listed "
                    f"{remote.size} bytes, read {received}): is the partner still writing it?"
                )
            why = changed_since(remote, after.st_size, _mtime(after))
            if why:  # same size, written over while we read it: two versions in one copy
                raise RemoteFileChangedError(
                    f"file {path} on host {self.host} changed while being fetched ({why}): is the "
                    "partner still writing it?"
                )
            if remote.mtime is not None:
                stamp = remote.mtime.timestamp()
                os.utime(target, (stamp, stamp))
            ok = True
        finally:
            if not ok:
                with contextlib.suppress(OSError):
                    target.unlink()

    def after_success(
        self, remote: RemoteFile, action: AfterSuccess | str, archive_folder: str | None
    ) -> None:
        """Tidy up the remote file once its run succeeded: leave it, archive it (rename into
        `archive_folder`, created if missing; a relative folder is taken relative to the file's
        own folder), or delete it. An archive never overwrites: a name already taken there gets
        a UTC time stamp (`transfer.naming.archived_name`)."""
        path = remote.path
        wire = wire_path(remote.ref or path)
        action = after_success_action(action)
        if action is AfterSuccess.LEAVE:
            return
        client = self._client()
        self._still_ours(client, remote, wire)
        if action is AfterSuccess.DELETE:
            with self._errors(f"deleting {path}"):
                try:
                    client.remove(wire)
                except OSError as exc:
                    if exc.errno != errno.ENOENT:  # already gone is what we wanted
                        raise
            return
        if not archive_folder:
            raise TransportError("archiving needs an archive folder, and none is configured")
        folder = posixpath.normpath(
            posixpath.join(posixpath.dirname(path), archive_folder)
        )  # an absolute archive_folder wins in join
        with self._errors(f"archiving {path} to {folder}"):
            self._makedirs(client, folder)
            name = archived_name(
                remote.name,
                lambda candidate: self._exists(client, posixpath.join(folder, candidate)),
                dt.datetime.now(dt.UTC),
            )
            destination = posixpath.join(folder, name)
            client.rename(wire, wire_path(destination))
        log.info("archived %s to %s on %s", path, destination, self.where)

    def _still_ours(self, client: paramiko.SFTPClient, remote: RemoteFile, wire: str | bytes) -> None:
        """Raise RemoteFileChangedError when the file at the path is no longer the version we
        took: the partner replaced it after our fetch, and deleting or archiving it would lose
        that version unread."""
        with self._errors(f"checking {remote.path}"):
            try:
                now = client.stat(wire)
            except OSError as exc:
                if exc.errno == errno.ENOENT:  # gone: deleting it is done, archiving says why not
                    return
                raise
        why = changed_since(remote, now.st_size, _mtime(now))
        if why:
            raise RemoteFileChangedError(
                f"file {remote.path} on host {self.host} changed after it was taken ({why})"
            )

    def close(self) -> None:
        """Close the SFTP session and the SSH connection. Safe to call more than once."""
        sftp, self._sftp = self._sftp, None
        transport, self._transport = self._transport, None
        if sftp is not None:
            with contextlib.suppress(Exception):
                sftp.close()
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.close()

    # --- connecting ------------------------------------------------------------------------------

    def _connect(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise TransportError(f"could not connect to {self.where}: {self._describe(exc)}") from exc
        # paramiko never sets it; without it Nagle holds back our small READ requests until
        # the previous segment is acknowledged, and transfers stall per request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(
            sock, default_window_size=WINDOW_SIZE, default_max_packet_size=MAX_PACKET_SIZE
        )
        self._transport = transport
        transport.set_log_channel(PARAMIKO_LOG)
        transport.banner_timeout = self.timeout
        transport.handshake_timeout = self.timeout
        transport.auth_timeout = self.timeout
        transport.channel_timeout = self.timeout
        options = transport.get_security_options()
        options.ciphers = self._ciphers(options.ciphers)
        if self._pinned is not None:
            options.key_types = self._prefer(options.key_types, HOST_KEY_ALGORITHMS.get(self._pinned[0], ()))
        started = time.monotonic()
        with self._errors("the SSH handshake"):
            # Banner and handshake timeouts bound each step (one that runs out reads as a closed
            # connection, EOFError); start_client's wait is a backstop that returns silently.
            try:
                transport.start_client(timeout=2 * self.timeout)
            except (paramiko.SSHException, EOFError) as exc:
                if time.monotonic() - started < self.timeout:
                    raise
                raise TimeoutError("handshake") from exc
            if not transport.is_active() or not transport.initial_kex_done:
                raise TimeoutError("handshake")
        self.server_version = transport.remote_version
        self.host_key, self.host_key_fingerprint = check_host_key(
            transport.get_remote_server_key(),
            pinned=self._pinned,
            given_fingerprint=self.spec.host_key_fingerprint,
            where=self.where,
        )
        self._authenticate(transport)
        transport.set_keepalive(KEEPALIVE_SECONDS)
        with self._errors("opening the SFTP session"):
            client = paramiko.SFTPClient.from_transport(
                transport, window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET_SIZE
            )
            if client is None:
                raise TransportError(f"the server at {self.where} refused an SFTP session")
            client.get_channel().settimeout(self.timeout)
        self._sftp = client

    def _ciphers(self, available: tuple[str, ...]) -> tuple[str, ...]:
        """Our preference order, or exactly the ciphers listed in the endpoint option
        `ciphers` of the SftpSpec (comma-separated), for a server that needs a particular one."""
        wanted = self.spec.ciphers or ""
        if not wanted.strip():
            return self._prefer(available, PREFERRED_CIPHERS)
        names = tuple(name.strip() for name in wanted.split(",") if name.strip())
        unknown = [name for name in names if name not in available]
        if unknown:
            raise TransportError(
                f"unsupported SFTP cipher(s) {', '.join(unknown)} (available: {', '.join(available)})"
            )
        return names

    @staticmethod
    def _prefer(current: tuple[str, ...], first: tuple[str, ...]) -> tuple[str, ...]:
        head = tuple(name for name in first if name in current)
        return head + tuple(name for name in current if name not in head)

    def _authenticate(self, transport: paramiko.Transport) -> None:
        user = self.endpoint.username or ""
        password = self.endpoint.password
        if self._pkey is not None:
            try:
                transport.auth_publickey(user, self._pkey)
                return
            except paramiko.BadAuthenticationType as exc:
                if not password:
                    raise TransportError(
                        f"the server at {self.where} does not accept key logins "
                        f"(it allows: {', '.join(exc.allowed_types) or 'nothing'})"
                    ) from exc
            except paramiko.AuthenticationException as exc:
                if not password:
                    raise TransportError(
                        f"the server at {self.where} rejected the private key for user "
                        f"{user!r}: is its public key in the user's authorized_keys?"
                    ) from exc
            except (paramiko.SSHException, OSError, EOFError) as exc:
                self._fail("logging in with the private key", exc)
        try:
            transport.auth_password(user, password or "")
        except paramiko.BadAuthenticationType as exc:
            raise TransportError(
                f"the server at {self.where} does not accept password logins "
                f"(it allows: {', '.join(exc.allowed_types) or 'nothing'})"
            ) from exc
        except paramiko.AuthenticationException as exc:
            also = " (the private key was refused too)" if self._pkey is not None else ""
            raise TransportError(
                f"login to {self.where} failed for user {user!r}: wrong user name or password{also}"
            ) from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._fail("logging in with the password", exc)

    # --- helpers ---------------------------------------------------------------------------------

    def _client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            raise TransportError(f"the SFTP connection to {self.where} is closed")
        return self._sftp

    def _check_folder(self, folder: str) -> None:
        if not folder.startswith("/"):
            raise TransportError(f"the folder must be an absolute path starting with '/', got {folder!r}")

    def _exists(self, client: paramiko.SFTPClient, path: str) -> bool:
        try:
            client.stat(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True

    def _makedirs(self, client: paramiko.SFTPClient, folder: str) -> None:
        """Create the archive folder and its missing parents. A file in its place would make
        the rename fail with OpenSSH's bare "no such file": say what is wrong instead."""
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISDIR(client.stat(folder).st_mode or 0):
                raise TransportError(
                    f"the archive folder {folder} on host {self.host} is a file, not a folder: "
                    "the partner should move that file away, or choose another archive folder"
                )
        missing: list[str] = []
        current = folder
        while current not in ("/", "") and not self._exists(client, current):
            missing.append(current)
            current = posixpath.dirname(current)
        for path in reversed(missing):
            try:
                client.mkdir(path)
            except OSError:
                if not self._exists(client, path):  # lost a race with another client: fine
                    raise

    def _describe(self, exc: BaseException) -> str:
        """A plain-words reason, without exception class names or errno prefixes."""
        text = describe_network_error(
            exc, service="SFTP", host=self.host, port=self.port, timeout=self.timeout
        )
        return self._scrub(text or str(exc) or "unexpected error")

    def _scrub(self, text: str) -> str:
        for secret in (self.endpoint.password, self.endpoint.key_passphrase):
            if secret:
                text = text.replace(secret, "********")
        return text

    def _fail(self, what: str, exc: BaseException) -> NoReturn:
        if isinstance(exc, paramiko.SSHException) and "banner" in str(exc).lower():
            reason = "no SSH greeting from the server (is this an SSH/SFTP port?)"
        elif isinstance(exc, paramiko.IncompatiblePeer):
            reason = f"no common algorithms with the server ({self._scrub(str(exc))})"
        else:
            reason = self._describe(exc)
        raise TransportError(f"SFTP {self.where}: {what} failed: {reason}") from exc

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn paramiko/socket errors raised while doing `what` into a TransportError."""
        try:
            yield
        except TransportError:
            raise
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._fail(what, exc)

    def _discard_sftp(self) -> None:
        """Replace the SFTP session after an abandoned download: replies to our READs may
        still arrive on the old channel, and SFTPClient must never read them."""
        sftp, self._sftp = self._sftp, None
        if sftp is not None:
            with contextlib.suppress(Exception):
                sftp.close()
        transport = self._transport
        if transport is None or not transport.is_active():
            return
        with contextlib.suppress(Exception):
            client = paramiko.SFTPClient.from_transport(
                transport, window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET_SIZE
            )
            if client is not None:
                client.get_channel().settimeout(self.timeout)
                self._sftp = client


def _mtime(attributes: paramiko.SFTPAttributes) -> dt.datetime | None:
    return None if attributes.st_mtime is None else dt.datetime.fromtimestamp(attributes.st_mtime, tz=dt.UTC)
