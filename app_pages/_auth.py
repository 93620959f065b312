"""The login in front of every page, who may open which page, the sidebar's who-am-I, and
what a page that fails unexpectedly shows instead of Streamlit's traceback.

The router (streamlit_app.py) calls `current_user()` first: without a valid login only the
login form exists. The user is re-read from the database on every page view, so disabling a
user or changing a role takes effect at their next click; the session ends after
CONNECTBATCH_SESSION_HOURS. A login lasts through a reload and in other tabs of the browser: the
logged-in page trades a one-use token for a cookie, which a new session reads
(connectbatch/services/sessions.py); Log out ends it everywhere. The pages a role may use are
listed in the navigation; the others
stay registered but hidden, so a deep link to one shows "not allowed" (and the service layer
refuses its actions anyway: the page rules are for the menu, the role checks are in
connectbatch/services).
"""

from __future__ import annotations

import contextlib
import html
import logging
import time
from dataclasses import dataclass

import streamlit as st

from connectbatch import webapp
from connectbatch.errors import ConnectBatchError
from connectbatch.escaping import markdown_text
from connectbatch.models import ROLE_LABELS, Role, User
from connectbatch.services import AuthenticationError, sessions

log = logging.getLogger("connectbatch.pages")

FAILED_LOGIN_PAUSE = 0.5  # seconds a failed login waits before answering: slows guessing
NOTICE_KEY = "auth_notice"  # why the login form is shown again (expired, disabled)
HANDOFF_KEY = "auth_handoff"  # the one-use token this tab's browser trades for the cookie
SESSION_KEY = "auth_session"  # the hash of the browser session this tab's login is part of


@dataclass(frozen=True)
class PageSpec:
    path: str
    title: str
    icon: str
    url_path: str
    roles: tuple[Role, ...]  # who may open it besides admin; () = admin only


def may_open(user: User, spec: PageSpec) -> bool:
    return user.may(*spec.roles) if spec.roles else user.role is Role.ADMIN


def current_user() -> User | None:
    """The logged-in user as stored now, or None (and why, for the form) when the session
    expired or the user was disabled or removed."""
    user = st.session_state.get(webapp.USER_KEY)
    if not isinstance(user, User):
        user = _resumed()
        if user is None:
            return None
    ended = st.session_state.get(SESSION_KEY)
    if isinstance(ended, str) and not webapp.operator_services().session_alive(ended):
        webapp.log_out()
        st.session_state.pop(SESSION_KEY, None)
        st.session_state[NOTICE_KEY] = "You logged out (in this or another tab): please log in again."
        return None
    if webapp.session_expired():
        webapp.log_out()
        st.session_state[NOTICE_KEY] = "Your session has ended: please log in again."
        return None
    fresh = webapp.operator_services().current_user(user.name)
    if fresh is None or fresh.disabled:
        webapp.log_out()
        st.session_state[NOTICE_KEY] = "Your user was disabled: ask an admin."
        return None
    if fresh != user:  # role changed: keep the login time, use the stored user
        st.session_state[webapp.USER_KEY] = fresh
    return fresh


def _cookie() -> str | None:
    """The session cookie the browser sent when this session connected, if any."""
    value = st.context.cookies.get(webapp.SESSION_COOKIE)
    return value if isinstance(value, str) and value else None  # not a str: AppTest's stand-in


def _client_address() -> str | None:
    """The browser's address, so that failed logins are throttled per name and client and a
    stranger failing from elsewhere cannot lock a user out (connectbatch/services/users.py).
    None where Streamlit knows none (localhost, AppTest) or cannot say: then the name's
    logins without an address share one count. Never raises: the login form shows no
    traceback."""
    try:
        address = getattr(st.context, "ip_address", None)
    except Exception:  # outside a live session Streamlit may raise rather than answer
        return None
    return address if isinstance(address, str) and address else None


def _resumed() -> User | None:
    """The user of the browser's session cookie (a reload, another tab), logged in to this
    Streamlit session as at their login; None without a live one."""
    token = _cookie()
    if token is None:
        return None
    try:
        found = webapp.operator_services().resume(token)
    except ConnectBatchError:  # the database is busy, ...: the login form asks instead
        return None
    if found is None:
        return None
    user, logged_in_at = found
    webapp.log_in(user, now=logged_in_at.timestamp())
    st.session_state[SESSION_KEY] = sessions.token_hash(token)
    return user


def _handoff() -> None:
    """While this tab's browser has not traded its token for the cookie, an invisible image
    that makes it do so; once it has, the session is this tab's (Log out ends it)."""
    pending = st.session_state.get(HANDOFF_KEY)
    if not isinstance(pending, tuple):
        return
    token, deadline = pending
    traded = webapp.operator_services().session_of_handoff(token)
    if traded is not None or time.time() > deadline:  # traded, or never will be (no cookie route)
        st.session_state.pop(HANDOFF_KEY, None)
        own = st.session_state.get(SESSION_KEY)
        if traded is not None:
            st.session_state[SESSION_KEY] = traded
            if isinstance(own, str) and own != traded:  # the tab's own (`_submit`): one is enough
                with contextlib.suppress(ConnectBatchError):
                    webapp.operator_services().end_session(own)
        return
    # Relative, as BACKEND_SCRIPT: the route is beside the page (also behind a proxy's prefix).
    src = html.escape(f".{webapp.SESSION_ROUTE}?h={token}", quote=True)
    st.html(f'<img src="{src}" alt="" width="1" height="1" style="position:absolute;opacity:0">')


