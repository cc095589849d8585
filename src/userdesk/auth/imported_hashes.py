"""Password hashes brought from another system: telling their format from the string,
refusing those that are malformed or would cost too much to check, and verifying a
password against them. Pure: no database, no settings of ours.

Kept as given in users.password_hash (each format's own prefix is the marker; Firebase's,
which exports a hash and a salt apart, is written `$firebase-scrypt$<salt>$<hash>`), until
the first sign-in replaces it with our argon2id (`auth.secrets`).

- argon2id, argon2i: PHC, `$argon2id$v=19$m=..,t=..,p=..$salt$hash` (argon2-cffi);
- bcrypt: `$2a$`, `$2b$`, `$2y$`, a cost and 53 characters (the `bcrypt` package);
- PBKDF2 in PHC form as passlib writes it: `$pbkdf2-sha256$<iterations>$<salt>$<hash>`
  (also `$pbkdf2$` for SHA-1 and `$pbkdf2-sha512$`; `i=<iterations>` is read too);
- Django's PBKDF2: `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`, `pbkdf2_sha1$...`;
- scrypt in PHC form: `$scrypt$ln=<log2 N>,r=..,p=..$salt$hash` (hashlib.scrypt);
- Firebase's scrypt: `$firebase-scrypt$<base64 salt>$<base64 hash>`, with the project's
  parameters given once in the organization's settings;
- salted SHA-2: `sha256$<salt>$<hex of SHA-256(salt + password)>`, `sha512$...`: weak,
  taken only where the organization allows it.

Nothing here puts a hash, or any part of one, in an error or a log line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum

import bcrypt
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import Type
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# What an attacker who can import a hash may make each sign-in cost, at most.
BCRYPT_MAX_COST = 16
PBKDF2_MAX_ITERATIONS = 2_000_000
ARGON2_MAX_MEMORY_KIB = 1024 * 1024  # 1 GiB
ARGON2_MAX_TIME = 100
ARGON2_MAX_PARALLELISM = 64
# scrypt takes about 128 * N * r bytes (times p when run in parallel; hashlib runs p in turn).
SCRYPT_MAX_MEMORY = 256 * 1024 * 1024
SCRYPT_MAX_P = 16
SCRYPT_MAX_LN = 24
FIREBASE_MAX_ROUNDS = 16
FIREBASE_MAX_MEM_COST = 20
MAX_LENGTH = 255  # users.password_hash
MAX_KEY_BYTES = 128  # a PBKDF2 or scrypt hash (derived key) longer than this is refused
MAX_SALT_BYTES = 128
BCRYPT_MAX_PASSWORD = 72  # bytes: bcrypt reads no more (the source system truncated too)


class Format(StrEnum):
    ARGON2 = "argon2"
    BCRYPT = "bcrypt"
    PBKDF2 = "pbkdf2"
    DJANGO_PBKDF2 = "django-pbkdf2"
    SCRYPT = "scrypt"
    FIREBASE_SCRYPT = "firebase-scrypt"
    SALTED_SHA = "salted-sha"

    @property
    def label(self) -> str:
        return FORMAT_LABELS[self]


FORMAT_LABELS = {
    Format.ARGON2: "argon2",
    Format.BCRYPT: "bcrypt",
    Format.PBKDF2: "PBKDF2",
    Format.DJANGO_PBKDF2: "Django PBKDF2",
    Format.SCRYPT: "scrypt",
    Format.FIREBASE_SCRYPT: "Firebase scrypt",
    Format.SALTED_SHA: "salted SHA-2",
}
KNOWN = "argon2id/argon2i, bcrypt, PBKDF2 (PHC or Django), scrypt, Firebase scrypt"


class HashProblem(ValueError):
    """A password hash we will not take: the message says why, never what the hash is."""


@dataclass(frozen=True)
class FirebaseParams:
    """A Firebase project's password hash parameters (its console's "Password Hash
    Parameters"): the signer key and salt separator decoded from base64."""

    signer_key: bytes
    salt_separator: bytes
    rounds: int
    mem_cost: int


@dataclass(frozen=True)
class Policy:
    """What an organization lets in: salted SHA-2 (weak), and Firebase scrypt once it
    has given its project's parameters."""

    allow_salted_sha: bool = False
    has_firebase_params: bool = False


