"""Importing users from CSV: a draft (the file and a guessed mapping of its columns),
then a job that goes through the rows in batches, each batch in one transaction.

A dry run reports every row's fate without writing. A real run creates each valid
row's user as Not Activated, with an invitation (emailed on request) and an audit event
naming the file and the row. An email already in the organization is reported as
existing, so the same file twice creates nobody twice; a crash loses at most the batch in
flight, which runs again from the job's cursor.

A password_hash column brings each row's hash from the system the users come from
(`auth.password_imports`): checked per row, kept until the first sign-in; with the
import's status "active", a row with a hash is created active and uninvited.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import Actor, Permission, missing_to_grant
from userdesk.audit import service as audit
from userdesk.auth import password_imports
from userdesk.auth.imported_hashes import Policy
from userdesk.db import bulk
from userdesk.db.base import utcnow
from userdesk.db.engine import log_grows
from userdesk.errors import InvalidInput, NotFound
from userdesk.exports.service import quoted
from userdesk.imports import rules
from userdesk.imports.models import ImportFile
from userdesk.invitations import service as invitations
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.organizations.models import Organization
from userdesk.users import attributes
from userdesk.users.field_rules import FieldSpec, ValueProblem, check_value, convert, index_values
from userdesk.users.models import UserFieldValue
from userdesk.users.rules import (
    NAME_MAX_LENGTH,
    CreatedVia,
    UserStatus,
    email_problem,
    history_time,
    name_problem,
    normalize_email,
)
from userdesk.validation import text_problem

KIND = "users.import"
# The columns of an imported user that differ from row to row; the others are the same in
# every row of a batch (`_create` passes them once a statement: bulk.insert_rows's SAME).
USER_COLUMNS = ("id", "email", "email_normalized", "first_name", "last_name", "team_id")
# status, created_via, version of an imported user
NEW_USER = {
    "status": UserStatus.PENDING.value,
    "created_via": CreatedVia.IMPORT.value,
    "version": 1,
}
# Rows a transaction: a step holds the write lock for under a second (0.45 s at 22,000
# rows a second; about 1 s with the machine's 2 cores loaded 3 times over), well within
# the 5 s busy timeout of the writers waiting. Each commit writes out every page the
# batch touched, scattered across the users' indexes, search tables and the invitations'
# token index: 5,000 rows touch few more pages than 1,000 (100,000 rows took a fifth less
# CPU time at 5,000 a transaction), 10,000 few more than 5,000 (100,000 rows: 4-5 % less
# CPU time, 9 % fewer bytes written). 20,000 took no less CPU time, and twice the lock.
BATCH = 10_000
MAX_BYTES = 20 * 1024 * 1024


def draft(db: Session, *, actor: Actor, filename: str, content: bytes) -> Job:
    """Keep an uploaded file as a draft import, with a guessed mapping of its columns
    (`read_upload` then `keep_draft`).

    Raises:
        PermissionDenied: the actor may not import users.
        InvalidInput: the file is too large, not UTF-8, or has no header row.
    """
    return keep_draft(
        db, actor=actor, upload=read_upload(actor=actor, filename=filename, content=content)
    )


@dataclass(frozen=True)
class Upload:
    """An uploaded file, read and checked: what a draft keeps."""

    filename: str
    text: str
    digest: str
    columns: list[str]


def read_upload(*, actor: Actor, filename: str, content: bytes) -> Upload:
    """Read and check an uploaded file, without the database: the seconds a large file
    takes are spent before the transaction that keeps it begins.

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
    return Upload(filename, text, hashlib.sha256(text.encode()).hexdigest(), columns)


