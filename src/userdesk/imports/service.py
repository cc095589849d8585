"""Importing users from CSV: a draft (the file and a guessed mapping of its columns),
then a job that goes through the rows in batches, each batch in one transaction.

A dry run reports every row's fate without writing. A real run creates each valid
row's user as Not Activated, with an invitation (emailed on request). An email already
in the organization is reported as existing, so the same file twice creates nobody twice;
a crash loses at most the batch in flight, which runs again from the job's cursor.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import Actor, Permission, missing_to_grant
from userdesk.audit import service as audit
from userdesk.db import bulk
from userdesk.db.base import utcnow
from userdesk.errors import InvalidInput, NotFound
from userdesk.imports import rules
from userdesk.invitations import service as invitations
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.users.models import User
from userdesk.users.rules import (
    CreatedVia,
    UserStatus,
    email_problem,
    name_problem,
    normalize_email,
)

KIND = "users.import"
USER_COLUMNS = (
    "organization_id",
    "email",
    "email_normalized",
    "first_name",
    "last_name",
    "team_id",
    "status",
    "created_via",
    "version",
    "created_at",
    "updated_at",
)
PENDING, VIA_IMPORT = UserStatus.PENDING.value, CreatedVia.IMPORT.value
BATCH = 5000
MAX_BYTES = 20 * 1024 * 1024


def draft(db: Session, *, actor: Actor, filename: str, content: bytes) -> Job:
    """Keep an uploaded file as a draft import, with a guessed mapping of its columns.

    Raises:
        PermissionDenied: the actor may not import users.
        InvalidInput: the file is too large, not UTF-8, or has no header row.
    """
    access.require(actor, Permission.USERS_IMPORT)
    if len(content) > MAX_BYTES:
        raise InvalidInput(
            "The file is too large.", fields={"file": f"is over {MAX_BYTES // 2**20} MB"}
        )
    try:
        text = content.decode("utf-8-sig")
        columns = rules.header(text)
    except UnicodeDecodeError:
        raise InvalidInput(
            "The file is not UTF-8 text.", fields={"file": "is not UTF-8 text"}
        ) from None
    except rules.FileProblem as problem:
        raise InvalidInput(str(problem), fields={"file": str(problem)}) from None
    job = jobs.create(
        db,
        actor=actor,
        kind=KIND,
        params={
            "filename": filename,
            "csv": text,
            "columns": columns,
            "mapping": rules.guess_mapping(columns),
            "dry_run": True,
            "send": False,
        },
        total=0,
    )
    job.status = "draft"
    db.flush()
    return job


def start(
    db: Session,
    *,
    actor: Actor,
    job_id: int,
    mapping: dict[str, str] | None = None,
    dry_run: bool = True,
    send_invitations: bool = False,
) -> Job:
    """Queue a draft import (as a dry run, or for real) with a mapping of its columns.

    Raises:
        PermissionDenied: the actor may not import users.
        NotFound: no such draft of the actor's organization.
        InvalidInput: the mapping lacks the email column or names a column not in the file.
    """
    access.require(actor, Permission.USERS_IMPORT)
    job = jobs.get(db, actor=actor, job_id=job_id)
    if job.kind != KIND or job.status not in ("draft", "done"):
        raise NotFound(f"No import {job_id} to start.", code="import.not_found")
    chosen = {
        f: c for f, c in (mapping or job.params["mapping"]).items() if f in rules.FIELDS and c
    }
    if problem := rules.mapping_problem(chosen, job.params["columns"]):
        raise InvalidInput(problem, fields={"mapping": problem})
    job.params = {**job.params, "mapping": chosen, "dry_run": dry_run, "send": send_invitations}
    job.total = len(_rows(job.id, job.params["csv"], tuple(sorted(chosen.items()))))
    job.status, job.cursor, job.done, job.failed = "queued", 0, 0, 0
    job.problems, job.finished_at = [], None
    jobs.forget_items(db, job)
    db.flush()
    return job


@lru_cache(maxsize=4)
def _rows(job_id: int, text: str, mapping: tuple[tuple[str, str], ...]) -> list[rules.Row]:
    return rules.rows(text, dict(mapping))


@lru_cache(maxsize=4)
def _first_rows(job_id: int, text: str, mapping: tuple[tuple[str, str], ...]) -> dict[str, int]:
    """Each email's first row in the file (found once per job, not once per batch)."""
    first: dict[str, int] = {}
    for row in _rows(job_id, text, mapping):
        first.setdefault(normalize_email(row.values.get("email", "")), row.number)
    return first


