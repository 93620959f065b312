"""Two exports of one pickup at once (its schedule, and an analyst's Export now) write the
rows once, and neither marks the connection Failed: the second waits for the first and then
finds nothing new. Both read the same watermark, and the second's ledger row conflicted with
the first's: the connection read Failed with an error although the export went out (found
by an audit of the partner loop)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest
from helpers import call_csv

from connectbatch.models import Connection, ConnectionStatus, Direction, Method, Methodology
from connectbatch.services import Services
from connectbatch.store import exports


def test_two_exports_at_once_write_the_rows_once_and_neither_fails(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.add_partner("Acme", "brand")
    for name, direction, methodology in (
        ("Acme calls", Direction.INBOUND, Methodology.PUSH),
        ("Acme pickup", Direction.OUTBOUND, Methodology.PULL_FROM_US),
    ):
        services.create_connection(
            Connection(name, "call_conversions", direction, Method.SFTP, methodology), partner="Acme"
        )
    services.ingest_bytes("Acme calls", "acme.csv", call_csv(3, prefix="acme"))
    together = threading.Barrier(2, timeout=1.0)
    settle = exports.settle

    def meeting(*args: Any, **kwargs: Any) -> Any:  # both inside their transaction, if they can be
        with contextlib.suppress(threading.BrokenBarrierError):  # the other waits: as it should
            together.wait()
        return settle(*args, **kwargs)

    monkeypatch.setattr(exports, "settle", meeting)
    done: list[Any] = []
    failed: list[BaseException] = []

    def export() -> None:
        try:
            done.append(services.export_now("Acme pickup", trigger="schedule"))
        except BaseException as exc:  # reported below
            failed.append(exc)

    threads = [threading.Thread(target=export) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert not failed, failed
    assert sorted(e is None for e in done) == [False, True]  # one wrote the rows, one found nothing
    assert services.connection("Acme pickup").status is ConnectionStatus.COMPLETED
