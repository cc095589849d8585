"""Doing, for an address with no account, the work an answer for one would cost, and then
undoing it, so that the time an anonymous answer takes says nothing about who has an account.

`/password/forgot` and `/signup` answer the same words whatever the address; without this
they would not take the same time: an account's branch writes a link, an email (or a new
account and its audit event), the other branch nothing. The branch without an account runs
the same service code for a stand-in person inside a savepoint that is rolled back: the same
statements and the same rendering, and nothing kept, sent or shown.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from userdesk.organizations.models import Organization
from userdesk.users.models import User
from userdesk.users.rules import UserStatus, normalize_email

log = logging.getLogger(__name__)


@contextmanager
def undone(db: Session) -> Iterator[None]:
    """Run the block's statements in a savepoint of DB's transaction that is then rolled
    back, whatever happens in it: its work is done, and nothing of it is kept."""
    savepoint = db.begin_nested()
    try:
        yield
    except Exception:  # a stand-in's failure is nobody's: the answer must stay the same
        log.exception("the stand-in's work failed (rolled back)")
    finally:
        if savepoint.is_active:
            savepoint.rollback()


def stand_in(db: Session, email: str, *, organization: Organization | None = None) -> User | None:
    """A person with an address like EMAIL (made unique) in ORGANIZATION (else the first
    organization), added to DB's session: to be used only inside `undone()`. None when there
    is no organization."""
    if organization is None:
        organization = db.scalars(select(Organization).order_by(Organization.id).limit(1)).first()
    if organization is None:
        return None
    address = f"{secrets.token_hex(8)}.{email.strip()}"[:254]
    values = {
        "organization_id": organization.id,
        "email": address,
        "email_normalized": normalize_email(address),
        "first_name": "",
        "last_name": "",
        "status": UserStatus.PENDING.value,
        "created_via": "signup",
        "version": 1,
    }
    # Core, not the ORM: the statement a new account costs, without the session's overhead
    # (which a real account's branch does not pay either).
    user_id = db.execute(insert(User).values(**values).returning(User.id)).scalar_one()
    return User(id=user_id, **values)


def someone(db: Session) -> User | None:
    """A person who exists, to stand in for one who does not where the answer for a real
    one writes no person (a reset link): to be used only inside `undone()`. None when
    there is nobody yet."""
    return db.scalars(select(User).order_by(User.id).limit(1)).first()
