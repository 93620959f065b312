"""The wizard's credentials step, reuse part (issue 11, credentials reuse): either select an
existing credential set of the partner (same method, push or pull) or create new ones. Kept
apart from app_pages/connection_wizard.py, which draws the rest of the step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from app_pages import _ui
from app_pages._wizard_state import NEW_PARTNER, WizardState
from connectbatch.escaping import visible
from connectbatch.services import Services

CREATE_NEW = "Create new credentials"
USE_EXISTING = "Use existing credentials"


def reuse_choice(
    s: WizardState, services: Services, field_error: Callable[[str], None]
) -> dict[str, Any] | None:
    """Either select existing credentials of the partner (same method, push or pull), or
    create new ones (seed 000). The selected set's secret is never shown again. None: the
    person creates new credentials (also when the partner has none to offer)."""
    if s.partner == NEW_PARTNER:
        return None  # a partner made by this wizard has no credentials yet
    ok, offered = _ui.safely(
        "Loading the partner's credentials", lambda: services.reusable_credentials(s.connection(), s.partner)
    )
    if not ok or not offered:
        return None
    choice = st.radio(
        "Credentials",
        [CREATE_NEW, USE_EXISTING],
        index=1 if s.reuse_credential is not None else 0,
        key="wiz_cred_choice",
        horizontal=True,
    )
    if choice != USE_EXISTING:
        return None
    by_id = {c.id: c for c in offered}
    ids = list(by_id)
    current = s.reuse_credential if s.reuse_credential in by_id else ids[0]

    def label(credential_id: int) -> str:
        c = by_id[credential_id]
        users = ", ".join(visible(n) for n in c.used_by) or "no connection"
        return f"{visible(c.name)} · {visible(c.username or '—')} · used by {users}"

    chosen = st.selectbox(
        "Existing credentials of the partner", ids, index=ids.index(current), format_func=label,
        key="wiz_reuse_credential",
    )  # fmt: skip
    field_error("reuse_credential")
    st.caption(
        "This connection uses the same login as the connections listed. Its password or key "
        "is not shown again: the partner already has it."
        + (
            " Uploads with a shared login go to the connection whose folder and file pattern "
            "match them: keep the patterns distinct."
            if not s.is_pull()
            else ""
        )
    )
    return {"reuse_credential": int(chosen)}
