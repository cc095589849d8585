"""Webhook secrets and signatures, as the Standard Webhooks spec has them.

A secret is "whsec_" and the base64 of 32 random bytes; it is stored sealed (see
userdesk.sealing), bound to its organization, since signing needs it back. A message is
signed with the `standardwebhooks` library (v1: HMAC-SHA256 over "id.timestamp.body"),
once per secret that is valid now: during a rotation's grace period the receiver holding
either the old or the new secret verifies it.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from functools import lru_cache
from secrets import token_bytes

from standardwebhooks.webhooks import Webhook

from userdesk import sealing
from userdesk.config import Settings

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix the spec gives secrets
SECRET_BYTES = 32  # the spec allows 24 to 64
_PURPOSE = b"userdesk webhook secrets v1"


def new_secret() -> str:
    """A fresh signing secret: "whsec_" + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode()


def seal_secret(settings: Settings, secret: str, organization_id: int) -> str:
    """SECRET as stored: sealed, and opening only for ORGANIZATION_ID's endpoints."""
    return sealing.seal(
        settings, purpose=_PURPOSE, secret=secret, associated=f"org:{organization_id}"
    )


def unseal_secret(settings: Settings, stored: str, organization_id: int) -> str:
    """The secret `seal_secret` stored.

    Raises:
        ValueError: an unknown scheme.
        cryptography.exceptions.InvalidTag: another secret key or organization.
    """
    return sealing.unseal(
        settings, purpose=_PURPOSE, stored=stored, associated=f"org:{organization_id}"
    )


@lru_cache(maxsize=256)
def _signer(secret: str) -> Webhook:
    """A Webhook for SECRET, its base64 decoded once (a worker signs thousands a second)."""
    return Webhook(secret)


def signature_headers(
    secrets: list[str], message_uid: str, timestamp: datetime, body: str
) -> dict[str, str]:
    """The Standard Webhooks headers of one delivery of BODY: webhook-id (MESSAGE_UID, the
    same on every retry), webhook-timestamp (whole seconds, as signed) and
    webhook-signature, one "v1,<base64>" per secret of SECRETS, space separated."""
    if timestamp.tzinfo is None:  # naive: UTC, as the library reads it
        timestamp = timestamp.replace(tzinfo=UTC)
    signatures = [_signer(secret).sign(message_uid, timestamp, body) for secret in secrets]
    return {
        "webhook-id": message_uid,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


# Base32 (RFC 4648) to Crockford's base32, whose digits sort as their values do.
_SORTABLE = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def new_message_uid() -> str:
    """A message's id, the webhook-id: "msg_" + a ULID (26 characters of Crockford's
    base32: 48 bits of milliseconds, then 80 random bits), so that ids sort about as they
    were made, and a thousand are made in a millisecond or two."""
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + token_bytes(10)
    return "msg_" + base64.b32encode(raw).decode()[:26].translate(_SORTABLE)
