"""What the Users page shows: its rows, and around them tabs, filter chips and menus.

Each tab, chip and menu item is a link to the list under another query, built from the
parsed query, so that the query language stays the one source of truth and every view is
a bookmarkable URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any, NamedTuple
from urllib.parse import urlencode

from markupsafe import Markup

from userdesk.access.rules import Actor, Permission
from userdesk.query.rules import (
    ChoiceTerm,
    FlagTerm,
    Key,
    LoginNeverTerm,
    Query,
    Term,
    TimeTerm,
)
from userdesk.users import lifecycle
from userdesk.users.rules import UserStatus
from userdesk.users.schemas import Count, UserCounts, UserView
from userdesk.web.templating import ago, fragment, templates, timestamp

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


SORTED_COLUMNS = ("name", "email", "created", "seen")


@dataclass(frozen=True)
class Around:
    """Everything around the list for one query and sort: the tabs (without their
    figures) and the filter menus and chips, rendered; the column headers' sort links."""

    tabs_html: Markup
    filters_html: Markup
    sorts: dict[str, Link]


@lru_cache(maxsize=512)
def around(
    query: Query,
    sort: str,
    *,
    teams: tuple[str, ...],
    groups: tuple[str, ...],
    roles: tuple[str, ...],
) -> Around:
    """What is around the list, worked out and rendered once per query, sort and names:
    a function of them alone, the same for every page view. Shared between requests: not
    to be changed."""
    menus = filter_menus(query, sort, teams=list(teams), groups=list(groups), roles=list(roles))
    return Around(
        tabs_html=fragment("console/_users_tabs.html", tabs=tabs(query, sort)),
        filters_html=fragment("console/_users_filters.html", menus=menus, chips=chips(query, sort)),
        sorts={f: sort_link(query, sort, f) for f in SORTED_COLUMNS},
    )


CHURN_COLORS = {"low": "green", "medium": "yellow", "high": "red"}
# Whose email a new verification email may be sent to (from the row, by the button).
VERIFIABLE_STATUSES = frozenset({UserStatus.ACTIVE.value, UserStatus.PENDING.value})


class Row(NamedTuple):
    """A user as a row of the list shows them, every label and date worked out once."""

    id: str
    name: str
    email: str
    status_badge: Markup
    email_verified: str  # "True" or "False"
    may_resend_verification: bool
    team: str
    roles: str
    churn: str  # "" when not scored
    churn_label: str
    churn_color: str
    presence: str  # "Online", "Away", or ""
    seen: str
    seen_exact: str
    created: str
    created_exact: str
    menu: str  # the row's action menu, a key of RowMenus.actions; "" when it has none


@cache
def _status_badge(status: str, label: str) -> Markup:
    """The status_badge macro's badge, rendered from Python (once per status a page shows)."""
    macros = templates.env.get_template("console/_macros.html").module
    return Markup(macros.status_badge(status, label))  # type: ignore[attr-defined]  # noqa: S704


@dataclass(frozen=True)
class RowMenus:
    """The action menus of a page of rows: each distinct set of actions once, by key."""

    actions: dict[str, list[str]]


def rows(
    actor: Actor, items: list[UserView], presence: Mapping[str, str], now: datetime
) -> tuple[list[Row], RowMenus]:
    """The rows of ITEMS and their action menus (what ACTOR may do to each user now).

    A menu depends on the user's status, validation and team only (and on whether the
    user is the actor), so a page has a few distinct ones: each is worked out once. The
    team matters only to an actor whose permissions reach some teams and not others.
    """
    menus: dict[tuple[Any, ...], str] = {}
    actions: dict[str, list[str]] = {}
    resend = actor.has(Permission.USERS_UPDATE)
    by_team = any(actor.team_scope(p) for p in set(lifecycle.PERMISSION.values()))
    me = str(actor.user_id)
    found = []
    for u in items:
        status, team, churn = u["status"], u["team"], u["churn"] or ""
        team_id = int(team["id"]) if team else None
        facts = (status, u["validated"], team_id if by_team else None, u["id"] == me)
        menu = menus.get(facts)
        if menu is None:
            offered = [
                a.value
                for a in lifecycle.available(
                    actor, user_id=int(u["id"]), status=status, validated=facts[1], team_id=team_id
                )
            ]
            menu = menus[facts] = " ".join(offered)
            actions[menu] = offered
        online = presence.get(u["id"])
        created = u["created_at"].isoformat(" ", "minutes")[:16]  # as `timestamp` writes it
        found.append(
            Row(
                u["id"],
                u["name"],
                u["email"],
                _status_badge(status, u["status_label"]),
                "True" if u["email_verified"] else "False",
                resend and not u["email_verified"] and status in VERIFIABLE_STATUSES,
                team["name"] if team else "",
                ", ".join([r["name"] for r in u["roles"]]),
                churn,
                churn.capitalize(),
                CHURN_COLORS.get(churn, ""),
                ("Online" if online == "online" else "Away") if online else "",
                ago(u["last_seen_at"], now),
                timestamp(u["last_seen_at"]),
                created[:10],
                f"{created} UTC",
                menu,
            )
        )
    actions.pop("", None)
    return found, RowMenus(actions)
