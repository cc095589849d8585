"""Registering oneself in the portal, and confirming the address to activate the account.

Registration reveals nothing: whether or not the email has an account, the person on
screen is told the same thing, and only the owner of the address learns the rest (a
confirmation link for a new account, a notice for an existing one). No password is ever
emailed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from userdesk.access.rules import Actor
from userdesk.audit import service as audit
from userdesk.auth import decoy, throttle
from userdesk.auth.secrets import hash_password
from userdesk.auth.service import find_user_token, issue_user_token, set_password
from userdesk.db.base import utcnow
from userdesk.errors import DomainError, InvalidInput
from userdesk.mail import service as mail
from userdesk.mail.rules import EmailKind
from userdesk.organizations import service as organizations
from userdesk.organizations.models import Organization
from userdesk.signup.rules import RegistrationPolicy, domain_allowed, email_domain, honeypot_filled
from userdesk.users import service as users
from userdesk.users.models import User
from userdesk.users.rules import (
    CreatedVia,
    UserStatus,
    display_name,
    email_problem,
    name_problem,
    normalize_email,
    password_problem,
    person_password_words,
)

SIGNUP = "signup"  # the purpose of the confirmation link's token
SIGNUP_LINK_TTL = timedelta(days=3)


class RegistrationClosed(DomainError):
    """The organization takes new people by invitation only."""

    code = "signup.closed"


@dataclass(frozen=True)
class Registration:
    """What the signup form sent. WEBSITE is the honeypot: a person leaves it empty."""

    email: str
    first_name: str = ""
    last_name: str = ""
    password: str = ""
    website: str = ""
    ip: str | None = None
    user_agent: str | None = None


def portal_organization(db: Session, slug: str | None) -> Organization | None:
    """The organization the portal registers people in: SLUG's, else the only one there is.

    None when SLUG names none, or when there are several and no SLUG says which.
    """
    if slug:
        return organizations.find_organization(db, slug)
    if (db.scalar(select(func.count()).select_from(Organization)) or 0) != 1:
        return None
    return db.scalars(select(Organization)).one()


@dataclass(frozen=True)
class SignInOffers:
    """What the sign-in page offers besides signing in, as the portal's organization says."""

    registration: bool  # a link to /signup
    # "keep me signed in" (checked again against the user's own organization at sign-in)
    keep_signed_in: bool


def sign_in_offers(db: Session) -> SignInOffers:
    organization = portal_organization(db, None)
    if organization is None:
        return SignInOffers(registration=False, keep_signed_in=False)
    return SignInOffers(
        registration=organizations.registration_policy(organization)
        is not RegistrationPolicy.CLOSED,
        keep_signed_in=organizations.allows_keep_signed_in(organization),
    )


def check_open(organization: Organization) -> None:
    """Raises RegistrationClosed when the organization takes people by invitation only."""
    if organizations.registration_policy(organization) is RegistrationPolicy.CLOSED:
        raise RegistrationClosed(
            f"{organization.name} takes new accounts by invitation only. Ask an "
            "administrator to invite you.",
        )


def register(db: Session, *, organization: Organization, form: Registration, base_url: str) -> None:
    """Register a person: a Not Activated account and a confirmation link to their address.

    An address that has an account already gets a notice instead (or, for a Not Activated
    account never confirmed, a fresh confirmation link); a filled honeypot creates nothing.
    The caller answers the same in every case.

    Raises:
        RegistrationClosed: registration is by invitation only.
        InvalidInput: a bad email, name or password, or an email at a domain not open to
            registration (each field named with its value).
        RateLimited: too many registrations from the IP or for the email.
    """
    check_open(organization)
    problems = {}
    if problem := email_problem(form.email):
        problems["email"] = problem
    for field, value in (("first_name", form.first_name), ("last_name", form.last_name)):
        if problem := name_problem(value):
            problems[field] = problem
    words = person_password_words(
        form.email, form.first_name, form.last_name, organization.name, organization.slug
    )
    if form.password and (problem := password_problem(form.password, words)):
        problems["password"] = problem
    if not problems and organizations.registration_policy(organization) is (
        RegistrationPolicy.DOMAINS
    ):
        domains = organizations.registration_domains(organization)
        if not domain_allowed(form.email, domains):
            problems["email"] = (
                f"is at '{email_domain(form.email)}', which may not register here: use an "
                f"address at {', '.join(domains)}"
            )
    if problems:
        raise InvalidInput("The registration is not complete.", fields=problems)
    throttle.signup(db, ip=form.ip, email=form.email)
    # Hashed whatever happens next, so that the time taken tells nothing either.
    hashed = hash_password(form.password) if form.password else None
    if honeypot_filled(form.website):
        return  # a robot: the same answer, and nothing done
    existing = users.find_by_email(db, organization.id, form.email)
    if existing is None:
        _new_account(db, organization, form, hashed, base_url)
    elif existing.status == UserStatus.PENDING.value and existing.email_verified_at is None:
        # A new account's row costs more than this one's update (an index entry per word on
        # PostgreSQL): a stand-in's, undone, so that the time does not tell either.
        with decoy.undone(db):
            decoy.stand_in(db, form.email, organization=organization)
        _register_again(db, organization, existing, form, hashed, base_url)
    else:
        # What a new account costs (its row, audit event and link), done for a stand-in and
        # undone, so that the time taken does not tell that the address has an account.
        with decoy.undone(db):
            if (person := decoy.stand_in(db, form.email, organization=organization)) is not None:
                _registered(db, person, form, changes={"email": person.email})
                issue_user_token(db, user=person, purpose=SIGNUP, ttl=SIGNUP_LINK_TTL)
        _tell_the_owner(db, organization, existing, base_url)


