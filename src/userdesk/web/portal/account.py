"""The signed-in person's own page, /me: name, color scheme, email, password and sessions.

Plain forms (no JavaScript needed): a change redirects back to /me with a message; a
refused one re-renders the page with the message next to the field.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from userdesk.auth.throttle import RateLimited
from userdesk.errors import DomainError, NotAuthenticated
from userdesk.two_step import service as two_step
from userdesk.users import account, attributes
from userdesk.users.models import User
from userdesk.web import attribute_forms
from userdesk.web.deps import Auth, CurrentAuth, DbSession, SettingsDep
from userdesk.web.inputs import PathId
from userdesk.web.problems import status_of
from userdesk.web.templating import templates

router = APIRouter(tags=["portal"], include_in_schema=False)

DONE = {
    "name": "Your name is saved.",
    "details": "Your details are saved.",
    "color_scheme": "Your color scheme is saved.",
    "password": "Your password is changed.",
    "email": "Check your new address: we sent it a link to confirm the change.",
    "session": "That session is signed out.",
    "sessions": "You are signed out everywhere else.",
}


def me_page(
    request: Request,
    db: DbSession,
    found: Auth,
    *,
    errors: dict[str, dict[str, str]] | None = None,
    values: dict[str, str] | None = None,
    message: str | None = None,
    error: str | None = None,
    status: int = 200,
    attribute_raws: dict[str, attribute_forms.Raw] | None = None,
) -> Response:
    """The /me page, with ERRORS by form and then by field, and the values typed
    (ATTRIBUTE_RAWS: the organization's fields as the details form sent them)."""
    sessions = (
        account.list_own_sessions(
            db,
            actor=found.actor,
            user=found.user,
            current_session_id=found.session.id if found.session else None,
        )
        if found.user is not None and found.actor.user_id == found.user.id
        else []
    )
    return templates.TemplateResponse(
        request,
        "portal/me.html",
        {
            "auth": found,
            "user": found.user,
            "sessions": sessions,
            "errors": errors or {},
            "values": values or {},
            "message": message or _done_message(request),
            "error": error,
            "sent": request.query_params.get("sent"),
            "impersonating": found.impersonation is not None,
            # The organization's fields the user sees (per their visibility), editable
            # where users may edit them; required ones marked.
            "own_fields": attribute_forms.shown_fields(
                db,
                found.user,
                attributes.Party.SELF,
                may_edit=found.session is not None,
                raws=attribute_raws,
                required_on="self",
            )
            if found.user is not None
            else [],
            "two_step": two_step.summary(
                db,
                user=found.user,
                has_console_access=found.actor.has_console_access or found.two_step_due,
            )
            if found.user is not None
            else None,
        },
        status_code=status,
    )


def _done_message(request: Request) -> str | None:
    done = request.query_params.get("done", "")
    message = DONE.get(done)
    ended = request.query_params.get("ended", "")
    if message and ended.isdigit() and done in ("password", "sessions"):
        count = int(ended)
        if done == "password" and count:
            message += f" {count} other session{'s' if count != 1 else ''} signed out."
        if done == "sessions":
            message = f"Signed out of {count} other session{'s' if count != 1 else ''}."
    return message


def own_user(found: Auth) -> User:
    if found.user is None or found.session is None:
        raise NotAuthenticated("Sign in first.", code="not_authenticated")
    return found.user


def refused(
    request: Request,
    db: DbSession,
    found: Auth,
    form: str,
    exc: DomainError,
    values: dict[str, str],
) -> Response:
    """The page again, with EXC next to the fields it names (else atop FORM)."""
    fields = dict(exc.fields)
    if form == "sessions":  # a session's id has no field of its own: said atop the form
        fields = {k: v for k, v in fields.items() if k == "current_password"}
    if not fields:
        fields = {"form": exc.message}
    response = me_page(
        request, db, found, errors={form: fields}, values=values, status=status_of(exc)
    )
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


@router.post("/me/name")
def change_name(
    request: Request,
    db: DbSession,
    found: CurrentAuth,
    first_name: Annotated[str, Form()] = "",
    last_name: Annotated[str, Form()] = "",
) -> Response:
    """Change my first and last name."""
    user = own_user(found)
    try:
        account.change_own_name(
            db, actor=found.actor, user=user, first_name=first_name, last_name=last_name
        )
    except DomainError as exc:
        values = {"first_name": first_name, "last_name": last_name}
        return refused(request, db, found, "name", exc, values)
    return RedirectResponse("/me?done=name", status_code=303)


@router.post("/me/details")
async def change_details(request: Request, db: DbSession, found: CurrentAuth) -> Response:
    """Save my values of the organization's fields that I may edit (attributes.<key>)."""
    user = own_user(found)
    specs = [
        spec
        for spec, may in attributes.fields_for(db, user.organization_id, attributes.Party.SELF)
        if may
    ]
    values, raws = attribute_forms.from_form(
        attribute_forms.multi_form(await request.form()), specs
    )
    try:
        account.change_own_attributes(db, actor=found.actor, user=user, values=values)
    except DomainError as exc:
        fields = dict(exc.fields) or {"form": exc.message}
        return me_page(
            request,
            db,
            found,
            errors={"details": fields},
            attribute_raws=raws,
            status=status_of(exc),
        )
    return RedirectResponse("/me?done=details#details", status_code=303)


@router.post("/me/color-scheme")
def choose_color_scheme(
    request: Request,
    db: DbSession,
    found: CurrentAuth,
    color_scheme: Annotated[str, Form()] = "",
) -> Response:
    """Choose light, dark, or the system's colors for my pages."""
    user = own_user(found)
    try:
        account.choose_own_color_scheme(db, actor=found.actor, user=user, color_scheme=color_scheme)
    except DomainError as exc:
        return refused(request, db, found, "color_scheme", exc, {"color_scheme": color_scheme})
    return RedirectResponse("/me?done=color_scheme#appearance", status_code=303)


@router.post("/me/password")
def change_password(
    request: Request,
    db: DbSession,
    found: CurrentAuth,
    settings: SettingsDep,
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    new_password_again: Annotated[str, Form()] = "",
    sign_out_others: Annotated[str, Form()] = "",
) -> Response:
    """Change my password, proving the current one; maybe sign out my other sessions."""
    user = own_user(found)
    values = {"sign_out_others": sign_out_others}
    if new_password != new_password_again:
        errors = {"new_password_again": "does not match the new password"}
        return me_page(request, db, found, errors={"password": errors}, values=values, status=400)
    try:
        ended = account.change_own_password(
            db,
            actor=found.actor,
            user=user,
            current_password=current_password,
            new_password=new_password,
            sign_out_others=bool(sign_out_others),
            current_session_id=_session_id(found),
            base_url=settings.base_url,
        )
    except DomainError as exc:
        return refused(request, db, found, "password", exc, values)
    return RedirectResponse(f"/me?done=password&ended={ended}", status_code=303)


@router.post("/me/email")
def change_email(
    request: Request,
    db: DbSession,
    found: CurrentAuth,
    settings: SettingsDep,
    email: Annotated[str, Form()] = "",
    current_password: Annotated[str, Form()] = "",
) -> Response:
    """Ask to move to a new address: it gets a link, the current one a notice."""
    user = own_user(found)
    try:
        account.request_own_email_change(
            db,
            actor=found.actor,
            user=user,
            current_password=current_password,
            new_email=email,
            base_url=settings.base_url,
        )
    except DomainError as exc:
        return refused(request, db, found, "email", exc, {"email": email})
    return RedirectResponse("/me?done=email", status_code=303)


@router.post("/me/sessions/others/end")
def end_other_sessions(
    request: Request,
    db: DbSession,
    found: CurrentAuth,
    current_password: Annotated[str, Form()] = "",
) -> Response:
    """Sign me out everywhere but here."""
    user = own_user(found)
    try:
        ended = account.end_other_sessions(
            db,
            actor=found.actor,
            user=user,
            current_session_id=_session_id(found),
            current_password=current_password,
        )
    except DomainError as exc:
        return refused(request, db, found, "sessions", exc, {})
    return RedirectResponse(f"/me?done=sessions&ended={ended}", status_code=303)


@router.post("/me/sessions/{session_id}/end")
def end_session(
    request: Request,
    session_id: PathId,
    db: DbSession,
    found: CurrentAuth,
    current_password: Annotated[str, Form()] = "",
) -> Response:
    """Sign out one of my other sessions."""
    user = own_user(found)
    try:
        account.end_own_session(
            db,
            actor=found.actor,
            user=user,
            session_id=session_id,
            current_session_id=_session_id(found),
            current_password=current_password,
        )
    except DomainError as exc:
        return refused(request, db, found, "sessions", exc, {})
    return RedirectResponse("/me?done=session", status_code=303)


def _session_id(found: Auth) -> int | None:
    return found.session.id if found.session else None
