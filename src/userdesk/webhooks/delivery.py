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

Sending is CPU-bound: a worker posts hundreds a second to one receiver. With httpx (a
thread per request in flight) a delivery took 1.1 ms of a worker's CPU, four fifths of it
in httpx and its pool (which scans every connection per request; AsyncClient cost more
still), so requests go out from one asyncio event loop through `Sender`, a lean HTTP/1.1
client on asyncio streams: connections kept alive, the headers every request to an
endpoint has built once per URL, TLS set up by httpx's own `create_ssl_context`. A
delivery now takes 0.15 ms of CPU in all (bench/webhooks.py prints it). `Sender` keeps
every guarantee httpx gave here:

- No SSRF: `Sender.connect` resolves the name itself, refuses the connection when any
  address is not public (loopback, private, link-local, unique-local, multicast, reserved,
  cloud metadata) and connects to the very address it checked, so that a DNS answer
  cannot change in between; TLS verifies the certificate against the URL's name all the
  same. USERDESK_WEBHOOKS_ALLOW_PRIVATE lets development and tests deliver to such
  addresses.
- One attempt ends within TIMEOUT_SECONDS all told: the name's lookup (getaddrinfo, in a
  thread waited for until then), connecting, TLS, sending and reading the answer.
- No redirect is followed (a 3xx is a failed attempt, retried), no proxy is taken from the
  environment, and no more of an answer is read than is kept (RESPONSE_READ bytes of its
  body, HEAD_LIMIT of its head).
"""

from __future__ import annotations

import asyncio
import codecs
import functools
import ipaddress
import logging
import os
import socket
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from sqlalchemy import Integer, Select, bindparam, exists, insert, or_, select, update
from sqlalchemy.orm import Session, aliased

from userdesk.access.models import Role
from userdesk.access.rules import ADMINISTRATOR
from userdesk.config import Settings
from userdesk.db.base import UTCDateTime, utcnow
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
KEEP_ALIVE = 5.0  # seconds: a connection idle for so long is closed (as httpx's pool did)
HEAD_LIMIT = 64 * 1024  # bytes: an answer's status line and headers, at most
HELD_PER_ENDPOINT = 256  # claimed and not yet recorded, per endpoint and worker
HELD_PER_SLOT = 8  # claimed and not yet recorded, in all: so many per request in flight
WRITE_EVERY = 0.05  # seconds: answers are written (and more claimed) at most so often
POLL_SECONDS = 0.25  # the wait between two looks for due messages when there was none
RESPONSE_KEPT = 1024  # characters of an answer kept with its attempt
RESPONSE_READ = RESPONSE_KEPT * 4  # bytes of an answer's body read at most (UTF-8: enough)
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
    if value.isascii() and value.isdigit():  # not "²": str.isdigit takes it, int() does not
        return timedelta(seconds=int(value)) if len(value) <= 9 else RETRY_AFTER_MAX
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            return None
        return max(when - now, timedelta(0))
    except (TypeError, ValueError, OverflowError):
        return None


def refusal(address: str) -> str | None:
    """Why a webhook may not be sent to ADDRESS (an IP address), or None when it may:
    only public addresses are reachable (IPv4-mapped and 6to4 IPv6 addresses are judged by
    the IPv4 address they carry)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    elif isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour is not None:
        ip = ip.sixtofour  # 2002::/16 routes to the IPv4 address it carries
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


class AttemptError(Exception):
    """An attempt's failure, its message as it is recorded."""


# Name lookups: getaddrinfo has no timeout of its own, so lookups run in these threads and
# the attempt waits for an answer only until its deadline (a lookup that hangs keeps its
# thread until the system resolver gives up, and the next lookups queue behind it, each
# bounded the same).
_RESOLVER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook-dns")


