"""/console: add a user, the invite wizard, invitations, the mailbox, email templates."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from userdesk.access import service as access
from userdesk.audit import wording
from userdesk.db.session import Database, outside_transaction
from userdesk.errors import DomainError, InvalidInput
from userdesk.imports import service as imports
from userdesk.invitations import service as invitations
from userdesk.invitations.rules import parse_people
from userdesk.invitations.schemas import InvitationCreate, Person, WelcomeEmail
from userdesk.jobs import service as jobs
from userdesk.jobs.schemas import JobRead
from userdesk.mail import mailbox as mailboxes
from userdesk.mail import service as mail
from userdesk.mail.rules import EmailKind, Template
from userdesk.segments import columns as list_columns
from userdesk.users import attributes, bulk, lifecycle
from userdesk.users import service as users
from userdesk.users.bulk import BULK_LABELS, BulkRequest
from userdesk.users.field_rules import FieldSpec
from userdesk.users.schemas import UserCreate
from userdesk.web import attribute_forms
from userdesk.web.console.pages import partial, render
from userdesk.web.deps import ConsoleAuth, DbSession, SettingsDep
from userdesk.web.downloads import csv_download
from userdesk.web.inputs import PathId

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

ListField = Annotated[list[str], Form()]
REPORT_ROWS_SHOWN = 500  # of an import's failed rows; the API and the CLI list them all


@router.get("/users/new", response_class=HTMLResponse)
async def add_user_form(request: Request, db: DbSession, auth: ConsoleAuth) -> Response:
    choices = access.assignable(db, actor=auth.actor)
    return render(
        request,
        "console/user_new.html",
        auth,
        db,
        choices=choices,
        form=None,
        errors={},
        nav="users",
    )


@router.post("/users/new", response_class=HTMLResponse)
async def add_user(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    settings: SettingsDep,
    email: Annotated[str, Form()] = "",
    first_name: Annotated[str, Form()] = "",
    last_name: Annotated[str, Form()] = "",
    team_id: Annotated[str, Form()] = "",
    group_ids: ListField = [],  # noqa: B006 - FastAPI copies defaults
    role_ids: ListField = [],  # noqa: B006
    send_welcome_email: Annotated[bool, Form()] = False,
) -> Response:
    data = UserCreate(
        email=email,
        first_name=first_name,
        last_name=last_name,
        team_id=team_id or None,
        group_ids=group_ids,
        role_ids=role_ids,
        send_welcome_email=send_welcome_email,
    )
    try:
        user = users.create_user(db, actor=auth.actor, data=data, base_url=settings.base_url)
    except (InvalidInput, DomainError) as exc:
        if not exc.fields:
            raise
        choices = access.assignable(db, actor=auth.actor)
        return render(
            request,
            "console/user_new.html",
            auth,
            db,
            status_code=400,
            choices=choices,
            form=data,
            errors=exc.fields,
            nav="users",
        )
    return RedirectResponse(f"/console/users/{user.id}", status_code=303)


@router.get("/invite", response_class=HTMLResponse)
async def invite_wizard(request: Request, db: DbSession, auth: ConsoleAuth) -> Response:
    """The five steps: people, segmentation, roles, welcome email, summary."""
    choices = access.assignable(db, actor=auth.actor)
    # Back-office roles only: one that gives no access (Member) is refused by invite().
    choices = replace(choices, roles=[r for r in choices.roles if access.gives_back_office(r)])
    template = mail.template_for(db, auth.actor.organization_id, EmailKind.INVITATION)
    return render(
        request,
        "console/invite.html",
        auth,
        db,
        choices=choices,
        email_template=template,
        invite_fields=_invite_fields(db, auth),
        nav="invitations",
    )


def _invite_fields(db: DbSession, auth: ConsoleAuth) -> list[FieldSpec]:
    """The organization's fields required on invitation: asked per person."""
    return attribute_forms.required_fields(
        db, auth.actor.organization_id, attributes.party_of(auth.actor), "invitation"
    )


