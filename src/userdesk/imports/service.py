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

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import Actor, Permission, missing_to_grant
from userdesk.audit import service as audit
from userdesk.db.base import utcnow
from userdesk.errors import InvalidInput, NotFound
from userdesk.imports import rules
from userdesk.invitations import service as invitations
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.users.models import User, UserGroup, UserRole
from userdesk.users.rules import (
    CreatedVia,
    UserStatus,
    email_problem,
    name_problem,
    normalize_email,
)

KIND = "users.import"
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
    job.result, job.problems, job.finished_at = [], [], None
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
    fates: list[dict[str, Any]] = []
    created = 0
    valid: list[rules.Row] = []
    for row in batch:
        fate = _fate(actor, row, names, existing, first)
        if fate is None:
            valid.append(row)
        email = row.values.get("email", "")
        fates.append(
            {
                "row": row.number,
                "email": email,
                "fate": fate[0]
                if fate
                else ("would be created" if params["dry_run"] else "created"),
                **({"detail": fate[1]} if fate else {}),
            }
        )
    if valid and not params["dry_run"]:
        _create(db, actor, valid, names, params["send"], base_url)
        created = len(valid)
    job.result = [*job.result, *fates]
    job.done += sum(1 for f in fates if "detail" not in f)
    job.failed += sum(1 for f in fates if "detail" in f)
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
    scope = actor.team_scope(Permission.USERS_IMPORT)
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
    now = utcnow()
    values: list[dict[str, Any]] = [
        {
            "organization_id": actor.organization_id,
            "email": row.values["email"],
            "email_normalized": normalize_email(row.values["email"]),
            "first_name": row.values.get("first_name", ""),
            "last_name": row.values.get("last_name", ""),
            "status": UserStatus.PENDING.value,
            "created_via": CreatedVia.IMPORT.value,
            "team_id": (
                names[Team][row.values["team"].lower()].id
                if row.values.get("team")
                else default_team
            ),
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        for row in rows
    ]
    ids = list(db.scalars(insert(User).returning(User.id, sort_by_parameter_order=True), values))
    groups, roles = [], []
    for row, user_id in zip(rows, ids, strict=True):
        for name in rules.split_list(row.values.get("groups", "")):
            groups.append(
                {
                    "organization_id": actor.organization_id,
                    "user_id": user_id,
                    "group_id": names[Group][name.lower()].id,
                }
            )
        for name in rules.split_list(row.values.get("roles", "")):
            roles.append(
                {
                    "organization_id": actor.organization_id,
                    "user_id": user_id,
                    "role_id": names[Role][name.lower()].id,
                }
            )
    if groups:
        db.execute(insert(UserGroup), groups)
    if roles:
        db.execute(insert(UserRole), roles)
    invitations.invite_imported(
        db,
        actor=actor,
        users=[
            (i, v["email"], v["first_name"], v["last_name"])
            for i, v in zip(ids, values, strict=True)
        ],
        send=send,
        base_url=base_url,
    )


jobs.STEPS[KIND] = _step
