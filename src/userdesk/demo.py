"""Realistic demo data, fast enough for a million users (ten million on PostgreSQL).

Teams, groups and the administrator go through the services; the bulk of users, their
links and their activity are written straight through the driver, since per-object ORM
work would take an hour at a million users: on SQLite in multi-row INSERTs, a person made
at a time; on PostgreSQL with COPY, chunks of people made at once with numpy.
"""

from __future__ import annotations

import importlib
import random
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, func, select, update
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import ADMINISTRATOR, AGENT, MEMBER, TEAM_ADMINISTRATOR, system_actor
from userdesk.audit import service as audit
from userdesk.audit.service import PastEvent
from userdesk.auth.secrets import generate_password, hash_token, new_token
from userdesk.availability import service as availability
from userdesk.availability.rules import DAYS
from userdesk.dashboard import service as dashboard
from userdesk.db import bulk
from userdesk.db.base import utcnow
from userdesk.db.session import Database
from userdesk.invitations import service as invitation_service
from userdesk.invitations.models import Invitation
from userdesk.invitations.schemas import InvitationCreate, Person
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.mail.models import OutboxMessage
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.organizations.service import invitation_ttl
from userdesk.users import service as users
from userdesk.users.models import User, UserRole
from userdesk.users.rules import CreatedVia, UserStatus
from userdesk.users.schemas import UserCreate

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
IN_A_TEAM = 0.6  # the share of people in a team
GROUPS_EACH = ((0, 35), (1, 40), (2, 18), (3, 7))  # how many groups a person is in
# The roles beside Member, each with the share of people up to it (Team Administrator only
# for people in a team).
ROLE_SHARES = ((ADMINISTRATOR.name, 0.0005), (TEAM_ADMINISTRATOR.name, 0.003), (AGENT.name, 0.015))
VERIFIED = 0.9  # the share of people with a verified email (PENDING_VERIFIED of Not Activated)
PENDING_VERIFIED = 0.2
VALIDATED = 0.85
BANNED_UNTIL = 0.5  # the share of bans with an end, 1 to 90 days away
HISTORY_DAYS = 180
PACE_MEDIAN = 0.4  # log of the median person's events per 28 days (1.5)
MAX_INTERVAL_DAYS = 22  # the longest a steady person's visits are apart, on average
BREAKS = 0.08  # the chance that the time before a visit was a break of weeks
TENURE_DAYS = 730
PENDING_DAYS = 45  # Not Activated users were added within this many days
CHUNK = 10_000
DEMO_ORG_SLUG = "demo"
DEMO_ADMIN_EMAIL = "admin@demo.example"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"  # as config's default: where `serve` listens

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
    copy: bool | None = None,
) -> DemoResult:
    """Add COUNT demo users with teams, groups, roles and months of activity.

    On PostgreSQL the rows stream in with COPY, generated a chunk at a time with numpy
    (`_copy_people`: ten million users in minutes); on SQLite, or with COPY False, they are
    made a person at a time and inserted in multi-row statements. The two follow the same
    rules (the constants above) with random generators of their own, so a seed makes the
    same people on one path, not across them."""
    org_id = organization.id
    teams = _ensure_named(db, Team, org_id, TEAMS)
    groups = _ensure_named(db, Group, org_id, GROUPS)
    roles = {r.name: r.id for r in db.scalars(select(Role).where(Role.organization_id == org_id))}
    taken = set(db.scalars(select(User.email_normalized).where(User.organization_id == org_id)))
    conn = db.connection()
    dialect = conn.dialect.name
    next_id = (db.scalar(select(func.max(User.id))) or 0) + 1
    people = _Batch(org_id, teams, groups, roles, taken, next_id, utcnow())
    if copy is None:
        copy = dialect == "postgresql"
    if copy:
        made, events = _copy_people(conn, people, count=count, seed=seed, progress=progress)
    else:
        made, events = _insert_people(conn, people, count=count, seed=seed, progress=progress)
    if dialect == "postgresql":
        conn.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))"
        )
    # Fresh statistics, so that the query planner knows the new distribution of the data.
    conn.exec_driver_sql("ANALYZE")
    return DemoResult(users=made, events=events)


@dataclass(frozen=True)
class _Batch:
    """What the people about to be added belong to: their organization, its teams', groups'
    and roles' ids, the emails taken in it (added to as people are made), the first id."""

    org_id: int
    teams: list[int]
    groups: list[int]
    roles: dict[str, int]
    taken: set[str]
    first_id: int
    now: datetime


