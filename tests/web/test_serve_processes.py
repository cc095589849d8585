"""`userdesk serve --workers 2` as an operator runs it: two server processes that share
everything through the database, outbox workers that never send a mail twice, and a
SIGTERM that stops it all; and a write lock another process holds too long, told as a 503.

Which server process answered a request is read from /proc: the server's end of the
request's TCP connection (found in /proc/net/tcp by the client's port) is a socket that
only the process that accepted the connection holds among its file descriptors.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from tests import factories
from tests.conftest import POSTGRES_URL, make_settings, postgres_schema
from tests.mail.smtp import SmtpServer, free_port
from userdesk.audit.models import AuditEvent
from userdesk.auth import throttle
from userdesk.db import engine as engine_module
from userdesk.db.base import utcnow
from userdesk.db.migrate import upgrade
from userdesk.db.session import Database
from userdesk.mail.models import OutboxMessage
from userdesk.users.models import User
from userdesk.web.app import create_app
from userdesk.worker import Worker

USERDESK = Path(sys.executable).with_name("userdesk")
STARTUP_SECONDS = 90  # two processes importing the app on a busy 2-core machine
WRITES = 40


@dataclass
class Served:
    """A `userdesk serve --workers 2` subprocess and what a test needs to talk to it."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    database_url: str
    key: str  # an Administrator's API key
    admin_email: str
    user_ids: list[int]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def children_of(pid: int) -> list[int]:
    """The live processes whose parent is PID."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (name)"
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def served_by(response: httpx.Response, served: Served) -> int:
    """The pid of the server process that answered RESPONSE (its connection still open)."""
    client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if (int(local.split(":")[1], 16), int(remote.split(":")[1], 16)) == (
            served.port,
            client_port,
        ):
            inode = fields[9]
    assert inode is not None, f"no server socket for client port {client_port}"
    for pid in [served.process.pid, *children_of(served.process.pid)]:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError(f"neither {served.process.pid} nor a child holds socket {inode}")


def new_client(served: Served, cookies: httpx.Cookies | None = None) -> httpx.Client:
    """A client on one kept-alive connection of its own."""
    return httpx.Client(
        base_url=served.url,
        timeout=60,
        cookies=cookies,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


@contextmanager
def client_of(
    served: Served, pid: int, cookies: httpx.Cookies | None = None
) -> Iterator[httpx.Client]:
    """A client whose connection server process PID accepted (new connections until one
    lands there)."""
    for _ in range(100):
        with new_client(served, cookies) as client:
            if served_by(client.get("/healthz"), served) == pid:
                yield client
                return
    raise AssertionError(f"100 connections and none to process {pid}")


def server_pids(served: Served) -> set[int]:
    """The server processes that answer, found by opening connections until two answered
    (at most 100)."""
    pids: set[int] = set()
    for _ in range(100):
        with new_client(served) as client:
            pids.add(served_by(client.get("/healthz"), served))
        if len(pids) == 2:
            break
    return pids


def start(
    args: list[str], env: dict[str, str], log: Path, port: int | None = None
) -> subprocess.Popen[bytes]:
    """Run `userdesk ARGS` with ENV, its output to LOG; with PORT, wait until it answers."""
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 (our own command, fixed arguments)
            [str(USERDESK), *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    if port is None:
        return process
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def wait_for_output(log: Path, text: str) -> None:
    """Wait until LOG holds TEXT."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while text not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM PROCESS and wait for it; its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def environment(database_url: str, tmp: Path, smtp: SmtpServer) -> dict[str, str]:
    env = {
        **os.environ,
        "USERDESK_DATABASE_URL": database_url,
        "USERDESK_VAR_DIR": str(tmp),
        "USERDESK_SECRET_KEY": "serve-processes-test",
        "USERDESK_SMTP_URL": smtp.url,
        "USERDESK_CHURN_EVERY_HOURS": "0",
    }
    env.pop("USERDESK_BASE_URL", None)
    return env


