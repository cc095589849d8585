"""Timing does not tell which accounts were imported: verifying an imported hash (salted
SHA-2 or PBKDF2 take microseconds to milliseconds) costs, besides its own check, one
argon2id verification with our parameters, as a hash of ours and an unknown email do.

Counted with a spy on the argon2 hasher, not timed: the count is what makes the time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from argon2 import Parameters, PasswordHasher, extract_parameters
from sqlalchemy.orm import Session

from tests import factories
from tests.auth.test_imported_hashes import (
    ARGON2ID,
    BCRYPT_2B,
    DJANGO_SHA256,
    PASSLIB_PBKDF2,
    SHA256,
    SHA512,
)
from userdesk.auth import secrets, signin
from userdesk.config import Settings
from userdesk.errors import NotAuthenticated
from userdesk.organizations.models import Organization


class CountingHasher(PasswordHasher):
    """Our argon2id hasher, which notes the parameters of each hash it verifies: with the
    parameters of the one it replaces (the suite's cheap ones, tests/conftest.py), as what
    is counted is the verifications with our parameters, not their time."""

    def __init__(self, ours: PasswordHasher) -> None:
        super().__init__(
            time_cost=ours.time_cost,
            memory_cost=ours.memory_cost,
            parallelism=ours.parallelism,
            hash_len=ours.hash_len,
            salt_len=ours.salt_len,
            type=ours.type,
        )
        self.verified: list[Parameters] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified.append(extract_parameters(hash if isinstance(hash, str) else hash.decode()))
        return super().verify(hash, password)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingHasher]:
    """Our hasher replaced by the counting one; the dummy hash made anew with it."""
    counting = CountingHasher(secrets._hasher)
    monkeypatch.setattr(secrets, "_hasher", counting)
    secrets._dummy_hash.cache_clear()
    secrets._dummy_hash()  # made before the counting starts, as it is once per process
    counting.verified.clear()
    yield counting
    secrets._dummy_hash.cache_clear()


def ours(spy: CountingHasher) -> int:
    """How many argon2id verifications with our current parameters SPY saw."""
    current = extract_parameters(secrets._dummy_hash())
    return sum(1 for parameters in spy.verified if parameters == current)


IMPORTED = {
    "salted SHA-256": SHA256,
    "salted SHA-512": SHA512,
    "Django PBKDF2": DJANGO_SHA256,
    "passlib PBKDF2": PASSLIB_PBKDF2,
    "bcrypt": BCRYPT_2B,
    "argon2id with cheaper parameters": ARGON2ID,
}


@pytest.mark.parametrize("name", sorted(IMPORTED))
@pytest.mark.parametrize("right", [True, False], ids=["right", "wrong"])
def test_an_imported_hash_costs_one_argon2id_verification_with_our_parameters(
    spy: CountingHasher, name: str, right: bool
) -> None:
    stored, password = IMPORTED[name]
    assert secrets.verify_password(stored, password if right else "not it") is right
    assert ours(spy) == 1


@pytest.mark.parametrize("right", [True, False], ids=["right", "wrong"])
def test_our_own_hash_and_no_hash_cost_the_same_one_verification(
    spy: CountingHasher, right: bool
) -> None:
    stored = secrets.hash_password("correct horse")
    assert secrets.verify_password(stored, "correct horse" if right else "not it") is right
    assert secrets.verify_password(None, "correct horse") is False
    assert ours(spy) == 2
    assert len(spy.verified) == 2  # nothing more: ours is not padded


@dataclass(frozen=True)
class Accounts:
    imported: str
    native: str


@pytest.fixture
def accounts(db: Session, org: Organization) -> Accounts:
    """Two accounts of ORG: one still on an imported salted SHA-256 hash, one on ours."""
    imported = factories.make_user(db, org)
    imported.password_hash = SHA256[0]
    native = factories.make_user(db, org)
    db.flush()
    return Accounts(imported.email, native.email)


def _sign_in(db: Session, settings: Settings, email: str, password: str) -> bool:
    try:
        signin.sign_in(db, settings=settings, email=email, password=password)
    except NotAuthenticated:
        return False
    return True


def test_a_sign_in_costs_the_same_argon2id_work_imported_ours_or_unknown(
    db: Session, settings: Settings, accounts: Accounts, spy: CountingHasher
) -> None:
    """A wrong password on an imported account, on one of ours and for an unknown email:
    one argon2id verification with our parameters each."""
    counts = []
    for email in (accounts.imported, accounts.native, "nobody@example.com"):
        before = ours(spy)
        assert _sign_in(db, settings, email, "not the password at all") is False
        counts.append(ours(spy) - before)
    assert counts == [1, 1, 1]
    # The right password on the imported account: verified, and still the argon2id work
    # (then the hash is replaced by ours).
    before = ours(spy)
    assert _sign_in(db, settings, accounts.imported, SHA256[1]) is True
    assert ours(spy) - before == 1