def _insert_people(
    conn: Connection,
    batch: _Batch,
    *,
    count: int,
    seed: int,
    progress: Callable[[int], None] | None,
) -> tuple[int, int]:
    """The people a person at a time, in multi-row INSERTs (SQLite's path). Returns how
    many users and activity events were added."""
    rng = random.Random(seed)
    org_id, teams, groups, roles = batch.org_id, batch.teams, batch.groups, batch.roles
    sql_time = bulk.sql_time(conn.dialect.name)
    next_id = batch.first_id
    names = _names()
    now = batch.now
    made = events = 0
    for start in range(0, count, CHUNK):
        size = min(CHUNK, count - start)
        user_rows, group_rows, role_rows, event_rows = [], [], [], []
        for person in _people(rng, names, batch.taken, now, size):
            uid = next_id
            next_id += 1
            team_id = rng.choice(teams) if rng.random() < IN_A_TEAM else None
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
            for group_id in rng.sample(groups, k=_weighted(rng, GROUPS_EACH)):
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
    return made, events


# On PostgreSQL the demo's rows stream in with COPY, made a chunk at a time with numpy.
COPY_CHUNK = 50_000
SECOND_US = 1_000_000
HOUR_US = 3600 * SECOND_US
DAY_US = 24 * HOUR_US
NULL = "\\N"  # NULL in COPY's text format
COPY_USER_COLUMNS = (*USER_COLUMNS, "role_ids")
EVENT_COLUMNS = ("id", "organization_id", "user_id", "type", "occurred_at", "properties")
EVENT_KINDS = ("login", *PRODUCT_EVENTS)


def _copy_text(text: str) -> str:
    """TEXT as a field in COPY's text format: backslashes, tabs and line ends escaped."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_people(
    conn: Connection,
    batch: _Batch,
    *,
    count: int,
    seed: int,
    progress: Callable[[int], None] | None,
) -> tuple[int, int]:
    """The people with COPY (PostgreSQL's path), a chunk of COPY_CHUNK at a time, with the
    secondary indexes built after the rows when the load is at least as big as the table
    (`_bulk_load`). A thread makes the next chunk while this one is copied: numpy and the
    text on one core, PostgreSQL's COPY on the other (psycopg lets go of the GIL while it
    waits on the server). Returns how many users and activity events were added."""
    driver: Any = conn.connection.driver_connection  # psycopg's, in the same transaction
    cursor = driver.cursor()
    made = events = 0
    sequence = "pg_get_serial_sequence('activity_events', 'id')"
    first_event = cursor.execute(f"SELECT nextval({sequence})").fetchone()[0]
    with _bulk_load(cursor, adding=count), ThreadPoolExecutor(1, "demo-chunks") as maker:
        chunks = _chunks(batch, count=count, seed=seed, first_event=first_event)
        coming = maker.submit(next, chunks, None)
        while (rows := coming.result()) is not None:
            coming = maker.submit(next, chunks, None)  # the next chunk, made meanwhile
            for table, columns, text, _ in rows:
                if text:
                    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        copy.write(text)
            size = rows[0][3]
            made += size
            events += rows[-1][3]
            if progress:
                progress(size)
    if events:
        cursor.execute(f"SELECT setval({sequence}, %s)", (first_event + events - 1,))
    return made, events


def _chunks(
    batch: _Batch, *, count: int, seed: int, first_event: int
) -> Iterator[list[tuple[str, Sequence[str], str, int]]]:
    """COUNT people as the chunks `_copy_chunk` makes, in order, from one seeded generator
    (so a seed makes the same people however the chunks are consumed)."""
    import numpy as np  # here, not on top: numpy slows every command

    gen = np.random.default_rng(seed)
    names = _NameTables.load()
    for start in range(0, count, COPY_CHUNK):
        rows = _copy_chunk(
            gen,
            names,
            batch,
            first_id=batch.first_id + start,
            size=min(COPY_CHUNK, count - start),
            first_event=first_event,
        )
        first_event += rows[-1][3]
        yield rows


@contextmanager
def _bulk_load(cursor: Any, *, adding: int) -> Iterator[None]:
    """Around a load of ADDING users with their links and events. When the load is at
    least as big as the users table, the secondary indexes of the tables it fills (and
    their unique constraints but for primary keys and those foreign keys use) are dropped
    first and made again from their definitions after: one sort each, not a B-tree insert
    per row per index. For a superuser, triggers are off while the rows go in: the foreign
    keys' checks (the ids are made here, consistent by construction) and the one keeping
    users.role_ids, which the load fills itself. Until the transaction ends the tables stay
    locked against other sessions, which would find their indexes missing."""
    tables = ["users", "user_groups", "user_roles", "activity_events"]
    present = cursor.execute("SELECT count(*) FROM users").fetchone()[0]
    indexes: list[tuple[str, str]] = []
    constraints: list[tuple[str, str, str]] = []
    if adding >= present:
        constraints = cursor.execute(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c WHERE c.conrelid = ANY (%s::regclass[]) AND c.contype = 'u' "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint f "
            "WHERE f.contype = 'f' AND f.conindid = c.conindid)",
            (tables,),
        ).fetchall()
        for table, name, _ in constraints:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        indexes = cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = ANY (%s::regclass[]) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            (tables,),
        ).fetchall()
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
    superuser = cursor.execute("SELECT current_setting('is_superuser')").fetchone()[0] == "on"
    if superuser:
        before = cursor.execute("SELECT current_setting('session_replication_role')").fetchone()
        cursor.execute("SET LOCAL session_replication_role = replica")
    yield
    if superuser:
        cursor.execute("SELECT set_config('session_replication_role', %s, true)", before)
    if indexes or constraints:
        was = cursor.execute("SELECT current_setting('maintenance_work_mem')").fetchone()
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        for _, definition in indexes:
            cursor.execute(definition)
        for table, name, definition in constraints:
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        cursor.execute("SELECT set_config('maintenance_work_mem', %s, true)", was)


@dataclass(frozen=True)
class _NameTables:
    """The first and last names of each of LOCALES as numpy arrays: as COPY text, folded to
    ASCII (for the emails), and the first names' cumulative weights (None: all alike)."""

    firsts: list[Any]
    first_ascii: list[Any]
    first_weights: list[Any | None]
    lasts: list[Any]
    last_ascii: list[Any]

    @classmethod
    def load(cls) -> _NameTables:
        import numpy as np

        tables = cls([], [], [], [], [])
        every = _names()
        for locale, _ in LOCALES:
            firsts, weights, lasts = every[locale]
            tables.firsts.append(np.array([_copy_text(n) for n in firsts], dtype=object))
            tables.first_ascii.append(np.array([_ascii(n) for n in firsts], dtype=object))
            tables.first_weights.append(np.cumsum(weights, dtype=float) if weights else None)
            tables.lasts.append(np.array([_copy_text(n) for n in lasts], dtype=object))
            tables.last_ascii.append(np.array([_ascii(n) for n in lasts], dtype=object))
        return tables


