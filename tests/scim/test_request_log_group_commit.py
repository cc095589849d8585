"""The SCIM request log writes the rows of requests that end together in one transaction
(web.scim_log: a group commit), and each request ends once its row is written.

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
from tests.scim.conftest import MEDIA, make_token
from userdesk.db.migrate import upgrade
from userdesk.db.session import Database
from userdesk.scim import request_log
from userdesk.scim.models import ScimRequest
from userdesk.web.app import create_app

REQUESTS = 5


def test_requests_ending_while_the_log_waits_share_its_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/log.db"
    database = Database.from_url(url)
    upgrade(database.engine)
    with database.unit_of_work() as db:
        org = factories.make_organization(db)
        token = make_token(db, org)
    app = create_app(make_settings(tmp_path, url), database)
    transactions: list[int] = []
    ready: list[str] = []
    writing = database.writing
    logged_path = request_log.logged_path

    @asynccontextmanager
    async def counted() -> AsyncIterator[Any]:
        async with writing() as session:
            transactions.append(1)
            yield session

    def noted(path: str, query: str) -> str:
        ready.append(path)
        return logged_path(path, query)

    monkeypatch.setattr(database, "writing", counted)
    monkeypatch.setattr(request_log, "logged_path", noted)
    headers = {"Authorization": f"Bearer {token}", "Accept": MEDIA}

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await database.writers.acquire_async()  # another writer holds the turn
            try:
                sent = [
                    asyncio.create_task(client.get(f"/scim/v2/Users/{n}", headers=headers))
                    for n in range(REQUESTS)
                ]
                for _ in range(1000):  # until every request is done but for its log row
                    if len(ready) == REQUESTS:
                        break
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0)
                assert not any(task.done() for task in sent)  # each waits for its row
            finally:
                database.writers.release()
            return [response.status_code for response in await asyncio.gather(*sent)]

    try:
        # A loop of its own, in a thread of its own: a browser test's may run in this one.
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(asyncio.run, burst()).result() == [404] * REQUESTS
        assert len(transactions) == 1
        with database.unit_of_work(write=False) as db:
            logged = list(
                db.scalars(select(ScimRequest).where(ScimRequest.organization_id == org.id))
            )
    finally:
        database.dispose()
    assert sorted(r.path for r in logged) == sorted(f"/scim/v2/Users/{n}" for n in range(REQUESTS))
    assert {r.status for r in logged} == {404}
