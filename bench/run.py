"""The benchmark: a demo database, the real server and a bare baseline on loopback, and
the figures of issue 3 printed as a table.

Server-side times come from the Server-Timing header (time to the response's first
byte inside the app); throughput is measured over HTTP with wrk when it is installed
(apt-get install wrk), else with an httpx client.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import select, text

from bench import flows
from userdesk.db.engine import make_engine
from userdesk.db.paging import encode_cursor
from userdesk.users.service import SORTS

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
BIN = Path(sys.executable).parent
USERDESK = str(BIN / "userdesk")
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ADMIN_EMAIL = "bench@bench.example"
ADMIN_PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway account in a bench database

LONG_SEARCHES = (
    "son status:active",
    "mar verified:yes",
    "example.org status:pending",
    "ell team:Sales",
    "ann lee",
    "müller",
    "oliv group:VIP",
)
SHORT_SEARCHES = ("a", "el", "zq", "x status:active", "jo verified:no")


def _env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "USERDESK_DATABASE_URL": database_url,
        "USERDESK_VAR_DIR": str(DATA),
        "USERDESK_SERVER_TIMING": "1",  # off by default: it would help guess who has an account
    }


def _run(args: Sequence[str], database_url: str) -> str:
    out = subprocess.run(args, env=_env(database_url), check=True, capture_output=True, text=True)
    return out.stdout.strip()


def ensure_sqlite_database(users: int) -> tuple[Path, float | None]:
    """A demo database with USERS people in bench/data, and its build time if built now."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"users-{users}.db"
    if path.exists():
        return path, None
    partial = DATA / f"users-{users}.partial.db"
    for leftover in DATA.glob(f"{partial.name}*"):
        leftover.unlink()
    url = f"sqlite:///{partial}"
    started = time.perf_counter()
    subprocess.run([USERDESK, "migrate"], env=_env(url), check=True)
    subprocess.run(
        [USERDESK, "demo", "--users", str(users), "--seed", "1"], env=_env(url), check=True
    )
    elapsed = time.perf_counter() - started
    connection = sqlite3.connect(partial)  # its `with` commits, it does not close
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    partial.rename(path)
    for leftover in DATA.glob(f"{partial.name}*"):
        leftover.unlink()
    return path, elapsed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(args: Sequence[str], env: dict[str, str], health: str) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [*args, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + health).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{args[0]} did not come up: {process.stderr!r}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def server_ms(response: httpx.Response) -> float:
    match = re.search(r"dur=([\d.]+)", response.headers.get("server-timing", ""))
    if not match:
        raise RuntimeError(f"no Server-Timing on {response.request.url}")
    return float(match.group(1))


def timings(client: httpx.Client, paths: Sequence[str], requests: int = REQUESTS) -> list[float]:
    """Server-side milliseconds of REQUESTS requests spread over PATHS, after a warm-up."""
    for path in paths:
        for _ in range(3):
            client.get(path).raise_for_status()
    samples = []
    for i in range(requests):
        response = client.get(paths[i % len(paths)])
        response.raise_for_status()
        samples.append(server_ms(response))
    return samples


def pct(samples: list[float], p: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[p - 1]


def throughput(url: str, headers: dict[str, str]) -> float:
    """Requests per second on URL with CONCURRENCY connections for SECONDS."""
    if shutil.which("wrk"):
        args = ["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{SECONDS}s"]
        for name, value in headers.items():
            args += ["-H", f"{name}: {value}"]
        out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
        return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return asyncio.run(_httpx_throughput(url, headers))


async def _httpx_throughput(url: str, headers: dict[str, str]) -> float:
    done = 0
    stop = time.perf_counter() + SECONDS

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            (await client.get(url)).raise_for_status()
            done += 1

    async with httpx.AsyncClient(headers=headers) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
        return done / (time.perf_counter() - started)


def sign_in(client: httpx.Client) -> None:
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token}
    )
    if response.status_code != 303:
        raise RuntimeError("the bench admin could not sign in")


ALIKE_ROUNDS = 30  # timed requests per kind of address
ALIKE_WARM_UP = 5


