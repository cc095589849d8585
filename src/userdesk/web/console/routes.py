"""/console/...: the Users list, segments, a user's page, the audit log and settings."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from userdesk.access import admin
from userdesk.access import service as access
from userdesk.access.admin import RoleBody
from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import ALL_PERMISSIONS, Permission, permission_words
from userdesk.activity import service as activity
from userdesk.audit import service as audit
from userdesk.audit import wording
from userdesk.auth.session_rules import MINUTES_SETTINGS
from userdesk.availability import service as availability
from userdesk.churn import rules as churn_rules
from userdesk.churn import service as churn
from userdesk.churn import settings as churn_settings
from userdesk.db.base import utcnow
from userdesk.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
)
from userdesk.impersonation import service as impersonation
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.organizations.service import invitation_ttl
from userdesk.query.rules import Query, parse
from userdesk.segments import columns as list_columns
from userdesk.segments import service as segments
from userdesk.segments.models import Segment
from userdesk.segments.schemas import SegmentCreate, SegmentUpdate
from userdesk.signup.rules import RegistrationPolicy, parse_domains
from userdesk.two_step import service as two_step
from userdesk.users import attributes, bulk, lifecycle
from userdesk.users import service as users
from userdesk.users.bulk import BULK_LABELS
from userdesk.users.field_rules import FieldSpec
from userdesk.users.models import User
from userdesk.users.rules import Action, display_name
from userdesk.users.schemas import UserUpdate, loaded_user_view
from userdesk.web import attribute_forms
from userdesk.web.common_route import CommonRoute
from userdesk.web.console import provisioning, views
from userdesk.web.console.pages import partial, render
from userdesk.web.console.rows_html import write_rows
from userdesk.web.deps import ConsoleAuth, DbSession, SettingsDep, console_auth
from userdesk.web.filters import audit_filter
from userdesk.web.inputs import PathId, QueryId
from userdesk.web.templating import admin_zone

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
# Settings > Provisioning (SCIM), ahead of /settings/{kind}/{item_id}, which would take it.
router.include_router(provisioning.router)


@router.get("")
async def console_home(_auth: ConsoleAuth) -> RedirectResponse:
    return RedirectResponse("/console/users", status_code=303)


@router.get("/users", response_class=HTMLResponse)
async def users_list(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    q: str = "",
    sort: str = "name",
    cursor: str | None = None,
    segment: QueryId = None,
    columns: str | None = None,
) -> Response:
    """The Users list for the query in the URL: the whole page, the results, or more rows.

    COLUMNS (`plan,seats`) are the custom fields shown as extra columns; without it, the
    segment's (when one is shown), else the ones the admin chose last."""
    target = request.headers.get("HX-Target") if request.headers.get("HX-Request") else None
    error = None
    page = None
    segment_row = _current_segment(db, auth, segment)
    shown: list[FieldSpec] = []
    # The filters' names, which name the rows' teams and roles too (no statement more).
    names = users.link_names(db, actor=auth.actor)
    try:
        shown = _shown_columns(db, auth, columns, segment_row)
        page = users.list_users(
            db,
            actor=auth.actor,
            q=q,
            sort=sort,
            cursor=cursor,
            with_attributes=bool(shown),
            names=names,
        )
    except InvalidInput as exc:
        error = exc
    more = {"q": q, "sort": sort, "cursor": page.next_cursor} if page and page.next_cursor else None
    if more and columns is not None:
        more["columns"] = columns
    rows_html = write_rows(
        auth.actor,
        page.items if page else [],
        availability.of_listed(db, auth.actor.organization_id, page.items) if page else {},
        utcnow(),
        csrf_token=auth.csrf_token,
        more=more,
        zone=admin_zone({"auth": auth}),  # the times in the admin's time zone
        columns=shown,
    )
    if target == "load-more":
        return HTMLResponse(rows_html)
    # The whole page, or (for htmx) the results alone.
    whole = target != "users-results"
    actor = auth.actor
    segment_shown = segment_row if whole else None
    offered = list_columns.visible_fields(db, actor=actor)
    impersonating = getattr(request.state, "impersonation", None)
    signed_in = auth.signed_in
    shell = views.UsersShell(
        permissions=actor.permissions,
        csrf_token=auth.csrf_token,
        impersonation=tuple(impersonating.items()) if impersonating is not None else None,
        color_scheme=getattr(request.state, "color_scheme", "system"),
        user=(signed_in.user.name, signed_in.user.email) if signed_in is not None else ("", ""),
        sidebar=tuple(segments.list_segment_links(db, actor=actor)) if whole else (),
        segment=(segment_shown.id, segment_shown.name) if segment_shown is not None else None,
        q=q,
        query=_parsed_or_empty(q),
        sort=sort,
        names=(
            tuple(names.teams.values()),
            tuple(names.groups.values()),
            tuple(names.roles.values()),
        ),
        bulk_actions=tuple(
            (action, label)
            for action, label in BULK_LABELS.items()
            if actor.has(bulk.permission_for(action))
        ),
        error=error.message if error is not None else None,
        has_items=bool(page and page.items),
        columns=tuple((f.key, f.label) for f in shown),
        offered_columns=tuple((f.key, f.label) for f in offered),
    )
    # htmx swaps only 2xx answers: a bad query is shown in the results, with a 200.
    around_rows = views.users_shell(shell, whole=whole)
    return HTMLResponse(
        rows_html.encode().join(around_rows), status_code=400 if error and whole else 200
    )


