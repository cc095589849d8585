"""`make load`: a mixed workload against 2 server processes and 1 worker on PostgreSQL.

It makes the database (USERDESK_LOAD_DATABASE_URL, by default `userdesk_load` on the local
PostgreSQL) with LOAD_USERS demo users (1,000,000) unless it has them, starts
`userdesk serve --workers 2 --no-worker`, `userdesk worker` and a webhook receiver (an
endpoint registered for the run), runs load/locustfile.py headless for LOAD_SECONDS (60)
with LOAD_CLIENTS simulated clients (16), prints throughput and p50/p99 per operation,
then counts in the database that no write was lost or doubled (load/checks.py). Exits
non-zero on any failed request or any count that does not hold.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, make_url, text

from load import checks
from userdesk.db.engine import make_engine

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
USERDESK = str(BIN / "userdesk")
URL = os.environ.get(
    "USERDESK_LOAD_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/userdesk_load"
)
USERS = int(os.environ.get("LOAD_USERS", "1000000"))
SECONDS = int(os.environ.get("LOAD_SECONDS", "60"))
CLIENTS = int(os.environ.get("LOAD_CLIENTS", "16"))
IMPORT_ROWS = int(os.environ.get("LOAD_IMPORT_ROWS", "2000"))
VAR = ROOT / "var" / "load"
TERMS = (
    "anna",
    "smith",
    "ma",
    "müller",
    "garcia example.org",
    "status:disabled",
    'team:"Support EU" seen:>30d',
    "login:never",
    "churn:high",
    "verified:no status:active",
)
EXPORT_QUERY = 'status:banned team:"Support EU"'  # some thousands of users at 1 M
WEBHOOK_EVENTS = ["user.created", "user.disabled", "user.enabled"]


def ensure_database(url: str, users: int) -> float | None:
    """Create the database at URL if missing, migrate it, and fill it with demo users up
    to USERS. Returns how long `userdesk demo` took, or None when it was not needed."""
    address = make_url(url)
    server = make_engine(address.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        name = address.database
        found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if found.first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    server.dispose()
    subprocess.run([USERDESK, "migrate"], env=environ(url), check=True)
    engine = make_engine(url)
    with engine.connect() as conn:
        present = conn.execute(text("SELECT count(*) FROM users")).scalar_one()
    engine.dispose()
    if present >= users:
        return None
    started = time.perf_counter()
    subprocess.run(
        [USERDESK, "demo", "--users", str(users - present)], env=environ(url), check=True
    )
    built = time.perf_counter() - started
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))  # what autovacuum would do in time
    engine.dispose()
    return built


def environ(url: str) -> dict[str, str]:
    return {
        # The worker's scheduled churn scoring, a long job at 1 M users that the worker's
        # other work waits behind, is left out unless asked for (it has a bench of its own).
        "USERDESK_CHURN_EVERY_HOURS": "0",
        **os.environ,
        "USERDESK_DATABASE_URL": url,
        "USERDESK_VAR_DIR": str(VAR),
        "USERDESK_WEBHOOKS_ALLOW_PRIVATE": "1",  # the receiver listens on 127.0.0.1
        "PYTHONPATH": str(ROOT),
    }


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver(ThreadingHTTPServer):
    """The host product's webhook endpoint: counts each webhook-id it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()), _Handler)
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        with self.server.lock:
            self.server.received[self.headers.get("webhook-id", "")] += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@contextmanager
def started(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 600  # a loaded machine takes minutes to import the app
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.3)
    raise SystemExit("The server did not come up: see var/load/serve.log")


def pick(engine: Engine, organization_id: int) -> tuple[list[int], list[int]]:
    """Active users to disable and enable (each looked after by one simulated admin), and
    a sample of users to open and to post events for."""
    with engine.connect() as conn:
        ids = list(
            conn.execute(
                text(
                    "SELECT id FROM users TABLESAMPLE SYSTEM (5) WHERE organization_id = :org "
                    "AND status = 'active' LIMIT 5400"
                ),
                {"org": organization_id},
            ).scalars()
        )
    return ids[:400], ids[400:]


def wait_for(what: str, done: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"Timed out waiting for {what}.")
        time.sleep(1)


def percentile(times: dict[str, int], share: float) -> int:
    """The response time (ms) under which SHARE of the requests answered, from Locust's
    histogram of rounded times and their counts."""
    total = sum(times.values())
    seen = 0
    for value, count in sorted((float(t), c) for t, c in times.items()):
        seen += count
        if seen >= share * total:
            return round(value)
    return 0


