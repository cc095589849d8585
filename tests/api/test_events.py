from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from userdesk.activity.models import ActivityEvent
from userdesk.db.base import utcnow
from userdesk.organizations.models import Organization
from userdesk.users.models import User


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_good_events_are_kept_bad_ones_reported_by_index_and_ids_count_once(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    user = factories.make_user(db, org, email="ev@example.com")
    past = (utcnow() - timedelta(days=40)).isoformat()
    recent = (utcnow() - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    batch = [
        {"user_id": str(user.id), "type": "ticket.created", "occurred_at": past, "id": "t-1"},
        {
            "email": "EV@example.com",
            "type": "report.viewed",
            "occurred_at": recent,
            "properties": {"report": "churn"},
        },
        {"email": "ev@example.com", "type": "Bad Type", "occurred_at": recent},
        {"email": "nobody@example.com", "type": "x.y", "occurred_at": recent},
        {"user_id": str(user.id), "type": "x.y", "occurred_at": "yesterday"},
        "not an object",
    ]
    result = client.post("/api/v1/events", json=batch, headers=bearer(key)).json()
    assert result["accepted"] == 2
    assert [(e["index"], e["field"]) for e in result["errors"]] == [
        (2, "type"),
        (3, "email"),
        (4, "occurred_at"),
        (5, "event"),
    ]
    again = client.post("/api/v1/events", json=batch[:1], headers=bearer(key)).json()
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    stored = db.scalar(
        select(func.count()).select_from(ActivityEvent).where(ActivityEvent.user_id == user.id)
    )
    assert stored == 2
    db.expire_all()
    seen = db.get(User, user.id).last_seen_at  # type: ignore[union-attr]
    assert seen is not None
    assert utcnow() - seen < timedelta(minutes=6)


def test_a_batch_over_the_limit_is_refused_whole(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    batch = [{"email": "a@example.com", "type": "x", "occurred_at": utcnow().isoformat()}] * 1001
    response = client.post("/api/v1/events", json=batch, headers=bearer(key))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "events"


def test_events_need_users_update(client: TestClient, db: Session, org: Organization) -> None:
    agent = factories.make_api_key(db, org, "Agent")
    assert client.post("/api/v1/events", json=[], headers=bearer(agent)).status_code == 403