def _form_token(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    return page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def _alike(send: Callable[[str, str], httpx.Response], known: list[str]) -> str | None:
    """Median wall time of SEND for the KNOWN addresses and as many unknown ones, taken in
    turns, each request from an address of its own (uvicorn believes X-Forwarded-For from
    loopback), so that no per-IP limit is met."""
    rounds = ALIKE_ROUNDS + ALIKE_WARM_UP
    if len(known) < rounds:
        return None
    unknown = [f"nobody-{time.time_ns()}-{n}@example.com" for n in range(rounds)]
    samples: dict[str, list[float]] = {"known": [], "unknown": []}
    run = time.time_ns() // 1000 % 250  # another network at each run: per-IP limits last
    for n in range(rounds):
        order = [("known", known[n]), ("unknown", unknown[n])]
        for kind, email in order if n % 2 else order[::-1]:
            ip = f"10.{run}.{n}.{1 + (kind == 'known')}"
            started = time.perf_counter()
            response = send(email, ip)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:  # 429: the known addresses' hourly limits
                return f"not measured: {response.request.url.path} answered {response.status_code}"
            if n >= ALIKE_WARM_UP:
                samples[kind].append(elapsed)
    k, u = statistics.median(samples["known"]), statistics.median(samples["unknown"])
    return f"known {k:.1f} ms, unknown {u:.1f} ms: ratio {max(k, u) / min(k, u):.2f}"


def enumeration_rows(base: str, database_url: str) -> list[Row]:
    """How much longer an anonymous answer takes for an address with an account than for one
    without (or the reverse): /password/forgot and /signup, medians of 30 each, over HTTP."""
    slug, known, was = _open_registration(database_url)
    rows = []
    try:
        with httpx.Client(base_url=base, follow_redirects=False) as client:
            token = _form_token(client, "/password/forgot")

            def forgot(email: str, ip: str) -> httpx.Response:
                return client.post(
                    "/password/forgot",
                    data={"email": email, "csrf_token": token},
                    headers={"X-Forwarded-For": ip},
                )

            def signup(email: str, ip: str) -> httpx.Response:
                data = {"org": slug, "email": email, "first_name": "B", "csrf_token": token}
                return client.post("/signup", data=data, headers={"X-Forwarded-For": ip})

            half = len(known) // 2
            for case, send, emails in (
                ("password/forgot known/unknown median ratio", forgot, known[:half]),
                ("signup registered/new median ratio", signup, known[half:]),
            ):
                figure = _alike(send, emails)
                if figure is not None:
                    rows.append(Row(case, figure, "< 1.3"))
    finally:
        _open_registration(database_url, restore=was)
    return rows


def _open_registration(
    database_url: str, restore: str | None = None
) -> tuple[str, list[str], str | None]:
    """Open registration in the first organization (or set it back to RESTORE); its slug,
    the addresses of 70 of its active users and the policy it had. The known addresses are
    the same at each run: `make bench` more than three times an hour meets their limits."""
    from userdesk.access.rules import system_actor
    from userdesk.db.session import Database
    from userdesk.organizations import service as organizations
    from userdesk.organizations.models import Organization

    database = Database.from_url(database_url)
    try:
        with database.unit_of_work() as db:
            organization = db.scalars(select(Organization).order_by(Organization.id)).first()
            if organization is None:
                return "", [], None
            was = organizations.registration_policy(organization).value
            actor = system_actor(organization.id)
            organizations.update_settings(db, actor=actor, registration=restore or "open")
            emails = db.scalars(
                text(
                    "SELECT email FROM users WHERE organization_id = :org AND status = 'active' "
                    "ORDER BY id LIMIT :n"
                ),
                {"org": organization.id, "n": 2 * (ALIKE_ROUNDS + ALIKE_WARM_UP)},
            ).all()
            return organization.slug, list(emails), was
    finally:
        database.engine.dispose()


def users_in(database_url: str) -> int:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        count = int(conn.execute(text("SELECT count(*) FROM users")).scalar_one())
    engine.dispose()
    return count


def cursor_at(database_url: str, page: int, size: int = 50) -> str:
    """The cursor that opens page PAGE of the name-sorted list (found once, with OFFSET)."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT first_name, last_name, id FROM users WHERE organization_id = "
                "(SELECT min(id) FROM organizations) ORDER BY first_name, last_name, id "
                "LIMIT 1 OFFSET :skip"
            ),
            {"skip": (page - 1) * size - 1},
        ).one()
    engine.dispose()
    return encode_cursor(SORTS["name"], list(row))


def ensure_postgres_database(url: str, users: int) -> float | None:
    """Migrate the database at URL and fill it with USERS demo people unless it has them."""
    subprocess.run([USERDESK, "migrate"], env=_env(url), check=True)
    engine = make_engine(url)
    with engine.connect() as conn:
        present = conn.execute(text("SELECT count(*) FROM users")).scalar_one()
    engine.dispose()
    if present >= users:
        return None
    started = time.perf_counter()
    subprocess.run(
        [USERDESK, "demo", "--users", str(users - present), "--seed", "1"],
        env=_env(url),
        check=True,
    )
    elapsed = time.perf_counter() - started
    # What autovacuum would do in time: the visibility map makes index-only counts cheap.
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return elapsed


@dataclass
class Row:
    case: str
    figure: str
    target: str


def main() -> None:
    users = int(os.environ.get("BENCH_USERS", "1000000"))
    path, built = ensure_sqlite_database(users)
    url = f"sqlite:///{path}"
    _run([USERDESK, "migrate"], url)  # a database kept from an older version catches up
    _run([USERDESK, "create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD], url)
    key = _run([USERDESK, "api-key", "create", "--name", "bench", "--role", "Administrator"], url)
    print(f"# Userdesk bench: {users:,} users, SQLite, {os.cpu_count()} cores")
    print(
        "database: reused " + str(path.relative_to(ROOT))
        if built is None
        else f"database: `userdesk demo --users {users}` built it in {built:.0f} s"
    )
    flow_rows = [Row(*row) for row in flows.main(USERDESK, path)]
    print_table(run_cases(url, key, baseline=path))
    print()
    print("# Imports, exports and timelines")
    print_table(flow_rows)
    postgres = os.environ.get("USERDESK_BENCH_POSTGRES_URL")
    if postgres:
        built = ensure_postgres_database(postgres, users)
        _run(
            [USERDESK, "create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD],
            postgres,
        )
        key = _run(
            [USERDESK, "api-key", "create", "--name", "bench", "--role", "Administrator"], postgres
        )
        print()
        print(
            f"# The same on PostgreSQL ({'reused' if built is None else f'built in {built:.0f} s'})"
        )
        print_table(run_cases(postgres, key, baseline=None))


def print_table(rows: list[Row]) -> None:
    print()
    print("| case | measured | target |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {row.case} | {row.figure} | {row.target} |")


def run_cases(url: str, key: str, *, baseline: Path | None) -> list[Row]:
    """The cases of issue 3 against a server on URL; BASELINE is the SQLite file for the
    bare baseline (None: no baseline, throughput alone)."""
    auth = {"Authorization": f"Bearer {key}"}
    # The request path alone: the worker (churn scoring, dashboard counts, on a database
    # that has none yet) would run in the same process; scoring is measured on its own.
    ours = [USERDESK, "serve", "--no-access-log", "--no-worker"]
    bare = [str(BIN / "uvicorn"), "bench.baseline:app", "--no-access-log", "--log-level", "warning"]
    bare_env = {**os.environ, "BENCH_DATABASE": str(baseline), "PYTHONPATH": str(ROOT)}
    rows: list[Row] = []
    with serving(ours, _env(url), "/readyz") as base:
        rows.extend(enumeration_rows(base, url))
        with httpx.Client(base_url=base, follow_redirects=False) as console:
            sign_in(console)
            page = timings(console, ["/console/users?q=status%3Aactive"])
            rows.append(
                Row(
                    "console: first page, status filter, name sort, with counts",
                    f"p50 {pct(page, 50):.1f} ms, p99 {pct(page, 99):.1f} ms",
                    "p99 ≤ 20 ms",
                )
            )
        with httpx.Client(base_url=base, headers=auth) as api:
            both = [
                a + b
                for a, b in zip(
                    timings(api, ["/api/v1/users?q=status%3Aactive"]),
                    timings(api, ["/api/v1/users/counts?q=status%3Aactive"]),
                    strict=True,
                )
            ]
            rows.append(
                Row(
                    "API: the same page plus its counts",
                    f"p50 {pct(both, 50):.1f} ms, p99 {pct(both, 99):.1f} ms",
                    "p99 ≤ 20 ms",
                )
            )
            deepest = max(2, min(10_000, users_in(url) // 50))
            depth = {
                n: timings(api, [f"/api/v1/users?cursor={cursor_at(url, n)}"])
                for n in sorted({2, min(100, deepest), deepest})
            }
            rows.append(
                Row(
                    "deep pages through the cursor (page "
                    + " / ".join(f"{n:,}" for n in depth)
                    + ", p50)",
                    " / ".join(f"{pct(s, 50):.2f}" for s in depth.values()) + " ms",
                    "page 10,000 ≤ 5 ms, flat with depth",
                )
            )
            long_paths = [
                f"/api/v1/users?q={httpx.QueryParams({'q': q})['q']}&sort=-seen"
                for q in LONG_SEARCHES
            ]
            searches = timings(api, long_paths)
            rows.append(
                Row(
                    f"search of 3+ characters, a filter, a sort ({len(LONG_SEARCHES)} queries)",
                    f"p50 {pct(searches, 50):.1f} ms, p95 {pct(searches, 95):.1f} ms",
                    "p95 ≤ 25 ms",
                )
            )
            short = {
                q: timings(api, [f"/api/v1/users?{httpx.QueryParams({'q': q})}"], 20)
                for q in SHORT_SEARCHES
            }
            worst = max(short, key=lambda q: max(short[q]))
            rows.append(
                Row(
                    "search of 1-2 characters (worst query, max)",
                    f"{max(short[worst]):.0f} ms ('{worst}')",
                    "≤ 300 ms",
                )
            )
            started = time.perf_counter()
            # The header comes at once; the rows once the database has sorted them.
            with api.stream("GET", "/api/v1/users/export", timeout=120) as download:
                chunks = download.iter_raw()
                first = next(chunks)
                first_byte = time.perf_counter() - started
                second = next(chunks, b"")
                first_rows = time.perf_counter() - started
                size = len(first) + len(second) + sum(len(chunk) for chunk in chunks)
            rows.append(
                Row(
                    "GET /api/v1/users/export, every user",
                    f"first byte {first_byte * 1000:.0f} ms, first rows {first_rows:.1f} s, "
                    f"{time.perf_counter() - started:.1f} s ({size / 2**20:.0f} MB)",
                    "≤ 10 s, first byte ≤ 200 ms",
                )
            )
            list_url = f"{base}/api/v1/users?limit=50"
            if baseline is None:
                ours_rps = statistics.median(throughput(list_url, auth) for _ in range(ROUNDS))
                rows.append(
                    Row(
                        f"GET /api/v1/users throughput ({CONCURRENCY} connections)",
                        f"{ours_rps:.0f} req/s",
                        "(the bare baseline runs on SQLite only)",
                    )
                )
                return rows
            with serving(bare, bare_env, "/users?limit=1") as bare_base:
                pairs = [
                    (throughput(list_url, auth), throughput(f"{bare_base}/users?limit=50", {}))
                    for _ in range(ROUNDS)
                ]
            ours_rps = statistics.median(p[0] for p in pairs)
            bare_rps = statistics.median(p[1] for p in pairs)
            rows.append(
                Row(
                    f"GET /api/v1/users throughput ({CONCURRENCY} connections, median of {ROUNDS})",
                    f"{ours_rps:.0f} req/s vs bare {bare_rps:.0f} req/s = "
                    f"{ours_rps / bare_rps:.0%}",
                    "≥ 50% of the bare baseline",
                )
            )
    return rows
