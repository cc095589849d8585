"""GET /api/v1/churn/runs, /runs/{id} and /runs/{id}/scores: a run's every score, paged
by cursor, most likely to churn first, within the reader's reach."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.churn.scored import Scored, run_scoring, scored_organization
from userdesk.churn.models import ChurnScore
from userdesk.organizations.models import Organization


@pytest.fixture
def scored(db: Session, org: Organization) -> Scored:
    return scored_organization(db, org)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _every_page(
    client: TestClient, key: str, path: str, **params: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every item of a cursor-paged list, and how many pages it took."""
    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query, headers=_bearer(key))
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


def test_every_score_of_a_run_once_as_the_per_user_read_says_it(
    client: TestClient, db: Session, scored: Scored
) -> None:
    """Paged 7 at a time, the scores cover every scored user once, most likely to churn
    first, each as GET /users/{id}/churn reads the user's latest score."""
    key = factories.make_api_key(db, scored.org)
    items, pages = _every_page(client, key, f"/api/v1/churn/runs/{scored.run.id}/scores", limit=7)
    assert pages == -(-len(scored.users) // 7)
    assert sorted(int(i["user_id"]) for i in items) == sorted(u.id for u in scored.users)
    order = [(i["probability"], int(i["user_id"])) for i in items]
    assert order == sorted(order, reverse=True)
    assert len({i["level"] for i in items}) > 1  # the org's people differ
    emails = {str(u.id): u.email for u in scored.users}
    for item in items:
        one = client.get(f"/api/v1/users/{item['user_id']}/churn", headers=_bearer(key)).json()
        assert (item["probability"], item["level"], item["reasons"]) == (
            one["probability"],
            one["level"],
            one["reasons"],
        )
        assert item["email"] == emails[item["user_id"]]


def test_the_users_list_shows_each_users_probability_beside_the_level(
    client: TestClient, db: Session, scored: Scored
) -> None:
    key = factories.make_api_key(db, scored.org)
    scores = {
        str(user_id): (probability, level)
        for user_id, probability, level in db.execute(
            select(ChurnScore.user_id, ChurnScore.probability, ChurnScore.level).where(
                ChurnScore.run_id == scored.run.id
            )
        )
    }
    listed = client.get("/api/v1/users", params={"limit": 500}, headers=_bearer(key)).json()
    shown = {u["id"]: u for u in listed["items"]}
    for user_id, (probability, level) in scores.items():
        assert shown[user_id]["churn"] == level
        assert shown[user_id]["churn_probability"] == round(probability, 3)
        one = client.get(f"/api/v1/users/{user_id}", headers=_bearer(key)).json()
        assert one["churn_probability"] == round(probability, 3)
    never = factories.make_user(db, scored.org)
    one = client.get(f"/api/v1/users/{never.id}", headers=_bearer(key)).json()
    assert (one["churn"], one["churn_probability"]) == (None, None)


def test_a_level_keeps_that_levels_scores_only(
    client: TestClient, db: Session, scored: Scored
) -> None:
    key = factories.make_api_key(db, scored.org)
    counts = dict(
        db.execute(
            select(ChurnScore.level, func.count())
            .where(ChurnScore.run_id == scored.run.id)
            .group_by(ChurnScore.level)
        ).all()
    )
    for level in ("low", "medium", "high"):
        items, _ = _every_page(
            client, key, f"/api/v1/churn/runs/{scored.run.id}/scores", level=level, limit=3
        )
        assert {i["level"] for i in items} <= {level}
        assert len(items) == counts.get(level, 0)


def test_a_team_administrator_reads_their_teams_scores_only(
    client: TestClient, db: Session, scored: Scored
) -> None:
    key = factories.make_api_key(db, scored.org, "Team Administrator", team=scored.team_a)
    items, _ = _every_page(client, key, f"/api/v1/churn/runs/{scored.run.id}/scores", limit=4)
    team_a = {str(u.id) for u in scored.users if u.team_id == scored.team_a.id}
    assert team_a
    assert {i["user_id"] for i in items} == team_a


def test_an_agent_reads_them_and_a_member_may_not(
    client: TestClient, db: Session, scored: Scored
) -> None:
    path = f"/api/v1/churn/runs/{scored.run.id}/scores"
    agent = factories.make_api_key(db, scored.org, "Agent")
    assert len(client.get(path, headers=_bearer(agent)).json()["items"]) == len(scored.users)
    member = factories.make_api_key(db, scored.org, "Member")
    for forbidden in (path, "/api/v1/churn/runs", f"/api/v1/churn/runs/{scored.run.id}"):
        assert client.get(forbidden, headers=_bearer(member)).status_code == 403


def test_another_organizations_run_does_not_exist(
    client: TestClient, db: Session, scored: Scored
) -> None:
    other = factories.make_organization(db)
    key = factories.make_api_key(db, other)
    for path in (
        f"/api/v1/churn/runs/{scored.run.id}",
        f"/api/v1/churn/runs/{scored.run.id}/scores",
        f"/api/v1/churn/runs/{scored.run.id + 1000}/scores",
    ):
        response = client.get(path, headers=_bearer(key))
        assert response.status_code == 404, path
        assert response.json()["code"] == "churn.run_not_found"
    listed = client.get("/api/v1/churn/runs", headers=_bearer(key)).json()
    assert listed == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"level": "extreme"}, "level"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(
    client: TestClient, db: Session, scored: Scored, params: dict[str, Any], field: str
) -> None:
    key = factories.make_api_key(db, scored.org)
    response = client.get(
        f"/api/v1/churn/runs/{scored.run.id}/scores", params=params, headers=_bearer(key)
    )
    assert response.status_code == 400, response.text
    assert field in {e["field"] for e in response.json()["errors"]}


def test_a_cursor_of_the_runs_is_not_one_of_the_scores(
    client: TestClient, db: Session, scored: Scored
) -> None:
    key = factories.make_api_key(db, scored.org)
    run_scoring(db, scored.org)
    runs = client.get("/api/v1/churn/runs", params={"limit": 1}, headers=_bearer(key)).json()
    assert runs["next_cursor"]
    response = client.get(
        f"/api/v1/churn/runs/{scored.run.id}/scores",
        params={"cursor": runs["next_cursor"]},
        headers=_bearer(key),
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "cursor"


def test_runs_are_listed_newest_first_and_read_one_by_one(
    client: TestClient, db: Session, scored: Scored
) -> None:
    key = factories.make_api_key(db, scored.org)
    second = run_scoring(db, scored.org)
    items, pages = _every_page(client, key, "/api/v1/churn/runs", limit=1)
    assert [i["id"] for i in items] == [str(second.id), str(scored.run.id)]
    assert pages == 2
    one = client.get(f"/api/v1/churn/runs/{second.id}", headers=_bearer(key)).json()
    assert one == items[0]
    assert one["users"] == len(scored.users)
    assert one["finished_at"] is not None
    assert one["predicts"]
