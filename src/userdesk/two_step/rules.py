"""Time-based one-time passwords (RFC 6238 over RFC 4226) and recovery codes. Pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6
# Codes of the step before and after are accepted too (clocks drift a little).
DRIFT_STEPS = 1
SECRET_BYTES = 20  # 160 bits, as RFC 4226 recommends
RECOVERY_CODES = 10
RECOVERY_CODE_CHARS = 24  # base32: 120 bits each, above ASVS's 112 for a plain hash
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


def new_secret() -> str:
    """A new shared secret, base32 without padding, as authenticator apps take it."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    padded = secret.upper() + "=" * (-len(secret) % 8)
    return base64.b32decode(padded)


def code_at(secret: str, step: int) -> str:
    """The code of time step STEP (RFC 4226's HOTP with SHA-1, DIGITS digits)."""
    digest = hmac.new(_key(secret), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**DIGITS).zfill(DIGITS)


def step_of(unix_seconds: float) -> int:
    return int(unix_seconds // STEP_SECONDS)


def normalize_code(typed: str) -> str:
    """What was typed, without the spaces and dashes people put in codes."""
    return "".join(ch for ch in typed if ch not in " -\t").upper()


def matching_step(secret: str, typed: str, *, now_step: int, after_step: int | None) -> int | None:
    """The step whose code TYPED is, among now and DRIFT_STEPS around it, later than
    AFTER_STEP (a code works once); None when it is none of them."""
    code = normalize_code(typed)
    if len(code) != DIGITS or not (
        code.isascii() and code.isdigit()
    ):  # ASCII: not full-width digits
        return None
    found = None
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(code_at(secret, step), code):
            found = step
    return found


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads from a QR code."""
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode(
        {"secret": secret, "issuer": issuer, "digits": DIGITS, "period": STEP_SECONDS}
    )
    return f"otpauth://totp/{label}?{query}"


def new_recovery_codes() -> list[str]:
    """RECOVERY_CODES fresh codes, each shown once, in groups of four characters."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_CHARS))
        codes.append("-".join(raw[i : i + 4] for i in range(0, RECOVERY_CODE_CHARS, 4)))
    return codes


def looks_like_recovery_code(typed: str) -> bool:
    code = normalize_code(typed)
    return len(code) == RECOVERY_CODE_CHARS and all(ch in _RECOVERY_ALPHABET for ch in code)


def recovery_code_hash(typed: str) -> str:
    return hashlib.sha256(normalize_code(typed).encode()).hexdigest()
