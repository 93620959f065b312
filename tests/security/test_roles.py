"""Login and roles: what each role may do is checked in the service layer, whatever page or
route the call comes from; logins are throttled and do not reveal which names exist.

Attacks tried: a partner manager releasing a quarantined batch and a reviewer creating a
connection through the services (as a page reached by a deep link would call them), reading
credentials without the role, a forged actor name in the audit trail, a disabled user logging
in, guessing a password, telling users from non-users by the time or the throttling of a
failed login, and, in the app, reaching pages without a login or outside one's role.
"""

from __future__ import annotations

import datetime as dt
import inspect
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import call_csv
from helpers.app_login import PASSWORD, legacy_hash, log_in
from helpers.clock import Clock
from streamlit.testing.v1 import AppTest

from connectbatch import webapp
from connectbatch.models import Connection, Direction, Method, Methodology, Role, User
from connectbatch.services import AuthenticationError, PermissionDeniedError, Services
from connectbatch.services import users as user_services
from connectbatch.settings import Settings
from connectbatch.store import users as user_store

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
TIMEOUT = 60


def bound(services: Services, name: str, role: Role) -> Services:
    user = services.add_user(name, role, PASSWORD)
    return services.as_user(user)


def quarantined_run(services: Services, make_connection: Callable[..., Connection]) -> int:
    make_connection("Acme")
    run = services.ingest_bytes("Acme", "bad.csv", call_csv(40, overrides={2: {"CallerId": "1.55512E+10"}}))
    assert run.review == "quarantined"
    return run.id


def draft(name: str = "Evil") -> Connection:
    return Connection(name=name, data_type="call_conversions", direction=Direction.INBOUND,
                      method=Method.SFTP, methodology=Methodology.PUSH)  # fmt: skip


# ------------------------------------------------------------------ roles in the service layer