def firebase_params_problem(rounds: int, mem_cost: int, signer_key: bytes) -> str | None:
    """What is wrong with a Firebase project's parameters, or None."""
    if not 1 <= rounds <= FIREBASE_MAX_ROUNDS:
        return f"rounds {rounds} is not between 1 and {FIREBASE_MAX_ROUNDS}"
    if not 1 <= mem_cost <= FIREBASE_MAX_MEM_COST:
        return f"mem_cost {mem_cost} is not between 1 and {FIREBASE_MAX_MEM_COST}"
    if _scrypt_memory(1 << mem_cost, rounds) > SCRYPT_MAX_MEMORY:
        return f"rounds {rounds} with mem_cost {mem_cost} needs more than 256 MiB a check"
    if not 1 <= len(signer_key) <= 1024:
        return "the signer key is not 1 to 1,024 bytes"
    return None


def is_native(stored: str) -> bool:
    """Whether STORED is one of our own hashes (argon2 PHC), verified as such."""
    return stored.startswith(("$argon2id$", "$argon2i$"))


def format_of(stored: str) -> Format | None:
    """STORED's format by its prefix, or None (not checked further: see `check`)."""
    if stored.startswith(("$argon2id$", "$argon2i$")):
        return Format.ARGON2
    if stored.startswith(("$2a$", "$2b$", "$2y$")):
        return Format.BCRYPT
    if stored.startswith(("$pbkdf2$", "$pbkdf2-sha256$", "$pbkdf2-sha512$")):
        return Format.PBKDF2
    if stored.startswith(("pbkdf2_sha256$", "pbkdf2_sha1$")):
        return Format.DJANGO_PBKDF2
    if stored.startswith("$scrypt$"):
        return Format.SCRYPT
    if stored.startswith("$firebase-scrypt$"):
        return Format.FIREBASE_SCRYPT
    if stored.startswith(("sha256$", "sha512$")):
        return Format.SALTED_SHA
    return None


def check(stored: str, *, policy: Policy) -> Format:
    """STORED's format, once it is found well formed and within the costs we accept.

    Raises:
        HashProblem: an unknown format, a malformed hash, parameters past the limits,
            salted SHA-2 where POLICY does not allow it, or Firebase scrypt without the
            project's parameters.
    """
    _parse(stored, policy=policy, firebase=None)
    found = format_of(stored)
    assert found is not None  # noqa: S101 - _parse refused any other
    return found


def verify(stored: str, password: str, *, firebase: FirebaseParams | None = None) -> bool:
    """Whether PASSWORD matches STORED; False (never an error) for a wrong password, a
    malformed hash, or Firebase scrypt without the project's parameters (FIREBASE).

    Salted SHA-2 is verified whatever the organization allows now: its setting lets such
    hashes in at import, and those let in keep working until their first sign-in."""
    policy = Policy(allow_salted_sha=True, has_firebase_params=firebase is not None)
    try:
        return _parse(stored, policy=policy, firebase=firebase).matches(password.encode())
    except (HashProblem, ValueError, TypeError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class _Checker:
    """A parsed hash: how to compute it for a password, and what it should be."""

    kind: str  # argon2 | bcrypt | pbkdf2 | scrypt | firebase | sha
    stored: str
    digest: str = ""  # hashlib's name
    salt: bytes = b""
    expected: bytes = b""
    iterations: int = 0
    n: int = 0
    r: int = 0
    p: int = 0
    firebase: FirebaseParams | None = None

    def matches(self, password: bytes) -> bool:
        if self.kind == "argon2":
            return _ARGON2.verify(self.stored, password)
        if self.kind == "bcrypt":
            return bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], self.stored.encode())
        if self.kind == "pbkdf2":
            computed = hashlib.pbkdf2_hmac(
                self.digest, password, self.salt, self.iterations, len(self.expected)
            )
        elif self.kind == "scrypt":
            computed = _scrypt(password, self.salt, self.n, self.r, self.p, len(self.expected))
        elif self.kind == "firebase":
            if self.firebase is None:  # checked, not verified: nothing to compare with
                return False
            computed = firebase_scrypt(password, self.salt, self.firebase)
        else:
            computed = hashlib.new(self.digest, self.salt + password).digest()
        return hmac.compare_digest(computed, self.expected)


_ARGON2 = PasswordHasher()


