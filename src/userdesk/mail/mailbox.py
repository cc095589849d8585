"""The Mailbox: the emails Userdesk wrote, as a reader may see them.

An email whose link opens or changes an account (a password reset, a welcome, a
verification, an email change, a signup confirmation) is shown with that link hidden, to
everyone: that it exists, to whom, when and in which state. An invitation's link is shown
only to whoever may resend that invitation. A reader whose mail.read covers some teams
sees only the emails about users of those teams.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.invitations import service as invitations
from userdesk.mail.models import OutboxMessage
from userdesk.mail.rules import EmailKind, LinkSecrecy, hide_tokens, link_secrecy
from userdesk.users.models import User
from userdesk.users.rules import normalize_email

LIMIT = 100
BATCH = 200
SCAN_MAX = 5_000  # rows read at most to fill a team-scoped reader's page
STATES = {"pending": "queued", "sent": "sent", "failed": "failed"}
WHY_HIDDEN = {
    LinkSecrecy.SECRET: "Its link opens the account: it is never shown, to anyone.",
    LinkSecrecy.INVITATION: "Its link is shown only to who may resend this invitation.",
}


@dataclass(frozen=True)
class MailboxEntry:
    id: int
    recipient: str
    subject: str
    kind: str  # the kind's label
    state: str  # queued, sent or failed
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    text: str  # the body as this reader may see it
    link_hidden: str | None  # why the link is hidden, or None when the body is whole


def entries(db: Session, *, actor: Actor, limit: int = LIMIT) -> list[MailboxEntry]:
    """The organization's newest emails within ACTOR's reach, as ACTOR may see them.

    Raises:
        PermissionDenied: the actor lacks mail.read.
    """
    access.require(actor, Permission.MAIL_READ)
    scope = actor.team_scope(Permission.MAIL_READ)
    shown: list[MailboxEntry] = []
    before: int | None = None
    scanned = 0
    while len(shown) < limit and scanned < SCAN_MAX:
        query = select(OutboxMessage).where(
            OutboxMessage.organization_id == actor.organization_id,
            OutboxMessage.kind == "email",
        )
        if before is not None:
            query = query.where(OutboxMessage.id < before)
        batch = list(db.scalars(query.order_by(OutboxMessage.id.desc()).limit(BATCH)))
        if not batch:
            break
        scanned += len(batch)
        before = batch[-1].id
        people = _people(db, actor.organization_id, batch)
        resendable: dict[int, bool] = {}  # by invited user: one check each, not one a row
        for message in batch:
            named = _named(message, people)
            if scope is not None and not (named and all(u.team_id in scope for u in named)):
                continue
            shown.append(_entry(db, actor, message, named, resendable))
            if len(shown) == limit:
                break
    return shown


def _subject_id(message: OutboxMessage) -> int | None:
    value = message.payload.get("user_id")
    return value if isinstance(value, int) else None


def _people(db: Session, organization_id: int, batch: Sequence[OutboxMessage]) -> list[User]:
    """The users the emails of BATCH are about or sent to."""
    ids = {i for m in batch if (i := _subject_id(m)) is not None}
    emails = {normalize_email(m.recipient) for m in batch}
    return list(
        db.scalars(
            select(User).where(
                User.organization_id == organization_id,
                or_(User.id.in_(sorted(ids)), User.email_normalized.in_(sorted(emails))),
            )
        )
    )


def _named(message: OutboxMessage, people: Iterable[User]) -> list[User]:
    """The users MESSAGE names: the one it is about, and its recipient when a user."""
    about, to = _subject_id(message), normalize_email(message.recipient)
    return [u for u in people if u.id == about or u.email_normalized == to]


def _entry(
    db: Session,
    actor: Actor,
    message: OutboxMessage,
    named: list[User],
    resendable: dict[int, bool],
) -> MailboxEntry:
    kind = str(message.payload.get("kind", ""))
    secrecy = link_secrecy(kind)
    whole = secrecy is LinkSecrecy.PUBLIC
    if secrecy is LinkSecrecy.INVITATION:
        about, to = _subject_id(message), normalize_email(message.recipient)
        invited = next(
            (
                u
                for u in named
                if (u.id == about if about is not None else u.email_normalized == to)
            ),
            None,
        )
        if invited is not None and invited.id not in resendable:
            resendable[invited.id] = invitations.may_resend(db, actor=actor, user=invited)
        whole = invited is not None and resendable[invited.id]
    subject, text = message.subject or "", str(message.payload.get("text", ""))
    error = message.last_error
    if not whole:
        kept = message.payload.get("shown")
        if isinstance(kept, dict):
            subject, text = str(kept.get("subject", "")), str(kept.get("text", ""))
        else:  # queued before emails kept a copy without their link
            subject, text = hide_tokens(subject), hide_tokens(text)
        error = hide_tokens(error) if error else error
    try:
        label = EmailKind(kind).label
    except ValueError:
        label = kind or "email"
    return MailboxEntry(
        id=message.id,
        recipient=message.recipient,
        subject=subject,
        kind=label,
        state=STATES.get(message.status, message.status),
        attempts=message.attempts,
        last_error=error,
        created_at=message.created_at,
        sent_at=message.sent_at,
        text=text,
        link_hidden=None if whole else WHY_HIDDEN[secrecy],
    )
