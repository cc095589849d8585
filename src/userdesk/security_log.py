"""The security log: one JSON line per authentication decision and refused request.

Separate from the audit log (what admins changed, in the database, hash-chained) and from
the access log (every request): this one is for whoever watches for attacks (a SIEM).
Lines go to the `userdesk.security` logger; `userdesk serve` and `userdesk worker` write
it to standard error. Nothing secret is logged: no password, token or cookie; a typed
email is logged as its SHA-256, since it may be someone else's address or a password
typed in the wrong field.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from userdesk.db.base import utcnow

logger = logging.getLogger("userdesk.security")


def email_digest(email: str) -> str:
    """The first 16 hex digits of the SHA-256 of EMAIL as typed, lower-cased."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


def event(name: str, *, outcome: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log security event NAME ("sign_in", "request_refused", …) with its OUTCOME and
    FIELDS (None values left out), as one line of JSON in UTC."""
    if not logger.isEnabledFor(level):
        return
    record = {"at": utcnow().isoformat(), "event": name, "outcome": outcome}
    record.update((key, value) for key, value in fields.items() if value is not None)
    logger.log(level, json.dumps(record, default=str, ensure_ascii=True))
