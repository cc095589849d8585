"""Password hashes from other systems: each format verified against known vectors, wrong
passwords refused, malformed and too costly hashes refused with a reason that never holds
the hash, and salted SHA-2 only where allowed."""

from __future__ import annotations

import base64
import time

import bcrypt
import pytest

from userdesk.auth import imported_hashes
from userdesk.auth.imported_hashes import FirebaseParams, Format, HashProblem, Policy
from userdesk.auth.secrets import hash_password, password_needs_rehash, verify_password

# Published vectors: each from its format's own documentation or test suite.
# OpenBSD bcrypt's test vector ("U*U", cost 5).
BCRYPT_OPENBSD = ("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U")
# passlib's documented pbkdf2_sha256 example.
PASSLIB_PBKDF2 = (
    "$pbkdf2-sha256$6400$0ZrzXitFSGltTQnBWOsdAw$Y11AchqV4b0sUisdZd0Xr97KWoymNE0LNNrnEgY4H9M",
    "password",
)
# RFC 7914's third scrypt vector (password "password", salt "NaCl", N=1024, r=8, p=16),
# written in PHC form.
RFC_SCRYPT_KEY = bytes.fromhex(
    "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
    "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
)
RFC_SCRYPT = (
    "$scrypt$ln=10,r=8,p=16$"
    + base64.b64encode(b"NaCl").decode().rstrip("=")
    + "$"
    + base64.b64encode(RFC_SCRYPT_KEY).decode().rstrip("="),
    "password",
)
# Firebase's published example (github.com/firebase/scrypt, README): the project's
# parameters, an exported account's salt and hash, and its password.
FIREBASE = FirebaseParams(
    signer_key=base64.b64decode(
        "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA=="
    ),
    salt_separator=base64.b64decode("Bw=="),
    rounds=8,
    mem_cost=14,
)
FIREBASE_HASH = (
    "$firebase-scrypt$42xEC+ixf3L2lw==$"
    "lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==",
    "user1password",
)
# Made by Django 5.2's PBKDF2PasswordHasher / PBKDF2SHA1PasswordHasher ("correct horse",
# salt "seasalt1234", 10,000 iterations), kept here so that the test needs no Django.
DJANGO_SHA256 = (
    "pbkdf2_sha256$10000$seasalt1234$7wou8Ph9+acLQNAaQYBTCiRD7iNfRooB4EnDl4uUOsQ=",
    "correct horse",
)
DJANGO_SHA1 = ("pbkdf2_sha1$10000$seasalt1234$GbfIpof119wBpoLD1MTLa20sBac=", "correct horse")
# argon2-cffi's low-level hash of "correct horse" with salt "somesalt12345678".
ARGON2ID = (
    "$argon2id$v=19$m=1024,t=2,p=1$c29tZXNhbHQxMjM0NTY3OA$mxcSbmr/D6/SjFQHrbYAXfGQAcpkbEI+GffVDdMLDRY",
    "correct horse",
)
ARGON2I = (
    "$argon2i$v=19$m=1024,t=2,p=1$c29tZXNhbHQxMjM0NTY3OA$+UtVwQ8JY3UfxPtsc9e+f/Aufdrm2f/pVosY9q9EMlY",
    "correct horse",
)
BCRYPT_2B = ("$2b$04$abcdefghijklmnopqrstuujydOTSfIH/d5oUHpsygqV5X9xJLQc6e", "correct horse")
SHA256 = (
    "sha256$pepper$869a1fa0609a1d15a5c3eb891428b7a6c8395b2ee10c4762e97ffca0ebe8c0b5",
    "correct horse",
)
SHA512 = (
    "sha512$pepper$f95919efa0cefe2d53743cad99b75b01f4523396310290535290357040a29d287fa2747e0c742c"
    "f21fd535908025f8f8c869b0c9a9da4ac9d24314a49ceee3df",
    "correct horse",
)
EVERYTHING = Policy(allow_salted_sha=True, has_firebase_params=True)