def keep_draft(db: Session, *, actor: Actor, upload: Upload) -> Job:
    """Keep UPLOAD as a draft import, with a guessed mapping of its columns.

    Raises:
        PermissionDenied: the actor may not import users.
    """
    access.require(actor, Permission.USERS_IMPORT)
    job = jobs.create(
        db,
        actor=actor,
        kind=KIND,
        params={
            "filename": upload.filename,
            "columns": upload.columns,
            "mapping": rules.guess_mapping(
                upload.columns,
                [(f.key, f.label) for f in writable_fields(db, actor=actor).values()],
            ),
            "dry_run": True,
            "send": False,
        },
        total=0,
    )
    job.status = "draft"
    db.add(
        ImportFile(
            organization_id=actor.organization_id,
            job_id=job.id,
            digest=upload.digest,
            content=upload.text,
        )
    )
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
    parsed: Parsed | None = None,
    status: str = "pending",
) -> Job:
    """Queue a draft import (as a dry run, or for real) with a mapping of its columns.
    PARSED, the file as `parse_upload` or `parse_draft` read it before the transaction
    began, spares parsing it here. STATUS ("pending" or "active") is what a row with a
    password hash makes (rules.IMPORT_STATUSES); a row without one is always invited.

    Raises:
        PermissionDenied: the actor may not import users; or, mapping a password hash
            column, may not create users either.
        NotFound: no such draft of the actor's organization.
        InvalidInput: the mapping lacks the email column or names a column not in the
            file; a status that is not one of rules.IMPORT_STATUSES.
    """
    access.require(actor, Permission.USERS_IMPORT)
    job = jobs.get(db, actor=actor, job_id=job_id)
    if job.kind != KIND or job.status not in ("draft", "done"):
        raise NotFound(f"No import {job_id} to start.", code="import.not_found")
    chosen = _chosen(mapping or job.params["mapping"])
    if problem := rules.mapping_problem(chosen, job.params["columns"]):
        raise InvalidInput(problem, fields={"mapping": problem})
    writable = writable_fields(db, actor=actor)
    for target in chosen:
        key = rules.attribute_key(target)
        if key is not None and key not in writable:
            known = ", ".join(writable) or "none yet"
            problem = f"'{key}' is not a field an import may fill (the fields: {known})"
            raise InvalidInput(f"The mapping: {problem}.", fields={"mapping": problem})
    if status not in rules.IMPORT_STATUSES:
        problem = f"'{status[:40]}' is not one of: {', '.join(rules.IMPORT_STATUSES)}"
        raise InvalidInput(f"The status {problem}.", fields={"status": problem})
    if rules.PASSWORD_HASH in chosen:  # a known password for a new account: users.create too
        access.require(actor, Permission.USERS_CREATE)
    job.params = {
        **job.params,
        "mapping": chosen,
        "dry_run": dry_run,
        "send": send_invitations,
        "status": status,
    }
    job.total = len(_parsed(db, job, ready=parsed).rows)
    job.status, job.cursor, job.done, job.failed = "queued", 0, 0, 0
    job.problems, job.finished_at = [], None
    jobs.forget_items(db, job)
    db.flush()
    return job


def _chosen(mapping: dict[str, str]) -> dict[str, str]:
    return {f: c for f, c in mapping.items() if rules.is_target(f) and c}


def writable_fields(db: Session, *, actor: Actor) -> dict[str, FieldSpec]:
    """The custom fields an import by ACTOR may fill, by key: not archived, and editable
    by them (an admin, or the system for an API key or the CLI), in the schema's order.

    Raises:
        PermissionDenied: the actor may not import users.
    """
    access.require(actor, Permission.USERS_IMPORT)
    party = attributes.party_of(actor)
    return {
        f.key: f
        for f in attributes.schema(db, actor.organization_id).active
        if party in attributes.AUDIENCE_PARTIES[f.editable_by]
    }


def mapping_targets(db: Session, *, actor: Actor) -> list[tuple[str, str]]:
    """What a column may map to, as the mapping form offers it: (target, label) of each
    built-in field, then of each custom field an import by ACTOR may fill.

    Raises:
        PermissionDenied: the actor may not import users.
    """
    built_in = [(f, f.replace("_", " ").capitalize()) for f in rules.FIELDS]
    custom = [
        (f"{rules.ATTRIBUTE}{k}", f.label) for k, f in writable_fields(db, actor=actor).items()
    ]
    return built_in + custom