def _shown_columns(
    db: DbSession, auth: ConsoleAuth, given: str | None, segment: Segment | None
) -> list[FieldSpec]:
    """The custom columns to show: GIVEN in the URL (a bad key refused, naming it), else
    the SEGMENT's, else the admin's last choice (fields archived since left out)."""
    if given is not None:
        return list_columns.chosen(db, actor=auth.actor, keys=list_columns.parse_keys(given))
    signed_in = auth.signed_in
    keys = (
        segment.columns
        if segment is not None and segment.columns
        # Read with the session (auth.SessionUser): no statement more.
        else list(signed_in.user.list_columns)
        if signed_in is not None and signed_in.user.id == auth.actor.user_id
        else list_columns.saved_keys(db, actor=auth.actor)
    )
    return list_columns.chosen(db, actor=auth.actor, keys=keys or [], strict=False)


@router.post("/users/columns")
async def choose_columns(
    db: DbSession,
    auth: ConsoleAuth,
    columns: Annotated[list[str] | None, Form()] = None,
    q: Annotated[str, Form()] = "",
    sort: Annotated[str, Form()] = "name",
) -> Response:
    """Keep the chosen custom columns as the admin's, then show the list with them."""
    fields = list_columns.choose(db, actor=auth.actor, keys=list(columns or []))
    chosen = ",".join(f.key for f in fields)
    return RedirectResponse(views.users_url(q, sort, columns=chosen), status_code=303)


class CommonUsersPage(CommonRoute):
    """GET /console/users (`users_list`) for the common request: q, sort and cursor, each
    once (a segment goes the declared way). Finding the route among the console's and
    solving its dependencies cost about a fifth of the page. What it does is what the
    route's dependencies do: `console_auth`, then the endpoint's call; errors go to the
    app's handlers as theirs.
    """

    def __init__(self, path: str) -> None:
        super().__init__(path, "users_list_common")

    def given(self, request: Request) -> dict[str, str] | None:
        given = request.query_params
        keys = given.keys()
        if len(keys) != len(given.multi_items()) or not _COMMON_PARAMETERS.issuperset(keys):
            return None
        return dict(given)

    async def answer(self, request: Request, db: Session, given: dict[str, str]) -> Response:
        auth = await console_auth(request, db)
        return await users_list(
            request,
            db,
            auth,
            q=given.get("q", ""),
            sort=given.get("sort", "name"),
            cursor=given.get("cursor"),
            columns=given.get("columns"),
        )


_COMMON_PARAMETERS = frozenset({"q", "sort", "cursor", "columns"})


