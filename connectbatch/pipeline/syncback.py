"""Status sync-back: every later change of a partner's records, reported back to them.

The results file (pipeline/results.py) answers a file once. After that a record may still be
released or discarded by a reviewer, modified, reversed, corrected or locked. An inbound
connection with sync-back on reports each of these, exactly once, in incremental status
files: written into its partner's "Pull from us" folder(s) (channel `files`) and/or e-mailed
to the return address (channel `email`). What was reported is kept per channel in the
database (store/syncback.py), so a restart repeats nothing and skips nothing.

A status file, as the partner's system parses it (one header, every cell through
`escaping.csv_cell`):

* `ChangedAt` (UTC, ISO 8601), `File` (the file the record came in), `Line` (its line
  there; 0 for a file-level outcome), the data type's key column(s) under the partner's own
  header name (as the file they sent wrote it; the schema name when unknown), `ActionId`
  (types that create actions), `Status` (the partner's word, see below), `Change` (ours),
  `OldAmount`, `NewAmount` (modified), `Reason`.
* Our statuses (`Change`): accepted, rejected (Reason says the column and problem), modified
  (old -> new amount; a corrected record re-sent in supersede mode is a modification too),
  reversed, locked (the lock period ended, or the event arrived already past it), released
  (a held batch a reviewer loaded: per row), discarded (a held batch a reviewer refused: one
  Line 0 row for the file, whose rows were never stored), removed (a catalog item a snapshot
  file no longer lists, catalog mode `snapshot`: at the item's own file and line, the
  snapshot named in Reason).
* `Status` maps ours to the partner's words, Convertr's by default (`DEFAULT_WORDS`): the
  partner's record of a lead is only ever valid or invalid (Convertr marks a lead cautioned
  or deleted on the client's side as invalid on the partner's). accepted/released/locked/
  modified -> valid (a modified action is still payable, at its new amount; `Change` and the
  amounts say what changed), rejected/discarded/reversed/removed -> invalid. Locked is
  `valid`: a locked action is final and payable as it stands (a reversed one is locked as
  reversed, and stays `invalid`).
  A connection overrides any of them (`Connection.status_words`).
* Rows are in the order things happened: load outcomes first (by file), then removals (by
  snapshot), then changes in
  audit order, so a modify, reverse, lock sequence reads in that order. A sync whose files
  named the key columns differently writes one status file per naming.
* The first sync-back after it is switched on reports the connection's whole history once
  (every record's outcome and changes so far); after that, only what is new. A rejected row
  names its key as far as it could be read, as its stored reject keeps it (`rejects.row_key`):
  a row the parser refused for another column, by the key it read; a row refused after
  parsing (an action a modification cannot change, a correction that may not replace its
  record, a record already loaded), by its key. Only an unreadable key is empty (`File` and
  `Line` identify the row; rows stored before migration 026 too).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

from connectbatch import schemas
from connectbatch.escaping import csv_cell, visible
from connectbatch.models import ActionStatus, Connection, FileState, ReviewState, SyncStatus
from connectbatch.pipeline.mailer import address_to, attach
from connectbatch.pipeline.release_rows import ALREADY_LOADED, REPEATED_IN_FILE
from connectbatch.pipeline.results import ACTION_ID, partner_names
from connectbatch.store.syncback import Change, FileOutcome, Removal, RowOutcome

CHANNELS = ("files", "email")
STATUSES = tuple(s.value for s in SyncStatus)
DEFAULT_WORDS: dict[str, str] = {
    SyncStatus.ACCEPTED: "valid",
    SyncStatus.REJECTED: "invalid",
    SyncStatus.MODIFIED: "valid",
    SyncStatus.REVERSED: "invalid",
    SyncStatus.LOCKED: "valid",
    SyncStatus.RELEASED: "valid",
    SyncStatus.DISCARDED: "invalid",
    SyncStatus.REMOVED: "invalid",
}
MAX_WORD = 40
# action_audit.change -> our status
_AUDIT_STATUS = {
    "modify": SyncStatus.MODIFIED,
    "reverse": SyncStatus.REVERSED,
    "lock": SyncStatus.LOCKED,
    "supersede": SyncStatus.MODIFIED,
}


class SyncBackSettingError(ValueError):
    """A sync-back channel or status word a person entered that we cannot use."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def checked_channels(value: Iterable[str] | str | None) -> list[str]:
    """`files,email` (or a list) as the stored list, in CHANNELS order; 'both' = every
    channel; '' / 'off' = off."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    wanted = {str(i).strip().lower() for i in items} - {"", "off", "none"}
    if "both" in wanted:  # the word the refusal below offers
        wanted = (wanted - {"both"}) | set(CHANNELS)
    unknown = sorted(wanted - set(CHANNELS))
    if unknown:
        raise SyncBackSettingError(
            "sync_back", f"{unknown[0]!r} is not a sync-back channel (use files, email, both or off)"
        )
    return [c for c in CHANNELS if c in wanted]


def checked_words(value: dict[str, str] | str | None) -> dict[str, str]:
    """Overrides of DEFAULT_WORDS, from a dict or its JSON text: keys must be our statuses,
    words short printable text (they become cells in the partner's file)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text else {}
        except json.JSONDecodeError as exc:
            raise SyncBackSettingError("status_words", f"not JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise SyncBackSettingError("status_words", 'must be a JSON object such as {"reversed": "deleted"}')
    words: dict[str, str] = {}
    for key, word in value.items():
        ours = str(key).strip().lower()
        if ours not in STATUSES:
            raise SyncBackSettingError(
                "status_words", f"{visible(str(key))!r} is not one of our statuses ({', '.join(STATUSES)})"
            )
        text = str(word).strip() if isinstance(word, str) else ""
        if not text or len(text) > MAX_WORD or not text.isprintable():
            raise SyncBackSettingError(
                "status_words", f"the word for {ours} must be 1 to {MAX_WORD} printable characters"
            )
        if DEFAULT_WORDS[ours] != text:
            words[ours] = text
    return words


def words(connection: Connection) -> dict[str, str]:
    """Our status -> the partner's word, defaults overridden by the connection's."""
    return {**DEFAULT_WORDS, **connection.status_words}


@dataclass(frozen=True)
class StatusRow:
    """One line of a status file before it is named and escaped."""

    at: dt.datetime | None
    file_id: int  # the file whose header names the key columns
    file_name: str
    line: int
    key: tuple[str | None, ...]
    action_id: int | None
    change: str  # one of STATUSES
    old_amount: Decimal | None = None
    new_amount: Decimal | None = None
    reason: str = ""
    # the status whose word the Status column shows, when not the change's own: a reversed
    # action that locks stays the partner's "invalid" (its lock only makes that final)
    standing: str | None = None


@dataclass
class Pending:
    """What a channel has not reported yet: the rows, and the items they carry (watermark)."""

    rows: list[StatusRow] = field(default_factory=list)
    files: list[int] = field(default_factory=list)
    changes: list[int] = field(default_factory=list)


def file_rows(
    outcome: FileOutcome, rows: list[RowOutcome], key_names: dict[str, str], key_column: str | None
) -> list[StatusRow]:
    """The status rows of one file's outcome. `key_column` is the data type's first key
    column: a reject stored before its row's key was kept (migration 026) and refused after
    parsing is about that column and holds its value. A file refused as a whole has one Line 0
    row, and then a row for each of its records refused (a partner applying statuses per
    record never heard of them); a held batch discarded, only the Line 0 row (its rows were
    never stored)."""
    released = outcome.review == ReviewState.RELEASED
    found = []
    if outcome.state != FileState.LOADED:
        width = max(1, max((len(r.key) for r in rows), default=1))
        change = SyncStatus.DISCARDED if outcome.state == FileState.DISCARDED else SyncStatus.REJECTED
        found.append(
            StatusRow(outcome.at, outcome.file_id, outcome.name, 0, (None,) * width, None, change,
                      reason=outcome.message or "")
        )  # fmt: skip
        if outcome.state == FileState.DISCARDED:
            return found
    for r in rows:
        if r.rejected and (r.reason or "").startswith(_RECORD_STANDS):
            continue  # the record this row repeats stands as reported: not `invalid` now
        if r.rejected:
            # the rejects refused after parsing are about the key, their value is the key
            own = r.value is not None and r.column is not None and r.column == key_column
            key = (r.value, *r.key[1:]) if own and not any(r.key) else r.key
            column = key_names.get(r.column, r.column) if r.column else None
            shown = f" (value {r.value!r})" if r.value is not None else ""
            reason = f"{column + ': ' if column else ''}{r.reason or ''}{shown}"
            found.append(
                StatusRow(outcome.at, outcome.file_id, outcome.name, r.line, key, None,
                          SyncStatus.REJECTED, reason=reason, standing=r.standing)
            )  # fmt: skip
        elif outcome.state == FileState.LOADED:
            found.append(
                StatusRow(outcome.at, outcome.file_id, outcome.name, r.line, r.key, r.action_id,
                          SyncStatus.RELEASED if released else SyncStatus.ACCEPTED,
                          reason=(outcome.message or "") if released else "", standing=r.standing)
            )  # fmt: skip
    return found


# Why a row is left out while the record it names stands unchanged (release_rows, and a
# correction that load.py's supersede may not apply: "not replaced: ..."): a status row of
# `rejected` for its key told the partner a valid, paid record was now invalid.
_RECORD_STANDS = (ALREADY_LOADED, REPEATED_IN_FILE.split("{", 1)[0], "not replaced: ")


def removal_row(removal: Removal) -> StatusRow:
    """A catalog item a snapshot file no longer lists: `removed`, at the item's own file and
    line, the snapshot that removed it in the Reason."""
    why = f"not listed in the snapshot {removal.by_name or f'file {removal.by_file}'}"
    return StatusRow(removal.at, removal.file_id, removal.file_name or "", removal.line, removal.key,
                     None, SyncStatus.REMOVED, reason=why)  # fmt: skip


def change_row(change: Change) -> StatusRow:
    status = _AUDIT_STATUS.get(change.change, change.change)
    if status == SyncStatus.MODIFIED and change.new_status == ActionStatus.REVERSED:
        status = "reversed"
    locked_reversal = status == SyncStatus.LOCKED and change.old_status == ActionStatus.REVERSED
    return StatusRow(
        change.at, change.file_id, change.file_name or "", change.line, change.key or (change.source_key,),
        change.action_id, status, change.old_amount, change.new_amount, change.reason or "",
        SyncStatus.REVERSED if locked_reversal else None,
    )  # fmt: skip


def header_names(connection: Connection, header: list[str] | None) -> tuple[str, ...]:
    """The partner's names of the data type's key columns, as the file's header wrote them
    (matched as the parser matches, column_map first); the schema name when unknown."""
    keys = list(schemas.get(connection.data_type).key_columns)
    names = partner_names(header, connection.column_map, keys)
    fixed = {"changedat", "file", "line", "actionid", "status", "change", "oldamount", "newamount", "reason"}
    return tuple(k if names[k].strip().lower() in fixed or not names[k].strip() else names[k] for k in keys)


def render(
    connection: Connection, rows: list[StatusRow], names: tuple[str, ...], mapping: dict[str, str]
) -> bytes:
    """The status CSV of `rows`, key columns named `names`, every cell through csv_cell."""
    dtype = schemas.get(connection.data_type)
    with_action = dtype.action_columns is not None
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    header = ["ChangedAt", "File", "Line", *names, *([ACTION_ID] if with_action else []),
              "Status", "Change", "OldAmount", "NewAmount", "Reason"]  # fmt: skip
    writer.writerow([csv_cell(h) for h in header])
    for r in rows:
        key = list(r.key) + [None] * (len(names) - len(r.key))
        cells: list[object] = [
            r.at.astimezone(dt.UTC).isoformat() if r.at is not None else "", r.file_name, r.line,
            *key[: len(names)],
            *([f"A-{r.action_id:06d}" if r.action_id is not None else ""] if with_action else []),
            mapping.get(r.standing or r.change, r.standing or r.change), r.change,
            r.old_amount, r.new_amount,
            r.reason,
        ]  # fmt: skip
        writer.writerow([csv_cell("" if c is None else str(c)) for c in cells])
    return out.getvalue().encode("utf-8")


def file_name(connection_id: int, sync_back_id: int, now: dt.datetime, part: int, parts: int) -> str:
    """Unique (the ledger id), sortable, and never matched by a results-file glob."""
    suffix = f"-{part + 1}" if parts > 1 else ""
    return f"status-{connection_id}-{sync_back_id:06d}-{now:%Y%m%dT%H%M%S}{suffix}.csv"


STAGED_PREFIX = ".tmp-"


def stage(path: Path, data: bytes) -> None:
    """Write a status file under a hidden name beside `path`; `publish` gives it its name once
    its ledger row committed. So a sync killed before the commit leaves no file a partner
    would collect (the next sync reports its rows again), and one killed after it leaves a
    file `settle` publishes: every row reaches the partner once."""
    staged = path.with_name(STAGED_PREFIX + path.name)
    with open(staged, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def publish(path: Path) -> None:
    """The staged status file under its own name (a concurrent `settle` may have done it)."""
    try:
        path.with_name(STAGED_PREFIX + path.name).replace(path)
    except FileNotFoundError:
        if not path.exists():
            raise


def settle(folder: Path, connection_id: int, recorded: Iterable[str]) -> list[Path]:
    """What a killed sync left in `folder`: a staged file whose ledger row committed is
    published, any other is removed (its rows were never marked reported). Returns the
    files published."""
    done = set(recorded)
    published = []
    for staged in folder.glob(f"{STAGED_PREFIX}status-{connection_id}-*.csv"):
        target = staged.with_name(staged.name[len(STAGED_PREFIX) :])
        if target.name in done:
            publish(target)
            published.append(target)
        else:
            staged.unlink(missing_ok=True)
    return published


def compose(
    sender: str, to: str, connection: Connection, name: str, data: bytes, counts: dict[str, int]
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    address_to(message, to)
    total = sum(counts.values())
    message["Subject"] = f"[ConnectBatch] {visible(connection.name)}: {total} status changes"
    lines = [f"Connection: {visible(connection.name)}", "", "Changes since the previous status report:"]
    lines += [f"  {status}: {n}" for status, n in counts.items() if n]
    lines += ["", "The attached file lists each record with its status, in the order the changes happened."]
    message.set_content("\n".join(lines))
    attach(message, data, "text", "csv", name)
    return message
