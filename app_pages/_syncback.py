"""Status sync-back on screen (pipeline/syncback.py): the channels and the partner's status
words in the connection's run settings (wizard and Edit, through
`_forms.run_settings_form`), and the connection page's "Sync back now" button."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from app_pages import _ui
from app_pages._forms import FieldErrors, Keys, seed
from connectbatch.escaping import visible
from connectbatch.models import Connection
from connectbatch.pipeline import syncback
from connectbatch.services import Services

CHANNEL_LABELS = {
    "files": "Status files in the partner's Pull-from-us folder",
    "email": "E-mail to the return address",
}


def sync_back_form(keys: Keys, c: Connection, errors: FieldErrors) -> dict[str, Any]:
    """Where later status changes go, and the partner's word for each of our statuses."""
    entered: dict[str, Any] = {}
    seed(keys("sync_back"), list(c.sync_back))
    entered["sync_back"] = st.multiselect(
        "Status sync-back",
        list(syncback.CHANNELS),
        key=keys("sync_back"),
        format_func=CHANNEL_LABELS.get,
        placeholder="Off",
        help="After the results file, report every later change of the partner's records "
        "(released, discarded, modified, reversed, locked...) once, in their own key names.",
    )
    errors("sync_back")
    seed(keys("status_words"), json.dumps(c.status_words) if c.status_words else "")
    text = st.text_input(
        "Partner's status words (JSON)",
        key=keys("status_words"),
        placeholder='{"reversed": "deleted"}',
        help="Overrides of the defaults: "
        + ", ".join(f"{k} → {v}" for k, v in syncback.DEFAULT_WORDS.items())
        + ". Empty: the defaults.",
    )
    try:
        entered["status_words"] = syncback.checked_words(text)
    except syncback.SyncBackSettingError:
        entered["status_words"] = text  # saving says what is wrong with it
    errors("status_words")
    return entered


def sync_back_now(services: Services, c: Connection) -> None:
    """Sync back now: the same service as the engine's job and `connectbatch syncback N`."""
    ok, ledger = _ui.safely("Loading sync-backs", lambda: services.sync_backs(c.id, limit=1))
    if ok and ledger:
        last = ledger[0]
        st.caption(
            f"Last status sync-back {_ui.when(last.created_at)} ({last.channel}): "
            f"{last.rows:,} status rows in {visible(last.file_name)}"
        )
    if st.button("Sync back now", key="sync_back_now", icon=":material/sync:"):
        ok, done = _ui.safely("Sync back now", lambda: services.sync_back_now(c.id))
        if ok and done is not None:
            if done.sent:
                rows = sum(s.rows for s in done.sent)
                channels = ", ".join(s.channel for s in done.sent)
                _ui.flash("success", f"Sent {rows:,} status rows ({channels}).")
            else:
                skipped = "; ".join(f"{k}: {v}" for k, v in done.skipped.items())
                _ui.flash("info", "No status changes to report." + (f" ({skipped})" if skipped else ""))
            st.rerun()