def _odds(options: Sequence[tuple[Any, int]]) -> Any:
    import numpy as np

    weights = np.array([w for _, w in options], dtype=float)
    return weights / weights.sum()


def _copy_chunk(
    gen: Any,
    names: _NameTables,
    batch: _Batch,
    *,
    first_id: int,
    size: int,
    first_event: int,
) -> list[tuple[str, Sequence[str], str, int]]:
    """SIZE people from FIRST_ID on, as `_people`, `_activity`, the teams, groups and
    roles of `_insert_people` make them, with numpy: the (table, columns, COPY text, rows)
    of their users, group and role links and activity events (their ids from FIRST_EVENT
    on: no sequence call per row)."""
    import numpy as np

    n = size
    now = int(batch.now.timestamp() * SECOND_US)
    ids = np.arange(first_id, first_id + n, dtype=np.int64)

    # Names and emails (unique in the organization: a number after the name when taken).
    locale = gen.choice(len(LOCALES), size=n, p=_odds(LOCALES))
    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    first_ascii = np.empty(n, dtype=object)
    last_ascii = np.empty(n, dtype=object)
    for number in range(len(LOCALES)):
        where = np.flatnonzero(locale == number)
        weights = names.first_weights[number]
        if weights is None:
            pick = gen.integers(len(names.firsts[number]), size=where.size)
        else:
            pick = np.searchsorted(weights, gen.random(where.size) * weights[-1], side="right")
        first[where] = names.firsts[number][pick]
        first_ascii[where] = names.first_ascii[number][pick]
        pick = gen.integers(len(names.lasts[number]), size=where.size)
        last[where] = names.lasts[number][pick]
        last_ascii[where] = names.last_ascii[number][pick]
    domains = gen.integers(len(DOMAINS), size=n)
    taken = batch.taken
    emails = []
    for a, b, d in zip(first_ascii.tolist(), last_ascii.tolist(), domains.tolist(), strict=True):
        local, domain = f"{a}.{b}", DOMAINS[d]
        email, number = f"{local}@{domain}", 1
        while email in taken:
            number += 1
            email = f"{local}{number}@{domain}"
        taken.add(email)
        emails.append(email)

    # Statuses, with their reasons and times.
    statuses = [s for s, _ in STATUSES]
    status = gen.choice(len(statuses), size=n, p=_odds(STATUSES))
    pending = status == statuses.index(UserStatus.PENDING)
    created = now - gen.integers(TENURE_DAYS * 86400, size=n) * SECOND_US
    lately = now - gen.integers(PENDING_DAYS * 86400, size=n) * SECOND_US
    created = np.where(pending, lately, created)
    reason = np.full(n, NULL, dtype=object)
    changed_on = np.zeros(n, dtype=bool)
    for kind, reasons in REASONS.items():
        where = np.flatnonzero(status == statuses.index(kind))
        reason[where] = np.array(reasons, dtype=object)[gen.integers(len(reasons), size=where.size)]
        changed_on[where] = True
    changed = created + ((now - created) * gen.random(n)).astype(np.int64)
    until_on = (status == statuses.index(UserStatus.BANNED)) & (gen.random(n) < BANNED_UNTIL)
    until = now + gen.integers(1, 91, size=n) * DAY_US
    verified_on = gen.random(n) < np.where(pending, PENDING_VERIFIED, VERIFIED)
    verified = created + gen.integers(1, 73, size=n) * HOUR_US
    validated_on = gen.random(n) < VALIDATED
    via = gen.choice(len(CREATED_VIA), size=n, p=_odds(CREATED_VIA))

    # Teams, roles and groups.
    team_on = gen.random(n) < IN_A_TEAM
    team = np.array(batch.teams)[gen.integers(len(batch.teams), size=n)]
    roll = gen.random(n)
    role = np.full(n, batch.roles[MEMBER.name], dtype=np.int64)
    for name, share in reversed(ROLE_SHARES):  # the rarest last, so that it wins
        chosen = roll < share
        if name == TEAM_ADMINISTRATOR.name:
            chosen &= team_on
        role[chosen] = batch.roles[name]
    in_groups = gen.choice(len(GROUPS_EACH), size=n, p=_odds(GROUPS_EACH))
    in_groups = np.array([k for k, _ in GROUPS_EACH])[in_groups]
    order = np.argsort(gen.random((n, len(batch.groups))), axis=1)
    group_ids = np.array(batch.groups)
    group_users, group_links = [], []
    for place in range(int(in_groups.max(initial=0))):
        on = in_groups > place
        group_users.append(ids[on])
        group_links.append(group_ids[order[on, place]])

    # Activity, as `_activity`: the last visit, then visits back in time at a person's rhythm.
    start = np.maximum(created, now - HISTORY_DAYS * DAY_US)
    end = np.where(changed_on, changed, now)
    active = np.flatnonzero(~pending & (end > start))
    m = active.size
    start, end = start[active], end[active]
    roll = gen.random(m)
    quiet = np.where(
        roll < 0.01,
        gen.uniform(63, 120, m),
        np.where(roll < 0.22, gen.uniform(7, 62, m), gen.exponential(3, m)),
    )
    latest = end - (quiet * DAY_US).astype(np.int64)
    early = start + ((end - start) * gen.random(m) * 0.5).astype(np.int64)
    latest = np.where(latest <= start, early, latest)
    every = np.minimum(MAX_INTERVAL_DAYS, 28 / gen.lognormal(PACE_MEDIAN, 0.6, m))
    seen = np.full(n, -1, dtype=np.int64)
    seen[active] = latest
    event_users, event_kinds, event_times = [ids[active]], [np.zeros(m, np.int64)], [latest]
    at, going = latest.copy(), np.arange(m)
    for _ in range(59):
        if not going.size:
            break
        g = going.size
        breaks = gen.random(g) < BREAKS
        away = np.where(breaks, gen.uniform(20, 120, g), every[going] * gen.uniform(0.6, 1.25, g))
        moved = at[going] - (away * DAY_US).astype(np.int64)
        alive = moved > start[going]
        going = going[alive]
        at[going] = moved[alive]
        login = gen.random(going.size) < 0.35
        product = 1 + gen.integers(len(PRODUCT_EVENTS), size=going.size)
        event_users.append(ids[active[going]])
        event_kinds.append(np.where(login, 0, product))
        event_times.append(at[going])

    def times(values: Any, on: Any = None) -> list[str]:
        text = np.datetime_as_string(values.astype("datetime64[us]"), unit="us", timezone="UTC")
        shown: list[str] = (text if on is None else np.where(on, text, NULL)).tolist()
        return shown

    def rows(*columns: Sequence[str]) -> str:
        return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"

    org = [str(batch.org_id)] * n
    status_text = np.array([s.value for s in statuses], dtype=object)[status].tolist()
    via_text = np.array([v.value for v, _ in CREATED_VIA], dtype=object)[via].tolist()
    created_text = times(created)
    seen_text = times(seen, seen >= 0)
    users = rows(
        list(map(str, ids.tolist())),
        org,
        emails,
        emails,
        first.tolist(),
        last.tolist(),
        status_text,
        reason.tolist(),
        times(until, until_on),
        times(changed, changed_on),
        [NULL] * n,
        times(verified, verified_on),
        times(created, validated_on),
        seen_text,  # the latest visit is a sign-in
        seen_text,
        np.where(team_on, team.astype(str), NULL).tolist(),
        via_text,
        ["1"] * n,
        created_text,
        created_text,
        [f"{{{r}}}" for r in role.tolist()],
    )
    group_user = np.concatenate([np.zeros(0, np.int64), *group_users])
    group_link = np.concatenate([np.zeros(0, np.int64), *group_links])
    user_groups = rows(
        [str(batch.org_id)] * group_user.size,
        list(map(str, group_user.tolist())),
        list(map(str, group_link.tolist())),
    )
    user_roles = rows(org, list(map(str, ids.tolist())), list(map(str, role.tolist())))
    links = [
        ("users", COPY_USER_COLUMNS, users, n),
        ("user_groups", LINK_COLUMNS["user_groups"], user_groups, group_user.size),
        ("user_roles", LINK_COLUMNS["user_roles"], user_roles, n),
    ]
    event_user = np.concatenate(event_users)
    kinds = np.array(EVENT_KINDS, dtype=object)[np.concatenate(event_kinds)]
    event_count = event_user.size
    if not event_count:
        return [*links, ("activity_events", EVENT_COLUMNS, "", 0)]
    events = rows(
        list(map(str, range(first_event, first_event + event_count))),
        [str(batch.org_id)] * event_count,
        list(map(str, event_user.tolist())),
        kinds.tolist(),
        times(np.concatenate(event_times)),
        ["{}"] * event_count,
    )
    return [*links, ("activity_events", EVENT_COLUMNS, events, event_count)]


