"""Creating and finding organizations."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.models import Role, RolePermission
from userdesk.access.rules import BUILTIN_ROLES, Actor, Permission
from userdesk.audit import service as audit
from userdesk.auth.session_rules import (
    KEPT_IDLE,
    KEPT_MAX,
    MINUTES_SETTINGS,
    SESSION_IDLE,
    SESSION_MAX,
    SessionLimits,
    order_problem,
)
from userdesk.errors import Conflict, InvalidInput, NotFound
from userdesk.organizations.models import Organization
from userdesk.signup.rules import RegistrationPolicy, domains_problem, policy_problem

DEFAULT_SLUG = "default"
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def create_organization(db: Session, *, slug: str, name: str) -> Organization:
    """A new organization with the built-in roles.

    Raises:
        InvalidInput: the slug is not lower-case letters, digits and dashes.
        Conflict: the slug is taken.
    """
    if not _SLUG.match(slug):
        raise InvalidInput(
            f"Slug '{slug}' must be lower-case letters, digits and dashes.",
            fields={"slug": f"'{slug}' is not a valid slug"},
        )
    if find_organization(db, slug) is not None:
        raise Conflict(f"An organization '{slug}' exists already.", code="organization.slug_taken")
    organization = Organization(slug=slug, name=name, settings={})
    db.add(organization)
    db.flush()
    for builtin in BUILTIN_ROLES:
        role = Role(
            organization_id=organization.id,
            name=builtin.name,
            description=builtin.description,
            scope=builtin.scope.value,
            builtin=True,
        )
        role.permission_rows = [
            RolePermission(organization_id=organization.id, permission=p.value)
            for p in sorted(builtin.permissions)
        ]
        db.add(role)
    db.flush()
    return organization


def find_organization(db: Session, slug: str) -> Organization | None:
    return db.scalar(select(Organization).where(Organization.slug == slug))


def get_organization(db: Session, slug: str) -> Organization:
    """Raises NotFound when no organization has SLUG."""
    organization = find_organization(db, slug)
    if organization is None:
        raise NotFound(f"No organization '{slug}'.", code="organization.not_found")
    return organization


def resolve_organization(db: Session, slug: str | None, *, create: bool = False) -> Organization:
    """The organization an operator command means.

    SLUG when given; otherwise the only one there is. With CREATE, an empty database gets
    the default organization.

    Raises:
        NotFound: SLUG names none, or there is none and CREATE is off.
        InvalidInput: no SLUG and several organizations exist.
    """
    if slug is not None:
        if create and find_organization(db, slug) is None:
            return create_organization(db, slug=slug, name=slug.replace("-", " ").title())
        return get_organization(db, slug)
    count = db.scalar(select(func.count()).select_from(Organization)) or 0
    if count == 0:
        if create:
            return create_organization(db, slug=DEFAULT_SLUG, name="Default organization")
        raise NotFound("There is no organization yet.", code="organization.not_found")
    if count > 1:
        raise InvalidInput(
            "Several organizations exist: name one with --org.", fields={"org": "is required"}
        )
    return db.scalars(select(Organization)).one()


INVITATION_TTL_DAYS = (1, 90)
DEFAULT_INVITATION_TTL_DAYS = 7


def invitation_ttl(organization: Organization) -> timedelta:
    """How long the organization's invitation links work."""
    days = organization.settings.get("invitation_ttl_days", DEFAULT_INVITATION_TTL_DAYS)
    return timedelta(days=int(days))


def requires_validation(organization: Organization) -> bool:
    """Whether users must be validated by an admin before they may sign in."""
    return bool(organization.settings.get("require_validation", False))


def shows_disable_reason(organization: Organization) -> bool:
    """Whether a disabled user is told the reason when signing in."""
    return bool(organization.settings.get("show_disable_reason", False))


def allows_impersonation(organization: Organization) -> bool:
    """Whether admins with users.impersonate may act as a user (on unless turned off)."""
    return bool(organization.settings.get("allow_impersonation", True))


def notifies_impersonation(organization: Organization) -> bool:
    """Whether a user is emailed when an admin has acted as them."""
    return bool(organization.settings.get("notify_impersonation", False))


def registration_policy(organization: Organization) -> RegistrationPolicy:
    """Who may register themselves: closed (by invitation only) unless set otherwise."""
    value = organization.settings.get("registration", RegistrationPolicy.CLOSED.value)
    return RegistrationPolicy(value) if not policy_problem(value) else RegistrationPolicy.CLOSED


def registration_domains(organization: Organization) -> list[str]:
    """The email domains whose owners may register when the policy is "domains"."""
    return list(organization.settings.get("registration_domains", []))


class HasSettings(Protocol):
    """An organization as its settings' rules read it: the entity, or a signed-in
    session's columns (`auth.service.SessionOrganization`)."""

    @property
    def settings(self) -> dict[str, Any]: ...


def session_minutes(organization: HasSettings) -> dict[str, int]:
    """The organization's session limits in minutes, by setting name (defaults filled in)."""
    return {s.name: int(organization.settings.get(s.name, s.default)) for s in MINUTES_SETTINGS}


def allows_keep_signed_in(organization: HasSettings) -> bool:
    """Whether end users may choose "keep me signed in" (off unless turned on)."""
    return bool(organization.settings.get("keep_signed_in", False))


