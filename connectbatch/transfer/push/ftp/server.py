"""The hosted explicit-FTPS endpoint: binds, builds a session class of its own, and serves
pyftpdlib's IO loop from a daemon thread until stopped.

It always offers AUTH TLS (with the configured certificate or a self-signed one generated under
the data home, see `certificate`), and by default requires it before login and PROT P before
any transfer. At start and then hourly it sweeps partial files left by broken uploads out of
the push folders once they are older than the grace period.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pyftpdlib.ioloop import IOLoop

from connectbatch.errors import ConfigurationError
from connectbatch.settings import MAX_SESSIONS_PER_LOGIN
from connectbatch.transfer.push.ftp.authorizer import GatewayAuthorizer
from connectbatch.transfer.push.ftp.certificate import ensure_certificate, fingerprint
from connectbatch.transfer.push.ftp.guard import AddressGuard, RateLimitFilter
from connectbatch.transfer.push.ftp.listener import PushFtpServer
from connectbatch.transfer.push.ftp.loop import LoopWaker, ServerContext
from connectbatch.transfer.push.ftp.session import PushHandler
from connectbatch.transfer.push.ftp.tls import tls_classes
from connectbatch.transfer.push.gateway import Gateway
from connectbatch.transfer.push.partials import SWEEP_EVERY, grace_seconds, sweep_partials
from connectbatch.transfer.push.sessions import LoginSessions
from connectbatch.transfer.specs import is_loopback

log = logging.getLogger("connectbatch.transfer.push.ftp")


def _ssl_context(cert: Path, key: Path) -> Any:
    """TLS 1.2, no compression; fails now (not at the first client) on bad files.

    Not TLS 1.3: its server sends session tickets after the handshake, on every data
    connection too, and pyOpenSSL cannot turn them off (no SSL_CTX_set_num_tickets). Clients
    that never read an upload's data connection (lftp, curl) then close it with those bytes
    unread, which makes their kernel reset it, and the reset throws away the end of the file
    we had not read yet: most uploads over a few TLS records broke off (426). In TLS 1.2 the
    ticket is part of the handshake, and session resumption on data connections still works.
    """
    from OpenSSL import SSL

    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_max_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(SSL.OP_NO_COMPRESSION)
    # A file that is no PEM certificate or key (or a key of another certificate) stopped
    # `serve` with "internal error: [('PEM routines', '', 'no start line'), ...]"
    for setting, path, use in (
        ("CONNECTBATCH_FTP_CERT_FILE", cert, context.use_certificate_chain_file),
        ("CONNECTBATCH_FTP_KEY_FILE", key, context.use_privatekey_file),
    ):
        try:
            use(str(path))
        except SSL.Error as exc:
            raise ConfigurationError(
                f"{setting}: {path} is not a PEM {_WHAT[setting]} ({_ssl_words(exc)})"
            ) from exc
    try:
        context.check_privatekey()
    except SSL.Error as exc:
        raise ConfigurationError(
            f"CONNECTBATCH_FTP_KEY_FILE: {key} is not the private key of the certificate in {cert}"
        ) from exc
    return context


_WHAT = {"CONNECTBATCH_FTP_CERT_FILE": "certificate", "CONNECTBATCH_FTP_KEY_FILE": "private key"}


def _ssl_words(exc: Exception) -> str:
    """OpenSSL's reasons, e.g. "no start line", without its tuples."""
    reasons = [
        r[2] for r in (exc.args[0] if exc.args and isinstance(exc.args[0], list) else []) if len(r) > 2
    ]
    return "; ".join(str(r) for r in reasons if r) or str(exc)


_RATE_LIMIT = RateLimitFilter()


def _limit_logging() -> None:
    """Rate-limit the FTP server's and pyftpdlib's log records (once per process)."""
    for name in ("connectbatch.transfer.push.ftp", "pyftpdlib"):
        logger = logging.getLogger(name)
        if _RATE_LIMIT not in logger.filters:
            logger.addFilter(_RATE_LIMIT)


# --------------------------------------------------------------------------- server