def _role_for(rng: random.Random, team_id: int | None) -> str:
    roll = rng.random()
    for name, share in ROLE_SHARES:
        if roll < share and (name != TEAM_ADMINISTRATOR.name or team_id is not None):
            return name
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
        if status is UserStatus.PENDING:  # invited or imported lately, not there yet
            created_at = now - timedelta(seconds=rng.randrange(PENDING_DAYS * 86400))
        reason = status_until = changed_at = None
        if status in REASONS:
            reason = rng.choice(REASONS[status])
            changed_at = created_at + (now - created_at) * rng.random()
            if status is UserStatus.BANNED and rng.random() < BANNED_UNTIL:
                status_until = now + timedelta(days=rng.randint(1, 90))
        verified = rng.random() < (PENDING_VERIFIED if status is UserStatus.PENDING else VERIFIED)
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
            validated_at=created_at if rng.random() < VALIDATED else None,
        )


def _activity(rng: random.Random, person: _Person, now: datetime) -> list[tuple[str, datetime]]:
    """Sign-ins and product events, each person at a pace of their own: most keep coming
    (their last visit hours or days ago), a fifth drift away (quiet for a week to two
    months), a few left months ago and a few never started. So each active user has a
    recency and a rhythm of their own, as the churn score reads them, and the most at risk
    are not a crowd tied at one probability. About seven events a person, as before: the
    demo's speed is the events' to write."""
    if person.status is UserStatus.PENDING:
        return []
    start = max(person.created_at, now - timedelta(days=HISTORY_DAYS))
    end = person.status_changed_at or now
    if end <= start:
        return []
    # One in a hundred left months ago, a fifth drift away (quiet a week to two months),
    # the others' last visit was hours or days ago.
    roll = rng.random()
    if roll < 0.01:
        quiet = rng.uniform(63, 120)
    elif roll < 0.22:
        quiet = rng.uniform(7, 62)
    else:
        quiet = rng.expovariate(1 / 3)
    last = end - timedelta(days=quiet)
    if last <= start:  # newer than their quiet: one visit, early on
        last = start + (end - start) * rng.random() * 0.5
    # Before the last visit, visits at a rhythm of their own since they came (a few people
    # every few days, most every week or three), now and then a break of weeks (a
    # holiday, a busy month) after which they came back: so a month's quiet says someone
    # may be going, and how likely, not that they are gone.
    every = min(MAX_INTERVAL_DAYS, 28 / rng.lognormvariate(PACE_MEDIAN, 0.6))
    activity = [("login", last)]
    at = last
    while len(activity) < 60:
        away = rng.uniform(20, 120) if rng.random() < BREAKS else every * rng.uniform(0.6, 1.25)
        at -= timedelta(days=away)
        if at <= start:
            break
        kind = "login" if rng.random() < 0.35 else rng.choice(PRODUCT_EVENTS)
        activity.append((kind, at))
    return activity


