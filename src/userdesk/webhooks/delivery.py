"""Webhook delivery: the worker claims due messages, posts them signed, records each attempt.

Claiming is the mail outbox's (userdesk.worker): a lease written by a conditional UPDATE,
candidates read FOR UPDATE SKIP LOCKED on PostgreSQL, under the write lock on SQLite. Only
the oldest pending message of each (endpoint, user) is ever due, so that a user's messages
reach an endpoint in the order they were written (a failing one holds back the later ones
until it is delivered or given up); messages about no user have no order. Sending is a
pipeline (Deliverer): a fixed number of requests in flight, at most PER_ENDPOINT to one
endpoint (one that hangs holds up its own messages only), outside any transaction; what
was answered is written every WRITE_EVERY in one transaction, which claims more for the
slots freed (a user's next message among them); the lease of what is held is renewed
meanwhile. A worker that dies leaves leases that run out within LEASE: another worker
sends those messages again, under the same webhook-id (at least once; a receiver drops
duplicates by that id).

Outcomes, as Svix decides them: a 2xx is delivered; 410 Gone disables the endpoint and fails
its pending messages (a replay sends them again once it is enabled); ANY other answer (4xx
included: a receiver that answers 400 or 401 while misconfigured gets its messages once it
is fixed), an error, a timeout or a refused address is retried on RETRY_SCHEDULE, later when
the endpoint asks so with Retry-After, and the message fails once the schedule is spent
(about three days). An endpoint whose every attempt failed for DISABLE_AFTER is disabled and
its organization's Administrators are emailed.

No SSRF: the HTTP client connects through CheckedBackend, which resolves the name itself,
refuses the connection when any address is not public (loopback, private, link-local,
unique-local, multicast, reserved, cloud metadata) and connects to the very address it
checked, so that a DNS answer cannot change in between; TLS verifies the certificate
against the URL's name all the same. USERDESK_WEBHOOKS_ALLOW_PRIVATE lets development and
tests deliver to such addresses. One attempt ends within TIMEOUT_SECONDS all told: the
name's lookup (getaddrinfo, in a thread waited for until then), connecting, TLS, sending
and reading the answer (each of httpx's phases shortened to what is left).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpcore
import httpx
from sqlalchemy import Select, exists, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from userdesk.access.models import Role
from userdesk.access.rules import ADMINISTRATOR
from userdesk.config import Settings
from userdesk.db.base import utcnow
from userdesk.db.session import Database
from userdesk.mail import service as mail
from userdesk.mail.rules import EmailKind
from userdesk.organizations.models import Organization
from userdesk.users.models import User, UserRole
from userdesk.webhooks import signing
from userdesk.webhooks.models import WebhookAttempt, WebhookEndpoint, WebhookMessage

log = logging.getLogger("userdesk.webhooks")

# The wait before each attempt of a message (the first: none), close to the Standard
# Webhooks spec's example; the message fails when it is spent, about three days after
# it was first tried (7 h 35 min, then seven times 10 h: 3 days 5 h 35 min, so that an
# endpoint failing all along is disabled, and its Administrators told, before the
# messages it missed run out of attempts).
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=10),
    timedelta(hours=10),
)
DISABLE_AFTER = timedelta(days=3)  # every attempt failed for so long: the endpoint is disabled
RETRY_AFTER_MAX = timedelta(days=1)  # a Retry-After further off is taken as this
TIMEOUT_SECONDS = 15.0
LEASE = timedelta(minutes=1)  # renewed every third of it while messages are held
BATCH = 100  # claimed at most by `claim` when not told
CONCURRENCY = 32  # requests in flight per worker
PER_ENDPOINT = 16  # requests in flight per endpoint and worker (half of them: see the bench)
HELD_PER_ENDPOINT = 256  # claimed and not yet recorded, per endpoint and worker
HELD_PER_SLOT = 8  # claimed and not yet recorded, in all: so many per sender
WRITE_EVERY = 0.05  # seconds: answers are written (and more claimed) at most so often
POLL_SECONDS = 0.25  # the wait between two looks for due messages when there was none
RESPONSE_KEPT = 1024  # characters of an answer kept with its attempt
USER_AGENT = "Userdesk-Webhooks/1"

# Cloud metadata services: link-local or unique-local already, named for a clearer error.
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


def retry_wait(attempts: int, retry_after: timedelta | None = None) -> timedelta | None:
    """How long to wait after the ATTEMPTS-th failed attempt; None when none is left.
    RETRY_AFTER, what the endpoint asked, makes the wait longer, never shorter."""
    if attempts >= len(RETRY_SCHEDULE):
        return None
    scheduled = RETRY_SCHEDULE[attempts]
    if retry_after is None:
        return scheduled
    return max(scheduled, min(retry_after, RETRY_AFTER_MAX))


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (seconds, or an HTTP date) as a wait from NOW; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - now, timedelta(0))


def refusal(address: str) -> str | None:
    """Why a webhook may not be sent to ADDRESS (an IP address), or None when it may:
    only public addresses are reachable (IPv4-mapped IPv6 addresses are judged by the
    IPv4 address they carry)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    kind = None
    if ip in METADATA_ADDRESSES:
        kind = "a cloud metadata address"
    elif ip.is_loopback:
        kind = "a loopback address"
    elif ip.is_unspecified:
        kind = "an unspecified address"
    elif ip.is_link_local:
        kind = "a link-local address"
    elif ip.is_multicast:
        kind = "a multicast address"
    elif isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.ip_network("fc00::/7"):
        kind = "a unique-local address"
    elif ip.is_reserved:
        kind = "a reserved address"
    elif ip.is_private:
        kind = "a private address"
    elif not ip.is_global:
        kind = "not a public address"
    return f"refused: {ip} is {kind}" if kind else None