def attribute_value(spec: FieldSpec, cell: str) -> Any:
    """CELL (a stripped CSV cell, not empty) as the field SPEC keeps it: a number, yes/no
    (or true/false), an ISO date, several choices separated by ; or |, or text.

    Raises:
        ValueProblem: the cell is not a value of the field (the message says why).
    """
    if spec.type == "choices":
        return check_value(spec, rules.split_list(cell))
    if spec.type == "boolean":
        word = cell.lower()
        if word not in ("yes", "true", "no", "false"):
            raise ValueProblem("is not yes or no")
        return word in ("yes", "true")
    if spec.type == "number":
        return convert(cell, spec)
    return check_value(spec, cell)


def _attribute_targets(
    mapping: Mapping[str, str], specs: Mapping[str, FieldSpec]
) -> list[tuple[str, str, FieldSpec]]:
    """(target, column, field) of each custom field MAPPING fills."""
    found = []
    for target, column in mapping.items():
        key = rules.attribute_key(target)
        if key is not None and key in specs:
            found.append((target, column, specs[key]))
    return found


def _row_attributes(
    values: Mapping[str, str], targets: list[tuple[str, str, FieldSpec]]
) -> tuple[dict[str, Any], Fate | None]:
    """A row's custom field values (VALUES: its cells by target), and the fate of a row
    whose cell a field does not take, naming the column, the field and the value."""
    found: dict[str, Any] = {}
    for target, column, spec in targets:
        cell = values.get(target, "")
        if not cell:
            continue
        try:
            found[spec.key] = attribute_value(spec, cell)
        except ValueProblem as problem:
            shown = cell if len(cell) <= 60 else cell[:57] + "..."
            return found, ("invalid", f"column '{column}' ({spec.key}): '{shown}' {problem}")
    return found, None


@dataclass(frozen=True)
class Parsed:
    """A file's rows under a mapping."""

    key: tuple[str, tuple[tuple[str, str], ...]]  # the file's digest and the mapping
    rows: list[rules.Row]
    first: dict[str, int]  # each email's first row in the file
    keys: list[str]  # each row's email as compared (normalize_email), in the rows' order
    # No cell holds a NUL or a lone surrogate (`rules.header` refuses such a file at upload;
    # a file kept before it did may), so a name is checked for its length alone.
    clean: bool


# Files being imported, parsed; a file of 20 MB takes some 200 MB parsed.
_PARSED: dict[tuple[str, tuple[tuple[str, str], ...]], Parsed] = {}
PARSED_KEPT = 2


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while parsing a file or running a batch: both
    make objects by the hundred thousand (rows, fates, parameters) and make no cycles,
    yet each such flood set off full passes over every object of the process (with the
    file's rows kept, 8 of them and 14 % of an import's CPU time for 100,000 rows). Put
    back as it was after: the objects made meanwhile are collected as usual later."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse(digest: str, text: str, mapping: tuple[tuple[str, str], ...]) -> Parsed:
    with _collector_paused():
        rows = rules.rows(text, dict(mapping))
        keys = [normalize_email(row.values.get("email", "")) for row in rows]
        first: dict[str, int] = {}
        for key, row in zip(keys, rows, strict=True):
            first.setdefault(key, row.number)
    return Parsed((digest, mapping), rows, first, keys, text_problem(text) is None)


def parse_upload(upload: Upload, mapping: dict[str, str] | None = None) -> Parsed | None:
    """UPLOAD's rows under MAPPING (by default the guessed one), for `start`: no database,
    so that it runs before the transaction; None when the mapping is wrong (`start` says
    why)."""
    chosen = _chosen(mapping or rules.guess_mapping(upload.columns))
    if rules.mapping_problem(chosen, upload.columns):
        return None
    return _parse(upload.digest, upload.text, tuple(sorted(chosen.items())))


