"""SCIM cursors (RFC 9865): where a cursor-paged list goes on, signed so that no client
can make one up.

A cursor holds a key-set position of userdesk.db.paging (the sort key's values of the
row next to which the page starts), the way it goes (on, or back), the organization and
the query it was given for, and when; then an HMAC of all that with a key derived from
the app's secret key. What a client changes (or a cursor of another organization, query
or app) fails the HMAC or the check of its organization and query: a 400 `invalidCursor`.
One older than CURSOR_TIMEOUT is a 400 `expiredCursor`. The position alone never gives
access: every page is read within the actor's reach, as any page is.

Characters: base64url and a dot, RFC 3986's unreserved ones as RFC 9865 §2 requires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

import orjson
from scim2_models.exceptions import ExpiredCursorException, InvalidCursorException

CURSOR_TIMEOUT = 3600  # seconds a cursor stays good (ServiceProviderConfig's cursorTimeout)
MAX_CURSOR = 2048  # characters; every cursor given out is far shorter
_VERSION = 1
_MAC_BYTES = 18


@dataclass(frozen=True)
class Position:
    forward: bool  # True: the rows after the key; False: the rows before it
    key: str  # a paging cursor (encode_cursor) of the sort key the direction reads with


def query_digest(*parts: object) -> str:
    """A short digest of what a list is of (resource, filter, sort, order): a cursor is
    good for that list only."""
    return hashlib.sha256(orjson.dumps([str(part) for part in parts])).hexdigest()[:24]


def _mac_key(secret_key: str) -> bytes:
    return hashlib.sha256(b"userdesk scim cursor\x00" + secret_key.encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(
    secret_key: str,
    *,
    organization_id: int,
    query: str,
    position: Position,
    now: float,
) -> str:
    """The cursor of POSITION in the list QUERY names, given out at NOW (seconds)."""
    payload = orjson.dumps(
        [
            _VERSION,
            organization_id,
            query,
            "n" if position.forward else "p",
            position.key,
            int(now),
        ]
    )
    mac = hmac.new(_mac_key(secret_key), payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return f"{_b64(payload)}.{_b64(mac)}"


def read(secret_key: str, cursor: str, *, organization_id: int, query: str, now: float) -> Position:
    """The position CURSOR holds.

    Raises:
        InvalidCursorException: not a cursor this app gave out (changed, forged, cut), or
            one given for another organization or another query.
        ExpiredCursorException: given out more than CURSOR_TIMEOUT seconds before NOW.
    """
    shown = cursor if len(cursor) <= 40 else cursor[:40] + "…"
    invalid = InvalidCursorException(
        detail=f"cursor '{shown}' is not one this list gave out: send an empty cursor to "
        "start, then the nextCursor or previousCursor of the page before, with the same "
        "filter, sortBy and sortOrder."
    )
    if len(cursor) > MAX_CURSOR or cursor.count(".") != 1:
        raise invalid
    encoded, signature = cursor.split(".")
    try:
        payload, mac = _unb64(encoded), _unb64(signature)
    except (binascii.Error, ValueError):
        raise invalid from None
    wanted = hmac.new(_mac_key(secret_key), payload, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, wanted):
        raise invalid
    try:
        version, organization, given_for, way, key, issued = orjson.loads(payload)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        raise invalid from None
    if version != _VERSION or organization != organization_id or given_for != query:
        raise invalid
    if way not in ("n", "p") or not isinstance(key, str) or not key or not isinstance(issued, int):
        raise invalid
    if now - issued > CURSOR_TIMEOUT:
        raise ExpiredCursorException(
            detail=f"cursor '{shown}' is older than {CURSOR_TIMEOUT} seconds (cursorTimeout): "
            "start again with an empty cursor."
        )
    return Position(forward=way == "n", key=key)
