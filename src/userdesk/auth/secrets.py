"""Passwords (argon2id) and random tokens (stored only as SHA-256 hashes)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from userdesk.auth import imported_hashes
from userdesk.auth.imported_hashes import FirebaseParams

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so that answers take the same time
    (made on first use, not at import: every command would pay for it)."""
    return _hasher.hash(secrets.token_urlsafe(16))


TOKEN_BYTES = 32  # 256 random bits


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(
    password_hash: str | None, password: str, *, firebase: FirebaseParams | None = None
) -> bool:
    """Whether PASSWORD matches; with no hash, spends the same time and answers False.

    A hash imported from another system (`imported_hashes`: bcrypt, PBKDF2, scrypt,
    Firebase scrypt with the project's FIREBASE parameters, salted SHA-2) is verified in
    its own format; a wrong password, or a hash that cannot be read, answers False as on
    our own argon2id, never an error.

    Every answer costs at least one argon2id verification with our parameters: a hash
    that is not ours as we make it now (imported, often far cheaper: salted SHA-2, PBKDF2
    of few rounds; or argon2 with other parameters) is also followed by one against the
    dummy hash, so that the time a sign-in takes does not tell which accounts were
    imported, as it does not tell which emails are known."""
    if password_hash is None:
        _argon2_matches(_dummy_hash(), password)
        return False
    if imported_hashes.is_native(password_hash):
        matches = _argon2_matches(password_hash, password)
    else:
        matches = imported_hashes.verify(password_hash, password, firebase=firebase)
    if password_needs_rehash(password_hash):
        _argon2_matches(_dummy_hash(), password)  # the time ours would take
    return matches


def _argon2_matches(password_hash: str, password: str) -> bool:
    """Whether PASSWORD matches the argon2 PASSWORD_HASH; an unreadable one answers False."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeEncodeError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """Whether a hash that just verified should be replaced by our argon2id: an imported
    one always, ours when its parameters are not the current ones."""
    if not imported_hashes.is_native(password_hash):
        return True
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def new_token() -> str:
    """A URL-safe token of 256 random bits."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_tokens(count: int) -> list[str]:
    """COUNT tokens as `new_token` makes them, from one read of random bytes (half the
    time of COUNT reads)."""
    random = secrets.token_bytes(TOKEN_BYTES * count)
    return [
        base64.urlsafe_b64encode(random[start : start + TOKEN_BYTES]).rstrip(b"=").decode()
        for start in range(0, len(random), TOKEN_BYTES)
    ]


def hash_token(token: str) -> str:
    """The SHA-256 of a token, as stored in the database."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def generate_password() -> str:
    """A password for a generated account, printed once."""
    return secrets.token_urlsafe(12)
