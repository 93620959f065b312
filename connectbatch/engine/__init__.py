"""The long-running part of ConnectBatch: scheduler, hosted push servers, mailbox polling.

Started once per process that owns the work — the Streamlit app (through
`st.cache_resource`) or `connectbatch serve` — never by the CLI's one-shot commands.
Each piece is optional so a laptop or a test can run only what it needs:
- CONNECTBATCH_SFTP_PORT / CONNECTBATCH_FTP_PORT (0 disables that server),
- CONNECTBATCH_INBOUND_IMAP_HOST (and _PORT, _USER, _PASSWORD, _SECURITY, _FOLDER) for
  e-mail push: the mailbox every `inbox+<connection>@...` address delivers to, and its
  `inbox+<connection>+dryrun@...` twin, whose mail is a partner's dry run (`pipeline.dryrun`).
Of the engines started on one database (the app's, a `serve`, a second `serve` by mistake)
one schedules and the others stand by until it stops (`leader`); all of them serve pushes,
send the outbox and take Run now.
"""

from __future__ import annotations

import errno
import logging
import socket
import tempfile
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from connectbatch.engine.leader import Lease, Standby, lease_path
from connectbatch.engine.scheduler import Scheduler
from connectbatch.errors import ListenError, RemoteFileTooLargeError, TransportError
from connectbatch.models import Connection, Method, Methodology, Run
from connectbatch.pipeline import dryrun, history, recovery
from connectbatch.pipeline.validation.warm import warm_up
from connectbatch.services import Services
from connectbatch.services.delivery import CHECK_SECONDS
from connectbatch.settings import MailboxSettings
from connectbatch.store.db import private_dir
from connectbatch.store.mail_taken import TakenCopies
from connectbatch.transfer import base
from connectbatch.transfer.pull import collect, stopping
from connectbatch.transfer.push.partials import SWEEP_EVERY, forget_claims, sweep_partials
from connectbatch.transfer.push.partials import grace_seconds as partial_grace
from connectbatch.transfer.specs import ImapSecurity, ImapSpec

if TYPE_CHECKING:  # the servers are imported only when they start (a CLI command needs neither)
    from connectbatch.transfer.push.ftp import HostedFtpServer
    from connectbatch.transfer.push.sftp import HostedSftpServer

__all__ = ["Engine", "MailboxSettings"]

log = logging.getLogger("connectbatch.engine")
SYNC_BACK_SECONDS = 300  # how often status changes go back to partners (pipeline/syncback.py)
RECOVER_SECONDS = 60  # how often runs a dead process left In Progress are looked for


