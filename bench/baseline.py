"""The baseline: a bare Starlette endpoint serving the same first page of users as
GET /api/v1/users (the same JSON, byte for byte: links, churn probability, custom fields,
cursor), with the raw driver and orjson. tests/test_bench_baseline.py holds it to that.

    BENCH_DATABASE=bench/data/users-1000000.db uvicorn bench.baseline:app
"""

from __future__ import annotations

import base64
import os
import sqlite3

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

LABELS = {
    "pending": "Not Activated",
    "active": "Active",
    "disabled": "Disabled",
    "banned": "Banned",
    "trashed": "Trashed",
    "deleted": "Deleted",
}
PAGE = """
SELECT id, email, first_name, last_name, status, status_reason, status_until,
       email_verified_at, validated_at, team_id, created_via, created_at, last_login_at,
       last_seen_at, churn_level, churn_probability, attributes
FROM users WHERE organization_id = ? ORDER BY first_name, last_name, id LIMIT ?
"""
LINKS = """
SELECT 'group', ug.user_id, g.id, g.name FROM user_groups ug JOIN groups g ON g.id = ug.group_id
WHERE ug.user_id IN ({ids})
UNION ALL
SELECT 'role', ur.user_id, r.id, r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id
WHERE ur.user_id IN ({ids})
UNION ALL
SELECT 'team', NULL, t.id, t.name FROM teams t WHERE t.id IN ({teams})
ORDER BY 4
"""

FIELDS = """
SELECT key FROM user_fields WHERE organization_id = ? AND archived_at IS NULL ORDER BY position
"""
ORGANIZATION = 1

connection = sqlite3.connect(os.environ["BENCH_DATABASE"], check_same_thread=False)
fields = [key for (key,) in connection.execute(FIELDS, (ORGANIZATION,))]


def _time(value: str | None) -> str | None:
    return None if value is None else value.replace(" ", "T") + "Z"


def _attributes(stored: str | None) -> dict[str, object]:
    """The organization's fields' values, in the fields' order."""
    if not fields or not stored:
        return {}
    values = orjson.loads(stored)
    return {key: values[key] for key in fields if key in values}


async def users(request: Request) -> Response:
    limit = int(request.query_params.get("limit", "50"))
    rows = connection.execute(PAGE, (ORGANIZATION, limit + 1)).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [r[0] for r in rows]
    teams = list({r[9] for r in rows if r[9] is not None})
    sql = LINKS.format(ids=",".join("?" * len(ids)), teams=",".join("?" * len(teams)))
    team_names: dict[int, dict[str, str]] = {}
    groups: dict[int, list[dict[str, str]]] = {}
    roles: dict[int, list[dict[str, str]]] = {}
    for kind, user_id, link_id, name in connection.execute(sql, (*ids, *ids, *teams)):
        ref = {"id": str(link_id), "name": name}
        if kind == "team":
            team_names[link_id] = ref
        else:
            (groups if kind == "group" else roles).setdefault(user_id, []).append(ref)
    items = []
    for r in rows:
        first, last, email = r[2], r[3], r[1]
        items.append(
            {
                "id": str(r[0]),
                "email": email,
                "first_name": first,
                "last_name": last,
                "name": f"{first} {last}".strip() or email,
                "status": r[4],
                "status_label": LABELS[r[4]],
                "email_verified": r[7] is not None,
                "validated": r[8] is not None,
                "team": team_names.get(r[9]),
                "groups": groups.get(r[0], []),
                "roles": roles.get(r[0], []),
                "created_via": r[10],
                "created_at": _time(r[11]),
                "last_login_at": _time(r[12]),
                "last_seen_at": _time(r[13]),
                "status_reason": r[5],
                "banned_until": _time(r[6]) if r[4] == "banned" else None,
                "churn": r[14],
                "churn_probability": r[15],
                "attributes": _attributes(r[16]),
            }
        )
    cursor = None
    if more:
        last = rows[-1]
        key = orjson.dumps(["name", [last[2], last[3], last[0]]])
        cursor = base64.urlsafe_b64encode(key).decode().rstrip("=")
    body = orjson.dumps({"items": items, "next_cursor": cursor})
    return Response(body, media_type="application/json")


app = Starlette(routes=[Route("/users", users)])
