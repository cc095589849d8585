"""One server process against two: the list API's throughput while writers keep writing.

`userdesk serve --workers 1` and `userdesk serve --workers 2` run side by side on the same
database; each round measures the one, then the other, with wrk (or httpx) on
`GET /api/v1/users?limit=50` while WRITERS writers PATCH a user's first name each (to a
mark and back), WRITES_PER_SECOND a second together, through the server measured. Rounds
alternate so that a machine shared with other work weighs on both alike: the figure is
the median of the rounds' ratios, beside how many writes failed (a "database is locked"
would be one). The users are left as they were found.

    python -m bench.processes DATABASE_URL API_KEY

runs it alone (the database must not be one that nothing may write to: the PATCHes go
through the API and are undone, but they do write).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import select

from bench.common import CONCURRENCY, ROUNDS, SECONDS, USERDESK, env, free_port, throughput
from userdesk.db.session import Database
from userdesk.users.models import User

WRITERS = 5  # users written to, one writer each, so that a slow answer does not slow the pace
WRITES_PER_SECOND = 10  # all writers together
TARGET_RATIO = 1.6
MARK = "·bench"  # added to the first name, then taken off


@dataclass
class Writes:
    """What the writers did: answers by status, and how many said "database is locked"."""

    statuses: Counter[int] = field(default_factory=Counter)
    locked: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0  # how long the writers wrote
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    @property
    def failed(self) -> int:
        return self.sent - self.statuses[200]

    def note(self, status: int, problem: str | None = None) -> None:
        with self.lock:
            self.statuses[status] += 1
            if problem is not None:
                self.errors.append(problem)
                self.locked += int("database is locked" in problem)


class Writer:
    """PATCHes USER_ID's first name WRITES_PER_SECOND / WRITERS times a second, to
    FIRST+MARK and back, with If-Match, until stopped; ends on FIRST."""

    def __init__(self, base: str, key: str, user: tuple[int, str], writes: Writes) -> None:
        self.client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        self.path = f"/api/v1/users/{user[0]}"
        self.first = user[1]
        self.writes = writes
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="bench-writer", daemon=True)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.client.close()

    def _patch(self, etag: str, name: str) -> tuple[str, bool]:
        """PATCH the first name to NAME: the new ETag (a fresh one after a failure), and
        whether it was changed."""
        try:
            answer = self.client.patch(
                self.path, json={"first_name": name}, headers={"If-Match": etag}
            )
        except httpx.HTTPError as exc:
            self.writes.note(0, repr(exc))
            return self._etag(), False
        if answer.status_code != 200:
            self.writes.note(answer.status_code, f"{answer.status_code} {answer.text[:200]}")
            return self._etag(), False
        self.writes.note(200)
        return answer.headers["etag"], True

    def _etag(self) -> str:
        answer = self.client.get(self.path)
        answer.raise_for_status()
        return answer.headers["etag"]

    def run(self) -> None:
        etag = self._etag()
        marked = False
        pace = WRITERS / WRITES_PER_SECOND
        next_at = time.monotonic()
        while not self.stopping.is_set() or marked:
            etag, changed = self._patch(etag, self.first if marked else self.first + MARK)
            marked ^= changed
            next_at += pace
            self.stopping.wait(max(0.0, next_at - time.monotonic()))


@contextmanager
def writing(base: str, key: str, users: list[tuple[int, str]], writes: Writes) -> Iterator[None]:
    """WRITERS writers at work on the server at BASE for the while; WRITES counts."""
    writers = [Writer(base, key, user, writes) for user in users]
    started = time.monotonic()
    for writer in writers:
        writer.thread.start()
    try:
        yield
    finally:
        for writer in writers:
            writer.stop()
        writes.seconds += time.monotonic() - started


def _users(database_url: str) -> list[tuple[int, str]]:
    """The users the writers change: the first WRITERS, by id, with a first name (not the
    bench's own Administrator: its sign-ins would see the change)."""
    database = Database.from_url(database_url)
    try:
        with database.sessions() as db:
            rows = db.execute(
                select(User.id, User.first_name)
                .where(User.first_name != "", User.email.not_like("bench@%"))
                .order_by(User.id)
                .limit(WRITERS)
            ).all()
            return [(row.id, row.first_name) for row in rows]
    finally:
        database.dispose()


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by process PID and its children (Linux: /proc)."""
    used = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            used += int(fields[11]) + int(fields[12])  # utime, stime
    return used / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    base: str
    pid: int
    log: list[str]  # its output, once it has stopped


@contextmanager
def serving(url: str, processes: int) -> Iterator[Server]:
    """`userdesk serve --workers PROCESSES` on database URL."""
    port = free_port()
    args = [USERDESK, "serve", "--no-access-log", "--no-worker", "--workers", str(processes)]
    log: list[str] = []
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(
            [*args, "--port", str(port)], env=env(url), stdout=out, stderr=subprocess.STDOUT
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"userdesk serve --workers {processes} did not come up")
                time.sleep(0.2)
            yield Server(base, process.pid, log)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)  # a busy machine takes a while to stop two processes
            out.seek(0)
            log.extend(out.read().splitlines())


def process_rows(url: str, key: str, database_url: str) -> list[tuple[str, str, str]]:
    """(case, figure, target) rows: the list API served by one process and by two, with
    WRITES_PER_SECOND PATCHes a second beside. URL is the database the servers serve; KEY
    an Administrator's API key on it; DATABASE_URL the same database as the bench reads
    it, to pick the users to write to and check they are left as they were."""
    users = _users(database_url)
    auth = {"Authorization": f"Bearer {key}"}
    rates: dict[int, list[float]] = {1: [], 2: []}
    cores: dict[int, list[float]] = {1: [], 2: []}  # CPU the servers got, in cores
    writes = {1: Writes(), 2: Writes()}
    with ExitStack() as stack:
        servers = {n: stack.enter_context(serving(url, n)) for n in rates}
        for server in servers.values():  # every process, and the database's pages, warmed up
            throughput(f"{server.base}/api/v1/users?limit=50", auth)
        for _ in range(ROUNDS):
            for processes, server in servers.items():
                with writing(server.base, key, users, writes[processes]):
                    used, started = cpu_seconds(server.pid), time.monotonic()
                    rates[processes].append(
                        throughput(f"{server.base}/api/v1/users?limit=50", auth)
                    )
                    cores[processes].append(
                        (cpu_seconds(server.pid) - used) / (time.monotonic() - started)
                    )
    for processes, server in servers.items():  # a 500 is logged, not answered, with its cause
        writes[processes].locked += sum("database is locked" in line for line in server.log)
    left = _users(database_url)
    if left != users:
        raise RuntimeError(f"the users written to were left as {left}, not {users}")
    ratios = [two / one if one else 0.0 for one, two in zip(rates[1], rates[2], strict=True)]
    case = f"GET /api/v1/users?limit=50, {CONCURRENCY} connections, {SECONDS} s"
    load = os.getloadavg()[0]
    rows = [
        (
            f"{case}, 1 server process (median of {ROUNDS}; load average {load:.1f})",
            f"{statistics.median(rates[1]):.0f} req/s on {statistics.median(cores[1]):.2f} cores",
            "(the reference)",
        ),
        (
            f"{case}, 2 server processes (median of {ROUNDS} rounds' ratios)",
            f"{statistics.median(rates[2]):.0f} req/s on {statistics.median(cores[2]):.2f} "
            f"cores, {statistics.median(ratios):.2f} x one process ("
            + ", ".join(f"{ratio:.2f}" for ratio in ratios)
            + ")",
            f"≥ {TARGET_RATIO} x one process",
        ),
        (
            "the same, requests per CPU second the servers got (1 process / 2 processes)",
            " / ".join(
                f"{statistics.median(r / c for r, c in zip(rates[n], cores[n], strict=True)):.0f}"
                for n in (1, 2)
            ),
            "alike: the second process adds its core's worth, no more waiting",
        ),
    ]
    for processes, done in writes.items():
        rows.append(
            (
                f"PATCH {WRITES_PER_SECOND} times a second beside it ({WRITERS} users), "
                f"{processes} process" + ("es" if processes > 1 else ""),
                f"{done.sent} sent ({done.sent / done.seconds:.1f}/s), {done.failed} failed, "
                f'{done.locked} "database is locked"'
                + (f" (first: {done.errors[0]})" if done.errors else ""),
                "0 failed",
            )
        )
    return rows


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m bench.processes DATABASE_URL API_KEY")
    url, key = sys.argv[1], sys.argv[2]
    print("| case | measured | target |")
    print("|---|---|---|")
    for case, figure, target in process_rows(url, key, url):
        print(f"| {case} | {figure} | {target} |")


if __name__ == "__main__":
    main()
