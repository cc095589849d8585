"""/console/settings/user-fields: Settings > User fields, the organization's user profile
schema. Lists the fields, adds one, edits one (a type change that leaves values behind
says how many and asks to drop them), archives, restores and purges (after the key is
typed). Every change goes through `users.fields`, which checks `settings.manage` (as
/api/v1/user-fields does), names the setting at fault and audits; the page itself is
shown to who may change it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from userdesk.errors import Conflict, InvalidInput
from userdesk.users import fields
from userdesk.users.field_schemas import (
    AUDIENCES,
    FIELD_TYPES,
    REQUIRED_ON,
    FieldValidation,
    UserFieldCreate,
    UserFieldUpdate,
)
from userdesk.users.models import UserField
from userdesk.web.console.pages import render
from userdesk.web.deps import ConsoleAuth, DbSession
from userdesk.web.inputs import PathId

router = APIRouter(prefix="/console/settings", tags=["console"], include_in_schema=False)
PAGE = "/console/settings/user-fields"

TYPE_LABELS = {
    "text": "Text",
    "number": "Number",
    "boolean": "Yes / no",
    "date": "Date",
    "choice": "One of a list",
    "choices": "Several of a list",
    "email": "Email",
    "url": "URL",
}
AUDIENCE_LABELS = {
    "admins": "Admins",
    "self": "Admins and the user (on /me)",
    "system": "Only the system (API keys)",
}
REQUIRED_LABELS = {"invitation": "On invitation", "self": "On the user's own page"}
DONE = {
    "added": "Field added",
    "saved": "Field saved",
    "archived": "Field archived: its values are kept, hidden, until it is restored or purged",
    "restored": "Field restored, with its values",
    "purged": "Field purged with its values",
}
LIMITS = ("min_length", "max_length", "pattern", "min", "max")


@dataclass
class FieldForm:
    """The settings of a field as the add and edit forms post them (blank: not given; the
    routes fill in what a blank means for them)."""

    label: Annotated[str, Form()] = ""
    type: Annotated[str, Form()] = ""
    options: Annotated[str, Form()] = ""
    required_on: Annotated[Sequence[str], Form()] = ()
    edit_by: Annotated[str, Form()] = ""
    visibility: Annotated[str, Form()] = ""
    searchable: Annotated[bool, Form()] = False
    min_length: Annotated[str, Form()] = ""
    max_length: Annotated[str, Form()] = ""
    pattern: Annotated[str, Form()] = ""
    min: Annotated[str, Form()] = ""
    max: Annotated[str, Form()] = ""

    def shown(self, **given: Any) -> dict[str, Any]:
        """The form's values as the page shows them again, GIVEN put in their place."""
        return {**asdict(self), "required_on": list(self.required_on), **given}


FieldFormDep = Annotated[FieldForm, Depends()]


def _page(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    *,
    editing: UserField | None = None,
    purging: UserField | None = None,
    form: dict[str, Any] | None = None,
    edit_form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    unconvertible: str | None = None,
    status_code: int = 200,
) -> Response:
    listed = fields.list_fields_to_manage(db, actor=auth.actor)
    done = DONE.get(request.query_params.get("done", ""))
    return render(
        request,
        "console/user_fields.html",
        auth,
        db,
        status_code=status_code,
        fields=listed,
        editing=editing,
        purging=purging,
        form=form or {"type": "text", "edit_by": "admins", "visibility": ""},
        edit_form=edit_form or (_shown(editing) if editing else {}),
        errors=errors or {},
        problem=problem,
        unconvertible=unconvertible,
        done=done,
        types=FIELD_TYPES,
        type_labels=TYPE_LABELS,
        audiences=AUDIENCES,
        audience_labels=AUDIENCE_LABELS,
        required_on=REQUIRED_ON,
        required_labels=REQUIRED_LABELS,
        nav="settings",
    )


def _shown(field: UserField) -> dict[str, Any]:
    """A field's settings as its edit form holds them."""
    limits = dict(field.validation or {})
    return {
        "label": field.label,
        "type": field.type,
        "options": "\n".join(field.options or []),
        "required_on": list(field.required_on or []),
        "edit_by": field.editable_by,
        "visibility": field.visibility,
        "searchable": field.searchable,
        **{name: "" if limits.get(name) is None else _number_text(limits[name]) for name in LIMITS},
    }


