"""The Create-connection wizard's rules without Streamlit: what Next refuses and on which step
it says so, what a pull's typed settings and login become, and what Create stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from app_pages._wizard_state import FIELD_STEP, STEPS, WizardState, step_of
from connectbatch.models import DEFAULT_SCHEDULE, Direction, Method, Methodology
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.transfer.specs import AuthKind, FtpSpec, FtpTls, ImapSecurity, ImapSpec, SftpSpec

FINGERPRINT = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"


@pytest.fixture
def services(tmp_path: Path) -> Services:
    return Services(Settings(home=tmp_path / "home", sftp_port=0, ftp_port=0))


def at_location(method: Method, **location: object) -> WizardState:
    """A wizard on step 3 of an inbound pull over `method`."""
    wizard = WizardState(step=3)
    wizard.apply({"name": "Partner pull", "method": method, "methodology": Methodology.PULL, **location})
    return wizard


def test_next_refuses_a_missing_name_on_the_first_step(services: Services) -> None:
    wizard = WizardState()

    assert not wizard.next(services)

    assert wizard.step == 1
    assert wizard.error == ("name", "is required")
    wizard.apply({"name": "Fresh"})
    assert wizard.next(services) and wizard.step == 2 and wizard.error is None


def test_back_keeps_what_was_entered(services: Services) -> None:
    wizard = WizardState()
    wizard.apply({"name": "Fresh"})
    wizard.next(services)

    wizard.back()

    assert (wizard.step, wizard.draft.name) == (1, "Fresh")


def test_a_relative_folder_is_refused_on_the_location_step(services: Services) -> None:
    wizard = at_location(Method.SFTP, folder="exports/daily", host="127.0.0.1")

    assert not wizard.next(services)

    assert wizard.step == 3
    assert wizard.error is not None and wizard.error[0] == "folder"


def test_a_bad_fingerprint_is_refused_on_the_location_step(services: Services) -> None:
    wizard = at_location(
        Method.SFTP, folder="/out", host="sftp.example.com", transfer=SftpSpec(host_key_fingerprint="abc")
    )

    assert not wizard.next(services)

    assert wizard.step == 3
    assert wizard.error is not None and wizard.error[0] == "host_key_fingerprint"


def test_plain_imap_to_a_remote_host_is_refused_naming_security(services: Services) -> None:
    wizard = at_location(
        Method.EMAIL, host="imap.example.com", transfer=ImapSpec(security=ImapSecurity.PLAIN)
    )

    assert not wizard.next(services)

    assert wizard.error is not None and wizard.error[0] == "security"
    assert step_of("security") == 3


def test_settings_of_another_method_give_way_to_the_chosen_methods_defaults() -> None:
    wizard = at_location(Method.SFTP, transfer=SftpSpec(host_key_fingerprint=FINGERPRINT))
    wizard.apply({"method": Method.FTP})

    assert wizard.connection().transfer == FtpSpec()
    wizard.apply({"method": Method.SFTP})
    assert wizard.connection().transfer == SftpSpec(host_key_fingerprint=FINGERPRINT)


def test_every_setting_of_every_method_is_shown_on_the_location_step() -> None:
    for spec in (SftpSpec, FtpSpec, ImapSpec):
        for name in spec.__dataclass_fields__:
            assert FIELD_STEP.get(name) == 3, name


def test_the_login_is_the_one_chosen_a_key_only_for_sftp(services: Services) -> None:
    wizard = at_location(Method.SFTP, folder="/out", host="127.0.0.1")
    wizard.apply({"login": CredentialInput(name="", username="acme", password="pw", auth=AuthKind.KEY)})

    given = wizard.credential_input()
    assert (given.auth, given.password) == (AuthKind.KEY, None)
    wizard.step = 4
    assert not wizard.next(services)
    assert wizard.error is not None and wizard.error[0] == "private_key"

    wizard.apply({"method": Method.FTP})
    given = wizard.credential_input()
    assert (given.auth, given.password, given.private_key) == (AuthKind.PASSWORD, "pw", None)


def test_create_stores_an_ftps_pull_with_its_settings(services: Services) -> None:
    wizard = at_location(
        Method.FTP, folder="/out", host="ftp.example.com",
        transfer=FtpSpec(tls=FtpTls.IMPLICIT, verify=False, passive=False),
    )  # fmt: skip
    wizard.apply({"login": CredentialInput(name="", username="acme", password="pw")})
    for _ in range(2):
        assert wizard.next(services), wizard.error
    assert wizard.step == len(STEPS)
    wizard.apply({"login": CredentialInput(name="FTP login", username="acme", password="pw")})

    done = wizard.create(services)

    assert done is not None
    created, provisioned = done
    assert provisioned is None
    stored = services.connection(created.id)
    assert stored.transfer == FtpSpec(tls=FtpTls.IMPLICIT, verify=False, passive=False)
    assert stored.direction is Direction.INBOUND
    [credential] = services.credentials(created.id)
    assert (credential.name, credential.username) == ("FTP login", "acme")


def test_create_sends_a_field_error_back_to_its_step(services: Services) -> None:
    wizard = at_location(Method.SFTP, folder="/out", host="127.0.0.1")
    wizard.apply({"login": CredentialInput(name="x", username="acme", password="pw"), "schedule": "often"})
    wizard.step = len(STEPS)

    assert wizard.create(services) is None

    assert wizard.error is not None and wizard.error[0] == "schedule"
    assert wizard.step == len(STEPS)
    wizard.apply({"schedule": None, "folder": "relative"})
    assert wizard.create(services) is None
    assert wizard.step == 3


def push_wizard(name: str) -> WizardState:
    wizard = WizardState(step=5)
    wizard.apply({"name": name, "login": CredentialInput(name=f"{name} login")})
    return wizard


def test_create_gives_the_connection_a_partner_new_or_chosen(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11: the wizard asks for the partner; left at *New partner…* without a name, it
    creates one named after the connection; a typed name that exists is refused on step 1."""
    from connectbatch.services.base import ServiceBase

    monkeypatch.setattr(ServiceBase, "default_partner", None)  # the product: a partner is required
    first = push_wizard("Acme calls")
    done = first.create(services)
    assert done is not None
    assert services.partner_names()[done[0].partner_id or 0] == "Acme calls"

    vendor = push_wizard("Invoca calls")
    vendor.apply({"new_partner_name": "Invoca", "new_partner_type": "vendor"})
    done = vendor.create(services)
    assert done is not None and services.partner("Invoca").type == "vendor"

    chosen = push_wizard("More Acme calls")
    chosen.apply({"partner": "Acme calls"})
    done = chosen.create(services)
    assert done is not None and services.partner_names()[done[0].partner_id or 0] == "Acme calls"

    clash = push_wizard("Again")
    clash.apply({"new_partner_name": "invoca"})
    assert clash.create(services) is None
    assert clash.step == 1 and clash.error is not None and clash.error[0] == "partner"
    assert [p.name for p in services.partners()] == ["Acme calls", "Invoca"]


