"""How much longer an anonymous answer takes for an address with an account than for one
without: `/password/forgot` and `/signup`, over HTTP, with registration opened in the
bench organization for the time it takes."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import httpx
from sqlalchemy import select, text

from bench.common import form_token

ALIKE_ROUNDS = 30  # timed requests per kind of address
ALIKE_WARM_UP = 5


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


def enumeration_rows(base: str, database_url: str) -> list[tuple[str, str, str]]:
    """How much longer an anonymous answer takes for an address with an account than for one
    without (or the reverse): /password/forgot and /signup, medians of 30 each, over HTTP."""
    slug, known, was = _open_registration(database_url)
    rows = []
    try:
        with httpx.Client(base_url=base, follow_redirects=False) as client:
            token = form_token(client, "/password/forgot")

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
                    rows.append((case, figure, "< 1.3"))
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