# The attempt under way in this thread: when it must be over (time.monotonic()). httpx's
# timeouts are per phase (connect, each read, each write); the sending thread's deadline
# bounds them all together, the name's lookup included.
_attempt = threading.local()

# getaddrinfo has no timeout of its own: lookups run in these threads, and the attempt
# waits for its answer only until its deadline (a lookup that hangs keeps its thread until
# the system resolver gives up, and the next lookups queue behind it, bounded the same).
_RESOLVER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook-dns")


def _time_left(timeout: float | None) -> float | None:
    """TIMEOUT shortened to what is left of this thread's attempt (a phase that has no
    time left fails at once)."""
    deadline: float | None = getattr(_attempt, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    return max(left, 0.0) if timeout is None else max(min(timeout, left), 0.0)


def resolve(host: str, port: int, timeout: float | None) -> list[str]:
    """HOST's addresses (an IP address: itself), the lookup bounded by TIMEOUT seconds."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    lookup = _RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        found = lookup.result(timeout=timeout)
    except TimeoutError as exc:
        slow = f"resolving {host} took longer than the attempt allows"
        raise httpcore.ConnectTimeout(slow) from exc
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class BoundedStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake ends by the deadline of the
    attempt using it (a connection kept alive serves attempts of several threads)."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self.stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        left = _time_left(timeout)
        if left == 0:
            raise httpcore.ReadTimeout("the attempt's time ran out")
        return self.stream.read(max_bytes, left)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        left = _time_left(timeout)
        if left == 0:
            raise httpcore.WriteTimeout("the attempt's time ran out")
        self.stream.write(buffer, left)

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout)
        if left == 0:
            raise httpcore.ConnectTimeout("the attempt's time ran out")
        return BoundedStream(self.stream.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class CheckedBackend(httpcore.SyncBackend):
    """Connects only to public addresses, checked after resolving the name, at connect time.

    The connection is made to the address checked (never to the name again), while the
    Host header and TLS's server name (SNI, and the name the certificate must bear) stay
    the URL's: httpcore takes them from the request, not from this backend. The lookup,
    the connection and all that follows end by the attempt's deadline (BoundedStream).
    """

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve(host, port, _time_left(timeout))
        if not self.allow_private:
            for address in addresses:  # every one: a name may mix a public and a private one
                problem = refusal(address)
                if problem:
                    raise httpcore.ConnectError(problem)
        last: Exception = httpcore.ConnectError(f"no address for {host}")
        for address in addresses:
            left = _time_left(timeout)
            if left == 0:
                raise httpcore.ConnectTimeout("the attempt's time ran out")
            try:
                stream = super().connect_tcp(address, port, left, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            return BoundedStream(stream)
        raise last


def http_client(
    settings: Settings,
    concurrency: int = CONCURRENCY,
    *,
    timeout: float = TIMEOUT_SECONDS,
    ca_bundle: str | None = None,
) -> httpx.Client:
    """The client webhooks are posted with: TIMEOUT (a whole attempt: see `post`), no
    redirects followed, no proxy from the environment, connections reused, every connection
    checked (CheckedBackend), certificates verified against the usual authorities, or
    CA_BUNDLE's only (a file of PEM certificates: the tests' own authority)."""
    verify: ssl.SSLContext | bool = True
    if ca_bundle is not None:
        verify = ssl.create_default_context(cafile=ca_bundle)
    transport = httpx.HTTPTransport(
        verify=verify,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        trust_env=False,
    )
    # httpx takes no network backend of its own: its pool's is replaced before any use.
    transport._pool._network_backend = CheckedBackend(allow_private=settings.webhooks_allow_private)
    return httpx.Client(
        transport=transport,
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


@dataclass(frozen=True)
class Destination:
    """What sending to an endpoint takes, read in the claim's transaction."""

    organization_id: int
    url: str
    secret_sealed: str
    previous_secret_sealed: str | None
    previous_secret_expires_at: datetime | None

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> Destination:
        return cls(
            organization_id=endpoint.organization_id,
            url=endpoint.url,
            secret_sealed=endpoint.secret_sealed,
            previous_secret_sealed=endpoint.previous_secret_sealed,
            previous_secret_expires_at=endpoint.previous_secret_expires_at,
        )


