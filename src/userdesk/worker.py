"""The outbox worker: claims due messages, sends them, retries with backoff; and delivers
webhooks (userdesk.webhooks.delivery) from a thread of its own.

A message is claimed by a conditional UPDATE (free, or its lease run out), so that two
workers never hold the same row; on PostgreSQL the candidates are read with
FOR UPDATE SKIP LOCKED so that workers do not queue behind each other; on SQLite the
claim's transaction holds the database's write lock from its start (BEGIN IMMEDIATE), so
workers in several processes claim one after the other. Sending happens outside any
transaction, only while the lease holds (renewed when half of it went by); the outcome is
written in a new one. A worker that dies mid-send leaves a lease that runs out, and the
message is tried again.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from userdesk.access.rules import system_actor
from userdesk.churn import scoring
from userdesk.config import Settings
from userdesk.dashboard import service as dashboard
from userdesk.db.base import utcnow
from userdesk.db.session import Database
from userdesk.imports import service as imports
from userdesk.jobs import service as jobs
from userdesk.jobs.models import Job
from userdesk.mail.models import OutboxMessage
from userdesk.organizations.models import Organization
from userdesk.users import bulk, lifecycle
from userdesk.webhooks.delivery import Deliverer

# The kinds of job this worker runs (each module registers its step).
JOB_KINDS = (bulk.KIND, imports.KIND, scoring.KIND)

log = logging.getLogger("userdesk.worker")

BATCH = 20
LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 8
POLL_SECONDS = 2.0
BAN_CHECK = timedelta(minutes=1)
CHURN_CHECK = timedelta(minutes=10)  # how often to look for organizations due a scoring
JOB_BUDGET = timedelta(seconds=2)
STATUS_COUNT = timedelta(hours=1)  # how often to count users by status (the dashboard)
RUN_COUNT = timedelta(minutes=1)  # how often to look for scoring runs to count by level


# PostgreSQL advisory lock keys of the chores that look for what is due and then act on it:
# one worker at a time does each (two would both find the same ban ended, and both lift it).
CHORES = {"bans": 0x75640001, "churn": 0x75640002, "statuses": 0x75640003, "runs": 0x75640004}


def one_worker_at_a_time(db: Session, chore: str) -> None:
    """Hold CHORE for the rest of DB's transaction, waiting while another worker's holds
    it. On SQLite the write lock, taken when the transaction begins, already does."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(select(func.pg_advisory_xact_lock(CHORES[chore])))


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ATTEMPTS-th failure: 30 s, 1 min, 2 min ... up to 1 h."""
    return min(timedelta(seconds=30 * 2 ** (attempts - 1)), timedelta(hours=1))


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    tls: bool  # the whole connection (smtps://)
    starttls: bool  # upgrade after connecting (smtp+starttls://)
    username: str | None
    password: str | None


def smtp_target(url: str) -> SmtpTarget:
    """Where USERDESK_SMTP_URL points: smtp://[user:pass@]host[:port], smtps://, smtp+starttls://.

    Raises:
        ValueError: another scheme, or no host.
    """
    parts = urlsplit(url)
    schemes = {
        "smtp": (False, False, 25),
        "smtps": (True, False, 465),
        "smtp+starttls": (False, True, 587),
    }
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(
            f"USERDESK_SMTP_URL '{url}' is not smtp://host:port, smtps://… or smtp+starttls://…"
        )
    tls, starttls, port = schemes[parts.scheme]
    return SmtpTarget(
        host=parts.hostname,
        port=parts.port or port,
        tls=tls,
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def build_email(message: OutboxMessage, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.recipient
    email["Subject"] = message.subject or ""
    email["Date"] = formatdate(localtime=False, usegmt=True)
    # One Message-ID per outbox row: a resend after a crash is recognisably the same mail.
    email["Message-ID"] = make_msgid(idstring=f"outbox-{message.id}", domain="userdesk")
    email.set_content(message.payload.get("text", ""))
    if message.payload.get("html"):
        email.add_alternative(message.payload["html"], subtype="html")
    return email


def smtp_sender(settings: Settings) -> Callable[[EmailMessage], None]:
    target = smtp_target(settings.smtp_url or "")

    def send(email: EmailMessage) -> None:
        client: smtplib.SMTP
        if target.tls:
            client = smtplib.SMTP_SSL(target.host, target.port, timeout=30)
        else:
            client = smtplib.SMTP(target.host, target.port, timeout=30)
        with client:
            if target.starttls:
                client.starttls()
            if target.username:
                client.login(target.username, target.password or "")
            client.send_message(email)

    return send


class Worker:
    """Drains the outbox of one database. `run_once` is one pass; `run` loops."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        send: Callable[[EmailMessage], None] | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.name = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.send = send or (smtp_sender(settings) if settings.smtp_url else None)
        self.stopping = stopping or threading.Event()
        self.bans_checked_at: datetime | None = None
        self.churn_checked_at: datetime | None = None
        self.statuses_counted_at: datetime | None = None
        self.runs_counted_at: datetime | None = None
        # Webhooks go out from a loop of their own (run): within a second of the change,
        # whatever the mail's pace, and whether or not SMTP is set up.
        self.webhooks = Deliverer(database, settings, self.name)

    def claim(self) -> list[int]:
        """Lease up to BATCH due messages to this worker; their ids."""
        now = utcnow()
        due = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.kind == "email",
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
            )
            .order_by(OutboxMessage.id)
            .limit(BATCH)
        )
        claimed = []
        with self.database.unit_of_work(background=True) as db:
            if db.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            for message_id in db.scalars(due).all():
                result = db.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.id == message_id,
                        OutboxMessage.status == "pending",
                        or_(OutboxMessage.locked_until.is_(None), OutboxMessage.locked_until < now),
                    )
                    .values(locked_by=self.name, locked_until=now + LEASE)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(message_id)
        return claimed

    def deliver(self, message_id: int, send: Callable[[EmailMessage], None]) -> None:
        """Send one claimed message, if this worker still holds it, and record what happened."""
        with self.database.sessions() as db:
            message = db.get(OutboxMessage, message_id)
            if message is None or message.locked_by != self.name:
                return
            email = build_email(message, self.settings.mail_from)
            lease_left = (message.locked_until or utcnow()) - utcnow()
        if lease_left < LEASE / 2 and not self.renew(message_id):
            return  # the lease ran out (slow sends before it): another worker may hold it
        error = None
        try:
            send(email)
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self.database.unit_of_work(background=True) as db:
            message = db.get(OutboxMessage, message_id)
            if message is None:
                return
            message.attempts += 1
            message.locked_by = None
            message.locked_until = None
            if error is None:
                message.status = "sent"
                message.sent_at = utcnow()
                message.last_error = None
            elif message.attempts >= MAX_ATTEMPTS:
                message.status = "failed"
                message.last_error = error
                log.error("giving up on outbox message %s: %s", message_id, error)
            else:
                message.last_error = error
                message.next_attempt_at = utcnow() + backoff(message.attempts)
                log.warning("outbox message %s failed, will retry: %s", message_id, error)

    def renew(self, message_id: int) -> bool:
        """Lengthen this worker's lease of a claimed message before sending it, so that no
        other worker claims it meanwhile: a batch sent slowly outlasts its first lease.
        False when the lease ran out already (another worker may have claimed it)."""
        now = utcnow()
        with self.database.unit_of_work(background=True) as db:
            result = db.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == message_id,
                    OutboxMessage.status == "pending",
                    OutboxMessage.locked_by == self.name,
                    OutboxMessage.locked_until > now,
                )
                .values(locked_until=now + LEASE)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def lift_bans(self) -> int:
        """End the bans whose time is up (at most once every BAN_CHECK)."""
        now = utcnow()
        if self.bans_checked_at and now - self.bans_checked_at < BAN_CHECK:
            return 0
        self.bans_checked_at = now
        with self.database.unit_of_work(background=True) as db:
            one_worker_at_a_time(db, "bans")
            return lifecycle.lift_expired_bans(db, now=now)

    def schedule_churn(self) -> int:
        """Queue a churn scoring for each organization due one (at most every CHURN_CHECK)."""
        now = utcnow()
        every = timedelta(hours=self.settings.churn_every_hours)
        if not every or (self.churn_checked_at and now - self.churn_checked_at < CHURN_CHECK):
            return 0
        self.churn_checked_at = now
        with self.database.unit_of_work(background=True) as db:
            one_worker_at_a_time(db, "churn")
            due = scoring.due(db, now, every)
            for organization_id in due:
                scoring.start(db, actor=system_actor(organization_id, "churn schedule"))
        return len(due)

    def count_statuses(self) -> int:
        """Count each organization's users by team and status for today (at most every
        STATUS_COUNT, so that a day keeps its last count); organizations counted."""
        now = utcnow()
        if self.statuses_counted_at and now - self.statuses_counted_at < STATUS_COUNT:
            return 0
        self.statuses_counted_at = now
        with self.database.unit_of_work(write=False) as db:
            organization_ids = list(db.scalars(select(Organization.id)))
        for organization_id in organization_ids:
            with self.database.unit_of_work(write=False) as db:
                measured = dashboard.measure(db, organization_id, now.date())
            with self.database.unit_of_work(background=True) as db:
                one_worker_at_a_time(db, "statuses")
                dashboard.store(db, organization_id, now.date(), measured)
        return len(organization_ids)

    def count_runs(self) -> int:
        """Count the finished scoring runs not counted yet by level, for the dashboard (at
        most every RUN_COUNT); runs counted."""
        now = utcnow()
        if self.runs_counted_at and now - self.runs_counted_at < RUN_COUNT:
            return 0
        self.runs_counted_at = now
        done = 0
        with self.database.unit_of_work(write=False) as db:
            organization_ids = list(db.scalars(select(Organization.id)))
        for organization_id in organization_ids:
            with self.database.unit_of_work(write=False) as db:
                runs = dashboard.measure_runs(db, organization_id)
            if runs:
                with self.database.unit_of_work(background=True) as db:
                    one_worker_at_a_time(db, "runs")
                    done += dashboard.store_runs(db, organization_id, runs)
        return done

    def run_jobs(self, budget: timedelta = JOB_BUDGET) -> int:
        """Work on one waiting job for up to BUDGET, a chunk per transaction; chunks done."""
        with self.database.unit_of_work(background=True) as db:
            job = jobs.claim(db)
            job_id = job.id if job else None
        if job_id is None:
            return 0
        started, steps = utcnow(), 0
        finished = False
        while not finished and utcnow() - started < budget:
            with self.database.unit_of_work(background=True) as db:
                finished = jobs.step(
                    db, job=db.get_one(Job, job_id), base_url=self.settings.base_url
                )
            steps += 1
        return steps

    def run_once(self) -> int:
        """Lift ended bans, work on jobs, and send what is due: how much was done (mail
        needs SMTP)."""
        self.lift_bans()
        self.schedule_churn()
        self.count_statuses()
        self.count_runs()
        worked = self.run_jobs()
        if self.send is None:
            return worked
        claimed = self.claim()
        for message_id in claimed:
            self.deliver(message_id, self.send)
        return worked + len(claimed)

    def run(self, poll_seconds: float = POLL_SECONDS) -> None:
        """Loop until stop(): a pass, then a pause when there was nothing to do; webhooks
        are delivered meanwhile by a thread of their own."""
        webhooks = threading.Thread(
            target=self.webhooks.run, args=(self.stopping,), name="webhooks", daemon=True
        )
        webhooks.start()
        try:
            while not self.stopping.is_set():
                try:
                    tried = self.run_once()
                except Exception:
                    log.exception("outbox pass failed")
                    tried = 0
                if not tried:
                    self.stopping.wait(poll_seconds)
        finally:
            self.stopping.set()
            webhooks.join(timeout=30)
            self.webhooks.close()

    def stop(self) -> None:
        self.stopping.set()
