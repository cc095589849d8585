"""The queries the list page must answer fast, whatever they are, and their timing.

A page of the list (`GET /api/v1/users?q=...&sort=...`, the console's list reads the same
service) must answer within PAGE_TARGET_MS at p95 for every query here, and a search of
one or two characters within SHORT_TARGET_MS at worst (issue 17). The set is data: common
and rare terms, one and two letters, every filter alone, and filters combined with terms
and with each other, each under the sorts people use. The names are those of the demo
data (userdesk.demo, seed 1), so the set works on any bench database.

    .venv/bin/python -m bench.queries BASE_URL API_KEY [ROUNDS] [JSON_OUT]

prints p50 / p95 / max per query from the Server-Timing header of a running server
(USERDESK_SERVER_TIMING=1).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections.abc import Sequence

import httpx

PAGE_TARGET_MS = 50.0
SHORT_TARGET_MS = 300.0
SORTS = ("name", "-seen", "created", "email")

# The first person `userdesk demo --seed 1` adds: in every bench database, whatever its size.
KNOWN_EMAIL = "megan.hickman@example.com"
TERMS = ("ann", "son", "mar", "lee", "example", "ell", "zq", "xyz", "müller", KNOWN_EMAIL)
SHORT = ("a", "e", "x", "el", "jo", "zq")
FILTERS = (
    "status:active",
    "status:pending",
    "status:disabled",
    "status:banned",
    "status:trashed",
    "status:deleted",
    "status:banned,trashed",
    "role:Administrator",  # the rarest role: one person in 2,000
    'role:"Team Administrator"',
    "role:Agent",
    "role:Member",
    'team:"Support EU"',
    "team:Sales",
    "group:VIP",
    'group:"Early adopters"',
    "verified:yes",
    "verified:no",
    "validated:yes",
    "validated:no",
    "seen:<1d",
    "seen:<7d",
    "seen:>90d",
    "seen:>=2026-06-01 seen:<2026-07-01",
    "created:<7d",
    "created:>365d",
    "created:>=2026-01-01",
    "churn:high",  # nobody in the demo data has a churn level until scoring runs
    "churn:low,medium",
    "login:never",
)
COMBINED = (
    # a term and a filter
    "ann status:active",
    "son status:banned",
    "mar verified:no",
    "lee login:never",
    "example.org status:pending",
    "ell team:Sales",
    "müller churn:high",
    "xyz status:active",
    # a rare filter and a common term
    "ann group:Trial",  # the smallest group of the demo data
    "ann role:Administrator",
    "son role:Agent",
    "mar seen:<1d",
    "example created:<7d",
    # two filters
    "status:active verified:no",
    "status:pending team:Sales",
    "status:banned role:Agent",
    "login:never validated:no",
    "group:VIP churn:high",
    "team:Billing seen:>90d",
    "role:Administrator status:active",
    "created:<7d status:disabled",
    # short terms and filters
    "a status:active",
    "x status:active verified:no",
    "jo verified:no team:Sales",
    "el status:pending group:VIP",
    "e login:never seen:>90d",
    "zq role:Member status:active",
    # two terms
    "ann lee",
    "jo ng",
    "mar example.net",
)


def _pairs(queries: Sequence[str]) -> list[tuple[str, str]]:
    return [(q, sort) for q in queries for sort in SORTS]


QUERIES: list[tuple[str, str]] = _pairs(("", *TERMS, *SHORT, *FILTERS, *COMBINED))
# Searches of one or two characters (with or without filters): the looser target.
SHORT_QUERIES: list[tuple[str, str]] = [
    (q, sort)
    for q, sort in QUERIES
    if any(0 < len(word) < 3 for word in q.split() if ":" not in word)
]


def server_ms(response: httpx.Response) -> float:
    match = re.search(r"dur=([\d.]+)", response.headers.get("server-timing", ""))
    if not match:
        raise RuntimeError(f"no Server-Timing on {response.request.url}")
    return float(match.group(1))


def page_timings(
    client: httpx.Client, queries: Sequence[tuple[str, str]], rounds: int
) -> dict[tuple[str, str], list[float]]:
    """Server-side milliseconds of ROUNDS first pages of each (q, sort) in QUERIES.

    CLIENT carries the base URL and the API key. Each query is asked once unmeasured
    first (a cold statement cache is not what users see), then the rounds go through the
    whole set in turn, so that one query's pages are not all measured back to back.
    """
    found: dict[tuple[str, str], list[float]] = {pair: [] for pair in queries}
    for round_ in range(rounds + 1):
        for q, sort in queries:
            response = client.get("/api/v1/users", params={"q": q, "sort": sort})
            response.raise_for_status()
            if round_:
                found[q, sort].append(server_ms(response))
    return found


def over_target(pair: tuple[str, str], samples: Sequence[float]) -> bool:
    if pair in SHORT_QUERIES:
        return max(samples) > SHORT_TARGET_MS
    return _p95(samples) > PAGE_TARGET_MS


def _p95(samples: Sequence[float]) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=20, method="inclusive")[-1]


def print_table(found: dict[tuple[str, str], list[float]]) -> None:
    print("| q | sort | p50 ms | p95 ms | max ms | target |")
    print("|---|---|---|---|---|---|")
    for (q, sort), samples in found.items():
        target = f"max ≤ {SHORT_TARGET_MS:.0f}" if (q, sort) in SHORT_QUERIES else "p95 ≤ 50"
        flag = " **over**" if over_target((q, sort), samples) else ""
        print(
            f"| `{q}` | {sort} | {statistics.median(samples):.1f} | {_p95(samples):.1f} "
            f"| {max(samples):.1f} | {target}{flag} |"
        )
    over = sum(over_target(pair, samples) for pair, samples in found.items())
    print(f"\n{over} of {len(found)} over target")


def main(argv: Sequence[str]) -> None:
    base, key = argv[0], argv[1]
    rounds = int(argv[2]) if len(argv) > 2 else 5
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as client:
        found = page_timings(client, QUERIES, rounds)
    print_table(found)
    if len(argv) > 3:
        with open(argv[3], "w") as out:
            json.dump([[q, sort, samples] for (q, sort), samples in found.items()], out)


if __name__ == "__main__":
    main(sys.argv[1:])
