"""Password hashes brought from another system, as an organization allows them: its
settings (salted SHA-2 on or off, a Firebase project's hash parameters), checking a hash
before a user is made with it, and replacing it with our argon2id at the first sign-in.

The settings live in organizations.settings: `allow_salted_sha_imports` (bool) and
`firebase_scrypt` ({signer_key: sealed, salt_separator: base64, rounds, mem_cost}). The
signer key is a secret: sealed (`userdesk.sealing`), never shown back, only "set".
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy.orm import Session

from userdesk import security_log
from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.audit import service as audit
from userdesk.auth import imported_hashes
from userdesk.auth.imported_hashes import FirebaseParams, HashProblem, Policy
from userdesk.auth.secrets import hash_password, password_needs_rehash
from userdesk.config import Settings
from userdesk.errors import InvalidInput
from userdesk.organizations.models import Organization
from userdesk.organizations.service import HasSettings
from userdesk.sealing import seal, unseal
from userdesk.users.models import User

ALLOW_SALTED_SHA = "allow_salted_sha_imports"
FIREBASE = "firebase_scrypt"
SIGNER_KEY_PURPOSE = b"firebase-signer-key"
FIELD = "password_hash"

logger = logging.getLogger(__name__)


def allows_salted_sha(organization: HasSettings) -> bool:
    """Whether imports may bring salted SHA-2 hashes (weak: off unless turned on)."""
    return bool(organization.settings.get(ALLOW_SALTED_SHA, False))


def policy(organization: HasSettings) -> Policy:
    """What ORGANIZATION lets in at import."""
    return Policy(
        allow_salted_sha=allows_salted_sha(organization),
        has_firebase_params=bool(organization.settings.get(FIREBASE)),
    )


def hash_problem(stored: str, *, allowed: Policy) -> str | None:
    """Why STORED may not be imported (a sentence's end: "is not ..."), or None."""
    try:
        imported_hashes.check(stored, policy=allowed)
    except HashProblem as problem:
        return str(problem)
    return None


def checked_hash(organization: HasSettings, stored: str) -> str:
    """STORED, found fit to import into ORGANIZATION.

    Raises:
        InvalidInput: naming `password_hash` and why (never the hash itself).
    """
    if problem := hash_problem(stored, allowed=policy(organization)):
        raise InvalidInput(f"The password hash {problem}.", fields={FIELD: problem})
    return stored


def format_label(stored: str) -> str:
    """The name of STORED's format, for an audit row ("bcrypt"); never the hash."""
    found = imported_hashes.format_of(stored)
    return found.label if found else "unknown"


def audited(stored: str) -> dict[str, str]:
    """What an audit row says of a user created with STORED: its format, not the hash."""
    return {"password": f"imported ({format_label(stored)})"}


def firebase_params(settings: Settings, organization: HasSettings) -> FirebaseParams | None:
    """ORGANIZATION's Firebase project parameters, the signer key unsealed; None when
    there are none, or the key no longer opens (another instance secret)."""
    given = organization.settings.get(FIREBASE)
    if not given:
        return None
    try:
        key = unseal(
            settings,
            purpose=SIGNER_KEY_PURPOSE,
            stored=given["signer_key"],
            associated=str(_organization_id(organization)),
        )
        return FirebaseParams(
            signer_key=base64.b64decode(key),
            salt_separator=base64.b64decode(given["salt_separator"]),
            rounds=int(given["rounds"]),
            mem_cost=int(given["mem_cost"]),
        )
    except (InvalidTag, ValueError, KeyError, TypeError, binascii.Error):
        logger.warning(
            "The Firebase signer key of organization %s does not open.",
            _organization_id(organization),
        )
        return None


def _organization_id(organization: HasSettings) -> int:
    return int(organization.id)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PasswordImportSettings:
    """What the Settings page shows: never the signer key, only whether one is set."""

    allow_salted_sha: bool
    firebase_set: bool
    salt_separator: str
    rounds: int | None
    mem_cost: int | None


def settings_of(db: Session, *, actor: Actor) -> PasswordImportSettings:
    """The actor's organization's password import settings, as the Settings page shows them.

    Raises:
        PermissionDenied: the actor may not manage settings.
    """
    access.require(actor, Permission.SETTINGS_MANAGE)
    return shown(db.get_one(Organization, actor.organization_id))


def shown(organization: HasSettings) -> PasswordImportSettings:
    given = organization.settings.get(FIREBASE) or {}
    return PasswordImportSettings(
        allow_salted_sha=allows_salted_sha(organization),
        firebase_set=bool(given),
        salt_separator=str(given.get("salt_separator", "")),
        rounds=given.get("rounds"),
        mem_cost=given.get("mem_cost"),
    )


def update_settings(
    db: Session,
    *,
    actor: Actor,
    settings: Settings,
    allow_salted_sha: bool | None = None,
    firebase_signer_key: str | None = None,
    firebase_salt_separator: str | None = None,
    firebase_rounds: int | None = None,
    firebase_mem_cost: int | None = None,
    forget_firebase: bool = False,
) -> Organization:
    """Change what password imports allow. The Firebase parameters go together: a blank
    FIREBASE_SIGNER_KEY keeps the key set before (it is never shown back). The audit row
    says the key was set, never what it is.

    Raises:
        PermissionDenied: the actor may not manage settings.
        InvalidInput: a key or separator that is not base64, rounds or mem_cost out of
            range, or parameters without a key; naming the field.
    """
    access.require(actor, Permission.SETTINGS_MANAGE)
    organization = db.get_one(Organization, actor.organization_id)
    changes: dict[str, Any] = {}
    stored = dict(organization.settings)
    if allow_salted_sha is not None and allows_salted_sha(organization) != allow_salted_sha:
        stored[ALLOW_SALTED_SHA] = allow_salted_sha
        changes[ALLOW_SALTED_SHA] = allow_salted_sha
    if forget_firebase:
        if stored.pop(FIREBASE, None) is not None:
            changes[FIREBASE] = "removed"
    elif any(
        value not in (None, "")
        for value in (firebase_signer_key, firebase_salt_separator, firebase_rounds)
    ) or (firebase_mem_cost is not None):
        before = stored.get(FIREBASE) or {}
        new = _firebase_setting(
            settings,
            organization.id,
            before,
            firebase_signer_key or "",
            firebase_salt_separator,
            firebase_rounds,
            firebase_mem_cost,
        )
        if new != before:
            stored[FIREBASE] = new
            changes[FIREBASE] = {
                "signer_key": "changed"
                if new["signer_key"] != before.get("signer_key")
                else "kept",
                "salt_separator": new["salt_separator"],
                "rounds": new["rounds"],
                "mem_cost": new["mem_cost"],
            }
    if changes:
        organization.settings = stored
        db.flush()
        audit.record(
            db,
            actor=actor,
            action="organization.settings_changed",
            target_type="organization",
            target_id=organization.id,
            changes=changes,
        )
    return organization


def _firebase_setting(
    settings: Settings,
    organization_id: int,
    before: dict[str, Any],
    signer_key: str,
    salt_separator: str | None,
    rounds: int | None,
    mem_cost: int | None,
) -> dict[str, Any]:
    """The firebase_scrypt setting to store; raises InvalidInput naming the bad field."""
    key = signer_key.strip()
    if key:
        raw_key = _base64(key, "firebase_signer_key")
    elif before:
        raw_key = b"\0"  # kept as sealed: only its length is checked below
    else:
        raise InvalidInput(
            "The Firebase signer key is required.",
            fields={"firebase_signer_key": "is required"},
        )
    separator = (
        salt_separator.strip()
        if salt_separator is not None
        else str(before.get("salt_separator", ""))
    )
    _base64(separator, "firebase_salt_separator", empty=True)
    rounds = rounds if rounds is not None else before.get("rounds")
    mem_cost = mem_cost if mem_cost is not None else before.get("mem_cost")
    if rounds is None:
        raise InvalidInput("Rounds are required.", fields={"firebase_rounds": "is required"})
    if mem_cost is None:
        raise InvalidInput("mem_cost is required.", fields={"firebase_mem_cost": "is required"})
    if problem := imported_hashes.firebase_params_problem(rounds, mem_cost, raw_key):
        name = "firebase_rounds" if problem.startswith("rounds") else "firebase_mem_cost"
        if problem.startswith("the signer key"):
            name = "firebase_signer_key"
        raise InvalidInput(
            f"The Firebase parameters are not valid: {problem}.", fields={name: problem}
        )
    sealed = (
        seal(settings, purpose=SIGNER_KEY_PURPOSE, secret=key, associated=str(organization_id))
        if key
        else before["signer_key"]
    )
    return {
        "signer_key": sealed,
        "salt_separator": separator,
        "rounds": rounds,
        "mem_cost": mem_cost,
    }


def _base64(text: str, field: str, *, empty: bool = False) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or (not raw and not empty) or len(text) > 2048:
        shown = "the value given" if field == "firebase_signer_key" else repr(text[:40])
        raise InvalidInput(
            f"The {field.replace('_', ' ')} is not base64.",
            fields={field: f"{shown} is not base64 (as the Firebase console shows it)"},
        )
    return raw


def rehash_after_sign_in(db: Session, *, user: User, password: str) -> None:
    """USER just proved PASSWORD: an imported hash (or ours with old parameters) is
    replaced by our argon2id, in the sign-in's transaction. Replacing an imported one is
    audited and logged by its format's name, never the hash."""
    if not user.password_hash or not password_needs_rehash(user.password_hash):
        return
    imported = not imported_hashes.is_native(user.password_hash)
    label = format_label(user.password_hash)
    user.password_hash = hash_password(password)
    if not imported:
        return
    db.flush()
    me = Actor(user.organization_id, user.id, None, user.name)
    audit.record(
        db,
        actor=me,
        action="user.password_rehashed",
        target_type="user",
        target_id=user.id,
        changes={"password": {"from": f"imported ({label})", "to": "argon2id"}},
    )
    security_log.event("password_rehashed", outcome="success", user_id=user.id, was=label)
