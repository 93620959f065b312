"""Partner dry runs: what a connection would do with a file, with nothing stored.

A partner tests a file before go-live without help, through the same doors files arrive by:
a `dry-run/` folder in each push home on our hosted SFTP and FTP servers (transfer/push/
gateway.py), a `+dryrun` e-mail address (the connection's inbound address with `+dryrun` in
the local part, engine), and the app's "File format & dry run" screen. All three call `run`.

A dry run parses the file with the connection's own settings, applies its late-events
policy, validates it as a load would, and checks the keys the connection has already loaded
(a repeat would hold the batch, or replace or leave the stored record, as its re-delivery
mode says; a modification row is checked against its own partner's actions only, with the
same "no such action" for everyone else's, so a dry run cannot probe another partner's keys).
It stores nothing: the only trace is one line in the connection's history (`EVENT_KIND`).

The answer is a results file in the layout of `pipeline.results` with "would" statuses
(`Would`) and a `Line 0` row saying what the batch would do, escaped like any results file.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from connectbatch import schemas
from connectbatch.errors import ConnectBatchError
from connectbatch.escaping import visible
from connectbatch.models import Connection
from connectbatch.parser import api as csvparse
from connectbatch.parser.api import Reject
from connectbatch.parser.options import ParseOptions
from connectbatch.pipeline import dryrun_rows, late, load, mailer, results, validation
from connectbatch.pipeline.dryrun_rows import Row, Would
from connectbatch.pipeline.outbox import Outbox
from connectbatch.schemas import record_key
from connectbatch.settings import Settings
from connectbatch.store import Database
from connectbatch.store import data as data_store
from connectbatch.store import events as event_store

log = logging.getLogger("connectbatch.pipeline.dryrun")

FOLDER = "dry-run"  # the folder in each push home whose uploads are dry runs
ADDRESS_TAG = "dryrun"  # inbox+<connection>+dryrun@...
EVENT_KIND = "dry_run"  # the connection's history line
RESULTS_SUFFIX = ".results.csv"


class Verdict(StrEnum):
    LOAD = "would be loaded"
    HOLD = "would be held for review"
    REJECT = "would be rejected"


@dataclass
class DryRun:
    """What a connection would do with one file. `parsed`/`report` are None when the file
    as a whole could not be read (`message` says why)."""

    connection: Connection
    file: str
    verdict: Verdict
    message: str
    parsed: csvparse.ParseResult | None = None
    report: validation.ValidationReport | None = None
    rows: list[Row] = field(default_factory=list)
    event: event_store.ConnectionEvent | None = None  # its history line, once recorded

    def count(self, status: Would) -> int:
        return sum(r.status is status for r in self.rows)

    @property
    def summary(self) -> str:
        """One sentence: what the batch would do, with the row counts."""
        if self.parsed is None:
            return f"dry run of {self.file}: the file {self.verdict}: {self.message}"
        parts = [f"{self.count(s)} {s.value.lower().replace('_', ' ')}" for s in Would if self.count(s)]
        counts = ", ".join(parts) or "no rows"
        return f"dry run of {self.file}: the batch {self.verdict} ({counts}); {self.message}"

    def table(self) -> pa.Table:
        """The results file: the layout of `pipeline.results` with "would" statuses."""
        dtype = schemas.get(self.connection.data_type)
        keys = list(dtype.key_columns)
        with_action = dtype.action_columns is not None
        header = self.parsed.header if self.parsed is not None else None
        partner = results.partner_names(header, self.connection.column_map, keys)
        names = results.output_names(keys, partner, with_action)
        head = Row(results.FILE_LINE, None, Would.FILE_REJECT if self.parsed is None else Would.DRY_RUN,
                   f"nothing was stored: {self.summary}")  # fmt: skip
        rows = [head, *sorted(self.rows, key=lambda r: r.line)]
        columns: dict[str, pa.Array] = {"Line": pa.array([r.line for r in rows], pa.int64())}
        parsed = self.parsed
        for i, k in enumerate(keys):
            if i == 0 or parsed is None or k not in parsed.table.column_names:
                columns[k] = pa.array([r.key if i == 0 else None for r in rows], pa.string())
            else:  # the qualifier (VendorEventId) from the row's line, or as read of a rejected one
                at = pc.index_in(pa.array([r.line for r in rows], pa.int64()), parsed.lines.cast(pa.int64()))
                read = pa.array([parsed.reject_qualifiers.get(r.line) for r in rows], pa.string())
                columns[k] = pc.coalesce(pc.take(parsed.table.column(k).cast(pa.string()), at), read)
        if with_action:
            columns[results.ACTION_ID] = pa.array([r.action_id for r in rows], pa.string())
        columns["Status"] = pa.array([r.status.value for r in rows], pa.string())
        columns["Reason"] = pa.array([visible(r.reason) for r in rows], pa.string())
        return results.neutralise_formulas(pa.table(columns)).rename_columns(names)

    def csv_bytes(self) -> bytes:
        sink = pa.BufferOutputStream()
        pacsv.write_csv(self.table(), sink, pacsv.WriteOptions(quoting_style="needed"))
        return bytes(sink.getvalue().to_pybytes())


def results_name(file_name: str) -> str:
    """`<file>.results.csv` for a partner's file name, made harmless: no path, no control or
    special characters, never hidden or in flight (a name is partner text)."""
    base = Path(file_name.replace("\\", "/")).name
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in base)[:120]
    stem = stem.lstrip(".") or "file"
    return f"{stem}{RESULTS_SUFFIX}"


def write_beside(dry: DryRun, folder: Path) -> Path:
    """Write the results file into `folder` atomically (a partner downloading it never sees
    half a file); returns its path, `<file>.results-2.csv` (-3...) if a folder has the name."""
    base = folder / results_name(dry.file)
    names = [base, *(base.with_name(f"{base.stem}-{n}.csv") for n in range(2, 100))]
    target = next((t for t in names if t.is_file() or not t.exists()), base)
    with results.atomic(target, "wb") as fh:
        fh.write(dry.csv_bytes())
    return target


def run(
    settings: Settings,
    db: Database,
    connection: Connection,
    path: Path,
    file_name: str,
    now: dt.datetime,
) -> DryRun:
    """Parse, validate and check one file as `connection` would, storing nothing."""
    dtype = schemas.get(connection.data_type)
    name = visible(Path(file_name.replace("\\", "/")).name) or "file"
    options = ParseOptions(
        encoding=connection.encoding, column_map=connection.column_map or None,
        delimiter=connection.delimiter, timezone=connection.timezone, max_bytes=settings.max_file_bytes,
    )  # fmt: skip
    try:
        parsed = csvparse.parse_file(path, dtype.key, options=options)
    except ConnectBatchError as exc:
        return DryRun(connection, name, Verdict.REJECT, str(exc))
    parser_rejected = parsed.lines_rejected
    parsed, refused = late.refuse(parsed, connection, now)
    rejects = list(parsed.rejects)
    table, lines = parsed.table, parsed.lines
    key_column = dtype.key_columns[0] if dtype.key_columns else None
    keys: list[str | None] = (
        [None if k is None else str(k) for k in table.column(key_column).to_pylist()]
        if key_column and key_column in table.column_names
        else [None] * table.num_rows
    )
    line_list = [int(x) for x in lines.to_pylist()]
    special: dict[int, Row] = {}
    already: set[str] = set()
    with db.connect() as con:
        if load.refuses_repeats(dtype, connection) and table.num_rows and key_column:
            if already := set(data_store.existing_keys(con, dtype.key, connection.id, table)):
                texts, shown = record_key.texts(dtype, table).to_pylist(), record_key.shown(dtype, table)
                for line, key, identity, seen in zip(line_list, keys, texts, shown.to_pylist(), strict=True):
                    if identity in already:  # "CallSessionId with VendorEventId C-1 / T-2"
                        why = f"{record_key.described(dtype)} {seen} is already loaded for this connection"
                        special[line] = Row(line, key, Would.DUPLICATE, why)
        elif load.merges_repeats(dtype, connection) and table.num_rows:
            dryrun_rows.repeats(con, dtype, connection, table, lines, keys, now, special)
        elif dtype.key == "action_modifications" and table.num_rows:
            dryrun_rows.modifications(con, connection, table, line_list, now, special)
    report = validation.validate(
        table, dtype.key, rows_rejected=parser_rejected, already_loaded=already, now=now,
        max_age_days=settings.validation_max_age_days, max_reject_rate=settings.max_reject_rate,
        lines=lines,
    )  # fmt: skip
    late.judge(report, table, connection, now, refused)
    failing = Verdict.REJECT if rejects and not table.num_rows else Verdict.HOLD  # as quarantine.settle
    verdict = Verdict.LOAD if report.success else failing
    held = "; ".join(report.critical_failures)
    late_lines = set()
    mask = late.late_mask(table, connection, now)
    if mask is not None:
        late_lines = {ln for ln, m in zip(line_list, mask.to_pylist(), strict=True) if m}
    rows = _reject_rows(rejects, parsed.reject_keys)
    rejected = {r.line for r in rows}
    for line, key in zip(line_list, keys, strict=True):
        if line in rejected:
            continue
        row = special.get(line)
        if row is None:
            reason = ""
            if line in late_lines:
                reason = f"action would be created LOCKED: {late.reason(connection.lock_days)}"
            row = Row(line, key, Would.ACCEPT, reason)
        if verdict is Verdict.HOLD and row.status in (Would.ACCEPT, Would.DUPLICATE, Would.REPLACE):
            why = f"the batch would be held for review: {held}" if held else "the batch would be held"
            row = Row(line, key, Would.DUPLICATE if row.status is Would.DUPLICATE else Would.HOLD,
                      f"{row.reason}; {why}" if row.reason else why, row.action_id)  # fmt: skip
        rows.append(row)
    message = (
        f"{len(report.critical_failures)} critical check(s) failed: {held}"
        if held
        else f"{len(report.warnings)} warning(s)"
        if report.warnings
        else "every check passed"
    )
    return DryRun(connection, name, verdict, message, parsed, report, rows)


def _reject_rows(rejects: list[Reject], reject_keys: dict[int, str]) -> list[Row]:
    by_line: dict[int, list[str]] = {}
    for r in rejects:
        where = f"{r.column}: " if r.column else ""
        shown = f" (value {r.value!r})" if r.value is not None else ""
        by_line.setdefault(r.line, []).append(f"{where}{r.reason}{shown}")
    return [Row(line, reject_keys.get(line), Would.REJECT, "; ".join(why)) for line, why in by_line.items()]


def record(
    db: Database, dry: DryRun, source: str, now: dt.datetime, *, sender: str | None = None
) -> event_store.ConnectionEvent | None:
    """A dry run's one trace, a line in the connection's history; logged, never raised."""
    try:
        with db.transaction() as con:
            summary = f"{dry.summary} (via {source})"
            return event_store.record(con, dry.connection.id, EVENT_KIND, summary, now, sender=sender)
    except Exception:
        log.exception("could not record a dry run", extra={"connection_id": dry.connection.id})
        return None


def mail(outbox: Outbox, to: str | None, dry: DryRun, *, message_id: str = "") -> bool:
    """E-mail the report (results attached) to `to`; True once queued. An automatic answer
    (empty envelope sender, `Outbox.answer`), retried while SMTP is down; never raises."""
    smtp = outbox.smtp
    if smtp is None or not to:
        return False
    try:
        message = mailer.compose_dry_run(
            smtp, to, dry.connection, file=dry.file, summary=dry.summary,
            results_name=results_name(dry.file), results_csv=dry.csv_bytes(), message_id=message_id,
        )  # fmt: skip
        outbox.answer(message, dry.connection.id, dry_run=True)
    except Exception:
        log.exception("could not answer a dry run", extra={"connection_id": dry.connection.id})
        return False
    return True


MAX_MAIL_ANSWERS = 20  # dry-run answers per sender per day: a partner testing, not a loop
_SYSTEM_SENDERS = ("mailer-daemon", "postmaster")


def answer_mail(
    db: Database,
    outbox: Outbox,
    dry: DryRun,
    event: event_store.ConnectionEvent | None,
    sender: str | None,
    now: dt.datetime,
    *,
    message_id: str = "",
) -> bool:
    """Answer a dry run that came by mail (the `+dryrun` address): to its sender, unless the
    sender is a mail system or has had `MAX_MAIL_ANSWERS` answers in the last day, so a dry
    run can neither start a mail loop nor be used to flood a third party. True when queued."""
    if sender is None or "@" not in sender or sender.split("@")[0].lower() in _SYSTEM_SENDERS:
        return False
    with db.connect() as con:
        if event_store.answers_since(con, sender, now - dt.timedelta(1), (EVENT_KIND,)) >= MAX_MAIL_ANSWERS:
            log.warning("dry-run answers to %s are rate limited", visible(sender))
            return False
    if not mail(outbox, sender, dry, message_id=message_id):
        return False
    if event is not None:
        with db.transaction() as con:
            event_store.mark_answered(con, event.id)
    return True
