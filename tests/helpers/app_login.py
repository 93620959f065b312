"""Logging an AppTest in: every page of the app is behind a login.

`log_in(at, role=...)` creates the user in the app's data directory (CONNECTBATCH_HOME, as
the app's engine reads it) when it does not exist, and puts into the AppTest's session what
the login form puts there (`connectbatch.webapp.log_in`). The browser tests log in through the
real form instead (tests/e2e/browser.py).
"""

from __future__ import annotations

import base64
import hashlib
import time

from streamlit.testing.v1 import AppTest

from connectbatch import webapp
from connectbatch.models import Role, User
from connectbatch.services import Services
from connectbatch.settings import Settings

PASSWORD = "correct horse battery staple"


def legacy_hash(password: str) -> str:
    """A hash as stored before Argon2id: `scrypt$salt$digest`, N=2^14, r=8, p=1."""
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def ensure_user(name: str, role: Role = Role.ADMIN, password: str = PASSWORD) -> User:
    """The user `name` of the test's data directory, created with `role` when missing."""
    services = Services(Settings.from_env())
    found = services.current_user(name)
    return found if found is not None else services.add_user(name, role, password)


def log_in(at: AppTest, name: str = "tester", role: Role = Role.ADMIN) -> AppTest:
    """`at` logged in as `name` (created with `role` when missing); returns `at` to chain."""
    at.session_state[webapp.USER_KEY] = ensure_user(name, role)
    at.session_state[webapp.SINCE_KEY] = time.time()
    return at
