"""Inviting people, tracking, resending and revoking invitations, and accepting them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from userdesk.access import service as access
from userdesk.access.rules import Actor, Permission
from userdesk.audit import service as audit
from userdesk.auth.secrets import hash_token, new_token, new_tokens
from userdesk.auth.service import LinkProblem, set_password
from userdesk.db import bulk
from userdesk.db.base import utcnow
from userdesk.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from userdesk.invitations.models import Invitation
from userdesk.invitations.schemas import (
    AlreadyThere,
    InvitationCreate,
    InvitationRead,
    InvitationResult,
    Person,
)
from userdesk.mail import service as mail
from userdesk.mail.rules import (
    HIDDEN,
    EmailKind,
    RenderedEmail,
    Template,
    TemplateProblem,
    render,
)
from userdesk.organizations.models import Organization
from userdesk.organizations.service import invitation_ttl
from userdesk.users import attributes
from userdesk.users import service as users
from userdesk.users.membership import attach, resolve
from userdesk.users.models import User
from userdesk.users.rules import CreatedVia, UserStatus, normalize_email
from userdesk.validation import parse_id
from userdesk.webhooks import events as webhook_events

MAX_PEOPLE = 1000
STATUSES = ("pending", "accepted", "expired", "revoked")


def shown_status(invitation: Invitation, now: datetime | None = None) -> str:
    """The status as people see it: a pending invitation past its expiry is expired."""
    if invitation.status == "pending" and invitation.expires_at <= (now or utcnow()):
        return "expired"
    return invitation.status


def read(invitation: Invitation) -> InvitationRead:
    return InvitationRead(
        id=str(invitation.id),
        user_id=str(invitation.user_id),
        email=invitation.email,
        status=shown_status(invitation),
        invited_by=invitation.invited_by_name,
        created_at=invitation.created_at,
        sent_at=invitation.sent_at,
        expires_at=invitation.expires_at,
        resend_count=invitation.resend_count,
        accepted_at=invitation.accepted_at,
        revoked_at=invitation.revoked_at,
    )


def invite(db: Session, *, actor: Actor, data: InvitationCreate, base_url: str) -> InvitationResult:
    """Add each person as Not Activated with an invitation, and email it when asked.

    People whose email is in the organization already are reported, not invited again.
    Either everyone valid is invited or, on any problem, nobody is.

    Raises:
        PermissionDenied: the actor may not create users, or not with that team or roles.
        InvalidInput: no people, too many, a bad email or name (as people[i].field), a
            field value refused or a field required on invitation left out (as
            people[i].attributes.<key>), a bad team, group or role, or a welcome email
            that does not render.
    """
    access.require(actor, Permission.USERS_CREATE)
    if not data.people:
        raise InvalidInput("Name at least one person to invite.", fields={"people": "is empty"})
    if len(data.people) > MAX_PEOPLE:
        raise InvalidInput(
            f"Invite at most {MAX_PEOPLE} people at a time.",
            fields={"people": f"has {len(data.people)} people; the most is {MAX_PEOPLE}"},
        )
    problems: dict[str, str] = {}
    seen: dict[str, int] = {}
    party = attributes.party_of(actor)
    values: list[dict[str, Any]] = []  # each person's field values, checked
    for index, person in enumerate(data.people):
        values.append(_person_values(db, actor, person, index, party, problems))
        problems |= users.check_new_person(
            db,
            organization_id=actor.organization_id,
            email=person.email,
            first_name=person.first_name,
            last_name=person.last_name,
            field=f"people[{index}].",
        )
        key = normalize_email(person.email)
        if key in seen and f"people[{index}].email" not in problems:
            problems[f"people[{index}].email"] = f"'{person.email}' is listed twice"
        seen.setdefault(key, index)
    if problems:
        raise InvalidInput("Some people cannot be invited.", fields=problems)
    membership = resolve(
        db, actor=actor, team_id=data.team_id, group_ids=data.group_ids, role_ids=data.role_ids
    )
    if idle := [role.name for role in membership.roles if not access.gives_back_office(role)]:
        names = ", ".join(f"'{name}'" for name in idle)
        raise InvalidInput(
            f"Roles {names} give no back-office access: invite without them.",
            fields={"role_ids": f"{names} gives no back-office access"},
        )
    custom = None
    if data.welcome_email.subject is not None or data.welcome_email.body is not None:
        saved = mail.template_for(db, actor.organization_id, EmailKind.INVITATION)
        custom = Template(
            data.welcome_email.subject if data.welcome_email.subject is not None else saved.subject,
            data.welcome_email.body if data.welcome_email.body is not None else saved.body,
        )
    organization = db.get_one(Organization, actor.organization_id)
    inviter = db.get(User, actor.user_id) if actor.user_id else None
    created, existing = [], []
    for index, person in enumerate(data.people):
        found = users.find_by_email(db, actor.organization_id, person.email)
        if found is not None:
            existing.append(AlreadyThere(email=found.email, user_id=str(found.id)))
            continue
        given = values[index]
        user = User(
            organization_id=actor.organization_id,
            email=person.email.strip(),
            email_normalized=normalize_email(person.email),
            first_name=person.first_name.strip(),
            last_name=person.last_name.strip(),
            status=UserStatus.PENDING.value,
            created_via=CreatedVia.INVITE.value,
        )
        db.add(user)
        db.flush()
        attach(db, user, membership)
        written = attributes.write(db, user, given)
        invitation, token = _new_invitation(
            db, organization, user, inviter_name=actor.name, inviter=inviter
        )
        if data.welcome_email.send:
            _send(db, organization, invitation, user, token, base_url, template=custom)
        audit.record(
            db,
            actor=actor,
            action="user.invited",
            target_type="user",
            target_id=user.id,
            changes={
                "email": user.email,
                **membership.names(),
                "email_sent": data.welcome_email.send,
                **(
                    {"attributes": {key: moved["to"] for key, moved in written.items()}}
                    if written
                    else {}
                ),
            },
        )
        created.append(read(invitation))
    return InvitationResult(created=created, existing=existing)


def _person_values(
    db: Session,
    actor: Actor,
    person: Person,
    index: int,
    party: attributes.Party,
    problems: dict[str, str],
) -> dict[str, Any]:
    """PERSON's field values as the fields keep them; what is wrong with them (a value
    refused, a field required on invitation left out) added to PROBLEMS by name."""
    name = f"people[{index}].attributes"
    given = {key: value for key, value in person.attributes.items() if value not in ("", [])}
    clean: dict[str, Any] = {}
    try:
        clean = attributes.checked(
            db, organization_id=actor.organization_id, values=given, party=party, field=name
        )
    except InvalidInput as exc:
        problems |= exc.fields
    problems |= {
        key: problem
        for key, problem in attributes.missing_required(
            db,
            organization_id=actor.organization_id,
            values=clean | {k: True for k in given if k not in clean},
            occasion="invitation",
            party=party,
            field=name,
        ).items()
        if key not in problems
    }
    return {key: value for key, value in clean.items() if value is not None}


def _new_invitation(
    db: Session,
    organization: Organization,
    user: User,
    *,
    inviter_name: str,
    inviter: User | None,
) -> tuple[Invitation, str]:
    token = new_token()
    invitation = Invitation(
        organization_id=organization.id,
        user_id=user.id,
        email=user.email,
        token_hash=hash_token(token),
        status="pending",
        expires_at=utcnow() + invitation_ttl(organization),
        invited_by_id=inviter.id if inviter else None,
        invited_by_name=inviter_name,
    )
    db.add(invitation)
    db.flush()
    return invitation, token


def _context(
    organization: Organization,
    user: User,
    *,
    link: str,
    expires: datetime,
    inviter_name: str | None,
) -> dict[str, Any]:
    """What the invitation email says: the one place both the sent email and its preview
    take their values from."""
    return mail.email_context(
        organization, user, link=link, expires=expires, inviter=inviter_name or organization.name
    )


@dataclass(frozen=True)
class InvitationPreview:
    """The invitation email as a person invited now would get it."""

    email: RenderedEmail
    expires_at: datetime
    lifetime: timedelta


def preview(
    db: Session,
    *,
    actor: Actor,
    template: Template,
    base_url: str,
    person: Person | None = None,
) -> InvitationPreview:
    """TEMPLATE rendered as invite() would send it now: the actor as the inviter, the
    organization's name and the invitation's real expiry, to PERSON (else a sample
    person); the link's token is hidden.

    Raises:
        PermissionDenied: the actor may not create users.
        InvalidInput: an empty or too long subject or body, or one that does not render.
    """
    access.require(actor, Permission.USERS_CREATE)
    mail.preview(template)  # the checks a saved template passes
    organization = db.get_one(Organization, actor.organization_id)
    shown = person or Person(email="ann.lee@example.com", first_name="Ann", last_name="Lee")
    user = User(
        email=shown.email.strip(),
        first_name=shown.first_name.strip(),
        last_name=shown.last_name.strip(),
    )
    lifetime = invitation_ttl(organization)
    expires = utcnow() + lifetime
    context = _context(
        organization,
        user,
        link=f"{base_url}/invite/{HIDDEN}",
        expires=expires,
        inviter_name=actor.name,
    )
    try:
        email = render(template, context)
    except TemplateProblem as problem:
        raise InvalidInput(
            f"The email template does not render: {problem.message}",
            code="invalid_template",
            fields={problem.field: problem.message},
        ) from None
    return InvitationPreview(email=email, expires_at=expires, lifetime=lifetime)


def _send(
    db: Session,
    organization: Organization,
    invitation: Invitation,
    user: User,
    token: str,
    base_url: str,
    *,
    template: Template | None = None,
) -> None:
    context = _context(
        organization,
        user,
        link=f"{base_url}/invite/{token}",
        expires=invitation.expires_at,
        inviter_name=invitation.invited_by_name,
    )
    mail.enqueue(
        db,
        organization_id=organization.id,
        to=user.email,
        kind=EmailKind.INVITATION,
        context=context,
        template=template,
        user_id=user.id,
    )
    invitation.sent_at = utcnow()


def list_invitations(
    db: Session, *, actor: Actor, status: str | None = None, limit: int = 200
) -> list[Invitation]:
    """The organization's invitations, newest first, of one status when given.

    Raises:
        PermissionDenied: the actor may not read users.
        InvalidInput: an unknown status.
    """
    access.require(actor, Permission.USERS_READ)
    query = (
        select(Invitation)
        .join(User, User.id == Invitation.user_id)
        .where(
            Invitation.organization_id == actor.organization_id,
            access.users_in_scope(actor, Permission.USERS_READ),
        )
    )
    now = utcnow()
    if status is not None:
        if status not in STATUSES:
            raise InvalidInput(
                f"Status '{status}' is not one of {', '.join(STATUSES)}.",
                fields={"status": f"'{status}' is not one of {', '.join(STATUSES)}"},
            )
        if status == "expired":
            query = query.where(Invitation.status == "pending", Invitation.expires_at <= now)
        elif status == "pending":
            query = query.where(Invitation.status == "pending", Invitation.expires_at > now)
        else:
            query = query.where(Invitation.status == status)
    return list(db.scalars(query.order_by(Invitation.id.desc()).limit(limit)))


def invited(
    db: Session, *, actor: Actor, invitation_ids: list[str], user_ids: list[str]
) -> InvitationResult:
    """What an invite() made, read again by id (the page shown after inviting): the
    invitations INVITATION_IDS and the people USER_IDS found already there, within the
    actor's reach (others are left out).

    Raises:
        PermissionDenied: the actor may not read users.
        InvalidInput: an id that is not one, or more ids than one invite makes.
    """
    access.require(actor, Permission.USERS_READ)
    wanted: dict[str, list[int]] = {}
    for field, values in (("invited", invitation_ids), ("existing", user_ids)):
        if len(values) > MAX_PEOPLE:  # one invite() never makes more
            raise InvalidInput(
                f"At most {MAX_PEOPLE} ids in {field}.",
                fields={field: f"has {len(values)} ids; the most is {MAX_PEOPLE}"},
            )
        wanted[field] = []
        for value in values:
            number = parse_id(value)
            if number is None:
                raise InvalidInput(
                    f"'{value}' is not an id.", fields={field: f"'{value}' is not an id"}
                )
            wanted[field].append(number)
    in_reach = access.users_in_scope(actor, Permission.USERS_READ)
    found = db.scalars(
        select(Invitation)
        .join(User, User.id == Invitation.user_id)
        .where(
            Invitation.organization_id == actor.organization_id,
            Invitation.id.in_(wanted["invited"]),
            in_reach,
        )
        .order_by(Invitation.id)
    )
    there = db.scalars(
        select(User)
        .where(User.organization_id == actor.organization_id, User.id.in_(wanted["existing"]))
        .where(in_reach)
        .order_by(User.id)
    )
    return InvitationResult(
        created=[read(i) for i in found],
        existing=[AlreadyThere(email=u.email, user_id=str(u.id)) for u in there],
    )


def _get(db: Session, actor: Actor, invitation_id: int, permission: str) -> Invitation:
    access.require(actor, permission)
    row = db.execute(
        select(Invitation, User)
        .join(User, User.id == Invitation.user_id)
        .where(
            Invitation.id == invitation_id,
            Invitation.organization_id == actor.organization_id,
            access.users_in_scope(actor, permission),
        )
    ).first()
    if row is None:
        raise NotFound(f"No invitation {invitation_id}.", code="invitation.not_found")
    return row[0]


def may_resend(db: Session, *, actor: Actor, user: User) -> bool:
    """Whether ACTOR may resend USER's invitation, and so see its link: users.create over
    the user, who holds nothing beyond the actor's reach."""
    if user.organization_id != actor.organization_id or not actor.covers(
        Permission.USERS_CREATE, user.team_id
    ):
        return False
    try:
        access.require_not_weaker(db, actor, user)
    except PermissionDenied:
        return False
    return True


