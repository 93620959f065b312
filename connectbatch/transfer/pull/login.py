"""How a pull reaches the partner's server: the login details of a connection's credential
(decrypted only here), the server's pinned host key (trust on first use, then compared), and
the credential's status after a login. `collect` pulls with them; the wizard's connection
test and the distributed coordinator use them too."""

from __future__ import annotations

import logging

from connectbatch.errors import TransportError
from connectbatch.models import Connection
from connectbatch.secrets import SecretBox
from connectbatch.store import Database
from connectbatch.store import credentials as credential_store
from connectbatch.store import host_keys as host_key_store
from connectbatch.transfer import base
from connectbatch.transfer.specs import AuthKind

__all__ = ["credential_error", "credential_ok", "endpoint_for", "login_endpoint", "open_pinned"]

log = logging.getLogger("connectbatch.transfer.pull.collect")


def endpoint_for(db: Database, box: SecretBox, connection: Connection) -> tuple[base.Endpoint, int | None]:
    """The login details of the connection's main credential (decrypted) and its id."""
    with db.connect() as con:
        found = credential_store.main_secret(con, connection.id)
        pinned = host_key_store.get(con, connection.host, connection.port)
    if found is None:
        return base.Endpoint(host=connection.host or "", port=connection.port, spec=connection.transfer), None
    credential, secret, passphrase = found
    plain = box.decrypt(secret) if secret else None
    return (
        login_endpoint(
            connection,
            username=credential.username,
            secret=plain,
            auth=credential.auth,
            passphrase=box.decrypt(passphrase) if passphrase else None,
            host_key=pinned.host_key if pinned is not None else None,
        ),
        credential.id,
    )


def login_endpoint(
    connection: Connection,
    *,
    username: str | None,
    secret: str | None,
    auth: AuthKind | None,
    passphrase: str | None = None,
    host_key: str | None = None,
    timeout: float = 30.0,
) -> base.Endpoint:
    """Where and how a connection logs in, with the secret as what the person chose it to be
    (`auth`). Credentials stored before that choice existed (auth None) are told apart by
    the secret's shape, the only thing known about them."""
    if auth is None:
        auth = AuthKind.KEY if secret is not None and "-----BEGIN" in secret else AuthKind.PASSWORD
    is_key = auth is AuthKind.KEY
    return base.Endpoint(
        host=connection.host or "",
        port=connection.port,
        username=username,
        password=None if is_key else secret,
        private_key=secret if is_key else None,
        key_passphrase=passphrase if is_key else None,
        host_key=host_key,
        spec=connection.transfer,
        timeout=timeout,
    )


def open_pinned(
    db: Database,
    method: str,
    endpoint: base.Endpoint,
    open_transport: base.Opener = base.open_transport,
    pinned_now: list[str] | None = None,
) -> base.Transport:
    """Open a transport with the server's pinned host key, and keep the pin store current:
    on first use pin the key the server showed (trust on first use, as OpenSSH does; the
    message saying so, with the fingerprint, is appended to `pinned_now`), and when the server
    shows a different key remember it, so a person can compare its fingerprint and accept it.
    The pin belongs to the server (host and port), so no credential can bypass it."""
    try:
        transport = open_transport(method, endpoint)
    except TransportError as exc:
        presented = getattr(exc, "presented_key", None)
        fingerprint = getattr(exc, "presented_fingerprint", None)
        if presented and fingerprint and endpoint.host:
            with db.transaction() as con:
                host_key_store.record_presented(con, endpoint.host, endpoint.port, presented, fingerprint)
        raise
    key = getattr(transport, "host_key", None)
    fingerprint = getattr(transport, "host_key_fingerprint", None)
    if endpoint.host_key is None and key and fingerprint and endpoint.host:
        with db.transaction() as con:
            first = host_key_store.pin_first(con, endpoint.host, endpoint.port, key, fingerprint)
        if first:
            host, port = host_key_store.server(endpoint.host, endpoint.port)
            message = (
                f"first connection to {host}:{port}: pinned its {key.split()[0]} host key "
                f"{fingerprint}; check it with the partner"
            )
            log.info("%s", message)
            if pinned_now is not None:
                pinned_now.append(message)
    return transport


def credential_ok(db: Database, credential_id: int | None) -> None:
    if credential_id is not None:
        with db.transaction() as con:
            credential_store.set_status(con, credential_id, "Active", None)


def credential_error(db: Database, credential_id: int | None, message: str) -> None:
    if credential_id is not None:
        with db.transaction() as con:
            credential_store.set_status(con, credential_id, "Error", message)