@dataclass(frozen=True)
class Target:
    """A claimed message, with what it takes to send it."""

    message_id: int
    organization_id: int
    endpoint_id: int
    uid: str
    url: str
    body: str
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """What one attempt got."""

    target: Target
    at: datetime
    status_code: int | None
    duration_ms: int
    response: str | None
    error: str | None
    retry_after: timedelta | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(client: httpx.Client, target: Target, timeout: float = TIMEOUT_SECONDS) -> Outcome:
    """One attempt at TARGET, over in TIMEOUT seconds all told (the name's lookup, the
    connection, TLS, the request and the first RESPONSE_KEPT characters of the answer,
    the rest unread): never raises (a failure is an outcome)."""
    at = utcnow()
    headers = signing.signature_headers(list(target.secrets), target.uid, at, target.body)
    headers["content-type"] = "application/json"
    started = time.perf_counter()
    status_code = None
    response_text = error = None
    retry_after = None
    _attempt.deadline = time.monotonic() + timeout
    try:
        with client.stream(
            "POST", target.url, content=target.body.encode(), headers=headers
        ) as response:
            status_code = response.status_code
            retry_after = parse_retry_after(response.headers.get("retry-after"), utcnow())
            kept = bytearray()
            for chunk in response.iter_bytes():
                kept += chunk
                if len(kept) >= RESPONSE_KEPT * 4:  # enough for RESPONSE_KEPT characters
                    break
            response_text = kept.decode(response.encoding or "utf-8", "replace")[:RESPONSE_KEPT]
    except httpx.TimeoutException as exc:
        error = f"timed out after {timeout:g} s ({type(exc).__name__}: {exc})"
    except httpx.HTTPError as exc:
        error = str(exc) or type(exc).__name__
    except Exception as exc:  # a bad URL, an unexpected failure: an attempt all the same
        error = f"{type(exc).__name__}: {exc}"
    finally:
        _attempt.deadline = None
    duration_ms = int((time.perf_counter() - started) * 1000)
    return Outcome(
        target=target,
        at=at,
        status_code=status_code,
        duration_ms=duration_ms,
        response=response_text,
        error=error[:500] if error else None,
        retry_after=retry_after,
    )


