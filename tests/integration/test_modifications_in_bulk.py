"""A modifications file is applied with a few statements, not several per row (issue 13: ~8
statements, 14 ms a row: a 10,000-row returns file took over two minutes, holding the
database), and with the same outcome row by row: an action changed twice in one file ends as
its last row leaves it, with both changes audited in file order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from helpers import call_csv

from connectbatch.models import ActionStatus
from connectbatch.parser.api import parse_bytes
from connectbatch.pipeline import dryrun_rows, lifecycle
from connectbatch.services import Services

ROWS = 300


class Counting:
    """A DuckDB connection that counts its statements."""

    def __init__(self, con: Any) -> None:
        self._con, self.statements = con, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._con, name)
        if name != "execute":
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.statements += 1
            return attr(*args, **kwargs)

        return counted


def test_a_modifications_file_costs_a_few_statements_and_applies_row_by_row(
    services: Services, make_connection: Callable[..., Any]
) -> None:
    make_connection("Calls")
    make_connection("Returns", "action_modifications")
    services.ingest_bytes("Calls", "calls.csv", call_csv(ROWS))
    ids = sorted(a.id for a in services.actions("Calls", limit=ROWS))
    twice, untouched = ids[0], ids[-1]
    lines = ["ActionId,Amount,Reason", f"A-{twice:06d},5.00,partial refund"]
    lines += [f"{i},{'0' if k % 2 else '7.25'},returned" for k, i in enumerate(ids[1:-1])]
    lines += [f"A-{twice:06d},0,returned after all", "A-999999,1.00,no such action"]
    parsed = parse_bytes(("\r\n".join(lines) + "\r\n").encode(), "action_modifications")

    with services.db.transaction() as con:
        counting = Counting(con)
        # DuckDB reads the Arrow tables of a statement by name from the caller's frames
        counting._con.execute("SET python_scan_all_frames = true")
        applied = lifecycle.apply_modifications(
            counting,
            parsed.table,
            parsed.lines,
            actor="file:999",
            now=services.clock(),  # type: ignore[arg-type]
        )

    assert counting.statements <= 8, counting.statements  # 7 reads and writes; it was ~2,400
    assert applied.applied == ROWS - 1 + 1 and len(applied.rejects) == 1
    [refused] = applied.rejects
    assert (refused.line, refused.column, refused.reason) == (ROWS + 2, "ActionId", "no such action")
    by_id = {a.id: a for a in services.actions("Calls", limit=ROWS)}
    assert by_id[twice].status is ActionStatus.REVERSED and by_id[twice].amount == 0
    assert by_id[twice].reason == "returned after all"
    assert [(e.change, e.new_amount) for e in services.audit(twice)][-2:] == [
        ("modify", 5),
        ("reverse", 0),
    ]
    assert by_id[untouched].status is ActionStatus.PENDING
    statuses = {by_id[i].status for i in ids[1:-1]}
    assert statuses == {ActionStatus.MODIFIED, ActionStatus.REVERSED}
    assert by_id[ids[1]].amount == 7 + 0.25 and by_id[ids[2]].amount == 0


def test_a_modifications_files_dry_run_reads_the_store_a_few_times_not_per_row(
    services: Services, make_connection: Callable[..., Any]
) -> None:
    """The dry run of a returns file (partners test one before go-live) read an action, its
    partner, its file changes and its newest change row by row: ~4 statements a row."""
    make_connection("Calls")
    returns = make_connection("Returns", "action_modifications")
    services.ingest_bytes("Calls", "calls.csv", call_csv(ROWS))
    ids = sorted(a.id for a in services.actions("Calls", limit=ROWS))
    lines = ["ActionId,Amount,Reason", f"A-{ids[0]:06d},5.00,partial refund", f"A-{ids[0]:06d},0,after all"]
    lines += [f"{i},7.25,returned" for i in ids[1:]] + ["A-999999,1.00,no such action"]
    parsed = parse_bytes(("\n".join(lines) + "\n").encode(), "action_modifications")
    special: dict[int, dryrun_rows.Row] = {}

    with services.db.connect() as con:
        counting = Counting(con)
        line_list = [int(x) for x in parsed.lines.to_pylist()]
        dryrun_rows.modifications(counting, returns, parsed.table, line_list, services.clock(), special)  # type: ignore[arg-type]

    assert counting.statements <= 4, counting.statements  # it was ~4 a row
    statuses = [special[line].status for line in sorted(special)]
    assert statuses == [dryrun_rows.Would.ACCEPT] * (ROWS + 1) + [dryrun_rows.Would.REJECT]
    assert special[3].reason.startswith("would reverse A-")  # the second change of the first action
    assert special[ROWS + 3].reason == "ActionId: no such action"
