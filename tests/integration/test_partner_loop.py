"""The partner's end of the loop (probe-loop): what comes back to a partner after a held batch
is decided, and where their e-mail answers go. Each test plays the partner: it delivers a
file through `Services` and reads only what the partner would receive (the results file,
the summary, the mail a real SMTP server got)."""

from __future__ import annotations

from helpers import call_csv

from connectbatch.services import Services
from tests.helpers.store import results_of

N = 10


def test_a_discarded_batch_gets_a_results_file_that_says_nothing_was_loaded(
    services: Services, make_connection
) -> None:
    """The results file is the partner's answer for a file; after a reviewer discards a held
    batch it must not keep saying QUARANTINED "held for review" (the partner would wait for
    a decision that was already made): a Line 0 FILE_REJECTED says it was discarded and by
    whom, with the reviewer's note, and the rows the parser refused keep their reasons."""
    make_connection("Acme")
    held = services.ingest_bytes("Acme", "neg.csv", call_csv(N, overrides={0: {"SaleAmount": "-1"}}))
    assert held.review == "quarantined"

    services.discard(held.id, note="wrong amounts, send a corrected file", actor="bob")

    rows, summary = results_of(services, "Acme", held.id)
    assert "QUARANTINED" not in {r["Status"] for r in rows}
    [file_line] = [r for r in rows if r["Line"] == "0"]
    assert file_line["Status"] == "FILE_REJECTED"
    assert "discarded by bob" in file_line["Reason"]
    assert "wrong amounts, send a corrected file" in file_line["Reason"]
    assert "Nothing of this file was loaded" in file_line["Reason"]
    assert summary["status"] == "discarded"
    assert summary["rows_accepted"] == 0 and summary["actions_created"] == 0
    assert not services.actions("Acme")


def test_a_discarded_batch_keeps_the_rows_the_parser_refused(services: Services, make_connection) -> None:
    """Held for its reject rate, then discarded: the partner still learns which line was
    unreadable and why, beside the Line 0 row that says the file was not loaded."""
    make_connection("Acme")
    held = services.ingest_bytes("Acme", "bad.csv", call_csv(N, overrides={1: {"CallDuration": "abc"}}))
    assert held.review == "quarantined"

    services.discard(held.id, note=None, actor="bob")

    rows, summary = results_of(services, "Acme", held.id)
    assert [(r["Line"], r["Status"]) for r in rows] == [("0", "FILE_REJECTED"), ("3", "REJECTED")]
    assert "CallDuration" in rows[1]["Reason"]
    assert summary["rows_rejected"] == 1
