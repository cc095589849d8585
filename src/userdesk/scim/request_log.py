"""The SCIM request log: what an identity provider did at /scim/v2, for Settings >
Provisioning ("why does Okta say failed?").

One row per request made with a valid token: method, path (its query's values kept only
for SCIM's own parameters), status, the error's scimType and detail (capped), how long it
took. Never a body, a header or a token. Requests that fail authentication belong to no
organization and are not logged here (the security log has them: web.security_log).

Bounded per organization: every PRUNE_EVERY-th row written (by id) prunes its
organization's rows older than KEEP_DAYS and beyond the newest KEEP_ROWS, with two
statements on the (organization_id, id) index.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from sqlalchemy import delete, insert, literal_column, select
from sqlalchemy.orm import Session

from userdesk.access.rules import Actor
from userdesk.db.base import utcnow
from userdesk.scim import tokens
from userdesk.scim.models import ScimRequest, ScimToken
from userdesk.users.models import User
from userdesk.users.rules import display_name

PATH_MAX = 500
METHOD_MAX = 10
SCIM_TYPE_MAX = 40
DETAIL_MAX = 300
KEEP_DAYS = 30
KEEP_ROWS = 10_000
PRUNE_EVERY = 100
SHOWN = 100  # the rows Settings > Provisioning shows
REDACTED = "…"
# The query parameters of RFC 7644 whose values say what was asked and hold no secret.
SCIM_PARAMETERS = frozenset(
    {
        "filter",
        "attributes",
        "excludedAttributes",
        "sortBy",
        "sortOrder",
        "startIndex",
        "count",
        "cursor",
    }
)
# A SCIM token pasted where it does not belong (a path segment): never kept.
_TOKEN = re.compile(re.escape(tokens.TOKEN_PREFIX) + r"[A-Za-z0-9_-]{8,}")
# What no column keeps well and no reader needs: control characters (NUL among them).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Outcome:
    """What the console says of a status: a word and a badge's colour (one of the tints
    whose words the console's stylesheet darkens enough to read)."""

    word: str
    tone: str


def capped(text: str, limit: int) -> str:
    """TEXT without a SCIM token, control characters or lone surrogates, at most LIMIT
    characters (the cut marked with `…`)."""
    text = _TOKEN.sub(tokens.TOKEN_PREFIX + REDACTED, text)
    text = _CONTROL.sub(" ", text).encode("utf-8", "replace").decode("utf-8")
    if len(text) <= limit:
        return text
    return text[: limit - 1] + REDACTED


def logged_path(path: str, query: str) -> str:
    """PATH and QUERY as the log keeps them: the values of parameters other than SCIM's
    replaced by `…` (an `access_token=` among them), a token anywhere replaced too,
    capped at PATH_MAX."""
    target = path
    if query:
        shown = []
        for name, value in parse_qsl(query, keep_blank_values=True):
            shown.append(f"{name}={value if name in SCIM_PARAMETERS else REDACTED}")
        target += "?" + "&".join(shown)
    return capped(target, PATH_MAX)


def record(
    db: Session,
    *,
    organization_id: int,
    token_id: int | None,
    method: str,
    path: str,
    status: int,
    scim_type: str | None = None,
    detail: str | None = None,
    duration_ms: int = 0,
    now: datetime | None = None,
) -> int:
    """Log one request of ORGANIZATION_ID's provider (PATH as `logged_path` made it); its
    id. Every PRUNE_EVERY-th row prunes the organization's log."""
    request = Logged(
        organization_id, token_id, method, path, status, scim_type, detail, duration_ms
    )
    return record_many(db, [request], now=now)[0]


@dataclass(frozen=True)
class Logged:
    """One request to log (`record`'s arguments)."""

    organization_id: int
    token_id: int | None
    method: str
    path: str
    status: int
    scim_type: str | None = None
    detail: str | None = None
    duration_ms: int = 0


def record_many(
    db: Session, requests: Sequence[Logged], *, now: datetime | None = None
) -> list[int]:
    """Log REQUESTS (as `record` logs one) in one statement; their ids (in no particular
    order). An organization one of whose new rows is a PRUNE_EVERY-th is pruned."""
    if not requests:
        return []
    now = now or utcnow()
    rows = [
        {
            "organization_id": request.organization_id,
            "token_id": request.token_id,
            "method": capped(request.method, METHOD_MAX),
            "path": capped(request.path, PATH_MAX),
            "status": max(0, min(request.status, 999)),
            "scim_type": capped(request.scim_type, SCIM_TYPE_MAX) if request.scim_type else None,
            "detail": capped(request.detail, DETAIL_MAX) if request.detail else None,
            "duration_ms": max(0, min(request.duration_ms, 2**31 - 1)),
            "created_at": now,
        }
        for request in requests
    ]
    written = db.execute(_INSERT, rows).all()
    due = {row.organization_id for row in written if row.id % PRUNE_EVERY == 0}
    for organization_id in sorted(due):
        prune(db, organization_id=organization_id, now=now)
    return [int(row.id) for row in written]


