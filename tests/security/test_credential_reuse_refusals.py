"""Credentials reuse must not become a way around ownership (issue 11): a connection reuses
only a credential set of its own partner, for its own method and kind of login (ours for
pushes, theirs for pulls; outbound logins are never shared); each refusal names the field
and changes nothing; only analysts may reuse; and reusing never returns a secret."""

from __future__ import annotations

import dataclasses

import pytest

from connectbatch.models import Connection, Direction, Method, Methodology, Role
from connectbatch.services import CredentialInput, InvalidInputError, PermissionDeniedError, Services
from connectbatch.transfer.specs import SftpSpec

PASSWORD = "a long enough password"


def _draft(name: str, method: Method, methodology: Methodology, **attrs: object) -> Connection:
    direction = Direction.OUTBOUND if methodology is Methodology.PULL_FROM_US else Direction.INBOUND
    if methodology is Methodology.PULL:
        attrs = {"host": "127.0.0.1", "port": 2222, "folder": "/in", **attrs}
        if method is Method.SFTP:
            attrs.setdefault("transfer", SftpSpec())
    return Connection(name, "call_conversions", direction, method, methodology, **attrs)  # type: ignore[arg-type]


@pytest.fixture
def acme(services: Services) -> dict[str, int]:
    """Acme's credential sets: an SFTP push login, an SFTP pull login, an outbound login."""
    services.add_partner("Acme", "brand")
    services.add_partner("Rival", "brand")
    ids: dict[str, int] = {}
    for key, method, methodology in (
        ("push", Method.SFTP, Methodology.PUSH),
        ("pull", Method.SFTP, Methodology.PULL),
        ("out", Method.SFTP, Methodology.PULL_FROM_US),
    ):
        given = (
            CredentialInput("theirs", "acme", "s3cret-remote") if methodology is Methodology.PULL else None
        )
        created, _ = services.create_connection(
            _draft(f"Acme {key}", method, methodology), given, partner="Acme"
        )
        ids[key] = services.credentials(created.id)[0].id
    return ids


@pytest.mark.parametrize(
    ("method", "methodology", "which", "says"),
    [
        (Method.SFTP, Methodology.PUSH, "push", "another partner"),  # the rival partner
        (Method.FTP, Methodology.PUSH, "push", "SFTP login"),  # another method
        (Method.EMAIL, Methodology.PUSH, "push", "SFTP login"),
        (Method.SFTP, Methodology.PULL, "push", "'Push to us' login"),  # ours, for a pull
        (Method.SFTP, Methodology.PUSH, "pull", "'Pull from third party' login"),  # theirs, for a push
        (Method.SFTP, Methodology.PULL_FROM_US, "out", "cannot share a login"),
    ],
)
def test_reuse_is_refused_across_partners_methods_and_kinds(
    services: Services, acme: dict[str, int], method: Method, methodology: Methodology, which: str, says: str
) -> None:
    partner = "Rival" if says == "another partner" else "Acme"
    before = {c.name for c in services.connections()}
    with pytest.raises(InvalidInputError) as refused:
        services.create_connection(
            _draft("Thief", method, methodology), partner=partner, reuse_credential=acme[which]
        )
    assert refused.value.field == "reuse_credential"
    assert says in str(refused.value)
    assert {c.name for c in services.connections()} == before  # nothing half-created
    assert services.credentials(f"Acme {which}")[0].used_by == (f"Acme {which}",)


def test_an_existing_connection_of_another_partner_cannot_take_a_set(
    services: Services, acme: dict[str, int]
) -> None:
    rival, _ = services.create_connection(
        _draft("Rival push", Method.SFTP, Methodology.PUSH), partner="Rival"
    )
    with pytest.raises(InvalidInputError, match="another partner"):
        services.reuse_credential(rival.id, acme["push"])
    # Acme's sets are not offered to the rival; its own is.
    assert [
        c.id for c in services.reusable_credentials(_draft("x", Method.SFTP, Methodology.PUSH), "Rival")
    ] == [services.credentials(rival.id)[0].id]


def test_the_choice_offers_only_compatible_sets_of_the_partner(
    services: Services, acme: dict[str, int]
) -> None:
    offered = services.reusable_credentials(_draft("New", Method.SFTP, Methodology.PUSH), "Acme")
    assert [c.id for c in offered] == [acme["push"]]
    assert [
        c.id for c in services.reusable_credentials(_draft("New", Method.SFTP, Methodology.PULL), "Acme")
    ] == [acme["pull"]]
    assert services.reusable_credentials(_draft("New", Method.FTP, Methodology.PUSH), "Acme") == []
    assert services.reusable_credentials(_draft("New", Method.SFTP, Methodology.PULL_FROM_US), "Acme") == []
    assert services.reusable_credentials(_draft("New", Method.SFTP, Methodology.PUSH), "Rival") == []


def test_reusing_returns_no_secret_and_new_details_cannot_ride_along(
    services: Services, acme: dict[str, int]
) -> None:
    created, shown = services.create_connection(
        _draft("Acme pull 2", Method.SFTP, Methodology.PULL), partner="Acme", reuse_credential=acme["pull"]
    )
    assert shown is None
    [cred] = services.credentials(created.id)
    assert "s3cret-remote" not in repr(dataclasses.asdict(cred))
    with pytest.raises(InvalidInputError) as both:
        services.create_connection(
            _draft("Acme pull 3", Method.SFTP, Methodology.PULL),
            CredentialInput("mine", "someone", "other"),
            partner="Acme",
            reuse_credential=acme["pull"],
        )
    assert both.value.field == "reuse_credential"


def test_only_analysts_reuse(services: Services, acme: dict[str, int]) -> None:
    user = services.add_user("rita", Role.REVIEWER, PASSWORD)
    reviewer = services.as_user(user)
    with pytest.raises(PermissionDeniedError):
        reviewer.create_connection(
            _draft("Sneaky", Method.SFTP, Methodology.PUSH), partner="Acme", reuse_credential=acme["push"]
        )
    with pytest.raises(PermissionDeniedError):
        reviewer.reuse_credential("Acme push", acme["push"])
    with pytest.raises(PermissionDeniedError):
        reviewer.reusable_credentials(_draft("Sneaky", Method.SFTP, Methodology.PUSH), "Acme")