# The colleagues who did the months of admin work before the demo's admin arrived:
# (first name, last name, built-in role, team, business hours of an agent).
STAFF = (
    ("Priya", "Natarajan", ADMINISTRATOR.name, None, None),
    ("Jonas", "Weber", TEAM_ADMINISTRATOR.name, "Support EU", None),
    ("Lea", "Moreau", AGENT.name, "Support EU", ("Europe/Paris", "08:30", "17:00")),
    ("Sam", "Carter", AGENT.name, "Support US", ("America/New_York", "09:00", "18:00")),
)
AGENT_HOURS = (
    ("Europe/Berlin", "09:00", "17:30"),
    ("Europe/London", "08:00", "16:00"),
    ("America/Chicago", "08:00", "17:00"),
    ("Asia/Singapore", "09:00", "18:00"),
)
STATUS_ACTIONS = {
    UserStatus.DISABLED: "user.disabled",
    UserStatus.BANNED: "user.banned",
    UserStatus.TRASHED: "user.trashed",
    UserStatus.DELETED: "user.deleted",
}
CREATION_ACTIONS = {
    CreatedVia.ADMIN: "user.created",
    CreatedVia.INVITE: "user.invited",
    CreatedVia.IMPORT: "user.imported",
}


def create_demo_organization(
    db: Session,
    *,
    count: int,
    seed: int = 1,
    progress: Callable[[int], None] | None = None,
    base_url: str = DEFAULT_BASE_URL,
) -> DemoOrganization:
    """The demo organization with COUNT users, the invitations of those not there yet, the
    audit log of months of work by admin colleagues (agents with business hours among
    them), the emails of their latest work in the Mailbox (links to BASE_URL), and an
    Administrator with a new password.

    Its churn scoring is left to `score` (run after this transaction commits)."""
    organization = organizations.create_organization(db, slug=DEMO_ORG_SLUG, name="Demo Org")
    result = populate(db, organization=organization, count=count, seed=seed, progress=progress)
    add_history(db, organization=organization, seed=seed)
    password = generate_password()
    admin, _ = users.create_admin(
        db,
        actor=system_actor(organization.id, "demo setup"),
        email=DEMO_ADMIN_EMAIL,
        password=password,
        first_name="Ada",
        last_name="Admin",
    )
    _agent_hours(db, organization=organization, admin=admin, seed=seed)
    _staff_sign_ins(db, organization=organization, admin=admin, seed=seed)
    send_first_emails(db, organization=organization, base_url=base_url)
    return DemoOrganization(organization, DEMO_ADMIN_EMAIL, password, result)


