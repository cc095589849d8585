"""`make bench`: the figures of issue 17, each printed beside its target, in one run.

A demo database of BENCH_USERS people (built once into bench/data/ by `userdesk demo`) is
served by the real server, and measured:

- the Users list (console and API), for every query of bench/queries.py (common and rare
  terms, one and two letters, every filter alone and combined, four sorts) and its counts
  (bench/counts.py), server-side times from the Server-Timing header;
- throughput of the list next to a bare Starlette endpoint serving the same page
  (bench/baseline.py), and with one server process against two while a writer writes
  (bench/processes.py);
- Django's admin changelist over the same people, side by side (bench/django_side.py);
- imports, exports and a long timeline (bench/flows.py), and how alike the anonymous
  answers are for known and unknown addresses (bench/enumeration.py);
- churn scoring of every user with 5 M events, on a copy (bench/churn_scoring.py);
- filters on custom fields, the console's first page with its counts (bench/custom_fields.py,
  which gives the database a few fields and values first, by SQL, when it has none).

USERDESK_BENCH_POSTGRES_URL runs the list, counts and processes cases on PostgreSQL too, with
BENCH_POSTGRES_USERS people (default: BENCH_USERS; issue 23 measures 10,000,000).
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlencode

import httpx
from sqlalchemy import text

from bench import (
    churn_scoring,
    counts,
    custom_fields,
    django_side,
    enumeration,
    flows,
    processes,
    queries,
    scim,
    webhooks,
)
from bench.common import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BIN,
    CONCURRENCY,
    DATA,
    ROOT,
    ROUNDS,
    USERDESK,
    env,
    pct,
    peak_rss,
    resident_bytes,
    run,
    server_pid,
    serving,
    session_cookie_header,
    sign_in,
    throughput,
    timed,
)
from userdesk.db.engine import make_engine
from userdesk.db.paging import encode_cursor
from userdesk.users.service import SORTS

QUERY_ROUNDS = int(os.environ.get("BENCH_QUERY_ROUNDS", "5"))
Row = tuple[str, str, str]  # case, measured, target


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
    subprocess.run([USERDESK, "migrate"], env=env(url), check=True)
    subprocess.run(
        [USERDESK, "demo", "--users", str(users), "--seed", "1"], env=env(url), check=True
    )
    elapsed = time.perf_counter() - started
    connection = sqlite3.connect(partial)  # its `with` commits, it does not close
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    partial.rename(path)
    for leftover in DATA.glob(f"{partial.name}*"):
        leftover.unlink()
    return path, elapsed


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
    subprocess.run([USERDESK, "migrate"], env=env(url), check=True)
    engine = make_engine(url)
    with engine.connect() as conn:
        present = conn.execute(text("SELECT count(*) FROM users")).scalar_one()
    engine.dispose()
    if present >= users:
        return None
    started = time.perf_counter()
    subprocess.run(
        [USERDESK, "demo", "--users", str(users - present), "--seed", "1"],
        env=env(url),
        check=True,
    )
    elapsed = time.perf_counter() - started
    # What autovacuum would do in time: the visibility map makes index-only counts cheap.
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return elapsed


def prepare(url: str) -> str:
    """Migrate the database at URL, make sure the bench admin exists; an API key for it."""
    run([USERDESK, "migrate"], url)  # a database kept from an older version catches up
    run([USERDESK, "create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD], url)
    return run([USERDESK, "api-key", "create", "--name", "bench", "--role", "Administrator"], url)


def main() -> None:
    users = int(os.environ.get("BENCH_USERS", "1000000"))
    path, built = ensure_sqlite_database(users)
    url = f"sqlite:///{path}"
    key = prepare(url)
    print(f"# Userdesk bench: {users:,} users, {os.cpu_count()} cores")
    print(
        "SQLite database: reused " + str(path.relative_to(ROOT))
        if built is None
        else f"SQLite database: `userdesk demo --users {users}` built it in {built:.0f} s"
    )
    # What needs the quietest machine first: imports and exports write and read it all.
    section("Imports, exports and timelines (SQLite)", flows.main(USERDESK, path))
    section("The Users list (SQLite, one server process)", list_rows(url, key, baseline=path))
    # Gives the database its custom fields and values the first time (seconds, by SQL).
    section("Custom fields: filters, first page with counts (SQLite)", custom_fields.rows(url))
    section(
        "One server process and two, a writer writing beside (SQLite)",
        processes.process_rows(url, key, url),
    )
    section(
        "Beside Django's admin changelist over the same people (SQLite)",
        django_rows(url, key, path, users),
    )
    # Scoring writes: it scores a copy of the database (bench/churn_scoring.py).
    section("Churn scoring (SQLite, a copy of the database)", churn_scoring.rows())
    # Reads on the database, writes on a copy of it (bench/scim.py).
    section("SCIM filters and provisioning (SQLite, issue 21)", scim.rows(path))
    with serving(server(1), env(url), "/readyz") as base:
        section(
            "Anonymous answers for known and unknown addresses",
            enumeration.enumeration_rows(base, url),
        )
    postgres = os.environ.get("USERDESK_BENCH_POSTGRES_URL")
    # A small database of their own (bench/webhooks.py), PostgreSQL's beside its URL.
    section("Webhook delivery to a local receiver", webhooks.webhook_rows(postgres))
    if postgres:
        # Issue 23 measures PostgreSQL at 10 M users: BENCH_POSTGRES_USERS=10000000.
        postgres_users = int(os.environ.get("BENCH_POSTGRES_USERS", str(users)))
        built = ensure_postgres_database(postgres, postgres_users)
        key = prepare(postgres)
        state = "reused" if built is None else f"built in {built:.0f} s"
        section(
            f"The Users list on PostgreSQL, {postgres_users:,} users ({state})",
            list_rows(postgres, key, baseline=None),
        )
        # Scores every user in place (the scores of a run are kept; as a scoring job does).
        section("Churn scoring (PostgreSQL)", churn_scoring.postgres_rows(postgres))
        section(
            "Custom fields: filters, first page with counts (PostgreSQL)",
            custom_fields.rows(postgres),
        )
        section(
            "One server process and two, a writer writing beside (PostgreSQL)",
            processes.process_rows(postgres, key, postgres),
        )


def section(title: str, rows: Iterable[Row]) -> None:
    print()
    print(f"## {title}")
    print()
    print("| case | measured | target |")
    print("|---|---|---|")
    for case, figure, target in rows:
        print(f"| {case} | {figure} | {target} |", flush=True)


def server(processes_: int) -> list[str]:
    # The request path alone: the outbox worker (churn scoring, dashboard counts) would run
    # beside the server; scoring is measured on its own.
    return [USERDESK, "serve", "--workers", str(processes_), "--no-access-log", "--no-worker"]


def page_path(base: str, q: str, sort: str = "name") -> str:
    return f"{base}?{urlencode({'q': q, 'sort': sort})}"


OVER_NAMED = 8  # the queries over their target named in a row, the slowest first


def per_query_row(
    case: str, found: dict[str, list[float]], *, target_ms: float, worst_of: str = "p95"
) -> Row:
    """One row for a set of queries: p50 and p95 over every sample, and the worst query
    (by its own p95, or its max) against TARGET_MS."""
    everything = [s for samples in found.values() for s in samples]

    def measure(samples: list[float]) -> float:
        return pct(samples, 95) if worst_of == "p95" else max(samples)

    worst = max(found, key=lambda name: measure(found[name]))
    over = sorted(
        (name for name, samples in found.items() if measure(samples) > target_ms),
        key=lambda name: -measure(found[name]),
    )
    named = "".join(f", {name} {measure(found[name]):.0f}" for name in over[:OVER_NAMED])
    return (
        f"{case} ({len(found)} queries x {QUERY_ROUNDS})",
        f"p50 {pct(everything, 50):.1f} ms, p95 {pct(everything, 95):.1f} ms; worst query "
        f"{measure(found[worst]):.0f} ms ({worst}); {len(over)} over{named}",
        f"{worst_of} ≤ {target_ms:.0f} ms for every query",
    )


def list_rows(url: str, key: str, *, baseline: Path | None) -> list[Row]:
    """The list on URL: every query's page and counts, console and API; deep pages; the
    export; throughput beside the bare baseline on the SQLite file BASELINE (None: none)."""
    short = {f"`{q}` {sort}" for q, sort in queries.SHORT_QUERIES}
    pages = {f"`{q}` {sort}": (q, sort) for q, sort in queries.QUERIES}
    rows: list[Row] = []
    auth = {"Authorization": f"Bearer {key}"}
    with serving(server(1), env(url), "/readyz") as base:
        with httpx.Client(base_url=base, follow_redirects=False, timeout=120) as console:
            sign_in(console)
            console_pages = timed(
                console,
                {n: page_path("/console/users", q, s) for n, (q, s) in pages.items()},
                QUERY_ROUNDS,
            )
            console_counts = timed(
                console,
                {f"`{q}`": page_path("/console/users/counts", q) for q in counts.QUERIES},
                QUERY_ROUNDS,
            )
            console_headers = session_cookie_header(console)
        with httpx.Client(base_url=base, headers=auth, timeout=120) as api:
            api_pages = timed(
                api,
                {n: page_path("/api/v1/users", q, s) for n, (q, s) in pages.items()},
                QUERY_ROUNDS,
            )
            api_counts = timed(
                api,
                {f"`{q}`": page_path("/api/v1/users/counts", q) for q in counts.QUERIES},
                QUERY_ROUNDS,
            )
            kinds = Counter(counts.kind(api, q) for q in counts.QUERIES)
            for face, found in (("console", console_pages), ("API", api_pages)):
                rows.append(
                    per_query_row(
                        f"{face}: first page of every query of 3+ characters or none, every "
                        "filter alone and combined, 4 sorts",
                        {n: s for n, s in found.items() if n not in short},
                        target_ms=queries.PAGE_TARGET_MS,
                    )
                )
                rows.append(
                    per_query_row(
                        f"{face}: first page of every search of 1-2 characters",
                        {n: s for n, s in found.items() if n in short},
                        target_ms=queries.SHORT_TARGET_MS,
                        worst_of="max",
                    )
                )
            for face, found in (("console", console_counts), ("API", api_counts)):
                row = per_query_row(
                    f"{face}: the tab counts of every query", found, target_ms=counts.TARGET_MS
                )
                told = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
                rows.append((row[0], f"{row[1]}; All figure: {told}", row[2]))
            rows.append(deep_pages_row(api, url))
            rows.append(export_row(api, users_in(url)))
        list_url = f"{base}/api/v1/users?limit=50"
        console_url = f"{base}/console/users"
        if baseline is None:
            ours = statistics.median(throughput(list_url, auth) for _ in range(ROUNDS))
            mine = statistics.median(
                throughput(console_url, console_headers) for _ in range(ROUNDS)
            )
            case = f"throughput, {CONCURRENCY} connections, median of {ROUNDS}"
            rows.append((f"GET /api/v1/users {case}", f"{ours:.0f} req/s", "(no bare baseline)"))
            rows.append((f"GET /console/users {case}", f"{mine:.0f} req/s", "(no bare baseline)"))
            return rows
        bare = [
            str(BIN / "uvicorn"),
            "bench.baseline:app",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        bare_env = {**os.environ, "BENCH_DATABASE": str(baseline), "PYTHONPATH": str(ROOT)}
        with serving(bare, bare_env, "/users?limit=1") as bare_base:
            bare_url = f"{bare_base}/users?limit=50"
            triples = [
                (
                    throughput(list_url, auth),
                    throughput(console_url, console_headers),
                    throughput(bare_url, {}),
                )
                for _ in range(ROUNDS)
            ]
    ours, mine, floor = (statistics.median(t[i] for t in triples) for i in range(3))
    case = (
        f"throughput ({CONCURRENCY} connections, {ROUNDS} rounds taken in turn with the "
        "bare's, medians)"
    )
    rows.append(
        (
            f"GET /api/v1/users?limit=50 {case}",
            f"{ours:.0f} req/s vs bare {floor:.0f} req/s = {ours / floor:.0%}",
            "≥ 50% of the bare baseline",
        )
    )
    rows.append(
        (
            f"GET /console/users (the whole page) {case}",
            f"{mine:.0f} req/s vs bare {floor:.0f} req/s = {mine / floor:.0%}",
            "≥ 35% of the bare baseline",
        )
    )
    return rows


def deep_pages_row(api: httpx.Client, url: str) -> Row:
    deepest = max(2, min(10_000, users_in(url) // 50))
    depth = {
        n: timed(api, {"page": f"/api/v1/users?cursor={cursor_at(url, n)}"}, 50)["page"]
        for n in sorted({2, min(100, deepest), deepest})
    }
    return (
        "API: deep pages through the cursor (page "
        + " / ".join(f"{n:,}" for n in depth)
        + ", p50)",
        " / ".join(f"{pct(s, 50):.2f}" for s in depth.values()) + " ms",
        "page 10,000 ≤ 5 ms, flat with depth",
    )


EXPORT_SECONDS_PER_MILLION = 10  # issue 17: 1 M users in 10 s; issue 23: 10 M in 100 s
EXPORT_RSS_MB = 200  # the serving process's resident memory while it streams (issue 23)


def export_row(api: httpx.Client, users: int) -> Row:
    pid = server_pid(str(api.base_url).rstrip("/"))
    before = resident_bytes(pid)  # what the requests before left (caches, connections)
    started = time.perf_counter()
    # The header comes at once; the rows once the database has read them in order.
    with (
        peak_rss(pid) as peak,
        api.stream("GET", "/api/v1/users/export", timeout=3600) as download,
    ):
        chunks = download.iter_raw()
        first = next(chunks)
        first_byte = time.perf_counter() - started
        size = len(first) + sum(len(chunk) for chunk in chunks)
    target = max(1, users // 1_000_000) * EXPORT_SECONDS_PER_MILLION
    return (
        f"GET /api/v1/users/export, every user ({users:,})",
        f"first byte {first_byte * 1000:.0f} ms, {time.perf_counter() - started:.1f} s "
        f"({size / 2**20:.0f} MB); server's resident memory {before / 2**20:.0f} MB before, "
        f"at most {peak[0] / 2**20:.0f} MB while it streamed",
        f"≤ {target} s, first byte ≤ 200 ms, resident memory < {EXPORT_RSS_MB} MB",
    )


def django_rows(url: str, key: str, path: Path, users: int) -> list[Row]:
    """The issue's five cases on Django's changelist (its test client, in a process of its
    own) and on Userdesk's console and API (server-side times), medians side by side."""
    django_db = django_side.django_database(users)
    built = django_side.build(django_db, path, users)
    django = django_side.run(django_db)
    paths = django_side.userdesk_paths(cursor_at(url, django_side.userdesk_deep_page(users)))
    auth = {"Authorization": f"Bearer {key}"}
    rounds = django_side.ROUNDS
    with serving(server(1), env(url), "/readyz") as base:
        with httpx.Client(base_url=base, follow_redirects=False, timeout=120) as console:
            sign_in(console)
            console_pages = timed(console, {c: p[0] for c, p in paths.items()}, rounds)
            console_counts = timed(
                console,
                {
                    case: page_path("/console/users/counts", q)
                    for case, (_, q) in django_side.CASE_QUERIES.items()
                },
                rounds,
            )
        with httpx.Client(base_url=base, headers=auth, timeout=120) as api:
            api_pages = timed(api, {c: p[1] for c, p in paths.items()}, rounds)
    note = "reused" if built is None else f"built in {built:.0f} s"
    return [
        (
            f"Django database: {django_db.relative_to(ROOT)} ({note})",
            f"{users:,} auth_user rows",
            "",
        ),
        *django_side.side_by_side_rows(
            django, console_pages, api_pages, console_counts=console_counts, users=users
        ),
    ]