def parse_draft(
    db: Session, *, actor: Actor, job_id: int, mapping: dict[str, str] | None = None
) -> Parsed | None:
    """Draft JOB_ID's rows under MAPPING (by default its own), for `start`: it only reads,
    so that it runs before the transaction that starts the import; None when there is no
    such draft or the mapping is wrong (`start` says why).

    Raises:
        PermissionDenied: the actor may not import users.
    """
    access.require(actor, Permission.USERS_IMPORT)
    job = jobs.get(db, actor=actor, job_id=job_id)
    chosen = _chosen(mapping or job.params["mapping"])
    if job.kind != KIND or rules.mapping_problem(chosen, job.params["columns"]):
        return None
    file = db.execute(
        select(ImportFile.digest, ImportFile.content).where(ImportFile.job_id == job.id)
    ).first()
    return _parse(file.digest, file.content, tuple(sorted(chosen.items()))) if file else None


def _parsed(db: Session, job: Job, *, ready: Parsed | None = None) -> Parsed:
    """The rows of JOB's file under its mapping, parsed once per process (not once per
    batch): kept under the file's digest, so the file itself is read only then. READY is
    the file as parsed already, if it was."""
    mapping = tuple(sorted(job.params["mapping"].items()))
    digest = db.scalar(select(ImportFile.digest).where(ImportFile.job_id == job.id))
    if digest is None:
        raise NotFound(f"Import {job.id} has no file.", code="import.not_found")
    key = (digest, mapping)
    parsed = ready if ready is not None and ready.key == key else _PARSED.get(key)
    if parsed is None:
        text = db.scalar(select(ImportFile.content).where(ImportFile.job_id == job.id)) or ""
        parsed = _parse(digest, text, mapping)
    if key not in _PARSED:
        while len(_PARSED) >= PARSED_KEPT:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = parsed
    return parsed


def _step(db: Session, job: Job, actor: Actor, base_url: str) -> bool:
    """One batch of JOB, its commit copying the write-ahead log into the database only
    when the log is large or the import done (SQLite)."""
    conn = db.connection()
    parsed = _parsed(db, job)
    log_grows(conn, job.cursor + BATCH < len(parsed.rows))
    try:
        with _collector_paused():
            return _run_batch(db, job, actor, base_url, parsed)
    except BaseException:
        log_grows(conn, False)
        raise


def _run_batch(db: Session, job: Job, actor: Actor, base_url: str, parsed: Parsed) -> bool:
    params = job.params
    batch = parsed.rows[job.cursor : job.cursor + BATCH]
    org = actor.organization_id
    names: dict[Any, dict[str, Any]] = {
        Team: _by_name(db.scalars(select(Team).where(Team.organization_id == org))),
        Group: _by_name(db.scalars(select(Group).where(Group.organization_id == org))),
        Role: _by_name(db.scalars(select(Role).where(Role.organization_id == org))),
    }
    allowed = None
    if rules.PASSWORD_HASH in params["mapping"]:
        allowed = password_imports.policy(db.get_one(Organization, org))
    targets = (
        _attribute_targets(params["mapping"], writable_fields(db, actor=actor))
        if any(rules.attribute_key(t) for t in params["mapping"])
        else []
    )
    checked = _check(parsed, job.cursor, utcnow(), allowed, targets)
    existing = {
        email
        for (email,) in bulk.select_in(
            db.connection(),
            "SELECT email_normalized FROM users "
            "WHERE organization_id = {mark} AND email_normalized IN ({values})",
            [check[1] for check in checked],
            (org,),
        )
    }
    scope = actor.team_scope(Permission.USERS_IMPORT)
    success = "would be created" if params["dry_run"] else "created"
    fates: list[dict[str, Any]] = []
    valid: list[tuple[rules.Row, str, Times]] = []  # each with its email as compared
    for row, check in zip(batch, checked, strict=True):
        email = check[0]
        if fate := _fate(actor, scope, row, check, names, existing):
            fates.append({"row": row.number, "email": email, "fate": fate[0], "detail": fate[1]})
        else:
            fates.append({"row": row.number, "email": email, "fate": success})
            valid.append((row, check[1], check[4]))
    if valid and not params["dry_run"]:
        _create(db, actor, valid, names, params, base_url, targets)
    jobs.record_items(db, job, fates)
    job.done += len(valid)
    job.failed += len(batch) - len(valid)
    job.cursor += len(batch)
    finished = job.cursor >= len(parsed.rows)
    if finished:
        _PARSED.pop(parsed.key, None)
    return finished