def stats_table(path: Path, seconds: float) -> tuple[str, int]:
    """Locust's final stats (its --json-file) as a table: requests, failures, requests a
    second over the run, p50 and p99 in ms. Returns it with the number of failures."""
    head = (
        f"{'operation':<16} {'requests':>9} {'failed':>7} {'per s':>7} {'p50 ms':>7} {'p99 ms':>7}"
    )
    lines = [head]
    failures = 0
    for entry in sorted(json.loads(path.read_text()), key=lambda e: e["name"]):
        count, failed = entry["num_requests"], entry["num_failures"]
        failures += failed
        times = entry["response_times"]
        lines.append(
            f"{entry['name']:<16} {count:>9,} {failed:>7,} {count / seconds:>7.1f} "
            f"{percentile(times, 0.5):>7,} {percentile(times, 0.99):>7,}"
        )
    return "\n".join(lines), failures


def main() -> int:
    run = time.strftime("%H%M%S") + secrets.token_hex(2)
    out = VAR / run
    out.mkdir(parents=True, exist_ok=True)
    print(f"# make load: run {run}, {URL.rsplit('@', 1)[-1]}")
    built = ensure_database(URL, USERS)
    if built is not None:
        print(f"Built the database: `userdesk demo` for {USERS:,} users in {built:.0f} s")
    env = environ(URL)
    key = subprocess.run(
        [USERDESK, "api-key", "create", "--name", f"load {run}", "--role", "Administrator"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    engine = make_engine(URL)
    with engine.connect() as conn:
        organization_id = conn.execute(
            text("SELECT id FROM organizations WHERE slug = 'default'")
        ).scalar_one()
        users = conn.execute(text("SELECT count(*) FROM users")).scalar_one()
    targets, sample = pick(engine, organization_id)
    receiver = Receiver()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = [USERDESK, "serve", "--workers", "2", "--no-worker", "--port", str(port)]
    with (
        started([*serve, "--no-access-log"], env, VAR / "serve.log") as server,
        started([USERDESK, "worker"], env, VAR / "worker.log"),
    ):
        wait_ready(base, server)
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        made = api.post(
            "/api/v1/webhooks",
            json={
                "url": receiver.url,
                "description": f"make load {run}",
                "event_types": WEBHOOK_EVENTS,
            },
        )
        made.raise_for_status()
        endpoint_id = int(made.json()["endpoint"]["id"])
        config = {
            "run": run,
            "api_key": key,
            "targets": targets,
            "sample": sample,
            "terms": list(TERMS),
            "import_rows": IMPORT_ROWS,
            "export_q": EXPORT_QUERY,
            "tally": str(out / "tally.json"),
        }
        (out / "config.json").write_text(json.dumps(config))
        print(f"{users:,} users; {CLIENTS} clients for {SECONDS} s, 2 server processes, 1 worker")
        locust = subprocess.run(
            [
                str(BIN / "locust"),
                "-f",
                str(ROOT / "load" / "locustfile.py"),
                "--headless",
                "--users",
                str(CLIENTS),
                "--spawn-rate",
                str(CLIENTS),
                "--run-time",
                f"{SECONDS}s",
                "--stop-timeout",
                "60",
                "--host",
                base,
                "--json-file",
                str(out / "locust"),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            env={**env, "LOAD_CONFIG": str(out / "config.json")},
            stdout=(out / "locust.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        tally = checks.Tally.load(out / "tally.json")
        imported = None
        if tally.import_job is not None:
            job: dict[str, Any] = {}

            def finished() -> bool:
                job.update(api.get(f"/api/v1/jobs/{tally.import_job}").json())
                return job["status"] in ("done", "failed")

            wait_for("the import", finished, 600)
            imported = int(job["done"])

        def drained() -> bool:
            with engine.connect() as conn:
                left = conn.execute(
                    text(
                        "SELECT count(*) FROM webhook_messages "
                        "WHERE endpoint_id = :e AND status = 'pending'"
                    ),
                    {"e": endpoint_id},
                ).scalar_one()
            return left == 0

        wait_for("the webhook messages", drained, 300)
        time.sleep(1)  # the receiver's last answers
        with engine.connect() as conn:
            findings = checks.count(
                conn,
                tally,
                organization_id=organization_id,
                endpoint_id=endpoint_id,
                received=receiver.received,
                imported=imported,
            )
        api.delete(f"/api/v1/webhooks/{endpoint_id}")  # no later run delivers to a dead port
    table, failures = stats_table(out / "locust.json", SECONDS)
    print(table)
    report, clean = checks.summary(findings)
    print(report)
    print(f"Locust's log: {(out / 'locust.log').relative_to(ROOT)}")
    if failures or locust.returncode or not clean:
        print(f"FAILED: {failures} failed requests, locust exit {locust.returncode}")
        return 1
    print("No errors; no write lost or doubled.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
