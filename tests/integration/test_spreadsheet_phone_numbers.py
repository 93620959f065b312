"""A phone number a spreadsheet turned into scientific notation (1.55512E+10: the column was
read as a number, its last digits dropped) or gave a decimal part (15551234567.0) holds the
batch for review with words that say what happened and what to do; it was accepted as the
CallerId "1.55512E+10", which matches no call."""

from __future__ import annotations

from helpers import call_csv

from connectbatch.models import RunStatus
from connectbatch.services import Services


def test_a_caller_id_in_scientific_notation_holds_the_batch(services: Services, make_connection) -> None:
    make_connection("Acme")
    data = call_csv(3, overrides={1: {"CallerId": "1.55512E+10"}})

    run = services.ingest_bytes("Acme", "calls.csv", data)

    assert run.status is RunStatus.NEEDS_REVIEW
    assert "CallerId must not be in scientific notation" in (run.reason or "")
    assert services.count_actions("Acme") == 0


def test_a_phone_number_ending_in_point_zero_holds_the_batch(services: Services, make_connection) -> None:
    """15551234567.0: the spreadsheet kept the digits but added a decimal part, and the
    value matches no call; it was accepted as sent."""
    make_connection("Acme")
    data = call_csv(3, overrides={2: {"CalledPhoneNumber": "18005550100.0"}})

    run = services.ingest_bytes("Acme", "calls.csv", data)

    assert run.status is RunStatus.NEEDS_REVIEW
    assert "CalledPhoneNumber must not be in scientific notation (1.55512E+10) nor end in .0" in (
        run.reason or ""
    )


def test_phone_numbers_as_people_write_them_pass(services: Services, make_connection) -> None:
    make_connection("Acme")
    numbers = ["+15551234567", "(555) 123-4567", "15551234567", "555.123.4567", "555.0000"]
    data = call_csv(5, overrides={i: {"CallerId": n} for i, n in enumerate(numbers)})

    run = services.ingest_bytes("Acme", "calls.csv", data)

    assert run.status is RunStatus.COMPLETED, run.reason
