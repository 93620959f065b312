"""A login that lasts through a reload and in other tabs (services/sessions.py), tried the way
an attacker would: a used or stale token, another site's request, a stolen old login, a
disabled user. The route is driven through ASGI, as the app's server serves it."""

from __future__ import annotations

import datetime as dt
from http.cookies import SimpleCookie

import pytest
from helpers.app_login import PASSWORD
from helpers.asgi import asgi_get
from helpers.clock import Clock
from starlette.applications import Starlette

from connectbatch import webapp
from connectbatch.models import Role
from connectbatch.services import PermissionDeniedError, Services, sessions


def log_in(services: Services) -> str:
    """A session token as the browser gets it: login, handoff, trade."""
    user = services.authenticate("ada", PASSWORD)
    traded = services.redeem_handoff(services.start_handoff(user))
    assert traded is not None
    return traded[0]


def test_a_handoff_is_traded_once_for_a_session_that_resumes_the_login(timed: Services, clock: Clock) -> None:
    user = timed.authenticate("ada", PASSWORD)
    logged_in = clock.now
    handoff = timed.start_handoff(user)
    assert timed.session_of_handoff(handoff) is None

    clock.now += dt.timedelta(seconds=30)
    traded = timed.redeem_handoff(handoff)
    assert traded is not None
    session, seconds = traded
    assert seconds == 8 * 3600 - 30  # the session ends session_hours after the login
    assert timed.redeem_handoff(handoff) is None  # one use
    assert timed.session_of_handoff(handoff) == sessions.token_hash(session)

    resumed = timed.resume(session)
    assert resumed is not None and resumed[0].name == "ada" and resumed[1] == logged_in
    assert timed.resume(handoff) is None  # a handoff is no session
    assert timed.resume("made up") is None


def test_only_hashes_of_the_tokens_are_stored(timed: Services) -> None:
    session = log_in(timed)
    with timed.db.connect() as con:
        stored = con.execute("SELECT token_hash, handoff_hash FROM app_sessions").fetchall()
    assert stored == [(sessions.token_hash(session), stored[0][1])]
    assert session not in repr(stored)


def test_a_stale_handoff_and_an_expired_session_open_nothing(timed: Services, clock: Clock) -> None:
    user = timed.authenticate("ada", PASSWORD)
    stale = timed.start_handoff(user)
    clock.now += dt.timedelta(seconds=sessions.HANDOFF_SECONDS + 1)
    assert timed.redeem_handoff(stale) is None

    session = log_in(timed)
    clock.now += dt.timedelta(hours=8, seconds=1)
    assert timed.resume(session) is None


def test_log_out_a_disabled_user_or_a_new_password_ends_the_sessions(timed: Services) -> None:
    ended = log_in(timed)
    timed.end_session(sessions.token_hash(ended))
    assert timed.resume(ended) is None
    assert not timed.session_alive(sessions.token_hash(ended))

    before_reset = log_in(timed)
    timed.set_user_password("ada", PASSWORD)  # an admin's reset, even to the same password
    assert timed.resume(before_reset) is None

    before_disable = log_in(timed)
    assert timed.resume(before_disable) is not None
    timed.disable_user("ada")
    assert timed.resume(before_disable) is None


def test_log_out_by_the_handoff_token_ends_its_session_or_voids_the_token(timed: Services) -> None:
    """A tab logged out before it learnt its session has only its handoff token."""
    user = timed.authenticate("ada", PASSWORD)
    handoff = timed.start_handoff(user)
    traded = timed.redeem_handoff(handoff)
    assert traded is not None
    timed.end_handoff(handoff)
    assert timed.resume(traded[0]) is None

    not_yet = timed.start_handoff(user)
    timed.end_handoff(not_yet)  # the browser's request comes after the Log out
    assert timed.redeem_handoff(not_yet) is None


def test_a_page_bound_to_one_user_cannot_start_a_session_for_another(timed: Services) -> None:
    admin = timed.add_user("root", Role.ADMIN, PASSWORD)
    as_ada = timed.as_user(timed.authenticate("ada", PASSWORD))
    with pytest.raises(PermissionDeniedError):
        as_ada.start_handoff(admin)


# ------------------------------------------------------------------ the route


@pytest.fixture
def route(timed: Services) -> Starlette:
    return Starlette(routes=webapp.session_routes(lambda: timed))


def handoff(services: Services) -> str:
    return services.start_handoff(services.authenticate("ada", PASSWORD))


def test_the_route_sets_an_httponly_samesite_strict_cookie_once(timed: Services, route: Starlette) -> None:
    token = handoff(timed)
    answer = asgi_get(route, f"/_session?h={token}", {"Sec-Fetch-Site": "same-origin"})

    assert answer["status"] == 204
    assert answer["headers"]["cache-control"] == ["no-store"]
    (set_cookie,) = answer["headers"]["set-cookie"]
    cookie = SimpleCookie(set_cookie)[webapp.SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"].lower() == "strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain http (127.0.0.1); over https it is Secure (below)
    assert int(cookie["max-age"]) == 8 * 3600
    assert timed.resume(cookie.value) is not None

    again = asgi_get(route, f"/_session?h={token}")
    assert again["status"] == 404 and "set-cookie" not in again["headers"]


def test_over_https_the_cookie_is_secure(timed: Services, route: Starlette) -> None:
    answer = asgi_get(route, f"/_session?h={handoff(timed)}", scheme="https")
    assert SimpleCookie(answer["headers"]["set-cookie"][0])[webapp.SESSION_COOKIE]["secure"]


@pytest.mark.parametrize("site", ["cross-site", "same-site", "none"])
def test_another_sites_request_is_refused_and_leaves_the_token_unused(
    timed: Services, route: Starlette, site: str
) -> None:
    token = handoff(timed)
    answer = asgi_get(route, f"/_session?h={token}", {"Sec-Fetch-Site": site})
    assert answer["status"] == 404 and "set-cookie" not in answer["headers"]
    assert timed.redeem_handoff(token) is not None  # still the page's own to trade


@pytest.mark.parametrize("query", ["", "?h=", "?h=made-up", "?h=%00%ff", "?other=1"])
def test_a_missing_or_unknown_token_gets_no_cookie(route: Starlette, query: str) -> None:
    answer = asgi_get(route, f"/_session{query}")
    assert answer["status"] == 404 and "set-cookie" not in answer["headers"]
