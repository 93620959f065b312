"""The connection page's Mapping tab (issue 12): the saved field mapping (current version),
and from a sample file the suggested mapping, line by line with confidence and reason, each
line editable (one of our columns or "ignore"), constants for required columns the partner
cannot send, saved as a new version.

The sample's bytes are kept in the session (`sample_key`) so the suggestion survives reruns
of the form; partner text (headers, values in reasons) is shown through `visible()` and as
plain text, never as markdown."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import _ui
from connectbatch import schemas
from connectbatch.escaping import markdown_text, visible
from connectbatch.mapping.suggest import Suggestion
from connectbatch.models import Connection
from connectbatch.services import Services
from connectbatch.store.mappings import SavedMapping

IGNORE = "(ignore)"


def sample_key(connection_id: int) -> str:
    return f"mapping_sample_{connection_id}"


def line_key(connection_id: int, index: int) -> str:
    return f"mapping_line_{connection_id}_{index}"


def constant_key(connection_id: int, column: str) -> str:
    return f"mapping_const_{connection_id}_{column}"


def mapping_tab(services: Services, c: Connection) -> None:
    ok, current = _ui.safely("Loading the field mapping", lambda: services.mapping(c.name))
    if not ok:
        return
    current_view(current)
    upload = st.file_uploader(
        "Sample file from the partner (header and a few rows)", key=f"mapping_upload_{c.id}",
        help="Nothing is loaded: the file is only read to suggest a mapping.",
    )  # fmt: skip
    if upload is not None:
        st.session_state[sample_key(c.id)] = upload.getvalue()
    data = st.session_state.get(sample_key(c.id))
    if not isinstance(data, bytes):
        return
    ok, suggestion = _ui.safely("Reading the sample", lambda: services.suggest_mapping(c.name, data))
    if ok and suggestion is not None:
        edit_form(services, c, suggestion, current)


def current_view(current: SavedMapping | None) -> None:
    if current is None:
        st.info("No field mapping saved: the partner's header must use our column names.")
        return
    who = f" by {visible(current.created_by)}" if current.created_by else ""
    st.markdown(f"**Current mapping: version {current.version}**, saved {_ui.when(current.created_at)}{who}")
    rows = [{"Partner column": visible(h), "Our column": t or IGNORE} for h, t in current.columns.items()]
    rows += [
        {"Partner column": "(constant) " + visible(v), "Our column": k} for k, v in current.constants.items()
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def edit_form(
    services: Services, c: Connection, suggestion: Suggestion, current: SavedMapping | None
) -> None:
    dtype = schemas.get(c.data_type)
    options = [IGNORE, *dtype.column_names]
    st.markdown("**Suggested mapping**: check each line; lines marked ⚠ need a look.")
    if suggestion.preamble:
        st.caption("The file starts with settings: " + markdown_text(
            ", ".join(f"{k}={v}" for k, v in suggestion.preamble.items())
        ) + " (a TimeZone there is used for the file's dates).")  # fmt: skip
    if suggestion.missing_keys:
        st.warning(
            "No column of the sample feeds "
            + ", ".join(f"**{markdown_text(k)}**" for k in suggestion.missing_keys)
            + ": map the partner's column to it, or ask them to send it. It is the record's key, "
            "so it takes no constant (one value for every row would make every row after the "
            "first a duplicate)."
        )
    with st.form(f"mapping_form_{c.id}"):
        for i, line in enumerate(suggestion.lines):
            left, mid, conf, why = st.columns([3, 3, 1, 5], vertical_alignment="center")
            left.text(("⚠ " if line.unsure else "") + visible(line.header))
            mid.selectbox(
                "Our column", options, index=options.index(line.target or IGNORE),
                key=line_key(c.id, i), label_visibility="collapsed",
            )  # fmt: skip
            conf.text(f"{line.confidence:.0%}")
            why.text(visible(line.reason))
        missing = suggestion.missing_required
        kept = current.constants if current is not None else {}
        if missing or kept:
            st.markdown("**Constants**: a fixed value for a required column the file does not carry.")
        for column in dict.fromkeys([*missing, *kept]):
            st.text_input(column, value=kept.get(column, ""), key=constant_key(c.id, column))
        submitted = st.form_submit_button("Save as a new version", key=f"mapping_save_{c.id}", type="primary")
    if submitted:
        save(services, c, suggestion, [*missing, *kept])


def save(services: Services, c: Connection, suggestion: Suggestion, constant_columns: list[str]) -> None:
    columns: dict[str, str | None] = {}
    for i, line in enumerate(suggestion.lines):
        chosen = st.session_state.get(line_key(c.id, i), line.target or IGNORE)
        columns[line.header] = None if chosen == IGNORE else str(chosen)
    constants = {
        col: str(st.session_state.get(constant_key(c.id, col), "")).strip()
        for col in dict.fromkeys(constant_columns)
    }
    constants = {k: v for k, v in constants.items() if v}
    ok, saved = _ui.safely(
        "Saving the field mapping", lambda: services.set_mapping(c.name, columns, constants)
    )
    if ok and saved is not None:
        st.session_state.pop(sample_key(c.id), None)
        _ui.flash("success", f"Saved field mapping version {saved.version}.")
        st.rerun()