def resend(db: Session, *, actor: Actor, invitation_id: int, base_url: str) -> Invitation:
    """Email a new link (with a new expiry); the old link dies at once.

    Raises:
        PermissionDenied: the actor may not create users, or the invited user holds
            permissions beyond the actor's.
        NotFound: no such invitation in reach.
        Conflict: the invitation was accepted or revoked.
    """
    invitation = _get(db, actor, invitation_id, Permission.USERS_CREATE)
    if invitation.status != "pending":
        raise Conflict(
            f"The invitation is {invitation.status}: it cannot be resent.",
            code="invitation.not_pending",
        )
    organization = db.get_one(Organization, invitation.organization_id)
    user = db.get_one(User, invitation.user_id)
    access.require_not_weaker(db, actor, user)
    token = new_token()
    invitation.token_hash = hash_token(token)
    invitation.expires_at = utcnow() + invitation_ttl(organization)
    invitation.resend_count += 1
    _send(db, organization, invitation, user, token, base_url)
    audit.record(
        db,
        actor=actor,
        action="invitation.resent",
        target_type="user",
        target_id=invitation.user_id,
        changes={"invitation": str(invitation.id), "resend_count": invitation.resend_count},
    )
    return invitation


def resend_for_user(db: Session, *, actor: Actor, user_id: int, base_url: str) -> Invitation:
    """Resend the user's pending invitation (a retention action): a new link, the old dies.

    Raises:
        PermissionDenied: the actor may not create users.
        NotFound: no such user in reach.
        Conflict: the user has no pending invitation (never invited, accepted or revoked).
    """
    user = users.user_in_reach(db, actor=actor, user_id=user_id, permission=Permission.USERS_CREATE)
    pending = db.scalar(
        select(Invitation.id)
        .where(Invitation.user_id == user.id, Invitation.status == "pending")
        .order_by(Invitation.id.desc())
        .limit(1)
    )
    if pending is None:
        latest = db.scalar(
            select(Invitation)
            .where(Invitation.user_id == user.id)
            .order_by(Invitation.id.desc())
            .limit(1)
        )
        why = f"their invitation was {latest.status}" if latest else "they were never invited"
        raise Conflict(
            f"{user.name} has no pending invitation to resend: {why}.",
            code="invitation.none_pending",
        )
    return resend(db, actor=actor, invitation_id=pending, base_url=base_url)


