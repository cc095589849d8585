from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.activity.models import ActivityEvent
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_timeline_merges_what_the_user_did_and_what_was_done_to_them(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    user = factories.make_user(db, org)
    now = utcnow()
    for minutes in (50, 30, 30, 10):  # two at the same moment
        db.add(
            ActivityEvent(
                organization_id=org.id,
                user_id=user.id,
                type="ticket.created",
                occurred_at=now - timedelta(minutes=minutes),
                properties={"m": minutes},
            )
        )
    db.flush()
    client.post(f"/api/v1/users/{user.id}/disable", json={"reason": "Spam"}, headers=bearer(key))
    client.post(f"/api/v1/users/{user.id}/enable", headers=bearer(key))
    seen = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get(
            f"/api/v1/users/{user.id}/activity", params=params, headers=bearer(key)
        ).json()
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [e["action"] for e in seen] == [
        "user.enabled",
        "user.disabled",
        "ticket.created",
        "ticket.created",
        "ticket.created",
        "ticket.created",
    ]
    assert len({(e["source"], e["id"]) for e in seen}) == 6
    times = [e["occurred_at"] for e in seen]
    assert times == sorted(times, reverse=True)
    assert seen[1]["details"]["reason"] == "Spam"
    assert seen[1]["actor"].startswith("API key")


def test_the_timeline_needs_users_activity_and_reach(
    client: TestClient, db: Session, org: Organization
) -> None:
    team = factories.make_team(db, org)
    user = factories.make_user(db, org)
    member = factories.make_api_key(db, org, "Member")
    assert (
        client.get(f"/api/v1/users/{user.id}/activity", headers=bearer(member)).status_code == 403
    )
    team_admin = factories.make_api_key(db, org, "Team Administrator", team=team)
    assert (
        client.get(f"/api/v1/users/{user.id}/activity", headers=bearer(team_admin)).status_code
        == 404
    )


def test_the_users_page_shows_the_timeline(
    client: TestClient, db: Session, org: Organization
) -> None:
    admin = factories.make_admin(db, org)
    user = factories.make_user(db, org)
    db.add(
        ActivityEvent(
            organization_id=org.id,
            user_id=user.id,
            type="report.exported",
            occurred_at=utcnow(),
            properties={},
        )
    )
    db.flush()
    factories.login(client, admin.email)
    page = client.get(f"/console/users/{user.id}").text
    assert 'data-testid="timeline"' in page
    assert "report.exported" in page
