"""One writer at a time in this process, first come first served.

SQLite has one write lock per database. Left to itself it hands the lock to whichever
waiter polls at the right moment (its busy handler sleeps and retries), and a waiter
blocks its thread: on the event loop, that is every request. So the writers of a process
queue here instead: request handlers await their turn without blocking the loop, the
worker's and the CLI's threads block, and the lock goes to the waiter that came first,
whichever kind it is, but for background writers (the worker), which let the others go
first for a while. The database's own lock then only orders this process against others
(the other server processes of `userdesk serve --workers N`, a `userdesk worker`, a CLI
import), under `busy_timeout`: a writer takes it at its start (`BEGIN IMMEDIATE`) and
waits for the other process's to end; a request still kept out after that answers 503
with Retry-After (web.app). This queue holds no state that another process needs.

PostgreSQL locks rows, not the database: its writers do not queue here (`for_dialect`), so
that the worker's long steps (a churn scoring, an import) and the requests, the outbox and
the webhooks beside them write at once, each waiting only on the rows it shares with
another.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field


class WriteLockTimeout(TimeoutError):
    """The write lock did not come free in time."""


@dataclass(eq=False)
class _Waiter:
    background: bool
    since: float = field(default_factory=time.monotonic)
    granted: bool = False
    event: threading.Event | None = None  # a thread's
    future: asyncio.Future[None] | None = None  # a task's
    loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        if self.event is not None:
            self.event.set()
        elif self.future is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(_resolve, self.future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# How long a background writer (the worker) lets writers that someone waits for (requests)
# go first before it takes its turn anyway.
BACKGROUND_PATIENCE = 2.0


class WriteLock:
    """A lock for threads and asyncio tasks alike, taken in the order asked; released, it
    passes straight to the next waiter (nobody can barge in between, so a writer that
    loops cannot starve the others). Background writers let the others go first, for
    BACKGROUND_PATIENCE seconds at most."""

    def __init__(self, *, serial: bool = True) -> None:
        self.serial = serial  # False: every writer goes at once (PostgreSQL)
        self._mutex = threading.Lock()
        self._held = False
        self._waiting: deque[_Waiter] = deque()
        self._background: deque[_Waiter] = deque()

    @classmethod
    def for_dialect(cls, dialect: str) -> WriteLock:
        """The writers' queue of a database of DIALECT: one at a time on SQLite only."""
        return cls(serial=dialect == "sqlite")

    @property
    def held(self) -> bool:
        return self._held

    def _take_or_queue(self, waiter: _Waiter) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            (self._background if waiter.background else self._waiting).append(waiter)
            return False

    def _leave(self, waiter: _Waiter) -> bool:
        """Take WAITER out of its queue; False when it was given the lock already."""
        with self._mutex:
            if waiter.granted:
                return False
            (self._background if waiter.background else self._waiting).remove(waiter)
            return True

    def acquire(self, timeout: float | None = None, *, background: bool = False) -> None:
        """Wait (blocking this thread) for the lock; BACKGROUND lets others go first.

        Raises:
            WriteLockTimeout: TIMEOUT seconds went by first.
        """
        if not self.serial:
            return
        event = threading.Event()
        waiter = _Waiter(background, event=event)
        if self._take_or_queue(waiter) or event.wait(timeout):
            return
        if self._leave(waiter):
            raise WriteLockTimeout(f"no write lock within {timeout} s")

    async def acquire_async(self) -> None:
        """Wait for the lock without blocking the event loop; a cancelled wait leaves the
        lock as it found it."""
        if not self.serial:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = _Waiter(False, future=future, loop=loop)
        if self._take_or_queue(waiter):
            return
        try:
            await future
        except BaseException:
            if not self._leave(waiter):  # handed over as the wait was cancelled: pass it on
                self.release()
            raise

    def release(self) -> None:
        """Give the lock to the next waiter, or free it."""
        if not self.serial:
            return
        with self._mutex:
            later = self._background
            if later and (
                not self._waiting or time.monotonic() - later[0].since > BACKGROUND_PATIENCE
            ):
                waiter = later.popleft()
            elif self._waiting:
                waiter = self._waiting.popleft()
            else:
                self._held = False
                return
            waiter.granted = True  # still held: it changes hands
        waiter.wake()
