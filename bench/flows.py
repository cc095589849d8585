"""Figures of issue 7: import speed, export speed and memory, a long timeline's first page."""

from __future__ import annotations

import csv
import os
import sqlite3
import statistics
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from userdesk.access.rules import system_actor
from userdesk.activity import service as activity
from userdesk.activity.models import ActivityEvent
from userdesk.db import bulk
from userdesk.db.base import utcnow
from userdesk.db.engine import SORT_CACHE_KIB
from userdesk.db.migrate import upgrade
from userdesk.db.session import Database
from userdesk.imports import service as imports
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.organizations import service as organizations
from userdesk.users.models import User


def import_rate(rows: int) -> float:
    """Rows per second of a real import of ROWS valid rows into an empty organization, from
    the upload (the file kept and parsed) to the last row's user, links, invitation, audit
    event and report row."""
    with tempfile.TemporaryDirectory() as tmp:
        database = Database.from_url(f"sqlite:///{tmp}/import.db")
        upgrade(database.engine)
        lines = ["email,first name,last name"] + [
            f"person{n}@example.com,First{n},Last{n}" for n in range(rows)
        ]
        content = "\n".join(lines).encode()
        with database.unit_of_work() as db:
            org_id = organizations.create_organization(db, slug="bench", name="Bench").id
        actor = system_actor(org_id, "bench")
        started = time.perf_counter()
        with database.unit_of_work() as db:
            draft = imports.draft(db, actor=actor, filename="bench.csv", content=content)
            job_id = imports.start(db, actor=actor, job_id=draft.id, dry_run=False).id
        finished = False
        while not finished:
            with database.unit_of_work() as db:
                finished = jobs.step(db, job=db.get_one(Job, job_id), base_url="http://bench")
        elapsed = time.perf_counter() - started
        database.dispose()
    return rows / elapsed


def bare_insert_rate(rows: int) -> float:
    """Rows per second of the same users alone, multi-row INSERTs a transaction of
    imports.BATCH at a time, into the same users table (its indexes and search tables):
    what the import's users cost the database, without validation, links, invitations,
    audit events or the report."""
    with tempfile.TemporaryDirectory() as tmp:
        database = Database.from_url(f"sqlite:///{tmp}/bare.db")
        upgrade(database.engine)
        with database.unit_of_work() as db:
            org_id = organizations.create_organization(db, slug="bench", name="Bench").id
        columns = (
            *("organization_id", "email", "email_normalized", "first_name", "last_name"),
            *("status", "created_via", "version", "created_at", "updated_at"),
        )
        now = "2026-11-30 12:00:00.000000"
        same = ("pending", "import", 1, now, now)
        values = [
            (org_id, f"p{n}@example.com", f"p{n}@example.com", f"First{n}", f"Last{n}", *same)
            for n in range(rows)
        ]
        started = time.perf_counter()
        for start in range(0, rows, imports.BATCH):
            with database.unit_of_work() as db:
                bulk.insert_rows(db.connection(), "users", columns, values[start:][: imports.BATCH])
        elapsed = time.perf_counter() - started
        database.dispose()
    return rows / elapsed


def bare_export_seconds(database_path: Path) -> float:
    """Seconds for the driver alone to read every user's own columns in name order (the
    sort spilling as the export's does) and csv.writer to write them: no team, groups,
    roles or permissions, no defusing, timestamps as stored."""
    connection = sqlite3.connect(database_path)
    connection.execute(f"PRAGMA cache_size=-{SORT_CACHE_KIB}")
    started = time.perf_counter()
    rows = connection.execute(
        "SELECT first_name, last_name, email, status, email_verified_at IS NOT NULL, "
        "validated_at IS NOT NULL, created_at, last_login_at, last_seen_at, churn_level "
        "FROM users ORDER BY +first_name, +last_name, +id"
    )
    with open(os.devnull, "w", newline="") as sink:
        writer = csv.writer(sink)
        while batch := rows.fetchmany(1000):
            writer.writerows(batch)
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def export_figures(userdesk: str, env: dict[str, str]) -> tuple[float, float, float]:
    """(seconds to the first byte, seconds in all, peak RSS in MB) of `userdesk export`."""
    started = time.perf_counter()
    process = subprocess.Popen([userdesk, "export"], env=env, stdout=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.read(1)
    first = time.perf_counter() - started
    while process.stdout.read(1 << 20):
        pass
    _, status, usage = os.wait4(process.pid, 0)  # this child's own peak, not the others'
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"userdesk export exited with {process.returncode}")
    total = time.perf_counter() - started
    return first, total, usage.ru_maxrss / 1024


def timeline_first_page(events: int) -> float:
    """Median milliseconds of the first page of a user's timeline holding EVENTS events."""
    with tempfile.TemporaryDirectory() as tmp:
        database = Database.from_url(f"sqlite:///{tmp}/timeline.db")
        upgrade(database.engine)
        with database.unit_of_work() as db:
            org = organizations.create_organization(db, slug="bench", name="Bench")
            user = User(
                organization_id=org.id,
                email="busy@example.com",
                email_normalized="busy@example.com",
                status="active",
            )
            db.add(user)
            db.flush()
            now = utcnow()
            db.execute(
                ActivityEvent.__table__.insert(),
                [
                    {
                        "organization_id": org.id,
                        "user_id": user.id,
                        "type": "page.viewed",
                        "occurred_at": now - timedelta(minutes=n),
                        "properties": {},
                    }
                    for n in range(events)
                ],
            )
            db.execute(__import__("sqlalchemy").text("ANALYZE"))
            org_id, user_id = org.id, user.id
        actor = system_actor(org_id)
        samples = []
        with database.sessions() as db:
            for _ in range(30):
                started = time.perf_counter()
                activity.timeline(db, actor=actor, user_id=user_id)
                samples.append((time.perf_counter() - started) * 1000)
        database.dispose()
    return statistics.median(samples)


def main(userdesk: str, database_path: Path) -> list[tuple[str, str, str]]:
    rows = int(os.environ.get("BENCH_IMPORT_ROWS", "100000"))
    env = {**os.environ, "USERDESK_DATABASE_URL": f"sqlite:///{database_path}"}
    first, total, peak = export_figures(userdesk, env)
    bare_export = bare_export_seconds(database_path)
    ours, bare = import_rate(rows), bare_insert_rate(rows)
    return [
        (
            f"import of {rows:,} rows, upload to done (validation, indexes, audit per user)",
            f"{ours:,.0f} rows/s ({ours / bare:.0%} of the bare users INSERTs: {bare:,.0f}/s)",
            "≥ 20,000 rows/s",
        ),
        (
            "userdesk export of every user (process start-up included)",
            f"first byte {first * 1000:.0f} ms, {total:.1f} s, peak RSS {peak:.0f} MB "
            f"(bare sorted read + csv.writer of the users' own columns: {bare_export:.1f} s)",
            "≤ 10 s, RSS < 150 MB",
        ),
        (
            "timeline of a user with 100,000 events, first page (median)",
            f"{timeline_first_page(100_000):.1f} ms",
            "≤ 10 ms",
        ),
    ]