@pytest.fixture(scope="module")
def database_url(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of the module's own on ENGINE's backend (the servers commit for real),
    migrated, with an organization, an Administrator, an API key and WRITES users."""
    if engine.dialect.name == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('serve')}/serve.db"
        return
    assert POSTGRES_URL
    with postgres_schema("ud_procs") as schema:
        yield f"{POSTGRES_URL}?application_name={schema}&options=-csearch_path%3D{schema},public"


@pytest.fixture(scope="module")
def module_smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def served(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, module_smtp: SmtpServer
) -> Iterator[Served]:
    """`userdesk serve --workers 2` on a migrated database with an organization, an
    Administrator, an API key and WRITES users; mail goes to MODULE_SMTP."""
    database = Database.from_url(database_url)
    upgrade(database.engine)
    with database.unit_of_work() as db:
        org = factories.make_organization(db)
        admin = factories.make_admin(db, org)
        key = factories.make_api_key(db, org)
        user_ids = [factories.make_user(db, org).id for _ in range(WRITES)]
        admin_email = admin.email
    database.dispose()
    tmp = tmp_path_factory.mktemp("served")
    port = free_port()
    log = tmp / "serve.log"
    env = environment(database_url, tmp, module_smtp)
    process = start(["serve", "--port", str(port), "--workers", "2"], env, log, port)
    yield Served(
        f"http://127.0.0.1:{port}", port, process, log, database_url, key, admin_email, user_ids
    )
    stop(process)


def test_two_server_processes_answer(served: Served) -> None:
    """Connections are answered by two different processes, both children of `serve`."""
    pids = server_pids(served)
    assert len(pids) == 2, served.output()
    assert served.process.pid not in pids


def test_a_session_signed_in_through_one_process_is_honoured_by_the_other(
    served: Served,
) -> None:
    with new_client(served) as signing_in:
        page = signing_in.get("/login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        signed_in = signing_in.post(
            "/login",
            data={"email": served.admin_email, "password": factories.PASSWORD, "csrf_token": token},
        )
        assert signed_in.status_code == 303, signed_in.text
        first = served_by(signed_in, served)
        cookies = signing_in.cookies
    other = next(pid for pid in server_pids(served) if pid != first)
    with client_of(served, other, cookies) as elsewhere:
        me = elsewhere.get("/me")
        assert served_by(me, served) == other
        assert me.status_code == 200, me.headers
        assert served.admin_email in me.text
    with client_of(served, other) as stranger:  # and without the cookie: to sign in
        assert stranger.get("/me").status_code == 303


def forgot(client: httpx.Client, email: str) -> httpx.Response:
    page = client.get("/password/forgot")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return client.post("/password/forgot", data={"email": email, "csrf_token": token})


def test_a_rate_limit_counted_in_one_process_holds_in_the_other(served: Served) -> None:
    """The password-reset limit per email, used up through one process, refuses the next
    attempt through the other."""
    first, other = sorted(server_pids(served))
    email = f"limited-{uuid.uuid4().hex[:8]}@example.com"
    with client_of(served, first) as client:
        for _ in range(throttle.PASSWORD_RESET_PER_EMAIL.max_hits):
            answer = forgot(client, email)
            assert answer.status_code == 200, answer.text
            assert served_by(answer, served) == first
    with client_of(served, other) as client:
        refused = forgot(client, email)
        assert served_by(refused, served) == other
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) > 0


def test_concurrent_writes_through_both_processes_all_succeed(served: Served) -> None:
    """WRITES PATCHes sent at once, each on a connection of its own, all answer 200 (no
    500, no "database is locked"), both processes take some, and every change is kept."""
    together = threading.Barrier(WRITES)
    run = uuid.uuid4().hex[:6]

    def patch(n: int) -> tuple[int, int, str]:
        path, auth = f"/api/v1/users/{served.user_ids[n]}", f"Bearer {served.key}"
        with new_client(served) as client:
            etag = client.get(path, headers={"Authorization": auth}).headers["etag"]
            together.wait()  # connected, and the user read, before the burst
            answer = client.patch(
                path,
                json={"first_name": f"Renamed{run}{n}"},
                headers={"Authorization": auth, "If-Match": etag},
            )
            return answer.status_code, served_by(answer, served), answer.text

    with ThreadPoolExecutor(WRITES) as pool:
        answers = list(pool.map(patch, range(WRITES)))
    assert [status for status, _, _ in answers] == [200] * WRITES, [
        body for status, _, body in answers if status != 200
    ]
    assert len({pid for _, pid, _ in answers}) == 2
    assert "database is locked" not in served.output()
    database = Database.from_url(served.database_url)
    with database.sessions() as db:
        names = db.scalars(select(User.first_name).where(User.id.in_(served.user_ids))).all()
    database.dispose()
    assert sorted(names) == sorted(f"Renamed{run}{n}" for n in range(WRITES))


def test_outbox_workers_beside_the_servers_send_each_mail_exactly_once(
    served: Served, module_smtp: SmtpServer, tmp_path: Path
) -> None:
    """Two `userdesk worker` processes and the worker of `serve` drain 60 invitations:
    every invited person gets exactly one email."""
    env = environment(served.database_url, tmp_path, module_smtp)
    workers = [start(["worker"], env, tmp_path / f"worker{n}.log") for n in range(2)]
    try:
        for n in range(2):  # both running before the mail is queued, or they do not compete
            wait_for_output(tmp_path / f"worker{n}.log", "sending through")
        run = uuid.uuid4().hex[:6]
        emails = [f"invited-{run}-{n}@example.com" for n in range(60)]
        invited = httpx.post(
            f"{served.url}/api/v1/invitations",
            json={"people": [{"email": email} for email in emails]},
            headers={"Authorization": f"Bearer {served.key}"},
            timeout=60,
        )
        assert invited.status_code == 201, invited.text
        database = Database.from_url(served.database_url)
        deadline = time.monotonic() + 120
        while True:
            with database.sessions() as db:
                waiting = db.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.recipient.in_(emails), OutboxMessage.status != "sent")
                )
            if not waiting:
                break
            assert time.monotonic() < deadline, f"{waiting} mails not sent"
            time.sleep(0.5)
        database.dispose()
        time.sleep(1)  # a second send, were there one, would have arrived by now
        received = [m["To"] for m in module_smtp.inbox.messages if m["To"] in emails]
        assert sorted(received) == sorted(emails)
        assert all(process.poll() is None for process in workers)
    finally:
        codes = [stop(process) for process in workers]
    assert codes == [0, 0], [(tmp_path / f"worker{n}.log").read_text() for n in range(2)]
    assert "stopped" in (tmp_path / "worker0.log").read_text()


def test_sigterm_stops_the_servers_and_the_worker(
    database_url: str, module_smtp: SmtpServer, tmp_path: Path
) -> None:
    """SIGTERM to `serve --workers 2` ends both server processes and then `serve` itself,
    with 0."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = environment(database_url, tmp_path, module_smtp)
    process = start(["serve", "--port", str(port), "--workers", "2"], env, log, port)
    own = Served(f"http://127.0.0.1:{port}", port, process, log, database_url, "", "", [])
    pids = server_pids(own)
    assert len(pids) == 2, log.read_text()
    assert stop(process) == 0, log.read_text()
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    assert "Stopping parent process" in log.read_text()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{own.url}/healthz", timeout=2)


def test_one_worker_is_one_process(
    database_url: str, module_smtp: SmtpServer, tmp_path: Path
) -> None:
    """`serve --workers 1` serves from its own process, as before there were several."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = environment(database_url, tmp_path, module_smtp)
    process = start(["serve", "--port", str(port), "--workers", "1"], env, log, port)
    own = Served(f"http://127.0.0.1:{port}", port, process, log, database_url, "", "", [])
    try:
        with new_client(own) as client:
            assert served_by(client.get("/healthz"), own) == process.pid
    finally:
        assert stop(process) == 0, log.read_text()
    assert "1 server process, and the outbox worker beside them." in log.read_text()


def test_a_write_lock_held_past_the_busy_timeout_answers_503_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite, a write that waited busy_timeout for a lock another process holds (here
    a plain sqlite3 connection) is told to come back (503, Retry-After), not a 500."""
    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_MS", 300)
    path = tmp_path / "busy.db"
    database = Database.from_url(f"sqlite:///{path}")
    upgrade(database.engine)
    with database.unit_of_work() as db:
        org = factories.make_organization(db)
        auth = {"Authorization": f"Bearer {factories.make_api_key(db, org)}"}
        user_path = f"/api/v1/users/{factories.make_user(db, org).id}"
    app = create_app(make_settings(tmp_path, f"sqlite:///{path}"), database)
    with TestClient(app) as client:
        etag = client.get(user_path, headers=auth).headers["etag"]
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            answer = client.patch(
                user_path, json={"first_name": "Waited"}, headers={**auth, "If-Match": etag}
            )
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["code"] == "database.busy"
        # The lock let go, the same write goes through.
        retried = client.patch(
            user_path, json={"first_name": "Waited"}, headers={**auth, "If-Match": etag}
        )
        assert retried.status_code == 200, retried.text
    database.dispose()


def test_workers_of_several_processes_lift_each_ended_ban_once(database_url: str) -> None:
    """Two workers, each with an engine of its own as in two processes, look for ended
    bans at the same moment: each ban is lifted once, with one audit event."""
    setup = Database.from_url(database_url)
    upgrade(setup.engine)
    with setup.unit_of_work() as db:
        org = factories.make_organization(db)
        banned = [factories.make_user(db, org, status="banned") for _ in range(20)]
        for user in banned:
            user.status_until = utcnow() - timedelta(minutes=1)
            user.previous_status = "active"
        ids = [user.id for user in banned]
    settings = make_settings(Path("/nonexistent"), database_url)
    workers = [Worker(Database.from_url(database_url), settings) for _ in range(2)]
    together = threading.Barrier(2)

    def lift(worker: Worker) -> int:
        together.wait()
        return worker.lift_bans()

    with ThreadPoolExecutor(2) as pool:
        lifted = list(pool.map(lift, workers))
    for worker in workers:
        worker.database.dispose()
    with setup.sessions() as db:
        events = db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.organization_id == org.id,
                AuditEvent.action == "user.unbanned",
            )
        )
        statuses = set(db.scalars(select(User.status).where(User.id.in_(ids))))
    setup.dispose()
    assert sum(lifted) == 20
    assert events == 20
    assert statuses == {"active"}
