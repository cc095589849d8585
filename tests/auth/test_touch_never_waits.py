"""Recording that a key or a session was used never waits for a row another transaction
holds: the authentication runs on the event loop, and a wait there stops every request of
the server process, the one holding the lock too (16 clients with one API key hung a
PostgreSQL server for good). The hint is dropped instead, and written by a later request.

PostgreSQL's alone: SQLite locks the whole database, not rows, and a writer waits for it
off the event loop (tests/db/test_write_lock.py). On a database of the tests' own: they
commit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from tests import factories
from tests.conftest import make_settings
from userdesk.auth import service as auth
from userdesk.auth.models import ApiKey, LoginSession
from userdesk.db.base import utcnow
from userdesk.db.session import Database
from userdesk.users.models import User

WAIT_AT_MOST = 10.0  # seconds; the touch took milliseconds, the wait it replaced forever


@contextmanager
def _row_locked(engine: Engine, model: type[ApiKey] | type[User], row_id: int) -> Iterator[None]:
    """MODEL's row ROW_ID locked by another transaction (FOR UPDATE) while inside."""
    with engine.connect() as conn:
        held = conn.begin()
        conn.execute(select(model.id).where(model.id == row_id).with_for_update())
        try:
            yield
        finally:
            held.rollback()


def _finishes(work: Callable[[], Any]) -> bool:
    """Whether WORK ends within WAIT_AT_MOST seconds (run on a thread of its own)."""
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(WAIT_AT_MOST)
    return not thread.is_alive()


@pytest.mark.only_on("postgresql")
def test_a_key_in_use_by_a_locking_transaction_still_authenticates(
    own_database: Database,
) -> None:
    database = own_database
    with database.unit_of_work() as db:
        org = factories.make_organization(db)
        secret = factories.make_api_key(db, org)
        key_id = db.scalars(select(ApiKey.id).where(ApiKey.organization_id == org.id)).one()

    def authenticate() -> None:
        with database.unit_of_work() as db:
            auth.authenticate_api_key(db, secret=secret)

    with _row_locked(database.engine, ApiKey, key_id):
        assert _finishes(authenticate)
        with database.unit_of_work() as db:
            assert db.get_one(ApiKey, key_id).last_used_at is None  # the hint dropped
    authenticate()
    with database.unit_of_work() as db:
        assert db.get_one(ApiKey, key_id).last_used_at is not None  # and written later


@pytest.mark.only_on("postgresql")
def test_a_session_whose_user_row_is_locked_still_authenticates(
    own_database: Database, tmp_path: Path
) -> None:
    database = own_database
    url = database.engine.url.render_as_string(hide_password=False)
    settings = make_settings(tmp_path, url)
    with database.unit_of_work() as db:
        org = factories.make_organization(db)
        user = factories.make_user(db, org)
        signed_in = auth.start_session(db, settings=settings, user=user)
        user_id, session_id, seen = user.id, signed_in.session.id, user.last_seen_at
    later = utcnow() + 2 * auth.TOUCH_EVERY

    def authenticate() -> None:
        with database.unit_of_work() as db:
            found = auth.authenticate_session(
                db, settings=settings, token=signed_in.token, now=later
            )
            assert found is not None

    with _row_locked(database.engine, User, user_id):
        assert _finishes(authenticate)
    with database.unit_of_work() as db:
        assert db.get_one(User, user_id).last_seen_at == seen  # the user's hint dropped
        # the session's row was free: its own hint was written
        touched = db.get_one(LoginSession, session_id).last_seen_at
        assert touched is not None
        assert touched >= later - timedelta(seconds=1)