class Engine:
    def __init__(self, services: Services, mailbox: MailboxSettings | None = None) -> None:
        self.services = services
        self.mailbox = mailbox
        self.scheduler = Scheduler(
            services.connections,
            self._pull,
            services.lock_actions,
            export=lambda c: services.export_now(c.id, trigger="schedule"),
            on_skipped=lambda c: services.record_skipped_trigger(c.id),
            pull_workers=services.settings.pull_workers,
        )
        self.servers: list[object] = []
        self._started = False
        self._lock = threading.Lock()
        # Data types whose validation the start-up warm-up ran; `warming` is its thread.
        self.warmed: list[str] = []
        self.warming: threading.Thread | None = None
        # One engine schedules for a database (`leader`); the holder of the other one's
        # lease when this one stands by, else None.
        self._lease = Lease(lease_path(services.settings.database))
        self._standby: Standby | None = None
        self.standing_by: str | None = None

    def start(self, servers: bool = True) -> None:
        with self._lock:
            if self._started:
                return
            recovered = self.services.startup()
            if recovered:
                log.warning("marked %d interrupted runs as Failed: %s", len(recovered), recovered)
            self.services.ingestor.cleanup_staging()  # staged raw files past their retention
            self._add_jobs()
            if servers:
                self._start_servers()
            self.services.outbox.start()  # results mail in the background: no ingest waits on SMTP
            self._start_warm_up()
            self._schedule_or_stand_by()
            self._started = True

    def _add_jobs(self) -> None:
        """The engine's recurring jobs; they run once the scheduler starts (at once, or when
        this engine takes over scheduling from another: `leader`)."""
        add = self.scheduler.add_interval
        add(self.services.ingestor.cleanup_staging, seconds=6 * 3600, job_id="staging-retention")
        # runs another process (a killed CLI ingest) left In Progress: Failed and
        # retryable while this one runs on, not only at its next start
        add(self._recover, seconds=RECOVER_SECONDS, job_id="recover")
        # expected delivery: late, missing, drift alerts
        add(self.services.check_deliveries, seconds=CHECK_SECONDS, job_id="delivery-check")
        if self.mailbox is not None:
            add(self.poll_mailbox, seconds=60, job_id="mailbox")
        # status sync-back of every inbound connection that has it on (its watermark is in
        # the database: a restart repeats nothing)
        add(self.services.sync_back_all, seconds=SYNC_BACK_SECONDS, job_id="sync-back")

    def _schedule_or_stand_by(self) -> None:
        """Schedule when no other engine does for this database, else stand by (`leader`)."""
        lease = self._lease
        if lease.acquire():
            self.scheduler.start()
            return
        self.standing_by = lease.holder()
        log.warning(
            "the engine of %s schedules for %s: this one stands by and takes over when it stops",
            self.standing_by, self.services.settings.database,
        )  # fmt: skip
        self._standby = Standby(lease, self._take_over)
        self._standby.start()

    def _take_over(self) -> None:
        """The engine that scheduled stopped: this one schedules from now on (missed runs
        caught up once, as at a start)."""
        with self._lock:
            if not self._started or self._standby is None:  # stopping meanwhile
                self._lease.release()
                return
            log.warning(
                "the engine that scheduled for %s stopped: this one schedules now",
                self.services.settings.database,
            )
            self.standing_by = None
            self.scheduler.start()

    def _recover(self) -> None:
        """The start's recovery again (`Services.startup`), leaving this process's own runs alone."""
        services = self.services
        recovery.remove_stale_incoming(services.settings.staging)
        recovered = recovery.recover_interrupted(services.db, services.clock, ours=False)
        if recovered:
            log.warning("marked %d interrupted runs as Failed: %s", len(recovered), recovered)

    def _start_warm_up(self) -> None:
        """Validate each data type's template once, in the background, so the first file
        after a start pays no imports (pipeline/validation/warm.py). A thread, because the
        app's first page waits for `start()`; once per engine, also across stop/start."""
        if self.warming is not None:
            return

        def run() -> None:
            try:
                self.warmed = warm_up()
            except Exception:  # a cold first ingest is slower, not wrong
                log.exception("validation warm-up failed")

        self.warming = threading.Thread(target=run, name="validation-warm-up", daemon=True)
        self.warming.start()

    def stop(self) -> None:
        standby, self._standby = self._standby, None
        if standby is not None:  # outside the lock: a take-over in progress needs it
            standby.stop()
        with self._lock:
            # Pulls in flight end now, each a Failed run saying so (a server that never
            # answers held the stop for its timeouts); the scheduler then waits for them.
            stopped = stopping.stop_all()
            if stopped:
                log.warning("stopped %d pull(s) in flight: their runs are Failed, to retry", stopped)
            self.scheduler.shutdown()
            self.services.outbox.stop()
            for server in self.servers:
                server.stop()  # type: ignore[attr-defined]
            self.servers.clear()
            self._lease.release()  # after the scheduler's last job: an engine standing by takes over
            self.standing_by = None
            self._started = False

    def run_now(self, name_or_id: str | int) -> Run:
        connection = self.services.connection(name_or_id)
        run = self.scheduler.run_now(connection)
        assert run is not None  # only scheduled polls are quiet
        return run

    def _pull(self, connection: Connection, trigger: str) -> Run | None:
        if trigger == "schedule":  # a poll that finds nothing new leaves no line
            return self.services.scheduled_pull(connection.id)
        return self.services.pull(connection.id, trigger)

    def poll_mailbox(self) -> list[Run]:
        """E-mail push: read the shared inbound mailbox once per e-mail push connection,
        taking only messages addressed to that connection's own plus-address."""
        if self.mailbox is None:
            return []
        runs = []
        pushed = [
            c for c in self.services.connections()
            if c.method is Method.EMAIL and c.methodology is Methodology.PUSH
        ]  # fmt: skip
        shared = self._shared_copies(pushed)
        for connection in pushed:
            m = self.mailbox
            # Our own mailbox: plain IMAP to a remote host is the operator's choice here.
            address = self.services.inbound_address(connection)
            own = connection.transfer if isinstance(connection.transfer, ImapSpec) else ImapSpec()
            spec = ImapSpec(  # the connection's own allow-list applies to the shared mailbox
                security=ImapSecurity(m.security), recipient=address, allowed_senders=own.allowed_senders
            )
            endpoint = base.Endpoint(
                host=m.host, port=m.port, username=m.username, password=m.password, spec=spec
            )
            try:
                run = collect.pull(
                    self.services.ingestor, self.services.box, replace(connection, folder=m.folder),
                    "push", _sharing(shared), endpoint=endpoint, quiet_when_empty=True,
                )  # fmt: skip
            except Exception:
                log.exception("mailbox poll failed", extra={"connection_id": connection.id})
                continue
            if run is not None:
                runs.append(run)
            try:
                self.poll_dry_runs(connection, own.allowed_senders, shared)
            except Exception:
                log.exception("dry-run mailbox poll failed", extra={"connection_id": connection.id})
        return runs

    def _shared_copies(self, pushed: list[Connection]) -> TakenCopies:
        """The records of copies the mailbox's plus-addresses share (`imap.shared`): the
        participants are every e-mail push connection's address and its dry-run address."""
        svc = self.services
        addresses = [a for c in pushed for a in (svc.inbound_address(c), svc.dryrun_address(c))]
        return TakenCopies(svc.db, addresses, svc.clock)

    def poll_dry_runs(
        self, connection: Connection, allowed_senders: tuple[str, ...] = (), shared: TakenCopies | None = None
    ) -> int:
        """Partner dry runs by mail: each attachment of a message to the connection's
        `+dryrun` address is checked as the connection would load it, storing nothing
        (`pipeline.dryrun`), and the report goes back to the sender. Returns how many
        attachments were checked; every message is marked processed once."""
        if self.mailbox is None:
            return 0
        m = self.mailbox
        spec = ImapSpec(
            security=ImapSecurity(m.security), recipient=self.services.dryrun_address(connection),
            allowed_senders=allowed_senders,
        )  # fmt: skip
        endpoint = base.Endpoint(
            host=m.host, port=m.port, username=m.username, password=m.password, spec=spec
        )
        # the size limit screens messages before they are downloaded, as for deliveries
        endpoint = base.limited(endpoint, self.services.settings.max_file_bytes)
        # bounded like a pull, and ended by the engine's stop (`stopping`): this job's thread
        # was held as long as a mailbox that answers slowly kept sending
        with stopping.pulling(self.services.settings.pull_deadline) as flight:
            try:
                return self._poll_dry_runs(connection, endpoint, shared)
            except TransportError:
                if not flight.stopped:
                    raise
                log.warning("dry-run mailbox poll %s", flight.reason, extra={"connection_id": connection.id})
                return 0  # the messages not marked processed are checked at a later poll

    def _poll_dry_runs(
        self, connection: Connection, endpoint: base.Endpoint, shared: TakenCopies | None
    ) -> int:
        m = self.mailbox
        assert m is not None
        checked = 0
        transport = _sharing(shared)(Method.EMAIL.value, endpoint)
        try:
            listing = transport.list_files(m.folder, "*")
            for remote in listing:
                if not (remote.extra or {}).get("skip"):  # a sender not allowed: never answered
                    try:
                        self._dry_run_attachment(connection, transport, remote)
                        checked += 1
                    except RemoteFileTooLargeError as exc:  # could not pass anyway: not retried
                        log.warning("dry-run file not taken: %s", exc.reason)
                transport.after_success(remote, "leave", None)
            for remote in list(getattr(transport, "unmatched", ())):  # nothing attached, too large
                extra = remote.extra or {}
                if extra.get(history.TOO_LARGE):  # never downloaded: the sender learns why
                    svc = self.services
                    history.unmatched_mail(svc.db, svc.outbox, connection, extra, svc.clock())
                transport.after_success(remote, "leave", None)
        finally:
            transport.close()
        return checked

    def _dry_run_attachment(
        self, connection: Connection, transport: base.Transport, remote: base.RemoteFile
    ) -> None:
        extra = remote.extra or {}
        with tempfile.TemporaryDirectory(
            prefix="dryrun-", dir=private_dir(self.services.settings.home / "incoming")
        ) as tmp:
            target = Path(tmp) / "payload"
            transport.fetch(remote, target)
            sender = (extra.get("from") or "").strip().lower() or None
            dry = self.services.dry_run_file(
                connection.id, target, remote.name, source="e-mail", sender=sender
            )
        to = self.services.dry_run_mail_answer_to(connection, sender)  # not anyone who wrote
        dryrun.answer_mail(
            self.services.db, self.services.outbox, dry, dry.event, to, self.services.clock(),
            message_id=extra.get("message_id", "") if to == sender else "",
        )  # fmt: skip

    def _push_ingest(self, connection_id: int, paths: list[Path]) -> list[Run]:
        """Routed push uploads of one connection that arrived together: ingested in this
        process as a group, each its own run (the distributed engine hands each to the
        workers instead)."""
        return self.services.ingest_files(connection_id, list(paths), trigger="push")

    def _start_servers(self) -> None:
        from connectbatch.transfer.push.gateway import Gateway

        settings = self.services.settings
        raise_open_file_limit()
        gateway = Gateway(self.services, ingest=self._push_ingest)
        forget_claims(settings.home / "push")  # a killed process's, before a session can make one
        if settings.sftp_port:
            from connectbatch.transfer.push.sftp import HostedSftpServer, host_key_path

            sftp = HostedSftpServer(
                gateway, settings.bind, settings.sftp_port, host_key_path(settings.home),
                max_connections_per_address=settings.max_connections_per_address,
                preauth_timeout=settings.preauth_timeout,
                max_sessions_per_login=settings.max_sessions_per_login,
            )  # fmt: skip
            self._listen(sftp, "SFTP", settings.sftp_port)
            # Broken uploads' leftovers (the FTP server sweeps its own; this covers SFTP alone).
            self._sweep_partials()
            self.scheduler.add_interval(self._sweep_partials, seconds=int(SWEEP_EVERY), job_id="push-sweep")
        if settings.ftp_port:
            from connectbatch.transfer.push.ftp import HostedFtpServer

            self._listen(HostedFtpServer.from_settings(gateway), "FTP", settings.ftp_port)
        if self.servers:  # uploads answered before a killed process (or a failed ingest) took them in
            gateway.replay()
            self.scheduler.add_interval(gateway.replay, seconds=int(SWEEP_EVERY), job_id="push-replay")

    def _sweep_partials(self) -> None:
        settings = self.services.settings
        grace = partial_grace(settings.partial_upload_grace_hours)
        if grace is not None:
            sweep_partials(settings.home / "push", grace)

    def _listen(self, server: HostedSftpServer | HostedFtpServer, protocol: str, port: int) -> None:
        """Start one hosted server. A port another program (or a second `serve`) holds used to
        end `serve` with a bare "[Errno 98] Address already in use", naming neither the
        server, the port nor the setting; the servers already started are stopped with it."""
        try:
            server.start()
        except OSError as raised:
            exc = _socket_error(raised)
            if not _listening_failed(exc):
                raise
            for started in self.servers:
                started.stop()  # type: ignore[attr-defined]
            self.servers.clear()
            bind = self.services.settings.bind
            raise ListenError(
                f"the hosted {protocol} server cannot listen on {bind}:{port}: "
                f"{exc.strerror or exc}; set CONNECTBATCH_{protocol}_PORT to a free port "
                f"(0 turns that server off) or CONNECTBATCH_BIND to an address of this machine"
            ) from raised
        self.servers.append(server)