def _by_name(rows: Any) -> dict[str, Any]:
    return {row.name.lower(): row for row in rows}


Fate = tuple[str, str]  # (fate, why) of a row that will not be created
Times = dict[str, datetime]  # a row's moments of history (rules.HISTORY_FIELDS) it gives
# A row as its file alone says: its email, the same normalized (`normalize_email`), the
# fate its email earns, the fate an earlier row with that email, its names or its times
# earn, and its times.
Checked = tuple[str, str, Fate | None, Fate | None, Times]


def _check(
    parsed: Parsed,
    start: int,
    now: datetime | None = None,
    allowed: Policy | None = None,
    targets: list[tuple[str, str, FieldSpec]] | None = None,
) -> list[Checked]:
    """The rows of the batch at START as the file alone says (`Checked`): no database.
    A time (created_at, last_login_at, last_seen_at) is past NOW (by default the present),
    and a sign-in or visit is not before the row's created_at, where it gives one. A
    password hash, where a row gives one, is one the organization's ALLOWED policy takes
    (the reason names the problem, never the hash). Each custom field's cell (TARGETS) is
    a value of its field (the reason names the column, the field and the value)."""
    first, clean = parsed.first, parsed.clean
    now = now or utcnow()
    mapped = dict(parsed.key[1])
    history = [field for field in rules.HISTORY_FIELDS if field in mapped]
    checked: list[Checked] = []
    rows, keys = parsed.rows[start : start + BATCH], parsed.keys[start : start + BATCH]
    for row, key in zip(rows, keys, strict=True):
        values = row.values
        email = values.get("email", "")
        if problem := email_problem(email):
            checked.append((email, key, ("invalid", f"email {problem}"), None, {}))
            continue
        by_file: Fate | None = None
        if first[key] != row.number:
            by_file = ("invalid", f"{email} is also on row {first[key]}")
        else:
            for field in ("first_name", "last_name"):
                name = values.get(field, "")  # stripped: its length is what name_problem checks
                if (len(name) > NAME_MAX_LENGTH or not clean) and (problem := name_problem(name)):
                    by_file = ("invalid", f"{field.replace('_', ' ')} {problem}")
                    break
        times: Times = {}
        for field in history if by_file is None else ():
            if not (cell := values.get(field, "")):
                continue
            signed_up = times.get("created_at")
            moment, problem = history_time(cell, now=now, not_before=signed_up)
            if moment is None:
                by_file = ("invalid", f"{field} {problem}")
                break
            times[field] = moment
        stored = values.get(rules.PASSWORD_HASH, "") if allowed is not None else ""
        if (
            by_file is None
            and stored
            and (problem := password_imports.hash_problem(stored, allowed=allowed or Policy()))
        ):
            by_file = ("invalid", f"password_hash {problem}")
        if by_file is None and targets:
            by_file = _row_attributes(values, targets)[1]
        checked.append((email, key, None, by_file, times))
    return checked