def _parse(stored: str, *, policy: Policy, firebase: FirebaseParams | None) -> _Checker:
    """STORED read, or the reason it is refused; FIREBASE: the project's parameters, to
    verify (None to check only)."""
    if not isinstance(stored, str) or not stored:
        raise HashProblem("is empty")
    if len(stored) > MAX_LENGTH:
        raise HashProblem(f"is longer than {MAX_LENGTH} characters")
    if not stored.isascii() or not stored.isprintable():
        raise HashProblem("holds characters no password hash has (only printable ASCII)")
    found = format_of(stored)
    if found is None:
        raise HashProblem(f"is not a password hash in a known format ({KNOWN})")
    if found is Format.ARGON2:
        return _argon2(stored)
    if found is Format.BCRYPT:
        return _bcrypt(stored)
    if found is Format.PBKDF2:
        return _pbkdf2_phc(stored)
    if found is Format.DJANGO_PBKDF2:
        return _django_pbkdf2(stored)
    if found is Format.SCRYPT:
        return _scrypt_phc(stored)
    if found is Format.FIREBASE_SCRYPT:
        return _firebase(stored, policy.has_firebase_params, firebase)
    if not policy.allow_salted_sha:
        raise HashProblem(
            "is salted SHA-2, which is weak: this organization does not allow it "
            "(Settings > Password imports)"
        )
    return _salted_sha(stored)


def _argon2(stored: str) -> _Checker:
    try:
        parameters = extract_parameters(stored)
    except (InvalidHashError, ValueError):
        raise HashProblem("is not a well-formed argon2 hash") from None
    if parameters.type not in (Type.ID, Type.I):
        raise HashProblem("is argon2d: only argon2id and argon2i are taken")
    if parameters.memory_cost > ARGON2_MAX_MEMORY_KIB:
        raise HashProblem(
            f"is argon2 with m={parameters.memory_cost} KiB: "
            f"at most {ARGON2_MAX_MEMORY_KIB} (1 GiB)"
        )
    if not 1 <= parameters.time_cost <= ARGON2_MAX_TIME:
        raise HashProblem(f"is argon2 with t={parameters.time_cost}: at most {ARGON2_MAX_TIME}")
    if not 1 <= parameters.parallelism <= ARGON2_MAX_PARALLELISM:
        raise HashProblem(
            f"is argon2 with p={parameters.parallelism}: at most {ARGON2_MAX_PARALLELISM}"
        )
    return _Checker("argon2", stored)


_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")


def _bcrypt(stored: str) -> _Checker:
    match = _BCRYPT.fullmatch(stored)
    if not match:
        raise HashProblem("is not a well-formed bcrypt hash ($2b$, a cost, 53 characters)")
    cost = int(match.group(1))
    if not 4 <= cost <= BCRYPT_MAX_COST:
        raise HashProblem(f"is bcrypt with cost {cost}: it must be 4 to {BCRYPT_MAX_COST}")
    return _Checker("bcrypt", stored)


_PBKDF2_DIGESTS = {"pbkdf2": "sha1", "pbkdf2-sha256": "sha256", "pbkdf2-sha512": "sha512"}


def _pbkdf2_phc(stored: str) -> _Checker:
    parts = stored.split("$")
    if len(parts) != 5 or parts[0]:
        raise HashProblem("is not a well-formed PBKDF2 hash ($pbkdf2-sha256$rounds$salt$hash)")
    _, ident, params, salt, checksum = parts
    rounds = params.removeprefix("i=").split(",")[0] if params.startswith("i=") else params
    iterations = _iterations(rounds, "PBKDF2")
    return _Checker(
        "pbkdf2",
        stored,
        digest=_PBKDF2_DIGESTS[ident],
        salt=_b64(salt, "salt", adapted=True),
        expected=_b64(checksum, "hash", adapted=True),
        iterations=iterations,
    )


_DJANGO_DIGESTS = {"pbkdf2_sha256": "sha256", "pbkdf2_sha1": "sha1"}


def _django_pbkdf2(stored: str) -> _Checker:
    parts = stored.split("$")
    if len(parts) != 4 or not parts[2]:
        raise HashProblem(
            "is not a well-formed Django PBKDF2 hash (pbkdf2_sha256$iterations$salt$hash)"
        )
    algorithm, rounds, salt, checksum = parts
    if len(salt) > MAX_SALT_BYTES:
        raise HashProblem(f"has a salt longer than {MAX_SALT_BYTES} characters")
    return _Checker(
        "pbkdf2",
        stored,
        digest=_DJANGO_DIGESTS[algorithm],
        salt=salt.encode(),
        expected=_b64(checksum, "hash", adapted=False),
        iterations=_iterations(rounds, "Django PBKDF2"),
    )


