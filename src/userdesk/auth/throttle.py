"""Rate limits kept in the database, so that they hold across processes and workers.

`limit()` counts one hit for an (action, key) and refuses, with `RateLimited`, a hit that
would put more than `max_hits` in the sliding window. A refused hit is not counted (the
table then holds at most `max_hits` rows per key and window, and "try again in N
minutes" is true). The named policies below are the limits Userdesk applies; `sign_in()`,
`signup()`, `password_reset()` and `verification_resend()` apply the right pair.

A hit must outlive the request that made it: a wrong password raises and rolls the
request's transaction back, yet the attempt counts. So hits are written in a transaction
of their own:

- PostgreSQL: a short transaction on a connection of its own, serialized per key by a
  transaction-scoped advisory lock, so that concurrent requests count exactly.
- SQLite: the request already holds the database's only write lock (`BEGIN IMMEDIATE`),
  so a second connection would wait for it; the hit is counted and written in a savepoint
  of the request's transaction (writers are serialized, so the count is exact), and
  written again in a new transaction if that one rolls back. Tests (whose sessions are
  bound to one connection) take this path on both databases.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, event, func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from userdesk.auth.models import ThrottleHit
from userdesk.db.base import Base, utcnow
from userdesk.db.engine import BEGIN_OPTION
from userdesk.errors import DomainError
from userdesk.users.rules import normalize_email

log = logging.getLogger(__name__)

# No window is longer than this; older rows of any action are pruned now and then.
KEEP = timedelta(days=2)
PRUNE_ONE_IN = 50  # how often (one hit in N) a hit also prunes every stale row


class RateLimited(DomainError):
    """Too many attempts at something; `retry_after` says in how many seconds to retry."""

    code = "auth.rate_limited"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(wait_message(self.retry_after))


def wait_message(seconds: int) -> str:
    """'Too many attempts. Try again in N minutes.', N rounded up (at least 1)."""
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many attempts. Try again in {minutes} minute{'' if minutes == 1 else 's'}."


@dataclass(frozen=True)
class Policy:
    """At most MAX_HITS hits of ACTION per key within WINDOW. ANNOUNCE: whether the answer
    tells the client how much of it is left (not for counts that other clients' attempts
    add to, which would tell who else tried; a refusal is told in any case)."""

    action: str
    max_hits: int
    window: timedelta
    announce: bool = True


@dataclass(frozen=True)
class Quota:
    """Where a client stands with a policy it just met: the policy's name (its action), its
    quota and window (seconds), what is left of the quota and in how many seconds a unit of
    it comes back (web.ratelimit turns these into RateLimit-Policy and RateLimit headers)."""

    name: str
    quota: int
    window: int
    remaining: int
    reset: int


# The quotas the current request met, when its adapter collects them (`collecting()`).
_MET: ContextVar[list[Quota] | None] = ContextVar("userdesk_throttle_met", default=None)


@contextmanager
def collecting() -> Iterator[list[Quota]]:
    """Within the block (one request), the quotas met are gathered in the list yielded."""
    met: list[Quota] = []
    token = _MET.set(met)
    try:
        yield met
    finally:
        _MET.reset(token)


def _met(quota: Quota) -> None:
    met = _MET.get()
    if met is not None:
        met[:] = [q for q in met if q.name != quota.name]
        met.append(quota)


SIGN_IN_PER_IP = Policy("signin.ip", 50, timedelta(minutes=10))
# Per email typed and client: the IP of a browser without a device cookie for the account,
# else the device. A stranger's attempts then do not stop the owner's.
SIGN_IN_PER_EMAIL = Policy("signin.email", 10, timedelta(minutes=10))
# Per email typed, from all clients without a device cookie together: many addresses
# guessing at one account at once.
SIGN_IN_PER_EMAIL_UNTRUSTED = Policy("signin.email.all", 100, timedelta(minutes=10), False)
SIGNUP_PER_IP = Policy("signup.ip", 10, timedelta(hours=1))
SIGNUP_PER_EMAIL = Policy("signup.email", 3, timedelta(hours=1), False)
PASSWORD_RESET_PER_IP = Policy("reset.ip", 10, timedelta(hours=1))
PASSWORD_RESET_PER_EMAIL = Policy("reset.email", 3, timedelta(hours=1), False)
VERIFICATION_PER_IP = Policy("verify.ip", 10, timedelta(hours=1))
VERIFICATION_PER_ACCOUNT = Policy("verify.account", 3, timedelta(hours=1))
# Not limits: an account's failed sign-ins, which lock clients out for a while
# (auth.signin): those of all untrusted clients together under FAILED_SIGN_IN, and those of
# each client under `failed_from(client)`, both keyed by the account.
FAILED_SIGN_IN = "signin.failed"
_FAILED_FROM = "sf:"  # + the first 36 hex digits of the client's SHA-256 (40 characters)


def account_key(user_id: int) -> str:
    """The key an account's own hits are counted under."""
    return f"user:{user_id}"


