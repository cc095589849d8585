"""Read replicas against a real streaming replica: a second PostgreSQL cluster made with
pg_basebackup, started and stopped here. Reads of the Users list land on the replica,
a caller who just wrote reads from the primary, and a replica that falls behind or stops
is skipped without an error.

It runs with the PostgreSQL run only (it takes the `engine` fixture, on PostgreSQL, for
that alone: its databases are the two clusters it makes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from tests import factories
from tests.conftest import BACKENDS, make_settings
from userdesk.db.engine import make_engine
from userdesk.db.migrate import upgrade
from userdesk.db.replicas import WROTE_COOKIE, Replica
from userdesk.db.session import Database
from userdesk.organizations.models import Organization
from userdesk.web.app import create_app

MAX_LAG = 8.0  # seconds a replica may be behind (USERDESK_REPLICA_MAX_LAG_SECONDS)
WINDOW = 1.5  # seconds of read-your-writes (USERDESK_REPLICA_READ_YOUR_WRITES_SECONDS)


def _bin(name: str) -> str:
    """A PostgreSQL server program, from the newest version installed (Debian's layout)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version)
    assert found, f"{name} not found under /usr/lib/postgresql/*/bin"
    return found[-1]


def _version(path: str) -> int:
    return int(Path(path).parts[4])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(*command: str) -> None:
    """COMMAND as the postgres user (the server refuses to run as root)."""
    if os.getuid() == 0:
        command = ("runuser", "-u", "postgres", "--", *command)
    subprocess.run(command, check=True, capture_output=True, timeout=60)  # noqa: S603


@dataclass
class Clusters:
    root: Path
    primary_url: str
    replica_url: str
    replica_dir: Path

    def stop_replica(self) -> None:
        _run(_bin("pg_ctl"), "-D", str(self.replica_dir), "-m", "immediate", "-w", "stop")


def _make_clusters(root: Path) -> Clusters:
    primary, replica = root / "primary", root / "replica"
    primary_port, replica_port = _free_port(), _free_port()
    _run(_bin("initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N")
    with (primary / "postgresql.conf").open("a") as conf:
        conf.write(
            f"port = {primary_port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{root}'\nwal_level = replica\nmax_wal_senders = 4\n"
            "fsync = off\nfull_page_writes = off\n"
        )
    with (primary / "pg_hba.conf").open("a") as hba:
        hba.write("host replication all 127.0.0.1/32 trust\n")
    _run(_bin("pg_ctl"), "-D", str(primary), "-l", str(root / "primary.log"), "-w", "start")
    _run(
        _bin("pg_basebackup"),
        *("-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres"),
        *("-D", str(replica), "-R", "-X", "stream", "-c", "fast", "-N"),
    )
    with (replica / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {replica_port}\nhot_standby = on\n")
    _run(_bin("pg_ctl"), "-D", str(replica), "-l", str(root / "replica.log"), "-w", "start")
    base = "postgresql://postgres@127.0.0.1:{}/postgres"
    return Clusters(root, base.format(primary_port), base.format(replica_port), replica)


def _stop_all(root: Path) -> None:
    for name in ("replica", "primary"):
        if (root / name / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
                _run(_bin("pg_ctl"), "-D", str(root / name), "-m", "immediate", "-w", "stop")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def clusters() -> Iterator[Clusters]:
    """A primary with one streaming replica, migrated; both stopped and removed after."""
    root = Path(tempfile.mkdtemp(prefix="userdesk-replicas-"))
    try:
        if os.getuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        root.chmod(0o700)
        made = _make_clusters(root)
        primary = make_engine(made.primary_url)
        upgrade(primary)
        primary.dispose()
        yield made
    finally:
        _stop_all(root)


@dataclass
class World:
    app: FastAPI
    database: Database
    primary: Engine
    replica_sql: Engine  # the test's own connection to the replica
    key_a: str
    key_b: str
    admin_email: str
    org_id: int
    served: list[int]  # statements the app's replica engine ran, one counter
    paused_at: float = 0.0  # when the replica's replay was last paused (time.monotonic)

    @property
    def replica(self) -> Replica:
        assert self.database.replicas is not None
        return self.database.replicas.replicas[0]

    def client(self, key: str | None = None, app: FastAPI | None = None) -> TestClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return TestClient(app or self.app, headers=headers, follow_redirects=False)

    def app_of_another_process(self) -> FastAPI:
        """The same databases behind a second app, its own replicas' state and map (its
        replica checked once)."""
        settings = self.app.state.settings
        other = create_app(settings, Database.from_settings(settings))
        self.until_state(self.client(app=other), "healthy")
        return other

    def on_primary(self, work: Callable[[Session], Any]) -> Any:
        with Session(self.primary, expire_on_commit=False) as db:
            done = work(db)
            db.commit()
            return done

    def make_user(self, email: str) -> None:
        self.on_primary(
            lambda db: factories.make_user(db, db.get_one(Organization, self.org_id), email=email)
        )

    def on_replica(self, email: str) -> bool:
        with self.replica_sql.connect() as connection:
            found = connection.execute(
                text("SELECT count(*) FROM users WHERE email = :email"), {"email": email}
            ).scalar()
        return bool(found)

    def replayed(self, email: str) -> None:
        """Wait until the replica has replayed the row of EMAIL."""
        deadline = time.monotonic() + 20
        while not self.on_replica(email):
            assert time.monotonic() < deadline, f"{email} never reached the replica"
            time.sleep(0.05)

    def until_state(self, client: TestClient, state: str) -> None:
        """Wait until /readyz (which checks a replica whose last check is stale) reports
        the replica in STATE."""
        deadline = time.monotonic() + 2 * MAX_LAG
        while True:
            ready = client.get("/readyz")
            assert ready.status_code == 200
            found = ready.json()["replicas"][0]
            if found["state"] == state:
                return
            assert time.monotonic() < deadline, found
            time.sleep(0.1)

    def replay(self, *, paused: bool) -> None:
        call = "pg_wal_replay_pause" if paused else "pg_wal_replay_resume"
        with self.replica_sql.connect() as connection:
            connection.execute(text(f"SELECT {call}()"))

    def fresh_replay(self, email: str) -> None:
        """Let the replica replay a commit now (its lag is then measured from now), then
        pause its replay."""
        self.make_user(email)
        self.replayed(email)
        self.replay(paused=True)
        self.paused_at = time.monotonic()


def listed(client: TestClient, email: str) -> bool:
    response = client.get("/api/v1/users", params={"q": email})
    assert response.status_code == 200, response.text
    return any(item["email"] == email for item in response.json()["items"])


@pytest.fixture(scope="module")
def world(clusters: Clusters, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = make_settings(tmp_path_factory.mktemp("replicas"), clusters.primary_url)
    settings = dataclasses.replace(
        settings,
        database_replica_urls=(clusters.replica_url,),
        replica_max_lag_seconds=MAX_LAG,
        replica_read_your_writes_seconds=WINDOW,
    )
    database = Database.from_settings(settings)
    assert database.replicas is not None
    served: list[int] = [0]

    @event.listens_for(database.replicas.replicas[0].engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        served[0] += 1

    primary = make_engine(clusters.primary_url)

    def setup(db: Session) -> tuple[int, str, str, str]:
        org = factories.make_organization(db)
        admin = factories.make_admin(db, org)
        return org.id, factories.make_api_key(db, org), factories.make_api_key(db, org), admin.email

    with Session(primary, expire_on_commit=False) as db:
        org_id, key_a, key_b, admin_email = setup(db)
        db.commit()
    made = World(
        create_app(settings, database),
        database,
        primary,
        make_engine(clusters.replica_url),
        key_a,
        key_b,
        admin_email,
        org_id,
        served,
    )
    made.replayed(admin_email)
    made.until_state(made.client(), "healthy")  # checked once: used from now on
    yield made
    database.dispose()
    made.replica_sql.dispose()
    primary.dispose()


# On the PostgreSQL run alone (which keeps the tests taking `engine`), once.
ON_POSTGRESQL = pytest.mark.parametrize("engine", ["postgresql"], indirect=True)


def _test_reads_land_on_the_replica(world: World) -> None:
    """A row the paused replica has not replayed is not in the list its reads make."""
    world.fresh_replay("fresh-1@example.com")
    try:
        world.make_user("hidden@example.com")
        before = world.served[0]
        reader = world.client(world.key_b)
        assert not listed(reader, "hidden@example.com")
        assert listed(reader, "fresh-1@example.com")  # the replica does answer
        assert world.served[0] > before  # and its engine ran the list's statements
        ready = reader.get("/readyz").json()
        assert ready["status"] == "ok"
        assert ready["replicas"][0]["state"] == "healthy"
        export = reader.get("/api/v1/users/export", params={"q": "@example.com"})
        assert export.status_code == 200
        assert "fresh-1@example.com" in export.text
        assert "hidden@example.com" not in export.text
        # A user's own page is no list: it reads on the primary, which has the row.
        hidden_id = world.on_primary(
            lambda db: db.scalar(text("SELECT id FROM users WHERE email = 'hidden@example.com'"))
        )
        assert reader.get(f"/api/v1/users/{hidden_id}").status_code == 200

        # Read-your-writes: key A writes, then reads from the primary (no cookie: this
        # process remembers); key B, who did not write, still reads on the replica.
        other = world.app_of_another_process()  # made before: the window is short
        writer = world.client(world.key_a)
        created = writer.post("/api/v1/users", json={"email": "mine@example.com"})
        assert created.status_code == 201, created.text
        assert WROTE_COOKIE in created.cookies
        assert listed(world.client(world.key_a), "mine@example.com")
        assert not listed(world.client(world.key_b), "mine@example.com")
        # Another server process: the browser's cookie carries the write there.
        with_cookie = world.client(world.key_a, app=other)
        with_cookie.headers["Cookie"] = f"{WROTE_COOKIE}={created.cookies[WROTE_COOKIE]}"
        assert listed(with_cookie, "mine@example.com")
        assert not listed(world.client(world.key_a, app=other), "mine@example.com")
        # Once the window has passed, the writer's reads go back to the replica.
        time.sleep(WINDOW + 0.1)
        assert not listed(world.client(world.key_a), "mine@example.com"), world.replica

        # A replica that falls behind is skipped: the reads go to the primary.
        time.sleep(max(0.0, world.paused_at + MAX_LAG - time.monotonic()))
        world.until_state(reader, "lagging")
        assert listed(reader, "hidden@example.com")
    finally:
        world.replay(paused=False)
    world.replayed("mine@example.com")
    world.until_state(reader, "healthy")  # the next check finds it caught up
    before = world.served[0]
    assert listed(world.client(world.key_b), "hidden@example.com")
    assert world.served[0] > before
    assert world.replica.state == "healthy"


if "postgresql" in BACKENDS:

    @ON_POSTGRESQL
    def test_reads_land_on_the_replica_and_writers_read_the_primary(
        engine: Engine, world: World
    ) -> None:
        """Lists read on the replica; a caller who just wrote reads its write on the
        primary (in this process and, by the cookie, in another); a lagging replica is
        skipped and used again once caught up."""
        assert engine.dialect.name == "postgresql"
        _test_reads_land_on_the_replica(world)

    @ON_POSTGRESQL
    def test_console_lists_read_on_the_replica(engine: Engine, world: World) -> None:
        """The console's Users list and its counts, behind a browser session, read on the
        replica; the session itself, made a moment ago, is checked on the primary."""
        assert engine.dialect.name == "postgresql"
        browser = world.client()
        factories.login(browser, world.admin_email)  # no write of the admin's: no window
        world.fresh_replay("fresh-2@example.com")
        try:
            world.make_user("console-hidden@example.com")
            before = world.served[0]
            page = browser.get("/console/users", params={"q": "@example.com"})
            assert page.status_code == 200
            assert "fresh-2@example.com" in page.text
            assert "console-hidden@example.com" not in page.text
            assert world.served[0] > before
            counts = browser.get("/console/users/counts", params={"q": "fresh-2@example.com"})
            assert counts.status_code == 200
            before = world.served[0]
            assert browser.get("/console/audit").status_code == 200
            assert world.client(world.key_b).get("/api/v1/audit").status_code == 200
            assert world.served[0] > before + 1  # both read on the replica
        finally:
            world.replay(paused=False)

    @ON_POSTGRESQL
    def test_a_stopped_replica_is_skipped(engine: Engine, clusters: Clusters, world: World) -> None:
        """With the replica down, lists still answer (from the primary) and /readyz says
        the replica is down without failing."""
        assert engine.dialect.name == "postgresql"
        world.make_user("after-stop@example.com")
        clusters.stop_replica()
        reader = world.client(world.key_b)
        assert listed(reader, "after-stop@example.com")
        export = reader.get("/api/v1/users/export", params={"q": "after-stop@example.com"})
        assert export.status_code == 200
        assert "after-stop@example.com" in export.text
        ready = reader.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["replicas"][0]["state"] == "down"
