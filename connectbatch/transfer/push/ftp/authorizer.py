"""Who a logged-in FTP session is and what it may do: pyftpdlib's authorizer interface,
answered from one gateway `Account` per session.

Each session gets its own authorizer bound to its account, instead of pyftpdlib's usual
username-keyed table: permissions are "elr" for read-only (outbound) accounts and "elradfmw"
for push accounts; SITE CHMOD and MFMT are not offered at all (see `session`).
"""

from __future__ import annotations

import os
from typing import Any

from pyftpdlib.authorizers import AuthenticationFailed

from connectbatch.transfer.push.gateway import Account, Gateway

READ_ONLY_PERMS = "elr"  # change dir, list, retrieve
WRITABLE_PERMS = "elradfmw"  # + append, delete, rename, make dir, store (no chmod "M", no mtime "T")
LOGIN_FAILED = "Login incorrect."
LOGIN_OK = "Login successful."
GOODBYE = "Goodbye."


class GatewayAuthorizer:
    """pyftpdlib's authorizer interface, answered from one `Account`.

    Each session gets its own instance once it has logged in (the class-level one, with no
    account, refuses everything). pyftpdlib's own authorizers keep a table keyed by user
    name; ours has nothing to keep in sync with the credential store, and two sessions of
    the same login can never see each other's state.
    """

    def __init__(self, gateway: Gateway, account: Account | None = None) -> None:
        self.gateway = gateway
        self.account = account

    def login(self, username: str, password: str) -> Account | None:
        """The account for these credentials, or None. Blocking: the password hash and DuckDB."""
        return self.gateway.authenticate(username, password)

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        """pyftpdlib's synchronous hook; our handler checks logins in a thread instead, but
        the answer is the same either way."""
        account = self.login(username, password)
        if account is None:
            raise AuthenticationFailed(LOGIN_FAILED)
        handler.account = account
        handler.authorizer = GatewayAuthorizer(self.gateway, account)

    def get_home_dir(self, username: str) -> str:
        if self.account is None:
            raise AuthenticationFailed(LOGIN_FAILED)
        return str(self.account.home)

    def get_perms(self, username: str) -> str:
        if self.account is None:
            return ""
        return WRITABLE_PERMS if self.account.writable else READ_ONLY_PERMS

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        if self.account is None or perm not in self.get_perms(username):
            return False
        if path is None:
            return True
        home = str(self.account.home)
        real = os.path.realpath(path)
        return real == home or real.startswith(home + os.sep)

    def has_user(self, username: str) -> bool:
        return self.account is not None and self.account.username == username

    def get_msg_login(self, username: str) -> str:
        return LOGIN_OK

    def get_msg_quit(self, username: str) -> str:
        return GOODBYE

    def impersonate_user(self, username: str, password: str) -> None:
        """Sessions are not separate OS users: confinement is `ConfinedFS`'s job."""

    def terminate_impersonation(self, username: str) -> None:
        """See `impersonate_user`."""