def _number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _options(text: str) -> list[str] | None:
    """The options textarea: one per line, blank lines left out."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines or None


def _limits(form: dict[str, Any], type_: str) -> tuple[FieldValidation | None, dict[str, str]]:
    """The limit inputs as a FieldValidation (blank ones left out); or what is wrong with
    them, by field."""
    given: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in LIMITS:
        text = str(form.get(name) or "").strip()
        if not text:
            continue
        if name in ("min_length", "max_length"):
            if not (text.isascii() and text.isdigit() and len(text) <= 6):
                errors[f"validation.{name}"] = f"'{text[:40]}' is not a whole number"
                continue
            given[name] = int(text)
        elif name in ("min", "max") and type_ == "number":
            try:
                given[name] = float(text) if not text.lstrip("-").isdigit() else int(text)
            except ValueError:
                errors[f"validation.{name}"] = f"'{text[:40]}' is not a number"
        else:
            given[name] = text
    if errors:
        return None, errors
    try:
        return FieldValidation(**given), {}
    except ValidationError as exc:
        return None, _pydantic_errors(exc, prefix="validation.")


def _pydantic_errors(exc: ValidationError, prefix: str = "") -> dict[str, str]:
    return {
        prefix + ".".join(str(part) for part in error["loc"]): error["msg"]
        for error in exc.errors()
    }


def _problems(exc: InvalidInput | Conflict) -> tuple[dict[str, str], str | None]:
    """A refusal as errors beside fields, else a message atop the form."""
    return (dict(exc.fields), None) if exc.fields else ({}, exc.message)


@router.get("/user-fields", response_class=HTMLResponse)
async def user_fields_page(request: Request, db: DbSession, auth: ConsoleAuth) -> Response:
    """The organization's fields and the form to add one."""
    return _page(request, db, auth)


@router.post("/user-fields", response_class=HTMLResponse)
async def add_user_field(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    given: FieldFormDep,
    key: Annotated[str, Form()] = "",
) -> Response:
    """Add a field; the page again with each refused setting named when refused."""
    type_ = given.type or "text"
    edit_by = given.edit_by or "admins"
    form = given.shown(
        key=key,
        type=type_,
        edit_by=edit_by,
        # A field its users edit is one they see; else admins see it (unless chosen).
        visibility=given.visibility or ("self" if edit_by == "self" else "admins"),
    )
    limits, errors = _limits(form, type_)
    if not errors:
        try:
            data = UserFieldCreate(
                key=key.strip(),
                label=given.label,
                type=type_,
                options=_options(given.options),
                required_on=form["required_on"],
                visibility=form["visibility"],
                editable_by=edit_by,
                validation=limits or FieldValidation(),
                searchable=given.searchable,
            )
            fields.create_field(db, actor=auth.actor, data=data)
        except ValidationError as exc:
            errors = _pydantic_errors(exc)
        except (InvalidInput, Conflict) as exc:
            errors, problem = _problems(exc)
            if problem:
                return _page(
                    request, db, auth, form=form, problem=problem, status_code=_status(exc)
                )
            return _page(request, db, auth, form=form, errors=errors, status_code=_status(exc))
    if errors:
        return _page(request, db, auth, form=form, errors=errors, status_code=400)
    return RedirectResponse(f"{PAGE}?done=added", status_code=303)


def _status(exc: InvalidInput | Conflict) -> int:
    return 409 if isinstance(exc, Conflict) else 400


@router.get("/user-fields/{field_id}", response_class=HTMLResponse)
async def user_field_form(
    request: Request, field_id: PathId, db: DbSession, auth: ConsoleAuth, purge: bool = False
) -> Response:
    """The page with one field's edit form open (?purge=1: the purge confirmation)."""
    fields.list_fields_to_manage(db, actor=auth.actor)  # who may not change it sees nothing
    field = fields.get_field(db, actor=auth.actor, field_id=field_id)
    if purge:
        return _page(request, db, auth, purging=field)
    return _page(request, db, auth, editing=field)


