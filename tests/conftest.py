"""Fixtures: a migrated database per backend, each test in a transaction rolled back."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from tests import factories
from tests.mail.smtp import SmtpServer
from userdesk.auth import secrets
from userdesk.config import Settings
from userdesk.db.engine import make_engine
from userdesk.db.migrate import upgrade
from userdesk.db.session import Database
from userdesk.organizations.models import Organization
from userdesk.web.app import create_app
from userdesk.worker import Worker

POSTGRES_URL = os.environ.get("USERDESK_TEST_POSTGRES_URL")
# One backend alone (scripts/test runs the two at once, each in a process of its own).
ONLY_BACKEND = os.environ.get("USERDESK_TEST_BACKEND")
BACKENDS = [ONLY_BACKEND] if ONLY_BACKEND else ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


# Tests whose database work is the same on both backends: pages' HTML, headers, input
# checks before any query, the route-by-role matrix, flows that only store and read rows
# back. The SQLite run has them; the PostgreSQL run keeps the rest, where the database's
# own behaviour shows (queries, counts, paging, locks, JSON, time zones, migrations).
SAME_ON_EVERY_BACKEND = (
    "tests/browser/",
    "tests/console/",
    "tests/signup/",
    "tests/two_step/",
    "tests/unit/",
    "tests/web/",
    "tests/access/test_authorization_matrix.py",
    "tests/api/test_bad_input.py",
    "tests/api/test_openapi_",
    "tests/api/test_webhooks_attacks.py",
)


# Argon2id at the library's recommended cost (64 MiB, 3 passes, 4 lanes) spends about 0.2 s
# of CPU on each hash and each sign-in, on purpose: over the suite's sign-ins, minutes. The
# tests hash and verify with the same algorithm at the smallest cost instead (its parameters
# unlike those of any hash the tests import); a test of hashing or of its timing is marked
# `real_argon2` and gets the production parameters. Set here, at import, so that every hash
# of the run (factories.password_hash's cache, the dummy hash) is made with them.
REAL_ARGON2 = secrets._hasher
CHEAP_ARGON2 = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1)
secrets._hasher = CHEAP_ARGON2


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_argon2: hashes passwords with the production argon2id parameters"
    )
    config.addinivalue_line(
        "markers", "only_on(backend): runs on that database alone, deselected on the other"
    )


@pytest.fixture(autouse=True)
def _argon2_parameters(request: pytest.FixtureRequest) -> Iterator[None]:
    """The production argon2id parameters for a test marked `real_argon2`, the cheap ones
    (CHEAP_ARGON2) for every other: hashes cached by the one are not used by the other."""
    if request.node.get_closest_marker("real_argon2") is None:
        yield
        return
    secrets._hasher = REAL_ARGON2
    secrets._dummy_hash.cache_clear()
    factories.password_hash.cache_clear()
    try:
        yield
    finally:
        secrets._hasher = CHEAP_ARGON2
        secrets._dummy_hash.cache_clear()
        factories.password_hash.cache_clear()


def _backend_of(item: pytest.Item) -> str | None:
    """The database ITEM runs on (None: none)."""
    if "engine" not in getattr(item, "fixturenames", ()):
        return None
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("engine") if callspec is not None else ONLY_BACKEND


def _runs_here(item: pytest.Item) -> bool:
    """Whether ITEM belongs to this run: a test marked `only_on` runs on its backend alone
    (deselected, not skipped, elsewhere); with PostgreSQL alone, only the tests on a
    database whose behaviour can differ there: the SQLite run has the rest
    (SAME_ON_EVERY_BACKEND and tests on no database)."""
    backend = _backend_of(item)
    only = item.get_closest_marker("only_on")
    if only is not None and backend != only.args[0]:
        return False
    if ONLY_BACKEND != "postgresql":
        return True
    return backend is not None and not item.nodeid.split("::", 1)[0].startswith(
        SAME_ON_EVERY_BACKEND
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, elsewhere = [], []
    for item in items:
        (kept if _runs_here(item) else elsewhere).append(item)
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = kept


def make_settings(tmp: Path, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret",
        base_url="http://testserver",
        smtp_url=None,
        mail_from="Userdesk <no-reply@test.example>",
        var_dir=tmp,
        churn_every_hours=0,  # tests that want a scoring run it
    )


@pytest.fixture(scope="session", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A freshly migrated database on each backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.db"
        eng = make_engine(f"sqlite:///{path}")
        upgrade(eng)
        yield eng
        eng.dispose()
        return
    assert POSTGRES_URL
    schema = f"ud_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        _keep_pg_trgm_in_public(conn)
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema},public"})
    upgrade(eng)
    yield eng
    eng.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _keep_pg_trgm_in_public(conn: Connection) -> None:
    """pg_trgm lives in public, which every test schema's search path holds.

    The migration's CREATE EXTENSION IF NOT EXISTS would otherwise put it in the first test
    schema, where a run that dies before dropping its schema leaves it out of every later
    run's reach ("operator class gin_trgm_ops does not exist").
    """
    where = conn.execute(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        )
    ).scalar()
    if where is None:
        conn.execute(text("CREATE EXTENSION pg_trgm SCHEMA public"))
    elif where != "public":
        conn.execute(text("ALTER EXTENSION pg_trgm SET SCHEMA public"))


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back when the test ends."""
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        if outer.is_active:
            outer.rollback()