@router.post("/invite/people", response_class=HTMLResponse)
async def pasted_people(
    request: Request, db: DbSession, auth: ConsoleAuth, paste: Annotated[str, Form()] = ""
) -> Response:
    """The rows a pasted list makes, each with its problem (htmx)."""
    context = {"people": parse_people(paste), "invite_fields": _invite_fields(db, auth)}
    return partial(request, "console/_invite_rows.html", auth, context)


@router.post("/email-preview", response_class=HTMLResponse)
async def email_preview(
    request: Request,
    auth: ConsoleAuth,
    subject: Annotated[str, Form()] = "",
    body: Annotated[str, Form()] = "",
) -> Response:
    """A template rendered with sample values, or what is wrong with it (htmx)."""
    try:
        shown, error = mail.preview(Template(subject, body)), None
    except InvalidInput as exc:
        shown, error = None, exc
    return partial(request, "console/_email_preview.html", auth, {"shown": shown, "error": error})


@router.post("/invite/email-preview", response_class=HTMLResponse)
async def invitation_preview(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    settings: SettingsDep,
    subject: Annotated[str, Form()] = "",
    body: Annotated[str, Form()] = "",
    email: ListField = [],  # noqa: B006
    first_name: ListField = [],  # noqa: B006
    last_name: ListField = [],  # noqa: B006
) -> Response:
    """The invitation email as the first person listed would get it (htmx)."""
    person = next(
        (
            Person(email=e, first_name=f, last_name=last)
            for e, f, last in zip(email, first_name, last_name, strict=False)
            if e.strip()
        ),
        None,
    )
    try:
        shown = invitations.preview(
            db,
            actor=auth.actor,
            template=Template(subject, body),
            base_url=settings.base_url,
            person=person,
        )
        error = None
    except InvalidInput as exc:
        shown, error = None, exc
    context: dict[str, object] = {
        "shown": shown.email if shown else None,
        "invitation": shown,
        "error": error,
    }
    return partial(request, "console/_email_preview.html", auth, context)


@router.get("/invite/done", response_class=HTMLResponse)
async def invite_done(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    invited: str = "",
    existing: str = "",
) -> Response:
    """What an invitation made: the page the wizard lands on (so a reload sends nothing)."""
    result = invitations.invited(
        db,
        actor=auth.actor,
        invitation_ids=[i for i in invited.split(",") if i],
        user_ids=[i for i in existing.split(",") if i],
    )
    return render(request, "console/invite_done.html", auth, db, result=result, nav="invitations")


@router.post("/invite", response_class=HTMLResponse)
async def invite(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    settings: SettingsDep,
    email: ListField = [],  # noqa: B006
    first_name: ListField = [],  # noqa: B006
    last_name: ListField = [],  # noqa: B006
    team_id: Annotated[str, Form()] = "",
    group_ids: ListField = [],  # noqa: B006
    role_ids: ListField = [],  # noqa: B006
    send_email: Annotated[bool, Form()] = False,
    subject: Annotated[str, Form()] = "",
    body: Annotated[str, Form()] = "",
) -> Response:
    # Each row's fields required on invitation (attributes.<key>, one input per row).
    values = attribute_forms.per_row(await request.form(), _invite_fields(db, auth), len(email))
    people = [
        Person(email=e, first_name=f, last_name=last, attributes=given)
        for e, f, last, given in zip(email, first_name, last_name, values, strict=False)
        if e.strip() or f.strip() or last.strip()
    ]
    data = InvitationCreate(
        people=people,
        team_id=team_id or None,
        group_ids=group_ids,
        role_ids=role_ids,
        welcome_email=WelcomeEmail(send=send_email, subject=subject or None, body=body or None),
    )
    result = invitations.invite(db, actor=auth.actor, data=data, base_url=settings.base_url)
    query = urlencode(
        {
            "invited": ",".join(i.id for i in result.created),
            "existing": ",".join(e.user_id for e in result.existing),
        }
    )
    return RedirectResponse(f"/console/invite/done?{query}", status_code=303)


