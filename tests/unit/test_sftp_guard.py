"""The hosted SFTP server's guards, without sockets: idle connections are displaced (oldest
first, same address first), logged-in sessions never; failed logins per address; a log
limiter that counts what it held back."""

from __future__ import annotations

import logging

import pytest

from connectbatch.transfer.push.sftp.guard import FailedLogins, LogLimiter, Slots


def test_an_address_holds_few_idle_connections_and_any_number_of_sessions() -> None:
    """Only connections that have not logged in count against an address (as on the FTP
    server): idle sockets crowd out idle sockets, a partner's parallel sessions are not capped."""
    slots = Slots(per_address=2, total=10)
    first, _ = slots.take("10.0.0.1", lambda: None)
    second, _ = slots.take("10.0.0.1", lambda: None)
    assert first is not None and second is not None
    first.logged_in = lambda: True
    third, displaced = slots.take("10.0.0.1", lambda: None)  # one idle so far: room
    assert third is not None and displaced == []
    fourth, displaced = slots.take("10.0.0.1", lambda: None)  # two idle: the oldest goes
    assert fourth is not None and displaced == [second]
    third.logged_in = fourth.logged_in = lambda: True
    fifth, displaced = slots.take("10.0.0.1", lambda: None)  # sessions never count
    assert fifth is not None and displaced == [] and first not in displaced
    other, displaced = slots.take("10.0.0.2", lambda: None)  # another address is not affected
    assert other is not None and displaced == []


def test_a_full_server_displaces_the_oldest_idle_connection_of_any_address() -> None:
    slots = Slots(per_address=5, total=2)
    a, _ = slots.take("10.0.0.1", lambda: None)
    b, _ = slots.take("10.0.0.2", lambda: None)
    c, displaced = slots.take("10.0.0.3", lambda: None)
    assert c is not None and displaced == [a]
    slots.release(c)
    assert slots.count() == 1 and b is not None


def test_late_connections_expire_and_sessions_do_not() -> None:
    slots = Slots(per_address=5, total=5)
    idle, _ = slots.take("10.0.0.1", lambda: None)
    session, _ = slots.take("10.0.0.1", lambda: None)
    assert session is not None
    session.logged_in = lambda: True
    assert slots.expired(0.0) == [idle]
    assert slots.count() == 1


def test_failed_logins_block_an_address_past_the_limit() -> None:
    failures = FailedLogins(limit=3, window=60.0)
    assert [failures.failed("10.0.0.1") for _ in range(3)] == [1, 2, 3]
    assert failures.blocked("10.0.0.1") and not failures.blocked("10.0.0.2")
    assert not FailedLogins(limit=1, window=0.0).blocked("10.0.0.1")


def test_the_log_limiter_holds_back_repeats_and_says_how_many(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test.guard")
    now = [1000.0]
    limiter = LogLimiter(logging.getLogger("test.guard"), burst=2, window=60.0, clock=lambda: now[0])
    logged = [limiter.log("k", logging.INFO, "message %d", n) for n in range(10)]
    assert logged == [True, True] + [False] * 8
    assert limiter.log("other", logging.INFO, "another kind")
    now[0] += 61.0  # a window later
    assert limiter.log("k", logging.INFO, "message again")
    assert caplog.records[-1].getMessage() == "message again (8 similar messages were not logged)"
    assert len(caplog.records) == 4