@dataclass(frozen=True)
class _Staff:
    id: int
    name: str
    email: str
    role: str
    team_id: int | None


def _add_staff(db: Session, organization: Organization, since: datetime) -> list[_Staff]:
    """The admin colleagues, there since SINCE (their creation is the log's first event)."""
    roles = {
        r.name: r for r in db.scalars(select(Role).where(Role.organization_id == organization.id))
    }
    teams = {
        t.name: t.id
        for t in db.scalars(select(Team).where(Team.organization_id == organization.id))
    }
    staff = []
    for first, last, role, team, _ in STAFF:
        email = f"{_ascii(first)}.{_ascii(last)}@{DEMO_ADMIN_EMAIL.split('@')[1]}"
        person = User(
            organization_id=organization.id,
            email=email,
            email_normalized=email,
            first_name=first,
            last_name=last,
            status=UserStatus.ACTIVE.value,
            created_via=CreatedVia.ADMIN.value,
            email_verified_at=since,
            validated_at=since,
            team_id=teams.get(team) if team else None,
            created_at=since,
            updated_at=since,
        )
        db.add(person)
        db.flush()
        db.add(UserRole(organization_id=organization.id, user_id=person.id, role_id=roles[role].id))
        staff.append(_Staff(person.id, f"{first} {last}", email, role, person.team_id))
    db.flush()
    return staff