def _iterations(text: str, name: str) -> int:
    if not (text.isdigit() and len(text) <= 10):
        raise HashProblem(f"is {name} whose iteration count is not a whole number")
    iterations = int(text)
    if not 1 <= iterations <= PBKDF2_MAX_ITERATIONS:
        raise HashProblem(
            f"is {name} with {iterations:,} iterations: at most {PBKDF2_MAX_ITERATIONS:,}"
        )
    return iterations


_SCRYPT_PARAMS = re.compile(r"ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})")


def _scrypt_phc(stored: str) -> _Checker:
    parts = stored.split("$")
    match = _SCRYPT_PARAMS.fullmatch(parts[2]) if len(parts) == 5 else None
    if match is None:
        raise HashProblem("is not a well-formed scrypt hash ($scrypt$ln=..,r=..,p=..$salt$hash)")
    ln, r, p = (int(group) for group in match.groups())
    if not 1 <= ln <= SCRYPT_MAX_LN or r < 1 or not 1 <= p <= SCRYPT_MAX_P:
        raise HashProblem(
            f"is scrypt with ln={ln}, r={r}, p={p}: ln 1 to {SCRYPT_MAX_LN}, "
            f"r at least 1, p 1 to {SCRYPT_MAX_P}"
        )
    if _scrypt_memory(1 << ln, r) > SCRYPT_MAX_MEMORY:
        raise HashProblem(f"is scrypt with ln={ln}, r={r}: it needs more than 256 MiB a check")
    return _Checker(
        "scrypt",
        stored,
        salt=_b64(parts[3], "salt", adapted=True),
        expected=_b64(parts[4], "hash", adapted=True),
        n=1 << ln,
        r=r,
        p=p,
    )


def _firebase(stored: str, configured: bool, firebase: FirebaseParams | None) -> _Checker:
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] or not parts[2] or not parts[3]:
        raise HashProblem(
            "is not a well-formed Firebase scrypt hash ($firebase-scrypt$salt$hash, in base64)"
        )
    if not configured:
        raise HashProblem(
            "is Firebase scrypt, but the organization has no Firebase hash parameters "
            "(Settings > Password imports)"
        )
    return _Checker(
        "firebase",
        stored,
        salt=_b64(parts[2], "salt", adapted=False),
        expected=_b64(parts[3], "hash", adapted=False),
        firebase=firebase,
    )


_SHA_LENGTHS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[0-9a-fA-F]+")


def _salted_sha(stored: str) -> _Checker:
    parts = stored.split("$")
    if len(parts) != 3 or parts[0] not in _SHA_LENGTHS:
        raise HashProblem("is not a well-formed salted SHA-2 hash (sha256$salt$hex)")
    algorithm, salt, checksum = parts
    if not salt or len(salt) > MAX_SALT_BYTES:
        raise HashProblem(f"has no salt, or one longer than {MAX_SALT_BYTES} characters")
    if len(checksum) != _SHA_LENGTHS[algorithm] or not _HEX.fullmatch(checksum):
        raise HashProblem(
            f"is {algorithm} whose hash is not {_SHA_LENGTHS[algorithm]} hexadecimal digits"
        )
    return _Checker(
        "sha", stored, digest=algorithm, salt=salt.encode(), expected=bytes.fromhex(checksum)
    )


def _b64(text: str, what: str, *, adapted: bool) -> bytes:
    """TEXT decoded from base64 (ADAPTED: passlib's, with "." for "+"; padding optional)."""
    if adapted:
        text = text.replace(".", "+")
    text = text.rstrip("=")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise HashProblem(f"has a {what} that is not base64") from None
    limit = MAX_SALT_BYTES if what == "salt" else MAX_KEY_BYTES
    if not 1 <= len(raw) <= limit:
        raise HashProblem(f"has a {what} of {len(raw)} bytes: 1 to {limit}")
    return raw


def _scrypt_memory(n: int, r: int) -> int:
    return 128 * n * r


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    memory = _scrypt_memory(n, r) + 1024 * 1024
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=memory, dklen=length)


def firebase_scrypt(password: bytes, salt: bytes, params: FirebaseParams) -> bytes:
    """Firebase's modified scrypt: the signer key encrypted with AES-256-CTR (zero IV)
    under the first 32 bytes of scrypt(password, salt + separator, 2^mem_cost, rounds, 1)."""
    derived = _scrypt(
        password, salt + params.salt_separator, 1 << params.mem_cost, params.rounds, 1, 64
    )
    encryptor = Cipher(algorithms.AES(derived[:32]), modes.CTR(b"\0" * 16)).encryptor()
    return encryptor.update(params.signer_key) + encryptor.finalize()
