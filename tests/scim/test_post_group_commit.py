"""POST /Users requests that arrive while another writer holds the turn are created in
one transaction (web.scim.UserPosts: a group commit), each answered as it would be alone.

On a database of the test's own (SQLite, committing for real): the requests run at once,
which the test's shared connection cannot take."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests import factories
from tests.conftest import make_settings
from tests.scim.conftest import MEDIA, USER_SCHEMA, make_token
from userdesk.audit.models import AuditEvent
from userdesk.audit.service import verify_chain
from userdesk.db.migrate import upgrade
from userdesk.db.session import Database
from userdesk.scim.models import ScimRequest
from userdesk.users.models import User
from userdesk.web.app import create_app

NEW = ["ann@example.com", "bo@example.com", "cy@example.com", "di@example.com"]


def _user(email: str) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": email, "name": {"givenName": "Al"}}


def test_posts_arriving_together_are_created_together_each_answered_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four new users, one taken email, one bad body and one bad token, sent while another
    writer holds the turn: the four are created in one transaction (one audit time, their
    log rows with them), each answered 201 with its resource; the others answer 409, 400
    and 401 as they would alone, and nothing of theirs is kept."""
    url = f"sqlite:///{tmp_path}/posts.db"
    database = Database.from_url(url)
    upgrade(database.engine)
    with database.unit_of_work() as db:
        org = factories.make_organization(db)
        factories.make_user(db, org, email="taken@example.com")
        token = make_token(db, org, name="Okta")
        org_id = org.id
    app = create_app(make_settings(tmp_path, url), database)
    transactions: list[int] = []
    writing = database.writing

    @asynccontextmanager
    async def counted() -> AsyncIterator[Any]:
        async with writing() as session:
            transactions.append(1)
            yield session

    monkeypatch.setattr(database, "writing", counted)
    good = {"Authorization": f"Bearer {token}", "Content-Type": MEDIA}
    bad = {**good, "Authorization": "Bearer scim_not-a-token-at-all"}
    sent: list[tuple[dict[str, str], Any]] = [
        *((good, _user(email)) for email in NEW),
        (good, _user("Taken@example.com")),
        (good, {"schemas": [USER_SCHEMA], "userName": 42, "name": []}),
        (bad, _user("eve@example.com")),
    ]

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await database.writers.acquire_async()  # another writer holds the turn
            try:
                tasks = [
                    asyncio.create_task(client.post("/scim/v2/Users", json=body, headers=headers))
                    for headers, body in sent
                ]
                for _ in range(20):  # every request reads its body and joins the queue
                    await asyncio.sleep(0.01)
                assert not any(task.done() for task in tasks)  # each waits for the turn
            finally:
                database.writers.release()
            return list(await asyncio.gather(*tasks))

    try:
        # A loop of its own, in a thread of its own: a browser test's may run in this one.
        with ThreadPoolExecutor(1) as pool:
            answers = pool.submit(asyncio.run, burst()).result()
        with database.unit_of_work(write=False) as db:
            users = {
                u.email: u for u in db.scalars(select(User).where(User.organization_id == org_id))
            }
            events = list(
                db.scalars(
                    select(AuditEvent).where(
                        AuditEvent.organization_id == org_id, AuditEvent.action == "user.created"
                    )
                )
            )
            logged = list(
                db.scalars(select(ScimRequest).where(ScimRequest.organization_id == org_id))
            )
            assert verify_chain(db, organization_id=org_id) == []
    finally:
        database.dispose()
    assert [a.status_code for a in answers] == [201, 201, 201, 201, 409, 400, 401]
    for email, answer in zip(NEW, answers, strict=False):
        body = answer.json()
        assert body["userName"] == email
        assert body["id"] == str(users[email].id)
        assert answer.headers["Location"] == f"http://testserver/scim/v2/Users/{body['id']}"
        assert answer.headers["ETag"] == body["meta"]["version"] == 'W/"1"'
        assert answer.headers["content-type"] == MEDIA
    assert answers[4].json()["scimType"] == "uniqueness"
    assert "eve@example.com" not in users
    created = [e for e in events if e.target_id in {str(users[m].id) for m in NEW}]
    assert len(created) == 4
    assert {e.actor_name for e in created} == {"SCIM token Okta"}
    assert len({e.occurred_at for e in created}) == 1  # created together
    assert sorted(r.status for r in logged) == [201, 201, 201, 201, 400, 409]
    assert len(transactions) <= 3  # the four users and their rows; the failures' rows