def add_history(db: Session, *, organization: Organization, seed: int = 1) -> int:
    """What the demo's admins did before now, consistent with the users' statuses: each
    user's creation (added, invited, imported), the invitations of those not there yet
    (some pending, some resent, some expired), the accepted ones, and each disabling,
    ban, trashing and deletion with its reason, all in the hash-chained audit log in time
    order. Returns how many audit events were written."""
    rng = random.Random(seed * 7919)
    org_id = organization.id
    now = utcnow()
    ttl = invitation_ttl(organization)
    people = db.execute(
        select(
            User.id,
            User.email,
            User.created_at,
            User.created_via,
            User.status,
            User.status_reason,
            User.status_changed_at,
            User.status_until,
            User.team_id,
        )
        .where(User.organization_id == org_id)
        .order_by(User.id)
    ).all()
    if not people:
        return 0
    since = min(p.created_at for p in people) - timedelta(days=3)
    staff = _add_staff(db, organization, since)
    setup = "demo setup"
    events: list[PastEvent] = [
        PastEvent(
            since + timedelta(minutes=i),
            None,
            setup,
            "user.created",
            "user",
            str(s.id),
            {"email": s.email, "roles": [s.role]},
        )
        for i, s in enumerate(staff)
    ]
    admins = [s for s in staff if s.role != AGENT.name]

    def actor_for(team_id: int | None) -> _Staff:
        lead = next((s for s in admins if s.team_id is not None and s.team_id == team_id), None)
        return lead if lead is not None and rng.random() < 0.7 else admins[0]

    invitations: list[tuple[Invitation, list[datetime]]] = []
    for p in people:
        via = CreatedVia(p.created_via)
        by = actor_for(p.team_id)
        status = UserStatus(p.status)
        invited = via is CreatedVia.INVITE or (
            status is UserStatus.PENDING and via is not CreatedVia.SIGNUP
        )
        if via in CREATION_ACTIONS:
            changes: dict[str, Any] = {"email": p.email}
            if invited:
                changes["email_sent"] = True
            events.append(
                PastEvent(
                    p.created_at, by.id, by.name, CREATION_ACTIONS[via], "user", str(p.id), changes
                )
            )
        if invited:
            sent = [p.created_at]
            if status is UserStatus.PENDING:
                if now - p.created_at > ttl and rng.random() < 0.45:  # resent: live again
                    if rng.random() < 0.3:
                        sent.append(p.created_at + (now - ttl - p.created_at) * rng.random())
                    sent.append(now - ttl * (0.05 + 0.9 * rng.random()))
                elif rng.random() < 0.15:  # resent, expired again or still live
                    sent.append(p.created_at + (now - p.created_at) * rng.random())
            accepted = None
            if status is not UserStatus.PENDING:
                accepted = min(now, p.created_at + timedelta(hours=rng.uniform(0.2, 90)))
                if p.status_changed_at is not None:
                    accepted = min(accepted, p.status_changed_at)
            invitation = Invitation(
                organization_id=org_id,
                user_id=p.id,
                email=p.email,
                token_hash=hash_token(new_token()),
                status="accepted" if accepted else "pending",
                expires_at=sent[-1] + ttl,
                invited_by_id=by.id,
                invited_by_name=by.name,
                sent_at=sent[-1],
                resend_count=len(sent) - 1,
                accepted_at=accepted,
                created_at=sent[0],
            )
            invitations.append((invitation, sent))
        if status in STATUS_ACTIONS and p.status_changed_at is not None:
            move: dict[str, Any] = {"status": {"from": UserStatus.ACTIVE.value, "to": status.value}}
            if p.status_until is not None:
                move["until"] = p.status_until.isoformat()
            events.append(
                PastEvent(
                    p.status_changed_at,
                    by.id,
                    by.name,
                    STATUS_ACTIONS[status],
                    "user",
                    str(p.id),
                    move,
                    reason=p.status_reason,
                )
            )
    invitations.sort(key=lambda pair: pair[1][0])  # ids in the order they were sent
    db.add_all([invitation for invitation, _ in invitations])
    db.flush()
    for invitation, sent in invitations:
        for n, at in enumerate(sent[1:], start=1):
            by = next(s for s in staff if s.id == invitation.invited_by_id)
            events.append(
                PastEvent(
                    at,
                    by.id,
                    by.name,
                    "invitation.resent",
                    "user",
                    str(invitation.user_id),
                    {"invitation": str(invitation.id), "resend_count": n},
                )
            )
    # Who changed each status, as the log says.
    changed_by = {
        int(e.target_id or 0): e.actor_user_id
        for e in events
        if e.action in STATUS_ACTIONS.values()
    }
    for user_id, actor_id in changed_by.items():
        db.execute(update(User).where(User.id == user_id).values(status_changed_by_id=actor_id))
    events.sort(key=lambda e: e.occurred_at)
    return audit.record_history(db, organization_id=org_id, events=events)


# The demo admins' latest work, whose emails a new admin finds in the Mailbox: agents
# invited to the support teams (first name, last name, team) and a customer just added.
NEW_AGENTS = (("Mara", "Lindqvist", "Support EU"), ("Tomas", "Herrera", "Support US"))
WELCOMED = ("Noah", "Becker", "noah.becker@northwind.example")


