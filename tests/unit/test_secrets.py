"""Password hashes: Argon2id at OWASP's minimum; scrypt hashes from before still verify."""

from __future__ import annotations

import re
from pathlib import Path

import argon2
import pytest
from helpers.app_login import legacy_hash

from connectbatch.errors import ConfigurationError
from connectbatch.secrets import SecretBox, check_password, hash_password, needs_rehash


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


def test_a_key_that_cannot_be_used_names_where_it_came_from(tmp_path: Path) -> None:
    """A bad CONNECTBATCH_SECRET_KEY and a bad key file both said only "the secret key is not
    a valid Fernet key"; a key file that could not be read ended every command that needed it
    with a bare "[Errno 21] Is a directory: '.../secret.key'". Each now names the variable or
    the file (the CLI prints the message as its one error line)."""
    with pytest.raises(ConfigurationError, match=r"^CONNECTBATCH_SECRET_KEY is not a valid Fernet key"):
        SecretBox.for_home(tmp_path, "not-a-key")
    key_file = tmp_path / "secret.key"
    key_file.write_text("garbage\n")
    with pytest.raises(
        ConfigurationError, match=re.escape(f"the secret key file {key_file} is not a valid Fernet key")
    ):
        SecretBox.for_home(tmp_path)
    key_file.unlink()
    key_file.mkdir()
    with pytest.raises(ConfigurationError) as err:
        SecretBox.for_home(tmp_path)
    assert str(err.value).startswith(f"the secret key file {key_file} cannot be read: ")
    assert "CONNECTBATCH_SECRET_KEY" in str(err.value) and "\n" not in str(err.value)
