"""Every page of the console and the portal, found from the app's own routes and opened with
real ids of the live server's demo data: what the page-wide browser checks walk through.

A new GET page is walked without editing anything here; only a page that needs a query to
render at all (the bulk preview) or an id of a kind not seen before needs a line below.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select

from tests.browser.conftest import LiveServer
from userdesk.access.service import actor_for_user
from userdesk.churn import scoring
from userdesk.churn.models import ChurnScore
from userdesk.config import Settings
from userdesk.imports import service as imports
from userdesk.invitations import service as invitations
from userdesk.invitations.schemas import InvitationCreate, Person
from userdesk.jobs import service as jobs
from userdesk.mail.models import OutboxMessage
from userdesk.segments import service as segments
from userdesk.segments.schemas import SegmentCreate
from userdesk.users import fields as user_fields
from userdesk.users.field_schemas import UserFieldCreate
from userdesk.users.models import User
from userdesk.users.rules import UserStatus
from userdesk.webhooks import service as webhooks
from userdesk.webhooks.schemas import WebhookEndpointCreate

# Where the screenshots go (README: "Screenshots of every page"); var/ is ignored by git.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

# Pages that render nothing useful without a query: the query a person arrives with.
QUERIES = {"/console/bulk": "?action=disable&q=status%3Aactive"}

# Pages whose answer for the demo organization is a refusal, a 4xx with a page that says
# why: registration there is by invitation only.
REFUSALS = ("/signup",)

# Faces that are not pages: the API (but for its docs page), probes, files.
NOT_PAGES = ("/api/", "/healthz", "/readyz", "/static/")


@dataclass(frozen=True)
class Target:
    """One page to open: its route, the URL with real ids, and whether a 4xx is its point
    (a link whose token is unknown shows the page that says so)."""

    route: str
    url: str
    expect_error: bool = False

    @property
    def slug(self) -> str:
        """The URL as a file name, a real token (new each run) written as "token"."""
        named = self.url if "/invite/" not in self.url else self.route
        return re.sub(r"[^a-z0-9]+", "-", named.lower()).strip("-") or "root"


def get_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """Each GET route of APP with its full path, the included routers' walked into."""

    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, APIRoute]]:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                yield from walk(inner.routes, prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute) and "GET" in route.methods:
                yield prefix + route.path, route

    yield from walk(list(app.routes), "")


def _invitation_token(db: Any, admin: User) -> str:
    actor = actor_for_user(db, admin)
    data = InvitationCreate(people=[Person(email="walk.invited@example.com", first_name="Walt")])
    invitations.invite(db, actor=actor, data=data, base_url="http://walk")
    db.flush()
    for message in db.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())):
        if match := re.search(r"/invite/([A-Za-z0-9_\-]+)", str(message.payload)):
            return match.group(1)
    raise AssertionError("the invitation email has no /invite/ link")


def _users_to_show(db: Any, admin: User) -> list[str]:
    """A user of each kind the user page shows differently: the most at risk of churning
    (the churn card), an active member, one Not Activated, one disabled, one deleted."""
    most_at_risk = db.scalar(
        select(ChurnScore.user_id)
        .where(ChurnScore.user_id != admin.id)
        .order_by(ChurnScore.probability.desc())
        .limit(1)
    )
    shown = [most_at_risk] if most_at_risk is not None else []
    for status in (UserStatus.ACTIVE, UserStatus.PENDING, UserStatus.DISABLED, UserStatus.DELETED):
        found = db.scalar(
            select(User.id)
            .where(User.status == status, User.id != admin.id, User.id.not_in(shown))
            .order_by(User.id)
            .limit(1)
        )
        shown += [found] if found is not None else []
    return [str(user_id) for user_id in shown]


def real_ids(live_server: LiveServer, settings: Settings) -> dict[str, list[str]]:
    """Ids of each kind the pages take, made where the demo has none."""
    with live_server.database.unit_of_work() as db:
        admin = db.scalars(select(User).where(User.email == live_server.admin_email)).one()
        actor = actor_for_user(db, admin)
        segment = segments.create_segment(
            db, actor=actor, data=SegmentCreate(name="Walked", query="status:active")
        )
        upload = imports.read_upload(
            actor=actor, filename="walk.csv", content=b"email,first_name\nwalk@example.com,W\n"
        )
        job = imports.keep_draft(db, actor=actor, upload=upload)
        created = webhooks.create_endpoint(
            db,
            actor=actor,
            settings=settings,
            data=WebhookEndpointCreate(url="https://hooks.example.com/userdesk"),
        )
        endpoint_id = created.endpoint.id
        message = webhooks.send_test(db, actor=actor, endpoint_id=endpoint_id)
        token = _invitation_token(db, admin)
        field = user_fields.create_field(
            db,
            actor=actor,
            data=UserFieldCreate(key="plan", label="Plan", type="choice", options=["Free", "Pro"]),
        )
        churn_run = scoring.start(db, actor=actor)  # the churn card, the dashboard's levels
        while not jobs.step(db, job=churn_run, base_url=settings.base_url):
            pass
        assert churn_run.status == "done", churn_run.problems
        db.flush()
        return {
            "user_id": _users_to_show(db, admin),
            "segment_id": [str(segment.id)],
            "job_id": [str(job.id), str(churn_run.id)],
            "endpoint_id": [str(endpoint_id)],
            "message_id": [str(message.id)],
            "invite_token": [token],
            "field_id": [str(field.id)],
        }


def targets(app: FastAPI, ids: dict[str, list[str]]) -> list[Target]:
    """Every page of APP, with IDS in its path; the enum path parameters once per value."""
    found: list[Target] = []
    for path, route in get_routes(app):
        if path.endswith((".csv", "/export")) or (
            path.startswith(NOT_PAGES) and not path.endswith("/docs")
        ):
            continue
        urls = [path]
        expect_error = path in REFUSALS
        for param in route.dependant.path_params:
            name = param.name
            kind = param.field_info.annotation
            if isinstance(kind, type) and issubclass(kind, enum.Enum):
                urls = [u.replace(f"{{{name}}}", str(v.value)) for u in urls for v in kind]
            elif name == "token" and path.startswith("/invite/"):
                urls = [u.replace("{token}", t) for u in urls for t in ids["invite_token"]]
            elif name == "token":
                urls = [u.replace("{token}", "no-such-token") for u in urls]
                expect_error = True
            else:
                assert name in ids, f"{path}: no real id for {{{name}}}; add one to real_ids"
                urls = [u.replace(f"{{{name}}}", i) for u in urls for i in ids[name]]
        found += [Target(path, u + QUERIES.get(path, ""), expect_error) for u in urls]
    return found
