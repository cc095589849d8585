"""Sessions and the unit of work. Adapters own the transaction; services only flush.

On SQLite a unit of work that will write waits its turn on `Database.writers`, one writer
at a time in the process, first come first served: request handlers await it without
blocking the event loop; the worker's and the CLI's threads block. It then takes the
database's write lock (`BEGIN IMMEDIATE`), which only another process can hold, under
`busy_timeout` and off the event loop. On PostgreSQL, which locks rows, writers do not
queue (db.writers): the worker's long steps (churn scoring) no longer hold back the
outbox, the webhooks and the requests beside them.

Nothing that waits (an upload, a thread, a parse) may happen while a writer's turn is
held: `outside_transaction` ends the transaction around such a wait.

With read replicas configured (`Database.from_settings`, db/replicas.py), a few GETs move
their reads to a replica once the caller is authenticated on the primary; without them
nothing here differs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, TypeVar

from anyio import CapacityLimiter, to_thread
from sqlalchemy import ColumnElement, Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from userdesk.db.engine import BEGIN_OPTION, make_engine
from userdesk.db.replicas import CONNECT_TIMEOUT, Replicas
from userdesk.db.writers import WriteLock

if TYPE_CHECKING:
    from userdesk.config import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a thread (the worker, the CLI) waits for the write lock, all tries together.
WRITE_WAIT_SECONDS = 60.0
_UNIT = "userdesk.unit"


def reading_rows_by_name(engine: Engine) -> Engine:
    """ENGINE, its results' rows read by name or position only (`row.email`, `row[0]`).

    A Core statement built anew per request (a page's WHERE and ORDER BY) runs from
    SQLAlchemy's compiled cache, and its result is then adapted to the new statement's
    column objects, so that `row._mapping[User.email]` works: a dict merge that compares
    columns with `==`, which builds SQL expressions, a tenth of the Users list's time.
    Nothing here reads rows by column object, so the ORM's own setting is taken for every
    statement of a session.
    """
    return engine.execution_options(_result_disable_adapt_to_context=True)


def is_busy(exc: OperationalError) -> bool:
    """EXC is SQLite's "database is locked" (another process holds the write lock)."""
    return "database is locked" in str(exc.orig) or "database is busy" in str(exc.orig)


class Database:
    """An engine, the session factory bound to it, its writers' queue, and the read
    replicas of the primary, if any (`db.replicas`)."""

    def __init__(self, engine: Engine, replicas: Replicas | None = None) -> None:
        self.engine = engine
        self.sessions = sessionmaker(bind=reading_rows_by_name(engine), expire_on_commit=False)
        self.writers = WriteLock.for_dialect(engine.dialect.name)
        self.replicas = replicas
        self._readers: dict[int, Database] = {}  # by replica: each one's Database

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(make_engine(url))

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The primary of SETTINGS and its replicas (USERDESK_DATABASE_REPLICA_URLS).

        Replicas of a SQLite primary are refused with an error in the log and not used:
        SQLite has no streaming replication to read from.
        """
        engine = make_engine(settings.database_url)
        urls = settings.database_replica_urls
        if not urls:
            return cls(engine)
        if engine.dialect.name != "postgresql":
            log.error(
                "USERDESK_DATABASE_REPLICA_URLS is ignored: the primary (USERDESK_DATABASE_URL)"
                " is %s, and read replicas need a PostgreSQL primary",
                engine.dialect.name,
            )
            return cls(engine)
        return cls(
            engine,
            replicas_of(
                urls,
                max_lag=settings.replica_max_lag_seconds,
                read_your_writes=settings.replica_read_your_writes_seconds,
            ),
        )

    def reading(self, *, principal: str, cookie: str | None = None) -> Database:
        """Where a read-only unit of PRINCIPAL may read: a healthy replica's Database
        (one transaction of its own, no writers' queue), or this one."""
        if self.replicas is None or self.replicas.wrote_lately(principal, cookie):
            return self
        replica = self.replicas.pick()
        if replica is None:
            return self
        found = self._readers.get(id(replica))
        if found is None:
            found = self._readers[id(replica)] = Database(replica.engine)
        return found

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def unit_of_work(self, *, write: bool = True, background: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises.

        WRITE says the transaction will change data: it then waits its turn among the
        process's writers (blocking this thread; BACKGROUND work, the worker's, lets the
        requests go first) and, on SQLite, takes the write lock at its start instead of
        failing later. Not for the event loop: request handlers use `writing()`.
        """
        if not write:
            with self._unit() as session:
                yield session
            return
        self.writers.acquire(timeout=WRITE_WAIT_SECONDS, background=background)
        try:
            with self._unit() as session:
                _begin_writing(session, wait=WRITE_WAIT_SECONDS)
                yield session
        finally:
            self.writers.release()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[Session]:
        """`unit_of_work(write=True)` for the event loop: the turn is awaited, never
        blocking the loop (nor taking a thread while queued)."""
        writers = self.writers
        await writers.acquire_async()
        state = {"held": True}
        try:
            with self._unit() as session:
                session.info[_UNIT] = (writers, state)
                await _begin_writing_off_loop(session)
                yield session
        finally:
            if state["held"]:
                writers.release()

    @contextmanager
    def _unit(self) -> Iterator[Session]:
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
        if self.replicas is not None:
            self.replicas.dispose()


def replicas_of(urls: Sequence[str], *, max_lag: float, read_your_writes: float) -> Replicas:
    """The replicas at URLS, each connected to within CONNECT_TIMEOUT seconds."""
    engines = [make_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT}) for url in urls]
    return Replicas(engines, max_lag=max_lag, read_your_writes=read_your_writes)


async def _begin_writing_off_loop(session: Session) -> None:
    """`_begin_writing` for the event loop: no writer of this process holds the database
    now, another process may, so SQLite's wait for it (busy_timeout) happens in a thread."""
    if session.get_bind().dialect.name == "sqlite":
        await run_in_threadpool(_begin_writing, session, wait=0.0)


def _begin_writing(session: Session, *, wait: float) -> None:
    """On SQLite, begin SESSION's transaction holding the write lock, trying again for
    WAIT seconds beyond the first busy_timeout if another process holds it."""
    if session.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL locks rows, not the database: begun by the first statement
    deadline = time.monotonic() + wait
    while True:
        try:
            session.connection(execution_options={BEGIN_OPTION: "IMMEDIATE"})
            return
        except OperationalError as exc:
            session.rollback()
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise


# Slow work of requests runs one at a time: CPU-bound threads side by side take the GIL
# from the event loop (each database round trip of a request hands it over, and getting it
# back takes up to the switch interval per thread in the queue).
_SLOW_WORK = CapacityLimiter(1)


async def outside_transaction(db: Session, work: Callable[[], T]) -> T:
    """Run WORK in a thread between two transactions of a request's unit of work: what DB
    did so far is committed and its turn among writers let go while WORK runs (an upload
    to read or parse, seconds of CPU; one such WORK at a time in the process), then a new
    transaction begins, as the first did.

    WORK must not use DB; it may open units of its own.
    """
    unit = db.info.get(_UNIT)
    db.commit()
    if unit is None:  # a read-only unit
        return await to_thread.run_sync(work, limiter=_SLOW_WORK)
    writers, state = unit
    state["held"] = False
    writers.release()
    try:
        return await to_thread.run_sync(work, limiter=_SLOW_WORK)
    finally:
        await writers.acquire_async()
        state["held"] = True
        await _begin_writing_off_loop(db)


def unless_locked(key: InstrumentedAttribute[int], value: int) -> ColumnElement[bool]:
    """The row whose KEY (its primary key) is VALUE, unless another transaction holds it
    locked (FOR NO KEY UPDATE SKIP LOCKED; SQLite has no row locks, nor the clause): a hint that
    `best_effort` writes must not wait. The authentication that writes one runs on the
    event loop, and a wait for a row lock there stops every request of the process,
    the one holding the lock too (16 clients with one API key hung a server for good)."""
    held = select(key).where(key == value).with_for_update(skip_locked=True, key_share=True)
    return key.in_(held.scalar_subquery())


@contextmanager
def best_effort(db: Session) -> Iterator[None]:
    """Writes that a read-only request makes if the write lock is free, and otherwise
    drops (hints such as last-seen times): such a request must not fail because another
    writer got there first."""
    try:
        with db.begin_nested():
            yield
    except OperationalError:
        return
