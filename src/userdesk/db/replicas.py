"""Read replicas: PostgreSQL streaming standbys that serve some of the reads.

What may be read on a replica is named in one place (`READ_PATHS`): the Users list and
its counts, the export, a user's timeline and the audit log, each a GET by a signed-in
caller. Everything else, every write, and every read of a request that writes, stays on
the primary. A caller who wrote within the read-your-writes window reads from the
primary too, so that an admin sees what they just did.

A replica is used only while it is healthy: reachable and at most `max_lag` seconds
behind. Its state is checked at most once a second (a down one at most every
DOWN_RECHECK seconds), in a thread of its own that the first request to find the last
check stale starts: no request waits on a check (they run on the event loop, and a host
that does not answer costs a connect timeout), each uses the state last found. Until its
first check a replica is not used. A replica that fails when a request connects to it is
marked down at once and the reads go to the next healthy one, or to the primary. Healthy
replicas take turns.

Who wrote last, and when, is kept twice: in a map of this process (for any caller,
API keys included) and in a short-lived cookie (`WROTE_COOKIE`) the browser sends back
to whichever server process answers next, so that `userdesk serve --workers N` keeps
the promise across processes without a write to the database on every write. The
cookie can only send its own sender's reads to the primary, for at most the window: a
forged one costs the primary a few reads, nothing more, so it is not signed.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

HEALTHY, LAGGING, DOWN, UNKNOWN = "healthy", "lagging", "down", "unknown"
CHECK_EVERY = 1.0  # seconds between two checks of a replica's lag, at most one per second
DOWN_RECHECK = 5.0  # seconds before a replica found down is tried again
CONNECT_TIMEOUT = 2  # seconds to connect to a replica before it counts as down
WROTE_COOKIE = "userdesk_wrote"
# The scope key under which `ReplicaRouting` hands the replicas to a GET that may use one.
READS_KEY = "userdesk.replica_reads"
SAFE_METHODS = frozenset({"GET", "HEAD"})

# The GETs whose reads may go to a replica (paths without the query string).
READ_PATHS = re.compile(
    r"^(?:/console|/api/v1)/(?:users(?:/counts|/export|/[0-9]+/activity)?|audit)\Z"
)

# How far behind the primary a replica is, in seconds: 0 when it has replayed all it
# received (an idle primary sends nothing, so the time since the last replayed commit
# alone would grow for ever), None when it is no standby at all.
_LAG = text(
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL"
    " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)


@dataclass(eq=False)
class Replica:
    """One replica: its engine, and its state as last checked."""

    name: str  # its URL without the password
    engine: Engine
    state: str = UNKNOWN
    lag: float | None = None
    checked_at: float = -math.inf
    detail: str | None = None
    _checking: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def due(self, now: float) -> bool:
        wait = DOWN_RECHECK if self.state == DOWN else CHECK_EVERY
        return now - self.checked_at >= wait

    def check_soon(self, max_lag: float) -> None:
        """Measure the replica's lag in a thread of its own, unless one is measuring it."""
        if not self._checking.acquire(blocking=False):
            return
        threading.Thread(
            target=self._check, args=(max_lag,), name="replica-check", daemon=True
        ).start()

    def check(self, max_lag: float) -> None:
        """Measure the replica's lag now, unless another thread is measuring it."""
        if self._checking.acquire(blocking=False):
            self._check(max_lag)

    def _check(self, max_lag: float) -> None:
        """Measure the lag (the caller holds `_checking`, released here)."""
        try:
            with self.engine.connect() as connection:
                lag = connection.execute(_LAG).scalar()
            self.lag = None if lag is None else float(lag)
            self.state = LAGGING if self.lag is not None and self.lag > max_lag else HEALTHY
            self.detail = None
        except Exception as exc:
            self.mark_down(exc)
        finally:
            self.checked_at = time.monotonic()
            self._checking.release()

    def mark_down(self, exc: BaseException) -> None:
        self.state, self.lag, self.detail = DOWN, None, type(exc).__name__
        self.checked_at = time.monotonic()
        self.engine.dispose()  # the pool's connections are gone too

    def report(self) -> dict[str, Any]:
        lag = None if self.lag is None else round(self.lag, 3)
        shown: dict[str, Any] = {"replica": self.name, "state": self.state, "lag_seconds": lag}
        if self.detail:
            shown["detail"] = self.detail
        return shown


