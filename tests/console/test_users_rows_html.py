"""The Users list's rows written in Python are the markup its template wrote, byte for byte."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import cycle
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.access import service as access
from userdesk.organizations.models import Organization
from userdesk.users.rules import UserStatus
from userdesk.users.schemas import user_view
from userdesk.web.console import rows_html, views
from userdesk.web.console.views import Row, RowMenus
from userdesk.web.templating import Zone, templates

# The template the rows were rendered with (console/_users_rows.html), kept as the reference.
ROWS_TEMPLATE = (Path(__file__).parent / "users_rows_reference.html").read_text()

Q = 'name:"Ann & <Bo>" status:active'
CURSOR = "eyJrIjpbIkFubiJdfQ=="


def _both(
    rows: list[Row],
    menus: RowMenus,
    *,
    csrf: str,
    cursor: str | None,
    items: Sequence[Mapping[str, Any]] = (),
    zone: str | None = None,
) -> tuple[str, str]:
    """The rows as render_rows writes them and as the reference template does, with the
    `timestamp` filter for an admin in time ZONE (ITEMS: the users, for their times)."""
    reference = templates.env.from_string(ROWS_TEMPLATE).render(
        auth=SimpleNamespace(
            csrf_token=csrf, signed_in=SimpleNamespace(user=SimpleNamespace(time_zone=zone))
        ),
        times={v["id"]: (v["last_seen_at"], v["created_at"]) for v in items},
        page=SimpleNamespace(next_cursor=cursor),
        rows=rows,
        row_menus=menus,
        q=Q,
        sort="-seen",
    )
    more = {"q": Q, "sort": "-seen", "cursor": cursor} if cursor else None
    return str(rows_html.render_rows(rows, menus, csrf_token=csrf, more=more)), reference


def test_rows_of_every_status_and_flag_are_written_as_the_template_wrote_them(
    db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    team = factories.make_team(db, org, name='Support "EU" & <Co>')
    now = datetime.now(UTC)
    made = []
    flags = cycle([(True, True), (False, False), (True, False), (False, True)])
    ages = (timedelta(seconds=5), timedelta(hours=3), timedelta(days=90))
    seen = cycle([None, *(now - age for age in ages)])
    churn = cycle([None, "low", "medium", "high"])
    for status in UserStatus:
        for n in range(4):
            user = factories.make_user(
                db,
                org,
                status=status.value,
                first_name=f"O'Brien <{status.value}> & {n}",
                roles=("Agent", "Member") if n % 2 else ("Member",),
                team=team if n % 2 else None,
                last_seen_at=next(seen),
            )
            verified, validated = next(flags)
            user.email_verified_at = now if verified else None
            user.validated_at = now if validated else None
            user.churn_level = next(churn)
            made.append(user)
    db.flush()
    actor = access.actor_for_user(db, admin)
    items = [
        user_view(
            u,
            team={"id": str(team.id), "name": team.name} if u.team_id else None,
            groups=[],
            roles=[{"id": "1", "name": "Agent & <Co>"}, {"id": "2", "name": "Member"}],
        )
        for u in [admin, *made]
    ]
    presence = {v["id"]: state for v, state in zip(items, cycle(["online", "away", ""]))}
    for zone, cursor in ((None, None), ("Europe/Paris", CURSOR), ("America/New_York", None)):
        rows, menus = views.rows(actor, items, presence, now, Zone.of(zone))
        assert len(menus.actions) > 3
        assert {r.presence for r in rows} == {"Online", "Away", ""}
        assert {r.churn for r in rows} == {"", "low", "medium", "high"}
        assert {r.may_resend_verification for r in rows} == {True, False}
        fast, reference = _both(rows, menus, csrf="tok-<&>", cursor=cursor, items=items, zone=zone)
        assert "&lt;Co&gt;" in fast
        assert "O&#39;Brien" in fast
        assert "3 hours ago</time>" in fast
        assert ("UTC</time>" in fast or ' UTC">' in fast) == (zone is None)
        assert fast == reference
        more = {"q": Q, "sort": "-seen", "cursor": cursor} if cursor else None
        one_pass = rows_html.write_rows(
            actor, items, presence, now, csrf_token="tok-<&>", more=more, zone=zone
        )
        assert one_pass == reference


def test_rows_written_in_one_pass_are_the_rows_of_a_team_admin(
    db: Session, org: Organization
) -> None:
    """Whose menus depend on the user's team, and who may not resend verification."""
    team = factories.make_team(db, org, name="North")
    team_admin = factories.make_user(db, org, roles=("Team Administrator",), team=team)
    made = [factories.make_user(db, org, team=team if n % 2 else None) for n in range(4)]
    for user in made[:2]:
        user.email_verified_at = None
    db.flush()
    actor = access.actor_for_user(db, team_admin)
    assert views._by_team(actor.grants)
    items = [
        user_view(
            u,
            team={"id": str(team.id), "name": team.name} if u.team_id else None,
            groups=[],
            roles=[],
        )
        for u in [team_admin, *made]
    ]
    now = datetime.now(UTC)
    rows, menus = views.rows(actor, items, {}, now)
    assert {r.menu == "" for r in rows} == {True, False}
    fast, reference = _both(rows, menus, csrf="t", cursor=CURSOR, items=items)
    assert fast == reference
    more = {"q": Q, "sort": "-seen", "cursor": CURSOR}
    assert rows_html.write_rows(actor, items, {}, now, csrf_token="t", more=more) == reference


def test_no_rows_are_written_as_the_template_wrote_them(db: Session, org: Organization) -> None:
    fast, reference = _both([], RowMenus({}), csrf="tok", cursor=None)
    assert "No users to display" in fast
    assert fast == reference
    actor = access.actor_for_user(db, factories.make_admin(db, org))
    now = datetime.now(UTC)
    assert rows_html.write_rows(actor, [], {}, now, csrf_token="tok", more=None) == reference


def test_values_are_escaped_as_markupsafe_escapes_them() -> None:
    """The rows' own escaping writes the entities markupsafe writes, for every character
    it changes and around them."""
    from markupsafe import escape

    for text in ("", "plain", "&", "<b>", "O'Brien", 'say "hi"', "a&amp;b", "&<>'\"é"):
        assert rows_html._escaped(text) == str(escape(text))


def test_the_users_list_shows_times_in_the_admins_time_zone(
    client: TestClient, db: Session, org: Organization
) -> None:
    """An admin with business hours in Tokyo reads the list's times in Tokyo's time, as
    every other page's `timestamp` writes them; one with none reads UTC (the browser then
    shows its own zone)."""
    admin = factories.make_admin(db, org)
    admin.business_hours = {"time_zone": "Asia/Tokyo", "weekly": {}}
    seen = datetime.now(UTC) - timedelta(hours=3)
    factories.make_user(db, org, first_name="Tokyo", last_seen_at=seen)
    db.flush()
    factories.login(client, admin.email)
    page = client.get("/console/users").text
    assert 'data-tz="Asia/Tokyo"' in page
    local = seen.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M JST")
    assert f'data-relative title="{local}">3 hours ago</time>' in page
    assert " UTC" not in page.split('data-testid="users-table"', 1)[-1].split("</table>", 1)[0]
    admin.business_hours = None
    db.flush()
    assert 'data-tz="' not in client.get("/console/users").text
