"""Webhook delivery: throughput to a local receiver, and latency from a change's commit.

A small database of its own (a temporary SQLite file; a database `userdesk_bench_webhooks`
made afresh beside USERDESK_BENCH_POSTGRES_URL's), never bench/data's. The workers are
real `userdesk worker` processes; the receiver (QuickReceiver) runs in this process and
verifies every signature with `standardwebhooks`, as a host product would, on a bare
asyncio server: the tests' receiver (uvicorn) spends more of the two cores per request than
the worker does, and would measure itself.

- Throughput: MESSAGES messages about as many users committed at once, one worker on
  SQLite, two on PostgreSQL; from the commit to the receiver's last arrival; and the
  workers' CPU time per delivery (the whole process's, from /proc, over the same span).
- Latency: an idle worker; a message committed every 50 to 150 ms, LATENCY_SAMPLES times; from
  each commit to its arrival.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, insert, make_url, text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bench.common import USERDESK
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.db.engine import make_engine
from userdesk.db.migrate import upgrade
from userdesk.db.session import Database
from userdesk.organizations import service as organizations
from userdesk.webhooks import signing
from userdesk.webhooks.models import WebhookEndpoint, WebhookMessage

Row = tuple[str, str, str]
MESSAGES = int(os.environ.get("BENCH_WEBHOOKS", "5000"))
LATENCY_SAMPLES = int(os.environ.get("BENCH_WEBHOOK_SAMPLES", "100"))
SECRET_KEY = "bench-webhooks-secret-key"  # noqa: S105 - a throwaway bench database's
PG_DATABASE = "userdesk_bench_webhooks"


@dataclass(frozen=True)
class Arrival:
    webhook_id: str
    at: float  # time.time() when it arrived


class QuickReceiver:
    """An HTTP/1.1 server on 127.0.0.1 (keep-alive, Content-Length bodies) answering 204 to
    each request whose signature verifies with SECRETS[0], 401 to any other."""

    def __init__(self, secrets: list[str]) -> None:
        self.verifier = Webhook(secrets[0])
        self.received: list[Arrival] = []
        self.rejected: list[str] = []
        self.arrived = threading.Condition()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        self.thread.start()
        serving = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", self.port), self.loop
        )
        self.server = serving.result(timeout=10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    def wait_for(self, count: int, timeout: float) -> list[Arrival]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} webhooks received, not {count}")
            return list(self.received)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")[1:]
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                webhook_id = headers.get("webhook-id", "")
                try:
                    self.verifier.verify(body, headers)
                except WebhookVerificationError:
                    self.rejected.append(webhook_id)
                    writer.write(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
                    continue
                with self.arrived:
                    self.received.append(Arrival(webhook_id, time.time()))
                    self.arrived.notify_all()
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def webhook_rows(postgres_url: str | None) -> Iterator[Row]:
    with tempfile.TemporaryDirectory(prefix="userdesk-bench-webhooks-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'webhooks.db'}"
        rate, cpu = throughput(url, workers=1, var_dir=Path(tmp))
        yield (
            f"Deliveries/s, one worker, SQLite ({MESSAGES:,} messages)",
            f"{rate:,.0f}/s ({cpu * 1000:.2f} ms CPU each)",
            "≥ 500/s",
        )
        p50, p99 = latency(url, var_dir=Path(tmp))
        yield (
            f"Commit → receiver, idle worker, SQLite (p50 / p99 of {LATENCY_SAMPLES})",
            f"{p50 * 1000:,.0f} ms / {p99 * 1000:,.0f} ms",
            "≤ 1 s / ≤ 3 s",
        )
        if postgres_url:
            with fresh_postgres(postgres_url) as pg_url:
                rate, cpu = throughput(pg_url, workers=2, var_dir=Path(tmp))
                yield (
                    f"Deliveries/s, two workers, PostgreSQL ({MESSAGES:,} messages)",
                    f"{rate:,.0f}/s ({cpu * 1000:.2f} ms CPU each)",
                    "≥ 1,000/s",
                )
                p50, p99 = latency(pg_url, var_dir=Path(tmp))
                yield (
                    f"Commit → receiver, idle worker, PostgreSQL (p50 / p99 of {LATENCY_SAMPLES})",
                    f"{p50 * 1000:,.0f} ms / {p99 * 1000:,.0f} ms",
                    "≤ 1 s / ≤ 3 s",
                )


@contextmanager
def fresh_postgres(url: str) -> Iterator[str]:
    """A new, empty database beside URL's, dropped afterwards."""
    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {PG_DATABASE}"))
    try:
        yield make_url(url).set(database=PG_DATABASE).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
        admin.dispose()


def settings_for(url: str, var_dir: Path) -> Settings:
    return Settings(
        database_url=url,
        secret_key=SECRET_KEY,
        base_url="http://127.0.0.1:8000",
        smtp_url=None,
        mail_from="Userdesk <no-reply@bench.example>",
        var_dir=var_dir,
        churn_every_hours=0,
        webhooks_allow_private=True,
    )


