"""Password hashes: Argon2id at OWASP's minimum; scrypt hashes from before still verify."""

from __future__ import annotations

import argon2
import pytest
from helpers.app_login import legacy_hash

from connectbatch.secrets import check_password, hash_password, needs_rehash


def test_a_new_hash_is_argon2id_at_owasps_minimum_and_verifies() -> None:
    stored = hash_password("correct horse battery")
    found = argon2.extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert (found.memory_cost, found.time_cost, found.parallelism) >= (19 * 1024, 2, 1)
    assert check_password("correct horse battery", stored)
    assert not check_password("correct horse batterY", stored)
    assert not needs_rehash(stored)
    assert hash_password("correct horse battery") != stored  # salted


def test_a_scrypt_hash_from_before_still_verifies_and_asks_for_a_rehash() -> None:
    stored = legacy_hash("an old password")
    assert check_password("an old password", stored)
    assert not check_password("another password", stored)
    assert needs_rehash(stored)


def test_an_argon2_hash_with_other_parameters_verifies_and_asks_for_a_rehash() -> None:
    weaker = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("pw 1234567")
    assert check_password("pw 1234567", weaker)
    assert needs_rehash(weaker)


@pytest.mark.parametrize(
    "stored",
    [
        None, "", "plain text", "bcrypt$x$y", "scrypt$", "scrypt$a$b$c", "$argon2id$",
        "scrypt$not base64!$AAAA",
        # asks for 4 GiB and 100 passes: refused, not computed
        "$argon2id$v=19$m=4194304,t=100,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
    ],
)  # fmt: skip
def test_a_stored_value_that_is_no_hash_we_know_matches_nothing(stored: str | None) -> None:
    assert not check_password("anything", stored)
    assert not needs_rehash(stored) or stored.startswith("scrypt$")  # never proven: never rehashed