@router.get("/users/counts", response_class=HTMLResponse)
async def users_counts(
    request: Request, db: DbSession, auth: ConsoleAuth, q: str = "", sort: str = "name"
) -> Response:
    """The figures of the Users list's tabs for Q, fetched by the page once its rows show.

    Counting may take longer than listing a page, so the list never waits for it. A bad
    query answers 400 naming q (htmx leaves the badges empty; the results show the error).
    """
    try:
        # Up to a tenth of a second: off the event loop, so that no other page waits on it.
        counts = await run_in_threadpool(users.count_users, db, actor=auth.actor, q=q)
    except InvalidInput as exc:
        response = partial(request, "console/_users_counts.html", auth, {"error": exc})
        response.status_code = 400
        return response
    context = {"counts": counts, "tabs": views.tabs(_parsed_or_empty(q), sort, counts)}
    return partial(request, "console/_users_counts.html", auth, context)


def _actions(auth: ConsoleAuth, view: dict[str, Any]) -> list[str]:
    """What the signed-in admin may do to the user shown by VIEW."""
    offered = lifecycle.available(
        auth.actor,
        user_id=int(view["id"]),
        status=view["status"],
        validated=view["validated"],
        team_id=int(view["team"]["id"]) if view["team"] else None,
    )
    return [action.value for action in offered]


def _parsed_or_empty(q: str) -> Query:
    try:
        return parse(q)
    except ValueError:
        return Query()


def _current_segment(db: DbSession, auth: ConsoleAuth, segment_id: int | None) -> Segment | None:
    if segment_id is None:
        return None
    return segments.get_segment(db, actor=auth.actor, segment_id=segment_id)


@router.post("/segments")
async def create_segment(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    name: Annotated[str, Form()] = "",
    q: Annotated[str, Form()] = "",
    sort: Annotated[str, Form()] = "name",
    shared: Annotated[bool, Form()] = False,
    columns: Annotated[str, Form()] = "",
) -> Response:
    """Save the current view (its query, sort and custom columns) as a segment, then
    show it."""
    data = SegmentCreate(
        name=name, query=q, sort=sort, shared=shared, columns=list_columns.parse_keys(columns)
    )
    segment = segments.create_segment(db, actor=auth.actor, data=data)
    return RedirectResponse(
        views.users_url(segment.query, segment.sort, segment=str(segment.id)), status_code=303
    )


@router.get("/segments/{segment_id}", response_class=HTMLResponse)
async def edit_segment_form(
    request: Request, segment_id: PathId, db: DbSession, auth: ConsoleAuth
) -> Response:
    segment = segments.get_segment(db, actor=auth.actor, segment_id=segment_id)
    return render(
        request,
        "console/segment.html",
        auth,
        db,
        segment=segment,
        form=None,
        errors={},
        sorts=list(users.SORTS),
        offered_columns=_offered_columns(db, auth, segment.columns),
        nav="users",
    )


def _offered_columns(
    db: DbSession, auth: ConsoleAuth, chosen: list[str] | None
) -> list[tuple[str, str]]:
    """The fields a segment's form offers as columns (key, label): the CHOSEN first, in
    their order, then the others in the schema's."""
    offered = {f.key: f.label for f in list_columns.visible_fields(db, actor=auth.actor)}
    first = [k for k in chosen or [] if k in offered]
    return [(k, offered[k]) for k in dict.fromkeys([*first, *offered])]


