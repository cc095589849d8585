"""/api/v1/users: list, count and read users."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response

from userdesk.access.rules import Actor
from userdesk.activity import service as activity
from userdesk.activity.service import TimelinePage
from userdesk.availability import service as availability
from userdesk.churn import service as churn
from userdesk.churn.service import ChurnRead
from userdesk.db.base import utcnow
from userdesk.errors import InvalidInput
from userdesk.impersonation import service as impersonation
from userdesk.jobs.schemas import JobRead
from userdesk.segments.columns import parse_keys as parse_column_keys
from userdesk.two_step import service as two_step
from userdesk.users import attributes, batch, bulk, lifecycle
from userdesk.users import service as users
from userdesk.users.bulk import BulkPreview, BulkRequest
from userdesk.users.lifecycle import ActionInput
from userdesk.users.models import User
from userdesk.users.rules import Action
from userdesk.users.schemas import (
    UserBatch,
    UserBatchRead,
    UserCounts,
    UserCreate,
    UserPageRead,
    UserRead,
    UserUpdate,
    loaded_user_view,
)
from userdesk.web.api.params import NAME_PATTERN, StrictBool
from userdesk.web.common_route import CommonRoute
from userdesk.web.deps import (
    CurrentActor,
    DbSession,
    SettingsDep,
    api_key_actor,
    bearer_secret,
)
from userdesk.web.downloads import csv_download
from userdesk.web.inputs import PathId
from userdesk.web.json import JSON

router = APIRouter(prefix="/users", tags=["users"])


class ActionConvertor(Convertor[str]):
    """`{action:action}` matches the actions only, so that POST /users/{id}/churn (GET
    only) is a 405 naming GET, not a 400 saying 'churn' is not an action."""

    regex = "|".join(re.escape(action.value) for action in Action)

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("action", ActionConvertor())

# The sorts of users.service.SORTS, as the document lists them.
SortParam = Annotated[
    Literal[
        "name",
        "-name",
        "email",
        "-email",
        "created",
        "-created",
        "seen",
        "-seen",
        "churn",
        "-churn",
    ],
    Query(
        description=(
            "name, email, created, seen or churn (the churn probability; users not scored "
            "yet come first, and last with -churn); a leading - reverses it."
        )
    ),
]

QueryParam = Annotated[
    str,
    Query(
        description=(
            'The query language: free text and filters, e.g. `anna status:active team:"Support '
            'EU" verified:no login:never seen:>30d`.'
        )
    ),
]


class CommonListRoute(CommonRoute):
    """GET /users (`list_users`) for the common request: a bearer key and parameters that
    are plainly valid (any q and cursor, a sort of the list, a limit of plain digits in
    range). Solving the declared route's dependencies and parameters, and routing through
    the included routers, cost 0.3 of the 1.1 ms of CPU the request took (most of it the
    unit of work as a generator dependency, its cancel scopes and exit stacks). What it
    does is what the route's dependencies do: `api_key_actor`, then the endpoint's call.
    """

    def __init__(self, path: str) -> None:
        super().__init__(path, "list_users_common")

    def given(self, request: Request) -> tuple[str, dict[str, Any]] | None:
        secret = bearer_secret(request)
        if secret is None:
            return None
        parameters = _plain_list_parameters(request)
        return None if parameters is None else (secret, parameters)

    async def answer(
        self, request: Request, db: Session, given: tuple[str, dict[str, Any]]
    ) -> Response:
        secret, parameters = given
        actor = api_key_actor(request, db, secret)
        return JSON(users.list_users(db, actor=actor, **parameters))


_SORTS = frozenset(get_args(get_args(SortParam)[0]))
# Longer limits (leading zeros) go the declared way; none in range is longer.
_LIMIT_DIGITS = len(str(users.MAX_PAGE_SIZE))


def _plain_list_parameters(request: Request) -> dict[str, Any] | None:
    """The list's parameters when each is one FastAPI would take as it is (any q and
    cursor, a sort of the list, a limit of plain digits in range), else None."""
    given = request.query_params
    sort = given.get("sort", "name")
    limit = given.get("limit")
    if sort not in _SORTS:
        return None
    if limit is None:
        size = users.DEFAULT_PAGE_SIZE
    elif (
        not (limit.isascii() and limit.isdigit() and len(limit) <= _LIMIT_DIGITS)
        or not 1 <= (size := int(limit)) <= users.MAX_PAGE_SIZE
    ):
        return None
    return {"q": given.get("q", ""), "sort": sort, "limit": size, "cursor": given.get("cursor")}


@router.get("", response_model=None, responses={200: {"model": UserPageRead}})
async def list_users(
    db: DbSession,
    actor: CurrentActor,
    q: QueryParam = "",
    sort: SortParam = "name",
    limit: Annotated[int, Query(ge=1, le=users.MAX_PAGE_SIZE)] = users.DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> JSON:
    """One page of users; pass `next_cursor` back as `cursor` for the next one."""
    return JSON(users.list_users(db, actor=actor, q=q, sort=sort, limit=limit, cursor=cursor))


@router.get("/counts", response_model=UserCounts)
async def count_users(db: DbSession, actor: CurrentActor, q: QueryParam = "") -> UserCounts:
    """Users per status for the query (its status term left out), in all, and without login.

    Exact when they can be counted within a fraction of a second. Otherwise each figure
    is an estimate (`"estimated": true`, scaled from an even sample of the users and
    rounded to two significant digits) or, when the sample holds too few of them to
    scale, `"capped": true`: at least `count`.
    """
    # Up to a tenth of a second of counting: off the event loop, so no other request waits.
    return await run_in_threadpool(users.count_users, db, actor=actor, q=q)


@router.post(
    "",
    status_code=201,
    response_model=None,
    responses={
        201: {"model": UserRead, "description": "Created"},
        200: {"model": UserRead, "description": "A pending user with that email existed"},
    },
)
async def create_user(
    data: UserCreate, db: DbSession, actor: CurrentActor, settings: SettingsDep
) -> JSON:
    """Add an active user; `send_welcome_email` emails a link to choose a password.

    With `"status": "pending"`, a Not Activated user known by email alone (the host
    product's visitor from a ticket or a chat, `created_via` of its choosing): idempotent on
    the email, a second call answers 200 with the user already there and changes nothing.
    """
    user, created = users.add_user(db, actor=actor, data=data, base_url=settings.base_url)
    return JSON(
        _shown(db, actor, users.get_user(db, actor=actor, user_id=user.id)),
        status_code=201 if created else 200,
    )


@router.post("/batch", response_model=UserBatchRead)
async def sync_users(
    data: UserBatch, db: DbSession, actor: CurrentActor, settings: SettingsDep
) -> JSON:
    """Create up to 1,000 users, or bring them up to date: a host product's sync.

    Idempotent on the email: an item whose email is in the organization is `unchanged`
    (with its id) when the fields it gives are as they are, `updated` when they differ
    (changed as PATCH /users/{id} changes them, with its permission checks; a different
    `created_at` is set too); `status`, `created_via` and `send_welcome_email` count for a
    new user only. Each item is answered by its `index`: `created`, `unchanged`, `updated`
    or `error` with `{field, message, code}`; a bad item (or a second item with an email
    already in the batch) does not stop the others. Welcome emails only where asked.
    """
    return JSON(batch.sync_users(db, actor=actor, items=data.users, base_url=settings.base_url))


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "RFC 4180 CSV"}},
)
async def export_users(
    request: Request,
    actor: CurrentActor,
    q: QueryParam = "",
    sort: SortParam = "name",
    columns: Annotated[
        str,
        Query(description="Custom fields (their keys, comma-separated) written after the others."),
    ] = "",
) -> StreamingResponse:
    """Exactly the users of the view (query and sort), every page of it, as CSV."""
    return csv_download(request, actor, q=q, sort=sort, columns=parse_column_keys(columns))


@router.post("/bulk/preview", response_model=BulkPreview)
async def preview_bulk(request: BulkRequest, db: DbSession, actor: CurrentActor) -> BulkPreview:
    """How many users a bulk action would reach (by `q` or `ids`), and the first few."""
    return bulk.preview(db, actor=actor, request=request)


@router.post("/bulk", response_model=JobRead, status_code=202)
async def start_bulk(request: BulkRequest, db: DbSession, actor: CurrentActor) -> JobRead:
    """Start a bulk action; follow it at /api/v1/jobs/{id}."""
    return JobRead.of(bulk.start(db, actor=actor, request=request))


@router.post(
    "/{user_id:int}/verification-email",
    status_code=202,
    response_model=None,
    responses={429: {"description": "Too many verification emails for the user lately."}},
)
async def send_verification_email(
    user_id: PathId, db: DbSession, actor: CurrentActor, settings: SettingsDep
) -> JSON:
    """Email the user a new link to confirm their address; the previous link dies."""
    user = users.send_verification_email(
        db, actor=actor, user_id=user_id, base_url=settings.base_url
    )
    return JSON({"status": "queued", "email": user.email}, status_code=202)


@router.get("/{user_id:int}/churn", response_model=ChurnRead)
async def user_churn(user_id: PathId, db: DbSession, actor: CurrentActor) -> ChurnRead:
    """The user's churn risk: level, probability, reasons in words, the score's trend
    over the last runs, and the retention actions the reasons suggest."""
    return churn.user_churn(db, actor=actor, user_id=user_id)


@router.post("/{user_id:int}/re-engagement-email", status_code=202, response_model=None)
async def send_re_engagement(
    user_id: PathId, db: DbSession, actor: CurrentActor, settings: SettingsDep
) -> JSON:
    """A retention action: email the user the re-engagement template."""
    user = churn.send_re_engagement(db, actor=actor, user_id=user_id, base_url=settings.base_url)
    return JSON({"status": "queued", "email": user.email}, status_code=202)


@router.post(
    "/{user_id:int}/two-step/reset", response_model=None, responses={200: {"model": UserRead}}
)
async def reset_two_step(user_id: PathId, db: DbSession, actor: CurrentActor) -> JSON:
    """Turn off the user's two-step verification (a lost phone): they sign in with their
    password alone and set it up again. 409 when they have none."""
    two_step.reset(db, actor=actor, user_id=user_id)
    return _read(db, actor, user_id)


class ImpersonationBody(BaseModel):
    reason: str = Field(
        min_length=1,
        max_length=impersonation.REASON_MAX,
        pattern=NAME_PATTERN,  # not blank, no NUL
        description="Why you need to act as the user; kept in the audit log.",
    )


class ImpersonationRead(BaseModel):
    url: str
    expires_at: datetime


@router.post("/{user_id:int}/impersonations", status_code=201, response_model=ImpersonationRead)
async def impersonate(
    user_id: PathId,
    body: ImpersonationBody,
    db: DbSession,
    actor: CurrentActor,
    settings: SettingsDep,
) -> ImpersonationRead:
    """A single-use link, valid 10 minutes, that signs whoever opens it in as the user for
    at most an hour; open it in another browser. A signed-in person's act: API keys are
    refused."""
    made = impersonation.start(
        db, actor=actor, user_id=user_id, reason=body.reason, base_url=settings.base_url
    )
    return ImpersonationRead(url=made.url, expires_at=made.expires_at)


class ActionBody(BaseModel):
    reason: str | None = Field(
        default=None, max_length=lifecycle.REASON_MAX, description="Required to disable or ban."
    )
    days: int | None = Field(
        default=None, ge=1, le=lifecycle.BAN_DAYS_MAX, description="For a ban: how many days."
    )
    permanent: StrictBool = Field(default=False, description="For a ban: for good.")


class DeleteBody(BaseModel):
    confirm_email: str = Field(description="The user's email, typed again.")


@router.post(
    "/{user_id:int}/{action:action}", response_model=None, responses={200: {"model": UserRead}}
)
async def act(
    user_id: PathId,
    action: Action,
    db: DbSession,
    actor: CurrentActor,
    settings: SettingsDep,
    body: ActionBody | None = None,
) -> JSON:
    """validate, invalidate, disable (reason), enable, ban (reason; days or permanent),
    unban, trash, restore, activate, reactivate, revoke-sessions. An action that does not
    apply to the user's status is a 409 naming it."""
    if action is Action.DELETE:
        raise InvalidInput(
            "Delete with DELETE /api/v1/users/{id}.", fields={"action": "'delete' is a DELETE"}
        )
    given = body or ActionBody()
    lifecycle.apply(
        db,
        actor=actor,
        user_id=user_id,
        action=action,
        given=ActionInput(reason=given.reason, days=given.days, permanent=given.permanent),
        base_url=settings.base_url,
    )
    return _read(db, actor, user_id)


@router.delete("/{user_id:int}", response_model=None, responses={200: {"model": UserRead}})
async def delete_user(
    user_id: PathId, body: DeleteBody, db: DbSession, actor: CurrentActor, settings: SettingsDep
) -> JSON:
    """Soft delete: access removed, data kept. `confirm_email` must be the user's email."""
    lifecycle.apply(
        db,
        actor=actor,
        user_id=user_id,
        action=Action.DELETE,
        given=ActionInput(confirm_email=body.confirm_email),
        base_url=settings.base_url,
    )
    return _read(db, actor, user_id)


@router.patch("/{user_id:int}", response_model=None, responses={200: {"model": UserRead}})
async def update_user(
    user_id: PathId,
    data: UserUpdate,
    db: DbSession,
    actor: CurrentActor,
    settings: SettingsDep,
    if_match: Annotated[str | None, Header()] = None,
) -> JSON:
    """Change the fields given. Send the ETag from GET as `If-Match`: 412 when someone
    else saved first, 428 without it. A new `email` holds once its owner confirms it.
    `attributes` sets the custom fields it names (null clears one), the others stay."""
    users.update_user(
        db,
        actor=actor,
        user_id=user_id,
        data=data,
        version=etag_version(if_match),
        base_url=settings.base_url,
    )
    return _read(db, actor, user_id)


def etag_version(header: str | None) -> int | None:
    """The version in an If-Match header (W/"3", "3" or 3); None when absent.

    Raises:
        InvalidInput: a header that holds no version.
    """
    if header is None:
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise InvalidInput(
            f"If-Match '{header}' is not an ETag of this API.",
            fields={"If-Match": f"'{header}' is not an ETag like W/\"3\""},
        )
    return int(value)


def _read(db: DbSession, actor: CurrentActor, user_id: int) -> JSON:
    user = users.get_user(db, actor=actor, user_id=user_id)
    return JSON(_shown(db, actor, user), headers={"ETag": f'W/"{user.version}"'})


def _shown(db: Session, actor: Actor, user: User) -> dict[str, Any]:
    """USER as the API shows it to ACTOR: with the attributes ACTOR may see."""
    view = loaded_user_view(user)
    view["attributes"] = attributes.readable(
        db, user.organization_id, user.attributes, attributes.party_of(actor)
    )
    return view


@router.get("/{user_id:int}/activity", response_model=TimelinePage)
async def user_activity(
    user_id: PathId,
    db: DbSession,
    actor: CurrentActor,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=activity.PAGE_MAX)] = activity.PAGE_SIZE,
) -> TimelinePage:
    """What the user did and what was done to them, newest first (users.activity)."""
    return activity.timeline(db, actor=actor, user_id=user_id, cursor=cursor, limit=limit)


@router.get("/{user_id:int}", response_model=None, responses={200: {"model": UserRead}})
async def get_user(user_id: PathId, db: DbSession, actor: CurrentActor) -> JSON:
    """One user, with an `ETag` to send back as `If-Match` when editing; a support agent
    has `availability`, "online" or "away" by their business hours (null for others)."""
    user = users.get_user(db, actor=actor, user_id=user_id)
    view = _shown(db, actor, user)
    view["availability"] = availability.user_availability(db, user, utcnow())
    return JSON(view, headers={"ETag": f'W/"{user.version}"'})