@router.post("/user-fields/{field_id}", response_class=HTMLResponse)
async def save_user_field(
    request: Request,
    field_id: PathId,
    db: DbSession,
    auth: ConsoleAuth,
    given: FieldFormDep,
    drop_unconvertible: Annotated[bool, Form()] = False,
) -> Response:
    """Save a field's settings. A type change (or fewer options, narrower limits) that
    leaves values behind is refused with how many; sent again with drop_unconvertible,
    those are dropped and the rest converted."""
    field = fields.get_field(db, actor=auth.actor, field_id=field_id)
    new_type = given.type or field.type
    form = given.shown(
        type=new_type,
        edit_by=given.edit_by or field.editable_by,
        visibility=given.visibility or field.visibility,
    )
    # A new type keeps the limits that fit it (users.fields); else the form's limits.
    limits, errors = (None, {}) if new_type != field.type else _limits(form, new_type)
    if errors:
        return _page(
            request, db, auth, editing=field, edit_form=form, errors=errors, status_code=400
        )
    try:
        data = UserFieldUpdate(
            label=given.label,
            type=new_type,
            options=_options(given.options),
            required_on=form["required_on"],
            visibility=form["visibility"],
            editable_by=form["edit_by"],
            searchable=given.searchable,
            drop_unconvertible=drop_unconvertible,
            validation=limits,  # None: the limits that fit the new type are kept
        )
        with db.begin_nested():  # refused half-way (values that do not convert): undone
            fields.update_field(db, actor=auth.actor, field_id=field_id, data=data)
    except ValidationError as exc:
        return _page(
            request,
            db,
            auth,
            editing=field,
            edit_form=form,
            errors=_pydantic_errors(exc),
            status_code=400,
        )
    except (InvalidInput, Conflict) as exc:
        db.expire_all()  # the savepoint undid the change: show the field as saved
        field = fields.get_field(db, actor=auth.actor, field_id=field_id)
        if exc.code == "user_field.unconvertible":
            return _page(
                request,
                db,
                auth,
                editing=field,
                edit_form=form,
                unconvertible=exc.message,
                status_code=409,
            )
        errors, problem = _problems(exc)
        return _page(
            request,
            db,
            auth,
            editing=field,
            edit_form=form,
            errors=errors,
            problem=problem,
            status_code=_status(exc),
        )
    return RedirectResponse(f"{PAGE}?done=saved", status_code=303)


@router.post("/user-fields/{field_id}/archive")
async def archive_user_field(field_id: PathId, db: DbSession, auth: ConsoleAuth) -> Response:
    """Archive a field: values kept, hidden, not writable."""
    fields.archive_field(db, actor=auth.actor, field_id=field_id)
    return RedirectResponse(f"{PAGE}?done=archived", status_code=303)


@router.post("/user-fields/{field_id}/restore")
async def restore_user_field(field_id: PathId, db: DbSession, auth: ConsoleAuth) -> Response:
    """Bring an archived field back, with its values."""
    fields.restore_field(db, actor=auth.actor, field_id=field_id)
    return RedirectResponse(f"{PAGE}?done=restored", status_code=303)


@router.post("/user-fields/{field_id}/purge", response_class=HTMLResponse)
async def purge_user_field(
    request: Request,
    field_id: PathId,
    db: DbSession,
    auth: ConsoleAuth,
    confirm_key: Annotated[str, Form()] = "",
) -> Response:
    """Delete a field and its values for good, once its key is typed to confirm."""
    field = fields.get_field(db, actor=auth.actor, field_id=field_id)
    fields.list_fields_to_manage(db, actor=auth.actor)  # refused before a typo is told
    if confirm_key.strip() != field.key:
        errors = {"confirm_key": f"'{confirm_key.strip()[:60]}' is not the key '{field.key}'"}
        return _page(request, db, auth, purging=field, errors=errors, status_code=400)
    fields.purge_field(db, actor=auth.actor, field_id=field_id)
    return RedirectResponse(f"{PAGE}?done=purged", status_code=303)