def revoke(db: Session, *, actor: Actor, invitation_id: int) -> Invitation:
    """Kill the invitation's link at once.

    Raises:
        PermissionDenied: the actor may not create users.
        NotFound: no such invitation in reach.
        Conflict: the invitation was accepted or revoked already.
    """
    invitation = _get(db, actor, invitation_id, Permission.USERS_CREATE)
    if invitation.status != "pending":
        raise Conflict(
            f"The invitation is {invitation.status} already.", code="invitation.not_pending"
        )
    invitation.status = "revoked"
    invitation.revoked_at = utcnow()
    audit.record(
        db,
        actor=actor,
        action="invitation.revoked",
        target_type="user",
        target_id=invitation.user_id,
        changes={"invitation": str(invitation.id)},
    )
    return invitation


def find_by_token(db: Session, *, token: str) -> Invitation:
    """The invitation a link points to, if it still works.

    Raises:
        LinkProblem: unknown (link.invalid), accepted (link.used), revoked
            (link.revoked) or expired (link.expired).
    """
    invitation = db.scalar(select(Invitation).where(Invitation.token_hash == hash_token(token)))
    if invitation is None:
        raise LinkProblem("This invitation link is not valid.", code="link.invalid")
    status = shown_status(invitation)
    if status == "accepted":
        raise LinkProblem("This invitation was already accepted.", code="link.used")
    if status == "revoked":
        raise LinkProblem("This invitation was withdrawn.", code="link.revoked")
    if status == "expired":
        raise LinkProblem("This invitation has expired.", code="link.expired")
    return invitation