def due(
    now: datetime,
    limit: int = BATCH,
    skip_endpoints: Collection[int] = (),
    *,
    lock: bool = False,
) -> Select[int, int]:
    """Up to LIMIT messages due at NOW, the longest waiting first, as (id, endpoint id):
    pending, due, not leased (or the lease ran out), of an enabled endpoint not in
    SKIP_ENDPOINTS, and the oldest pending one of their endpoint and user. LOCK: the rows
    read are locked, those another transaction locked skipped (PostgreSQL; the messages
    only, never their endpoint, which other workers read meanwhile)."""
    message, earlier = aliased(WebhookMessage), aliased(WebhookMessage)
    earlier_pending = exists().where(
        earlier.endpoint_id == message.endpoint_id,
        earlier.user_id == message.user_id,
        earlier.status == "pending",
        earlier.id < message.id,
    )
    query = (
        select(message.id, message.endpoint_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == message.endpoint_id)
        .where(
            message.status == "pending",
            message.next_attempt_at <= now,
            or_(message.locked_until.is_(None), message.locked_until < now),
            WebhookEndpoint.enabled.is_(True),
            or_(message.user_id.is_(None), ~earlier_pending),
        )
        .order_by(message.next_attempt_at, message.id)
        .limit(limit)
    )
    if skip_endpoints:
        query = query.where(message.endpoint_id.not_in(list(skip_endpoints)))
    return query.with_for_update(skip_locked=True, of=message) if lock else query


def anything_due(db: Session, now: datetime) -> bool:
    """Whether a message is due: a read, so that an idle worker looking several times a
    second never takes SQLite's write lock."""
    return db.execute(due(now, 1)).first() is not None


@dataclass(frozen=True)
class Claimed:
    """A message leased to this worker, as the lease's UPDATE returned it."""

    id: int
    organization_id: int
    endpoint_id: int
    uid: str
    body: str


def claim(
    db: Session,
    worker: str,
    now: datetime,
    limit: int = BATCH,
    *,
    room: Mapping[int, int] | None = None,
    room_per_endpoint: int | None = None,
) -> list[Claimed]:
    """Lease up to LIMIT due messages (`due`) to WORKER in DB's transaction, at most
    ROOM[endpoint] (else ROOM_PER_ENDPOINT, else any number) of each endpoint: what sending
    them takes, oldest first. On PostgreSQL the candidates are locked SKIP LOCKED (two
    workers never wait for, nor take, each other's); on SQLite the write lock serializes."""
    room = dict(room or {})
    chosen: dict[int, None] = {}  # in the order found
    locking = db.get_bind().dialect.name == "postgresql"
    for _ in range(3):  # again without the endpoints found full: others' messages are due too
        full = [endpoint for endpoint, left in room.items() if left <= 0]
        skipped = False
        query = due(now, limit, full, lock=locking)
        for message_id, endpoint_id in db.execute(query).all():
            if message_id in chosen:
                continue
            left = room.get(endpoint_id, room_per_endpoint)
            if left is not None and left <= 0:
                skipped = True
                continue
            if left is not None:
                room[endpoint_id] = left - 1
            chosen[message_id] = None
            if len(chosen) >= limit:
                break
        if not skipped or len(chosen) >= limit:
            break
    if not chosen:
        return []
    rows = db.execute(
        update(WebhookMessage)
        .where(
            WebhookMessage.id.in_(list(chosen)),
            WebhookMessage.status == "pending",
            or_(WebhookMessage.locked_until.is_(None), WebhookMessage.locked_until < now),
        )
        .values(locked_by=worker, locked_until=now + LEASE)
        .returning(
            WebhookMessage.id,
            WebhookMessage.organization_id,
            WebhookMessage.endpoint_id,
            WebhookMessage.uid,
            WebhookMessage.body,
        )
        .execution_options(synchronize_session=False)
    ).all()
    return sorted((Claimed(*row) for row in rows), key=lambda claimed: claimed.id)


def release(db: Session, worker: str, ids: Sequence[int]) -> None:
    """Give up WORKER's lease of the messages IDS (claimed, never sent): any worker may
    take them at once."""
    db.execute(
        update(WebhookMessage)
        .where(WebhookMessage.id.in_(ids), WebhookMessage.locked_by == worker)
        .values(locked_by=None, locked_until=None)
        .execution_options(synchronize_session=False)
    )


def renew(db: Session, worker: str, ids: Sequence[int], now: datetime) -> None:
    """Lengthen WORKER's lease of the messages IDS it still holds."""
    db.execute(
        update(WebhookMessage)
        .where(
            WebhookMessage.id.in_(ids),
            WebhookMessage.locked_by == worker,
            WebhookMessage.status == "pending",
        )
        .values(locked_until=now + LEASE)
        .execution_options(synchronize_session=False)
    )


