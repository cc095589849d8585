"""The Users list sorted by risk (sort=churn / -churn), and the churn probability in the
list, one user's read and the export."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.organizations.models import Organization
from userdesk.users.models import User

PROBABILITIES = [0.912, 0.05, None, 0.5, 0.5, None, 0.333, 0.999, 0.0, 0.5]


def _people(db: Session, org: Organization) -> list[User]:
    made = []
    for probability in PROBABILITIES:
        user = factories.make_user(db, org)
        user.churn_probability = probability
        user.churn_level = None if probability is None else "high" if probability > 0.6 else "low"
        made.append(user)
    db.flush()
    return made


def _all(client: TestClient, key: str, sort: str, limit: int) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    while True:
        params: dict[str, object] = {"sort": sort, "limit": limit, "q": "tester"}
        if cursor:
            params["cursor"] = cursor
        response = client.get(
            "/api/v1/users", params=params, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200, response.text
        items.extend(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


def test_sorted_by_risk_both_ways_with_the_unscored_at_the_low_end(
    client: TestClient, db: Session, org: Organization
) -> None:
    """Paged 3 at a time, each user once: -churn most likely to churn first and the users
    not scored yet last; churn the reverse (ties by id, as every sort of the list)."""
    people = _people(db, org)
    key = factories.make_api_key(db, org)
    expected = sorted(
        ((u.churn_probability, u.id) for u in people),
        key=lambda pair: (pair[0] is not None, pair[0] or 0.0, pair[1]),
    )
    ascending = _all(client, key, "churn", 3)
    assert [(u["churn_probability"], int(str(u["id"]))) for u in ascending] == expected
    descending = _all(client, key, "-churn", 3)
    assert [(u["churn_probability"], int(str(u["id"]))) for u in descending] == expected[::-1]
    assert descending[0]["churn_probability"] == 0.999
    assert descending[-1]["churn_probability"] is None


def test_an_unknown_sort_names_the_churn_sorts(
    client: TestClient, db: Session, org: Organization
) -> None:
    key = factories.make_api_key(db, org)
    response = client.get(
        "/api/v1/users", params={"sort": "risk"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 400
    assert "-churn" in response.text


def test_the_export_has_the_probability_next_to_the_level(
    client: TestClient, db: Session, org: Organization
) -> None:
    people = _people(db, org)
    key = factories.make_api_key(db, org)
    response = client.get(
        "/api/v1/users/export",
        params={"q": "tester", "sort": "-churn"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    header = list(rows[0])
    assert header[header.index("churn") + 1] == "churn_probability"
    by_email = {row["email"]: row for row in rows}
    for user in people:
        row = by_email[user.email]
        if user.churn_probability is None:
            assert (row["churn"], row["churn_probability"]) == ("", "")
        else:
            assert row["churn"] == user.churn_level
            assert float(row["churn_probability"]) == user.churn_probability
    assert rows[0]["email"] == people[PROBABILITIES.index(0.999)].email
