"""Credentials of connections: the logins we provision for pushes (shown once), the
encrypted logins to partners' servers for pulls, main vs secondary, and host-key trust."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from connectbatch.errors import ConnectBatchError
from connectbatch.models import (
    Connection,
    Credential,
    Method,
    Methodology,
    Role,
)
from connectbatch.secrets import hash_password, new_password, new_username
from connectbatch.services.base import (
    CredentialInput,
    InvalidInputError,
    NotFoundError,
    Provisioned,
    ServiceBase,
    requires,
)
from connectbatch.store import credentials as credential_store
from connectbatch.transfer.specs import AuthKind


class CredentialServices(ServiceBase):
    def _provision(self, con: Any, connection: Connection, given: CredentialInput | None) -> Provisioned:
        username = new_username(connection.name)
        password = new_password()
        email = None
        if connection.method is Method.EMAIL:
            email = self.inbound_address(connection)
        credential_store.add(
            con, connection_id=connection.id,
            name=(given.name if given else None) or f"{connection.name} login",
            kind="provisioned", username=username, password_hash=hash_password(password),
            return_email=(given.return_email if given else None) or connection.return_email,
        )  # fmt: skip
        port = {Method.SFTP: self.settings.sftp_port, Method.FTP: self.settings.ftp_port}.get(
            connection.method
        )
        return Provisioned(self.settings.bind, port, username, password, email)

    def _store_remote(self, con: Any, connection: Connection, given: CredentialInput) -> Credential:
        given = _checked_credential(connection, given)
        secret = given.private_key if given.auth is AuthKind.KEY else given.password
        return credential_store.add(
            con, connection_id=connection.id, name=given.name or f"{connection.name} login",
            kind="remote", username=given.username,
            secret=self.box.encrypt(secret) if secret else None,
            return_email=given.return_email or connection.return_email,
            auth=given.auth,
            passphrase=self.box.encrypt(given.passphrase) if given.passphrase else None,
        )  # fmt: skip

    @requires(Role.ANALYST)
    def credentials(self, name_or_id: str | int) -> list[Credential]:
        connection = self.connection(name_or_id)
        with self.db.connect() as con:
            return credential_store.of_connection(con, connection.id)

    @requires(Role.ANALYST)
    def add_credential(
        self, name_or_id: str | int, given: CredentialInput
    ) -> tuple[Credential, Provisioned | None]:
        """Re-connect: new details become main, older ones stay as secondary."""
        connection = self.connection(name_or_id)
        with self.db.transaction() as con:
            if connection.methodology in (Methodology.PUSH, Methodology.PULL_FROM_US):
                provisioned = self._provision(con, connection, given)
                return credential_store.of_connection(con, connection.id)[0], provisioned
            return self._store_remote(con, connection, given), None

    def _credential(self, credential_id: int) -> Credential:
        with self.db.connect() as con:
            try:
                return credential_store.get(con, credential_id)
            except LookupError:
                raise NotFoundError(f"there is no credential {credential_id}") from None

    @requires(Role.ANALYST)
    def make_main_credential(self, credential_id: int) -> Credential:
        credential = self._credential(credential_id)
        with self.db.transaction() as con:
            credential_store.make_main(con, credential)
            return credential_store.get(con, credential_id)

    @requires(Role.ANALYST)
    def delete_credential(self, credential_id: int) -> None:
        """Delete one credential; a provisioned login stops working at once."""
        credential = self._credential(credential_id)
        with self.db.transaction() as con:
            credential_store.delete(con, credential.id)
            remaining = credential_store.of_connection(con, credential.connection_id)
            if credential.is_main and remaining:
                credential_store.make_main(con, remaining[0])

    @requires(Role.ANALYST)
    def accept_host_key(self, name_or_id: str | int) -> Credential:
        """A person checked the server's new host key: forget the pinned one, so the next
        run pins whatever the server presents (as after `ssh-keygen -R`)."""
        connection = self.connection(name_or_id)
        with self.db.transaction() as con:
            found = credential_store.main_secret(con, connection.id)
            if found is None:
                raise NotFoundError(f"{connection.name!r} has no credential")
            credential_store.set_host_key(con, found[0].id, None)
            credential_store.set_status(con, found[0].id, "Active", None)
            return credential_store.get(con, found[0].id)

    @staticmethod
    def host_key_fingerprint(host_key: str) -> str | None:
        """A pinned SFTP host key ("<type> <base64>") as OpenSSH prints it (SHA256:...),
        for a person to compare with the partner's; None when it cannot be read."""
        from connectbatch.transfer.pull import sftp

        try:
            return sftp.fingerprint(sftp.parse_host_key(host_key)[1])
        except ConnectBatchError:
            return None

    def inbound_address(self, connection: Connection) -> str:
        mailbox = self.settings.inbound_mailbox
        local, _, domain = mailbox.partition("@")
        slug = "".join(ch if ch.isalnum() else "-" for ch in connection.name.lower()).strip("-")
        return f"{local}+{slug or connection.id}@{domain}"


def _checked_credential(connection: Connection, given: CredentialInput) -> CredentialInput:
    """Password or key, as chosen (or as given, when only one secret was entered); a key must
    be an SSH private key the passphrase opens, and only SFTP logs in with keys."""
    auth = given.auth or (AuthKind.KEY if given.private_key else AuthKind.PASSWORD)
    if auth is AuthKind.PASSWORD:
        if given.private_key:
            raise InvalidInputError("private_key", "a private key was given for a password login")
        return replace(given, auth=auth, passphrase=None)
    if connection.method is not Method.SFTP:
        raise InvalidInputError("auth", "SSH keys log in to SFTP servers only; use a password")
    if not given.private_key:
        raise InvalidInputError("private_key", "is required for a key login")
    from connectbatch.transfer.pull.sftp import load_private_key  # paramiko: only when needed

    try:
        load_private_key(given.private_key, given.passphrase or None)
    except ConnectBatchError as exc:
        raise InvalidInputError("private_key", str(exc)) from None
    return replace(given, auth=auth, password=None, passphrase=given.passphrase or None)
