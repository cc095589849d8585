"""Cursor paging (RFC 9865) of /scim/v2/Users and /Groups: every page forwards and back,
signed cursors, and what a client may get wrong."""

from __future__ import annotations

import time
from typing import Any

import pytest
from scim2_models import Context
from sqlalchemy import event
from sqlalchemy.orm import Session

from tests import factories
from tests.scim.conftest import Scim, make_token
from userdesk.organizations.models import Organization
from userdesk.scim import cursors
from userdesk.scim import users as scim_users
from userdesk.users.models import User
from userdesk.web import scim as web_scim

SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
FAMILIES = ["Lee", "lee", "Kim", "Abe", "Zed", "Lee", "Orr", "abe", "Kim", "Moe", "Lee", "Nu"]


@pytest.fixture
def people(db: Session, org: Organization) -> list[User]:
    """Twelve users: names that tie (the id decides), some without an externalId, one
    deleted (SCIM never lists it), and one of another organization."""
    found = []
    for n, family in enumerate(FAMILIES):
        user = factories.make_user(
            db, org, email=f"p{n:02}@example.com", first_name=f"P{n}", last_name=family
        )
        user.external_id = None if n % 3 == 0 else f"ext-{(n * 7) % 5}"
        found.append(user)
    factories.make_user(db, org, email="gone@example.com", last_name="Lee", status="deleted")
    other = factories.make_organization(db)
    factories.make_user(db, other, email="stranger@example.com", last_name="Lee")
    db.flush()
    return found