def accept(db: Session, *, token: str, password: str) -> User:
    """Accept an invitation: set the password, verify the email, activate the account.

    Raises:
        LinkProblem: the link does not work (see find_by_token).
        InvalidInput: the password is too short, too long or too common.
    """
    invitation = find_by_token(db, token=token)
    user = db.get_one(User, invitation.user_id)
    set_password(db, user=user, password=password)
    now = utcnow()
    invitation.status = "accepted"
    invitation.accepted_at = now
    changes: dict[str, Any] = {"invitation": str(invitation.id)}
    if user.email_verified_at is None:
        user.email_verified_at = now
        changes["email_verified"] = {"from": False, "to": True}
    if user.status == UserStatus.PENDING.value:
        user.status = UserStatus.ACTIVE.value
        changes["status"] = {"from": UserStatus.PENDING.value, "to": UserStatus.ACTIVE.value}
    db.flush()
    webhook_events.user_changed(
        db,
        actor=webhook_events.the_user(user),
        action="invitation.accepted",
        user_id=user.id,
        changes=changes,
    )
    return user


def reinvite(db: Session, *, actor: Actor, user: User, base_url: str) -> Invitation:
    """A fresh invitation for a user coming back (reactivated): the reactivation email."""
    db.execute(
        update(Invitation)
        .where(Invitation.user_id == user.id, Invitation.status == "pending")
        .values(status="revoked", revoked_at=utcnow())
    )
    organization = db.get_one(Organization, user.organization_id)
    inviter = db.get(User, actor.user_id) if actor.user_id else None
    invitation, token = _new_invitation(
        db, organization, user, inviter_name=actor.name, inviter=inviter
    )
    context = mail.email_context(
        organization,
        user,
        link=f"{base_url}/invite/{token}",
        expires=invitation.expires_at,
        inviter=actor.name,
    )
    mail.enqueue(
        db,
        organization_id=organization.id,
        to=user.email,
        kind=EmailKind.REACTIVATION,
        context=context,
        user_id=user.id,
    )
    invitation.sent_at = utcnow()
    return invitation