def test_a_new_partner_named_after_the_connection_is_refused_when_that_partner_exists(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """App audit: an outbound connection named like an existing partner, left at *New
    partner…* with no name typed, was filed under that partner with no word, so its new
    login was given that partner's exported rows. Refused on step 1, as a typed name is."""
    from connectbatch.services.base import ServiceBase

    monkeypatch.setattr(ServiceBase, "default_partner", None)
    services.add_partner("Acme Insurance", "brand")
    wizard = push_wizard("Acme Insurance")
    wizard.apply({"direction": Direction.OUTBOUND})

    assert wizard.create(services) is None
    assert wizard.step == 1 and wizard.error is not None
    field, message = wizard.error
    assert field == "partner"
    assert message.startswith("a partner named 'Acme Insurance' already exists: choose it in the list, or")
    assert services.connections() == []

    wizard.apply({"new_partner_name": "Acme Insurance Claims"})  # named: a partner of its own
    done = wizard.create(services)
    assert done is not None
    assert services.partner_names()[done[0].partner_id or 0] == "Acme Insurance Claims"


def test_a_pull_and_an_outbound_connection_start_hourly_and_a_push_without_schedule() -> None:
    """Seed: connections are set up "so that impact.com can automatically batch process the
    data"; a pull made in the wizard ran only on Run now, an export never ran."""
    pull = at_location(Method.SFTP, host="sftp.partner.example", folder="/out")
    assert pull.connection().schedule == DEFAULT_SCHEDULE
    push = WizardState(step=3)
    push.apply({"name": "Partner push", "method": Method.SFTP, "methodology": Methodology.PUSH})
    assert push.connection().schedule is None
    outbound = WizardState(step=1)
    outbound.apply({"name": "Results pickup", "direction": Direction.OUTBOUND})
    assert outbound.connection().schedule == DEFAULT_SCHEDULE
    pull.apply({"schedule": ""})  # cleared: Run now only
    assert pull.connection().schedule is None