class Replicas:
    """The replicas of a primary, and who wrote lately (read-your-writes)."""

    def __init__(
        self,
        engines: list[Engine],
        *,
        max_lag: float,
        read_your_writes: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.replicas = [
            Replica(make_url(e.url).render_as_string(hide_password=True), e) for e in engines
        ]
        self.max_lag = max_lag
        self.read_your_writes = read_your_writes
        self.clock = clock
        self._turns = itertools.count()
        self._wrote: dict[str, float] = {}  # principal -> clock() of its last write
        self._wrote_lock = threading.Lock()

    def pick(self) -> Replica | None:
        """The next healthy replica in turn, or None (the primary then serves). Never
        waits: stale states are checked again in the background."""
        now = time.monotonic()
        for replica in self.replicas:
            if replica.due(now):
                replica.check_soon(self.max_lag)
        healthy = [r for r in self.replicas if r.state == HEALTHY]
        if not healthy:
            return None
        return healthy[next(self._turns) % len(healthy)]

    def report(self) -> list[dict[str, Any]]:
        """Each replica's state, checked now if its last check is stale (/readyz: in a
        thread of the pool, it may wait)."""
        now = time.monotonic()
        for replica in self.replicas:
            if replica.due(now):
                replica.check(self.max_lag)
        return [replica.report() for replica in self.replicas]

    def wrote(self, principal: str) -> float:
        """Note that PRINCIPAL wrote now; returns when (clock time)."""
        now = self.clock()
        with self._wrote_lock:
            self._wrote[principal] = now
            if len(self._wrote) > 10_000:  # keep the map small: forget the expired
                horizon = now - self.read_your_writes
                self._wrote = {p: at for p, at in self._wrote.items() if at > horizon}
        return now

    def wrote_lately(self, principal: str, cookie: str | None) -> bool:
        """PRINCIPAL wrote within the read-your-writes window, by this process's map or
        by the cookie a browser sent back."""
        now = self.clock()
        at = self._wrote.get(principal)
        if at is not None and now - at < self.read_your_writes:
            return True
        if not cookie:
            return False
        try:
            sent = float(cookie)
        except ValueError:
            return False
        # A time a little ahead of ours is another process's clock; far ahead, forged.
        return -1.0 <= now - sent < self.read_your_writes

    def read_on_replica(self, db: Session, principal: str, cookie: str | None) -> bool:
        """Move the rest of DB's reads to a healthy replica, unless PRINCIPAL wrote lately;
        whether they moved. What DB did so far (the caller's authentication, on the
        primary) is committed first."""
        if self.wrote_lately(principal, cookie):
            return False
        while (replica := self.pick()) is not None:
            db.commit()
            primary = db.bind
            db.bind = replica.engine
            try:
                db.connection()  # now: a replica that went away falls back, not fails
            except DBAPIError as exc:
                db.rollback()
                db.bind = primary
                replica.mark_down(exc)
                continue
            return True
        return False

    def dispose(self) -> None:
        for replica in self.replicas:
            replica.engine.dispose()


def principal_of(state: MutableMapping[str, Any]) -> str | None:
    """Who made the request, from what authentication left in its STATE."""
    user_id = state.get("actor_user_id")
    if user_id is not None:
        return f"user:{user_id}"
    key_id = state.get("actor_api_key_id")
    return f"key:{key_id}" if key_id is not None else None


Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class ReplicaRouting:
    """ASGI middleware, installed only when replicas are configured: it offers the
    replicas to the GETs of READ_PATHS, and notes each write by its caller (in this
    process, and in WROTE_COOKIE for the browser) as its answer starts."""

    def __init__(self, app: App, *, replicas: Replicas, secure: bool) -> None:
        self.app = app
        self.replicas = replicas
        self.secure = "; Secure" if secure else ""

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # one dict, seen by every layer, copies of scope too
        if scope["method"] in SAFE_METHODS:
            if READ_PATHS.match(scope["path"]):
                scope[READS_KEY] = self.replicas
            await self.app(scope, receive, send)
            return

        async def noting_the_write(message: Message) -> None:
            if message["type"] == "http.response.start":
                principal = principal_of(scope.get("state", {}))
                if principal is not None:
                    at = self.replicas.wrote(principal)
                    window = math.ceil(self.replicas.read_your_writes)
                    cookie = (
                        f"{WROTE_COOKIE}={at:.3f}; Max-Age={window}; Path=/; HttpOnly;"
                        f" SameSite=Lax{self.secure}"
                    )
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"set-cookie", cookie.encode("latin-1")),
                    ]
            await send(message)

        await self.app(scope, receive, noting_the_write)


def reads_on_replica(scope: MutableMapping[str, Any], db: Session, cookies: dict[str, str]) -> None:
    """After authentication: the rest of a GET of READ_PATHS reads on a replica, when the
    caller has not written lately and a replica is healthy (`Replicas.read_on_replica`).
    Nothing when no replica is configured (the scope then has no READS_KEY)."""
    replicas: Replicas | None = scope.get(READS_KEY)
    if replicas is None:
        return
    principal = principal_of(scope.get("state", {}))
    if principal is None:
        return
    replicas.read_on_replica(db, principal, cookies.get(WROTE_COOKIE))