def _step(db: Session, job: Job, actor: Actor, base_url: str) -> bool:
    params = job.params
    rows = _rows(job.id, params["csv"], tuple(sorted(params["mapping"].items())))
    batch = rows[job.cursor : job.cursor + BATCH]
    org = actor.organization_id
    names: dict[Any, dict[str, Any]] = {
        Team: _by_name(db.scalars(select(Team).where(Team.organization_id == org))),
        Group: _by_name(db.scalars(select(Group).where(Group.organization_id == org))),
        Role: _by_name(db.scalars(select(Role).where(Role.organization_id == org))),
    }
    emails = [normalize_email(r.values.get("email", "")) for r in batch]
    existing = set(
        db.scalars(
            select(User.email_normalized).where(
                User.organization_id == org, User.email_normalized.in_(emails)
            )
        )
    )
    first = _first_rows(job.id, params["csv"], tuple(sorted(params["mapping"].items())))
    scope = actor.team_scope(Permission.USERS_IMPORT)
    success = "would be created" if params["dry_run"] else "created"
    fates: list[dict[str, Any]] = []
    created = 0
    valid: list[rules.Row] = []
    for row in batch:
        email = row.values.get("email", "")
        if fate := _fate(actor, scope, row, names, existing, first):
            fates.append({"row": row.number, "email": email, "fate": fate[0], "detail": fate[1]})
        else:
            fates.append({"row": row.number, "email": email, "fate": success})
            valid.append(row)
    if valid and not params["dry_run"]:
        _create(db, actor, valid, names, params["send"], base_url)
        created = len(valid)
    jobs.record_items(db, job, fates)
    job.done += len(valid)
    job.failed += len(batch) - len(valid)
    job.cursor += len(batch)
    if created:
        audit.record(
            db,
            actor=actor,
            action="users.imported",
            target_type="import",
            target_id=job.id,
            changes={
                "rows": f"{batch[0].number}-{batch[-1].number}",
                "created": created,
                "file": params["filename"],
            },
        )
    return job.cursor >= len(rows)


def _by_name(rows: Any) -> dict[str, Any]:
    return {row.name.lower(): row for row in rows}


def _fate(
    actor: Actor,
    scope: frozenset[int] | None,
    row: rules.Row,
    names: dict[Any, dict[str, Any]],
    existing: set[str],
    first: dict[str, int],
) -> tuple[str, str] | None:
    """(fate, why) for a row that will not be created; None for one that will."""
    email = row.values.get("email", "")
    if problem := email_problem(email):
        return ("invalid", f"email {problem}")
    key = normalize_email(email)
    if key in existing:
        return ("exists", f"{email} is in the organization already")
    if first[key] != row.number:
        return ("invalid", f"{email} is also on row {first[key]}")
    for field in ("first_name", "last_name"):
        if problem := name_problem(row.values.get(field, "")):
            return ("invalid", f"{field.replace('_', ' ')} {problem}")
    team = row.values.get("team", "")
    if team and team.lower() not in names[Team]:
        return ("invalid", f"unknown team '{team}'")
    outside = not team or names[Team][team.lower()].id not in (scope or ())
    if scope is not None and outside and not (not team and len(scope) == 1):
        return ("invalid", "you may only import into your own team")
    for field, model in (("groups", Group), ("roles", Role)):
        for name in rules.split_list(row.values.get(field, "")):
            if name.lower() not in names[model]:
                return ("invalid", f"unknown {field[:-1]} '{name}'")
            if model is Role and (
                missing := missing_to_grant(actor, names[Role][name.lower()].permissions)
            ):
                return ("invalid", f"you cannot grant '{name}' (it takes {', '.join(missing)})")
    return None


def _create(
    db: Session,
    actor: Actor,
    rows: list[rules.Row],
    names: dict[Any, dict[str, Any]],
    send: bool,
    base_url: str,
) -> None:
    """Create the users of ROWS, their links and invitations: a few statements a batch."""
    scope = actor.team_scope(Permission.USERS_IMPORT)
    default_team = next(iter(scope)) if scope is not None and len(scope) == 1 else None
    org = actor.organization_id
    conn = db.connection()
    now = bulk.sql_time(conn.dialect.name)(utcnow())
    people = [
        (
            row.values["email"],
            normalize_email(row.values["email"]),
            row.values.get("first_name", ""),
            row.values.get("last_name", ""),
            names[Team][row.values["team"].lower()].id if row.values.get("team") else default_team,
        )
        for row in rows
    ]
    bulk.insert_rows(
        conn,
        "users",
        USER_COLUMNS,
        [
            (org, email, key, first, last, team, PENDING, VIA_IMPORT, 1, now, now)
            for email, key, first, last, team in people
        ],
    )
    id_of: dict[str, int] = dict(
        db.execute(
            select(User.email_normalized, User.id).where(
                User.organization_id == org,
                User.email_normalized.in_([key for _, key, _, _, _ in people]),
            )
        ).all()
    )
    ids = [id_of[key] for _, key, _, _, _ in people]
    groups, roles = [], []
    for row, user_id in zip(rows, ids, strict=True):
        for name in rules.split_list(row.values.get("groups", "")):
            groups.append((org, user_id, names[Group][name.lower()].id))
        for name in rules.split_list(row.values.get("roles", "")):
            roles.append((org, user_id, names[Role][name.lower()].id))
    bulk.insert_rows(conn, "user_groups", ("organization_id", "user_id", "group_id"), groups)
    bulk.insert_rows(conn, "user_roles", ("organization_id", "user_id", "role_id"), roles)
    invitations.invite_imported(
        db,
        actor=actor,
        users=[
            (user_id, email, first, last)
            for user_id, (email, _, first, last, _) in zip(ids, people, strict=True)
        ],
        send=send,
        base_url=base_url,
    )


jobs.STEPS[KIND] = _step