def prepare(
    url: str, var_dir: Path, receiver: QuickReceiver, secret: str
) -> tuple[Engine, int, int]:
    """The database migrated, with an organization and an endpoint: (engine, org, endpoint)."""
    engine = make_engine(url)
    upgrade(engine)
    settings = settings_for(url, var_dir)
    with Database(engine).unit_of_work() as db:
        org = organizations.create_organization(
            db, slug=f"bench-webhooks-{os.urandom(3).hex()}", name="Bench webhooks"
        )
        endpoint = WebhookEndpoint(
            organization_id=org.id,
            url=receiver.url,
            description="bench",
            event_types=[],
            enabled=True,
            secret_sealed=signing.seal_secret(settings, secret, org.id),
        )
        db.add(endpoint)
        db.flush()
        return engine, org.id, endpoint.id


def commit_messages(engine: Engine, org_id: int, endpoint_id: int, count: int) -> list[str]:
    """COUNT messages about as many users, committed in one transaction: their uids."""
    now = utcnow()
    rows = []
    for _ in range(count):
        user_id = random.randrange(1, 2**40)
        body = {"type": "user.updated", "timestamp": now.isoformat(), "data": {"id": user_id}}
        rows.append(
            {
                "organization_id": org_id,
                "uid": signing.new_message_uid(),
                "endpoint_id": endpoint_id,
                "event_type": "user.updated",
                "user_id": user_id,
                "body": json.dumps(body, separators=(",", ":")),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        )
    with Database(engine).unit_of_work() as db:
        db.execute(insert(WebhookMessage), rows)
    return [row["uid"] for row in rows]


def cpu_seconds(pids: list[int]) -> float:
    """The CPU time (user and system) the processes PIDS have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime: the stat's 14th, 15th
    return total / os.sysconf("SC_CLK_TCK")


@contextmanager
def running_workers(url: str, count: int, var_dir: Path) -> Iterator[list[int]]:
    """COUNT `userdesk worker` processes on URL, started (their first line printed): their
    process ids."""
    environ = {
        **os.environ,
        "USERDESK_DATABASE_URL": url,
        "USERDESK_SECRET_KEY": SECRET_KEY,
        "USERDESK_VAR_DIR": str(var_dir),
        "USERDESK_WEBHOOKS_ALLOW_PRIVATE": "1",
        "USERDESK_CHURN_EVERY_HOURS": "0",
        "COLUMNS": "300",
    }
    processes = [
        subprocess.Popen(
            [USERDESK, "worker"],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            process.stdout.readline()  # "Outbox worker …": it runs
        time.sleep(0.5)  # past its first pass
        yield [process.pid for process in processes]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def throughput(url: str, *, workers: int, var_dir: Path) -> tuple[float, float]:
    """Deliveries per second of WORKERS workers, MESSAGES committed at once, and the
    workers' CPU seconds per delivery."""
    secret = signing.new_secret()
    receiver = QuickReceiver([secret])
    receiver.start()
    try:
        engine, org_id, endpoint_id = prepare(url, var_dir, receiver, secret)
        with running_workers(url, workers, var_dir) as pids:
            cpu_before = cpu_seconds(pids)
            started = time.time()
            commit_messages(engine, org_id, endpoint_id, MESSAGES)
            received = receiver.wait_for(MESSAGES, timeout=600)
            cpu = cpu_seconds(pids) - cpu_before
        assert not receiver.rejected
        last = max(item.at for item in received)
        engine.dispose()
        return MESSAGES / (last - started), cpu / MESSAGES
    finally:
        receiver.stop()


def latency(url: str, *, var_dir: Path) -> tuple[float, float]:
    """p50 and p99 seconds from a message's commit to its arrival, the worker idle."""
    secret = signing.new_secret()
    receiver = QuickReceiver([secret])
    receiver.start()
    try:
        engine, org_id, endpoint_id = prepare(url, var_dir, receiver, secret)
        committed: dict[str, float] = {}
        with running_workers(url, 1, var_dir):
            for _ in range(LATENCY_SAMPLES):
                [uid] = commit_messages(engine, org_id, endpoint_id, 1)
                committed[uid] = time.time()
                time.sleep(random.uniform(0.05, 0.15))
            received = receiver.wait_for(LATENCY_SAMPLES, timeout=60)
        engine.dispose()
        waits = sorted(item.at - committed[item.webhook_id] for item in received)
        cuts = statistics.quantiles(waits, n=100)
        return cuts[49], cuts[98]
    finally:
        receiver.stop()


if __name__ == "__main__":
    for case, figure, target in webhook_rows(os.environ.get("USERDESK_BENCH_POSTGRES_URL")):
        print(f"| {case} | {figure} | {target} |", flush=True)
