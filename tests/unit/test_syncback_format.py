"""The status sync-back file format and settings (pipeline/syncback.py), without a database:
channels and status words are checked, cells and the partner's header names are escaped."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from connectbatch import schemas
from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.pipeline import results
from connectbatch.pipeline import syncback as sb
from connectbatch.store.syncback import FileOutcome, RowOutcome

_CALL_COLUMNS = schemas.get("call_conversions").column_names


def _acme(**attrs: object) -> Connection:
    return Connection("Acme", "call_conversions", Direction.INBOUND, Method.SFTP, Methodology.PUSH, **attrs)  # type: ignore[arg-type]


def test_channels_and_words_are_checked() -> None:
    assert sb.checked_channels("email, files") == ["files", "email"]
    assert sb.checked_channels("") == sb.checked_channels("off") == sb.checked_channels(None) == []
    with pytest.raises(sb.SyncBackSettingError, match="fax"):
        sb.checked_channels(["fax"])
    assert sb.checked_words('{"Reversed": "removed", "accepted": "valid"}') == {"reversed": "removed"}
    for bad in ('{"paid": "x"}', '{"accepted": "a\\nb"}', '{"accepted": 1}', "[]", "{"):
        with pytest.raises(sb.SyncBackSettingError):
            sb.checked_words(bad)
    assert sb.words(_acme(status_words={"locked": "final"}))["locked"] == "final"
    # Convertr: the partner's record of a lead is only ever valid or invalid
    assert set(sb.words(_acme()).values()) == {"valid", "invalid"}
    assert (sb.words(_acme())["reversed"], sb.words(_acme())["modified"]) == ("invalid", "valid")


def test_both_is_a_channel_setting_as_the_refusal_says() -> None:
    """`--sync-back fax` answered "use files, email, both or off", and then `--sync-back both`
    was refused with the same line."""
    assert sb.checked_channels("both") == sb.checked_channels("files,email") == ["files", "email"]
    with pytest.raises(sb.SyncBackSettingError, match="use files, email, both or off"):
        sb.checked_channels("fax")


def test_partner_key_names_and_every_cell_are_escaped() -> None:
    c = _acme(column_map={"=cmd|x": "CallSessionId"})
    names = sb.header_names(c, ["=cmd|x", "SaleAmount", "transaction_id"])
    assert names == ("=cmd|x", "VendorEventId")
    # unknown header, or a name that would clash with ours: our names
    assert sb.header_names(_acme(), None) == ("CallSessionId", "VendorEventId")
    assert sb.header_names(_acme(), ["Status"]) == ("CallSessionId", "VendorEventId")
    row = sb.StatusRow(
        dt.datetime(2026, 3, 1, tzinfo=dt.UTC), 1, "+calls.csv", 2, ("=HYPERLINK(1)", "ev-1"), 7, "modified",
        Decimal("10.00"), Decimal("5.00"), "@SUM(A1)",
    )  # fmt: skip
    text = sb.render(c, [row], names, sb.words(c)).decode()
    [parsed] = list(csv.DictReader(io.StringIO(text)))
    assert "'=cmd|x" in parsed and parsed["'=cmd|x"] == "'=HYPERLINK(1)"
    assert parsed["VendorEventId"] == "ev-1"
    assert (parsed["File"], parsed["Reason"]) == ("+calls.csv", "'@SUM(A1)")
    assert (parsed["ActionId"], parsed["Status"], parsed["Change"]) == ("A-000007", "valid", "modified")
    assert (parsed["OldAmount"], parsed["NewAmount"]) == ("10.00", "5.00")
    assert parsed["ChangedAt"] == "2026-03-01T00:00:00+00:00"


def test_a_row_refused_after_parsing_names_its_key_in_the_status_file() -> None:
    """Rejects made after parsing (no such action, not replaced, already loaded) are about the
    key and hold it as their value: the status row names the record. A row the parser refused
    for another column has no key to show."""
    outcome = FileOutcome(7, "calls.csv", "loaded", None, None, dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    refused = {"key": (None,), "action_id": None, "rejected": True}
    rows = [
        RowOutcome(2, ("k-1",), 11),
        RowOutcome(3, column="CallSessionId", value="k-2", reason="already loaded", **refused),  # type: ignore[arg-type]
        RowOutcome(4, column="SaleAmount", value="x", reason="not a number", **refused),  # type: ignore[arg-type]
    ]
    names = results.partner_names(["session"], {"session": "CallSessionId"}, _CALL_COLUMNS)
    found = sb.file_rows(outcome, rows, names, "CallSessionId")
    assert [(r.line, r.key, r.change) for r in found] == [
        (2, ("k-1",), "accepted"), (3, ("k-2",), "rejected"), (4, (None,), "rejected"),
    ]  # fmt: skip
    assert found[1].reason == "session: already loaded (value 'k-2')"
