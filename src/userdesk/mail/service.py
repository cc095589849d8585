"""Emails: the organization's templates, and the outbox they are queued in.

Nothing is sent from here: a message is a row written in the same transaction as the
change that caused it, and the worker sends it (userdesk.worker).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.audit import service as audit
from userdesk.db.base import utcnow
from userdesk.errors import InvalidInput
from userdesk.mail.models import EmailTemplate, OutboxMessage
from userdesk.mail.rules import (
    DEFAULT_TEMPLATES,
    SAMPLE_CONTEXT,
    EmailKind,
    RenderedEmail,
    Template,
    TemplateProblem,
    render,
)
from userdesk.organizations.models import Organization
from userdesk.users.models import User

SUBJECT_MAX = 500
BODY_MAX = 20_000


def template_for(db: Session, organization_id: int, kind: EmailKind) -> Template:
    """The organization's template of KIND, else the built-in one."""
    row = db.scalar(
        select(EmailTemplate).where(
            EmailTemplate.organization_id == organization_id, EmailTemplate.kind == kind.value
        )
    )
    return Template(row.subject, row.body) if row else DEFAULT_TEMPLATES[kind]


def _checked(template: Template) -> RenderedEmail:
    """Render TEMPLATE with sample values; raises InvalidInput naming subject or body."""
    problems = {}
    if not template.subject.strip():
        problems["subject"] = "is required"
    elif len(template.subject) > SUBJECT_MAX:
        problems["subject"] = f"is longer than {SUBJECT_MAX} characters"
    if not template.body.strip():
        problems["body"] = "is required"
    elif len(template.body) > BODY_MAX:
        problems["body"] = f"is longer than {BODY_MAX} characters"
    if problems:
        raise InvalidInput("The email template is not valid.", fields=problems)
    try:
        return render(template, SAMPLE_CONTEXT)
    except TemplateProblem as problem:
        raise InvalidInput(
            f"The email template does not render: {problem.message}",
            code="invalid_template",
            fields={problem.field: problem.message},
        ) from None


def preview(template: Template) -> RenderedEmail:
    """TEMPLATE rendered with sample values. Raises InvalidInput as update_template does."""
    return _checked(template)


def update_template(
    db: Session, *, actor: Actor, kind: EmailKind, subject: str, body: str
) -> EmailTemplate:
    """Save the organization's wording of KIND.

    Raises:
        PermissionDenied: the actor may not manage settings.
        InvalidInput: an empty or too long subject or body, or one that does not render.
    """
    access.require(actor, Permission.SETTINGS_MANAGE)
    _checked(Template(subject, body))
    row = db.scalar(
        select(EmailTemplate).where(
            EmailTemplate.organization_id == actor.organization_id,
            EmailTemplate.kind == kind.value,
        )
    )
    if row is None:
        row = EmailTemplate(organization_id=actor.organization_id, kind=kind.value)
        db.add(row)
    row.subject, row.body = subject, body
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="email_template.updated",
        target_type="email_template",
        target_id=kind.value,
        changes={"subject": subject},
    )
    return row


def email_context(
    organization: Organization, user: User, *, link: str, expires: datetime, **extra: Any
) -> dict[str, Any]:
    """What a template may refer to."""
    return {
        "user": {
            "first_name": user.first_name,
            "last_name": user.last_name,
            "name": user.name,
            "email": user.email,
        },
        "organization": {"name": organization.name},
        "link": link,
        "expires": expires.strftime("%Y-%m-%d %H:%M UTC"),
        **extra,
    }


def enqueue(
    db: Session,
    *,
    organization_id: int,
    to: str,
    kind: EmailKind,
    context: dict[str, Any],
    template: Template | None = None,
) -> OutboxMessage:
    """Queue an email of KIND to TO, rendered now (TEMPLATE overrides the saved one).

    Raises:
        InvalidInput: TEMPLATE does not render (naming subject or body).
    """
    chosen = template or template_for(db, organization_id, kind)
    try:
        email = render(chosen, context)
    except TemplateProblem as problem:
        raise InvalidInput(
            f"The email does not render: {problem.message}",
            code="invalid_template",
            fields={f"welcome_email.{problem.field}": problem.message},
        ) from None
    message = OutboxMessage(
        organization_id=organization_id,
        kind="email",
        status="pending",
        recipient=to,
        subject=email.subject,
        payload={"kind": kind.value, "text": email.text, "html": email.html},
        next_attempt_at=utcnow(),
    )
    db.add(message)
    db.flush()
    return message


def mailbox(db: Session, *, actor: Actor, limit: int = 100) -> list[OutboxMessage]:
    """The organization's newest emails, sent or not (links in them are live: admins only).

    Raises:
        PermissionDenied: the actor may not manage settings.
    """
    access.require(actor, Permission.SETTINGS_MANAGE)
    return list(
        db.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.organization_id == actor.organization_id,
                OutboxMessage.kind == "email",
            )
            .order_by(OutboxMessage.id.desc())
            .limit(limit)
        )
    )