def client_key(*, ip: str | None, device: str | None) -> str:
    """Who is signing in: the browser's device-cookie nonce when it has a valid one for the
    account, else its IP."""
    return f"device:{device}" if device else ip_key(ip)


def ip_key(ip: str | None) -> str:
    """The key of a client address: an IPv6 address by its /64 (one subscriber's network,
    whose addresses they may change at will), any other as it is."""
    if ip and ":" in ip:
        try:
            return f"ip:{ipaddress.IPv6Network(f'{ip}/64', strict=False)}"
        except ValueError:
            pass
    return f"ip:{ip or '-'}"


def failed_from(client: str) -> str:
    """The action under which CLIENT's failed sign-ins to an account are counted."""
    return _FAILED_FROM + _digest(client)[:36]


def forget_failed_sign_ins(db: Session, *, user_id: int, client: str | None = None) -> None:
    """The account proved its owner: past failures no longer count towards a lock (in DB's
    transaction). A sign-in from CLIENT forgets that client's failures and the untrusted
    clients' count; a new password (no CLIENT) forgets every client's."""
    key = _digest(account_key(user_id))
    forget(db, action=FAILED_SIGN_IN, key=account_key(user_id))
    if client is not None:
        forget(db, action=failed_from(client), key=account_key(user_id))
        return
    db.execute(
        delete(ThrottleHit).where(
            ThrottleHit.key == key,
            ThrottleHit.action >= _FAILED_FROM,
            ThrottleHit.action < _FAILED_FROM[:-1] + chr(ord(_FAILED_FROM[-1]) + 1),
        )
    )


def limit(
    db: Session,
    *,
    action: str,
    key: str,
    max_hits: int,
    window: timedelta,
    now: datetime | None = None,
    announce: bool = True,
) -> None:
    """Count one hit of ACTION for KEY (kept hashed; normalize it first), in a transaction
    that outlives DB's; where it leaves the client is noted for the answer's headers
    (`collecting()`) when ANNOUNCE says so or when the hit is refused.

    Raises:
        RateLimited: MAX_HITS hits already fall within WINDOW; this one is not counted.
    """
    if window <= timedelta(0) or window > KEEP:
        raise ValueError(f"window {window} is not between 0 and {KEEP}")
    now = now or utcnow()
    digest = _digest(key)

    def decide(session: Session) -> list[tuple[type[Base], dict[str, Any]]]:
        since = now - window
        recent = session.scalars(
            select(ThrottleHit.at)
            .where(ThrottleHit.action == action, ThrottleHit.key == digest, ThrottleHit.at > since)
            .order_by(ThrottleHit.at.desc())
            .limit(max(max_hits, 1))
        ).all()
        seconds = math.ceil(window.total_seconds())
        if max_hits <= 0:
            _met(Quota(action, max_hits, seconds, 0, seconds))
            raise RateLimited(seconds)
        if len(recent) >= max_hits:
            free_at = recent[max_hits - 1] + window
            wait = max(1, math.ceil((free_at - now).total_seconds()))
            _met(Quota(action, max_hits, seconds, 0, wait))
            raise RateLimited(wait)
        if announce:
            oldest = recent[-1] if recent else now
            back = max(1, math.ceil((oldest + window - now).total_seconds()))
            _met(Quota(action, max_hits, seconds, max_hits - len(recent) - 1, back))
        _prune(session, action=action, key=digest, before=since, now=now)
        return [(ThrottleHit, {"action": action, "key": digest, "at": now})]

    durably(db, decide, lock=f"{action}:{digest}")