@pytest.fixture
def own_database(engine: Engine, tmp_path: Path) -> Iterator[Database]:
    """A migrated database of the test's own, on ENGINE's backend: for a test that
    commits (rows in the shared one would outlive it, and other tests would see them)."""
    if engine.dialect.name == "sqlite":
        database = Database.from_url(f"sqlite:///{tmp_path}/own.db")
        upgrade(database.engine)
        yield database
        database.dispose()
        return
    assert POSTGRES_URL
    with postgres_schema("ud_own") as schema:
        database = Database(
            make_engine(
                POSTGRES_URL,
                connect_args={
                    "options": f"-csearch_path={schema},public",
                    "application_name": schema,
                },
            )
        )
        try:
            upgrade(database.engine)
            yield database
        finally:
            database.dispose()


@contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """The name of a schema of its own (PREFIX and a random part) on the test PostgreSQL
    server, dropped at the end with what is in it. Connections named after it
    (application_name) are ended first: a server or a thread that hung leaves them in the
    middle of transactions, holding locks the drop would wait for."""
    assert POSTGRES_URL
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": schema},
            )
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class BoundDatabase(Database):
    """A Database whose sessions join the test's transaction: their commits are savepoints."""

    def __init__(self, engine: Engine, connection: Connection) -> None:
        super().__init__(engine)
        self.sessions = sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )


@pytest.fixture
def database(engine: Engine, connection: Connection) -> BoundDatabase:
    return BoundDatabase(engine, connection)


@pytest.fixture
def db(database: BoundDatabase) -> Iterator[Session]:
    """A session for arranging and checking data, inside the test's transaction."""
    with database.sessions() as session:
        yield session


@pytest.fixture
def settings(tmp_path: Path, engine: Engine) -> Settings:
    return make_settings(tmp_path, engine.url.render_as_string(hide_password=False))


# The apps of this run, by the settings their middleware reads when it is built.
_APPS: dict[tuple[bool, bool], FastAPI] = {}


@pytest.fixture
def app(settings: Settings, database: BoundDatabase) -> FastAPI:
    """The app, built once per run and given each test's settings and database: building
    its routes (FastAPI analyses each route's dependencies) costs more than most tests."""
    key = (settings.https, settings.server_timing)
    if key not in _APPS:
        _APPS[key] = create_app(settings, database)
    shared = _APPS[key]
    shared.state.settings = settings
    shared.state.database = database
    return shared


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def org(db: Session) -> Organization:
    return factories.make_organization(db)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on localhost that keeps what it receives."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def worker(database: BoundDatabase, settings: Settings, smtp: SmtpServer) -> Worker:
    """A worker that sends the outbox to SMTP."""
    return Worker(database, dataclasses.replace(settings, smtp_url=smtp.url))
