"""The API's Users list names each user's team, groups and roles, as reading the user does:
the roles by the ids on the user's row, the groups by the page's links."""

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from userdesk.organizations.models import Organization


def test_each_listed_user_has_their_team_groups_and_roles_in_name_order(
    client: TestClient, db: Session, org: Organization
) -> None:
    """Made in an order that is not the names' (ids against names), and shared unevenly."""
    zulu, alpha, mike = (factories.make_group(db, org, name) for name in ("Zulu", "Alpha", "Mike"))
    north, south = factories.make_team(db, org, "North"), factories.make_team(db, org, "South")
    many = factories.make_user(
        db, org, first_name="Ann", team=south, groups=[zulu, mike, alpha], roles=("Member", "Agent")
    )
    one = factories.make_user(
        db, org, first_name="Bob", team=north, groups=[mike], roles=("Administrator",)
    )
    none = factories.make_user(db, org, first_name="Cid", roles=())
    key = factories.make_api_key(db, org)

    response = client.get("/api/v1/users?limit=50", headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 200, response.text
    listed = {item["id"]: item for item in response.json()["items"]}
    for user, team, groups, roles in (
        (many, south, ["Alpha", "Mike", "Zulu"], ["Agent", "Member"]),
        (one, north, ["Mike"], ["Administrator"]),
        (none, None, [], []),
    ):
        item = listed[str(user.id)]
        assert item["team"] == (None if team is None else {"id": str(team.id), "name": team.name})
        assert [g["name"] for g in item["groups"]] == groups
        assert [r["name"] for r in item["roles"]] == roles
    assert listed[str(many.id)]["groups"][0] == {"id": str(alpha.id), "name": "Alpha"}