class HostedFtpServer:
    """The hosted explicit-FTPS endpoint, served from a daemon thread.

    `port=0` binds a free port, readable as `.port` after `start()`. The certificate is
    `tls_cert`/`tls_key`, or a self-signed pair generated under the data home;
    `require_tls` (default) refuses clear-text logins and data. `passive_ports` limits the
    data-connection ports to a range a firewall can open; `masquerade_address` is the public
    address announced in PASV replies behind NAT (never used when binding to loopback, where
    clients connect to the address they dialled). `max_connections_per_address`,
    `preauth_timeout` and the lockout settings are the flood and guessing defences (`guard`);
    `max_sessions_per_login` keeps one login from taking every session (`push.sessions`).
    `require_tls_reuse` accepts only data connections that resume the control connection's
    TLS session (vsftpd's `require_ssl_reuse`); off by default because Python's ftplib, which
    partners script with, never resumes: a data connection with a new TLS session is then
    accepted only after the transfer command (`passive`).
    `from_settings` builds one from `Settings`.
    """

    def __init__(
        self,
        gateway: Gateway,
        host: str,
        port: int,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        passive_ports: range | None = None,
        *,
        masquerade_address: str | None = None,
        failed_login_delay: float = 1.0,
        max_connections: int = 512,
        login_workers: int = 4,
        require_tls: bool = True,
        max_connections_per_address: int = 8,
        preauth_timeout: float = 30.0,
        lockout_after: int = 10,
        lockout_seconds: float = 300.0,
        partial_upload_grace_hours: float = 24.0,
        upload_settle: float = 0.3,
        max_sessions_per_login: int = MAX_SESSIONS_PER_LOGIN,
        require_tls_reuse: bool = False,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ConfigurationError(
                "FTPS needs both a certificate and its private key: set CONNECTBATCH_FTP_CERT_FILE "
                "and CONNECTBATCH_FTP_KEY_FILE"
            )
        self.gateway = gateway
        self.host = host
        self.port = port
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.passive_ports = passive_ports
        self.masquerade_address = None if is_loopback(host) else masquerade_address
        self.failed_login_delay = failed_login_delay
        self.max_connections = max_connections
        self.login_workers = login_workers
        self.require_tls = require_tls
        self.max_connections_per_address = max_connections_per_address
        self.preauth_timeout = preauth_timeout
        self.lockout_after = lockout_after
        self.lockout_seconds = lockout_seconds
        self.partial_upload_grace_hours = partial_upload_grace_hours
        self.upload_settle = upload_settle
        self.login_sessions = LoginSessions(max(1, max_sessions_per_login))
        self.require_tls_reuse = require_tls_reuse
        self._server: Any = None
        self._context: ServerContext | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, gateway: Gateway) -> HostedFtpServer:
        """The server `connectbatch serve` and the app run, configured from the gateway's
        `Settings` (CONNECTBATCH_FTP_*, _MAX_CONNECTIONS_PER_ADDRESS, _PREAUTH_TIMEOUT,
        _PARTIAL_UPLOAD_GRACE_HOURS, _MAX_SESSIONS_PER_LOGIN)."""
        settings = gateway.services.settings
        ports = settings.ftp_passive_ports
        return cls(
            gateway,
            settings.bind,
            settings.ftp_port,
            settings.ftp_cert_file,
            settings.ftp_key_file,
            range(ports[0], ports[1] + 1) if ports else None,
            require_tls=settings.ftp_require_tls,
            max_connections_per_address=settings.max_connections_per_address,
            preauth_timeout=settings.preauth_timeout,
            partial_upload_grace_hours=settings.partial_upload_grace_hours,
            max_sessions_per_login=settings.max_sessions_per_login,
        )

    @property
    def push_root(self) -> Path:
        return self.gateway.services.settings.home / "push"

    @property
    def fingerprint(self) -> str | None:
        """SHA-256 fingerprint of the certificate served (after `start()`)."""
        return fingerprint(self.tls_cert) if self.tls_cert is not None else None

    @property
    def tls(self) -> bool:
        return True  # always offered; required unless `require_tls` is off

    def _handler_class(self, context: ServerContext) -> type[Any]:
        """A session class for this server only: pyftpdlib configures sessions through
        class attributes, and two servers in one process must not share them."""
        base: type[Any] = PushHandler
        attrs: dict[str, Any] = {
            "context": context,
            "authorizer": GatewayAuthorizer(context.gateway),
            "auth_failed_timeout": self.failed_login_delay,
            "passive_ports": list(self.passive_ports) if self.passive_ports else None,
            "masquerade_address": self.masquerade_address,
        }
        if self.tls_cert is not None and self.tls_key is not None:
            base, _dtp = tls_classes()
            attrs["ssl_context"] = _ssl_context(self.tls_cert, self.tls_key)
            attrs["certfile"] = str(self.tls_cert)
            attrs["keyfile"] = str(self.tls_key)
            attrs["tls_control_required"] = self.require_tls
            attrs["tls_data_required"] = self.require_tls
            attrs["require_tls_reuse"] = self.require_tls_reuse
        return type("HostedFtpsSession", (base,), attrs)

    def start(self) -> None:
        """Bind (raising at once if the port is taken) and serve from a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("the FTP server is already running")
        pyftpdlib_log = logging.getLogger("pyftpdlib")
        if not pyftpdlib_log.handlers:
            # Without a handler pyftpdlib installs its own on stderr when the loop starts;
            # with this one its records simply propagate to the application's logging.
            pyftpdlib_log.addHandler(logging.NullHandler())
        _limit_logging()
        self.tls_cert, self.tls_key = ensure_certificate(
            self.gateway.services.settings.home, self.tls_cert, self.tls_key, self.host
        )
        grace = grace_seconds(self.partial_upload_grace_hours)
        if grace is not None:
            sweep_partials(self.push_root, grace)
        ioloop = IOLoop.factory()
        waker = LoopWaker(ioloop)
        pool = ThreadPoolExecutor(self.login_workers, thread_name_prefix="ftp-login")
        guard = AddressGuard(
            max_unauthenticated=self.max_connections_per_address,
            base_delay=self.failed_login_delay,
            lockout_after=self.lockout_after,
            lockout=self.lockout_seconds,
        )
        context = ServerContext(
            self.gateway, waker, pool, guard=guard,
            preauth_timeout=self.preauth_timeout, upload_settle=self.upload_settle,
            sessions=self.login_sessions,
        )  # fmt: skip
        try:
            handler = self._handler_class(context)
            server = PushFtpServer((self.host, self.port), handler, guard, ioloop=ioloop)
        except BaseException:
            ioloop.close()
            pool.shutdown(wait=False)
            raise
        server.max_cons = self.max_connections
        if grace is not None:
            ioloop.call_every(SWEEP_EVERY, sweep_partials, self.push_root, grace)
        self.port = int(server.address[1])
        self._server, self._context = server, context
        self._thread = threading.Thread(target=self._serve, name=f"ftp-server-{self.port}", daemon=True)
        self._thread.start()
        log.info(
            "FTPS server listening on %s:%d (TLS %s); certificate SHA-256 fingerprint %s",
            self.host, self.port, "required" if self.require_tls else "optional", self.fingerprint,
        )  # fmt: skip

    def _serve(self) -> None:
        try:
            self._server.serve_forever(handle_exit=False)
        except Exception:
            log.exception("the FTP server loop stopped")

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect every session and stop serving; waits for the loop thread."""
        thread, server, context = self._thread, self._server, self._context
        if thread is None or server is None or context is None:
            return
        if thread.is_alive():
            context.waker.call_soon(server.close_all)
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the FTP server thread did not stop within %.0f s", timeout)
        else:
            server.close_all()
        context.login_pool.shutdown(wait=False, cancel_futures=True)
        for session in list(context.checking):  # parked in a login check: not in the loop's map
            session.close()
        context.checking.clear()
        self._thread = self._server = self._context = None

    def __enter__(self) -> HostedFtpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
