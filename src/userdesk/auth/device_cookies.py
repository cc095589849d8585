"""Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"). Pure.

A browser that signed in to an account gets a cookie that says so; failed sign-ins from it
are counted apart from everyone else's, so that strangers failing an account's password do
not lock its owner out of the browser they use (auth.signin).

The cookie holds up to MAX_ENTRIES entries, newest first, one per account:
`<user id>.<nonce>.<issued, unix seconds>.<signature>`, the signature being the HMAC-SHA256
of the first three under the secret key. Nothing is stored on the server: the nonce names
the browser in the failure counts. An entry older than MAX_AGE, signed with another key or
altered in any way counts as none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

COOKIE = "userdesk_device"
HOST_COOKIE = "__Host-userdesk_device"  # served over HTTPS: Secure, Path=/, no Domain
MAX_AGE = timedelta(days=365)
MAX_ENTRIES = 5  # accounts one browser is remembered for (a shared computer)
MAX_COOKIE_LENGTH = 1024  # longer ones are not read at all
NONCE_BYTES = 16


def _signature(secret_key: str, body: str) -> str:
    mac = hmac.new(f"device-cookie:{secret_key}".encode(), body.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def _entries(value: str | None) -> list[str]:
    if not value or len(value) > MAX_COOKIE_LENGTH:
        return []
    return [entry for entry in value.split("~") if entry][:MAX_ENTRIES]


def _valid(secret_key: str, entry: str, now: datetime) -> tuple[int, str] | None:
    """(user id, nonce) of ENTRY when its signature holds and it is not too old."""
    parts = entry.split(".")
    if len(parts) != 4:
        return None
    user, nonce, issued, signature = parts
    if not (user.isdigit() and issued.isdigit() and len(user) <= 19 and len(issued) <= 12):
        return None
    expected = _signature(secret_key, f"{user}.{nonce}.{issued}")
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    age = now.timestamp() - int(issued)
    if age < -60 or age > MAX_AGE.total_seconds():  # a minute of clock skew between servers
        return None
    return int(user), nonce


def nonce_for(secret_key: str, value: str | None, user_id: int, *, now: datetime) -> str | None:
    """The nonce of this browser for USER_ID, when its cookie VALUE holds a valid entry for
    that account; else None (an untrusted browser)."""
    for entry in _entries(value):
        found = _valid(secret_key, entry, now)
        if found is not None and found[0] == user_id:
            return found[1]
    return None


def remember(secret_key: str, value: str | None, user_id: int, *, now: datetime) -> str:
    """The new cookie value after USER_ID signed in from this browser: a fresh entry for the
    account first, then the browser's other valid entries, at most MAX_ENTRIES."""
    nonce = secrets.token_urlsafe(NONCE_BYTES)
    body = f"{user_id}.{nonce}.{int(now.timestamp())}"
    kept = [
        entry
        for entry in _entries(value)
        if (found := _valid(secret_key, entry, now)) is not None and found[0] != user_id
    ]
    return "~".join([f"{body}.{_signature(secret_key, body)}", *kept][:MAX_ENTRIES])
