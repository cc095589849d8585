"""Realistic demo data, fast enough for a million users.

Teams, groups and the administrator go through the services; the bulk of users, their
links and their activity are written with the driver's executemany in chunks, since
per-object ORM work would take an hour at a million users.
"""

from __future__ import annotations

import importlib
import random
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import ADMINISTRATOR, AGENT, MEMBER, TEAM_ADMINISTRATOR, system_actor
from userdesk.auth.secrets import generate_password
from userdesk.db import bulk
from userdesk.db.base import utcnow
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.users import service as users
from userdesk.users.models import User
from userdesk.users.rules import CreatedVia, UserStatus

TEAMS = ("Support EU", "Support US", "Sales", "Success", "Engineering", "Billing")
GROUPS = ("Beta testers", "VIP", "Newsletter", "Enterprise", "Trial", "Partners", "Early adopters")
DOMAINS = ("example.com", "example.org", "example.net", "mail.example", "acme.example")
LOCALES = (("en_US", 60), ("de_DE", 12), ("fr_FR", 10), ("es_ES", 8), ("it_IT", 5), ("nl_NL", 5))
STATUSES = (
    (UserStatus.ACTIVE, 72),
    (UserStatus.PENDING, 12),
    (UserStatus.DISABLED, 5),
    (UserStatus.BANNED, 3),
    (UserStatus.TRASHED, 3),
    (UserStatus.DELETED, 5),
)
CREATED_VIA = (
    (CreatedVia.ADMIN, 30),
    (CreatedVia.INVITE, 40),
    (CreatedVia.IMPORT, 20),
    (CreatedVia.SIGNUP, 10),
)
REASONS = {
    UserStatus.DISABLED: ("Left the company", "Contract ended", "Requested by their manager"),
    UserStatus.BANNED: ("Abusive messages", "Spam", "Payment fraud"),
    UserStatus.TRASHED: ("Duplicate account", "Test account"),
    UserStatus.DELETED: ("Asked to be deleted", "Account closed"),
}
PRODUCT_EVENTS = (
    "dashboard.viewed",
    "ticket.created",
    "ticket.replied",
    "report.exported",
    "file.uploaded",
    "message.sent",
)
HISTORY_DAYS = 180
TENURE_DAYS = 730
CHUNK = 10_000
DEMO_ORG_SLUG = "demo"
DEMO_ADMIN_EMAIL = "admin@demo.example"

Named = TypeVar("Named", Team, Group)


@dataclass(frozen=True)
class DemoResult:
    users: int
    events: int


@dataclass(frozen=True)
class DemoOrganization:
    organization: Organization
    admin_email: str
    admin_password: str
    result: DemoResult


def _names() -> dict[str, tuple[list[str], list[int] | None, list[str]]]:
    names: dict[str, tuple[list[str], list[int] | None, list[str]]] = {}
    for locale, _ in LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        first = provider.first_names
        if isinstance(first, dict):
            names[locale] = (list(first), [int(w * 1000) for w in first.values()], [])
        else:
            names[locale] = (list(first), None, [])
        last = provider.last_names
        names[locale][2].extend(last if not isinstance(last, dict) else list(last))
    return names


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _weighted(rng: random.Random, options: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


LINK_COLUMNS = {
    "user_groups": ("organization_id", "user_id", "group_id"),
    "user_roles": ("organization_id", "user_id", "role_id"),
}
USER_COLUMNS = (
    "id",
    "organization_id",
    "email",
    "email_normalized",
    "first_name",
    "last_name",
    "status",
    "status_reason",
    "status_until",
    "status_changed_at",
    "previous_status",
    "email_verified_at",
    "validated_at",
    "last_login_at",
    "last_seen_at",
    "team_id",
    "created_via",
    "version",
    "created_at",
    "updated_at",
)


def populate(
    db: Session,
    *,
    organization: Organization,
    count: int,
    seed: int = 1,
    progress: Callable[[int], None] | None = None,
) -> DemoResult:
    """Add COUNT demo users with teams, groups, roles and months of activity."""
    rng = random.Random(seed)
    org_id = organization.id
    teams = _ensure_named(db, Team, org_id, TEAMS)
    groups = _ensure_named(db, Group, org_id, GROUPS)
    roles = {r.name: r.id for r in db.scalars(select(Role).where(Role.organization_id == org_id))}
    taken = set(db.scalars(select(User.email_normalized).where(User.organization_id == org_id)))
    conn = db.connection()
    dialect = conn.dialect.name
    sql_time = bulk.sql_time(dialect)
    next_id = (db.scalar(select(func.max(User.id))) or 0) + 1
    names = _names()
    now = utcnow()
    made = events = 0
    for start in range(0, count, CHUNK):
        size = min(CHUNK, count - start)
        user_rows, group_rows, role_rows, event_rows = [], [], [], []
        for person in _people(rng, names, taken, now, size):
            uid = next_id
            next_id += 1
            team_id = rng.choice(teams) if rng.random() < 0.6 else None
            activity = _activity(rng, person, now)
            logins = [t for kind, t in activity if kind == "login"]
            user_rows.append(
                (
                    uid,
                    org_id,
                    person.email,
                    person.email,
                    person.first_name,
                    person.last_name,
                    person.status.value,
                    person.reason,
                    sql_time(person.status_until),
                    sql_time(person.status_changed_at),
                    None,
                    sql_time(person.verified_at),
                    sql_time(person.validated_at),
                    sql_time(max(logins) if logins else None),
                    sql_time(max(t for _, t in activity) if activity else None),
                    team_id,
                    person.created_via.value,
                    1,
                    sql_time(person.created_at),
                    sql_time(person.created_at),
                )
            )
            for group_id in rng.sample(groups, k=rng.choices((0, 1, 2, 3), (35, 40, 18, 7))[0]):
                group_rows.append((org_id, uid, group_id))
            role_rows.append((org_id, uid, roles[_role_for(rng, team_id)]))
            for kind, when in activity:
                event_rows.append((org_id, uid, kind, sql_time(when), "{}"))
        bulk.insert_rows(conn, "users", USER_COLUMNS, user_rows)
        bulk.insert_rows(
            conn, "user_groups", ("organization_id", "user_id", "group_id"), group_rows
        )
        bulk.insert_rows(conn, "user_roles", ("organization_id", "user_id", "role_id"), role_rows)
        bulk.insert_rows(
            conn,
            "activity_events",
            ("organization_id", "user_id", "type", "occurred_at", "properties"),
            event_rows,
        )
        made += size
        events += len(event_rows)
        if progress:
            progress(size)
    if dialect == "postgresql":
        conn.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))"
        )
    # Fresh statistics, so that the query planner knows the new distribution of the data.
    conn.exec_driver_sql("ANALYZE")
    return DemoResult(users=made, events=events)


