"""The expectation suites: built from the schema registry plus the hand-written rules, and the
committed JSON under `expectations/` that validation reads.

`build_suite` is free of GX, so the generator (`scripts/generate_expectations.py`), its
freshness test and the UI can build suites without paying GX's ~3 s import.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any, Literal

from connectbatch import schemas, settings
from connectbatch.errors import ConfigurationError
from connectbatch.schemas import Kind

log = logging.getLogger("connectbatch.pipeline.validation")

Severity = Literal["critical", "warning"]

# The repository's expectations/ folder (this file is connectbatch/pipeline/validation/suites.py).
EXPECTATIONS_DIR = settings.expectations_dir()
MIN_EVENT_DATE = "min_event_date"  # suite parameters, bound at validation time
MAX_EVENT_DATE = "max_event_date"
# In a description, the number of days of the EventDate window: each report puts the
# setting's value in its place (batch.validate), as partners read it, not a setting's name.
MAX_AGE_DAYS = "{max_age_days}"
MAX_DURATION_SECONDS = 86_400
# Expectation ids are uuid5s of their content in this namespace: stable across regenerations.
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://connectbatch.invalid/expectations")


def expectation(
    suite: str, type_: str, kwargs: dict[str, Any], severity: Severity, description: str
) -> dict[str, Any]:
    """One expectation in GX 1.x JSON form. The id is derived from the content so that a
    regenerated suite is byte-identical and results can be put back in suite order."""
    key = json.dumps([suite, type_, kwargs], sort_keys=True)
    return {
        "type": type_,
        "kwargs": kwargs,
        "meta": {"severity": severity, "description": description},
        "severity": severity,  # GX's own field; `meta` is the contract ConnectBatch reads
        "id": str(uuid.uuid5(_ID_NAMESPACE, key)),
    }


def build_suite(data_type: str) -> dict[str, Any]:
    """The expectation suite for `data_type` as a JSON-able dict (what expectations/*.json hold).

    Derived from the registry: required columns not null, coded columns in their value sets,
    the key columns unique within the batch, amounts not negative, `EventDate` inside the
    window bound at run time; then `_hand_written` rules. Free of GX, so the generator and the
    freshness test do not pay GX's import.
    """
    dt = schemas.get(data_type)
    exps: list[dict[str, Any]] = []

    def add(type_: str, kwargs: dict[str, Any], severity: Severity, description: str) -> None:
        exps.append(expectation(dt.key, type_, kwargs, severity, description))

    for col in dt.columns:
        # a cell the schema excuses when empty (the CallerId of an UNKNOWN_CALLERID call) is
        # checked row by row by the parser, which refuses it empty in a row that no excuse
        # covers: not null here would hold every batch with such a call for review
        if col.required and col.empty_when is None:
            add(
                "expect_column_values_to_not_be_null",
                {"column": col.name},
                "critical",
                f"{col.name} is required: every row must have a value.",
            )
    coded = {
        Kind.COUNTRY: "an ISO 3166-1 alpha-2 country code",
        Kind.CURRENCY: "an ISO 4217 currency code",
    }
    for col in dt.columns:
        if col.kind in (Kind.ENUM, *coded):
            what = coded.get(col.kind) or "one of " + ", ".join(col.choices)
            add(
                "expect_column_values_to_be_in_set",
                {"column": col.name, "value_set": list(col.choices)},
                "critical",
                f"{col.name} must be {what}.",
            )
    # not for modification files: their rows are events applied in order, so one file may
    # change an action twice (e.g. modify, then reverse)
    if len(dt.key_columns) == 1 and dt.key != "action_modifications":
        key = dt.key_columns[0]
        add(
            "expect_column_values_to_be_unique",
            {"column": key},
            "critical",
            f"{key} must be unique within the batch: a repeated {key} would be loaded twice.",
        )
    elif len(dt.key_columns) > 1:
        first, *rest = dt.key_columns
        add(
            "expect_compound_columns_to_be_unique",
            {"column_list": list(dt.key_columns)},
            "critical",
            f"{first} with {', '.join(rest)} must be unique within the batch: a repeated event "
            "would be loaded twice (a call and its conversions share the "
            f"{first} and differ in {', '.join(rest)}).",
        )
    for col in dt.columns:
        if col.kind is Kind.DECIMAL:
            add(
                "expect_column_values_to_be_between",
                {"column": col.name, "min_value": 0},
                "critical",
                f"{col.name} must not be negative.",
            )
    if "EventDate" in dt.column_names and dt.column("EventDate").kind is Kind.TIMESTAMP:
        window = {"$PARAMETER": MIN_EVENT_DATE}, {"$PARAMETER": MAX_EVENT_DATE}
        add(
            "expect_column_values_to_be_between",
            {"column": "EventDate", "min_value": window[0], "max_value": window[1]},
            "critical",
            f"EventDate must not be in the future, nor more than {MAX_AGE_DAYS} days old.",
        )
    for type_, kwargs, severity, description in _hand_written(dt.key):
        add(type_, kwargs, severity, description)
    return {
        "name": dt.key,
        "id": str(uuid.uuid5(_ID_NAMESPACE, dt.key)),
        "expectations": exps,
        "meta": {
            "data_type": dt.key,
            "generated_by": "scripts/generate_expectations.py from connectbatch.schemas and "
            "connectbatch.pipeline.validation.suites; edit those, not this file",
            "parameters": {
                MIN_EVENT_DATE: "time of validation minus max_age_days (UTC)",
                MAX_EVENT_DATE: "time of validation (UTC)",
            },
        },
        "notes": None,
    }


# A phone number as a spreadsheet writes it once it read the column as numbers: in scientific
# notation when too long for its cell (1.55512E+10, the last digits lost), or with a decimal
# part (15551234567.0). Seven digits at least before ".0", so "555.0000" (a local number
# written with a dot) is not taken for one.
SPREADSHEET_NUMBER = (
    r"^[+-]?[0-9]+(?:\.[0-9]*)?[eE][+-]?[0-9]+$|^[+-]?[0-9]{7,}\.0+$"  # no group: pandas warns of one
)


def _hand_written(
    data_type: str,
) -> list[tuple[str, dict[str, Any], Severity, str]]:
    """Rules the registry cannot express. They live here, not in the JSON, so that
    regenerating the suites keeps them."""
    if data_type != "call_conversions":
        return []
    pair = "expect_column_pair_values_a_to_be_greater_than_b"
    part_of_call: dict[str, Any] = {"or_equal": True, "ignore_row_if": "either_value_is_missing"}
    return [
        (
            pair,
            {"column_A": "CallDuration", "column_B": "TalkDuration", **part_of_call},
            # a warning, as IvrDuration's: the spec relates no two durations, vendors round
            # them apart (talk 186 s in a 185 s call), and neither moves money, so one such
            # row held a partner's whole file for review (spec audit, 2026-12-07)
            "warning",
            "TalkDuration should not exceed CallDuration: talk time is part of the call.",
        ),
        (
            pair,
            {"column_A": "CallDuration", "column_B": "IvrDuration", **part_of_call},
            "warning",
            "IvrDuration should not exceed CallDuration: IVR time is part of the call.",
        ),
        *(
            (
                "expect_column_values_to_be_between",
                {"column": col, "max_value": MAX_DURATION_SECONDS},
                "warning",
                f"{col} over 86,400 seconds (a day) is suspicious.",
            )
            for col in ("CallDuration", "TalkDuration")
        ),
        (
            "expect_column_values_to_be_unique",
            {"column": "VendorEventId"},
            "warning",
            "VendorEventId should be unique within the batch: the specification gives every call "
            "event and every conversion event its own VendorEventId, so one repeated under another "
            "CallSessionId is one event sent for two calls, or two events sharing an id.",
        ),
        *(
            (
                "expect_column_values_to_not_match_regex",
                {"column": col, "regex": SPREADSHEET_NUMBER},
                "critical",
                f"{col} must not be in scientific notation (1.55512E+10) nor end in .0 "
                "(15551234567.0): a spreadsheet read the phone number as a number (and in "
                "scientific notation dropped its last digits); format the column as text and "
                "export the file again.",
            )
            for col in ("CallerId", "CalledPhoneNumber")
        ),
    ]


def suite_path(data_type: str) -> Path:
    return EXPECTATIONS_DIR / f"{schemas.get(data_type).key}.json"


_suites: dict[str, dict[str, Any]] = {}


def load_suite(data_type: str) -> dict[str, Any]:
    """The committed suite JSON for `data_type` (read once per process). Without the file (an
    installed wheel has no expectations/ folder) the generator's output is used: a unit test
    keeps the two identical."""
    suite = _suites.get(data_type)
    if suite is None:
        path = suite_path(data_type)
        try:
            suite = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            log.info("no suite file %s; using the generated suite", path)
            suite = build_suite(data_type)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the expectation suite {path}: {exc}") from exc
        _suites[data_type] = suite
    return suite


def columns(kwargs: dict[str, Any]) -> list[str]:
    """The columns an expectation reads, in the order its kwargs name them."""
    names = (kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B"))
    return [c for c in (*names, *kwargs.get("column_list", ())) if c]
