"""Bulk actions: one lifecycle action on the selected users or on everyone a query finds.

First a preview (how many, and who), then a job the worker runs in chunks, each user in
a savepoint of its own: one who cannot take the action is reported, the others go on.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.errors import DomainError, InvalidInput
from userdesk.invitations import service as invitations
from userdesk.invitations.models import Invitation
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.query import builder
from userdesk.users import lifecycle
from userdesk.users import service as users
from userdesk.users.models import User
from userdesk.users.rules import Action
from userdesk.validation import ID_PATTERN, id_problem

KIND = "users.bulk"
RESEND_INVITATION = "resend-invitation"
ACTIONS = (
    Action.DISABLE.value,
    Action.ENABLE.value,
    Action.BAN.value,
    Action.TRASH.value,
    Action.RESTORE.value,
    Action.VALIDATE.value,
    Action.REVOKE_SESSIONS.value,
    RESEND_INVITATION,
)
CHUNK = 200
MAX_IDS = 10_000
PREVIEW_SIZE = 10


class BulkRequest(BaseModel):
    # json_schema_extra: what the document states and the service checks (the console
    # builds this from a form and shows the service's message).
    action: str = Field(
        description=f"One of {', '.join(ACTIONS)}.", json_schema_extra={"enum": list(ACTIONS)}
    )
    q: str | None = Field(default=None, description="Everyone this query finds...")
    ids: list[str] | None = Field(
        default=None,
        description="...or these users.",
        json_schema_extra={
            "items": {"type": "string", "pattern": ID_PATTERN},
            "maxItems": MAX_IDS,
        },
    )
    reason: str | None = Field(default=None, json_schema_extra={"maxLength": lifecycle.REASON_MAX})
    days: int | None = Field(
        default=None, json_schema_extra={"minimum": 1, "maximum": lifecycle.BAN_DAYS_MAX}
    )
    permanent: bool = False


class BulkPreview(BaseModel):
    action: str
    total: int
    sample: list[dict[str, Any]]
    left_out: list[dict[str, Any]] = Field(
        default=[], description="Users the selection names who are not acted on, and why."
    )


LEFT_OUT_SELF = "You cannot take a bulk action on yourself."


# What each action is called in the console.
BULK_LABELS = {
    "disable": "Disable",
    "enable": "Enable",
    "ban": "Ban",
    "trash": "Trash",
    "restore": "Restore",
    "validate": "Validate",
    "revoke-sessions": "Sign out",
    RESEND_INVITATION: "Resend invitation",
}


def permission_for(action: str) -> str:
    if action == RESEND_INVITATION:
        return Permission.USERS_CREATE
    return lifecycle.PERMISSION[Action(action)]


def _selection(db: Session, actor: Actor, request: BulkRequest) -> list[ColumnElement[bool]]:
    if request.action not in ACTIONS:
        raise InvalidInput(
            f"'{request.action}' is not a bulk action.",
            fields={"action": f"'{request.action}' is not one of {', '.join(ACTIONS)}"},
        )
    permission = permission_for(request.action)
    access.require(actor, permission)
    if (request.q is None) == (request.ids is None):
        raise InvalidInput(
            "Choose users by a query or by ids, not both or neither.",
            fields={"q": "give q or ids", "ids": "give q or ids"},
        )
    if request.ids is not None:
        if not request.ids:
            raise InvalidInput(
                "Select at least one user first.",
                code="bulk.empty_selection",
                fields={"ids": "no user is selected"},
            )
        if len(request.ids) > MAX_IDS:
            raise InvalidInput(
                f"At most {MAX_IDS} ids at a time: use a query for more.",
                fields={"ids": f"has {len(request.ids)} ids"},
            )
        problems = {
            f"ids[{i}]": problem
            for i, value in enumerate(request.ids)
            if (problem := id_problem(value))
        }
        if problems:
            raise InvalidInput("Some ids are not valid.", fields=problems)
        return [
            access.users_in_scope(actor, permission),
            User.id.in_([int(v) for v in request.ids]),
        ]
    return users.matching(
        db, actor=actor, query=builder.parse_query(request.q or ""), permission=permission
    )


def _targets(selection: list[ColumnElement[bool]], actor: Actor) -> list[ColumnElement[bool]]:
    """The selection less the acting admin: nobody is the target of their own bulk action."""
    if actor.user_id is None:
        return selection
    return [*selection, User.id != actor.user_id]


def _given(request: BulkRequest) -> lifecycle.ActionInput:
    return lifecycle.ActionInput(
        reason=request.reason, days=request.days, permanent=request.permanent
    )


def preview(db: Session, *, actor: Actor, request: BulkRequest) -> BulkPreview:
    """How many users the action would reach, and the first few of them.

    Raises:
        PermissionDenied: the actor lacks the action's permission.
        InvalidInput: an unknown action, a bad query or ids.
    """
    selection = _selection(db, actor, request)
    where = _targets(selection, actor)
    total = db.scalar(select(func.count()).select_from(User).where(*where)) or 0
    left_out = []
    if actor.user_id is not None:
        me = db.execute(
            select(User.id, User.email, User.first_name, User.last_name).where(
                *selection, User.id == actor.user_id
            )
        ).first()
        if me is not None:
            left_out.append(
                {
                    "id": str(me.id),
                    "email": me.email,
                    "name": f"{me.first_name} {me.last_name}".strip(),
                    "why": LEFT_OUT_SELF,
                }
            )
    sample = db.execute(
        select(User.id, User.email, User.first_name, User.last_name, User.status)
        .where(*where)
        .order_by(User.id)
        .limit(PREVIEW_SIZE)
    ).all()
    return BulkPreview(
        action=request.action,
        total=total,
        sample=[
            {
                "id": str(r.id),
                "email": r.email,
                "name": f"{r.first_name} {r.last_name}".strip(),
                "status": r.status,
            }
            for r in sample
        ],
        left_out=left_out,
    )


def start(db: Session, *, actor: Actor, request: BulkRequest) -> Job:
    """Queue the bulk action as a job (its inputs are checked now, on a first user).

    Raises:
        PermissionDenied, InvalidInput: as preview; also a missing reason or days.
    """
    found = preview(db, actor=actor, request=request)
    if request.action in (Action.DISABLE.value, Action.BAN.value):
        lifecycle.check_input(Action(request.action), _given(request))
    return jobs.create(db, actor=actor, kind=KIND, params=request.model_dump(), total=found.total)


def _step(db: Session, job: Job, actor: Actor, base_url: str) -> bool:
    request = BulkRequest.model_validate(job.params)
    where = _targets(_selection(db, actor, request), actor)
    chunk = db.execute(
        select(User.id, User.email)
        .where(*where, User.id > job.cursor)
        .order_by(User.id)
        .limit(CHUNK)
    ).all()
    for user_id, email in chunk:
        try:
            with db.begin_nested():
                _act(db, actor, request, user_id, base_url)
            job.done += 1
        except DomainError as exc:
            jobs.note_problem(job, {"id": str(user_id), "email": email, "problem": exc.message})
        job.cursor = user_id
    return len(chunk) < CHUNK


def _act(db: Session, actor: Actor, request: BulkRequest, user_id: int, base_url: str) -> None:
    if request.action == RESEND_INVITATION:
        invitation_id = db.scalar(
            select(Invitation.id)
            .where(Invitation.user_id == user_id, Invitation.status == "pending")
            .order_by(Invitation.id.desc())
        )
        if invitation_id is None:
            raise InvalidInput("has no pending invitation")
        invitations.resend(db, actor=actor, invitation_id=invitation_id, base_url=base_url)
        return
    lifecycle.apply(
        db,
        actor=actor,
        user_id=user_id,
        action=Action(request.action),
        given=_given(request),
        base_url=base_url,
    )


jobs.STEPS[KIND] = _step
jobs.READ_PERMISSION[KIND] = lambda params: permission_for(str(params.get("action")))
