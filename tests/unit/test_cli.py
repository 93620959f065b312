"""`connectbatch` on the command line: what a person sees for good files, bad rows and
unusable files. Calls `main()` in-process; the hidden --engine option runs both parser cores."""

from __future__ import annotations

import gzip
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectbatch import schemas
from connectbatch.cli import main

CallCsv = Callable[..., bytes]  # the conftest fixture: call_csv(*rows, columns=, drop=)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["parse", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "--json prints exactly one line"
    report: dict[str, Any] = json.loads(out)
    return report


def assert_one_error_line(capsys: pytest.CaptureFixture[str], mentions: str) -> None:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("connectbatch: error: ")
    assert mentions in lines[0]
    assert "Traceback" not in captured.err


def test_good_file_reports_every_row_accepted(
    tmp_path: Path, call_csv: CallCsv, engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "calls.csv"
    path.write_bytes(call_csv({}, {"CallSessionId": "cs-2"}, {"CallSessionId": "cs-3"}))

    assert main(["parse", str(path), "--engine", engine]) == 0

    out = capsys.readouterr().out
    assert "rows accepted    3" in out
    assert "rows rejected    0" in out
    assert "rejects          0" in out
    assert "unknown columns  none" in out
    assert "seconds" in out


def test_rejected_rows_are_listed_with_line_column_value_and_reason(
    tmp_path: Path, call_csv: CallCsv, engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "calls.csv"
    path.write_bytes(call_csv({}, {"CampaignId": "12a4", "TalkDuration": "-5"}, {}))

    assert main(["parse", str(path), "--engine", engine]) == 0  # bad rows are not a failure

    out = capsys.readouterr().out
    assert "rows accepted    2" in out
    assert "rows rejected    1" in out
    assert "rejects          2" in out
    listed = [line for line in out.splitlines() if line.strip().startswith("3 ")]
    assert len(listed) == 2, out  # one line per bad field, both on physical line 3
    assert "CampaignId" in listed[0] and "'12a4'" in listed[0]
    assert "TalkDuration" in listed[1] and "'-5'" in listed[1]
    assert all(len(line.split()) > 3 for line in listed), "each reject carries a reason"


def test_json_report_is_one_object_with_counts_rejects_and_unknown_columns(
    tmp_path: Path, call_csv: CallCsv, engine: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "calls.csv"
    path.write_bytes(call_csv({"Colour": "red"}, {"EventDate": "2026-02-30"}))

    report = run_json(capsys, str(path), "--engine", engine)

    assert report["rows_accepted"] == 1
    assert report["rows_rejected"] == 1
    assert report["unknown_columns"] == ["Colour"]
    assert report["encoding"] == "utf-8"
    assert isinstance(report["seconds"], float)
    [reject] = report["rejects"]
    assert reject["line"] == 3
    assert reject["column"] == "EventDate"
    assert reject["value"] == "2026-02-30"
    assert reject["reason"]


def test_max_rejects_limits_the_listing_but_not_the_counts(
    tmp_path: Path, call_csv: CallCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "calls.csv"
    path.write_bytes(call_csv(*({"MediaId": "x"} for _ in range(5))))

    report = run_json(capsys, str(path), "--max-rejects", "2")

    assert len(report["rejects"]) == 2
    assert report["reject_count"] == 5
    assert report["rows_rejected"] == 5


def test_gzipped_file_and_raw_type(
    tmp_path: Path, call_csv: CallCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "calls.csv.gz"
    path.write_bytes(gzip.compress(call_csv({}, {"CampaignId": "not a number"})))

    typed = run_json(capsys, str(path))
    raw = run_json(capsys, str(path), "--type", "raw")

    assert (typed["rows_accepted"], typed["rows_rejected"]) == (1, 1)
    assert (raw["rows_accepted"], raw["rows_rejected"]) == (2, 0)  # raw mode checks no types


def test_missing_file_is_one_error_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.csv"

    assert main(["parse", str(missing)]) == 2

    assert_one_error_line(capsys, str(missing))


def test_unknown_data_type_is_one_error_line_and_exit_2(
    tmp_path: Path, call_csv: CallCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "calls.csv"
    path.write_bytes(call_csv({}))

    assert main(["parse", str(path), "--type", "phone_calls"]) == 2

    assert_one_error_line(capsys, "phone_calls")


def test_file_without_required_columns_is_unusable(
    tmp_path: Path, call_csv: CallCsv, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "calls.csv"
    path.write_bytes(call_csv({}, drop=["CallerId"]))

    assert main(["parse", str(path)]) == 2

    assert_one_error_line(capsys, "CallerId")


@pytest.mark.parametrize(
    ("option", "value"),
    [("--timezone", "Mars/Olympus_Mons"), ("--encoding", "klingon"), ("--delimiter", ";;")],
)
def test_unusable_options_are_one_error_line(
    tmp_path: Path,
    call_csv: CallCsv,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
) -> None:
    path = tmp_path / "calls.csv"
    path.write_bytes(call_csv({}))

    assert main(["parse", str(path), option, value]) == 2

    assert_one_error_line(capsys, value)


def test_usage_errors_return_2_instead_of_exiting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parse"]) == 2
    assert main(["parse", "x.csv", "--max-rejects", "-1"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_types_lists_every_data_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["types", "--json"]) == 0

    listed = json.loads(capsys.readouterr().out)

    assert [t["key"] for t in listed] == list(schemas.REGISTRY)


def test_template_prints_the_header_and_an_example_row(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["template", "action_modifications"]) == 0

    header, example = capsys.readouterr().out.splitlines()
    assert header.split(",") == schemas.get("action_modifications").column_names
    assert example


def test_demo_writes_a_file_that_parses_with_its_deliberate_mistakes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CONNECTBATCH_HOME", str(tmp_path))

    assert main(["demo"]) == 0

    demo = tmp_path / "demo" / "call_conversions_demo.csv"
    assert str(demo) in capsys.readouterr().out
    report = run_json(capsys, str(demo), "--engine", engine)
    assert report["rows_accepted"] == 44
    assert report["rows_rejected"] == 6
    assert {r["column"] for r in report["rejects"]} == {
        "CampaignId",
        "EventDate",
        "CallDuration",
        "SaleAmount",
        "CallStatus",
        "CallerPhoneNumberCountry",
    }


def test_demo_hint_can_be_pasted_when_the_folder_has_a_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONNECTBATCH_HOME", str(tmp_path / "home"))
    folder = tmp_path / "my demo"

    assert main(["demo", "--dir", str(folder)]) == 0

    hint = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("try: "))
    assert shlex.split(hint.removeprefix("try: ")) == [
        "connectbatch", "parse", str(folder / "call_conversions_demo.csv"),
    ]  # fmt: skip
