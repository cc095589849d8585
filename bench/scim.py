"""Figures of issue 21: SCIM filters and provisioning at 1 M users on SQLite.

- `GET /scim/v2/Users?filter=userName eq "…"` (an address that is there, one that is not)
  and `filter=name.familyName sw "…"` (the commonest family name's first letters, a
  family name only one person has), p95 of server-side time (Server-Timing) over ROUNDS;
- provisioning: 10,000 users by POST /scim/v2/Users (CONCURRENCY connections), then
  10,000 by POST /scim/v2/Bulk in requests of 1,000 operations, from one server process;
  then 10,000 by POST again from `userdesk serve`'s default, a process per core (their
  writes take turns on the one SQLite file); users a second by the clock of the client
  (HTTP, parsing and the answer included).

Reads and writes run on a copy of the bench database (in a temporary folder: the
original is only read, and keeps its million), with servers of their own. The SCIM token comes
from `userdesk scim-token create --name bench`, as an administrator would make it.

    BENCH_SCIM_DB=/tmp/users-2000.db .venv/bin/python -m bench.scim
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.churn_scoring import _copy as copy_database
from bench.common import (
    CONCURRENCY,
    ROUNDS,
    USERDESK,
    env,
    pct,
    run,
    serving,
    timed,
)

Row = tuple[str, str, str]
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
BULK_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
MEDIA = "application/scim+json"
POSTED = int(os.environ.get("BENCH_SCIM_USERS", "10000"))  # users by POST, and by Bulk
BULK_SIZE = 1000  # operations of one Bulk request
POSTS_SCRIPT = Path(__file__).resolve().parent / "wrk" / "scim_posts.lua"
READ_ROUNDS = max(ROUNDS * 10, 20)  # filters are quick: more samples for a p95


def server(workers: int | None = 1) -> list[str]:
    """The server command: WORKERS processes (None: `userdesk serve`'s default, a process
    per core)."""
    processes = ["--workers", str(workers)] if workers is not None else []
    return [USERDESK, "serve", *processes, "--no-access-log", "--no-worker"]


def _names(path: Path) -> dict[str, str]:
    """What the filters look for, read from the database at PATH: an address that is
    there, the commonest family name and a family name one person has."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        email = conn.execute("SELECT email FROM users ORDER BY id DESC LIMIT 1").fetchone()[0]
        by_count = "SELECT last_name FROM users WHERE last_name != '' GROUP BY last_name "
        common = conn.execute(by_count + "ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
        rare = conn.execute(by_count + "HAVING count(*) = 1 LIMIT 1").fetchone()
        rare = rare[0] if rare else conn.execute(by_count + "ORDER BY count(*)").fetchone()[0]
    return {"email": email, "common": common, "rare": rare}


def _filter_path(expression: str) -> str:
    return str(httpx.URL("/scim/v2/Users", params={"filter": expression, "count": "50"}))


def read_rows(path: Path) -> list[Row]:
    """The two filters' p95 on the database at PATH, for a common and a rare value each."""
    url = f"sqlite:///{path}"
    names = _names(path)
    token = run([USERDESK, "scim-token", "create", "--name", "bench"], url)
    headers = {"Authorization": f"Bearer {token}", "Accept": MEDIA}
    eq_paths = {
        "there": _filter_path(f'userName eq "{names["email"]}"'),
        "not there": _filter_path('userName eq "nobody-at-all@bench.invalid"'),
    }
    sw_paths = {
        f"common ({names['common'][:3]}…)": _filter_path(
            f'name.familyName sw "{names["common"][:3]}"'
        ),
        f"rare ({names['rare']})": _filter_path(f'name.familyName sw "{names["rare"]}"'),
    }
    with (
        serving(server(), env(url), "/readyz") as base,
        httpx.Client(base_url=base, headers=headers, timeout=60) as client,
    ):
        eq = timed(client, eq_paths, READ_ROUNDS)
        sw = timed(client, sw_paths, READ_ROUNDS)
    return [
        *(
            (f"SCIM `userName eq` ({name})", f"p95 {pct(samples, 95):.1f} ms", "p95 ≤ 10 ms")
            for name, samples in eq.items()
        ),
        *(
            (f"SCIM `name.familyName sw` {name}", f"p95 {pct(samples, 95):.1f} ms", "p95 ≤ 25 ms")
            for name, samples in sw.items()
        ),
    ]


def _user(n: int, tag: str) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA],
        "userName": f"scim-{tag}-{n}@bench-scim.example",
        "externalId": f"{tag}-{n}",
        "name": {"givenName": f"Given{n}", "familyName": f"Family{n % 997}"},
    }


