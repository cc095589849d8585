"""/console/settings/password-imports: what imported password hashes may be (salted SHA-2
on or off) and a Firebase project's hash parameters, saved by
`auth.password_imports.update_settings` (it checks, names the field at fault, seals the
signer key and audits the change). The signer key is never shown back: "set" or not."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from userdesk.auth import password_imports
from userdesk.errors import InvalidInput
from userdesk.web.console.pages import render
from userdesk.web.deps import ConsoleAuth, DbSession, SettingsDep

router = APIRouter(prefix="/console/settings", tags=["console"], include_in_schema=False)
PAGE = "/console/settings/password-imports"


def _page(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    shown = password_imports.settings_of(db, actor=auth.actor)
    return render(
        request,
        "console/password_imports.html",
        auth,
        db,
        status_code=status_code,
        shown=shown,
        form=form
        or {
            "salt_separator": shown.salt_separator,
            "rounds": "" if shown.rounds is None else str(shown.rounds),
            "mem_cost": "" if shown.mem_cost is None else str(shown.mem_cost),
        },
        errors=errors or {},
        saved=request.query_params.get("saved"),
        nav="settings",
    )


@router.get("/password-imports", response_class=HTMLResponse)
async def password_imports_page(request: Request, db: DbSession, auth: ConsoleAuth) -> Response:
    return _page(request, db, auth)


@router.post("/password-imports", response_class=HTMLResponse)
async def save_password_imports(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    settings: SettingsDep,
    allow_salted_sha: Annotated[bool, Form()] = False,
    firebase_signer_key: Annotated[str, Form()] = "",
    firebase_salt_separator: Annotated[str, Form()] = "",
    firebase_rounds: Annotated[str, Form()] = "",
    firebase_mem_cost: Annotated[str, Form()] = "",
    forget_firebase: Annotated[bool, Form()] = False,
) -> Response:
    """Save; the page again with the errors beside their fields when refused (the signer
    key typed is not shown again either way)."""
    form = {
        "salt_separator": firebase_salt_separator,
        "rounds": firebase_rounds,
        "mem_cost": firebase_mem_cost,
    }
    numbers: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    for name, text in (
        ("firebase_rounds", firebase_rounds),
        ("firebase_mem_cost", firebase_mem_cost),
    ):
        text = text.strip()
        if not text:
            numbers[name] = None
        elif text.isascii() and text.isdigit() and len(text) <= 4:
            numbers[name] = int(text)
        else:
            errors[name] = f"{text[:40]!r} is not a whole number"
    firebase_given = bool(
        firebase_signer_key.strip() or numbers["firebase_rounds"] or numbers["firebase_mem_cost"]
    )
    if not errors:
        try:
            password_imports.update_settings(
                db,
                actor=auth.actor,
                settings=settings,
                allow_salted_sha=allow_salted_sha,
                firebase_signer_key=firebase_signer_key if firebase_given else None,
                firebase_salt_separator=firebase_salt_separator if firebase_given else None,
                firebase_rounds=numbers["firebase_rounds"],
                firebase_mem_cost=numbers["firebase_mem_cost"],
                forget_firebase=forget_firebase,
            )
        except InvalidInput as exc:
            errors = dict(exc.fields)
    if errors:
        return _page(request, db, auth, errors=errors, form=form, status_code=400)
    return RedirectResponse(f"{PAGE}?saved=1", status_code=303)