def invite_imported(
    db: Session,
    *,
    actor: Actor,
    users: list[tuple[int, str, str, str]],
    send: bool,
    base_url: str,
) -> None:
    """Invitations for users just imported ((id, email, first, last) each), in one
    statement; emailed when SEND."""
    if not users:
        return
    organization = db.get_one(Organization, actor.organization_id)
    now = utcnow()
    expires = now + invitation_ttl(organization)
    tokens = new_tokens(len(users))
    conn = db.connection()
    sql_time = bulk.sql_time(conn.dialect.name)
    created = sql_time(now)
    bulk.insert_rows(
        conn,
        "invitations",
        ("user_id", "email", "token_hash"),
        [
            (user_id, email, hash_token(token))
            for (user_id, email, _, _), token in zip(users, tokens, strict=True)
        ],
        same={
            "organization_id": actor.organization_id,
            "status": "pending",
            "expires_at": sql_time(expires),
            "invited_by_id": actor.user_id,
            "invited_by_name": actor.name,
            "sent_at": created if send else None,
            "resend_count": 0,
            "created_at": created,
        },
    )
    if not send:
        return
    for (user_id, email, first, last), token in zip(users, tokens, strict=True):
        person = User(id=user_id, email=email, first_name=first, last_name=last)
        mail.enqueue(
            db,
            organization_id=organization.id,
            to=email,
            kind=EmailKind.INVITATION,
            context=mail.email_context(
                organization,
                person,
                link=f"{base_url}/invite/{token}",
                expires=expires,
                inviter=actor.name,
            ),
            user_id=user_id,
        )