def send_first_emails(db: Session, *, organization: Organization, base_url: str) -> int:
    """The emails of the demo admins' latest work, through the services the console calls
    (so the Mailbox, the audit log and the users agree): invitations to new support
    agents, a welcome to a customer just added, a new verification link to a user who has
    not confirmed their address, and an expired invitation sent again. A handful,
    whatever the demo's size. Returns how many emails were queued."""
    org_id = organization.id
    domain = DEMO_ADMIN_EMAIL.split("@")[1]
    lead = db.scalars(
        select(User).where(
            User.organization_id == org_id,
            User.email == f"{_ascii(STAFF[0][0])}.{_ascii(STAFF[0][1])}@{domain}",
        )
    ).one()
    actor = access.actor_for_user(db, lead)
    queued = select(func.count()).where(OutboxMessage.organization_id == org_id)
    before = db.scalar(queued) or 0
    agent_role = db.scalars(
        select(Role.id).where(Role.organization_id == org_id, Role.name == AGENT.name)
    ).one()
    named = db.execute(select(Team.name, Team.id).where(Team.organization_id == org_id))
    teams = {row.name: row.id for row in named}
    for first, last, team in NEW_AGENTS:
        person = Person(email=f"{first}.{last}@{domain}".lower(), first_name=first, last_name=last)
        invitation_service.invite(
            db,
            actor=actor,
            data=InvitationCreate(
                people=[person], team_id=str(teams[team]), role_ids=[str(agent_role)]
            ),
            base_url=base_url,
        )
    first, last, email = WELCOMED
    users.create_user(
        db,
        actor=actor,
        data=UserCreate(email=email, first_name=first, last_name=last, send_welcome_email=True),
        base_url=base_url,
    )
    unverified = db.scalar(
        select(User.id)
        .join(UserRole, UserRole.user_id == User.id)
        .join(Role, Role.id == UserRole.role_id)
        .where(
            User.organization_id == org_id,
            User.status == UserStatus.ACTIVE.value,
            User.email_verified_at.is_(None),
            Role.name == MEMBER.name,
        )
        .order_by(User.id.desc())
        .limit(1)
    )
    if unverified is not None:
        users.send_verification_email(db, actor=actor, user_id=unverified, base_url=base_url)
    expired = db.scalar(
        select(Invitation.user_id)
        .join(User, User.id == Invitation.user_id)
        .where(
            Invitation.organization_id == org_id,
            Invitation.status == "pending",
            Invitation.expires_at < utcnow(),
            User.status == UserStatus.PENDING.value,
        )
        .order_by(Invitation.id.desc())
        .limit(1)
    )
    if expired is not None:
        invitation_service.resend_for_user(db, actor=actor, user_id=expired, base_url=base_url)
    return (db.scalar(queued) or 0) - before


def _staff_sign_ins(db: Session, *, organization: Organization, admin: User, seed: int) -> None:
    """The admin colleagues sign in most working days (they are no churn risk, and no
    crowd at the top of the dashboard's list); the demo's admin has signed in once, now."""
    rng = random.Random(seed * 15485863)
    now = utcnow()
    staff = db.scalars(
        select(User).where(
            User.organization_id == organization.id,
            User.email.like(f"%@{DEMO_ADMIN_EMAIL.split('@')[1]}"),
            User.status == UserStatus.ACTIVE.value,
            User.created_via == CreatedVia.ADMIN.value,
            User.id != admin.id,
        )
    ).all()
    events: list[tuple[int, int, str, Any, str]] = []
    sql_time = bulk.sql_time(db.connection().dialect.name)
    for person in [*staff, admin]:
        at = now - timedelta(hours=rng.uniform(0.2, 20)) if person is not admin else now
        first = max(person.created_at, now - timedelta(days=HISTORY_DAYS))
        person.last_login_at = person.last_seen_at = at
        while at > first:
            events.append((organization.id, person.id, "login", sql_time(at), "{}"))
            at -= timedelta(days=rng.uniform(0.8, 3))
    db.flush()
    bulk.insert_rows(
        db.connection(),
        "activity_events",
        ("organization_id", "user_id", "type", "occurred_at", "properties"),
        events,
    )


def _agent_hours(db: Session, *, organization: Organization, admin: User, seed: int) -> None:
    """Business hours for the support agents (theirs, through the availability service)."""
    rng = random.Random(seed * 104729)
    actor = access.actor_for_user(db, admin)
    agents = db.scalars(
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .join(Role, Role.id == UserRole.role_id)
        .where(
            User.organization_id == organization.id,
            Role.name == AGENT.name,
            User.status == UserStatus.ACTIVE.value,
        )
        .order_by(User.id)
    ).all()
    named = {f"{first} {last}": hours for first, last, _, _, hours in STAFF if hours}
    for agent in agents:
        hours = named.get(agent.name) or rng.choice(AGENT_HOURS)
        zone, start, end = hours
        weekly = {day: [[start, end]] for day in DAYS[:5]}
        availability.set_agent_hours(
            db, actor=actor, user_id=agent.id, data={"time_zone": zone, "weekly": weekly}
        )


def score(database: Database, *, organization_id: int, base_url: str) -> int:
    """Score the organization's churn now, a step per transaction as the worker would,
    and count the dashboard's figures, so that the dashboard is whole on first sight.
    Returns the run's id."""
    from userdesk.churn import scoring  # here, not on top: numpy slows `userdesk demo`

    with database.unit_of_work() as db:
        job_id = scoring.start(db, actor=system_actor(organization_id, "demo setup")).id
    finished = False
    while not finished:
        with database.unit_of_work() as db:
            finished = jobs.step(db, job=db.get_one(Job, job_id), base_url=base_url)
    with database.unit_of_work() as db:
        run_id = int(db.get_one(Job, job_id).params["run_id"])
        dashboard.record_day(db, organization_id, utcnow().date())
    return run_id
