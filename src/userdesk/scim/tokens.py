"""SCIM tokens: made by an admin, shown once, kept as a hash, revocable.

A token acts with the provisioning role and only at /scim/v2: it is not an API key, so
/api/v1 and the console never accept it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from userdesk.access.rules import Actor, Grant, Permission, holds_everywhere
from userdesk.audit import service as audit
from userdesk.auth.secrets import hash_token, new_token
from userdesk.auth.service import TOUCH_EVERY
from userdesk.db.base import utcnow
from userdesk.db.session import best_effort, unless_locked
from userdesk.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from userdesk.organizations.models import Organization
from userdesk.scim.models import ScimToken
from userdesk.users import attributes

TOKEN_PREFIX = "scim_"  # noqa: S105 - a prefix, not a secret
NAME_MAX = 100
ACTOR_PREFIX = "SCIM token "  # the actor's name in the audit log: "SCIM token Okta"
# The provisioning role: what an identity provider does to users and nothing more. It
# cannot reach settings, roles, audit, exports, impersonation or the API.
PROVISIONING = frozenset(
    {
        Permission.USERS_READ,
        Permission.USERS_CREATE,
        Permission.USERS_UPDATE,
        Permission.USERS_DELETE,
        Permission.USERS_MODERATE,
    }
)


def require_manager(actor: Actor) -> None:
    """Raises PermissionDenied unless ACTOR holds scim.manage over every user (a token
    provisions the whole organization)."""
    if not holds_everywhere(actor, Permission.SCIM_MANAGE):
        raise PermissionDenied(
            f"You need the '{Permission.SCIM_MANAGE}' permission over the whole "
            "organization for this.",
            code="permission_denied",
        )


@dataclass(frozen=True)
class NewScimToken:
    """A created token: the secret is shown once and only its hash is kept."""

    token: ScimToken
    secret: str


def create_token(db: Session, *, actor: Actor, name: str) -> NewScimToken:
    """A new SCIM token named NAME (the actor its changes are audited under).

    Raises:
        PermissionDenied: the actor may not manage SCIM provisioning.
        InvalidInput: no name, or one longer than 100 characters (field name).
    """
    require_manager(actor)
    name = name.strip()
    if not name:
        raise InvalidInput("The token needs a name.", fields={"name": "is required"})
    if len(name) > NAME_MAX:
        raise InvalidInput(
            "The token's name is too long.",
            fields={"name": f"is longer than {NAME_MAX} characters"},
        )
    secret = TOKEN_PREFIX + new_token()
    token = ScimToken(
        organization_id=actor.organization_id,
        name=name,
        prefix=secret[:10],
        token_hash=hash_token(secret),
        created_by_id=actor.user_id,
    )
    db.add(token)
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="scim_token.created",
        target_type="scim_token",
        target_id=token.id,
        changes={"name": name},
    )
    return NewScimToken(token=token, secret=secret)


def list_tokens(db: Session, *, actor: Actor) -> list[ScimToken]:
    """The organization's SCIM tokens, newest first (revoked ones too).

    Raises:
        PermissionDenied: the actor may not manage SCIM provisioning.
    """
    require_manager(actor)
    return list(
        db.scalars(
            select(ScimToken)
            .where(ScimToken.organization_id == actor.organization_id)
            .order_by(ScimToken.id.desc())
        )
    )


def revoke_token(db: Session, *, actor: Actor, token_id: int) -> ScimToken:
    """Revoke a token at once: its next request is refused.

    Raises:
        PermissionDenied: the actor may not manage SCIM provisioning.
        NotFound: no such token in the organization.
    """
    require_manager(actor)
    token = db.scalar(
        select(ScimToken).where(
            ScimToken.id == token_id, ScimToken.organization_id == actor.organization_id
        )
    )
    if token is None:
        raise NotFound(f"No SCIM token {token_id}.", code="scim_token.not_found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.flush()
        audit.record(
            db,
            actor=actor,
            action="scim_token.revoked",
            target_type="scim_token",
            target_id=token.id,
            changes={"name": token.name},
        )
    return token


def provisioning_actor(token: ScimToken, *, ip: str | None, user_agent: str | None) -> Actor:
    """The actor a SCIM request acts as: the token's name, the provisioning role."""
    return Actor(
        token.organization_id,
        None,
        None,
        ACTOR_PREFIX + token.name,
        (Grant(frozenset(PROVISIONING)),),
        ip=ip,
        user_agent=user_agent,
    )


def provider_of(actor: Actor) -> str:
    """The token's name of a provisioning ACTOR (its name for another actor)."""
    return actor.name.removeprefix(ACTOR_PREFIX)


def authenticate(
    db: Session, *, secret: str, ip: str | None = None, user_agent: str | None = None
) -> tuple[ScimToken, Actor]:
    """The token for SECRET and the actor it acts as; its last use is recorded.

    Raises:
        NotAuthenticated: the token is unknown or revoked.
    """
    found = db.execute(
        select(ScimToken, Organization.user_fields_version)
        .join(Organization, Organization.id == ScimToken.organization_id)
        .where(ScimToken.token_hash == hash_token(secret))
    ).first()
    if found is None or found[0].revoked_at is not None:
        raise NotAuthenticated("The SCIM token is not valid.", code="scim.invalid_token")
    token, fields_version = found
    # The custom fields' version, read with the token: the request then reads no field
    # to know the fields it holds are current (users.attributes.schema).
    attributes.note_version(db, token.organization_id, fields_version)
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        with best_effort(db):
            db.execute(
                update(ScimToken)
                .where(unless_locked(ScimToken.id, token.id))
                .values(last_used_at=now)
            )
    return token, provisioning_actor(token, ip=ip, user_agent=user_agent)