async def resolve(host: str, port: int) -> list[str]:
    """HOST's addresses (an IP address: itself), looked up in a thread of _RESOLVER (the
    caller bounds the wait)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    lookup = functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        found = await asyncio.get_running_loop().run_in_executor(_RESOLVER, lookup)
    except (socket.gaierror, UnicodeError) as exc:
        raise AttemptError(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in found))


@dataclass(frozen=True)
class Url:
    """An endpoint's URL as it is sent to: read as httpx reads it (as the endpoint's URL
    was checked when saved: `service.url_problem`), the host IDNA-encoded."""

    tls: bool
    host: str  # what is looked up, and what the certificate must name (no brackets)
    port: int
    head: bytes  # the request line and the headers every request to it has

    @property
    def origin(self) -> tuple[bool, str, int]:
        return (self.tls, self.host, self.port)


@functools.lru_cache(maxsize=1024)
def parse_url(url: str) -> Url:
    """URL read once per worker, not once per message.

    Raises:
        AttemptError: not an http(s) URL with a host.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:  # idna's errors are ValueErrors
        raise AttemptError(f"not a URL webhooks can be sent to: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise AttemptError(f"not a URL webhooks can be sent to: {url}")
    tls = parsed.scheme == "https"
    # The stored URL may predate `url_problem`'s rules: nothing that would end the request
    # line or the Host header early (httpx percent-encodes or refuses such characters).
    if any(byte <= 0x20 or byte >= 0x7F for byte in parsed.raw_path + parsed.netloc):
        raise AttemptError(f"not a URL webhooks can be sent to: {url[:200]!r}")
    head = b"".join(
        (
            b"POST ",
            parsed.raw_path,
            b" HTTP/1.1\r\nHost: ",
            parsed.netloc,  # the port only when it is not the scheme's
            b"\r\nUser-Agent: ",
            USER_AGENT.encode(),
            # No compression: only the first KB of an answer is kept, as it came.
            b"\r\nAccept: */*\r\nAccept-Encoding: identity\r\nContent-Type: application/json\r\n",
        )
    )
    return Url(tls, parsed.raw_host.decode("ascii"), parsed.port or (443 if tls else 80), head)


class Connection:
    """A connection to an endpoint, kept alive between attempts while it may be."""

    __slots__ = ("idle_since", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        """Still open, nothing unasked for arrived on it (it would be taken for the next
        request's answer), idle for less than KEEP_ALIVE."""
        return (
            not self.reader.at_eof()
            and not self.writer.is_closing()
            and not getattr(self.reader, "_buffer", b"")  # asyncio's own; no public way
            and now - self.idle_since < KEEP_ALIVE
        )

    def close(self) -> None:
        """Close at once: nothing is left to send that matters (an answer read to its end,
        or a failed attempt), and a peer that reads nothing must not keep the socket open
        (a plain close waits for the unsent bytes to go first, forever)."""
        self.writer.transport.abort()


@dataclass
class Answer:
    """What an endpoint answered, as far as it was read."""

    status_code: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Sender:
    """Posts webhooks over HTTP/1.1 from one asyncio event loop, connections kept alive.

    Its connections go through `connect`, which resolves the name itself, refuses every
    address that is not public (unless ALLOW_PRIVATE) and connects to the very address it
    checked, so that a DNS answer cannot change in between, while TLS verifies the
    certificate against the URL's name (and the Host header names it) all the same.
    Certificates are verified as httpx verifies them (certifi's authorities), or against
    CA_BUNDLE's only (a file of PEM certificates: the tests' own authority). No redirect is
    followed (a 3xx is an answer like any other), no proxy is taken from the environment,
    and at most RESPONSE_READ bytes of an answer's body are read (a longer one's connection
    is closed), its head at most HEAD_LIMIT (interim answers included).

    A connection is kept only after an answer read to its end and framed one way (by
    Content-Length, or by chunks without a Content-Length), for the same organization's
    requests to the same origin, for KEEP_ALIVE at most, KEEP of them in all; one that
    fails before any byte of its answer is replaced once. Connections are aborted, never
    closed gracefully (a server that reads nothing would keep a graceful close waiting).
    Open connections: the requests in flight (the caller bounds them) and KEEP idle.
    """

    def __init__(
        self, *, allow_private: bool, keep: int = CONCURRENCY, ca_bundle: str | None = None
    ) -> None:
        self.allow_private = allow_private
        self.keep = keep  # idle connections kept, in all
        self.ca_bundle = ca_bundle
        self._tls: ssl.SSLContext | None = None
        # By organization and origin: an answer that came late on a connection (a server's
        # bug) could be taken for the next request's, never for another organization's.
        self.idle: dict[tuple[int, bool, str, int], list[Connection]] = {}
        self.idle_count = 0
        self.swept_at = 0.0

    def tls(self) -> ssl.SSLContext:
        if self._tls is None:
            verify: ssl.SSLContext | bool = True  # httpx's: certifi's authorities
            if self.ca_bundle is not None:
                verify = ssl.create_default_context(cafile=self.ca_bundle)
            context = httpx.create_ssl_context(verify=verify, trust_env=False)
            context.set_alpn_protocols(["http/1.1"])
            self._tls = context
        return self._tls

    async def post(self, target: Target, timeout: float = TIMEOUT_SECONDS) -> Outcome:
        """One attempt at TARGET, over in TIMEOUT seconds all told (the name's lookup, the
        connection, TLS, the request and the first RESPONSE_READ bytes of the answer, the
        rest unread): never raises (a failure is an outcome), unless cancelled."""
        at = utcnow()
        started = time.perf_counter()
        answer = Answer()
        phase = ["starting"]  # what the attempt is doing: said when it runs out of time
        error = None
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                await self._exchange(parse_url(target.url), target, at, answer, phase)
        except TimeoutError as exc:
            if not deadline.expired():  # the system's: connecting timed out
                error = f"{phase[0]}: {exc}"
            elif phase[0].startswith("resolving"):
                error = f"{phase[0]} took longer than the attempt allows"
            else:
                error = f"timed out after {timeout:g} s ({phase[0]})"
        except AttemptError as exc:
            error = str(exc)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            closed = "the connection was closed" if isinstance(exc, EOFError) else str(exc)
            error = f"{phase[0]}: {closed}"
        except asyncio.LimitOverrunError:
            error = f"{phase[0]}: a line of the answer is longer than {HEAD_LIMIT:,} bytes"
        except OSError as exc:  # ssl.SSLError included: its text says what failed
            error = f"{phase[0]}: {exc}"
        except Exception as exc:  # an unexpected failure: an attempt all the same
            error = f"{type(exc).__name__}: {exc}"
        duration_ms = int((time.perf_counter() - started) * 1000)
        retry_after = None
        response = None
        if answer.status_code is not None:
            retry_after = parse_retry_after(answer.headers.get("retry-after"), utcnow())
            response = _text(answer.body, answer.headers.get("content-type"))[:RESPONSE_KEPT]
        return Outcome(
            target=target,
            at=at,
            status_code=answer.status_code,
            duration_ms=duration_ms,
            response=response,
            error=error[:500] if error else None,
            retry_after=retry_after,
        )

    async def _exchange(
        self, url: Url, target: Target, at: datetime, answer: Answer, phase: list[str]
    ) -> None:
        headers = signing.signature_headers(list(target.secrets), target.uid, at, target.body)
        body = target.body.encode()
        request = b"".join(
            (
                url.head,
                f"Content-Length: {len(body)}\r\nwebhook-id: {headers['webhook-id']}\r\n"
                f"webhook-timestamp: {headers['webhook-timestamp']}\r\n"
                f"webhook-signature: {headers['webhook-signature']}\r\n\r\n".encode(),
                body,
            )
        )
        key = (target.organization_id, *url.origin)
        kept = self._kept(key)
        if kept is not None:
            try:
                await self._send_on(kept, key, request, answer, phase)
                return
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                partial = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
                if answer.status_code is not None or partial:
                    raise
                # Closed by the server as it was taken (its idle timeout may be ours, 5 s,
                # as Node's is): once more on a new connection, as httpx does.
        await self._send_on(await self.connect(url, phase), key, request, answer, phase)

    async def _send_on(
        self,
        connection: Connection,
        key: tuple[int, bool, str, int],
        request: bytes,
        answer: Answer,
        phase: list[str],
    ) -> None:
        """Send REQUEST on CONNECTION and read its answer; the connection is then kept for
        KEY's next request if it may carry one, else closed."""
        reusable = False
        try:
            phase[0] = "sending the request"
            connection.writer.write(request)
            await connection.writer.drain()
            phase[0] = "waiting for the answer"
            reusable = await _read_answer(connection.reader, answer, phase)
        finally:
            if reusable:
                self._keep(key, connection)
            else:
                connection.close()

    async def connect(self, url: Url, phase: list[str]) -> Connection:
        """A new connection to URL's host, at an address checked (see the class)."""
        phase[0] = f"resolving {url.host}"
        addresses = await resolve(url.host, url.port)
        if not self.allow_private:
            for address in addresses:  # every one: a name may mix a public and a private one
                if problem := refusal(address):
                    raise AttemptError(problem)
        failure = f"no address for {url.host}"
        for address in addresses:
            phase[0] = f"connecting to {address} port {url.port}"
            try:
                reader, writer = await asyncio.open_connection(
                    address,
                    url.port,
                    ssl=self.tls() if url.tls else None,
                    server_hostname=url.host if url.tls else None,
                    limit=HEAD_LIMIT,
                )
            except ssl.SSLError:
                raise  # the certificate: no other address changes it
            except OSError as exc:  # refused, unreachable: the next address, if any
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                failure = f"{phase[0]}: {reason}"
                continue
            return Connection(reader, writer)
        raise AttemptError(failure)

    def _kept(self, key: tuple[int, bool, str, int]) -> Connection | None:
        """A connection kept alive for KEY (organization and origin), still usable, or None."""
        kept = self.idle.get(key)
        now = time.monotonic()
        while kept:
            connection = kept.pop()
            self.idle_count -= 1
            if not kept:
                del self.idle[key]
            if connection.usable(now):
                return connection
            connection.close()
        return None

    def _keep(self, key: tuple[int, bool, str, int], connection: Connection) -> None:
        now = time.monotonic()
        connection.idle_since = now
        if now - self.swept_at > KEEP_ALIVE:  # those idle too long, of every origin
            self.swept_at = now
            for origin, kept in list(self.idle.items()):
                for old in [c for c in kept if not c.usable(now)]:
                    kept.remove(old)
                    old.close()
                    self.idle_count -= 1
                if not kept:
                    del self.idle[origin]
        if self.idle_count >= self.keep:
            connection.close()
        else:
            self.idle.setdefault(key, []).append(connection)
            self.idle_count += 1

    def close(self) -> None:
        """Close the connections kept alive."""
        for kept in self.idle.values():
            for connection in kept:
                connection.close()
        self.idle.clear()
        self.idle_count = 0


async def _read_answer(reader: asyncio.StreamReader, answer: Answer, phase: list[str]) -> bool:
    """Read the answer's head into ANSWER, then up to RESPONSE_READ bytes of its body (as
    framed: Content-Length, chunked, or until the connection closes): whether the
    connection may carry another request."""
    read = 0  # bytes of heads: interim answers count too (a server may send them forever)
    while True:
        raw = await reader.readuntil(b"\r\n\r\n")
        read += len(raw)
        if read > HEAD_LIMIT:
            raise AttemptError(f"the answer's head is longer than {HEAD_LIMIT:,} bytes")
        head = raw.decode("latin-1")
        version, _, rest = head.partition(" ")
        code = rest[:3]
        if not (
            version in ("HTTP/1.1", "HTTP/1.0")
            and code.isascii()
            and code.isdigit()
            and rest[3:4] in (" ", "\r")
        ):
            raise AttemptError(f"not an HTTP/1.1 answer: {head[:80]!r}")
        if not 100 <= int(code) < 200 or code == "101":
            break  # an interim answer (100 Continue, 103 Early Hints) is skipped
    headers: dict[str, str] = {}
    name = ""
    for line in head.split("\r\n")[1:-2]:
        if line[:1] in (" ", "\t") and name:  # obs-fold: the previous value goes on
            headers[name] = f"{headers[name]} {line.strip()}"
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or " " in name or "\t" in name:
            raise AttemptError(f"a malformed header in the answer: {line[:80]!r}")
        name = name.lower()
        headers[name] = f"{headers[name]}, {value.strip()}" if name in headers else value.strip()
    coding = headers.get("transfer-encoding")
    length = headers.get("content-length")
    size = -1  # no Content-Length
    if length is not None and coding is None:
        lengths = {value.strip() for value in length.split(",")}
        size_text = lengths.pop() if len(lengths) == 1 else ""
        if not (size_text.isascii() and size_text.isdigit()):
            raise AttemptError(f"the answer's Content-Length is not a length: {length[:40]!r}")
        size = int(size_text)
    # A well-formed head: the status counts (a 2xx delivers, whatever happens to the body).
    answer.status_code = int(code)
    answer.headers = headers
    phase[0] = f"reading the answer ({code})"
    connection = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    keep_alive = version == "HTTP/1.1" and "close" not in connection
    if answer.status_code in (101, 204, 304):  # no body, whatever the headers say
        return keep_alive and answer.status_code != 101
    if coding is not None:
        if coding.rsplit(",", 1)[-1].strip().lower() != "chunked":
            answer.body = await _read_until_closed(reader)
            return False
        answer.body, complete = await _read_chunked(reader)
        # Framed by both (RFC 9112 6.3: a smuggling attempt, or a broken intermediary):
        # read by the chunks, but the connection is not trusted with another request.
        return keep_alive and complete and length is None
    if size < 0:
        answer.body = await _read_until_closed(reader)
        return False
    answer.body = await reader.readexactly(min(size, RESPONSE_READ))
    return keep_alive and size <= RESPONSE_READ


async def _read_until_closed(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while len(body) < RESPONSE_READ and (chunk := await reader.read(RESPONSE_READ - len(body))):
        body += chunk
    return bytes(body)


async def _read_chunked(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    """A chunked body, up to RESPONSE_READ bytes: (them, whether it was read to its end)."""
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line.split(b";", 1)[0].rstrip(b"\r\n \t")  # chunk extensions ignored
        # Hex digits only (int() would take "0x1f", "-5", "1_0", " 7"), 16 at most.
        if not (0 < len(size_text) <= 16 and size_text.strip(b"0123456789abcdefABCDEF") == b""):
            raise AttemptError(f"a malformed chunk in the answer: {line[:40]!r}")
        size = int(size_text, 16)
        if size == 0:
            trailers = 0
            while (line := await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers: skipped
                trailers += len(line)
                if trailers > HEAD_LIMIT:
                    raise AttemptError(
                        f"the answer's trailers are longer than {HEAD_LIMIT:,} bytes"
                    )
            return bytes(body), True
        if len(body) + size > RESPONSE_READ:
            body += await reader.readexactly(RESPONSE_READ - len(body))
            return bytes(body), False
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise AttemptError("a malformed chunk in the answer: its data is longer than its size")


def _text(body: bytes, content_type: str | None) -> str:
    """BODY as text, in the charset CONTENT_TYPE names if that decodes it (an answer may
    name "rot13", "base64", "undefined" or "idna", which are no text encodings or do not
    decode with "replace": an attempt must still end with an outcome), else as UTF-8."""
    try:
        return body.decode(_charset(content_type), "replace")
    except (LookupError, ValueError):  # UnicodeError is a ValueError
        return body.decode("utf-8", "replace")


def _charset(content_type: str | None) -> str:
    """The text encoding a Content-Type names, if Python knows it; else UTF-8."""
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            try:
                return codecs.lookup(value.strip().strip("\"'")).name
            except LookupError:
                break
    return "utf-8"


def due(
    now: datetime,
    limit: int = BATCH,
    skip_endpoints: Collection[int] = (),
    *,
    lock: bool = False,
) -> tuple[Select[int, int], dict[str, Any]]:
    """Up to LIMIT messages due at NOW, the longest waiting first, as (id, endpoint id):
    pending, due, not leased (or the lease ran out), of an enabled endpoint not in
    SKIP_ENDPOINTS, and the oldest pending one of their endpoint and user. LOCK: the rows
    read are locked, those another transaction locked skipped (PostgreSQL; the messages
    only, never their endpoint, which other workers read meanwhile).

    The query and the parameters to run it with: the query is built once (building it,
    its aliases and their cache key, took 2 to 5 ms, more than running it)."""
    parameters: dict[str, Any] = {"now": now, "limit": limit}
    if skip_endpoints:
        parameters["skip"] = list(skip_endpoints)
    return _due_query(skipping=bool(skip_endpoints), lock=lock), parameters


@functools.cache
def _due_query(*, skipping: bool, lock: bool) -> Select[int, int]:
    message, earlier = aliased(WebhookMessage), aliased(WebhookMessage)
    now = bindparam("now", type_=UTCDateTime)
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
        .limit(bindparam("limit", type_=Integer))
    )
    if skipping:
        query = query.where(message.endpoint_id.not_in(bindparam("skip", expanding=True)))
    return query.with_for_update(skip_locked=True, of=message) if lock else query


def anything_due(db: Session, now: datetime) -> bool:
    """Whether a message is due: a read, so that an idle worker looking several times a
    second never takes SQLite's write lock."""
    return db.execute(*due(now, 1)).first() is not None


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
        for message_id, endpoint_id in db.execute(*due(now, limit, full, lock=locking)).all():
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
    if not outcomes:
        return
    now = utcnow()
    # The delivered, the usual case: one UPDATE per status code answered.
    delivered_endpoints: set[int] = set()
    held: set[int] = set()  # the messages WORKER held still, updated here
    by_code: dict[int, list[int]] = {}
    for outcome in outcomes:
        if outcome.delivered and outcome.status_code is not None:
            by_code.setdefault(outcome.status_code, []).append(outcome.target.message_id)
    for code, ids in by_code.items():
        for message_id, endpoint_id in db.execute(
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
            .returning(WebhookMessage.id, WebhookMessage.endpoint_id)
            .execution_options(synchronize_session=False)
        ):
            held.add(message_id)
            delivered_endpoints.add(endpoint_id)
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
    held.update(message.id for message in held_failures)
    # An attempt of each message that still exists (one deleted meanwhile, with its
    # endpoint, keeps none): those just updated do; the others (another worker took them
    # over, rarely) are looked for.
    others = [o.target.message_id for o in outcomes if o.target.message_id not in held]
    if others:
        held.update(db.scalars(select(WebhookMessage.id).where(WebhookMessage.id.in_(others))))
    attempts = [outcome for outcome in outcomes if outcome.target.message_id in held]
    if attempts:
        db.execute(
            insert(_ATTEMPTS),  # the table itself: the ORM bulk insert path costs more per row
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
                for outcome in attempts
            ],
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


_ATTEMPTS = WebhookAttempt.metadata.tables[WebhookAttempt.__tablename__]


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

    An event loop of its own (one thread, `Sender`) posts what is claimed, CONCURRENCY
    requests in flight at most, PER_ENDPOINT to an endpoint (one that hangs holds its own
    slots only), taking the endpoints in turn. The loop of `run` (one thread: all database
    work is its own) meanwhile writes what was answered, every WRITE_EVERY at most, in one
    transaction that also claims more: each endpoint's claimed and unanswered messages
    topped up to HELD_PER_ENDPOINT (enough to keep its slots busy until the next round; a
    slow endpoint's wait their turn on this worker, under a lease renewed every third of
    LEASE), HELD in all.
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
        self.sender = Sender(
            allow_private=settings.webhooks_allow_private, keep=concurrency, ca_bundle=ca_bundle
        )
        self.secrets: dict[tuple[int, str], str] = {}  # unsealed, by organization and sealed form
        # The pipeline's state, under `changed`'s lock (the sending loop and `run` share it).
        self.changed = threading.Condition()
        self.held: dict[int, Target] = {}  # claimed and not recorded yet, by message id
        self.waiting: dict[int, deque[Target]] = {}  # claimed, not sent yet, by endpoint
        self.sending: Counter[int] = Counter()  # in flight, by endpoint
        self.in_flight = 0  # in all
        self.answered: list[Outcome] = []  # not recorded yet
        self.closed = False
        # The sending loop, started with the first message claimed; its requests under way.
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread: threading.Thread | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.idle = True  # the last look found nothing due
        self.look_after = 0.0  # time.monotonic() of the next claim when the last found little
        self.renew_after = 0.0  # time.monotonic() when the held messages' lease is renewed
        self.written_at = 0.0  # time.monotonic() of the last round written
        self.pace: Counter[int] = Counter()  # answers per round lately, by endpoint

    # The sending loop's side.

    def _start_sending(self) -> None:
        """Have the sending loop (started if need be) send what waits, as slots allow."""
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            self.loop_thread = threading.Thread(
                target=self.loop.run_forever, name="webhook-senders", daemon=True
            )
            self.loop_thread.start()
        self.loop.call_soon_threadsafe(self._dispatch)

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

    def _dispatch(self) -> None:
        """(The sending loop's.) Start sending what waits, as far as slots are free."""
        loop = self.loop
        if loop is None:
            return
        with self.changed:
            while not self.closed and self.in_flight < self.concurrency:
                target = self._next()
                if target is None:
                    break
                self.in_flight += 1
                task = loop.create_task(self._send(target))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _send(self, target: Target) -> None:
        try:
            outcome = await self.sender.post(target, self.timeout)
        except Exception as exc:  # `post` never raises; were it to, the slot would stay taken
            log.exception("webhook delivery: sending %s failed unexpectedly", target.uid)
            error = f"{type(exc).__name__}: {exc}"[:500]
            outcome = Outcome(target, utcnow(), None, 0, None, error, None)
        with self.changed:
            self.in_flight -= 1
            self.sending[target.endpoint_id] -= 1
            self.answered.append(outcome)
            self.changed.notify_all()
        self._dispatch()

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
        Then the claimed wait to be sent: how many were claimed."""
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
            self._start_sending()
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
        """Stop sending: what is in flight is waited for (TIMEOUT at most), then the
        connections are closed and the sending loop ends."""
        with self.changed:
            self.closed = True
            self.waiting.clear()
            self.changed.notify_all()
        if self.loop is None or self.loop_thread is None:
            return
        ending = asyncio.run_coroutine_threadsafe(self._end_sending(), self.loop)
        try:
            ending.result(timeout=self.timeout + 2)
        except Exception:
            log.exception("webhook delivery: the sending loop did not end cleanly")
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.loop_thread.join(timeout=5)
        if not self.loop_thread.is_alive():
            self.loop.close()

    async def _end_sending(self) -> None:
        if self.tasks:
            _, late = await asyncio.wait(list(self.tasks), timeout=self.timeout + 1)
            for task in late:
                task.cancel()
        self.sender.close()
