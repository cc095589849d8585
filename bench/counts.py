"""How long the Users list's tab figures take, whatever the query (issue 17).

The figures (`GET /api/v1/users/counts?q=...`; the console's `/console/users/counts`
fragment reads the same service) must come back within TARGET_MS at p95 for every query:
common and rare terms, one and two letters, every filter alone and combined (the sets of
bench.queries, without their sorts: counts have none).

    .venv/bin/python -m bench.counts BASE_URL API_KEY [ROUNDS] [JSON_OUT]

prints p50 / p95 / max per query, and whether its figures were exact or estimated, from
the Server-Timing header of a running server (USERDESK_SERVER_TIMING=1).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Sequence

import httpx

from bench.queries import COMBINED, FILTERS, SHORT, TERMS, server_ms

TARGET_MS = 200.0
COUNT_PATH = "/api/v1/users/counts"
QUERIES: tuple[str, ...] = tuple(dict.fromkeys(("", *TERMS, *SHORT, *FILTERS, *COMBINED)))


def count_timings(
    client: httpx.Client,
    queries: Sequence[str] = QUERIES,
    rounds: int = 5,
    path: str = COUNT_PATH,
) -> dict[str, list[float]]:
    """Server-side milliseconds of ROUNDS counts of each query in QUERIES.

    CLIENT carries the base URL and the credentials (an API key for COUNT_PATH, a signed-in
    session for the console's fragment). Each query is asked once unmeasured first, then
    the rounds go through the whole set in turn.
    """
    found: dict[str, list[float]] = {q: [] for q in queries}
    for round_ in range(rounds + 1):
        for q in queries:
            response = client.get(path, params={"q": q})
            response.raise_for_status()
            if round_:
                found[q].append(server_ms(response))
    return found


def kind(client: httpx.Client, q: str) -> str:
    """What the API's All figure for Q is: exact, an estimate, or an "at least"."""
    response = client.get(COUNT_PATH, params={"q": q})
    response.raise_for_status()
    figure = response.json()["all"]
    return "estimated" if figure.get("estimated") else "at least" if figure["capped"] else "exact"


def p95(samples: Sequence[float]) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=20, method="inclusive")[-1]


def print_table(found: dict[str, list[float]], kinds: dict[str, str]) -> None:
    print("| q | figures | p50 ms | p95 ms | max ms | target |")
    print("|---|---|---|---|---|---|")
    for q, samples in found.items():
        flag = " **over**" if p95(samples) > TARGET_MS else ""
        print(
            f"| `{q}` | {kinds.get(q, '')} | {statistics.median(samples):.1f} "
            f"| {p95(samples):.1f} | {max(samples):.1f} | p95 ≤ {TARGET_MS:.0f}{flag} |"
        )
    everything = [s for samples in found.values() for s in samples]
    over = sum(p95(samples) > TARGET_MS for samples in found.values())
    print(
        f"\nall queries: p50 {statistics.median(everything):.1f} ms, p95 {p95(everything):.1f} ms,"
        f" max {max(everything):.1f} ms; {over} of {len(found)} queries over target"
    )


def main(argv: Sequence[str]) -> None:
    base, key = argv[0], argv[1]
    rounds = int(argv[2]) if len(argv) > 2 else 5
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as client:
        found = count_timings(client, QUERIES, rounds)
        kinds = {q: kind(client, q) for q in QUERIES}
    print_table(found, kinds)
    if len(argv) > 3:
        with open(argv[3], "w") as out:
            json.dump({"samples": found, "kinds": kinds}, out)


if __name__ == "__main__":
    main(sys.argv[1:])
