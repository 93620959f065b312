"""paramiko's tracebacks stay out of an INFO log (`connectbatch serve`) and show at DEBUG
(transfer/paramiko_log.py)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from connectbatch.transfer.pull.sftp.transport import PARAMIKO_LOG


@pytest.fixture
def root_log() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    """The root logger as `basicConfig` leaves it: a handler of level NOTSET."""
    root = logging.getLogger()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    saved = root.level
    root.addHandler(handler)
    try:
        yield out, root
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)


def _handshake_failure() -> None:
    try:
        raise EOFError("the host never answered")
    except EOFError:
        logging.getLogger(PARAMIKO_LOG).error(
            "Exception (client): error reading SSH protocol banner", exc_info=True
        )


def test_a_failed_handshake_writes_no_traceback_into_an_info_log(
    root_log: tuple[io.StringIO, logging.Logger],
) -> None:
    out, root = root_log
    root.setLevel(logging.INFO)  # as `connectbatch serve`
    _handshake_failure()
    assert out.getvalue() == ""


def test_it_shows_at_debug_where_debug_logging_is_on(root_log: tuple[io.StringIO, logging.Logger]) -> None:
    out, root = root_log
    root.setLevel(logging.DEBUG)  # CONNECTBATCH_DEBUG
    _handshake_failure()
    assert "SSH protocol banner" in out.getvalue() and "Traceback" in out.getvalue()
