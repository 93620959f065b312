"""Browser sessions of the app: a login that lasts through a reload and in other tabs.

Streamlit keeps a login in the server's session state, which a reload or a second tab does
not share: each asked for the password again. A page cannot set a cookie either (it talks to
the server over a WebSocket), so the login goes in three steps:

1. The login form's run (app_pages/_auth.py) checks the password and asks `start_handoff`
   for a one-use token that lives two minutes.
2. The logged-in page shows an invisible image at `/_session?h=<token>` (a route of the app's
   server, connectbatch/webapp.py). Its request trades the token (`redeem_handoff`) for a new
   session token, which the answer sets as an HttpOnly, SameSite=Strict cookie.
3. A new Streamlit session (a reload, a tab) reads the cookie (`st.context.cookies`) and
   `resume` gives back the user, and when they logged in (the session still ends
   CONNECTBATCH_SESSION_HOURS after the login).

Only SHA-256 hashes of the tokens are stored: 32 random bytes need no slow hash. A session
ends at Log out (`end`), when it expires, and for every session of a user who is disabled or
given a new password (services/users.py). Open to every caller, like `authenticate`: each
step needs a token only a logged-in page or its browser holds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from connectbatch.models import Role, User
from connectbatch.services.base import PermissionDeniedError, ServiceBase, requires
from connectbatch.store import sessions as session_store
from connectbatch.store import users as user_store

HANDOFF_SECONDS = 120


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class SessionServices(ServiceBase):
    def _session_ends(self, logged_in_at: dt.datetime) -> dt.datetime:
        return logged_in_at + dt.timedelta(hours=self.settings.session_hours)

    def start_handoff(self, user: User) -> str:
        """A one-use token for the browser of the page `user` just logged in on (now: the
        session it is traded for ends CONNECTBATCH_SESSION_HOURS from now)."""
        if self.user is not None and self.user.name != user.name:
            raise PermissionDeniedError("a session can only be started for the user logged in")
        token = secrets.token_urlsafe(32)
        now = self.clock()
        expires = min(now + dt.timedelta(seconds=HANDOFF_SECONDS), self._session_ends(now))
        with self.db.transaction() as con:
            session_store.remove_expired(con, now)
            session_store.add(con, token_hash(token), "handoff", user.name, now, expires)
        return token

    def redeem_handoff(self, token: str) -> tuple[str, int] | None:
        """(a new session token, seconds it lives) for a live handoff token, which is used up;
        None for any other."""
        now = self.clock()
        handoff = token_hash(token)
        with self.db.transaction() as con:
            found = session_store.get(con, handoff, "handoff", now)
            if found is None:
                return None
            user_name, since, _ = found
            session_store.remove(con, handoff)
            session = secrets.token_urlsafe(32)
            ends = self._session_ends(since)
            session_store.add(con, token_hash(session), "session", user_name, since, ends, handoff)
        return session, max(1, int((ends - now).total_seconds()))

    def session_of_handoff(self, handoff_token: str) -> str | None:
        """The hash of the session the handoff token was traded for (None while it is not):
        the tab that logged in learns which session is its own, to end it at Log out."""
        with self.db.connect() as con:
            return session_store.of_handoff(con, token_hash(handoff_token))

    def resume(self, token: str) -> tuple[User, dt.datetime] | None:
        """(the user, when they logged in) of a live session token whose user may still log
        in; None for any other."""
        now = self.clock()
        with self.db.connect() as con:
            found = session_store.get(con, token_hash(token), "session", now)
            user = user_store.get(con, found[0]) if found else None
        if found is None or user is None or user.disabled:
            return None
        return user, found[1]

    def session_alive(self, session_hash: str) -> bool:
        """Whether the session with this hash has not ended (Log out in another tab ends it)."""
        with self.db.connect() as con:
            return session_store.get(con, session_hash, "session", self.clock()) is not None

    def end_session(self, session_hash: str) -> None:
        """Log out: the session's cookie opens nothing any more, in any tab."""
        with self.db.transaction() as con:
            session_store.remove(con, session_hash)

    @requires(*Role)
    def log_out_everywhere(self) -> None:
        """Log the acting user out of every browser session. A tab knows only the session it
        logged in or connected with; another tab of the same browser that logged in through the
        form later set the cookie to its own session, which a reload or a new tab then opened:
        ending only the tab's own left the browser logged in."""
        if self.user is None:  # the local operator has no browser session
            return
        with self.db.transaction() as con:
            session_store.remove_of_user(con, self.user.name)

    def end_handoff(self, handoff_token: str) -> None:
        """Log out of a tab that has not learnt its session yet (Log out right after the
        login, before a rerun asked `session_of_handoff`): the session its browser traded the
        token for ends, and a token not traded yet can no longer be."""
        with self.db.transaction() as con:
            session_store.remove_handoff(con, token_hash(handoff_token))