VECTORS = {
    "bcrypt-openbsd": (*BCRYPT_OPENBSD, Format.BCRYPT),
    "bcrypt-2b": (*BCRYPT_2B, Format.BCRYPT),
    "bcrypt-2y": (BCRYPT_2B[0].replace("$2b$", "$2y$"), BCRYPT_2B[1], Format.BCRYPT),
    "argon2id": (*ARGON2ID, Format.ARGON2),
    "argon2i": (*ARGON2I, Format.ARGON2),
    "passlib-pbkdf2": (*PASSLIB_PBKDF2, Format.PBKDF2),
    "django-pbkdf2-sha256": (*DJANGO_SHA256, Format.DJANGO_PBKDF2),
    "django-pbkdf2-sha1": (*DJANGO_SHA1, Format.DJANGO_PBKDF2),
    "rfc7914-scrypt": (*RFC_SCRYPT, Format.SCRYPT),
    "salted-sha256": (*SHA256, Format.SALTED_SHA),
    "salted-sha512": (*SHA512, Format.SALTED_SHA),
}


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_each_format_verifies_its_known_vector_and_refuses_a_wrong_password(name: str) -> None:
    stored, password, kind = VECTORS[name]
    assert imported_hashes.check(stored, policy=EVERYTHING) is kind
    assert imported_hashes.verify(stored, password)
    assert verify_password(stored, password)
    assert not imported_hashes.verify(stored, password + "x")
    assert not verify_password(stored, "x" + password)
    assert not verify_password(stored, "")


def test_firebase_scrypt_matches_firebases_published_example() -> None:
    stored, password = FIREBASE_HASH
    salt = base64.b64decode("42xEC+ixf3L2lw==")
    assert (
        base64.b64encode(
            imported_hashes.firebase_scrypt(password.encode(), salt, FIREBASE)
        ).decode()
        == stored.rsplit("$", 1)[1]
    )
    assert imported_hashes.check(stored, policy=EVERYTHING) is Format.FIREBASE_SCRYPT
    assert verify_password(stored, password, firebase=FIREBASE)
    assert not verify_password(stored, "user1password!", firebase=FIREBASE)


def test_firebase_scrypt_needs_the_projects_parameters() -> None:
    """Without them a hash is refused at import, and a sign-in answers False, not an error."""
    stored, password = FIREBASE_HASH
    with pytest.raises(HashProblem, match="no Firebase hash parameters"):
        imported_hashes.check(stored, policy=Policy())
    assert not verify_password(stored, password)
    other = FirebaseParams(FIREBASE.signer_key[::-1], FIREBASE.salt_separator, 8, 14)
    assert not verify_password(stored, password, firebase=other)


def test_passlib_scrypt_documented_example_verifies() -> None:
    """passlib's own documented scrypt hash (ln=16: 64 MiB, the costly one of the lot)."""
    stored = (
        "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E"
    )
    assert verify_password(stored, "password")