def record(db: Session, worker: str, outcomes: Sequence[Outcome], settings: Settings) -> None:
    """Write OUTCOMES in DB's transaction: an attempt each, and what follows for its message
    (held by WORKER still: else another worker took it over and its outcome prevails) and
    its endpoint."""
    # A message deleted meanwhile (its endpoint was) has no attempt to keep.
    existing = set(
        db.scalars(
            select(WebhookMessage.id).where(
                WebhookMessage.id.in_([outcome.target.message_id for outcome in outcomes])
            )
        )
    )
    outcomes = [outcome for outcome in outcomes if outcome.target.message_id in existing]
    if not outcomes:
        return
    now = utcnow()
    db.execute(
        insert(WebhookAttempt),
        [
            {
                "organization_id": outcome.target.organization_id,
                "message_id": outcome.target.message_id,
                "endpoint_id": outcome.target.endpoint_id,
                "attempted_at": outcome.at,
                "status_code": outcome.status_code,
                "duration_ms": outcome.duration_ms,
                "response": outcome.response,
                "error": outcome.error,
                "outcome": "delivered" if outcome.delivered else "failed",
            }
            for outcome in outcomes
        ],
    )
    # The delivered, the usual case: one UPDATE per status code answered.
    delivered_endpoints: set[int] = set()
    by_code: dict[int, list[int]] = {}
    for outcome in outcomes:
        if outcome.delivered and outcome.status_code is not None:
            by_code.setdefault(outcome.status_code, []).append(outcome.target.message_id)
    for code, ids in by_code.items():
        held = db.scalars(
            update(WebhookMessage)
            .where(WebhookMessage.id.in_(ids), WebhookMessage.locked_by == worker)
            .values(
                status="delivered",
                attempts=WebhookMessage.attempts + 1,
                locked_by=None,
                locked_until=None,
                delivered_at=now,
                last_status_code=code,
                last_error=None,
            )
            .returning(WebhookMessage.endpoint_id)
            .execution_options(synchronize_session=False)
        )
        delivered_endpoints.update(held)
    # The failed: each its own next attempt.
    failures = {o.target.message_id: o for o in outcomes if not o.delivered}
    held_failures = (
        db.scalars(
            select(WebhookMessage).where(
                WebhookMessage.id.in_(failures), WebhookMessage.locked_by == worker
            )
        ).all()
        if failures
        else []
    )
    gone: dict[int, Outcome] = {}
    failed_endpoints: dict[int, Outcome] = {}
    for message in held_failures:
        outcome = failures[message.id]
        message.attempts += 1
        message.locked_by = None
        message.locked_until = None
        message.last_status_code = outcome.status_code
        message.last_error = outcome.error or _answer(outcome)
        failed_endpoints.setdefault(message.endpoint_id, outcome)
        if outcome.status_code == 410:
            message.status = "failed"
            gone.setdefault(message.endpoint_id, outcome)
            continue
        wait_more = retry_wait(message.attempts, outcome.retry_after)
        if wait_more is None:
            message.status = "failed"
            log.warning("webhook message %s failed for good: %s", message.uid, message.last_error)
        else:
            message.next_attempt_at = now + wait_more
    db.flush()
    concerned = delivered_endpoints | set(failed_endpoints)
    endpoints = {
        endpoint.id: endpoint
        for endpoint in db.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.id.in_(concerned),
                # Nothing to write for an endpoint that was not failing and still is not.
                or_(
                    WebhookEndpoint.failing_since.is_not(None),
                    WebhookEndpoint.id.in_(failed_endpoints),
                ),
            )
        )
    }
    for endpoint_id, endpoint in endpoints.items():
        if endpoint_id in delivered_endpoints:
            endpoint.failing_since = None
        if not endpoint.enabled:
            continue
        if endpoint_id in gone:
            _disable(db, endpoint, f"it answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC", now)
        elif endpoint_id in failed_endpoints and endpoint_id not in delivered_endpoints:
            if endpoint.failing_since is None:
                endpoint.failing_since = failed_endpoints[endpoint_id].at
            elif now - endpoint.failing_since >= DISABLE_AFTER:
                last = failed_endpoints[endpoint_id]
                reason = (
                    f"every attempt failed since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC "
                    f"(the last: {last.error or _answer(last)})"
                )
                _disable(db, endpoint, reason, now)
                _tell_administrators(db, endpoint, reason, settings)


def _answer(outcome: Outcome) -> str:
    return f"answered {outcome.status_code}"


