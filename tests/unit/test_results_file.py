"""Issue 11, defect 6: the results file's layout, unit by unit: the partner's header names,
the escaping of every cell (as escaping.csv_cell), and a line for a whole-file outcome."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectbatch.escaping import csv_cell
from connectbatch.models import FileState
from connectbatch.parser.api import Reject
from connectbatch.pipeline import results, results_csv
from connectbatch.store import csvsql

CELLS = [
    "", "plain", "=1+1", "@SUM(A1)", "+1", "-1", "+1 (555) 010-0100", "-12.50", "+=cmd", "-x",
    "\tTab", "\rCR", "a=b", "==", "+", "-", "@", " =x", "é=", "+44 20 7946 0958", "1/2", "-(3)",
    "-0\n", "+1\n",  # a number then a line end: not a plain number (Python's `$` matched it)
]  # fmt: skip


def test_neutralise_formulas_is_csv_cell_on_every_cell() -> None:
    table = pa.table({"c": pa.array(CELLS, pa.string())})
    assert results.neutralise_formulas(table).column("c").to_pylist() == [csv_cell(c) for c in CELLS]


@pytest.mark.parametrize(
    ("cell", "escaped"),
    [
        ("+15551234567", False),  # E.164: comes back as sent, or the partner cannot match it
        ("+15551234567-1765000000", False),  # a key: at most arithmetic
        ("-abc", False),
        ("-12.50", False),
        ("+a b.c/d#e:f,g", False),
        ("=1+1", True),
        ("@SUM(A1)", True),
        ("+cmd|' /C calc'!A0", True),  # DDE
        ('-2+3+HYPERLINK("http://x")', True),  # a function call
        ("+1 (555) 010-0100", True),  # parentheses: escaped, as a function call would be
        ("-x'y", True),
        ("-1\n=2", True),  # a second line starting a formula
        ("\tTab", True),
    ],
)
def test_only_what_a_spreadsheet_could_run_is_escaped(cell: str, escaped: bool) -> None:
    """A `'` goes only before a cell that could call a function, reach DDE or another sheet,
    or make a string: an E.164 number or a key starting with `-` came back with a `'` the
    partner's system could not match. Python, Arrow and DuckDB read the one pattern alike."""
    assert csv_cell(cell) == ("'" + cell if escaped else cell)
    table = pa.table({"c": pa.array([cell], pa.string())})
    assert results.neutralise_formulas(table).column("c").to_pylist() == [csv_cell(cell)]
    con = duckdb.connect()
    sql = con.execute(f"SELECT {csvsql.cell('$1', 'c')}", [cell]).fetchone()
    assert sql == (csv_cell(cell),)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.none() | st.text(alphabet=st.sampled_from(list("=+-@\t\r 0123456789.,()/abé\n")), max_size=6),
        max_size=30,
    ),
    st.integers(min_value=1, max_value=4),
    st.booleans(),
)
def test_neutralise_formulas_chunked_nulls_and_large_strings(
    cells: list[str | None], chunks: int, large: bool
) -> None:
    """Issue 13: only cells starting like a formula go through the pattern; the result is
    still csv_cell on every cell, whatever the chunking, nulls and string type, and the
    other columns are untouched."""
    kind = pa.large_string() if large else pa.string()
    step = max(1, len(cells) // chunks)
    parts = [pa.array(cells[i : i + step], kind) for i in range(0, len(cells), step)] or [pa.array([], kind)]
    table = pa.table({"c": pa.chunked_array(parts, kind), "n": pa.array(range(len(cells)), pa.int64())})
    out = results.neutralise_formulas(table)
    assert out.schema == table.schema
    assert out.column("c").to_pylist() == [None if c is None else csv_cell(c) for c in cells]
    assert out.column("n").to_pylist() == list(range(len(cells)))


def test_neutralise_formulas_keeps_a_clean_column_as_is() -> None:
    """Issue 13: a column with nothing to neutralise is the same buffers, not a copy."""
    column = pa.array(["plain", "1+1", None, "a=b"], pa.string())
    out = results.neutralise_formulas(pa.table({"c": column}))
    assert out.column("c").chunk(0).buffers()[2].address == column.buffers()[2].address


@pytest.mark.parametrize(
    ("header", "column_map", "expected"),
    [
        (["callsessionid", "x"], None, "callsessionid"),  # case as sent
        ([" CallSessionId "], None, " CallSessionId "),  # spaces as sent
        (["session", "CallSessionId"], {"session": "CallSessionId"}, "session"),  # mapped, first wins
        (["Other"], None, "CallSessionId"),  # not named: our name
        (None, None, "CallSessionId"),  # no header read
    ],
)
def test_partner_names(header: list[str] | None, column_map: dict[str, str] | None, expected: str) -> None:
    assert results.partner_names(header, column_map, ["CallSessionId"]) == {"CallSessionId": expected}


def _summary(status: FileState, message: str | None = None) -> results.Summary:
    return results.Summary(
        run_id=1, file_id=2, file="f.csv", connection="Acme", data_type="call_conversions",
        status=status, message=message,
    )  # fmt: skip


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_a_whole_file_outcome_is_one_line_zero(tmp_path: Path) -> None:
    path, _ = results.write(
        tmp_path, 1, _summary(FileState.DUPLICATE, "=same bytes as calls.csv"), key_columns=["CallSessionId"],
        accepted_keys=None, accepted_lines=None, rejects=[], with_action_id=True,
        file_status=results.RowStatus.DUPLICATE,
    )  # fmt: skip
    assert _rows(path) == [
        {"Line": "0", "CallSessionId": "", "ActionId": "", "Status": "DUPLICATE",
         "Reason": "'=same bytes as calls.csv"},
    ]  # fmt: skip


def test_keys_come_back_as_sent_unless_a_spreadsheet_could_run_them(tmp_path: Path) -> None:
    """A key starting with `+`/`-` that is at most arithmetic (`+15550100`, `-2+3`) comes back
    as the partner sent it, so their system can match it (it came back `'+15550100`); one
    that could call something (`-1+SUM(A1)`) gets a `'`; a numeric key column's `-5` too."""
    keys = ["+1+1", "-1+SUM(A1)", "-2+3", "+15550100", "x-1"]
    text, _ = results.write(
        tmp_path / "text", 1, _summary(FileState.LOADED), key_columns=["CallSessionId"],
        accepted_keys=pa.table({"CallSessionId": keys}), accepted_lines=pa.array(range(2, 7), pa.int64()),
        rejects=[],
    )  # fmt: skip
    assert [r["CallSessionId"] for r in _rows(text)] == ["+1+1", "'-1+SUM(A1)", "-2+3", "+15550100", "x-1"]
    numbers, _ = results.write(
        tmp_path / "numbers", 1, _summary(FileState.LOADED), key_columns=["OrderId"],
        accepted_keys=pa.table({"OrderId": pa.array([-5, 12], pa.int64())}),
        accepted_lines=pa.array([2, 3], pa.int64()), rejects=[Reject(4, None, None, "bad")],
        reject_keys={4: "-1|x"},
    )  # fmt: skip
    assert [r["OrderId"] for r in _rows(numbers)] == ["-5", "12", "'-1|x"]


def test_a_file_without_data_rows_gets_a_line_zero_saying_so(tmp_path: Path) -> None:
    """A header-only file loads nothing: its results file is not a bare header, but one
    Line 0 row (the module docstring's promise), and the summary says so too."""
    summary = _summary(FileState.LOADED)
    path, summary_path = results.write(
        tmp_path, 1, summary, key_columns=["CallSessionId"], accepted_keys=pa.table({"CallSessionId": []}),
        accepted_lines=pa.array([], pa.int64()), rejects=[], with_action_id=True,
    )  # fmt: skip
    assert _rows(path) == [
        {"Line": "0", "CallSessionId": "", "ActionId": "", "Status": "ACCEPTED", "Reason": results.NO_ROWS},
    ]  # fmt: skip
    assert json.loads(summary_path.read_text())["message"] == results.NO_ROWS
    assert "no data rows" in results.NO_ROWS


def test_rows_carry_action_ids_notes_and_partner_names(tmp_path: Path) -> None:
    keys = pa.table({"CallSessionId": ["a", "b", "c"]})
    lines = pa.array([2, 3, 4], pa.int64())
    actions = results.RowActions.of({2: "A-000001", 3: "A-000002"}, {3: "action created LOCKED: late"})
    path, _ = results.write(
        tmp_path, 1, _summary(FileState.LOADED), key_columns=["CallSessionId"], accepted_keys=keys,
        accepted_lines=lines, rejects=[Reject(4, "CallSessionId", "c", "bad")], reject_keys={4: "c"},
        key_names={"CallSessionId": "=sess"}, actions=actions, with_action_id=True,
    )  # fmt: skip
    rows = _rows(path)
    assert list(rows[0]) == ["Line", "'=sess", "ActionId", "Status", "Reason"]
    assert [(r["Line"], r["'=sess"], r["ActionId"], r["Status"]) for r in rows] == [
        ("2", "a", "A-000001", "ACCEPTED"), ("3", "b", "A-000002", "ACCEPTED"), ("4", "c", "", "REJECTED"),
    ]  # fmt: skip
    assert rows[1]["Reason"] == "action created LOCKED: late"
    assert rows[2]["Reason"] == "'=sess: bad (value 'c')"  # the reject names the partner's column


def test_a_partner_name_that_collides_with_ours_keeps_the_schema_name(tmp_path: Path) -> None:
    path, _ = results.write(
        tmp_path, 1, _summary(FileState.LOADED), key_columns=["CallSessionId"],
        accepted_keys=pa.table({"CallSessionId": ["a"]}), accepted_lines=pa.array([2], pa.int64()),
        rejects=[], key_names={"CallSessionId": "status"}, with_action_id=False,
    )  # fmt: skip
    assert list(_rows(path)[0]) == ["Line", "CallSessionId", "Status", "Reason"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=2, max_value=40), unique=True, max_size=20), st.randoms())