@router.get("/invitations", response_class=HTMLResponse)
async def invitations_page(
    request: Request, db: DbSession, auth: ConsoleAuth, status: str | None = None
) -> Response:
    found = invitations.list_invitations(db, actor=auth.actor, status=status or None)
    return render(
        request,
        "console/invitations.html",
        auth,
        db,
        invitations=[invitations.read(i) for i in found],
        status=status or "",
        statuses=invitations.STATUSES,
        nav="invitations",
    )


@router.post("/invitations/{invitation_id}/resend")
async def resend_invitation(
    invitation_id: PathId, db: DbSession, auth: ConsoleAuth, settings: SettingsDep
) -> Response:
    invitations.resend(
        db, actor=auth.actor, invitation_id=invitation_id, base_url=settings.base_url
    )
    return RedirectResponse("/console/invitations?status=pending", status_code=303)


@router.post("/invitations/{invitation_id}/revoke")
async def revoke_invitation(invitation_id: PathId, db: DbSession, auth: ConsoleAuth) -> Response:
    invitations.revoke(db, actor=auth.actor, invitation_id=invitation_id)
    return RedirectResponse("/console/invitations?status=revoked", status_code=303)


@router.post("/users/{user_id}/verification-email", response_class=HTMLResponse)
async def send_verification_email(
    request: Request, user_id: PathId, db: DbSession, auth: ConsoleAuth, settings: SettingsDep
) -> Response:
    """Queue a new verification email; answers with a toast (htmx) or back to the list."""
    user = users.send_verification_email(
        db, actor=auth.actor, user_id=user_id, base_url=settings.base_url
    )
    if not request.headers.get("HX-Request"):
        return RedirectResponse(f"/console/users/{user_id}", status_code=303)
    return partial(
        request,
        "console/_toast.html",
        auth,
        {"message": f"Verification email sent to {user.email}."},
    )


@router.get("/mailbox", response_class=HTMLResponse)
async def mailbox(request: Request, db: DbSession, auth: ConsoleAuth) -> Response:
    messages = mailboxes.entries(db, actor=auth.actor)
    return render(request, "console/mailbox.html", auth, db, messages=messages, nav="mailbox")


@router.get("/settings/emails/{kind}", response_class=HTMLResponse)
async def email_template_form(
    request: Request, kind: EmailKind, db: DbSession, auth: ConsoleAuth
) -> Response:
    template = mail.template_for(db, auth.actor.organization_id, kind)
    return render(
        request,
        "console/email_template.html",
        auth,
        db,
        kind=kind,
        kinds=list(EmailKind),
        email_template=template,
        errors={},
        saved=request.query_params.get("saved"),
        nav="settings",
    )


@router.post("/settings/emails/{kind}", response_class=HTMLResponse)
async def save_email_template(
    request: Request,
    kind: EmailKind,
    db: DbSession,
    auth: ConsoleAuth,
    subject: Annotated[str, Form()] = "",
    body: Annotated[str, Form()] = "",
) -> Response:
    try:
        mail.update_template(db, actor=auth.actor, kind=kind, subject=subject, body=body)
    except InvalidInput as exc:
        return render(
            request,
            "console/email_template.html",
            auth,
            db,
            status_code=400,
            kind=kind,
            kinds=list(EmailKind),
            email_template=Template(subject, body),
            errors=exc.fields,
            saved=None,
            nav="settings",
        )
    return RedirectResponse(f"/console/settings/emails/{kind.value}?saved=1", status_code=303)


def _bulk_request(action: str, q: str, ids: list[str], selected: bool, **given: Any) -> BulkRequest:
    """The selected rows ("Apply to selected", even when none is ticked) or the query."""
    if selected or ids:
        return BulkRequest(action=action, ids=ids, **given)
    return BulkRequest(action=action, q=q, **given)


