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
    HIDDEN,
    SAMPLE_CONTEXT,
    EmailKind,
    LinkSecrecy,
    RenderedEmail,
    Template,
    TemplateProblem,
    hidden_link,
    hide_tokens,
    link_problem,
    link_secrecy,
    render,
    split_link,
)
from userdesk.organizations.models import Organization
from userdesk.users.models import User

SUBJECT_MAX = 500
BODY_MAX = 20_000
HIDDEN_TEXT = "(The text is hidden: it holds a link that opens the account.)"


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
        InvalidInput: an empty or too long subject or body, one that does not render, or
            one that puts a link that opens an account inside another address.
    """
    access.require(actor, Permission.SETTINGS_MANAGE)
    rendered = _checked(Template(subject, body))
    if link_secrecy(kind) is not LinkSecrecy.PUBLIC and (
        problem := link_problem(rendered.text, str(SAMPLE_CONTEXT["link"]))
    ):
        raise InvalidInput(
            f"The email template is not valid: the body {problem}.",
            code="invalid_template",
            fields={"body": problem},
        )
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
    user_id: int | None = None,
) -> OutboxMessage:
    """Queue an email of KIND to TO, about the user USER_ID, rendered now (TEMPLATE
    overrides the saved one).

    Unless its link is public, the email also keeps a copy rendered with the link's token
    hidden: the one the Mailbox shows (whatever the wording does with the link).

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
    payload: dict[str, Any] = {"kind": kind.value, "text": email.text, "html": email.html}
    if user_id is not None:
        payload["user_id"] = user_id
    if link_secrecy(kind) is not LinkSecrecy.PUBLIC:
        payload["shown"] = _without_link(chosen, context, email)
    message = OutboxMessage(
        organization_id=organization_id,
        kind="email",
        status="pending",
        recipient=to,
        subject=email.subject,
        payload=payload,
        next_attempt_at=utcnow(),
    )
    db.add(message)
    db.flush()
    return message


def _without_link(
    template: Template, context: dict[str, Any], email: RenderedEmail
) -> dict[str, str]:
    """The subject and text of EMAIL as shown back: rendered again with the link's token
    hidden, so that nothing the wording does to the link can carry the token over."""
    link = str(context.get("link", ""))
    _, token = split_link(link)
    try:
        shown = render(template, {**context, "link": hidden_link(link)})
    except TemplateProblem:
        return {"subject": hide_tokens(email.subject), "text": HIDDEN_TEXT}
    subject, text = shown.subject, shown.text
    if len(token) >= 16:  # a token, not a page's name (a word of the text could match)
        subject, text = subject.replace(token, HIDDEN), text.replace(token, HIDDEN)
    return {"subject": subject, "text": text}
