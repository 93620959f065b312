"""Credentials of connections: the logins we provision for pushes (shown once), the
encrypted logins to partners' servers for pulls, main vs secondary, and host-key trust."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from connectbatch import mail_address
from connectbatch.errors import ConfigurationError, ConnectBatchError
from connectbatch.escaping import visible
from connectbatch.models import (
    METHOD_LABELS,
    METHODOLOGY_LABELS,
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
from connectbatch.services.endpoint import push_endpoint
from connectbatch.services.partners import resolve_partner
from connectbatch.store import connections as connection_store
from connectbatch.store import credentials as credential_store
from connectbatch.store import host_keys as host_key_store
from connectbatch.store import partners as partner_store
from connectbatch.store.host_keys import HostKey
from connectbatch.transfer.specs import AuthKind, parse_fingerprint

log = logging.getLogger("connectbatch.services.credentials")


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
            partner_id=connection.partner_id,
        )  # fmt: skip
        return push_endpoint(self.settings, connection, username, password, email)

    def push_endpoint(self, name_or_id: str | int) -> Provisioned:
        """Where the partner of a push connection over SFTP or FTP connects, without a
        password (services/endpoint.py)."""
        return push_endpoint(self.settings, self.connection(name_or_id))

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
            partner_id=connection.partner_id,
        )  # fmt: skip

    def _reusable(self, con: Any, credential: Credential, connection: Connection) -> str | None:
        """Why `connection` may not use `credential` (None: it may). Only a set of the same
        partner, for the same method and the same kind of login (ours for pushes, theirs for
        pulls), is reused; outbound logins each see their own folder, so none is shared."""
        owner = connection_store.get(con, credential.connection_id)
        partner_id = credential.partner_id if credential.partner_id is not None else owner.partner_id
        if partner_id != connection.partner_id:
            return (
                "belongs to another partner's connections; only the same partner's credentials can be reused"
            )
        if owner.method is not connection.method:
            return (
                f"is a {METHOD_LABELS[owner.method]} login; a {METHOD_LABELS[connection.method]} "
                "connection needs credentials of its own method"
            )
        wanted = {Methodology.PUSH: "provisioned", Methodology.PULL: "remote"}.get(connection.methodology)
        if wanted is None:
            return f"{METHODOLOGY_LABELS[connection.methodology]!r} connections cannot share a login"
        if credential.kind != wanted or owner.methodology is not connection.methodology:
            return (
                f"is a {METHODOLOGY_LABELS[owner.methodology]!r} login; a "
                f"{METHODOLOGY_LABELS[connection.methodology]!r} connection cannot use it"
            )
        return None

    def _reuse(self, con: Any, connection: Connection, credential_id: int) -> Credential:
        """Let `connection` use an existing credential set (as its main one). Nothing secret
        is returned: secrets are shown once, when the set is created."""
        try:
            credential = credential_store.get(con, credential_id)
        except LookupError:
            raise InvalidInputError("reuse_credential", f"there is no credential {credential_id}") from None
        why = self._reusable(con, credential, connection)
        if why is not None:
            raise InvalidInputError("reuse_credential", f"credential {credential_id} {why}")
        if connection.id in credential_store.connection_ids(con, credential_id):
            raise InvalidInputError(
                "reuse_credential", f"{connection.name!r} already uses credential {credential_id}"
            )
        credential_store.link(con, credential_id, connection.id)
        return next(c for c in credential_store.of_connection(con, connection.id) if c.id == credential_id)

    def _credentials_follow(self, con: Any, connection: Connection, partner_id: int) -> None:
        """Moving a connection to another partner: its own credentials go with it; one it
        shares with connections of its partner is refused (a set is one partner's)."""
        for credential in credential_store.of_connection(con, connection.id):
            others = [n for n in credential.used_by if n != connection.name]
            if others:
                names = ", ".join(repr(visible(n)) for n in others)
                raise InvalidInputError(
                    "partner",
                    f"{connection.name!r} shares credential {credential.id} with {names} of its partner; "
                    "give it credentials of its own first (re-connect, then `credentials detach`), "
                    "then move it",
                )
        credential_store.follow_partner(con, connection.id, partner_id)

    @requires(Role.ANALYST)
    def reusable_credentials(self, draft: Connection, partner: str | int | None = None) -> list[Credential]:
        """The partner's credential sets a connection like `draft` (its method and methodology)
        could reuse, newest first. `partner` (name or id) else `draft.partner_id`."""
        given = partner if partner is not None else draft.partner_id
        with self.db.connect() as con:
            if given is None or str(given).strip() == "":
                found = partner_store.find(con, self.default_partner) if self.default_partner else None
                if found is None:
                    return []  # no partner chosen yet: nothing to reuse
                given = found.id
            owner = resolve_partner(con, given)
            probe = replace(draft, partner_id=owner.id)
            return [
                c for c in credential_store.of_partner(con, owner.id)
                if draft.id not in credential_store.connection_ids(con, c.id)
                and self._reusable(con, c, probe) is None
            ]  # fmt: skip

    @requires(Role.ANALYST)
    def reuse_credential(self, name_or_id: str | int, credential_id: int) -> Credential:
        """An existing connection starts using another connection's credential set (as main)."""
        connection = self.connection(name_or_id)
        with self.db.transaction() as con:
            return self._reuse(con, connection, credential_id)

    @requires(Role.ANALYST)
    def credentials(self, name_or_id: str | int) -> list[Credential]:
        connection = self.connection(name_or_id)
        with self.db.connect() as con:
            return credential_store.of_connection(con, connection.id)

    @requires(Role.ANALYST)
    def add_credential(
        self, name_or_id: str | int, given: CredentialInput
    ) -> tuple[Credential, Provisioned | None]:
        """Re-connect: new details become main, older ones stay as secondary. The new login
        is main at once, so one that cannot log in is refused here, before anything is stored:
        for a pull it needs the partner's user name and a password or key (else every pull
        fails from then on); for a push we provision the login, so none may be given (it was
        silently replaced by one of ours)."""
        connection = self.connection(name_or_id)
        check_new_login(connection.methodology, given)
        pushed = connection.methodology in (Methodology.PUSH, Methodology.PULL_FROM_US)
        with self.db.transaction() as con:
            if pushed:
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
    def make_main_credential(self, credential_id: int, connection: str | int | None = None) -> Credential:
        """Main for `connection` (a shared set: for that one only), else for its owner."""
        credential = self._credential(credential_id)
        if connection is not None:
            credential = replace(credential, connection_id=self.connection(connection).id)
        with self.db.transaction() as con:
            if credential.connection_id not in credential_store.connection_ids(con, credential.id):
                raise InvalidInputError("connection", f"does not use credential {credential_id}")
            credential_store.make_main(con, credential)
            return credential_store.get(con, credential_id)

    @requires(Role.ANALYST)
    def delete_credential(self, credential_id: int) -> None:
        """Delete one credential; a provisioned login stops working at once. A set other
        connections also use is refused, naming them: delete those connections first (each
        keeps working otherwise), or delete the connection that should stop using it."""
        credential = self._credential(credential_id)
        if len(credential.used_by) > 1:
            names = ", ".join(repr(visible(n)) for n in credential.used_by)
            raise InvalidInputError(
                "credential",
                f"credential {credential_id} is used by {len(credential.used_by)} connections ({names}); "
                "deleting it would stop all of them. A connection stops using it with "
                "`credentials detach`; delete it once only one connection uses it.",
            )
        with self.db.transaction() as con:
            users = credential_store.connection_ids(con, credential.id)
            was_main = {
                c: any(k.id == credential.id and k.is_main for k in credential_store.of_connection(con, c))
                for c in users
            }
            credential_store.delete(con, credential.id)
            for connection_id, main in was_main.items():
                remaining = credential_store.of_connection(con, connection_id)
                if main and remaining:
                    credential_store.make_main(con, remaining[0])

    @requires(Role.ANALYST)
    def detach_credential(self, credential_id: int, connection: str | int) -> None:
        """`connection` stops using a credential set other connections keep using (they are
        unaffected); the set's last user deletes it instead (`delete_credential`)."""
        target = self.connection(connection)
        with self.db.transaction() as con:
            users = credential_store.connection_ids(con, credential_id)
            if target.id not in users:
                raise InvalidInputError(
                    "connection", f"{target.name!r} does not use credential {credential_id}"
                )
            if len(users) == 1:
                raise InvalidInputError(
                    "credential", f"only {target.name!r} uses credential {credential_id}: delete it instead"
                )
            was_main = any(
                c.id == credential_id and c.is_main for c in credential_store.of_connection(con, target.id)
            )
            credential_store.unlink(con, credential_id, target.id)
            remaining = credential_store.of_connection(con, target.id)
            if was_main and remaining:
                credential_store.make_main(con, remaining[0])

    @requires(Role.ANALYST)
    def host_key(self, name_or_id: str | int) -> HostKey | None:
        """The SFTP host key pinned for the connection's server (host and port), and a
        different key the server presented since, each with its fingerprint; None when the
        server was never reached."""
        connection = _pulls_over_sftp(self.connection(name_or_id))
        with self.db.connect() as con:
            found = host_key_store.get(con, connection.host, connection.port)
        if found is None:
            return None
        if found.host_key and not found.fingerprint:  # pins migrated from credentials
            found = replace(found, fingerprint=self.host_key_fingerprint(found.host_key))
        return found

    @requires(Role.ANALYST)
    def accept_host_key(self, name_or_id: str | int, fingerprint: str) -> HostKey:
        """A person checked the server's new host key with the partner: pin it. They type the
        fingerprint they checked, and it must be the one the server last presented, so
        nothing is trusted that nobody compared (never "trust whatever comes next")."""
        connection = _pulls_over_sftp(self.connection(name_or_id))
        try:
            wanted = parse_fingerprint(fingerprint)
        except ConfigurationError as exc:
            raise InvalidInputError("fingerprint", str(exc).partition(": ")[2] or str(exc)) from None
        with self.db.transaction() as con:
            found = host_key_store.get(con, connection.host, connection.port)
            if found is None or not found.presented_key or not found.presented_fingerprint:
                raise InvalidInputError(
                    "fingerprint",
                    f"the server of {connection.name!r} has not presented a new host key: "
                    "nothing to accept (run a pull to see what it presents)",
                )
            if found.presented_fingerprint != wanted:
                raise InvalidInputError(
                    "fingerprint",
                    f"{wanted} is not the key the server presented ({found.presented_fingerprint}); "
                    "nothing was changed. Check the fingerprint with the partner.",
                )
            host_key_store.accept_presented(con, connection.host, connection.port)
            for credential in credential_store.of_connection(con, connection.id):
                if credential.status == "Error" and "host key" in (credential.last_error or ""):
                    credential_store.set_status(con, credential.id, "Active", None)
            accepted = host_key_store.get(con, connection.host, connection.port)
        assert accepted is not None
        log.warning(
            "host key of %s:%s accepted by a person: %s", accepted.host, accepted.port, accepted.fingerprint
        )
        return accepted

    @requires(Role.ANALYST)
    def add_public_key(self, credential_id: int, text: str) -> str:
        """Authorize an OpenSSH public key (`ssh-ed25519 AAAA... comment`, also RSA and ECDSA)
        to log in as a provisioned SFTP login, so a partner's batch jobs need no password.
        Returns its SHA256 fingerprint; adding a key twice keeps one."""
        credential = self._credential(credential_id)
        connection = self.connection(credential.connection_id)
        if credential.kind != "provisioned" or connection.method is not Method.SFTP:
            raise InvalidInputError("credential", "public keys log in to our SFTP server's logins only")
        line, fingerprint = _checked_public_key(text)
        with self.db.transaction() as con:
            lines = credential_store.public_keys(con, credential.id)
            if not any(existing.split()[:2] == line.split()[:2] for existing in lines):
                credential_store.set_public_keys(con, credential.id, [*lines, line])
        return fingerprint

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
        """The address partners send an e-mail push connection's files to (mail_address)."""
        return mail_address.inbound_address(self.settings.inbound_mailbox, connection)

    def address_tag(self, connection: Connection) -> str:
        """The tag of that address (mail_address.address_tag)."""
        return mail_address.address_tag(self.settings.inbound_mailbox, connection)

    @requires(Role.ANALYST, Role.REVIEWER)
    def dryrun_address(self, connection: Connection) -> str:
        """The `+dryrun` address of an e-mail push connection (inbox+vendor-a+dryrun@...);
        mail to it is a dry run."""
        return mail_address.dryrun_address(self.settings.inbound_mailbox, connection)


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


def check_new_login(methodology: Methodology, given: CredentialInput) -> None:
    """Refuse (InvalidInputError naming the field) a new main login that could not work for a
    connection of `methodology`; before anything is stored (`add_credential`, and `connection
    edit` before it saves its other changes)."""
    if methodology in (Methodology.PUSH, Methodology.PULL_FROM_US):
        _provisioned_login(methodology, given)
    else:
        _partner_login(given)


def _partner_login(given: CredentialInput) -> None:
    """A login to the partner's server needs its user name and the secret chosen (a password,
    or for SFTP a private key); one without would become main and fail every pull. The app's
    forms ask for both; this keeps every other caller (the CLI) to the same rule."""
    needed = "is required to log in to the partner's server; no credential was added"
    if not (given.username or "").strip():
        raise InvalidInputError("username", needed)
    auth = given.auth or (AuthKind.KEY if given.private_key else AuthKind.PASSWORD)
    if auth is AuthKind.PASSWORD and not given.password:
        raise InvalidInputError("password", needed)
    # A key login without its key is refused by _checked_credential, naming private_key.


def _provisioned_login(methodology: Methodology, given: CredentialInput) -> None:
    """We provision a push connection's login: a user name with a random suffix
    (`secrets.new_username`) and a password shown once. Our servers find a login by its user
    name alone (`store.credentials.by_username`) and nothing checks a chosen one against the
    others, so none is taken. It was silently dropped, and the partner was told a login that
    does not exist: refused instead, naming what was given."""
    given_fields = (
        ("username", given.username), ("password", given.password),
        ("private_key", given.private_key), ("passphrase", given.passphrase), ("auth", given.auth),
    )  # fmt: skip
    for field, value in given_fields:
        if value:
            raise InvalidInputError(
                field,
                f"cannot be chosen for a {METHODOLOGY_LABELS[methodology]!r} connection: "
                "ConnectBatch provisions its login (a user name and password it chooses, shown once); "
                "no credential was added",
            )


PUBLIC_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)


