"""The writers' queue: first come first served for threads and tasks alike, background
writers after the others for a while, and no wait that ends badly leaves it stuck."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, text

from userdesk.db import writers
from userdesk.db.session import Database
from userdesk.db.writers import WriteLock, WriteLockTimeout

T = TypeVar("T")


def run_in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run COROUTINE to its end on a loop of its own, in a thread of its own: the browser
    tests' Playwright keeps an event loop running in the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _queue_up(lock: WriteLock, name: str, order: list[str], *, background: bool = False) -> None:
    lock.acquire(timeout=10, background=background)
    order.append(name)
    lock.release()


def _start_waiting(
    lock: WriteLock, name: str, order: list[str], *, background: bool = False
) -> threading.Thread:
    """A thread that asks for LOCK (held elsewhere) and notes when it got it."""
    thread = threading.Thread(
        target=_queue_up, args=(lock, name, order), kwargs={"background": background}
    )
    thread.start()
    time.sleep(0.05)  # it is in the queue before the next one asks
    return thread


def test_waiters_get_the_lock_in_the_order_they_asked_it() -> None:
    """Three threads that queue behind a holder get the lock first come first served."""
    lock, order = WriteLock(), []
    lock.acquire()
    threads = [_start_waiting(lock, name, order) for name in ("a", "b", "c")]
    lock.release()
    for thread in threads:
        thread.join(timeout=10)
    assert order == ["a", "b", "c"]


def test_a_writer_that_asks_again_at_once_goes_behind_those_waiting() -> None:
    """Released, the lock passes to the waiter: the releasing thread cannot take it back
    before it, however fast it asks."""
    lock, order = WriteLock(), []
    lock.acquire()
    waiting = _start_waiting(lock, "waiter", order)
    lock.release()
    lock.acquire(timeout=10)
    order.append("again")
    lock.release()
    waiting.join(timeout=10)
    assert order == ["waiter", "again"]


def test_a_background_writer_lets_the_others_go_first() -> None:
    """The worker, queued first, gets the lock after the request that asked after it."""
    lock, order = WriteLock(), []
    lock.acquire()
    worker = _start_waiting(lock, "worker", order, background=True)
    request = _start_waiting(lock, "request", order)
    lock.release()
    for thread in (worker, request):
        thread.join(timeout=10)
    assert order == ["request", "worker"]


def test_a_background_writer_goes_first_once_it_has_waited_long_enough(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past BACKGROUND_PATIENCE the worker takes its turn, requests waiting or not."""
    monkeypatch.setattr(writers, "BACKGROUND_PATIENCE", 0.05)
    lock, order = WriteLock(), []
    lock.acquire()
    worker = _start_waiting(lock, "worker", order, background=True)
    request = _start_waiting(lock, "request", order)
    time.sleep(0.1)
    lock.release()
    for thread in (worker, request):
        thread.join(timeout=10)
    assert order == ["worker", "request"]


def test_a_wait_that_times_out_leaves_the_queue_as_it_was() -> None:
    """A thread that gives up is not handed the lock later."""
    lock, order = WriteLock(), []
    lock.acquire()
    with pytest.raises(WriteLockTimeout):
        lock.acquire(timeout=0.05)
    after = _start_waiting(lock, "after", order)
    lock.release()
    after.join(timeout=10)
    assert order == ["after"]
    assert not lock.held


def test_a_task_waits_without_blocking_the_event_loop() -> None:
    """While a task waits for the lock a thread holds, the loop runs other tasks."""
    lock = WriteLock()
    lock.acquire()
    ticks: list[int] = []

    async def main() -> None:
        async def tick() -> None:
            for n in range(5):
                ticks.append(n)
                await asyncio.sleep(0.01)

        waiting = asyncio.ensure_future(lock.acquire_async())
        await tick()
        assert not waiting.done()
        threading.Timer(0.01, lock.release).start()
        await asyncio.wait_for(waiting, timeout=10)
        lock.release()

    run_in_own_loop(main())
    assert ticks == [0, 1, 2, 3, 4]
    assert not lock.held


@pytest.mark.parametrize("granted", [False, True], ids=["while-queued", "as-it-was-granted"])
def test_a_cancelled_wait_passes_the_lock_on(granted: bool) -> None:
    """A request cancelled while it waits (the client went away) leaves the lock to the
    next waiter, whether or not the lock had just been handed to it."""
    lock = WriteLock()
    lock.acquire()

    async def main() -> bool:
        cancelled = asyncio.ensure_future(lock.acquire_async())
        await asyncio.sleep(0.01)
        after = asyncio.ensure_future(lock.acquire_async())
        await asyncio.sleep(0.01)
        if granted:
            lock.release()  # handed to CANCELLED, which is cancelled before it runs
        cancelled.cancel()
        if not granted:
            await asyncio.sleep(0.01)
            lock.release()
        await asyncio.wait_for(after, timeout=10)
        lock.release()
        return cancelled.cancelled()

    assert run_in_own_loop(main())
    assert not lock.held


def test_two_writers_on_postgresql_do_not_wait_on_each_others_turn(engine: Engine) -> None:
    """PostgreSQL locks rows: two units that will write are open at once, neither queued
    behind the other (on SQLite the second waits for the first: one write lock)."""
    database = Database(engine)
    both_in = threading.Barrier(2, timeout=5)

    def write(_: int) -> bool:
        with database.unit_of_work(background=True) as db:
            db.execute(text("SELECT 1"))
            try:
                both_in.wait()
            except threading.BrokenBarrierError:
                return False
            return True

    try:
        if engine.dialect.name != "postgresql":
            assert database.writers.serial
            return
        assert not database.writers.serial
        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(write, range(2))) == [True, True]
    finally:
        database.dispose()


def test_a_lock_that_is_not_serial_lets_every_writer_in() -> None:
    """Not serial (PostgreSQL's), the lock lets threads and tasks in while it is held."""
    lock = WriteLock.for_dialect("postgresql")
    lock.acquire(timeout=0.1)
    lock.acquire(timeout=0.1, background=True)
    run_in_own_loop(lock.acquire_async())
    lock.release()
    assert not lock.held
    assert WriteLock.for_dialect("sqlite").serial
