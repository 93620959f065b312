"""The hosted FTP / explicit-FTPS endpoint: binds, builds a session class of its own (TLS
or not), and serves pyftpdlib's IO loop from a daemon thread until stopped."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from connectbatch.errors import ConfigurationError
from connectbatch.transfer.push.ftp.authorizer import GatewayAuthorizer
from connectbatch.transfer.push.ftp.loop import LoopWaker, ServerContext
from connectbatch.transfer.push.ftp.session import PushHandler, tls_classes
from connectbatch.transfer.push.gateway import Gateway

log = logging.getLogger("connectbatch.transfer.push.ftp")


def _ssl_context(cert: Path, key: Path) -> Any:
    """TLS 1.2 or newer, no compression; fails now (not at the first client) on bad files."""
    from OpenSSL import SSL

    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.set_options(SSL.OP_NO_COMPRESSION)
    context.use_certificate_chain_file(str(cert))
    context.use_privatekey_file(str(key))
    context.check_privatekey()
    return context


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


# --------------------------------------------------------------------------- server


class HostedFtpServer:
    """The hosted FTP (or explicit FTPS) endpoint, served from a daemon thread.

    `port=0` binds a free port, readable as `.port` after `start()`. With `tls_cert` and
    `tls_key` the server requires AUTH TLS before login and PROT P before any transfer.
    `passive_ports` limits the data-connection ports to a range a firewall can open;
    `masquerade_address` is the public address announced in PASV replies behind NAT (never
    used when binding to loopback, where clients connect to the address they dialled).
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
        max_connections: int = 256,
        login_workers: int = 4,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ConfigurationError("FTPS needs both a certificate and its private key")
        self.gateway = gateway
        self.host = host
        self.port = port
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.passive_ports = passive_ports
        self.masquerade_address = None if _is_loopback(host) else masquerade_address
        self.failed_login_delay = failed_login_delay
        self.max_connections = max_connections
        self.login_workers = login_workers
        self._server: Any = None
        self._context: ServerContext | None = None
        self._thread: threading.Thread | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

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
        return type("HostedFtpsSession" if self.tls else "HostedFtpSession", (base,), attrs)

    def start(self) -> None:
        """Bind (raising at once if the port is taken) and serve from a daemon thread."""
        if self._thread is not None:
            raise RuntimeError("the FTP server is already running")
        pyftpdlib_log = logging.getLogger("pyftpdlib")
        if not pyftpdlib_log.handlers:
            # Without a handler pyftpdlib installs its own on stderr when the loop starts;
            # with this one its records simply propagate to the application's logging.
            pyftpdlib_log.addHandler(logging.NullHandler())
        ioloop = IOLoop.factory()
        waker = LoopWaker(ioloop)
        pool = ThreadPoolExecutor(self.login_workers, thread_name_prefix="ftp-login")
        context = ServerContext(self.gateway, waker, pool)
        try:
            handler = self._handler_class(context)
            server = FTPServer((self.host, self.port), handler, ioloop=ioloop)
        except BaseException:
            ioloop.close()
            pool.shutdown(wait=False)
            raise
        server.max_cons = self.max_connections
        self.port = int(server.address[1])
        self._server, self._context = server, context
        self._thread = threading.Thread(target=self._serve, name=f"ftp-server-{self.port}", daemon=True)
        self._thread.start()
        log.info("FTP%s server listening on %s:%d", "S" if self.tls else "", self.host, self.port)

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