def _post_all(base: str, headers: dict[str, str], tag: str) -> tuple[int, float]:
    """Users created by POSTing POSTED over CONCURRENCY connections, and the seconds from
    the first request to the last answer: by wrk where it is installed (its client costs
    a fraction of a millisecond a request, where httpx's two would take most of one of
    the machine's two cores from the server), else by httpx."""
    if not shutil.which("wrk"):
        return POSTED, asyncio.run(_post_all_httpx(base, headers, tag))
    args = ["wrk", "-t1", f"-c{CONCURRENCY}", "-d3600s", "-s", str(POSTS_SCRIPT)]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    # The script writes its line once POSTED are answered; wrk would run on to its -d.
    with subprocess.Popen(
        [*args, base, "--", tag, str(POSTED)], stdout=subprocess.PIPE, text=True
    ) as wrk:
        assert wrk.stdout is not None
        for line in wrk.stdout:
            if line.startswith(("answered ", "first-error ")):
                break
        wrk.terminate()
    counts = re.fullmatch(r"answered (\d+) created (\d+) seconds ([\d.]+)\n", line)
    if counts is None or int(counts[2]) != POSTED:
        raise RuntimeError(f"POST /Users under wrk: {line}")
    return POSTED, float(counts[3])


async def _post_all_httpx(base: str, headers: dict[str, str], tag: str) -> float:
    """Seconds to POST POSTED users over CONCURRENCY connections with httpx."""
    numbers = iter(range(POSTED))

    async def worker(client: httpx.AsyncClient) -> None:
        for n in numbers:
            response = await client.post("/scim/v2/Users", json=_user(n, tag))
            if response.status_code != 201:
                raise RuntimeError(f"POST /Users answered {response.status_code}: {response.text}")

    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
        return time.perf_counter() - started


def _bulk_all(client: httpx.Client, tag: str) -> float:
    """Seconds to create POSTED users by Bulk, BULK_SIZE operations a request."""
    started = time.perf_counter()
    for first in range(0, POSTED, BULK_SIZE):
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": f"u{n}", "data": _user(n, tag)}
            for n in range(first, min(first + BULK_SIZE, POSTED))
        ]
        response = client.post(
            "/scim/v2/Bulk", json={"schemas": [BULK_SCHEMA], "Operations": operations}
        )
        response.raise_for_status()
        failed = [op for op in response.json()["Operations"] if op.get("status") != "201"]
        if failed:
            raise RuntimeError(f"Bulk: {len(failed)} operations failed, the first {failed[0]}")
    return time.perf_counter() - started


def write_rows(copy: Path, tmp: Path) -> list[Row]:
    """Users a second by POST and by Bulk, into COPY (a copy of the bench's database, in
    the temporary folder TMP): by POST
    from one server process, then from `userdesk serve`'s default (a process per core,
    their writes to the one SQLite file taking turns: a "database is locked" would be a
    503, and the bench stops on anything but a 201); by Bulk from one process."""
    processes = os.cpu_count() or 1
    url = f"sqlite:///{copy}"
    token = run([USERDESK, "scim-token", "create", "--name", "bench"], url)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": MEDIA, "Accept": MEDIA}
    tag = str(int(time.time()))
    environ = {**env(url), "USERDESK_VAR_DIR": str(tmp)}
    with serving(server(), environ, "/readyz") as base:
        posted, posted_seconds = _post_all(base, headers, "post" + tag)
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            bulked = _bulk_all(client, "bulk" + tag)
    with serving(server(None), environ, "/readyz") as base:
        posted_all, posted_all_seconds = _post_all(base, headers, "posts" + tag)
    return [
        (
            f"SCIM: {POSTED:,} users by POST /Users ({CONCURRENCY} connections, 1 process)",
            f"{posted / posted_seconds:,.0f} users/s ({posted_seconds:.1f} s)",
            "≥ 500 users/s",
        ),
        (
            f"SCIM: {POSTED:,} users by POST /Users ({CONCURRENCY} connections, "
            f"{processes} processes: `userdesk serve`'s default, writes taking turns on "
            "one SQLite file, no 'database is locked')",
            f"{posted_all / posted_all_seconds:,.0f} users/s ({posted_all_seconds:.1f} s)",
            "≥ 500 users/s",
        ),
        (
            f"SCIM: {POSTED:,} users by Bulk, {BULK_SIZE:,} operations a request",
            f"{POSTED / bulked:,.0f} users/s ({bulked:.1f} s)",
            "≥ 2,000 users/s",
        ),
    ]


def rows(path: Path) -> list[Row]:
    """Every SCIM figure on the SQLite database at PATH, measured on a copy of it (a
    token is made, the server migrates and logs its requests, users are added: never in
    the bench's own database)."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = copy_database(path, Path(tmp))
        return [*read_rows(copy), *write_rows(copy, Path(tmp))]


if __name__ == "__main__":
    from bench.run import section

    section("SCIM (SQLite)", rows(Path(os.environ["BENCH_SCIM_DB"])))