def _log_out() -> None:
    """Log out: every browser session of this login too, so that a reload or another tab is
    logged out (`Services.end_sessions_of` says why not only this tab's)."""
    with contextlib.suppress(ConnectBatchError):  # on failure: this tab's session, as below
        webapp.services().log_out_everywhere()
    ended = {st.session_state.pop(SESSION_KEY, None)}
    pending = st.session_state.pop(HANDOFF_KEY, None)
    cookie = _cookie()
    if cookie is not None:
        ended.add(sessions.token_hash(cookie))
    services = webapp.operator_services()
    # On failure the session ends when it expires; this tab is logged out anyway.
    if isinstance(pending, tuple):  # the browser may have traded the token since the last run
        with contextlib.suppress(ConnectBatchError):
            services.end_handoff(pending[0])
    for session in ended:
        if isinstance(session, str):
            with contextlib.suppress(ConnectBatchError):
                services.end_session(session)
    webapp.log_out()


def _submit() -> None:
    """The form's callback: runs before the rerun, so the router sees the login at once."""
    state = st.session_state
    name = str(state.get("login_name") or "").strip()
    password = str(state.get("login_password") or "")
    state["login_password"] = ""
    state.pop(NOTICE_KEY, None)
    if not name or not password:
        state["login_problem"] = "Enter your name and password."
        return
    try:
        user = webapp.operator_services().authenticate(name, password, client=_client_address())
    except AuthenticationError as exc:
        time.sleep(FAILED_LOGIN_PAUSE)
        state["login_problem"] = str(exc)
        return
    except ConnectBatchError as exc:  # the database is busy, ...
        state["login_problem"] = f"Logging in failed: {exc}"
        return
    state.pop("login_problem", None)
    webapp.log_in(user)
    state.pop(SESSION_KEY, None)
    services = webapp.operator_services()
    try:
        token = services.start_handoff(user)  # logged in now
        state[HANDOFF_KEY] = (token, time.time() + sessions.HANDOFF_SECONDS)
        # The tab's own session, known from now on: a tab that learnt its session only from the
        # browser's trade, at its next run, was never told of a Log out elsewhere or a new
        # password when it stayed idle meanwhile, or when its browser never traded (the
        # image blocked): it stayed logged in for the session's hours. `_handoff` swaps it for
        # the browser's once traded.
        own = services.redeem_handoff(services.start_handoff(user))
        if own is not None:
            state[SESSION_KEY] = sessions.token_hash(own[0])
    except ConnectBatchError:  # logged in here; a reload will ask again
        state.pop(HANDOFF_KEY, None)


def login_form() -> None:
    st.title("ConnectBatch")
    st.caption("Log in to continue. Ask an admin for a login (`connectbatch user add`).")
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.info(notice)
    problem = st.session_state.pop("login_problem", None)
    if problem:  # it may quote the name as typed: by anyone, not logged in
        st.error(markdown_text(str(problem)))
    with st.form("login", enter_to_submit=True):
        st.text_input("Name", key="login_name", autocomplete="username")
        st.text_input("Password", key="login_password", type="password", autocomplete="current-password")
        st.form_submit_button("Log in", type="primary", on_click=_submit)


def sidebar(user: User) -> None:
    # A user's name may hold "_" and "." (x._admin_ read "x.admin", in italics): as typed.
    st.caption(f"Logged in as **{markdown_text(user.name)}** · {ROLE_LABELS[user.role]}")
    st.button("Log out", key="logout", icon=":material/logout:", on_click=_log_out)
    _handoff()


def not_allowed(user: User, title: str) -> None:
    st.title(title)
    st.error(
        f"Not allowed: {markdown_text(user.name)} ({ROLE_LABELS[user.role]}) may not use this page. "
        "The menu lists the pages your role can use."
    )


def start() -> None:
    """The app root's page, never drawn: the router opens the role's first screen instead."""


def store_unavailable(exc: Exception) -> None:
    """The login could not be checked (the database busy with another process, or
    unreadable): what happened and what to do, no traceback."""
    log.warning("the login could not be checked: %s", exc)
    st.error(
        f"ConnectBatch cannot read its database right now ({markdown_text(str(exc))}). "
        "Try again in a moment; if it persists, tell an admin."
    )


def page_failed(title: str, exc: Exception) -> None:
    """A page stopped by an exception no one foresaw: what happened and what to do; the
    traceback (file paths, code) goes to the log, never to the screen."""
    log.error("page %s failed unexpectedly", title, exc_info=exc)
    st.error(
        f"{markdown_text(title)} failed unexpectedly ({markdown_text(f'{type(exc).__name__}: {exc}')}). "
        "Reload the page or open it again from the menu; if it keeps failing, tell an admin "
        "(the details are in the app's log)."
    )