def raise_open_file_limit() -> None:
    """Raise this process's soft limit on open files to its hard limit (best effort).

    Every connection to a hosted server, every upload and every PASV listener holds a
    descriptor, and a soft limit of 1024 (a common default) is easy to exhaust with a flood:
    the servers then refuse connections until descriptors come free. The hard limit is what
    the administrator allows; nothing is gained by staying below it."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # "unlimited" cannot be a soft limit on open files (Linux caps it at nr_open): aim at 2**20.
        wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        now = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (OSError, ValueError) as exc:
        log.warning("could not raise the open-file limit (RLIMIT_NOFILE): %s", exc)
        return
    log.info("open-file limit (RLIMIT_NOFILE): soft %s (was %s), hard %s", now, soft, hard)


def _socket_error(exc: OSError) -> OSError:
    """pyftpdlib raises the socket's error wrapped in a bare OSError (no errno of its own)."""
    if exc.errno is None and exc.args and isinstance(exc.args[0], OSError):
        return exc.args[0]
    return exc


def _listening_failed(exc: OSError) -> bool:
    """The address or port cannot be listened on (not a certificate or key file error)."""
    if isinstance(exc, socket.gaierror):
        return True
    return exc.filename is None and exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


def _sharing(shared: TakenCopies | None) -> base.Opener:
    """Opens the e-mail transport of our shared mailbox with its copies' records."""

    def open_transport(method: str, endpoint: base.Endpoint) -> base.Transport:
        transport = base.open_transport(method, endpoint)
        if shared is not None and hasattr(transport, "shared"):
            transport.shared = shared
        return transport

    return open_transport