def apply(db: Session, policy: Policy, key: str, *, now: datetime | None = None) -> None:
    """`limit()` with POLICY's action, count and window.

    Raises:
        RateLimited: the policy's limit is reached for KEY.
    """
    limit(
        db,
        action=policy.action,
        key=key,
        max_hits=policy.max_hits,
        window=policy.window,
        now=now,
        announce=policy.announce,
    )


def sign_in(
    db: Session,
    *,
    ip: str | None,
    email: str,
    device: str | None = None,
    now: datetime | None = None,
) -> None:
    """Count a sign-in attempt from IP and for EMAIL (known or not: the answer is the same),
    per email and client (DEVICE: the nonce of a valid device cookie for the account), and,
    without a device cookie, per email from every such client together.

    Raises:
        RateLimited: too many attempts from the IP, for the email from this client, or for
            the email from clients without a device cookie.
    """
    email = normalize_email(email)
    if ip:
        apply(db, SIGN_IN_PER_IP, ip_key(ip), now=now)
    apply(db, SIGN_IN_PER_EMAIL, f"{email}|{client_key(ip=ip, device=device)}", now=now)
    if device is None:
        apply(db, SIGN_IN_PER_EMAIL_UNTRUSTED, email, now=now)


def signed_in(db: Session, *, email: str, ip: str | None, device: str | None = None) -> None:
    """A sign-in for EMAIL from this client succeeded: its attempts for the email no longer
    count (those from the IP do, or one could sign in to one's own account between guesses
    at others; and those of other clients do)."""
    key = f"{normalize_email(email)}|{client_key(ip=ip, device=device)}"
    forget(db, action=SIGN_IN_PER_EMAIL.action, key=key)


def signup(db: Session, *, ip: str | None, email: str, now: datetime | None = None) -> None:
    """Count a registration from IP and for EMAIL.

    Raises:
        RateLimited: too many registrations from the IP or for the email.
    """
    _pair(db, SIGNUP_PER_IP, ip, SIGNUP_PER_EMAIL, normalize_email(email), now)


def password_reset(db: Session, *, ip: str | None, email: str, now: datetime | None = None) -> None:
    """Count a request for a password reset link from IP and for EMAIL.

    Raises:
        RateLimited: too many requests from the IP or for the email.
    """
    _pair(db, PASSWORD_RESET_PER_IP, ip, PASSWORD_RESET_PER_EMAIL, normalize_email(email), now)


def verification_resend(
    db: Session, *, ip: str | None, user_id: int, now: datetime | None = None
) -> None:
    """Count a new verification email for the account USER_ID (asked from IP, if known).

    Raises:
        RateLimited: too many verification emails for the account or from the IP.
    """
    _pair(db, VERIFICATION_PER_IP, ip, VERIFICATION_PER_ACCOUNT, account_key(user_id), now)


def _pair(
    db: Session,
    per_ip: Policy,
    ip: str | None,
    per_subject: Policy,
    subject: str,
    now: datetime | None,
) -> None:
    if ip:
        apply(db, per_ip, ip_key(ip), now=now)
    apply(db, per_subject, subject, now=now)


def refuse_while_limited(
    db: Session, policy: Policy, key: str, *, now: datetime | None = None
) -> None:
    """Counts nothing; raises RateLimited while POLICY's hits for KEY fill its window (a
    limit on failures, counted with `record`, that holds back even what would succeed)."""
    now = now or utcnow()
    recent = recent_hits(db, action=policy.action, key=key, window=policy.window, now=now)
    if len(recent) >= policy.max_hits:
        wait = recent[-policy.max_hits] + policy.window - now
        raise RateLimited(math.ceil(wait.total_seconds()))