def test_row_actions_for_lines_in_any_order(stored: list[int], rnd: random.Random) -> None:
    """Issue 13: lines asked in the stored order take the labels as they are; any other
    order or subset (a row that created no action) is looked up, with null where none."""
    labels = {n: f"A-{n:06d}" for n in stored}
    notes = {n: "late" for n in stored if n % 3 == 0}
    actions = results.RowActions.of(labels, notes)
    for asked in (list(stored), rnd.sample(stored, len(stored)), [*stored[: len(stored) // 2], 41]):
        got_labels, got_notes = actions.for_lines(pa.array(asked, pa.int64()))
        assert got_labels.to_pylist() == [labels.get(n) for n in asked]
        assert got_notes.to_pylist() == [notes.get(n) for n in asked]


@pytest.mark.parametrize("write_rows", [1, 2, 3, 1000])
def test_the_results_file_is_the_same_written_a_slice_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_rows: int
) -> None:
    """Issue 13: the file is put in line order, escaped and written WRITE_ROWS rows at a
    time; whatever the slice, the bytes are those of the whole table in line order."""
    monkeypatch.setattr(results_csv, "WRITE_ROWS", write_rows)
    keys = pa.table({"CallSessionId": ["a", "=b", "c", "+1", "-x", "f"]})
    lines = pa.array([2, 4, 5, 7, 8, 9], pa.int64())
    rejects = [Reject(3, "CallDuration", "ten", "not a whole number"), Reject(6, None, None, "@bad row")]
    path, _ = results.write(
        tmp_path / str(write_rows), 1, _summary(FileState.LOADED), key_columns=["CallSessionId"],
        accepted_keys=keys, accepted_lines=lines, rejects=rejects, reject_keys={3: "=k"},
        actions=results.RowActions.of({n: f"A-{n:06d}" for n in (2, 4, 5, 7, 8, 9)}), with_action_id=True,
    )  # fmt: skip
    assert path.read_text(encoding="utf-8").splitlines() == [
        '"Line","CallSessionId","ActionId","Status","Reason"',
        '2,"a","A-000002","ACCEPTED",""',
        '3,"\'=k",,"REJECTED","CallDuration: not a whole number (value \'ten\')"',
        '4,"\'=b","A-000004","ACCEPTED",""',
        '5,"c","A-000005","ACCEPTED",""',
        '6,,,"REJECTED","\'@bad row"',
        '7,"+1","A-000007","ACCEPTED",""',  # a text key as sent: at most a sum
        '8,"-x","A-000008","ACCEPTED",""',
        '9,"f","A-000009","ACCEPTED",""',
    ]


def test_a_row_rejected_after_parsing_names_its_key_under_the_partners_header(tmp_path: Path) -> None:
    """A row the parser read but a later stage refused (an action a modification cannot
    change, a correction that may not replace its record) brings no key of its own: the
    results line takes it from the parsed rows, so the partner can find the record."""
    keys = pa.table({"CallSessionId": ["a", "b", "c"]})
    path, _ = results.write(
        tmp_path, 1, _summary(FileState.LOADED), key_columns=["CallSessionId"], accepted_keys=keys,
        accepted_lines=pa.array([2, 3, 4], pa.int64()),
        rejects=[Reject(3, "CallSessionId", "b", "not replaced"), Reject(5, "SaleAmount", "x", "bad")],
        reject_keys={5: "e"}, key_names={"CallSessionId": "session"}, with_action_id=True,
    )  # fmt: skip
    assert [(r["Line"], r["session"], r["Status"]) for r in _rows(path)] == [
        ("2", "a", "ACCEPTED"), ("3", "b", "REJECTED"), ("4", "c", "ACCEPTED"), ("5", "e", "REJECTED"),
    ]  # fmt: skip


@given(
    lines=st.lists(st.integers(1, 300), max_size=60, unique=True),
    wanted=st.lists(st.integers(0, 310), max_size=25),
    ascending=st.booleans(),
)
def test_rejected_lines_are_found_among_the_parsed_ones_as_index_in_finds_them(
    lines: list[int], wanted: list[int], ascending: bool
) -> None:
    """The binary search over a parse's ascending lines (issue 13) answers as index_in
    does, and a list not in order takes index_in itself."""
    given_lines = pa.array(sorted(lines) if ascending else lines, pa.int64())
    asked = pa.array(wanted, pa.int64())
    assert results_csv.index_in(asked, given_lines).equals(pc.index_in(asked, value_set=given_lines))


def test_rows_already_in_line_order_are_written_without_a_sort() -> None:
    """A file without rejects: its rows come in line order, and `write` takes them as they
    are (issue 13); rejects among them are sorted in."""
    ordered = pa.table({"Line": pa.chunked_array([[0, 2, 3], [5]], pa.int64())})
    assert results_csv.line_order(ordered) is None
    mixed = pa.table({"Line": pa.array([2, 3, 0, 4], pa.int64())})
    assert results_csv.line_order(mixed) == pa.array([2, 0, 1, 3], pa.uint64())


@given(
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=6),
    data=st.data(),
    write_rows=st.sampled_from([1, 3, 8, 1000]),
)
@settings(max_examples=150, deadline=None)
def test_taking_rows_by_windows_is_arrows_take(
    sizes: list[int], data: st.DataObject, write_rows: int
) -> None:
    """Issue 13: `take_rows` copies only the windows its rows fall in (Arrow's take joined a
    whole chunked column per slice); whatever the chunks and the order, the rows are take's."""
    total = sum(sizes)
    chunks = []
    for at, n in enumerate(sizes):
        start = sum(sizes[:at])
        chunks.append(
            pa.table(
                {
                    "n": pa.array(range(start, start + n), pa.int64()),
                    "s": pa.array([f"v{i}" for i in range(start, start + n)], pa.string()),
                }
            )
        )
    table = pa.concat_tables(chunks)
    indices = data.draw(st.lists(st.integers(0, max(total - 1, 0)), max_size=50)) if total else []
    old = results_csv.WRITE_ROWS
    results_csv.WRITE_ROWS = write_rows
    try:
        got = results_csv.take_rows(table, np.array(indices, np.int64))
    finally:
        results_csv.WRITE_ROWS = old
    assert got.equals(table.take(pa.array(indices, pa.int64())))
