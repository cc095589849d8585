"""Django's admin changelist over the same people as the Userdesk bench database, timed
case by case beside the console and the API (issue 17): the page a Python team would
build instead.

Django runs in a subprocess of its own, so that its settings never meet Userdesk's:

    python -m bench.django_side build --db D --users-db U --users N
    python -m bench.django_side run --db D --rounds R        # prints JSON: case -> [ms]

Django's figures are its floor: the test client calls the app in process (no HTTP, no
server), and each sample is the wall time of one `client.get` around the stock UserAdmin
(ordered by username, search on username, first and last name and email, 100 rows a
page, the result count and the filtered count that its changelist shows). Userdesk's
come from its Server-Timing header, also the time inside the app. The wiring in
bench/run.py, with a signed-in console client and an API client:

    build(django_database(users), path, users)
    django = run(django_database(users))
    paths = userdesk_paths(cursor_at(url, userdesk_deep_page(users)))
    console = {case: timings(console_client, [c]) for case, (c, _) in paths.items()}
    api = {case: timings(api_client, [a]) for case, (_, a) in paths.items()}
    rows = [Row(*row) for row in side_by_side_rows(django, console, api, users=users)]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
SETTINGS = "bench.django_admin.settings"
ROUNDS = int(os.environ.get("BENCH_DJANGO_ROUNDS", "20"))
WARM_UP = 3  # requests per case before timing: templates compiled, pages cached
SUPERUSER = "bench-admin"
DJANGO_PAGE_SIZE = 100  # ModelAdmin.list_per_page, the admin's default
USERDESK_PAGE_SIZE = 50  # userdesk.users.service.DEFAULT_PAGE_SIZE, the list's default
DEEP_ROW = 500_000
CHANGELIST = "/admin/auth/user/"

DEEP = "deep page"  # row 500,000, or the middle row of a smaller database
# Each case: the changelist's query string, and Userdesk's query (the `q` of the console
# and of the API). The deep page is reached through Django's ?p= and Userdesk's cursor.
CASE_QUERIES: dict[str, tuple[str, str]] = {
    "first page": ("", ""),
    "status filter": ("is_active__exact=1", "status:active"),
    'search "ann"': ("q=ann", "ann"),
    'search "ann" + status filter': ("q=ann&is_active__exact=1", "ann status:active"),
    DEEP: ("p={page}", ""),
}


def _userdesk_path(base: str, q: str) -> str:
    return f"{base}?{urlencode({'q': q})}"


# Console and API paths per case; the deep page's carry a {cursor} to fill in.
CASES: dict[str, tuple[str, str]] = {
    case: (
        ("/console/users?cursor={cursor}", "/api/v1/users?cursor={cursor}")
        if case == DEEP
        else (_userdesk_path("/console/users", q), _userdesk_path("/api/v1/users", q))
    )
    for case, (_, q) in CASE_QUERIES.items()
}


def deep_row(users: int) -> int:
    """The row the deep page reaches: 500,000, or the middle one of a smaller database
    (the last row of one of Django's pages)."""
    middle = users // 2 // DJANGO_PAGE_SIZE * DJANGO_PAGE_SIZE
    return min(DEEP_ROW, max(DJANGO_PAGE_SIZE, middle))


def page_holding(row: int, page_size: int) -> int:
    """The 1-based number of the page of PAGE_SIZE rows that shows ROW (1-based)."""
    return -(-row // page_size)


def userdesk_deep_page(users: int) -> int:
    """The page of Userdesk's name-sorted list (50 rows) that ends at the deep row: page
    10,000 at 1 M users, for bench.run.cursor_at."""
    return page_holding(deep_row(users), USERDESK_PAGE_SIZE)


def userdesk_paths(cursor: str) -> dict[str, tuple[str, str]]:
    """CASES with the deep page's CURSOR (bench.run.cursor_at) filled in."""
    return {
        case: (console.format(cursor=quote(cursor)), api.format(cursor=quote(cursor)))
        for case, (console, api) in CASES.items()
    }


def django_database(users: int) -> Path:
    """Where the Django database for a bench of USERS people is kept."""
    return DATA / f"django-users-{users}.db"


def build(django_db: Path, users_db: Path, users: int) -> float | None:
    """A Django database at DJANGO_DB whose auth_user holds the first USERS people of the
    Userdesk database USERS_DB (read only) and one superuser; the seconds it took, or None
    when the one there already held them."""
    started = time.perf_counter()
    out = _django(
        "build",
        *("--db", str(django_db.resolve()), "--users-db", str(users_db.resolve())),
        *("--users", str(users)),
    )
    return None if out == "reused" else time.perf_counter() - started


def run(django_db: Path, rounds: int = ROUNDS) -> dict[str, list[float]]:
    """Milliseconds per request of each case on the changelist, ROUNDS samples each."""
    return dict(
        json.loads(_django("run", "--db", str(django_db.resolve()), "--rounds", str(rounds)))
    )


def side_by_side_rows(
    django: dict[str, list[float]],
    console: dict[str, list[float]],
    api: dict[str, list[float]],
    *,
    console_counts: dict[str, list[float]] | None = None,
    users: int | None = None,
) -> list[tuple[str, str, str]]:
    """(case, figure, target) per case, from the medians. Django's changelist answers with
    its rows and their counts; the console is to answer no slower (issue 17 found it 7-10
    times slower on a common search). Where the console's counts come in a request of
    their own (CONSOLE_COUNTS, per case), the figure shows them and the ratio of page plus
    counts too. USERS names the deep page's row."""
    rows = []
    for case in CASES:
        d, c, a = (statistics.median(samples[case]) for samples in (django, console, api))
        figure = f"Django {_ms(d)}, console {_ms(c)}, API {_ms(a)}: console/Django {c / d:.2f}"
        if console_counts is not None:
            n = statistics.median(console_counts[case])
            figure += f" (counts {_ms(n)}; page + counts / Django {(c + n) / d:.2f})"
        label = case
        if case == DEEP:
            label = f"deep page (row {deep_row(users):,})" if users else "deep page (row 500,000)"
        rows.append(
            (f"Django admin side by side: {label}, medians", figure, "console ≤ Django (≤ 1.00)")
        )
    return rows


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _django(*args: str) -> str:
    """Run this module with ARGS in a fresh interpreter; its standard output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": SETTINGS}
    out = subprocess.run(
        [sys.executable, "-m", "bench.django_side", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench.django_side {args[0]} failed:\n{out.stderr[-2000:]}")
    return out.stdout.strip()


# What follows runs in the subprocess only, with Django set up.


def _setup(django_db: Path) -> None:
    os.environ["BENCH_DJANGO_DATABASE"] = str(django_db)
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    import django

    django.setup()


def _people_in(django_db: Path) -> int | None:
    """How many people (not the superuser) DJANGO_DB holds, None if it is not a finished
    bench database."""
    if not django_db.exists():
        return None
    connection = sqlite3.connect(f"file:{django_db}?mode=ro", uri=True)
    try:
        superuser = "SELECT 1 FROM auth_user WHERE username = ?"
        if not connection.execute(superuser, (SUPERUSER,)).fetchone():
            return None
        if not connection.execute("SELECT 1 FROM sqlite_stat1 LIMIT 1").fetchone():
            return None
        people = "SELECT count(*) FROM auth_user WHERE NOT is_superuser"
        return int(connection.execute(people).fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def _build(django_db: Path, users_db: Path, users: int) -> str:
    if _people_in(django_db) == users:
        return "reused"
    partial = django_db.with_name(django_db.stem + ".partial.db")
    for leftover in (
        *django_db.parent.glob(f"{django_db.name}*"),
        *partial.parent.glob(f"{partial.name}*"),
    ):
        leftover.unlink()
    _setup(partial)
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection, transaction

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:  # not inside a transaction: SQLite refuses it there
        cursor.execute("ATTACH DATABASE %s AS userdesk", [f"file:{users_db}?mode=ro"])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auth_user (id, password, last_login, is_superuser, username, "
            "first_name, last_name, email, is_staff, is_active, date_joined) "
            "SELECT id, '!', last_login_at, 0, email, first_name, last_name, email, 0, "
            "status = 'active', created_at FROM userdesk.users "
            "WHERE organization_id = (SELECT min(id) FROM userdesk.organizations) "
            "ORDER BY id LIMIT %s",
            [users],
        )
    with connection.cursor() as cursor:
        cursor.execute("DETACH DATABASE userdesk")
    copied = User.objects.count()
    if copied != users:
        raise RuntimeError(f"{users_db} holds {copied:,} people, not {users:,}")
    User.objects.create_superuser(SUPERUSER, "bench-admin@bench.example", "bench-password-1")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    partial.rename(django_db)
    for leftover in partial.parent.glob(f"{partial.name}*"):
        leftover.unlink()
    return "built"


def _run(django_db: Path, rounds: int) -> dict[str, list[float]]:
    _setup(django_db)
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username=SUPERUSER))
    deep_page = page_holding(
        deep_row(User.objects.filter(is_superuser=False).count()), DJANGO_PAGE_SIZE
    )
    paths = {
        case: CHANGELIST + (f"?{query.format(page=deep_page)}" if query else "")
        for case, (query, _) in CASE_QUERIES.items()
    }
    for case, path in paths.items():
        for _ in range(WARM_UP):
            _check(case, client.get(path), deep_page if case == DEEP else 1)
    samples: dict[str, list[float]] = {case: [] for case in paths}
    for _ in range(rounds):  # the cases in turn, so that a noisy second hits them all alike
        for case, path in paths.items():
            started = time.perf_counter()
            response = client.get(path)
            samples[case].append((time.perf_counter() - started) * 1000)
            _check(case, response, deep_page if case == DEEP else 1)
    return samples


def _check(case: str, response: Any, page: int) -> None:
    """The changelist answered CASE with rows, on page PAGE."""
    if response.status_code != 200:
        raise RuntimeError(f"{case}: the changelist answered {response.status_code}")
    rows = response.content.count(b'name="_selected_action"')
    if rows == 0 or rows > DJANGO_PAGE_SIZE:
        raise RuntimeError(f"{case}: the changelist shows {rows} rows")
    if page > 1 and f'<span class="this-page">{page}</span>'.encode() not in response.content:
        raise RuntimeError(f"{case}: the changelist is not on page {page}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.django_side")
    commands = parser.add_subparsers(dest="command", required=True)
    built = commands.add_parser("build", help="build (or reuse) the Django database")
    built.add_argument("--db", type=Path, required=True)
    built.add_argument("--users-db", type=Path, required=True)
    built.add_argument("--users", type=int, required=True)
    timed = commands.add_parser("run", help="time the cases; print JSON: case -> [ms]")
    timed.add_argument("--db", type=Path, required=True)
    timed.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    if args.command == "build":
        print(_build(args.db.resolve(), args.users_db.resolve(), args.users))
    else:
        print(json.dumps(_run(args.db.resolve(), args.rounds)))


if __name__ == "__main__":
    main()
