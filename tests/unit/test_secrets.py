"""Password hashes name their scrypt cost; hashes from before still verify."""

from __future__ import annotations

import pytest
from helpers.app_login import legacy_hash

from connectbatch import secrets
from connectbatch.secrets import (
    GENERATED_COST,
    PASSWORD_COST,
    ScryptCost,
    check_password,
    hash_password,
    needs_rehash,
)


def test_a_new_hash_names_owasps_minimum_cost_and_verifies() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt$ln=14,r=8,p=5$")
    assert check_password("correct horse battery", stored)
    assert not check_password("correct horse batterY", stored)
    assert not needs_rehash(stored)
    assert hash_password("correct horse battery") != stored  # salted


def test_generated_logins_are_hashed_at_their_own_cost() -> None:
    stored = hash_password("Zq7tW3xv9KpR2mNc8bHf4sJd", GENERATED_COST)
    assert stored.startswith("scrypt$ln=14,r=8,p=1$")
    assert check_password("Zq7tW3xv9KpR2mNc8bHf4sJd", stored)
    assert not needs_rehash(stored, GENERATED_COST)
    assert needs_rehash(stored)  # as a person's password it would be too cheap


def test_a_hash_from_before_costs_were_named_still_verifies_and_asks_for_a_rehash() -> None:
    stored = legacy_hash("an old password")
    assert check_password("an old password", stored)
    assert not check_password("another password", stored)
    assert needs_rehash(stored)
    assert not needs_rehash(stored, GENERATED_COST)  # the same cost as a generated login's


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "",
        "plain text",
        "bcrypt$x$y",
        "scrypt$",
        "scrypt$a$b$c$d",
        "scrypt$ln=30,r=8,p=1$AAAA$AAAA",  # a gigabyte of memory: refused, not computed
        "scrypt$ln=14,r=8,p=99$AAAA$AAAA",  # minutes of work
        "scrypt$ln=14;r=8,p=1$AAAA$AAAA",
        "scrypt$ln=14,r=8,p=1$not base64!$AAAA",
    ],
)
def test_a_stored_value_that_is_no_hash_we_know_matches_nothing(stored: str | None) -> None:
    assert not check_password("anything", stored)
    assert not needs_rehash(stored)


def test_costs_round_trip_through_their_text() -> None:
    assert ScryptCost.parse(PASSWORD_COST.text()) == PASSWORD_COST
    assert ScryptCost.parse(GENERATED_COST.text()) == GENERATED_COST
    assert secrets.PASSWORD_COST.p * secrets.PASSWORD_COST.r * 2**PASSWORD_COST.log_n >= 5 * 8 * 2**14