def requires_two_step(organization: HasSettings) -> bool:
    """Whether back-office users must sign in with two-step verification (off by default)."""
    return bool(organization.settings.get("two_step_required_for_console", False))


def session_limits(organization: HasSettings, *, kept: bool = False) -> SessionLimits:
    """How long the organization's sessions may go unused and last: a kept session's
    ("keep me signed in") when KEPT and the organization still allows it."""
    minutes = session_minutes(organization)
    if kept and allows_keep_signed_in(organization):
        idle, lifetime = minutes[KEPT_IDLE.name], minutes[KEPT_MAX.name]
    else:
        kept = False
        idle, lifetime = minutes[SESSION_IDLE.name], minutes[SESSION_MAX.name]
    return SessionLimits(
        idle=timedelta(minutes=idle), lifetime=timedelta(minutes=lifetime), kept=kept
    )


def update_settings(
    db: Session,
    *,
    actor: Actor,
    invitation_ttl_days: int | None = None,
    require_validation: bool | None = None,
    show_disable_reason: bool | None = None,
    allow_impersonation: bool | None = None,
    notify_impersonation: bool | None = None,
    churn_cutoffs: tuple[float, float] | None = None,
    registration: str | None = None,
    registration_domains: list[str] | None = None,
    session_idle_minutes: int | None = None,
    session_max_minutes: int | None = None,
    keep_signed_in: bool | None = None,
    keep_signed_in_idle_minutes: int | None = None,
    keep_signed_in_max_minutes: int | None = None,
    two_step_required_for_console: bool | None = None,
) -> Organization:
    """Change the organization's settings that were given.

    Raises:
        PermissionDenied: the actor may not manage settings.
        InvalidInput: a value out of range, naming the field.
    """
    access.require(actor, Permission.SETTINGS_MANAGE)
    organization = db.get_one(Organization, actor.organization_id)
    changes: dict[str, object] = {}
    if invitation_ttl_days is not None:
        low, high = INVITATION_TTL_DAYS
        if not low <= invitation_ttl_days <= high:
            raise InvalidInput(
                f"Invitation links last {low} to {high} days.",
                fields={
                    "invitation_ttl_days": f"{invitation_ttl_days} is not between {low} and {high}"
                },
            )
        changes["invitation_ttl_days"] = invitation_ttl_days
    if require_validation is not None:
        changes["require_validation"] = require_validation
    if churn_cutoffs is not None:
        medium_from, high_from = churn_cutoffs
        if not 0 < medium_from < high_from < 1:
            problem = f"medium from {medium_from:.0%} and high from {high_from:.0%}"
            raise InvalidInput(
                "The churn levels need 0% < medium < high < 100%.",
                fields={"churn_cutoffs": f"{problem} are not in order within 0-100%"},
            )
        changes["churn_cutoffs"] = [medium_from, high_from]
    changes |= _registration_changes(organization, registration, registration_domains)
    changes |= _session_changes(
        organization,
        {
            SESSION_IDLE.name: session_idle_minutes,
            SESSION_MAX.name: session_max_minutes,
            KEPT_IDLE.name: keep_signed_in_idle_minutes,
            KEPT_MAX.name: keep_signed_in_max_minutes,
        },
    )
    for name, value in (
        ("show_disable_reason", show_disable_reason),
        ("allow_impersonation", allow_impersonation),
        ("notify_impersonation", notify_impersonation),
        ("keep_signed_in", keep_signed_in),
        ("two_step_required_for_console", two_step_required_for_console),
    ):
        if value is not None:
            changes[name] = value
    changes = {k: v for k, v in changes.items() if organization.settings.get(k) != v}
    if changes:
        organization.settings = {**organization.settings, **changes}
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


def _session_changes(organization: Organization, given: dict[str, int | None]) -> dict[str, object]:
    """The session limits to store (minutes by name); raises InvalidInput naming the field
    whose value is out of bounds, or an idle limit longer than its session's lifetime."""
    changes: dict[str, int] = {}
    for setting in MINUTES_SETTINGS:
        value = given.get(setting.name)
        if value is None:
            continue
        if problem := setting.problem(value):
            raise InvalidInput(
                f"{setting.label}: {setting.low} to {setting.high} minutes.",
                fields={setting.name: problem},
            )
        changes[setting.name] = value
    if problem_at := order_problem(session_minutes(organization) | changes):
        field, problem = problem_at
        raise InvalidInput(
            "A session cannot stay unused for longer than it may last.",
            fields={field: problem},
        )
    return dict(changes)


def _registration_changes(
    organization: Organization, registration: str | None, domains: list[str] | None
) -> dict[str, object]:
    """The registration settings to store; raises InvalidInput naming the bad value."""
    changes: dict[str, object] = {}
    if registration is not None:
        if problem := policy_problem(registration):
            raise InvalidInput(
                "That registration policy does not exist.", fields={"registration": problem}
            )
        changes["registration"] = registration
    if domains is not None:
        if problem := domains_problem(domains):
            raise InvalidInput(
                f"The registration domains are not valid: {problem}.",
                fields={"registration_domains": problem},
            )
        changes["registration_domains"] = domains
    policy = changes.get("registration", organization.settings.get("registration"))
    listed = changes.get("registration_domains", registration_domains(organization))
    if policy == RegistrationPolicy.DOMAINS.value and not listed:
        raise InvalidInput(
            "Registration open to listed domains needs at least one domain.",
            fields={"registration_domains": "is required when registration is open to domains"},
        )
    return changes