@router.get("/bulk", response_class=HTMLResponse)
async def bulk_preview(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    action: str = "",
    q: str = "",
    ids: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    selected: bool = False,
) -> Response:
    """How many users the action will reach, and who, before it starts."""
    preview = bulk.preview(db, actor=auth.actor, request=_bulk_request(action, q, ids, selected))
    return render(
        request,
        "console/bulk.html",
        auth,
        db,
        preview=preview,
        q=q,
        ids=ids,
        selected=selected,
        label=BULK_LABELS.get(action, action),
        reasons=lifecycle.DISABLE_REASONS,
        errors={},
        nav="users",
    )


@router.post("/bulk", response_class=HTMLResponse)
async def bulk_start(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    action: Annotated[str, Form()] = "",
    q: Annotated[str, Form()] = "",
    ids: ListField = [],  # noqa: B006
    selected: Annotated[bool, Form()] = False,
    reason: Annotated[str, Form()] = "",
    days: Annotated[str, Form()] = "",
    permanent: Annotated[bool, Form()] = False,
) -> Response:
    try:
        given = {
            "reason": reason or None,
            "days": int(days) if days.strip() and not permanent else None,
            "permanent": permanent,
        }
        job = bulk.start(
            db, actor=auth.actor, request=_bulk_request(action, q, ids, selected, **given)
        )
    except (InvalidInput, ValueError) as exc:
        errors = (
            exc.fields if isinstance(exc, InvalidInput) else {"days": f"'{days}' is not a number"}
        )
        preview = bulk.preview(
            db, actor=auth.actor, request=_bulk_request(action, q, ids, selected)
        )
        return render(
            request,
            "console/bulk.html",
            auth,
            db,
            status_code=400,
            preview=preview,
            q=q,
            ids=ids,
            selected=selected,
            label=BULK_LABELS.get(action, action),
            reasons=lifecycle.DISABLE_REASONS,
            errors=errors,
            nav="users",
        )
    return RedirectResponse(f"/console/jobs/{job.id}", status_code=303)


def _job_words(job: JobRead) -> dict[str, str]:
    """How the job page names the job and says what it did (audit.wording's words)."""
    summary = wording.job_summary(
        job.kind,
        job.params,
        status=job.status,
        done=job.done,
        failed=job.failed,
        total=job.total,
        at=job.created_at,
    )
    if job.kind == imports.KIND:
        dry = job.params.get("dry_run")
        return {
            "heading": f"{'Dry run of' if dry else 'Import of'} {job.params.get('filename')}",
            "items": "rows",
            "failed": "would not be created" if dry else "were not created",
            "summary": summary,
        }
    action = str(job.params.get("action", job.kind))
    return {
        "heading": BULK_LABELS.get(action, wording.from_code(action)),
        "items": "users",
        "failed": "were left out",
        "summary": summary,
    }


def _job_toast(job: JobRead) -> str | None:
    """What a finished job did, for the toast shown when its page sees it finish: "Disabled
    12 users."; None while it runs or when it stopped (its page says why)."""
    if job.status != "done":
        return None
    if job.kind == bulk.KIND:
        action = str(job.params.get("action", ""))
        return wording.bulk_toast(
            action, job.params, done=job.done, failed=job.failed, at=job.created_at
        )
    return _job_words(job)["summary"]


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(request: Request, job_id: PathId, db: DbSession, auth: ConsoleAuth) -> Response:
    found = jobs.get(db, actor=auth.actor, job_id=job_id)
    job = JobRead.of(found, jobs.items(db, found, failed_only=True, limit=REPORT_ROWS_SHOWN))
    words = _job_words(job)
    if request.headers.get("HX-Request"):
        # Asked while it ran (the page polls only then): a finished job is news, a toast.
        context = {"job": job, "words": words, "toast": _job_toast(job)}
        return partial(request, "console/_job_progress.html", auth, context)
    return render(request, "console/job.html", auth, db, job=job, words=words, nav="users")