def recent_hits(
    db: Session, *, action: str, key: str, window: timedelta, now: datetime | None = None
) -> list[datetime]:
    """When ACTION was hit for KEY within WINDOW, oldest first."""
    since = (now or utcnow()) - window
    return list(
        db.scalars(
            select(ThrottleHit.at)
            .where(
                ThrottleHit.action == action,
                ThrottleHit.key == _digest(key),
                ThrottleHit.at > since,
            )
            .order_by(ThrottleHit.at)
        ).all()
    )


def record(
    db: Session,
    *,
    action: str,
    key: str,
    window: timedelta,
    now: datetime | None = None,
    organization_id: int | None = None,
    also: list[tuple[type[Base], dict[str, Any]]] | None = None,
) -> None:
    """Count one hit of ACTION for KEY without a limit (and write the rows ALSO with it),
    in a transaction that outlives DB's; hits older than WINDOW are pruned."""
    now = now or utcnow()
    digest = _digest(key)

    def decide(session: Session) -> list[tuple[type[Base], dict[str, Any]]]:
        _prune(session, action=action, key=digest, before=now - window, now=now)
        row = {"action": action, "key": digest, "at": now, "organization_id": organization_id}
        return [(ThrottleHit, row), *(also or [])]

    durably(db, decide, lock=None)


def forget(db: Session, *, action: str, key: str) -> None:
    """Drop the hits of ACTION for KEY (in DB's transaction)."""
    db.execute(
        delete(ThrottleHit).where(ThrottleHit.action == action, ThrottleHit.key == _digest(key))
    )


Rows = list[tuple[type[Base], dict[str, Any]]]


def durably(db: Session, decide: Callable[[Session], Rows], *, lock: str | None) -> None:
    """Run DECIDE (it reads, may raise, and names the rows to insert) and insert its rows
    in a transaction that commits even if DB's rolls back (see the module's docstring).
    LOCK names what concurrent callers must not decide at the same time."""
    bind = db.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        with Session(bind) as own, own.begin():
            if lock is not None:
                own.execute(select(func.pg_advisory_xact_lock(func.hashtext(lock))))
            _insert(own, decide(own))
        return
    with db.begin_nested():
        rows = decide(db)
        _insert(db, rows)
    _replay_on_rollback(db, rows)


def _insert(session: Session, rows: Rows) -> None:
    for model, values in rows:
        session.execute(insert(model).values(**values))


_PENDING = "userdesk.throttle.pending"


def _replay_on_rollback(db: Session, rows: Rows) -> None:
    if not rows:
        return
    if _PENDING not in db.info:
        db.info[_PENDING] = []
        event.listen(db, "after_commit", _committed)
        event.listen(db, "after_rollback", _rolled_back)
    db.info[_PENDING].extend(rows)


def _committed(session: Session) -> None:
    if session.in_nested_transaction():
        return
    session.info.get(_PENDING, []).clear()


def _rolled_back(session: Session) -> None:
    """Write again, in a transaction of its own, what the rolled back transaction held."""
    if session.in_nested_transaction():
        return  # a savepoint rolled back; the transaction that holds the rows goes on
    pending = session.info.get(_PENDING, [])
    if not pending:
        return
    rows = list(pending)
    pending.clear()
    bind = session.get_bind()
    try:
        with Session(bind=bind, join_transaction_mode="create_savepoint") as own:
            if isinstance(bind, Engine) and bind.dialect.name == "sqlite":
                own.connection(execution_options={BEGIN_OPTION: "IMMEDIATE"})
            _insert(own, rows)
            own.commit()
    except SQLAlchemyError:
        log.exception("could not keep %d throttle rows after a rollback", len(rows))


def _prune(session: Session, *, action: str, key: str, before: datetime, now: datetime) -> None:
    """Drop KEY's hits older than its window, and now and then every stale row."""
    session.execute(
        delete(ThrottleHit).where(
            ThrottleHit.action == action, ThrottleHit.key == key, ThrottleHit.at <= before
        )
    )
    if random.randrange(PRUNE_ONE_IN) == 0:  # noqa: S311 - not security, just spreading work
        session.execute(delete(ThrottleHit).where(ThrottleHit.at <= now - KEEP))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