@router.post("/segments/{segment_id}", response_class=HTMLResponse)
async def edit_segment(
    request: Request,
    segment_id: PathId,
    db: DbSession,
    auth: ConsoleAuth,
    name: Annotated[str, Form()] = "",
    q: Annotated[str, Form()] = "",
    sort: Annotated[str, Form()] = "name",
    shared: Annotated[bool, Form()] = False,
    columns: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Save the edited segment, or show the form again with each field's problem.

    COLUMNS: the custom fields ticked (the form also sends an empty one, so that none
    ticked clears them); not sent at all, the segment's are kept."""
    kept = None if columns is None else [k.strip() for k in columns if k.strip()]
    data = SegmentUpdate(name=name, query=q, sort=sort, shared=shared, columns=kept)
    try:
        segment = segments.update_segment(db, actor=auth.actor, segment_id=segment_id, data=data)
    except InvalidInput as exc:
        segment = segments.get_segment(db, actor=auth.actor, segment_id=segment_id)
        return render(
            request,
            "console/segment.html",
            auth,
            db,
            status_code=400,
            segment=segment,
            form=data,
            errors=exc.fields,
            sorts=list(users.SORTS),
            offered_columns=_offered_columns(db, auth, segment.columns if kept is None else kept),
            nav="users",
        )
    return RedirectResponse(
        views.users_url(segment.query, segment.sort, segment=str(segment.id)), status_code=303
    )


@router.post("/segments/{segment_id}/delete")
async def delete_segment(segment_id: PathId, db: DbSession, auth: ConsoleAuth) -> Response:
    segments.delete_segment(db, actor=auth.actor, segment_id=segment_id)
    return RedirectResponse("/console/users", status_code=303)


@router.get("/users/{user_id}", response_class=HTMLResponse)
async def user_detail(
    request: Request,
    user_id: PathId,
    db: DbSession,
    auth: ConsoleAuth,
    action: str | None = None,
    done: str | None = None,
) -> Response:
    """A user's page; ?action= opens that action's dialog."""
    return user_page(request, db, auth, user_id, dialog=action, done=done)


# What a redirect's ?done= on a user's page did: the audit action whose words say it.
DONE_ACTIONS: dict[str, str] = {
    Action.VALIDATE.value: "user.validated",
    Action.INVALIDATE.value: "user.invalidated",
    Action.DISABLE.value: "user.disabled",
    Action.ENABLE.value: "user.enabled",
    Action.BAN.value: "user.banned",
    Action.UNBAN.value: "user.unbanned",
    Action.TRASH.value: "user.trashed",
    Action.RESTORE.value: "user.restored",
    Action.DELETE.value: "user.deleted",
    Action.REACTIVATE.value: "user.reactivated",
    Action.ACTIVATE.value: "user.activated",
    Action.REVOKE_SESSIONS.value: "user.sessions_revoked",
    "edit": "user.updated",
    "two_step_reset": "user.two_step_reset",
    "re_engagement": "user.re_engagement_sent",
    "resend_invitation": "invitation.resent",
    "add_to_group": "user.added_to_group",
    "assign_outreach": "user.outreach_assigned",
    "outreach_reassigned": "user.outreach_reassigned",
    "outreach_done": "user.outreach_done",
}
# Done by email: the toast names the address it went to.
EMAILED = frozenset({"resend_invitation", "re_engagement"})


def done_message(done: str | None, user: User) -> str | None:
    """The toast after DONE on USER's page: "Disabled Ann Lee", "Banned Ann Lee for 7
    days"; None for a ?done= that names nothing done here."""
    action = DONE_ACTIONS.get(done or "")
    if action is None:
        return None
    whom = (
        user.email if done in EMAILED else display_name(user.first_name, user.last_name, user.email)
    )
    changes: dict[str, Any] = {}
    if action == "user.banned" and user.status == "banned":
        changes = {"status": {"to": user.status}}
        if user.status_until is not None:
            changes["until"] = user.status_until.isoformat()
    return wording.sentence(action, whom, changes, user.status_changed_at)


def user_page(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    user_id: PathId,
    *,
    dialog: str | None = None,
    done: str | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
    stale: bool = False,
    impersonation_link: impersonation.NewImpersonation | None = None,
) -> Response:
    user = users.get_user(db, actor=auth.actor, user_id=user_id)
    editable = auth.actor.covers(Permission.USERS_UPDATE, user.team_id)
    return render(
        request,
        "console/user.html",
        auth,
        db,
        status_code=status_code,
        subject=loaded_user_view(user),
        actions=_actions(auth, loaded_user_view(user)),
        dialog=dialog,
        done=done,
        done_message=done_message(done, user),
        errors=errors or {},
        problem=problem,
        form=form or {},
        reasons=lifecycle.DISABLE_REASONS,
        editable=editable,
        # The organization's own fields: shown per their visibility, editable where the
        # schema lets admins (users.attributes checks it again on save).
        custom_fields=attribute_forms.shown_fields(
            db,
            user,
            attributes.party_of(auth.actor),
            may_edit=editable,
            raws=(form or {}).get("attributes"),
        ),
        stale=stale,
        # Offered to who holds the permission over the user; the rest is checked on use.
        can_impersonate=(
            auth.actor.covers(Permission.USERS_IMPERSONATE, user.team_id)
            and auth.actor.impersonator_id is None
            and user.id != auth.actor.user_id
        ),
        impersonation_link=impersonation_link,
        # Offered where the user has it and the viewer may edit them; checked again on use.
        can_reset_two_step=(
            editable and user.id != auth.actor.user_id and two_step.is_enabled(db, user)
        ),
        presence=availability.user_availability(db, user, utcnow()),
        churn=(
            churn.user_churn(db, actor=auth.actor, user_id=user.id)
            if auth.actor.covers(Permission.USERS_ACTIVITY, user.team_id)
            else None
        ),
        retention=churn.retention_card(db, actor=auth.actor, user=user),
        timeline=(
            activity.timeline(db, actor=auth.actor, user_id=user.id)
            if auth.actor.covers(Permission.USERS_ACTIVITY, user.team_id)
            else None
        ),
        version=user.version,
        choices=(
            access.assignable(db, actor=auth.actor, permission=Permission.USERS_UPDATE, user=user)
            if dialog == "edit" and editable
            else None
        ),
        nav="users",
    )


@router.post("/users/{user_id}/edit", response_class=HTMLResponse)
async def edit_user(
    request: Request,
    user_id: PathId,
    db: DbSession,
    auth: ConsoleAuth,
    settings: SettingsDep,
    version: Annotated[int, Form()],
    first_name: Annotated[str, Form()] = "",
    last_name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    team_id: Annotated[str, Form()] = "",
    group_ids: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
    role_ids: Annotated[list[str], Form()] = [],  # noqa: B006
) -> Response:
    """Save the edit form; when someone else saved first, show what they changed."""
    # Custom fields come as attributes.<key>: those the admin may edit, each checked
    # (and refused by name) by users.attributes.
    specs = [
        spec
        for spec, may in attributes.fields_for(
            db, auth.actor.organization_id, attributes.party_of(auth.actor)
        )
        if may
    ]
    custom, raws = attribute_forms.from_form(
        attribute_forms.multi_form(await request.form()), specs
    )
    form = {
        "first_name": first_name,
        "last_name": last_name,
        "email": email,
        "team_id": team_id,
        "group_ids": group_ids,
        "role_ids": role_ids,
        "attributes": raws,
    }
    data = UserUpdate(
        first_name=first_name,
        last_name=last_name,
        email=email,
        team_id=team_id or None,
        group_ids=group_ids,
        role_ids=role_ids,
        attributes=custom or None,
    )
    try:
        users.update_user(
            db,
            actor=auth.actor,
            user_id=user_id,
            data=data,
            version=version,
            base_url=settings.base_url,
        )
    except PreconditionFailed as exc:
        return user_page(
            request,
            db,
            auth,
            user_id,
            dialog="edit",
            form=form,
            status_code=412,
            problem=exc.message,
            stale=True,
        )
    except (InvalidInput, Conflict, PermissionDenied) as exc:
        if isinstance(exc, PermissionDenied) and not exc.fields:
            raise
        if not exc.fields and isinstance(exc, Conflict):
            return user_page(request, db, auth, user_id, problem=exc.message, status_code=409)
        return user_page(
            request,
            db,
            auth,
            user_id,
            dialog="edit",
            form=form,
            errors=exc.fields,
            # A role or team the admin may not give: the field says why.
            status_code=403 if isinstance(exc, PermissionDenied) else 400,
        )
    return RedirectResponse(f"/console/users/{user_id}?done=edit", status_code=303)


@router.get("/users/{user_id}/activity", response_class=HTMLResponse)
async def user_activity(
    request: Request, user_id: PathId, db: DbSession, auth: ConsoleAuth, cursor: str | None = None
) -> Response:
    """More of the user's timeline (htmx)."""
    page = activity.timeline(db, actor=auth.actor, user_id=user_id, cursor=cursor)
    return partial(
        request, "console/_timeline_rows.html", auth, {"timeline": page, "user_id": user_id}
    )


@router.post("/users/{user_id}/actions/{action}", response_class=HTMLResponse)
async def user_action(
    request: Request,
    user_id: PathId,
    action: Action,
    db: DbSession,
    auth: ConsoleAuth,
    settings: SettingsDep,
    reason_choice: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    days: Annotated[str, Form()] = "",
    permanent: Annotated[bool, Form()] = False,
    confirm_email: Annotated[str, Form()] = "",
) -> Response:
    """Apply an action from the user's page or the list's row menu."""
    form = {
        "reason_choice": reason_choice,
        "reason": reason,
        "days": days,
        "confirm_email": confirm_email,
    }
    chosen = reason.strip() or (reason_choice if reason_choice != "other" else "")
    try:
        given = lifecycle.ActionInput(
            reason=chosen or None,
            days=int(days) if days.strip() and not permanent else None,
            permanent=permanent,
            confirm_email=confirm_email,
        )
    except ValueError:
        return user_page(
            request,
            db,
            auth,
            user_id,
            dialog=action.value,
            form=form,
            status_code=400,
            errors={"days": f"'{days}' is not a number of days"},
        )
    try:
        lifecycle.apply(
            db,
            actor=auth.actor,
            user_id=user_id,
            action=action,
            given=given,
            base_url=settings.base_url,
        )
    except InvalidInput as exc:
        return user_page(
            request,
            db,
            auth,
            user_id,
            dialog=action.value,
            form=form,
            errors=exc.fields,
            status_code=400,
        )
    except Conflict as exc:
        return user_page(request, db, auth, user_id, problem=exc.message, status_code=409)
    return RedirectResponse(f"/console/users/{user_id}?done={action.value}", status_code=303)


@router.post("/users/{user_id}/two-step/reset", response_class=HTMLResponse)
async def reset_two_step(
    request: Request, user_id: PathId, db: DbSession, auth: ConsoleAuth
) -> Response:
    """Turn off a user's two-step verification (a lost phone)."""
    try:
        two_step.reset(db, actor=auth.actor, user_id=user_id)
    except Conflict as exc:
        return user_page(request, db, auth, user_id, problem=exc.message, status_code=409)
    return RedirectResponse(f"/console/users/{user_id}?done=two_step_reset", status_code=303)


@router.post("/users/{user_id}/impersonate", response_class=HTMLResponse)
async def impersonate_user(
    request: Request,
    user_id: PathId,
    db: DbSession,
    auth: ConsoleAuth,
    settings: SettingsDep,
    reason: Annotated[str, Form()] = "",
) -> Response:
    """The Impersonate dialog's "Generate URL": the link, shown once, to open elsewhere."""
    try:
        made = impersonation.start(
            db, actor=auth.actor, user_id=user_id, reason=reason, base_url=settings.base_url
        )
    except InvalidInput as exc:
        return user_page(
            request,
            db,
            auth,
            user_id,
            dialog="impersonate",
            form={"reason": reason},
            errors=exc.fields,
            status_code=400,
        )
    except PermissionDenied as exc:
        return user_page(request, db, auth, user_id, problem=exc.message, status_code=403)
    return user_page(request, db, auth, user_id, dialog="impersonate", impersonation_link=made)


@router.post("/users/{user_id}/re-engagement-email", response_class=HTMLResponse)
async def send_re_engagement(
    request: Request, user_id: PathId, db: DbSession, auth: ConsoleAuth, settings: SettingsDep
) -> Response:
    """A retention action from the churn card: one click, audited."""
    try:
        churn.send_re_engagement(db, actor=auth.actor, user_id=user_id, base_url=settings.base_url)
    except Conflict as exc:
        return user_page(request, db, auth, user_id, problem=exc.message, status_code=409)
    return RedirectResponse(f"/console/users/{user_id}?done=re_engagement", status_code=303)


@router.get("/audit", response_class=HTMLResponse)
async def audit_log(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    actor: str = "",
    action: str = "",
    target: str = "",
    since: str = "",
    until: str = "",
    cursor: str | None = None,
) -> Response:
    """The audit log, filterable by actor, action, target and time; each event opens."""
    form = {"actor": actor, "action": action, "target": target, "since": since, "until": until}
    error: str | None = None
    try:
        days = {
            k: date.fromisoformat(v) if v else None for k, v in (("since", since), ("until", until))
        }
    except ValueError:
        days = {"since": None, "until": None}
        error = "Dates are written 2026-01-31."
    page = audit.list_events(
        db,
        actor=auth.actor,
        where=audit_filter(actor, action, target, days["since"], days["until"]),
        cursor=cursor,
    )
    if request.headers.get("HX-Target") == "audit-more":
        return partial(request, "console/_audit_rows.html", auth, {"page": page, "form": form})
    return render(
        request,
        "console/audit.html",
        auth,
        db,
        page=page,
        form=form,
        error=error,
        actions=audit.actions(db, actor=auth.actor),
        nav="audit",
    )


@router.get("/settings", response_class=HTMLResponse)
async def settings_page(request: Request, db: DbSession, auth: ConsoleAuth) -> Response:
    return _settings(request, db, auth)


def _settings(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    churn_form: dict[str, Any] | None = None,
) -> Response:
    """The settings page; CHURN_FORM: the churn definition form's values as sent (shown
    with ERRORS), else the saved definition's."""
    overview = access.organization_overview(db, actor=auth.actor)
    organization = db.get_one(Organization, auth.actor.organization_id)
    churn_definition = churn_form or churn_settings.of_organization(organization).as_setting()
    return render(
        request,
        "console/settings.html",
        auth,
        db,
        status_code=status_code,
        overview=overview,
        invitation_days=invitation_ttl(organization).days,
        all_permissions=sorted(ALL_PERMISSIONS),
        permission_words=permission_words,
        require_validation=organizations.requires_validation(organization),
        show_disable_reason=organizations.shows_disable_reason(organization),
        allow_impersonation=organizations.allows_impersonation(organization),
        notify_impersonation=organizations.notifies_impersonation(organization),
        churn_cutoffs=[round(c * 100) for c in churn_rules.cutoffs_of(organization)],
        churn_predicts=churn_settings.of_organization(organization).sentence(),
        churn_definition=(churn_definition if auth.actor.has(Permission.SETTINGS_MANAGE) else None),
        registration=organizations.registration_policy(organization),
        registration_policies=list(RegistrationPolicy),
        registration_domains=", ".join(organizations.registration_domains(organization)),
        session_settings=MINUTES_SETTINGS,
        session_minutes=organizations.session_minutes(organization),
        keep_signed_in=organizations.allows_keep_signed_in(organization),
        two_step_required=organizations.requires_two_step(organization),
        errors=errors or {},
        saved=request.query_params.get("saved"),
        nav="settings",
    )


@router.post("/settings", response_class=HTMLResponse)
async def save_settings(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    invitation_ttl_days: Annotated[str, Form()] = "",
    require_validation: Annotated[bool, Form()] = False,
    show_disable_reason: Annotated[bool, Form()] = False,
    allow_impersonation: Annotated[bool, Form()] = False,
    notify_impersonation: Annotated[bool, Form()] = False,
    churn_medium: Annotated[str, Form()] = "30",
    churn_high: Annotated[str, Form()] = "60",
    registration: Annotated[str | None, Form()] = None,
    registration_domains: Annotated[str | None, Form()] = None,
    session_idle_minutes: Annotated[str | None, Form()] = None,
    session_max_minutes: Annotated[str | None, Form()] = None,
    keep_signed_in: Annotated[bool, Form()] = False,
    keep_signed_in_idle_minutes: Annotated[str | None, Form()] = None,
    keep_signed_in_max_minutes: Annotated[str | None, Form()] = None,
    two_step_required: Annotated[bool, Form()] = False,
) -> Response:
    minutes, problems = _whole_minutes(
        {
            "session_idle_minutes": session_idle_minutes,
            "session_max_minutes": session_max_minutes,
            "keep_signed_in_idle_minutes": keep_signed_in_idle_minutes,
            "keep_signed_in_max_minutes": keep_signed_in_max_minutes,
        }
    )
    if problems:
        return _settings(request, db, auth, errors=problems, status_code=400)
    try:
        days = int(invitation_ttl_days)
    except ValueError:
        problem = f"'{invitation_ttl_days}' is not a number of days"
        return _settings(
            request, db, auth, errors={"invitation_ttl_days": problem}, status_code=400
        )
    try:
        cutoffs = (float(churn_medium) / 100, float(churn_high) / 100)
    except ValueError:
        problem = f"'{churn_medium}' and '{churn_high}' are not both percentages"
        return _settings(request, db, auth, errors={"churn_cutoffs": problem}, status_code=400)
    try:
        organizations.update_settings(
            db,
            actor=auth.actor,
            invitation_ttl_days=days,
            require_validation=require_validation,
            show_disable_reason=show_disable_reason,
            allow_impersonation=allow_impersonation,
            notify_impersonation=notify_impersonation,
            churn_cutoffs=cutoffs,
            registration=registration,
            registration_domains=parse_domains(registration_domains)
            if registration_domains is not None
            else None,
            keep_signed_in=keep_signed_in,
            two_step_required_for_console=two_step_required,
            **minutes,
        )
    except InvalidInput as exc:
        return _settings(request, db, auth, errors=exc.fields, status_code=400)
    return RedirectResponse("/console/settings?saved=1", status_code=303)


def _whole_minutes(fields: dict[str, str | None]) -> tuple[dict[str, int], dict[str, str]]:
    """The fields sent (as whole numbers) and, by field, those that are not numbers."""
    minutes: dict[str, int] = {}
    problems: dict[str, str] = {}
    for name, text in fields.items():
        if text is None:
            continue
        try:
            minutes[name] = int(text.strip())
        except ValueError:
            problems[name] = f"{text[:40]!r} is not a whole number of minutes"
    return minutes, problems


# Any: mypy cannot bind the services' model type variable through a dict lookup.
NAMED_KINDS: dict[str, Any] = {"teams": Team, "groups": Group, "roles": Role}


def _settings_problem(
    request: Request, db: DbSession, auth: ConsoleAuth, exc: DomainError
) -> Response:
    problem = "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) or exc.message
    return _settings(request, db, auth, errors={"access": problem}, status_code=400)


@router.post("/settings/{kind}", response_class=HTMLResponse)
async def add_named(
    request: Request,
    kind: str,
    db: DbSession,
    auth: ConsoleAuth,
    name: Annotated[str, Form()] = "",
) -> Response:
    """Add a team or a group."""
    model = NAMED_KINDS.get(kind)
    if model is None or model is Role:
        raise NotFound(f"No settings for '{kind}'.")
    try:
        admin.create_named(db, actor=auth.actor, model=model, name=name)
    except (InvalidInput, Conflict) as exc:
        return _settings_problem(request, db, auth, exc)
    return RedirectResponse("/console/settings?saved=1", status_code=303)


@router.post("/settings/{kind}/{item_id}", response_class=HTMLResponse)
async def rename_named(
    request: Request,
    kind: str,
    item_id: PathId,
    db: DbSession,
    auth: ConsoleAuth,
    name: Annotated[str, Form()] = "",
) -> Response:
    model = NAMED_KINDS.get(kind)
    if model is None:
        raise NotFound(f"No settings for '{kind}'.")
    try:
        admin.rename(db, actor=auth.actor, model=model, item_id=item_id, name=name)
    except (InvalidInput, Conflict) as exc:
        return _settings_problem(request, db, auth, exc)
    return RedirectResponse("/console/settings?saved=1", status_code=303)


@router.post("/settings/{kind}/{item_id}/delete")
async def delete_named(kind: str, item_id: PathId, db: DbSession, auth: ConsoleAuth) -> Response:
    model = NAMED_KINDS.get(kind)
    if model is None:
        raise NotFound(f"No settings for '{kind}'.")
    admin.delete(db, actor=auth.actor, model=model, item_id=item_id)
    return RedirectResponse("/console/settings?saved=1", status_code=303)


@router.post("/roles", response_class=HTMLResponse)
async def save_role(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    role_id: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "organization",
    permissions: Annotated[list[str], Form()] = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:
    """Add a custom role, or change one (role_id)."""
    body = RoleBody(name=name, scope=scope, permissions=permissions)
    try:
        if role_id:
            admin.update_role(db, actor=auth.actor, role_id=int(role_id), body=body)
        else:
            admin.create_role(db, actor=auth.actor, body=body)
    except (InvalidInput, Conflict) as exc:
        return _settings_problem(request, db, auth, exc)
    return RedirectResponse("/console/settings?saved=1", status_code=303)
