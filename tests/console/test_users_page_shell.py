"""The Users page around its rows is rendered once per set of values (views.users_shell):
it must be what the templates render from the request's own objects, whatever the shape."""

from types import SimpleNamespace

from fastapi import FastAPI
from fastapi.testclient import TestClient
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.routing import Match

from tests import factories
from tests.route_inputs import declared_inputs
from userdesk.access import service as access
from userdesk.errors import InvalidInput
from userdesk.organizations.models import Organization
from userdesk.query.rules import Query, parse
from userdesk.segments import service as segments
from userdesk.segments.schemas import SegmentCreate
from userdesk.users import bulk
from userdesk.users import service as users
from userdesk.users.bulk import BULK_LABELS
from userdesk.users.models import User
from userdesk.web.console import routes, views
from userdesk.web.templating import fragment, templates

ROWS = "@@rows@@"


def _reference(
    db: Session, user: User, csrf: str, *, q: str = "", segment_id: int | None = None
) -> tuple[str, str]:
    """The page and its results as the templates render them from the real objects (the
    actor, the user and segments as rows, the page, the error), with ROWS for the rows."""
    actor = access.actor_for_user(db, user)
    page, error = None, None
    try:
        page = users.list_users(db, actor=actor, q=q)
    except InvalidInput as exc:
        error = exc
    choices = access.filter_choices(db, actor=actor)
    query = parse(q) if error is None else Query()
    links = views.around(
        query,
        "name",
        teams=tuple(choices.teams),
        groups=tuple(choices.groups),
        roles=tuple(choices.roles),
    )
    auth = SimpleNamespace(csrf_token=csrf)
    results = fragment(
        "console/_users_results.html",
        auth=auth,
        actor=actor,
        page=page,
        rows_html=Markup(ROWS),  # noqa: S704 - a constant
        bulk_actions=[
            (a, label) for a, label in BULK_LABELS.items() if actor.has(bulk.permission_for(a))
        ],
        error=error,
        q=q,
        query=query,
        sort="name",
        around=links,
        sorts=links.sorts,
    )
    whole = templates.get_template("console/users.html").render(
        request=SimpleNamespace(state=SimpleNamespace(csrf_token=csrf)),
        auth=auth,
        actor=actor,
        user=user,
        sidebar_segments=segments.list_segments(db, actor=actor),
        segment=segments.get_segment(db, actor=actor, segment_id=segment_id)
        if segment_id
        else None,
        nav="users",
        results_html=results,
        q=q,
        sort="name",
    )
    return whole, str(results)


def _same(answer: str, reference: str) -> None:
    if ROWS not in reference:  # a bad query shows no rows
        assert answer == reference
        return
    before, after = reference.split(ROWS)
    assert answer.startswith(before)
    assert answer.endswith(after)
    assert "<tr" in answer[len(before) : len(answer) - len(after)]


def _check(client: TestClient, db: Session, user: User, csrf: str, **kwargs: object) -> None:
    q = str(kwargs.get("q", ""))
    segment_id = kwargs.get("segment_id")
    params: dict[str, str] = {"q": q}
    if segment_id is not None:
        params["segment"] = str(segment_id)
    whole, results = _reference(db, user, csrf, q=q, segment_id=segment_id)  # type: ignore[arg-type]
    page = client.get("/console/users", params=params)
    assert page.status_code == (400 if ROWS not in whole else 200)
    _same(page.text, whole)
    htmx = {"HX-Request": "true", "HX-Target": "users-results"}
    part = client.get("/console/users", params=params, headers=htmx)
    assert part.status_code == 200
    _same(part.text, results)


def test_the_page_around_the_rows_is_what_the_templates_render_for_every_shape(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org, 'Support "EU" & <Co>')
    admin = factories.make_admin(db, org, first_name="Ada <&>", last_name="O'Admin")
    factories.make_user(db, org, first_name="Ann", team=team, roles=("Agent",))
    csrf = factories.login(client, admin.email)
    actor = access.actor_for_user(db, admin)
    _check(client, db, admin, csrf)
    mine = segments.create_segment(
        db, actor=actor, data=SegmentCreate(name="Mine <b>", query="status:active", sort="name")
    )
    segments.create_segment(
        db, actor=actor, data=SegmentCreate(name="Shared & all", query="", shared=True)
    )
    # A segment made since the last view shows at once (the shell is keyed by its values).
    _check(client, db, admin, csrf, q="status:active", segment_id=mine.id)
    _check(client, db, admin, csrf, q="ann \"<b>&'")
    _check(client, db, admin, csrf, q="status:nonsense")
    factories.make_team(db, org, "Newly made")  # a new filter choice shows at once
    _check(client, db, admin, csrf, q="ann")


def test_a_team_administrator_gets_the_page_of_their_own_permissions(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org)
    factories.make_admin(db, org)  # an admin's view cached first must not be shown
    team_admin = factories.make_user(db, org, roles=("Team Administrator",), team=team)
    csrf = factories.login(client, team_admin.email)
    _check(client, db, team_admin, csrf)
    _check(client, db, team_admin, csrf, q="status:active")


def test_the_common_request_gets_the_answer_of_the_declared_route(
    app: FastAPI, client: TestClient, db: Session, org: Organization
) -> None:
    """GET /console/users with q, sort and cursor is answered ahead of FastAPI's routing
    (routes.CommonUsersPage); a repeated parameter goes the declared way: both answer alike."""
    route = next(r for r in app.router.routes if isinstance(r, routes.CommonUsersPage))
    for query, common in (
        (b"q=a&sort=email&cursor=x", True),
        (b"q=a&q=a", False),
        (b"segment=1", False),
    ):
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/console/users",
            "query_string": query,
            "headers": [],
        }
        assert (route.matches(scope)[0] == Match.FULL) is common
    admin = factories.make_admin(db, org)
    for _ in range(55):
        factories.make_user(db, org)
    anonymous = client.get("/console/users?q=ann", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/console/users%3Fq%3Dann"
    factories.login(client, admin.email)
    for query in ("?q=", "?q=status%3Aactive&sort=-created", "?q=status%3Anonsense"):
        common = client.get(f"/console/users{query}")
        repeated = query.rsplit("&", 1)[-1].lstrip("?")
        declared = client.get(f"/console/users{query}&{repeated}")
        assert common.status_code == declared.status_code
        assert common.text == declared.text
    first = client.get("/console/users").text
    more = first.split('id="load-more"', 1)[1].split('hx-get="', 1)[1].split('"', 1)[0]
    htmx = {"HX-Request": "true", "HX-Target": "load-more"}
    rows = client.get(more.replace("&amp;", "&"), headers=htmx)
    assert rows.status_code == 200
    assert rows.text.count("<tr data-user-id") == 6


def test_the_common_route_reads_every_parameter_the_declared_route_takes() -> None:
    """A parameter or dependency added to the declared Users page must be added to
    routes.CommonUsersPage too (or be one that sends the request the declared way, as a
    segment does): this fails until it is."""
    assert declared_inputs(routes.router, routes.users_list) == {
        "query": {"q", "sort", "cursor", "segment", "columns"},
        "other": set(),
        "calls": {"unit_of_work", "console_auth"},
    }
