"""Users: who logs in to the app and with which role (admin only).

Add a user (a strong password is generated and shown once), disable one (logged out at their
next click), or reset a forgotten password (a new one, shown once; it also enables a disabled
user again and clears their failed logins). The service layer checks the admin role again.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app_pages import _provisioned, _ui
from connectbatch import webapp
from connectbatch.errors import ConnectBatchError
from connectbatch.escaping import markdown_text
from connectbatch.models import ROLE_LABELS, Role, User
from connectbatch.secrets import new_password
from connectbatch.services import Services

CREATED_KEY = "users_created"  # (what happened, password) shown once


def user_rows(users: list[User]) -> list[dict[str, Any]]:
    return [
        {
            "Name": u.name,
            "Role": ROLE_LABELS[u.role],
            "State": "disabled" if u.disabled else "active",
            "Failed logins": u.failed_logins,
            "Created": u.created_at,
        }
        for u in users
    ]


def _add(services: Services) -> None:
    state = st.session_state
    password = new_password()
    try:
        user = services.add_user(str(state.get("users_name") or ""), Role(state["users_role"]), password)
    except ConnectBatchError as exc:
        state["users_problem"] = _ui.error_text(exc)
        return
    state[CREATED_KEY] = (f"Added {user.name}.", password)
    state["users_name"] = ""


def _reset(services: Services, name: str | None) -> None:
    """A new generated password for `name` (the CLI's `user password`), shown once."""
    if not name:
        return
    password = new_password()
    try:
        user = services.set_user_password(name, password)
    except ConnectBatchError as exc:
        st.session_state["users_problem"] = _ui.error_text(exc)
        return
    st.session_state[CREATED_KEY] = (f"New password of {user.name}; {user.name} may log in again.", password)


def _disable(services: Services, name: str) -> None:
    try:
        services.disable_user(name)
    except ConnectBatchError as exc:
        st.session_state["users_problem"] = _ui.error_text(exc)


def render() -> None:
    st.title("Users")
    st.caption("Who logs in, with which role. Passwords are shown once, when the user is added.")
    services = webapp.services()
    state = st.session_state
    if "users_problem" in state:
        st.error(markdown_text(state.pop("users_problem")))  # it may quote the name typed
    created = state.pop(CREATED_KEY, None)
    if created:
        st.success(f"{markdown_text(created[0])} Give them this password now; it is not shown again:")
        _provisioned.copyable(created[1])
    try:
        users = services.users()
    except ConnectBatchError as exc:
        _ui.show_error("Reading the users", exc)
        return
    st.dataframe(user_rows(users), hide_index=True)

    st.subheader("Add a user")
    cols = st.columns([2, 2, 1], vertical_alignment="bottom")
    cols[0].text_input("Name", key="users_name")
    cols[1].selectbox("Role", [r.value for r in Role], key="users_role",
                      format_func=lambda r: ROLE_LABELS[Role(r)])  # fmt: skip
    cols[2].button("Add user", key="users_add", type="primary", on_click=_add, args=(services,))

    me = services.user.name if services.user else ""
    active = [u.name for u in users if not u.disabled and u.name != me]
    if active:
        st.subheader("Disable a user")
        cols = st.columns([4, 1], vertical_alignment="bottom")
        chosen = cols[0].selectbox("User", active, key="users_disable_name")
        cols[1].button("Disable", key="users_disable", on_click=_disable, args=(services, chosen))

    others = [u.name for u in users if u.name != me]
    if others:
        st.subheader("Reset a password")
        st.caption("For a forgotten password or a disabled user: a new password, shown once.")
        cols = st.columns([4, 1], vertical_alignment="bottom")
        chosen = cols[0].selectbox("User", others, key="users_reset_name")
        cols[1].button("Reset password", key="users_reset", on_click=_reset, args=(services, chosen))


if __name__ == "__main__":
    render()
