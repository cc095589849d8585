"""Users an import creates a batch at a time are found by the search exactly as the same
people added one by one are, whatever the term: a substring of three characters or more,
or the start of a word."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BoundDatabase
from userdesk.access.rules import system_actor
from userdesk.db.base import utcnow
from userdesk.imports import service as imports
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.organizations.models import Organization
from userdesk.query import builder
from userdesk.users.models import User

PEOPLE = [
    ("Ann", "Lee", "ann.lee@example.com"),
    ("Ángel", "O'Neil", "angel+news@Example.org"),
    ("Zoë", "Ng", "zn@ex-ample.test"),
    ("Bo", "Bo-Bo", "bobo@example.com"),
    ("Ünal", "Straße", "u.s@example.net"),
    ("Li", "", "li@example.com"),
    ("Anna-Lena", "Lee", "al.lee@example.com"),
    ("Mo", "Ann", "MO@EXAMPLE.COM"),
]


def _terms() -> list[str]:
    """Every substring of one to four characters of each person's names and email, and
    each email whole: what can be typed without quotes or a key."""
    terms = {email for _, _, email in PEOPLE}
    for person in PEOPLE:
        for text in person:
            for size in (1, 2, 3, 4):
                terms.update(text[i : i + size] for i in range(len(text) - size + 1))
    return sorted(t for t in terms if not t.startswith("-") and not set(t) & set(" :'\""))


def _found(db: Session, org: Organization, term: str) -> set[str]:
    where = builder.conditions(
        db, organization_id=org.id, query=builder.parse_query(term), now=utcnow()
    )
    return set(
        db.scalars(select(User.email_normalized).where(User.organization_id == org.id, *where))
    )


def test_imported_users_are_found_by_every_term_as_users_added_one_by_one(
    db: Session, org: Organization, database: BoundDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "BATCH", 3)
    file = "email,first name,last name\n" + "".join(
        f"{email},{first},{last}\n" for first, last, email in PEOPLE
    )
    actor = system_actor(org.id, "tests")
    with database.unit_of_work() as session:
        draft = imports.draft(session, actor=actor, filename="p.csv", content=file.encode())
        job_id = imports.start(session, actor=actor, job_id=draft.id, dry_run=False).id
    finished = False
    while not finished:
        with database.unit_of_work() as session:
            finished = jobs.step(session, job=session.get_one(Job, job_id), base_url="http://x")
    one_by_one = factories.make_organization(db)
    for first, last, email in PEOPLE:
        factories.make_user(
            db, one_by_one, email=email, first_name=first, last_name=last, password=None
        )

    terms = _terms()
    found_any = 0
    for term in terms:
        imported = _found(db, org, term)
        assert imported == _found(db, one_by_one, term), term
        found_any += bool(imported)
    assert _found(db, org, "") == {email.lower() for _, _, email in PEOPLE}
    assert found_any > len(terms) * 3 // 4  # the terms do find people
