"""File format & dry run: a data type's columns, its template CSV, and a trial run of an
uploaded file (parse and validation, as a connection would do them) that stores nothing.

The column documentation and the template are read from the schema registry, the one source
of truth the parser and the suites are generated from; the dry run goes through
`Services.dry_run`.

Streamlit runs a page with `__name__ == "__main__"`; the UI is built only then, so tests import
the helpers below (`column_docs`, `dry_run`, ...) without rendering anything.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import zoneinfo
from pathlib import Path

import pyarrow as pa
import streamlit as st

from app_pages import _ui
from connectbatch import schemas, webapp
from connectbatch.browse import visible_table
from connectbatch.errors import ConnectBatchError
from connectbatch.escaping import markdown_text, visible
from connectbatch.models import Direction
from connectbatch.parser import api as csvparse
from connectbatch.pipeline import review
from connectbatch.pipeline.dryrun import DryRun, Verdict, results_name
from connectbatch.pipeline.dryrun_rows import Would
from connectbatch.pipeline.validation import ValidationReport
from connectbatch.services import Services

log = logging.getLogger(__name__)

PREVIEW_ROWS = 100
REJECTS_SHOWN = 1000
UPLOAD_TYPES = ["csv", "gz", "zip"]


def allowed_values(column: schemas.Column) -> str:
    """What a coded column accepts, short enough for a table cell."""
    if column.kind is schemas.Kind.ENUM:
        return ", ".join(column.allowed)
    if column.kind is schemas.Kind.COUNTRY:
        return f"any of {len(column.choices)} ISO 3166-1 alpha-2 codes (US, GB, …)"
    if column.kind is schemas.Kind.CURRENCY:
        return f"any of {len(column.choices)} ISO 4217 codes (USD, EUR, …)"
    return ""


def column_docs(data_type: schemas.DataType) -> list[dict[str, str | bool]]:
    """The column documentation table, one row per schema column, in file order."""
    return [
        {
            "Column": c.name,
            "Type": schemas.TYPE_LABELS[c.kind],
            "Required": c.required,
            "Default": c.default or "",
            "Allowed values": allowed_values(c),
            "Description": c.description,
        }
        for c in data_type.columns
    ]


def dry_run(
    services: Services,
    data: bytes,
    data_type: str,
    *,
    encoding: str | None = None,
    delimiter: str = ",",
    timezone: str = "UTC",
) -> tuple[csvparse.ParseResult, ValidationReport, float]:
    """Parse and validate an uploaded file without storing anything; return the parse
    result, the validation report and the seconds it took. File-level problems raise
    ConnectBatchError."""
    started = time.perf_counter()
    result, report = services.dry_run(
        data, data_type, encoding=encoding, delimiter=delimiter, timezone=timezone
    )
    return result, report, time.perf_counter() - started


def rejects_table(result: csvparse.ParseResult, limit: int = REJECTS_SHOWN) -> list[dict[str, object]]:
    return [
        {"Line": r.line, "Column": r.column, "Value": r.value, "Reason": r.reason}
        for r in result.rejects[:limit]
    ]


def preview(result: csvparse.ParseResult, rows: int = PREVIEW_ROWS) -> pa.Table:
    """The first accepted rows, with the physical line each came from in front."""
    return result.table.slice(0, rows).add_column(0, "Line", result.lines.slice(0, rows))


def render() -> None:
    st.title("File format & dry run")
    st.caption("Check a file against a data type before it flows through a connection. Nothing is stored.")

    key = st.selectbox(
        "Data type",
        options=list(schemas.REGISTRY),
        format_func=lambda k: schemas.REGISTRY[k].label,
        key="data_type",
    )
    data_type = schemas.get(key)
    st.write(data_type.description)

    st.subheader("Columns")
    st.caption(
        f"{len(data_type.columns)} columns, {len(data_type.required_columns)} required. Header "
        "names match case-insensitively and in any order; unknown columns are reported, not fatal."
    )
    st.dataframe(column_docs(data_type), hide_index=True)
    _ui.template_download(data_type, "template_download")  # no re-parse of the upload either

    st.subheader("Dry run")
    st.caption(
        "Upload a sample file to see what a connection would accept and reject, and how the "
        "batch fares against the data type's expectations. Nothing is stored. Pick a connection "
        "to check the file with its own mapping, settings and already-loaded keys, as partners' "
        "dry runs (the dry-run/ folder, the +dryrun address) do."
    )
    connection_id = _pick_connection(key)
    if connection_id is not None:
        _connection_dry_run(connection_id)
        return
    with st.expander("Reading options"):
        # the same choices as a connection's (app_pages/_ui.py), so a dry run reads as it will
        encoding = st.selectbox(
            "Encoding", list(_ui.ENCODINGS), key="encoding", format_func=lambda e: _ui.ENCODINGS[e]
        )
        delimiter = st.selectbox(
            "Delimiter", list(_ui.DELIMITERS), key="delimiter", format_func=lambda d: _ui.DELIMITERS[d]
        )
        zones = sorted(zoneinfo.available_timezones())
        timezone = st.selectbox(
            "Time zone of dates without Z or an offset",
            zones,
            index=zones.index("UTC") if "UTC" in zones else 0,
            key="timezone",
        )
    upload = st.file_uploader(
        "CSV file (.csv, .csv.gz or a .zip with one file)", type=UPLOAD_TYPES, key="upload"
    )
    if upload is not None:
        _show_dry_run(upload.getvalue(), key, encoding or None, delimiter, timezone)


def _pick_connection(data_type: str) -> int | None:
    """An inbound connection of the chosen data type to run the file as, or None (only the
    data type's rules)."""
    try:
        inbound = [
            c for c in webapp.services().connections()
            if c.direction is Direction.INBOUND and c.data_type == data_type
        ]  # fmt: skip
    except ConnectBatchError:
        inbound = []
    names = {c.id: visible(c.name) for c in inbound}
    picked: int | None = st.selectbox(
        "Connection", [None, *names], key="dry_run_connection",
        format_func=lambda i: "None: only the data type's rules" if i is None else names[i],
    )  # fmt: skip
    return picked


def _connection_dry_run(connection_id: int) -> None:
    upload = st.file_uploader(
        "CSV file (.csv, .csv.gz or a .zip with one file)", type=UPLOAD_TYPES, key="connection_upload"
    )
    pasted = st.text_area("…or paste the file's text", key="dry_run_paste", height=120)
    if upload is not None:
        _show_connection_dry_run(upload.getvalue(), upload.name, connection_id)
    elif pasted.strip():
        _show_connection_dry_run(pasted.encode("utf-8"), "pasted.csv", connection_id)


def connection_dry_run(services: Services, connection_id: int, data: bytes, file_name: str) -> DryRun:
    """The partners' dry run (`Services.dry_run_file`, `pipeline.dryrun`) on bytes in hand."""
    with tempfile.TemporaryDirectory(prefix="dryrun-") as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(data)
        return services.dry_run_file(connection_id, path, file_name, source="app")


def _unexpected(exc: Exception) -> str:
    """A bug's message, its text partner data as likely as not (a file or member name)."""
    why = markdown_text(str(exc))
    return f"The dry run failed unexpectedly ({type(exc).__name__}: {why}). Please report this file."


def _show_connection_dry_run(data: bytes, file_name: str, connection_id: int) -> None:
    try:
        with st.spinner("Checking the file as the connection would load it…"):
            dry = connection_dry_run(webapp.services(), connection_id, data, file_name)
    except ConnectBatchError as exc:
        st.error(f"The dry run could not run: {markdown_text(str(exc))}")
        return
    except Exception as exc:  # a bug: say so plainly, keep the traceback in the log
        log.exception("connection dry run failed unexpectedly")
        st.error(_unexpected(exc))
        return
    summary = markdown_text(dry.summary)
    if dry.verdict is Verdict.LOAD:
        st.success(f"Nothing was stored. The file {dry.verdict}: {summary}")
    elif dry.verdict is Verdict.HOLD:
        st.warning(f"Nothing was stored. The file {dry.verdict}: {summary}")
    else:
        st.error(f"Nothing was stored. The file {dry.verdict}: {summary}")
    statuses = [s for s in Would if s is not Would.DRY_RUN and dry.count(s)]
    cols = st.columns(max(1, len(statuses)))
    for col, status in zip(cols, statuses, strict=False):
        col.metric(status.value.replace("_", " ").capitalize(), f"{dry.count(status):,}")
    st.dataframe(visible_table(dry.table().slice(0, REJECTS_SHOWN)), hide_index=True)
    st.download_button(
        "Download the results file", data=dry.csv_bytes(), file_name=results_name(dry.file),
        mime="text/csv", key="dry_run_download", on_click="ignore",
    )  # fmt: skip


def _show_dry_run(data: bytes, data_type: str, encoding: str | None, delimiter: str, timezone: str) -> None:
    try:
        with st.spinner("Parsing and validating the file…"):
            result, report, seconds = dry_run(
                webapp.services(), data, data_type,
                encoding=encoding, delimiter=delimiter, timezone=timezone,
            )  # fmt: skip
    except ConnectBatchError as exc:
        st.error(f"This file cannot be used: {markdown_text(str(exc))}")
        return
    except Exception as exc:  # a parser bug: say so plainly, keep the traceback in the log
        log.exception("dry run failed unexpectedly")
        st.error(_unexpected(exc))
        return

    cols = st.columns(4)
    cols[0].metric("Rows accepted", f"{result.rows_accepted:,}")
    cols[1].metric("Rows rejected", f"{result.rows_rejected:,}")
    cols[2].metric("Rejects", f"{len(result.rejects):,}")
    cols[3].metric("Seconds", f"{seconds:.3f}")
    st.caption(f"Read as {result.encoding}.")
    headline = review.headline(report)
    if not report.success:
        st.warning(
            f"A connection would quarantine this batch: {headline} Nothing would be loaded "
            "until a reviewer releases it.",
            icon=":material/block:",
        )
    elif report.warnings:
        st.warning(f"A connection would load this batch, with warnings: {headline}")
    else:
        st.success(f"A connection would load this batch: {headline}")
    if result.unknown_columns:
        st.info(
            "Columns not in the data type (kept out of the table): "
            + ", ".join(markdown_text(name) for name in result.unknown_columns)
        )

    if result.rejects:
        st.markdown("**Rejects**")
        if len(result.rejects) > REJECTS_SHOWN:
            st.caption(f"The first {REJECTS_SHOWN:,} of {len(result.rejects):,}.")
        st.dataframe(_ui.shown_rows(rejects_table(result)), hide_index=True)

    st.markdown(f"**Accepted rows** (the first {min(PREVIEW_ROWS, result.rows_accepted):,})")
    st.dataframe(visible_table(preview(result)), hide_index=True)

    st.markdown("**Expectations**")
    st.dataframe(
        _ui.shown_rows(review.outcome_rows(report)),  # the samples quote partner cells
        hide_index=True,
        column_config={"Expectation": st.column_config.TextColumn(width="large")},
    )
    with st.expander("Raw validation result (JSON)"):
        # As the Validation page shows it: JSON text with every non-ASCII character escaped.
        # st.json drew the partner's cells it quotes (unexpected values) as sent: a bidi
        # override in one reordered what the reviewer read.
        st.code(json.dumps(report.raw, indent=2, default=str), language="json", height=400)


if __name__ == "__main__":
    render()