def test_a_partner_manager_cannot_release_or_discard_a_batch(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    run_id = quarantined_run(services, make_connection)
    manager = bound(services, "pam", Role.PARTNER_MANAGER)

    with pytest.raises(PermissionDeniedError, match=r"pam \(Partner manager\) may not release"):
        manager.release(run_id, "looks fine to me", actor="a reviewer")
    with pytest.raises(PermissionDeniedError, match="may not discard"):
        manager.discard(run_id, "drop it")
    with pytest.raises(PermissionError):  # the builtin it resembles
        manager.dry_run(b"x", "call_conversions")

    assert services.run(run_id).review == "quarantined"
    assert services.count_actions() == 0


def test_a_reviewer_cannot_create_change_or_delete_connections(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    make_connection("Acme")
    reviewer = bound(services, "rita", Role.REVIEWER)

    with pytest.raises(PermissionDeniedError, match=r"rita \(Reviewer\) may not create connection.*Analyst"):
        reviewer.create_connection(draft())
    with pytest.raises(PermissionDeniedError):
        reviewer.update_connection("Acme", folder="/elsewhere")
    with pytest.raises(PermissionDeniedError):
        reviewer.delete_connection("Acme")
    with pytest.raises(PermissionDeniedError):
        reviewer.ingest_bytes("Acme", "x.csv", call_csv(3))
    with pytest.raises(PermissionDeniedError):  # several waiting files (group commit): an analyst's
        reviewer.ingest_files("Acme", [])
    with pytest.raises(PermissionDeniedError):  # the app's Run now asks this before the engine runs
        reviewer.connection_to_pull("Acme")

    assert [c.name for c in services.connections()] == ["Acme"]
    assert reviewer.connections() == services.connections()  # reading lists is fine
    assert services.runs() == []


def test_credentials_and_users_are_read_only_by_their_roles(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    make_connection("Acme")
    for name, role in (("rita", Role.REVIEWER), ("pam", Role.PARTNER_MANAGER)):
        with pytest.raises(PermissionDeniedError):
            bound(services, name, role).credentials("Acme")
    analyst = bound(services, "ann", Role.ANALYST)
    assert len(analyst.credentials("Acme")) == 1
    with pytest.raises(PermissionDeniedError):
        analyst.users()
    with pytest.raises(PermissionDeniedError):
        analyst.add_user("mallory", Role.ADMIN, "a long password!")
    admin = bound(services, "root", Role.ADMIN)
    assert len(admin.credentials("Acme")) == 1  # admin may do everything
    assert {u.name for u in admin.users()} == {"rita", "pam", "ann", "root"}


def test_the_audit_trail_names_the_logged_in_user_not_the_given_actor(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    run_id = quarantined_run(services, make_connection)
    reviewer = bound(services, "rita", Role.REVIEWER)

    released = reviewer.release(run_id, "checked", actor="the boss")
    assert "rita" in (released.review_note or "") and "the boss" not in (released.review_note or "")

    manager = bound(services, "pam", Role.PARTNER_MANAGER)
    action = services.actions("Acme")[0]
    [outcome] = manager.change_actions([action.id], reverse=True, reason="refund", actor="someone else")
    assert outcome.ok
    assert [e.actor for e in services.audit(action.id)] == ["pam"]
    # The local operator (CLI) keeps its --actor.
    services.modify_action(services.actions("Acme")[1].id, "1.00", "fix", actor="cli-user")
    assert services.audit(services.actions("Acme")[1].id)[-1].actor == "cli-user"


def test_binding_a_user_leaves_the_operator_services_unbound(services: Services) -> None:
    reviewer = bound(services, "rita", Role.REVIEWER)

    assert services.user is None and reviewer.user is not None
    assert reviewer.db is services.db and reviewer.ingestor is services.ingestor
    services.create_connection(draft("Fine"))  # the operator still may


# Reads every logged-in role may call; everything else public on Services needs a role.
OPEN_TO_EVERY_ROLE = {
    "connections", "connection", "run", "runs", "run_files", "retried_as", "rejects", "count_rejects",
    "run_results_files", "results_files", "results_mail", "validation", "reject_rates", "review_queue",
    "quarantined", "actions", "count_actions", "action", "audit", "find_actions",
    "call_filter_options", "call_summary", "call_rows", "export_calls_csv", "inbound_address", "address_tag",
    "push_endpoint",  # where a push partner connects: host, port, fingerprints, no password
    "host_key_fingerprint", "authenticate", "current_user", "as_user", "startup", "check_role",
    "actor", "box",
    # the browser session of a login (services/sessions.py): each step needs its token
    "start_handoff", "redeem_handoff", "session_of_handoff", "resume", "session_alive", "end_session",
    "end_handoff",
    "connection_events",
    "partners", "partner", "partner_names", "partner_connections", "exports",
    "media_names", "partner_choices", "partner_overview", "connection_partners",
    "delivery_alerts", "delivery_alert_history", "delivery_status", "delivery_calendar",
    "mapping", "mapping_versions", "suggest_mapping", "sync_backs",  # reads (issue 12)
    "call_data_version",  # the app's cache key for the call-data reads (issue 13)
}  # fmt: skip


def test_every_other_public_service_method_requires_a_role() -> None:
    unguarded = sorted(
        name
        for name, member in inspect.getmembers(Services, callable)
        if not name.startswith("_")
        and name not in OPEN_TO_EVERY_ROLE
        and not getattr(member, "required_roles", None)
    )
    assert unguarded == []


def test_the_triage_is_a_reviewers_read(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    """What locks soon names every partner's held batches: reviewers (and admins) only."""
    run_id = quarantined_run(services, make_connection)
    assert Services.triage.required_roles == frozenset({Role.REVIEWER})  # type: ignore[attr-defined]
    for name, role in (("pam", Role.PARTNER_MANAGER), ("ann", Role.ANALYST)):
        with pytest.raises(PermissionDeniedError, match="may not triage"):
            bound(services, name, role).triage()
    for name, role in (("rita", Role.REVIEWER), ("root", Role.ADMIN)):
        assert [i.run_id for i in bound(services, name, role).triage(30).items] == [run_id]


# ------------------------------------------------------------------ logging in


def test_a_disabled_user_cannot_log_in(services: Services) -> None:
    services.add_user("dora", Role.ANALYST, PASSWORD)
    assert services.authenticate("dora", PASSWORD).name == "dora"

    services.disable_user("dora")

    with pytest.raises(AuthenticationError, match="disabled"):
        services.authenticate("dora", PASSWORD)
    with pytest.raises(AuthenticationError, match="wrong name or password"):
        services.authenticate("dora", "not the password")  # no hint without the password


def test_a_login_rehashes_a_password_stored_with_the_older_scrypt_hash(services: Services) -> None:
    services.add_user("olga", Role.ANALYST, PASSWORD)
    with services.db.transaction() as con:
        user_store.set_password(con, "olga", legacy_hash(PASSWORD))  # as stored before

    def stored() -> str:
        with services.db.connect() as con:
            found = user_store.with_hash(con, "olga")
        assert found is not None
        return found[1]

    with pytest.raises(AuthenticationError, match="wrong name or password"):
        services.authenticate("olga", "not the password")
    assert stored() == legacy_hash(PASSWORD)  # a wrong password changes nothing
    assert services.authenticate("olga", PASSWORD).name == "olga"
    assert stored().startswith("$argon2id$")
    assert services.authenticate("olga", PASSWORD).name == "olga"  # the new hash works


def test_repeated_failures_are_throttled_with_a_growing_delay(settings: Settings) -> None:
    clock = Clock()
    services = Services(settings, clock=clock)
    services.add_user("ada", Role.ANALYST, PASSWORD)

    for _ in range(user_services.FAILURES_ALLOWED):
        with pytest.raises(AuthenticationError, match="wrong name or password"):
            services.authenticate("ada", "guess")
    # Locked out: even the right password is refused, without being checked.
    with pytest.raises(AuthenticationError, match=r"failed logins for 'ada': try again in 30 seconds"):
        services.authenticate("ada", PASSWORD)
    clock.now += dt.timedelta(seconds=31)
    with pytest.raises(AuthenticationError, match="wrong name or password"):
        services.authenticate("ada", "guess again")
    with pytest.raises(AuthenticationError, match="try again in 60 seconds"):  # doubled
        services.authenticate("ada", PASSWORD)
    clock.now += dt.timedelta(seconds=61)

    assert services.authenticate("ada", PASSWORD).name == "ada"
    assert services.current_user("ada") == User(
        id=1,
        name="ada",
        role=Role.ANALYST,
        created_at=services.current_user("ada").created_at,  # type: ignore[union-attr]
    )  # fmt: skip  (the count is reset)
    assert user_services.lockout(100) == user_services.LONGEST_DELAY


def test_unknown_names_are_throttled_the_same_way(settings: Settings) -> None:
    services = Services(settings, clock=Clock())
    for _ in range(user_services.FAILURES_ALLOWED):
        with pytest.raises(AuthenticationError, match="wrong name or password"):
            services.authenticate("ghost", "guess")
    with pytest.raises(AuthenticationError, match="too many failed logins for 'ghost'"):
        services.authenticate("ghost", "guess")


def test_wrong_password_and_unknown_user_take_similar_time(services: Services) -> None:
    for n in range(4):
        services.add_user(f"user{n}", Role.ANALYST, PASSWORD)

    def attempt(name: str) -> float:
        started = time.perf_counter()
        with pytest.raises(AuthenticationError, match="wrong name or password"):
            services.authenticate(name, "wrong password")
        return time.perf_counter() - started

    attempt("warm-up")
    known, unknown = [], []
    for i in range(8):  # interleaved, two failures per user: below the throttle
        known.append(attempt(f"user{i % 4}"))
        unknown.append(attempt(f"nobody{i}"))
    # The fastest of each: the cost without the noise of a shared machine.
    ratio = min(known) / min(unknown)
    assert 0.6 < ratio < 1.67, (known, unknown)


# ------------------------------------------------------------------ the app


@pytest.fixture
def app_home(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CONNECTBATCH_HOME", str(settings.home))
    monkeypatch.setenv("CONNECTBATCH_SFTP_PORT", "0")
    monkeypatch.setenv("CONNECTBATCH_FTP_PORT", "0")
    webapp.engine.clear()
    yield settings  # type: ignore[misc]
    engine, _ = webapp.engine()
    engine.stop()
    webapp.engine.clear()


PAGES = [
    "app_pages/connections.py", "app_pages/connection_wizard.py", "app_pages/validation.py",
    "app_pages/parse_preview.py", "app_pages/call_data.py", "app_pages/actions.py", "app_pages/users.py",
    "app_pages/clicks.py", "app_pages/catalog.py", "app_pages/partners.py",
    "app_pages/delivery.py",
    "app_pages/triage.py",
]  # fmt: skip


def shown(at: AppTest) -> str:
    parts = [t.value for t in at.title] + [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [a.value for kind in (at.error, at.warning, at.info, at.success) for a in kind]
    return "\n".join(parts)


@pytest.mark.parametrize("page", PAGES)
def test_without_a_login_no_page_shows_anything_but_the_login_form(app_home: Settings, page: str) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()

    assert not at.exception
    assert [t.value for t in at.title] == ["ConnectBatch"]
    assert {w.key for w in at.text_input} == {"login_name", "login_password"}
    assert not at.dataframe and not at.selectbox and not at.sidebar.button
    # No page script is registered, only the login form at every address: a deep link or a
    # switch reaches nothing else.
    with pytest.raises(ValueError, match="Could not find a navigation page") as refused:
        at.switch_page(page)
    assert "app_pages/" not in str(refused.value).split("Known pages:")[1]


def test_the_login_form_logs_in_and_a_wrong_password_does_not(app_home: Settings) -> None:
    Services(Settings.from_env()).add_user("ann", Role.ANALYST, PASSWORD)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()

    at.text_input(key="login_name").input("ann")
    at.text_input(key="login_password").input("not it")
    at.button[0].click().run()
    assert "wrong name or password" in at.error[0].value
    assert [t.value for t in at.title] == ["ConnectBatch"]

    at.text_input(key="login_name").input("ann")
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value == "Connections"
    assert "Logged in as **ann** · Analyst" in shown(at)


def test_a_partner_manager_does_not_see_the_validation_page(app_home: Settings) -> None:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "pam", Role.PARTNER_MANAGER).run()
    assert not at.exception
    assert at.title[0].value == "Call data"  # the first page of the role, not Connections

    at.switch_page("app_pages/validation.py").run()  # as a deep link would

    assert not at.exception
    assert "Not allowed: pam (Partner manager) may not use this page" in at.error[0].value
    assert not any(s.key == "validation_run" for s in at.selectbox)
    assert not at.dataframe


def test_an_expired_session_or_a_disabled_user_is_logged_out(app_home: Settings) -> None:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT), "rita", Role.REVIEWER).run()
    assert at.title[0].value == "Validation"

    at.session_state[webapp.SINCE_KEY] = time.time() - 9 * 3600  # the default session is 8 h
    at.run()
    assert "Your session has ended" in at.info[0].value
    assert [t.value for t in at.title] == ["ConnectBatch"]

    log_in(at, "rita").run()
    assert at.title[0].value == "Validation"
    Services(Settings.from_env()).disable_user("rita")
    at.run()
    assert "disabled" in at.info[0].value
    assert [t.value for t in at.title] == ["ConnectBatch"]


def test_the_logout_button_ends_the_session(app_home: Settings) -> None:
    at = log_in(AppTest.from_file(APP, default_timeout=TIMEOUT)).run()
    at.sidebar.button(key="logout").click().run()

    assert [t.value for t in at.title] == ["ConnectBatch"]
    assert webapp.USER_KEY not in at.session_state


def test_only_analysts_check_deliveries_but_every_role_reads_alerts(
    services: Services, make_connection: Callable[..., Connection]
) -> None:
    """Expected delivery (issue 12): a check raises alerts and e-mails owners, an analyst's
    (or the engine's) act; the banner's read is open to every logged-in role."""
    make_connection("Acme", expect="daily by 06:00")
    reviewer = bound(services, "rita", Role.REVIEWER)
    with pytest.raises(PermissionDeniedError, match=r"may not check deliveries.*Analyst"):
        reviewer.check_deliveries()
    with pytest.raises(PermissionDeniedError):
        reviewer.update_connection("Acme", expect="weekdays by 09:00")
    assert reviewer.delivery_alerts() == []
    assert bound(services, "ann", Role.ANALYST).check_deliveries() == []


def _log_in_through_the_form(at: AppTest, name: str) -> None:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert f"Logged in as **{name}**" in shown(at)


def test_the_next_person_to_log_in_in_a_tab_sees_nothing_the_last_one_left(app_home: Settings) -> None:
    """Log out kept the rest of the tab's session: the next person logging in at that screen
    found the last one's wizard draft at its step, with the partner's password they had typed."""
    services = Services(Settings.from_env())
    for name in ("ann", "bob"):
        services.add_user(name, Role.ANALYST, PASSWORD)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    _log_in_through_the_form(at, "ann")
    at.switch_page("app_pages/connection_wizard.py").run()
    at.text_input(key="wiz_name").input("Ann's Acme pull")
    at.button(key="wiz_next").click().run()
    at.button(key="wiz_next").click().run()
    at.radio(key="wiz_methodology").set_value("pull").run()
    at.text_input(key="wiz_host").input("sftp.acme.example")
    at.text_input(key="wiz_folder").input("/outgoing")
    at.button(key="wiz_next").click().run()
    at.text_input(key="wiz_username").input("acme")
    at.text_input(key="wiz_password").input("partner-s3cret").run()
    assert "Step 4 of 5" in at.get("progress")[0].proto.text

    at.sidebar.button(key="logout").click().run()
    _log_in_through_the_form(at, "bob")
    at.switch_page("app_pages/connection_wizard.py").run()

    assert "Step 1 of 5" in at.get("progress")[0].proto.text
    assert at.text_input(key="wiz_name").value == ""
    left = [k for k, v in at.session_state.to_dict().items() if "partner-s3cret" in repr(v)]
    assert left == []

    # The same person logging in again finds their own draft (after their session ended, say).
    at.text_input(key="wiz_name").input("Bob's draft").run()
    at.sidebar.button(key="logout").click().run()
    _log_in_through_the_form(at, "bob")
    at.switch_page("app_pages/connection_wizard.py").run()
    assert at.text_input(key="wiz_name").value == "Bob's draft"
