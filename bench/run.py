"""The benchmark: a demo database, a real server on loopback, and figures printed."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
USERDESK = str(Path(sys.executable).parent / "userdesk")
LATENCY_REQUESTS = int(os.environ.get("BENCH_REQUESTS", "300"))
THROUGHPUT_SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))


@dataclass(frozen=True)
class Case:
    name: str
    path: str


@dataclass(frozen=True)
class Figures:
    p50_ms: float
    p99_ms: float
    rps: float | None = None


def _env(database_url: str) -> dict[str, str]:
    return {**os.environ, "USERDESK_DATABASE_URL": database_url, "USERDESK_VAR_DIR": str(DATA)}


def ensure_database(users: int) -> tuple[str, float | None]:
    """The URL of a demo database with USERS people, and the build time if it was built."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"users-{users}.db"
    url = f"sqlite:///{path}"
    if path.exists():
        return url, None
    partial = DATA / f"users-{users}.partial.db"
    for leftover in DATA.glob(f"{partial.name}*"):
        leftover.unlink()
    partial_url = f"sqlite:///{partial}"
    started = time.perf_counter()
    subprocess.run([USERDESK, "migrate"], env=_env(partial_url), check=True)
    subprocess.run(
        [USERDESK, "demo", "--users", str(users), "--seed", "1"], env=_env(partial_url), check=True
    )
    elapsed = time.perf_counter() - started
    import sqlite3

    with sqlite3.connect(partial) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    partial.rename(path)
    return url, elapsed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(database_url: str) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [USERDESK, "serve", "--port", str(port)],
        env=_env(database_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not come up")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def api_key(database_url: str) -> str:
    out = subprocess.run(
        [USERDESK, "api-key", "create", "--name", "bench", "--role", "Administrator"],
        env=_env(database_url),
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def server_ms(response: httpx.Response) -> float:
    timing = response.headers["server-timing"]
    return float(timing.split("dur=", 1)[1].split(";", 1)[0])


def latency(client: httpx.Client, path: str) -> tuple[float, float]:
    """p50 and p99 of the server-side time of PATH, in milliseconds."""
    for _ in range(10):
        client.get(path).raise_for_status()
    samples = []
    for _ in range(LATENCY_REQUESTS):
        response = client.get(path)
        response.raise_for_status()
        samples.append(server_ms(response))
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


async def _throughput(base: str, path: str, headers: dict[str, str]) -> float:
    done = 0
    stop = time.perf_counter() + THROUGHPUT_SECONDS

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            (await client.get(path)).raise_for_status()
            done += 1

    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
        return done / (time.perf_counter() - started)


def throughput(base: str, path: str, headers: dict[str, str]) -> float:
    """Requests per second over HTTP with CONCURRENCY clients for THROUGHPUT_SECONDS."""
    return asyncio.run(_throughput(base, path, headers))


CASES = (
    Case("first page, name sort", "/api/v1/users?limit=50&sort=name"),
    Case("first page, newest first", "/api/v1/users?limit=50&sort=-created"),
)


def main() -> None:
    users = int(os.environ.get("BENCH_USERS", "1000000"))
    url, built = ensure_database(users)
    print(f"# Userdesk bench: {users:,} users, SQLite, {os.cpu_count()} cores")
    if built is None:
        print(f"database: reused {url}")
    else:
        print(f"database: `userdesk demo --users {users}` built it in {built:.1f} s")
    key = api_key(url)
    headers = {"Authorization": f"Bearer {key}"}
    with serve(url) as base, httpx.Client(base_url=base, headers=headers) as client:
        print()
        print(f"| case | p50 ms | p99 ms | req/s ({CONCURRENCY} clients) |")
        print("|---|---|---|---|")
        for case in CASES:
            p50, p99 = latency(client, case.path)
            rps = throughput(base, case.path, headers)
            print(f"| {case.name} | {p50:.2f} | {p99:.2f} | {rps:.0f} |")
