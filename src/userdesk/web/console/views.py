"""What the Users page shows around the list: tabs, filter chips and filter menus.

Each is a link to the list under another query, built from the parsed query, so that the
query language stays the one source of truth and every view is a bookmarkable URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from userdesk.query.rules import (
    ChoiceTerm,
    FlagTerm,
    Key,
    LoginNeverTerm,
    Query,
    Term,
    TimeTerm,
)
from userdesk.users.rules import UserStatus
from userdesk.users.schemas import Count, UserCounts

USERS_PATH = "/console/users"


def users_url(query: Query | str, sort: str = "name", **extra: str) -> str:
    params = {"q": str(query), "sort": sort if sort != "name" else "", **extra}
    encoded = urlencode({k: v for k, v in params.items() if v})
    return f"{USERS_PATH}?{encoded}" if encoded else USERS_PATH


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    active: bool = False
    count: Count | None = None


def tabs(query: Query, sort: str, counts: UserCounts | None = None) -> list[Link]:
    """All, one tab per status, and Without Login (a filter beside the status).

    COUNTS are the figures of the tabs, given by the counts fragment that the page loads
    after its rows; the page itself shows the tabs without them.
    """
    status_terms = query.of_key(Key.STATUS)
    chosen = (
        status_terms[0].values
        if len(status_terms) == 1 and isinstance(status_terms[0], ChoiceTerm)
        else None
    )
    base = query.without_key(Key.STATUS)
    links = [Link("All", users_url(base, sort), chosen is None, counts.all if counts else None)]
    for status in UserStatus:
        links.append(
            Link(
                status.label,
                users_url(base.with_term(ChoiceTerm(Key.STATUS, (status.value,))), sort),
                chosen == (status.value,),
                counts.statuses.get(status.value) if counts else None,
            )
        )
    never = LoginNeverTerm() in query.terms
    toggled = query.without(LoginNeverTerm()) if never else query.with_term(LoginNeverTerm())
    links.append(
        Link(
            "Without Login",
            users_url(toggled, sort),
            never,
            counts.without_login if counts else None,
        )
    )
    return links


def chips(query: Query, sort: str) -> list[Link]:
    """One removable chip per term of the query."""
    return [Link(str(term), users_url(query.without(term), sort)) for term in query.terms]


@dataclass(frozen=True)
class Menu:
    label: str
    items: list[Link]


def _adding(query: Query, sort: str, term: Term, label: str) -> Link:
    return Link(label, users_url(query.with_term(term), sort), term in query.terms)


def filter_menus(
    query: Query, sort: str, *, teams: list[str], groups: list[str], roles: list[str]
) -> list[Menu]:
    """Menus that add a filter to the current query."""
    named = [
        Menu(title, [_adding(query, sort, ChoiceTerm(key, (name,)), name) for name in names])
        for title, key, names in (
            ("Team", Key.TEAM, teams),
            ("Group", Key.GROUP, groups),
            ("Role", Key.ROLE, roles),
        )
        if names
    ]
    flags = [
        Menu(
            title,
            [
                _adding(query, sort, FlagTerm(key, True), "Yes"),
                _adding(query, sort, FlagTerm(key, False), "No"),
            ],
        )
        for title, key in (("Verified", Key.VERIFIED), ("Validated", Key.VALIDATED))
    ]
    seen = Menu(
        "Last seen",
        [
            _adding(query, sort, TimeTerm(Key.SEEN, "<", age=timedelta(days=7)), "Within 7 days"),
            _adding(query, sort, TimeTerm(Key.SEEN, "<", age=timedelta(days=30)), "Within 30 days"),
            _adding(
                query, sort, TimeTerm(Key.SEEN, ">", age=timedelta(days=30)), "Over 30 days ago"
            ),
            _adding(
                query, sort, TimeTerm(Key.SEEN, ">", age=timedelta(days=90)), "Over 90 days ago"
            ),
            _adding(query, sort, LoginNeverTerm(), "Never signed in"),
        ],
    )
    return [*named, *flags, seen]


def sort_link(query: Query, sort: str, field: str) -> Link:
    """A column header: sorts by FIELD, or reverses it when it is the current sort."""
    if sort == field:
        return Link("↑", users_url(query, f"-{field}"), True)
    if sort == f"-{field}":
        return Link("↓", users_url(query, field), True)
    return Link("", users_url(query, field))