def _fate(
    actor: Actor,
    scope: frozenset[int] | None,
    row: rules.Row,
    checked: Checked,
    names: dict[Any, dict[str, Any]],
    existing: set[str],
) -> Fate | None:
    """ROW's fate if it will not be created, None if it will: CHECKED (what the file
    alone says, `_check`), then whether its email is in the organization (EXISTING, the
    emails normalized), then its team, groups and roles."""
    email, key, by_email, by_file, _ = checked
    if by_email:
        return by_email
    if key in existing:
        return ("exists", f"{email} is in the organization already")
    if by_file:
        return by_file
    values = row.values
    team = values.get("team", "")
    if scope is None and not team and not values.get("groups") and not values.get("roles"):
        return None  # most rows: no team to check the actor's reach over, nothing to grant
    if team and team.lower() not in names[Team]:
        return ("invalid", f"unknown team '{team}'")
    outside = not team or names[Team][team.lower()].id not in (scope or ())
    if scope is not None and outside and not (not team and len(scope) == 1):
        return ("invalid", "you may only import into your own team")
    if team:
        team_id: int | None = names[Team][team.lower()].id
    else:
        team_id = next(iter(scope)) if scope is not None and len(scope) == 1 else None
    for field, model in (("groups", Group), ("roles", Role)):
        for name in rules.split_list(row.values.get(field, "")):
            if name.lower() not in names[model]:
                return ("invalid", f"unknown {field[:-1]} '{name}'")
            role = names[model][name.lower()]
            if model is Role and (
                missing := missing_to_grant(
                    actor, role.permissions, role_scope=role.scope, team_id=team_id
                )
            ):
                return ("invalid", f"you cannot grant '{name}' (it takes {', '.join(missing)})")
    return None