def _checked_public_key(text: str) -> tuple[str, str]:
    """One OpenSSH public key line, normalized ("type base64 [comment]"), and its fingerprint.
    The key must decode as the type it says (paramiko loads it), so a typo fails here, not
    at the partner's first login."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if len(lines) != 1:
        raise InvalidInputError(
            "public_key", "give exactly one OpenSSH public key line (e.g. id_ed25519.pub)"
        )
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or parts[0] not in PUBLIC_KEY_TYPES:
        raise InvalidInputError(
            "public_key", f"not an OpenSSH public key; expected one of {', '.join(PUBLIC_KEY_TYPES)}"
        )
    import base64
    import binascii

    import paramiko

    from connectbatch.transfer.pull.sftp import fingerprint

    try:
        blob = base64.b64decode(parts[1], validate=True)
        key = paramiko.PKey.from_type_string(parts[0], blob)
    except (binascii.Error, ValueError, paramiko.SSHException) as exc:
        raise InvalidInputError("public_key", f"the {parts[0]} key does not decode: {exc}") from None
    if key.get_name() != parts[0]:
        raise InvalidInputError("public_key", f"the key is a {key.get_name()}, not {parts[0]}")
    comment = parts[2].strip() if len(parts) > 2 else ""
    normalized = f"{parts[0]} {parts[1]}" + (f" {comment}" if comment else "")
    return normalized, fingerprint(blob)


def _pulls_over_sftp(connection: Connection) -> Connection:
    """Host keys are pinned for the partner servers our SFTP pulls log in to; any other
    connection has none, and saying "none pinned yet" would promise a pull that never comes."""
    if connection.method is not Method.SFTP:
        raise InvalidInputError("connection", f"{connection.name!r} is not an SFTP connection")
    if connection.methodology is not Methodology.PULL:
        raise InvalidInputError(
            "connection",
            f"{connection.name!r} is {METHODOLOGY_LABELS[connection.methodology]}: "
            "the partner logs in to our SFTP server, whose host key was shown with the login; "
            "host keys are pinned for pulls from a partner's server",
        )
    return connection
