"""What every part of the bench shares: the environment a server runs in, serving it on a
free port, reading its Server-Timing header, and throughput over HTTP.

Server-side times come from the Server-Timing header (time to the response's first byte
inside the app); throughput is measured with wrk when it is installed (apt-get install
wrk), else with an httpx client.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
BIN = Path(sys.executable).parent
USERDESK = str(BIN / "userdesk")
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ADMIN_EMAIL = "bench@bench.example"
ADMIN_PASSWORD = "quiet-harbor-2187"  # noqa: S105 - a throwaway account in a bench database


def env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "USERDESK_DATABASE_URL": database_url,
        "USERDESK_VAR_DIR": str(DATA),
        "USERDESK_SERVER_TIMING": "1",  # off by default: it would help guess who has an account
    }


def run(args: Sequence[str], database_url: str) -> str:
    out = subprocess.run(args, env=env(database_url), check=True, capture_output=True, text=True)
    return out.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(args: Sequence[str], environ: dict[str, str], health: str) -> Iterator[str]:
    """The base URL of ARGS (a server command taking --port) once HEALTH answers."""
    port = free_port()
    process = subprocess.Popen(
        [*args, "--port", str(port)], env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
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
        process.wait(timeout=60)


def server_pid(base: str) -> int:
    """The process serving BASE (a server `serving` started: `--port N` on its command line)."""
    port = base.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if any(a == b"--port" and b == port.encode() for a, b in itertools.pairwise(args)):
            return int(entry.name)
    raise RuntimeError(f"no process serves {base}")


@contextmanager
def peak_rss(pid: int, every: float = 0.05) -> Iterator[list[int]]:
    """The largest resident set of process PID (bytes) while the block runs, in a list of
    one item that fills when the block ends (sampled from /proc every EVERY seconds)."""
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], resident_bytes(pid))
            done.wait(every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], resident_bytes(pid))


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def server_ms(response: httpx.Response) -> float:
    match = re.search(r"dur=([\d.]+)", response.headers.get("server-timing", ""))
    if not match:
        raise RuntimeError(f"no Server-Timing on {response.request.url}")
    return float(match.group(1))


def timed(client: httpx.Client, paths: dict[str, str], rounds: int) -> dict[str, list[float]]:
    """Server-side milliseconds of ROUNDS requests of each of PATHS (name: path).

    Each path is asked once unmeasured first (a cold statement cache is not what users
    see); then the rounds go through the whole set in turn, so that one path's requests
    are not all measured back to back.
    """
    found: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(rounds + 1):
        for name, path in paths.items():
            response = client.get(path)
            response.raise_for_status()
            if round_:
                found[name].append(server_ms(response))
    return found


def pct(samples: Sequence[float], p: int) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[p - 1]


def throughput(url: str, headers: dict[str, str]) -> float:
    """Requests per second on URL with CONCURRENCY connections for SECONDS."""
    if shutil.which("wrk"):
        args = ["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{SECONDS}s"]
        for name, value in headers.items():
            args += ["-H", f"{name}: {value}"]
        out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
        if "Non-2xx" in out:
            raise RuntimeError(f"{url} answered errors under load:\n{out}")
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


def form_token(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    return page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def sign_in(client: httpx.Client) -> None:
    token = form_token(client, "/login")
    response = client.post(
        "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token}
    )
    if response.status_code != 303:
        raise RuntimeError("the bench admin could not sign in")


def session_cookie_header(client: httpx.Client) -> dict[str, str]:
    """The Cookie header of CLIENT's session, for wrk."""
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in client.cookies.items())}