def _role_for(rng: random.Random, team_id: int | None) -> str:
    roll = rng.random()
    if roll < 0.0005:
        return ADMINISTRATOR.name
    if roll < 0.003 and team_id is not None:
        return TEAM_ADMINISTRATOR.name
    if roll < 0.015:
        return AGENT.name
    return MEMBER.name


def _ensure_named(db: Session, model: type[Named], org_id: int, names: Sequence[str]) -> list[int]:
    rows = db.scalars(select(model).where(model.organization_id == org_id)).all()
    existing = {row.name: row.id for row in rows}
    for name in names:
        if name not in existing:
            row = model(organization_id=org_id, name=name)
            db.add(row)
            db.flush()
            existing[name] = row.id
    return [existing[name] for name in names]


@dataclass
class _Person:
    first_name: str
    last_name: str
    email: str
    status: UserStatus
    reason: str | None
    status_until: datetime | None
    status_changed_at: datetime | None
    created_at: datetime
    created_via: CreatedVia
    verified_at: datetime | None
    validated_at: datetime | None


def _people(
    rng: random.Random,
    names: dict[str, tuple[list[str], list[int] | None, list[str]]],
    taken: set[str],
    now: datetime,
    count: int,
) -> Iterator[_Person]:
    for _ in range(count):
        locale = _weighted(rng, LOCALES)
        firsts, weights, lasts = names[locale]
        first = rng.choices(firsts, weights=weights)[0] if weights else rng.choice(firsts)
        last = rng.choice(lasts)
        local = f"{_ascii(first)}.{_ascii(last)}"
        domain = rng.choice(DOMAINS)
        email = f"{local}@{domain}"
        n = 1
        while email in taken:
            n += 1
            email = f"{local}{n}@{domain}"
        taken.add(email)
        created_at = now - timedelta(seconds=rng.randrange(TENURE_DAYS * 86400))
        status = _weighted(rng, STATUSES)
        reason = status_until = changed_at = None
        if status in REASONS:
            reason = rng.choice(REASONS[status])
            changed_at = created_at + (now - created_at) * rng.random()
            if status is UserStatus.BANNED and rng.random() < 0.5:
                status_until = now + timedelta(days=rng.randint(1, 90))
        verified = rng.random() < (0.2 if status is UserStatus.PENDING else 0.9)
        yield _Person(
            first_name=first,
            last_name=last,
            email=email,
            status=status,
            reason=reason,
            status_until=status_until,
            status_changed_at=changed_at,
            created_at=created_at,
            created_via=_weighted(rng, CREATED_VIA),
            verified_at=created_at + timedelta(hours=rng.randint(1, 72)) if verified else None,
            validated_at=created_at if rng.random() < 0.85 else None,
        )


def _activity(rng: random.Random, person: _Person, now: datetime) -> list[tuple[str, datetime]]:
    """Sign-ins and product events: engaged people often, fading ones less, some never."""
    if person.status is UserStatus.PENDING or rng.random() < 0.08:
        return []
    start = max(person.created_at, now - timedelta(days=HISTORY_DAYS))
    end = person.status_changed_at or now
    if end <= start:
        return []
    # A quarter of people fade out: their activity stops some weeks before the end.
    if rng.random() < 0.25:
        end = max(start, end - timedelta(days=rng.randint(20, 120)))
    span = (end - start).total_seconds()
    count = min(60, int(rng.expovariate(1 / 6)) + 1)
    activity = []
    for _ in range(count):
        when = start + timedelta(seconds=span * rng.random() ** 0.7)
        kind = "login" if rng.random() < 0.35 else rng.choice(PRODUCT_EVENTS)
        activity.append((kind, when))
    return activity


def create_demo_organization(
    db: Session, *, count: int, seed: int = 1, progress: Callable[[int], None] | None = None
) -> DemoOrganization:
    """The demo organization with COUNT users and an Administrator with a new password."""
    organization = organizations.create_organization(db, slug=DEMO_ORG_SLUG, name="Demo Org")
    password = generate_password()
    users.create_admin(
        db,
        actor=system_actor(organization.id, "demo setup"),
        email=DEMO_ADMIN_EMAIL,
        password=password,
        first_name="Ada",
        last_name="Admin",
    )
    result = populate(db, organization=organization, count=count, seed=seed, progress=progress)
    return DemoOrganization(organization, DEMO_ADMIN_EMAIL, password, result)