# Built once: its rows are parameters (a statement with values in it costs more to build
# than to run); one INSERT for them all, as their order is not asked for (SQLite would
# insert them one by one to return their ids in order).
_INSERT = insert(ScimRequest).returning(ScimRequest.id, ScimRequest.organization_id)


def prune(db: Session, *, organization_id: int, now: datetime | None = None) -> int:
    """Delete ORGANIZATION_ID's rows older than KEEP_DAYS and beyond its newest KEEP_ROWS;
    the rows deleted."""
    now = now or utcnow()
    gone = db.execute(
        delete(ScimRequest).where(
            ScimRequest.organization_id == organization_id,
            ScimRequest.created_at < now - timedelta(days=KEEP_DAYS),
        )
    ).rowcount  # type: ignore[attr-defined]
    oldest_kept = db.scalar(
        select(ScimRequest.id)
        .where(ScimRequest.organization_id == organization_id)
        .order_by(ScimRequest.id.desc())
        .offset(KEEP_ROWS - 1)
        .limit(1)
    )
    if oldest_kept is not None:
        gone += db.execute(
            delete(ScimRequest).where(
                ScimRequest.organization_id == organization_id, ScimRequest.id < oldest_kept
            )
        ).rowcount  # type: ignore[attr-defined]
    return int(gone)


def latest(
    db: Session, *, actor: Actor, errors_only: bool = False, limit: int = SHOWN
) -> list[ScimRequest]:
    """The organization's latest LIMIT requests (only those answered 4xx or 5xx with
    ERRORS_ONLY), newest first.

    Raises:
        PermissionDenied: the actor may not manage SCIM provisioning.
    """
    tokens.require_manager(actor)
    query = select(ScimRequest).where(ScimRequest.organization_id == actor.organization_id)
    if errors_only:
        # A literal, so that PostgreSQL's planner matches the partial index's predicate.
        query = query.where(ScimRequest.status >= literal_column("400"))
    return list(db.scalars(query.order_by(ScimRequest.id.desc()).limit(max(0, min(limit, SHOWN)))))


def outcome(status: int) -> Outcome:
    """STATUS in words: "Created", "Not found", "Failed" …, and its badge's tone."""
    if status < 400:
        return Outcome({201: "Created", 204: "Done"}.get(status, "OK"), "green")
    words = {
        400: "Bad request",
        401: "Not signed in",
        403: "Forbidden",
        404: "Not found",
        409: "Conflict",
        412: "Changed meanwhile",
        413: "Too large",
    }
    return Outcome(words.get(status, "Failed"), "red" if status >= 500 else "orange")


@dataclass(frozen=True)
class Provisioning:
    """What Settings > Provisioning shows: the tokens, who made them, the latest requests."""

    tokens: list[ScimToken]
    creators: dict[int, str]  # a token's id: the name of the admin who made it
    requests: list[ScimRequest]
    token_names: dict[int, str]  # a token's id: its name
    any_request: bool  # whether the provider called at all (the log may be filtered)


def overview(db: Session, *, actor: Actor, errors_only: bool = False) -> Provisioning:
    """The organization's tokens and latest requests (errors only with ERRORS_ONLY).

    Raises:
        PermissionDenied: the actor may not manage SCIM provisioning.
    """
    found = tokens.list_tokens(db, actor=actor)
    creator_ids = {t.created_by_id for t in found if t.created_by_id is not None}
    creators: dict[int, str] = {}
    if creator_ids:
        rows = db.execute(
            select(User.id, User.first_name, User.last_name, User.email).where(
                User.organization_id == actor.organization_id, User.id.in_(sorted(creator_ids))
            )
        )
        people = {row.id: display_name(row.first_name, row.last_name, row.email) for row in rows}
        creators = {t.id: people[t.created_by_id] for t in found if t.created_by_id in people}
    requests = latest(db, actor=actor, errors_only=errors_only)
    any_request = bool(requests) or (
        errors_only
        and db.scalar(
            select(ScimRequest.id)
            .where(ScimRequest.organization_id == actor.organization_id)
            .limit(1)
        )
        is not None
    )
    return Provisioning(
        tokens=found,
        creators=creators,
        requests=requests,
        token_names={t.id: t.name for t in found},
        any_request=any_request,
    )