def _person(user: User, form: Registration) -> Actor:
    """The person registering, as the actor of their own registration."""
    return Actor(
        user.organization_id,
        user.id,
        None,
        display_name(user.first_name, user.last_name, user.email),
        ip=form.ip,
        user_agent=(form.user_agent or "")[:500] or None,
    )


def _new_account(
    db: Session,
    organization: Organization,
    form: Registration,
    hashed: str | None,
    base_url: str,
) -> None:
    user = User(
        organization_id=organization.id,
        email=form.email.strip(),
        email_normalized=normalize_email(form.email),
        first_name=form.first_name.strip(),
        last_name=form.last_name.strip(),
        status=UserStatus.PENDING.value,
        created_via=CreatedVia.SIGNUP.value,
        password_hash=hashed,
    )
    db.add(user)
    db.flush()
    _registered(db, user, form, changes={"email": user.email})
    _send_confirmation(db, organization, user, base_url)


def _registered(db: Session, user: User, form: Registration, *, changes: dict[str, Any]) -> None:
    audit.record(
        db,
        actor=_person(user, form),
        action="user.registered",
        target_type="user",
        target_id=user.id,
        changes={**changes, "with_password": bool(form.password)},
    )


def _register_again(
    db: Session,
    organization: Organization,
    user: User,
    form: Registration,
    hashed: str | None,
    base_url: str,
) -> None:
    """A Not Activated account never confirmed (a lost email, or made by the host product
    from a ticket): the latest registration's password counts, and a fresh link goes out."""
    user.password_hash = hashed
    user.first_name = user.first_name or form.first_name.strip()
    user.last_name = user.last_name or form.last_name.strip()
    user.version += 1
    db.flush()
    _registered(db, user, form, changes={"email": user.email, "again": True})
    _send_confirmation(db, organization, user, base_url)


def _send_confirmation(db: Session, organization: Organization, user: User, base_url: str) -> None:
    token, expires = issue_user_token(db, user=user, purpose=SIGNUP, ttl=SIGNUP_LINK_TTL)
    mail.enqueue(
        db,
        organization_id=organization.id,
        to=user.email,
        kind=EmailKind.SIGNUP_CONFIRMATION,
        context=mail.email_context(
            organization, user, link=f"{base_url}/signup/confirm/{token}", expires=expires
        ),
        user_id=user.id,
    )


def _tell_the_owner(db: Session, organization: Organization, user: User, base_url: str) -> None:
    """Someone registered with an address that has an account: its owner hears of it."""
    mail.enqueue(
        db,
        organization_id=organization.id,
        to=user.email,
        kind=EmailKind.SIGNUP_EXISTING,
        context=mail.email_context(
            organization, user, link=f"{base_url}/password/forgot", expires=utcnow()
        ),
        user_id=user.id,
    )


def find_confirmation(db: Session, *, token: str) -> User:
    """The person a confirmation link is for.

    Raises:
        LinkProblem: the link is unknown, used or expired.
    """
    return find_user_token(db, token=token, purpose=SIGNUP)[1]


def confirm(
    db: Session, *, token: str, password: str = "", ip: str | None = None
) -> tuple[User, bool]:
    """Follow a confirmation link: the address is verified and the account activated.

    An account registered without a password gets PASSWORD now. Returns the user and
    whether they may sign in (not when the organization wants an admin's validation first).

    Raises:
        LinkProblem: the link is unknown, used or expired.
        InvalidInput: no password where one is needed, or one too short, long or common.
    """
    found, user = find_user_token(db, token=token, purpose=SIGNUP)
    chose_password = user.password_hash is None
    if chose_password:
        if not password:
            raise InvalidInput("Choose a password.", fields={"password": "is required"})
        set_password(db, user=user, password=password)
    now = utcnow()
    found.used_at = now
    user.email_verified_at = user.email_verified_at or now
    before = user.status
    if user.status == UserStatus.PENDING.value:
        user.status = UserStatus.ACTIVE.value
        user.status_changed_at = now
        user.status_changed_by_id = user.id
    user.version += 1
    db.flush()
    audit.record(
        db,
        actor=_person(user, Registration(email=user.email, ip=ip)),
        action="user.registration_confirmed",
        target_type="user",
        target_id=user.id,
        changes={"email_verified": True, "password_set": chose_password}
        | ({"status": {"from": before, "to": user.status}} if before != user.status else {}),
    )
    organization = db.get_one(Organization, user.organization_id)
    waits = organizations.requires_validation(organization) and user.validated_at is None
    return user, user.status == UserStatus.ACTIVE.value and not waits
