"""Login throttling per name and client: a stranger who knows an analyst's login name must not
be able to keep that analyst locked out by failing a login every few minutes from anywhere
(a denial of service found 2026-12-07), while guessing stays throttled.

Attacks tried: one client failing for a name while the real user logs in from another; the
same client going on guessing after someone else logged in; one client failing for two days
as fast as it is let; many clients sharing the guesses for one name (known or not: the
throttling must not tell which names exist); one attacker with many IPv6 addresses of one
/64; and flooding the in-memory tables. The login form passes the browser's address.
"""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace

import pytest
from helpers.app_login import PASSWORD
from helpers.clock import Clock

from connectbatch.services import AuthenticationError, Services
from connectbatch.services import users as user_services

ATTACKER = "198.51.100.7"
ANALYST = "203.0.113.20"
THROTTLED = r"too many failed logins for 'ada': try again in \d+ seconds"


def fail(services: Services, name: str, client: str | None, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(AuthenticationError, match="wrong name or password"):
            services.authenticate(name, "guess", client=client)


def wait_of(exc: pytest.ExceptionInfo[AuthenticationError]) -> int:
    found = re.search(r"try again in (\d+) seconds", str(exc.value))
    assert found is not None, exc.value
    return int(found.group(1))


def test_one_clients_failures_do_not_lock_out_another_client(timed: Services) -> None:
    fail(timed, "ada", ATTACKER, user_services.FAILURES_ALLOWED)
    with pytest.raises(AuthenticationError, match=THROTTLED):
        timed.authenticate("ada", PASSWORD, client=ATTACKER)

    # Was: "too many failed logins for 'ada'" for the analyst too, for as long as the
    # stranger kept failing.
    assert timed.authenticate("ada", PASSWORD, client=ANALYST).name == "ada"


def test_a_client_is_still_throttled_after_its_failures(timed: Services, clock: Clock) -> None:
    fail(timed, "ada", ATTACKER, user_services.FAILURES_ALLOWED)
    with pytest.raises(AuthenticationError, match=r"for 'ada': try again in 30 seconds"):
        timed.authenticate("ada", PASSWORD, client=ATTACKER)  # refused unchecked

    # Someone else logging in clears their own failures, not the attacker's.
    assert timed.authenticate("ada", PASSWORD, client=ANALYST).name == "ada"
    with pytest.raises(AuthenticationError, match=r"for 'ada': try again in 30 seconds"):
        timed.authenticate("ada", PASSWORD, client=ATTACKER)

    clock.now += dt.timedelta(seconds=31)
    fail(timed, "ada", ATTACKER)
    with pytest.raises(AuthenticationError, match="try again in 60 seconds"):  # doubled
        timed.authenticate("ada", PASSWORD, client=ATTACKER)

    clock.now += dt.timedelta(seconds=61)
    assert timed.authenticate("ada", PASSWORD, client=ATTACKER).name == "ada"
    fail(timed, "ada", ATTACKER, user_services.FAILURES_ALLOWED - 1)  # its count starts afresh
    assert timed.authenticate("ada", PASSWORD, client=ATTACKER).name == "ada"


def test_one_client_failing_for_two_days_never_locks_the_name(timed: Services, clock: Clock) -> None:
    start = clock.now
    failures, highest = 0, 0
    while clock.now < start + dt.timedelta(days=2):
        with pytest.raises(AuthenticationError) as refused:
            timed.authenticate("ada", "guess", client=ATTACKER)
        if "wrong name or password" in str(refused.value):
            failures += 1
            highest = max(highest, timed.current_user("ada").failed_logins)  # type: ignore[union-attr]
        else:  # throttled: it comes back the moment it is let
            clock.now += dt.timedelta(seconds=wait_of(refused))
    assert failures > 150  # it did keep guessing, about one guess per LONGEST_DELAY
    assert failures < 2 * 24 * 4 + 2 * user_services.FAILURES_ALLOWED
    assert highest <= user_services.FAILURES_ALLOWED + 3  # as the module says: far below the ceiling
    # The analyst, from elsewhere, was never refused: the name-wide count stayed low.
    assert timed.authenticate("ada", PASSWORD, client=ANALYST).name == "ada"


@pytest.mark.parametrize("name", ["ada", "ghost"])  # a user and no user: throttled alike
def test_the_name_wide_ceiling_stops_many_clients(timed: Services, clock: Clock, name: str) -> None:
    per_client = user_services.FAILURES_ALLOWED - 1  # each client stays below its own limit
    clients = [f"192.0.2.{n}" for n in range(1, 100)]
    failed = 0
    for client in clients:
        take = min(per_client, user_services.NAME_FAILURES_ALLOWED - failed)
        fail(timed, name, client, take)
        failed += take
        if failed == user_services.NAME_FAILURES_ALLOWED:
            break
    fresh = "192.0.2.200"  # never failed, yet refused: the name as a whole is being guessed
    with pytest.raises(AuthenticationError, match=rf"too many failed logins for '{name}'") as refused:
        timed.authenticate(name, PASSWORD, client=fresh)
    assert 0 < wait_of(refused) <= user_services.NAME_LEAK.total_seconds()

    clock.now += user_services.NAME_LEAK  # the name forgets one failure: one more guess
    fail(timed, name, fresh)
    with pytest.raises(AuthenticationError, match=rf"too many failed logins for '{name}'"):
        timed.authenticate(name, PASSWORD, client="192.0.2.201")

    # In time the name forgets them all.
    clock.now += user_services.NAME_LEAK * user_services.NAME_FAILURES_ALLOWED
    if name == "ada":
        assert timed.authenticate(name, PASSWORD, client="192.0.2.201").name == "ada"
    else:
        fail(timed, name, "192.0.2.201")


def test_a_success_clears_the_name_wide_count(timed: Services) -> None:
    for n in range(10):
        fail(timed, "ada", f"192.0.2.{n}", user_services.FAILURES_ALLOWED - 1)
    assert timed.current_user("ada").failed_logins == 40  # type: ignore[union-attr]
    assert timed.authenticate("ada", PASSWORD, client=ANALYST).name == "ada"
    found = timed.current_user("ada")
    assert found is not None and found.failed_logins == 0 and found.last_failed_at is None


def test_without_an_address_logins_share_one_count_per_name(timed: Services) -> None:
    """Where Streamlit knows no address (localhost, a proxy on the same host): the throttling
    per name alone, as before there were addresses."""
    fail(timed, "ada", None, user_services.FAILURES_ALLOWED)
    with pytest.raises(AuthenticationError, match=r"for 'ada': try again in 30 seconds"):
        timed.authenticate("ada", PASSWORD)
    assert timed.authenticate("ada", PASSWORD, client=ANALYST).name == "ada"  # an address: its own


def test_addresses_of_one_ipv6_64_count_as_one_client(timed: Services) -> None:
    """A host holds a whole /64 (SLAAC, privacy addresses): counted per address, one attacker
    would have 2**64 clients."""
    fail(timed, "ada", "2001:db8:1:2::1", user_services.FAILURES_ALLOWED)
    with pytest.raises(AuthenticationError, match=THROTTLED):
        timed.authenticate("ada", PASSWORD, client="2001:db8:1:2:ffff:1:2:3")
    assert timed.authenticate("ada", PASSWORD, client="2001:db8:1:3::1").name == "ada"


def test_a_new_password_clears_every_clients_failures(timed: Services) -> None:
    fail(timed, "ada", ATTACKER, user_services.FAILURES_ALLOWED)
    timed.set_user_password("ada", "a brand new password")
    assert timed.authenticate("ada", "a brand new password", client=ATTACKER).name == "ada"


def test_the_in_memory_tables_stay_bounded(timed: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(user_services._Failures, "LIMIT", 8)
    long_name = "x" * 100_000  # the name as typed, any length: not kept as typed
    for n in range(30):
        fail(timed, f"{long_name}{n}", f"192.0.2.{n}")
    for table in (user_services._CLIENTS, user_services._UNKNOWN):
        assert len(table) <= 8
        assert all(len(repr(key)) < 400 for key in table.held())


def test_a_flood_of_fresh_names_does_not_push_out_a_throttled_count(
    timed: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failing with ever new names fills the table; were the oldest count forgotten first,
    a guesser would free itself (and feed the name-wide count) by flooding now and then."""
    monkeypatch.setattr(user_services._Failures, "LIMIT", 8)
    fail(timed, "ada", ATTACKER, user_services.FAILURES_ALLOWED)
    for n in range(30):
        fail(timed, f"nobody{n}", ATTACKER)
    with pytest.raises(AuthenticationError, match=THROTTLED):
        timed.authenticate("ada", PASSWORD, client=ATTACKER)


def test_the_login_form_passes_the_browsers_address(monkeypatch: pytest.MonkeyPatch) -> None:
    from app_pages import _auth

    monkeypatch.setattr(_auth.st, "context", SimpleNamespace(ip_address=ATTACKER))
    assert _auth._client_address() == ATTACKER

    class Broken:
        @property
        def ip_address(self) -> str:
            raise RuntimeError("no session")

    monkeypatch.setattr(_auth.st, "context", Broken())
    assert _auth._client_address() is None
    monkeypatch.setattr(_auth.st, "context", SimpleNamespace())  # an older Streamlit: no attribute
    assert _auth._client_address() is None