def _create(
    db: Session,
    actor: Actor,
    rows: list[tuple[rules.Row, str, Times]],
    names: dict[Any, dict[str, Any]],
    params: dict[str, Any],
    base_url: str,
    targets: list[tuple[str, str, FieldSpec]] | None = None,
) -> None:
    """Create the users of ROWS (each with its email normalized and the times it gives),
    their custom fields' values (TARGETS: attributes and their index rows), their links,
    invitations and audit events: a few statements a batch, the values of
    each made in one pass over the rows. The times the mapping takes are columns of each
    row (now where a row gives none); the others are the same in every row."""
    scope = actor.team_scope(Permission.USERS_IMPORT)
    default_team = next(iter(scope)) if scope is not None and len(scope) == 1 else None
    org = actor.organization_id
    conn = db.connection()
    now = bulk.sql_time(conn.dialect.name)(utcnow())
    teams, team_names = names[Team], {team.id: team.name for team in names[Team].values()}
    send, filename = params["send"], params["filename"]
    ids = bulk.next_ids(conn, "users", len(rows))
    time = bulk.sql_time(conn.dialect.name)
    history = [field for field in rules.HISTORY_FIELDS if field in params["mapping"]]
    # With a password hash column: each row's hash, status and validated_at are its own
    # (a row with a hash is active at once when the import says so, and then uninvited).
    hashes = rules.PASSWORD_HASH in params["mapping"]
    activate = params.get("status") == UserStatus.ACTIVE.value
    users: list[tuple[Any, ...]] = []
    people: list[tuple[int, str, str, str]] = []  # (id, email, first, last), to invite
    groups: list[tuple[int, int, int]] = []
    roles: list[tuple[int, int, int]] = []
    events: list[tuple[int, dict[str, Any]]] = []
    indexed: list[dict[str, Any]] = []  # the index rows of the custom fields' values
    for user_id, (row, key, times) in zip(ids, rows, strict=True):
        values = row.values
        email = values["email"]
        first, last = values.get("first_name", ""), values.get("last_name", "")
        team = values.get("team")
        team_id = teams[team.lower()].id if team else default_team
        user: tuple[Any, ...] = (user_id, email, key, first, last, team_id)
        if history:
            user += tuple(
                time(times[field]) if field in times else (now if field == "created_at" else None)
                for field in history
            )
        stored = values.get(rules.PASSWORD_HASH) or None if hashes else None
        active = activate and stored is not None
        if hashes:
            status = UserStatus.ACTIVE.value if active else UserStatus.PENDING.value
            user += (stored, status, now if active else None)
        given: dict[str, Any] = {}
        if targets:
            given = _row_attributes(values, targets)[0]
            user += (json.dumps(given) if given else None,)
            indexed.extend(
                {
                    "organization_id": org,
                    "field_id": spec.id,
                    "user_id": user_id,
                    "text_value": text,
                    "number_value": number,
                    "date_value": day,
                }
                for _, _, spec in targets
                for text, number, day in index_values(spec, given.get(spec.key))
            )
        users.append(user)
        if not active:
            people.append((user_id, email, first, last))
        told: dict[str, Any] = (
            {field: moment.isoformat() for field, moment in times.items()} if times else {}
        )
        if given:
            told["attributes"] = given
        if stored is not None:
            told |= password_imports.audited(stored)
            if active:
                told["status"] = UserStatus.ACTIVE.value
        if team_id is None and not values.get("groups") and not values.get("roles"):
            # most rows: the event says who, from which row, and nothing more
            if told:
                event = {"email": email, **told, "email_sent": send, "file": filename}
            else:  # a file without times (most): the dict made at once
                event = {"email": email, "email_sent": send, "file": filename}
            event["row"] = row.number
            events.append((user_id, event))
            continue
        changes: dict[str, Any] = {"email": email, **told}
        if team_id is not None:
            changes["team"] = team_names[team_id]
        for field, model, links in (("groups", Group, groups), ("roles", Role, roles)):
            if not (cell := values.get(field)):
                continue
            chosen = [names[model][n.lower()] for n in rules.split_list(cell)]
            if chosen:
                links.extend((org, user_id, found.id) for found in chosen)
                changes[field] = [found.name for found in chosen]
        changes |= {"email_sent": send, "file": filename, "row": row.number}
        events.append((user_id, changes))
    same = {"organization_id": org, **NEW_USER, "created_at": now, "updated_at": now}
    for field in history:
        same.pop(field, None)
    columns = (*USER_COLUMNS, *history)
    if hashes:
        same.pop("status")
        columns += (rules.PASSWORD_HASH, "status", "validated_at")
    if targets:
        columns += ("attributes",)
    bulk.insert_rows(conn, "users", columns, users, same=same)
    if indexed:
        db.execute(insert(UserFieldValue), indexed)
    bulk.insert_rows(conn, "user_groups", ("organization_id", "user_id", "group_id"), groups)
    bulk.insert_rows(conn, "user_roles", ("organization_id", "user_id", "role_id"), roles)
    invitations.invite_imported(db, actor=actor, users=people, send=send, base_url=base_url)
    audit.record_many(db, actor=actor, action="user.imported", target_type="user", targets=events)


REPORT_HEADER = ("row", "email", "fate", "detail")


def report_csv(db: Session, *, actor: Actor, job_id: int) -> str:
    """Every row's fate as CSV (row, email, fate, detail), cells defused as in exports.

    Raises:
        PermissionDenied: the actor may not import users.
        NotFound: no such import of the actor's organization.
    """
    access.require(actor, Permission.USERS_IMPORT)
    job = jobs.get(db, actor=actor, job_id=job_id)
    if job.kind != KIND:
        raise NotFound(f"No import {job_id}.", code="import.not_found")
    lines = [",".join(REPORT_HEADER)]
    for item in jobs.items(db, job):
        cells = (item["email"], item["fate"], item.get("detail", ""))
        lines.append(",".join([str(item["row"]), *(quoted(cell) for cell in cells)]))
    return "\r\n".join(lines) + "\r\n"


jobs.STEPS[KIND] = _step
jobs.READ_PERMISSION[KIND] = lambda params: Permission.USERS_IMPORT