def test_salted_sha_is_refused_unless_the_organization_allows_it() -> None:
    for stored, _ in (SHA256, SHA512):
        with pytest.raises(HashProblem, match="weak"):
            imported_hashes.check(stored, policy=Policy(has_firebase_params=True))
        assert imported_hashes.check(stored, policy=Policy(allow_salted_sha=True))


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        ("$2b$31$" + "a" * 53, "cost 31"),
        ("$2b$17$" + "a" * 53, "cost 17"),
        ("$2b$03$" + "a" * 53, "cost 3"),
        ("pbkdf2_sha256$2000001$salt$" + "A" * 44, "2,000,001 iterations"),
        ("$pbkdf2-sha256$99999999$c2FsdA$" + "A" * 43, "99,999,999 iterations"),
        ("pbkdf2_sha256$0$salt$" + "A" * 44, "0 iterations"),
        ("$scrypt$ln=20,r=8,p=1$c2FsdA$" + "A" * 43, "256 MiB"),
        ("$scrypt$ln=17,r=64,p=1$c2FsdA$" + "A" * 43, "256 MiB"),
        ("$scrypt$ln=14,r=8,p=999$c2FsdA$" + "A" * 43, "p 1 to 16"),
        ("$argon2id$v=19$m=2097152,t=2,p=1$c29tZXNhbHQxMjM0NTY3OA$" + "A" * 43, "1 GiB"),
        ("$argon2id$v=19$m=1024,t=5000,p=1$c29tZXNhbHQxMjM0NTY3OA$" + "A" * 43, "t=5000"),
    ],
)
def test_absurd_parameters_are_refused(stored: str, reason: str) -> None:
    with pytest.raises(HashProblem, match=reason) as refused:
        imported_hashes.check(stored, policy=EVERYTHING)
    assert stored not in str(refused.value)
    started = time.perf_counter()
    assert not imported_hashes.verify(stored, "anything")  # never computed: refused first
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        ("", "empty"),
        ("hunter2", "not a password hash in a known format"),
        ("$1$abc$def", "not a password hash in a known format"),
        ("$argon2d$v=19$m=1024,t=2,p=1$c29tZXNhbHQxMjM0NTY3OA$" + "A" * 43, "known format"),
        ("$argon2id$v=19$m=oops$salt$hash", "not a well-formed argon2"),
        ("$2b$10$tooshort", "not a well-formed bcrypt"),
        ("$2x$10$" + "a" * 53, "known format"),
        ("pbkdf2_sha256$abc$salt$" + "A" * 44, "not a whole number"),
        ("pbkdf2_sha256$1000$salt", "not a well-formed Django"),
        ("pbkdf2_sha256$1000$salt$not base64!", "not base64"),
        ("$pbkdf2-sha256$1000$c2FsdA", "not a well-formed PBKDF2"),
        ("$scrypt$n=16384,r=8,p=1$c2FsdA$" + "A" * 43, "not a well-formed scrypt"),
        ("$firebase-scrypt$onlyone", "not a well-formed Firebase"),
        ("sha256$salt$nothex", "64 hexadecimal digits"),
        ("sha1$salt$" + "0" * 40, "known format"),
        ("$2b$10$" + "a" * 52 + "\0", "printable ASCII"),
        ("$2b$10$" + "é" * 53, "printable ASCII"),
        ("$2b$10$" + "a" * 300, "longer than 255"),
    ],
)
def test_malformed_hashes_are_refused_with_a_reason_that_never_holds_the_hash(
    stored: str, reason: str
) -> None:
    with pytest.raises(HashProblem, match=reason) as refused:
        imported_hashes.check(stored, policy=EVERYTHING)
    if len(stored) > 12:
        assert stored not in str(refused.value)
        assert stored[6:] not in str(refused.value)
    assert not verify_password(stored, "anything")


def test_a_password_over_72_bytes_is_checked_as_bcrypt_read_it() -> None:
    """bcrypt reads 72 bytes: the source system did too, so a longer password matches on
    those (and a wrong one still fails, with no error)."""
    long = "p" * 80
    stored = bcrypt.hashpw(long.encode()[:72], bcrypt.gensalt(4)).decode()
    assert verify_password(stored, long)
    assert not verify_password(stored, "q" * 80)


@pytest.mark.parametrize("password", ["\ud800", "a\0b", "x" * 10_000])
def test_odd_passwords_answer_false_not_an_error(password: str) -> None:
    for stored, _, _ in VECTORS.values():
        assert not verify_password(stored, password)
    assert not verify_password(FIREBASE_HASH[0], password, firebase=FIREBASE)


def test_an_imported_hash_always_needs_a_rehash_and_ours_do_not() -> None:
    for stored, _, _ in VECTORS.values():  # ours too when weaker than our parameters
        assert password_needs_rehash(stored)
    assert password_needs_rehash(ARGON2I[0])  # argon2i: ours are argon2id
    assert not password_needs_rehash(hash_password("correct horse"))
    assert password_needs_rehash(BCRYPT_2B[0])
    assert not imported_hashes.is_native(BCRYPT_2B[0])
    assert imported_hashes.is_native(ARGON2ID[0])


def test_firebase_parameters_are_bounded() -> None:
    key = FIREBASE.signer_key
    assert imported_hashes.firebase_params_problem(8, 14, key) is None
    assert "rounds" in (imported_hashes.firebase_params_problem(0, 14, key) or "")
    assert "mem_cost" in (imported_hashes.firebase_params_problem(8, 40, key) or "")
    assert "256 MiB" in (imported_hashes.firebase_params_problem(16, 20, key) or "")
    assert "signer key" in (imported_hashes.firebase_params_problem(8, 14, b"") or "")