def _disable(db: Session, endpoint: WebhookEndpoint, reason: str, now: datetime) -> None:
    """Disable ENDPOINT for REASON, failing its pending messages (a replay resends them)."""
    endpoint.enabled = False
    endpoint.disabled_reason = f"Disabled by Userdesk: {reason}"[:500]
    db.execute(
        update(WebhookMessage)
        .where(WebhookMessage.endpoint_id == endpoint.id, WebhookMessage.status == "pending")
        .values(
            status="failed",
            last_error=f"not sent: the endpoint was disabled ({reason})"[:2000],
            locked_by=None,
            locked_until=None,
        )
        .execution_options(synchronize_session=False)
    )
    log.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)


def administrators(db: Session, organization_id: int) -> list[User]:
    """The active users holding the organization's built-in Administrator role."""
    return list(
        db.scalars(
            select(User)
            .join(UserRole, UserRole.user_id == User.id)
            .join(Role, Role.id == UserRole.role_id)
            .where(
                User.organization_id == organization_id,
                User.status == "active",
                Role.organization_id == organization_id,
                Role.name == ADMINISTRATOR.name,
                Role.builtin.is_(True),
            )
            .order_by(User.id)
        )
    )


def _tell_administrators(
    db: Session, endpoint: WebhookEndpoint, reason: str, settings: Settings
) -> None:
    organization = db.get_one(Organization, endpoint.organization_id)
    link = f"{settings.base_url}/console/settings/webhooks/{endpoint.id}"
    for admin in administrators(db, endpoint.organization_id):
        mail.enqueue(
            db,
            organization_id=endpoint.organization_id,
            to=admin.email,
            kind=EmailKind.WEBHOOK_DISABLED,
            context=mail.email_context(
                organization,
                admin,
                link=link,
                expires=utcnow(),
                webhook={"url": endpoint.url, "reason": reason},
            ),
            user_id=admin.id,
        )