def _page(scim: Scim, **params: Any) -> dict[str, Any]:
    response = scim.get("/Users", **params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _walk(scim: Scim, path: str, **params: Any) -> list[list[str]]:
    """Every page forwards from an empty cursor, then back from the last by
    previousCursor: the pages (ids) forwards, checked to be the same going back."""
    pages: list[list[str]] = []
    body = scim.get(path, cursor="", **params).json()
    assert "previousCursor" not in body, body
    while True:
        assert body["itemsPerPage"] == len(body.get("Resources", []))
        pages.append([item["id"] for item in body.get("Resources", [])])
        if "nextCursor" not in body:
            break
        assert len(pages) < 100, "the pages never end"
        body = scim.get(path, cursor=body["nextCursor"], **params).json()
        assert body.get("previousCursor"), body
    back = [pages[-1]]
    while "previousCursor" in body:
        body = scim.get(path, cursor=body["previousCursor"], **params).json()
        back.insert(0, [item["id"] for item in body["Resources"]])
        assert "nextCursor" in body
    assert back == pages
    return pages


def _order(users: list[User], key: Any, reverse: bool = False) -> list[str]:
    return [str(user.id) for user in sorted(users, key=key, reverse=reverse)]


@pytest.mark.parametrize(
    ("params", "key", "reverse"),
    [
        ({}, lambda u: u.id, False),
        ({"sortOrder": "descending"}, lambda u: u.id, True),
        ({"sortBy": "name.familyName"}, lambda u: (u.last_name, u.id), False),
        (
            {"sortBy": "name.familyName", "sortOrder": "descending"},
            lambda u: (u.last_name, u.id),
            True,
        ),
        # NULLs first ascending, last descending
        (
            {"sortBy": "externalId"},
            lambda u: (u.external_id is not None, u.external_id or "", u.id),
            False,
        ),
        (
            {"sortBy": "externalId", "sortOrder": "descending"},
            lambda u: (u.external_id is not None, u.external_id or "", u.id),
            True,
        ),
        ({"sortBy": "userName"}, lambda u: u.email_normalized, False),
    ],
)
@pytest.mark.parametrize("count", [1, 4, 5, 12, 50])
def test_every_page_forwards_and_back_is_the_whole_sorted_list(
    scim: Scim, people: list[User], params: dict[str, Any], key: Any, reverse: bool, count: int
) -> None:
    pages = _walk(scim, "/Users", count=count, **params)
    assert [i for page in pages for i in page] == _order(people, key, reverse)
    assert all(len(page) == count for page in pages[:-1])
    assert 0 < len(pages[-1]) <= count


def test_a_filtered_walk_holds_the_filtered_users_only(scim: Scim, people: list[User]) -> None:
    pages = _walk(scim, "/Users", count=2, filter='name.familyName eq "lee"')
    wanted = [u for u in people if u.last_name.lower() == "lee"]
    assert [i for page in pages for i in page] == _order(wanted, lambda u: u.id)
    first = _page(scim, cursor="", count=2, filter='name.familyName eq "lee"')
    assert first["totalResults"] == len(wanted) == 4
    assert "startIndex" not in first


def test_search_bodies_page_by_cursor(scim: Scim, people: list[User]) -> None:
    body = {"schemas": [SEARCH_SCHEMA], "cursor": "", "count": 5, "sortBy": "userName"}
    seen: list[str] = []
    while True:
        response = scim.send("POST", "/Users/.search", body)
        assert response.status_code == 200, response.text
        found = response.json()
        seen += [item["userName"] for item in found["Resources"]]
        if "nextCursor" not in found:
            break
        body["cursor"] = found["nextCursor"]
    assert seen == sorted(u.email for u in people)


def test_groups_page_by_cursor_both_ways(scim: Scim, db: Session, org: Organization) -> None:
    made = [factories.make_group(db, org, f"G{n % 4}-{n}") for n in range(9)]
    factories.make_group(db, factories.make_organization(db), "G0-foreign")
    pages = _walk(scim, "/Groups", count=2)
    assert [i for page in pages for i in page] == [
        str(g.id) for g in sorted(made, key=lambda g: g.name)
    ]
    down = _walk(scim, "/Groups", count=4, sortOrder="descending")
    assert [i for page in down for i in page] == [
        str(g.id) for g in sorted(made, key=lambda g: g.name, reverse=True)
    ]


def test_a_deep_page_is_a_key_set_read_without_offset(
    scim: Scim, people: list[User], db: Session
) -> None:
    """The third page reads after the second's last key, not past rows it skips (SQLite's
    LIMIT always carries an OFFSET: 0 here)."""
    body = _page(scim, cursor="", count=3)
    body = _page(scim, cursor=body["nextCursor"], count=3)
    seen: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    connection = db.connection()
    event.listen(connection, "before_cursor_execute", note)
    try:
        third = _page(scim, cursor=body["nextCursor"], count=3)
    finally:
        event.remove(connection, "before_cursor_execute", note)
    assert [item["id"] for item in third["Resources"]] == _order(people, lambda u: u.id)[6:9]
    pages = [(s, p) for s, p in seen if "LIMIT" in s.upper() and "(users.id) >" in s]
    assert pages, seen
    for statement, parameters in seen:
        if "OFFSET" in statement.upper():
            assert list(parameters)[-1] == 0, (statement, parameters)


def test_cursor_pagination_is_in_the_service_provider_config(scim: Scim) -> None:
    config = scim.get("/ServiceProviderConfig").json()
    assert config["pagination"] == {
        "cursor": True,
        "index": True,
        "defaultPaginationMethod": "index",
        "defaultPageSize": 100,
        "maxPageSize": 1000,
        "cursorTimeout": cursors.CURSOR_TIMEOUT,
    }


def _error(response: Any, scim_type: str) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["scimType"] == scim_type, body
    assert body["status"] == "400"
    return str(body["detail"])


def _tamper(cursor: str) -> str:
    payload, mac = cursor.split(".")
    flipped = payload[:-3] + ("A" if payload[-3] != "A" else "B") + payload[-2:]
    return f"{flipped}.{mac}"


@pytest.mark.parametrize(
    "forged",
    [
        "abc",
        "abc.def",
        "a.b.c",
        "." * 3,
        "x" * 5000,
        "eyJ2IjoxfQ.AAAA",
    ],
)
def test_a_made_up_cursor_is_an_invalid_cursor(scim: Scim, people: list[User], forged: str) -> None:
    _error(scim.get("/Users", cursor=forged), "invalidCursor")
    _error(scim.get("/Groups", cursor=forged), "invalidCursor")


@pytest.mark.parametrize("forged", ["a b", "abc!", "ü", "a/b", "a%00b"])
def test_a_cursor_with_characters_no_cursor_has_is_an_invalid_cursor(
    scim: Scim, people: list[User], forged: str
) -> None:
    _error(scim.get("/Users", cursor=forged), "invalidCursor")


def test_a_changed_cursor_is_refused_not_followed(scim: Scim, people: list[User]) -> None:
    first = _page(scim, cursor="", count=2)
    _error(scim.get("/Users", cursor=_tamper(first["nextCursor"]), count=2), "invalidCursor")
    payload, mac = first["nextCursor"].split(".")
    _error(scim.get("/Users", cursor=f"{payload}.{mac[::-1]}", count=2), "invalidCursor")


def test_a_cursor_is_good_for_its_own_list_only(scim: Scim, people: list[User]) -> None:
    """Another filter, sort or order, or the groups' list: not this cursor's list."""
    cursor = _page(scim, cursor="", count=2, sortBy="name.familyName")["nextCursor"]
    assert _page(scim, cursor=cursor, count=2, sortBy="name.familyName")["Resources"]
    for params in (
        {"sortBy": "userName"},
        {"sortBy": "name.familyName", "sortOrder": "descending"},
        {"sortBy": "name.familyName", "filter": 'name.familyName sw "l"'},
    ):
        _error(scim.get("/Users", cursor=cursor, count=2, **params), "invalidCursor")
    _error(scim.get("/Groups", cursor=cursor), "invalidCursor")


def test_a_cursor_of_another_organization_is_refused(
    scim: Scim, people: list[User], db: Session
) -> None:
    """Another organization's token with this one's cursor: a 400, not its users."""
    cursor = _page(scim, cursor="", count=2)["nextCursor"]
    other = factories.make_organization(db)
    for n in range(3):
        factories.make_user(db, other, email=f"o{n}@example.com")
    theirs = Scim(scim.client, make_token(db, other, "Entra"))
    detail = _error(theirs.get("/Users", cursor=cursor, count=2), "invalidCursor")
    assert "example.com" not in detail
    # their own cursors work for them, and only show their users
    own = theirs.get("/Users", cursor="", count=2).json()
    rest = theirs.get("/Users", cursor=own["nextCursor"], count=2).json()
    emails = [item["userName"] for item in own["Resources"] + rest["Resources"]]
    assert all(email.startswith("o") for email in emails), emails
    _error(scim.get("/Users", cursor=own["nextCursor"], count=2), "invalidCursor")


def test_a_cursor_signed_with_another_key_is_refused(scim: Scim, people: list[User]) -> None:
    cursor = cursors.sign(
        "not the app's key",
        organization_id=people[0].organization_id,
        query=cursors.query_digest("Users", "", "scim-users:id"),
        position=cursors.Position(True, "x"),
        now=time.time(),
    )
    _error(scim.get("/Users", cursor=cursor), "invalidCursor")


def _signed(scim: Scim, people: list[User], key: str, *, now: float) -> str:
    secret = scim.client.app.state.settings.secret_key  # type: ignore[attr-defined]
    return cursors.sign(
        secret,
        organization_id=people[0].organization_id,
        query=cursors.query_digest("Users", "", "scim-users:id"),
        position=cursors.Position(True, key),
        now=now,
    )


def test_an_old_cursor_is_an_expired_cursor(scim: Scim, people: list[User]) -> None:
    fresh = _page(scim, cursor="", count=2)["nextCursor"]
    position = cursors.read(
        scim.client.app.state.settings.secret_key,  # type: ignore[attr-defined]
        fresh,
        organization_id=people[0].organization_id,
        query=cursors.query_digest("Users", "", "scim-users:id"),
        now=time.time(),
    )
    stale = _signed(scim, people, position.key, now=time.time() - cursors.CURSOR_TIMEOUT - 5)
    assert "cursorTimeout" in _error(scim.get("/Users", cursor=stale, count=2), "expiredCursor")
    kept = _signed(scim, people, position.key, now=time.time() - cursors.CURSOR_TIMEOUT + 60)
    assert _page(scim, cursor=kept, count=2)["Resources"]


@pytest.mark.parametrize("key", ["", "x", "WyJzY2ltLXVzZXJzOmlkIiwgWyJhIl1d", "W10", "bnVsbA"])
def test_a_signed_cursor_whose_position_the_list_cannot_read_is_an_invalid_cursor(
    scim: Scim, people: list[User], key: str
) -> None:
    """Never given out, but signed: still a 400, never a 500."""
    _error(scim.get("/Users", cursor=_signed(scim, people, key, now=time.time())), "invalidCursor")


def test_start_index_and_cursor_together_are_refused(scim: Scim, people: list[User]) -> None:
    detail = _error(scim.get("/Users", cursor="", startIndex=1), "invalidValue")
    assert "startIndex" in detail
    assert "cursor" in detail
    _error(scim.get("/Groups", cursor="", startIndex=2), "invalidValue")
    body = {"schemas": [SEARCH_SCHEMA], "cursor": "", "startIndex": 1}
    _error(scim.send("POST", "/Users/.search", body), "invalidValue")


def test_the_search_of_every_type_pages_by_index_only(scim: Scim, people: list[User]) -> None:
    body = {"schemas": [SEARCH_SCHEMA], "cursor": ""}
    assert "cursor" in _error(scim.send("POST", "/.search", body), "invalidValue")


def test_count_bounds_under_cursor_paging(scim: Scim, people: list[User]) -> None:
    none = _page(scim, cursor="", count=0)
    assert none["totalResults"] == len(people)
    assert not none.get("Resources")
    assert "nextCursor" not in none
    big = _page(scim, cursor="", count=10**9)
    assert len(big["Resources"]) == len(people)
    assert "nextCursor" not in big
    default = _page(scim, cursor="")
    assert len(default["Resources"]) == len(people)


def test_a_user_deleted_between_pages_neither_repeats_nor_breaks_the_walk(
    scim: Scim, people: list[User]
) -> None:
    first = _page(scim, cursor="", count=4)
    last_shown = first["Resources"][-1]["id"]
    assert scim.send("DELETE", f"/Users/{last_shown}").status_code == 204
    second = _page(scim, cursor=first["nextCursor"], count=4)
    ids = [item["id"] for item in second["Resources"]]
    assert ids == [str(u.id) for u in sorted(people, key=lambda u: u.id)][4:8]
    back = _page(scim, cursor=second["previousCursor"], count=4)
    assert [item["id"] for item in back["Resources"]] == [i["id"] for i in first["Resources"][:3]]


def test_a_list_built_directly_is_what_scim2_models_would_write(
    scim: Scim, people: list[User], db: Session, org: Organization
) -> None:
    """The fast path of lists (every attribute) and scim2-models' dump agree, for users
    with and without names, externalId, a team, active or not, times with and without
    microseconds."""
    team = factories.make_team(db, org, "Sales")
    people[0].first_name = ""
    people[1].last_name = ""
    people[2].first_name = people[2].last_name = ""
    people[3].team_id = team.id
    people[4].status = "disabled"
    people[5].created_at = people[5].created_at.replace(microsecond=0)
    db.flush()
    for params in ({"count": 50}, {"cursor": "", "count": 5}):
        fast = scim.get("/Users", **params).json()
        users = [db.get_one(User, int(item["id"])) for item in fast["Resources"]]
        location = "http://testserver/scim/v2/Users/{}"
        expected = web_scim._USER_LIST(
            total_results=fast["totalResults"],
            start_index=fast.get("startIndex"),
            items_per_page=len(users),
            resources=[scim_users.to_resource(u, location=location.format(u.id)) for u in users],
            next_cursor=fast.get("nextCursor"),
        ).model_dump(scim_ctx=Context.SEARCH_RESPONSE)
        assert fast == expected