@router.get("/imports/{job_id}/report.csv")
async def import_report(job_id: PathId, db: DbSession, auth: ConsoleAuth) -> Response:
    """Every row of an import with its fate, as a CSV file."""
    report = imports.report_csv(db, actor=auth.actor, job_id=job_id)
    return Response(
        report,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{job_id}-report.csv"'},
    )


@router.get("/users/export")
async def export_users(
    request: Request, auth: ConsoleAuth, q: str = "", sort: str = "name", columns: str = ""
) -> Response:
    """Export User List: exactly the users of the view, as CSV, with its custom COLUMNS
    (`plan,seats`)."""
    keys = list_columns.parse_keys(columns)
    return csv_download(request, auth.actor, q=q, sort=sort, columns=keys)


@router.get("/imports", response_class=HTMLResponse)
async def import_form(request: Request, db: DbSession, auth: ConsoleAuth) -> Response:
    return render(request, "console/import.html", auth, db, draft=None, errors={}, nav="users")


@router.post("/imports", response_class=HTMLResponse)
async def upload_import(
    request: Request,
    db: DbSession,
    auth: ConsoleAuth,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Keep the file as a draft and go on to map its columns."""
    try:
        if file is None or not file.filename:
            raise InvalidInput("Choose a CSV file.", fields={"file": "is required"})
        upload_file, filename = file, file.filename
        upload = await outside_transaction(  # seconds for a large file: not in the transaction
            db,
            lambda: imports.read_upload(
                actor=auth.actor,
                filename=filename,
                content=upload_file.file.read(imports.MAX_BYTES + 1),
            ),
        )
        job = imports.keep_draft(db, actor=auth.actor, upload=upload)
    except InvalidInput as exc:
        return render(
            request,
            "console/import.html",
            auth,
            db,
            status_code=400,
            draft=None,
            errors=exc.fields,
            nav="users",
        )
    return RedirectResponse(f"/console/imports/{job.id}", status_code=303)


@router.get("/imports/{job_id}", response_class=HTMLResponse)
async def map_import(
    request: Request, job_id: PathId, db: DbSession, auth: ConsoleAuth
) -> Response:
    draft = jobs.get(db, actor=auth.actor, job_id=job_id)
    return render(
        request,
        "console/import.html",
        auth,
        db,
        draft=draft,
        targets=imports.mapping_targets(db, actor=auth.actor),
        errors={},
        nav="users",
    )


@router.post("/imports/{job_id}", response_class=HTMLResponse)
async def start_import(
    request: Request,
    job_id: PathId,
    db: DbSession,
    auth: ConsoleAuth,
    dry_run: Annotated[bool, Form()] = False,
    send_invitations: Annotated[bool, Form()] = False,
    activate_with_password: Annotated[bool, Form()] = False,
) -> Response:
    """Run the import (or a dry run) with the columns as mapped."""
    form = await request.form()
    mapping = {
        target: str(form.get(f"map_{target}") or "")
        for target, _ in imports.mapping_targets(db, actor=auth.actor)
    }
    database: Database = request.app.state.database

    def parse() -> imports.Parsed | None:  # the whole file, to count its rows: seconds
        with database.unit_of_work(write=False) as reading:
            return imports.parse_draft(reading, actor=auth.actor, job_id=job_id, mapping=mapping)

    try:
        parsed = await outside_transaction(db, parse)
        imports.start(
            db,
            actor=auth.actor,
            job_id=job_id,
            mapping=mapping,
            dry_run=dry_run,
            send_invitations=send_invitations,
            parsed=parsed,
            status="active" if activate_with_password else "pending",
        )
    except InvalidInput as exc:
        draft = jobs.get(db, actor=auth.actor, job_id=job_id)
        return render(
            request,
            "console/import.html",
            auth,
            db,
            status_code=400,
            draft=draft,
            targets=imports.mapping_targets(db, actor=auth.actor),
            errors=exc.fields,
            nav="users",
        )
    return RedirectResponse(f"/console/jobs/{job_id}", status_code=303)