class Deliverer:
    """One worker's webhook delivery, a pipeline: `run` loops until stopped; `run_once`
    (the tests') claims, sends and records one round.

    CONCURRENCY sender threads post what is claimed, at most PER_ENDPOINT at a time to an
    endpoint (one that hangs holds its own slots only), taking the endpoints in turn. The
    loop of `run` (one thread: all database work is its own) meanwhile writes what was
    answered, every WRITE_EVERY at most, in one transaction that also claims more: each
    endpoint's claimed and unanswered messages topped up to HELD_PER_ENDPOINT (enough to
    keep its slots busy until the next round; a slow endpoint's wait their turn on this
    worker, under a lease renewed every third of LEASE), HELD in all.
    """

    def __init__(
        self,
        database: Database,
        settings: Settings,
        name: str,
        *,
        concurrency: int = CONCURRENCY,
        per_endpoint: int = PER_ENDPOINT,
        held_per_endpoint: int = HELD_PER_ENDPOINT,
        timeout: float = TIMEOUT_SECONDS,
        ca_bundle: str | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.name = name
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.held_per_endpoint = held_per_endpoint
        self.timeout = timeout
        self.client = http_client(settings, concurrency, timeout=timeout, ca_bundle=ca_bundle)
        self.secrets: dict[tuple[int, str], str] = {}  # unsealed, by organization and sealed form
        # The pipeline's state, under `changed`'s lock (the senders and the loop share it).
        self.changed = threading.Condition()
        self.held: dict[int, Target] = {}  # claimed and not recorded yet, by message id
        self.waiting: dict[int, deque[Target]] = {}  # claimed, not sent yet, by endpoint
        self.sending: Counter[int] = Counter()  # in flight, by endpoint
        self.answered: list[Outcome] = []  # not recorded yet
        self.closed = False
        self.senders: list[threading.Thread] = []
        self.idle = True  # the last look found nothing due
        self.look_after = 0.0  # time.monotonic() of the next claim when the last found little
        self.renew_after = 0.0  # time.monotonic() when the held messages' lease is renewed
        self.written_at = 0.0  # time.monotonic() of the last round written
        self.pace: Counter[int] = Counter()  # answers per round lately, by endpoint

    # The senders' side.

    def _start_senders(self) -> None:
        while len(self.senders) < self.concurrency:
            sender = threading.Thread(
                target=self._sender, name=f"webhook-{len(self.senders)}", daemon=True
            )
            sender.start()
            self.senders.append(sender)

    def _next(self) -> Target | None:
        """The next message to send (under the lock): of the first endpoint in turn with a
        message waiting and a slot free; that endpoint goes to the end of the turn."""
        for endpoint_id, queued in self.waiting.items():
            if self.sending[endpoint_id] < self.per_endpoint:
                target = queued.popleft()
                del self.waiting[endpoint_id]
                if queued:
                    self.waiting[endpoint_id] = queued
                self.sending[endpoint_id] += 1
                return target
        return None

    def _sender(self) -> None:
        while True:
            with self.changed:
                target = self._next()
                while target is None:
                    if self.closed:
                        return
                    self.changed.wait()
                    target = self._next()
            outcome = post(self.client, target, self.timeout)
            with self.changed:
                self.sending[target.endpoint_id] -= 1
                self.answered.append(outcome)
                self.changed.notify_all()

    # The loop's side: every database transaction.

    def _room(self, answered: Sequence[Outcome] = ()) -> tuple[int, dict[int, int]]:
        """How many more messages may be claimed, in all and per endpoint: an endpoint may
        have its slots' worth held, plus twice what it answered in a recent round (up to
        HELD_PER_ENDPOINT), so that one that hangs holds no more than it sends. ANSWERED
        are about to be recorded: no longer held."""
        done = {outcome.target.message_id for outcome in answered}
        with self.changed:
            per_endpoint = Counter(
                target.endpoint_id for target in self.held.values() if target.message_id not in done
            )
            total = max(self.concurrency * HELD_PER_SLOT - sum(per_endpoint.values()), 0)
        room = {
            endpoint: min(self.held_per_endpoint, self.per_endpoint + 2 * int(self.pace[endpoint]))
            - per_endpoint[endpoint]
            for endpoint in set(per_endpoint) | set(self.pace)
        }
        return total, room

    def _round(self, answered: list[Outcome], *, claiming: bool, renewing: bool) -> int:
        """One transaction: record ANSWERED, renew the held messages' lease (RENEWING),
        claim more (CLAIMING; those of a user whose message was just recorded included).
        Then the claimed wait for a sender: how many were claimed."""
        limit, room = self._room(answered) if claiming else (0, {})
        try:
            claimed = self._write(answered, limit, room, renewing=renewing)
        except BaseException:
            with self.changed:  # recorded in a later round
                self.answered[:0] = answered
            raise
        moment = time.monotonic()
        self.written_at = moment
        answers = Counter(outcome.target.endpoint_id for outcome in answered)
        for endpoint in set(self.pace) | set(answers):
            self.pace[endpoint] = max(answers[endpoint], self.pace[endpoint] // 2)
            if not self.pace[endpoint]:
                del self.pace[endpoint]
        if renewing or claimed:
            self.renew_after = moment + LEASE.total_seconds() / 3
        with self.changed:
            for outcome in answered:
                self.held.pop(outcome.target.message_id, None)
            for target in claimed:
                self.held[target.message_id] = target
                self.waiting.setdefault(target.endpoint_id, deque()).append(target)
            if claimed:
                self._start_senders()
                self.changed.notify_all()
        if claiming:
            self.idle = not claimed and not answered
            # Claimed as many as asked: more may be due at once; else look again later.
            self.look_after = 0.0 if claimed and len(claimed) == limit else moment + POLL_SECONDS
        return len(claimed)

    def _write(
        self, answered: list[Outcome], limit: int, room: dict[int, int], *, renewing: bool
    ) -> list[Target]:
        """`_round`'s transaction: what was claimed, ready to send."""
        claimed: list[Target] = []
        with self.database.unit_of_work(background=True) as db:
            now = utcnow()
            if answered:
                record(db, self.name, answered, self.settings)
            if renewing:
                with self.changed:
                    held = list(self.held)
                if held:
                    renew(db, self.name, held, now)
            if limit:
                found = claim(
                    db, self.name, now, limit, room=room, room_per_endpoint=self.per_endpoint * 2
                )
                if found:
                    endpoints = {
                        endpoint.id: Destination.of(endpoint)
                        for endpoint in db.scalars(
                            select(WebhookEndpoint).where(
                                WebhookEndpoint.id.in_({m.endpoint_id for m in found})
                            )
                        )
                    }
                    claimed = [self._target(m, endpoints[m.endpoint_id]) for m in found]
        return claimed

    def _collect(self, stopping: threading.Event) -> list[Outcome]:
        """The answers that came while messages are held: waiting for the first up to
        POLL_SECONDS, then for more until WRITE_EVERY has gone by since the last write."""
        with self.changed:
            if self.held:
                self.changed.wait_for(lambda: self.answered or stopping.is_set(), POLL_SECONDS)
                left = self.written_at + WRITE_EVERY - time.monotonic()
                if left > 0 and self.answered:
                    self.changed.wait_for(stopping.is_set, left)
            answered, self.answered = self.answered, []
        return answered

    def run(self, stopping: threading.Event, poll_seconds: float = POLL_SECONDS) -> None:
        """Deliver until STOPPING is set: record and claim a round at a time; an idle
        worker looks for due messages every POLL_SECONDS with a read (no write lock)."""
        while not stopping.is_set():
            try:
                answered = self._collect(stopping)
                moment = time.monotonic()
                claiming = (bool(answered) or moment >= self.look_after) and self._room(answered)[
                    0
                ] > 0
                renewing = bool(self.held) and moment >= self.renew_after
                if claiming and not answered and not renewing and not self.held and self.idle:
                    with self.database.unit_of_work(write=False) as db:
                        claiming = anything_due(db, utcnow())
                    if not claiming:
                        self.look_after = moment + poll_seconds
                if answered or claiming or renewing:
                    self._round(answered, claiming=claiming, renewing=renewing)
                elif not self.held:
                    stopping.wait(max(min(self.look_after - moment, poll_seconds), 0.01))
            except Exception:
                log.exception("webhook delivery round failed")
                stopping.wait(poll_seconds)
        self._finish()

    def run_once(self) -> int:
        """Claim what may be sent now, send it, and record it all once answered: how many
        messages were tried."""
        if self.idle:  # a read first: an idle worker takes no write turn (nor SQLite's lock)
            with self.database.unit_of_work(write=False) as db:
                if not anything_due(db, utcnow()):
                    return 0
        tried = self._round([], claiming=True, renewing=False)
        if not tried:
            return 0
        with self.changed:
            self.changed.wait_for(lambda: len(self.answered) >= len(self.held))
            answered, self.answered = self.answered, []
        self._round(answered, claiming=False, renewing=False)
        return tried

    def _finish(self) -> None:
        """Stopping: the claimed not sent yet are let go at once (any worker takes them);
        what is in flight is waited for, its answer recorded."""
        with self.changed:
            unsent = [target.message_id for queued in self.waiting.values() for target in queued]
            self.waiting.clear()
            for message_id in unsent:
                self.held.pop(message_id, None)
            self.changed.wait_for(lambda: len(self.answered) >= len(self.held), self.timeout + 1)
            answered, self.answered = self.answered, []
        try:
            with self.database.unit_of_work(background=True) as db:
                if answered:
                    record(db, self.name, answered, self.settings)
                if unsent:
                    release(db, self.name, unsent)
        except Exception:
            log.exception("webhook delivery: the last answers were not recorded")

    def _target(self, message: Claimed, destination: Destination) -> Target:
        secrets = [self._unsealed(destination, destination.secret_sealed)]
        expires = destination.previous_secret_expires_at
        if destination.previous_secret_sealed and expires and expires > utcnow():
            secrets.append(self._unsealed(destination, destination.previous_secret_sealed))
        return Target(
            message_id=message.id,
            organization_id=message.organization_id,
            endpoint_id=message.endpoint_id,
            uid=message.uid,
            url=destination.url,
            body=message.body,
            secrets=tuple(secrets),
        )

    def _unsealed(self, destination: Destination, sealed: str) -> str:
        """The secret SEALED, unsealed once per worker (not once per message)."""
        key = (destination.organization_id, sealed)
        if key not in self.secrets:
            if len(self.secrets) > 10_000:
                self.secrets.clear()
            self.secrets[key] = signing.unseal_secret(
                self.settings, sealed, destination.organization_id
            )
        return self.secrets[key]

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.waiting.clear()
            self.changed.notify_all()
        for sender in self.senders:
            sender.join(timeout=self.timeout + 1)
        self.client.close()
