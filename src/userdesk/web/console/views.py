"""What the Users page shows: its rows, and around them tabs, filter chips and menus.

Each tab, chip and menu item is a link to the list under another query, built from the
parsed query, so that the query language stays the one source of truth and every view is
a bookmarkable URL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, lru_cache
from types import SimpleNamespace
from typing import Any, NamedTuple
from urllib.parse import urlencode

from markupsafe import Markup

from userdesk.access.rules import Actor, Grant, Permission
from userdesk.query.rules import (
    ChoiceTerm,
    FlagTerm,
    Key,
    LoginNeverTerm,
    Query,
    Term,
    TimeTerm,
)
from userdesk.segments.columns import cell_text
from userdesk.users import lifecycle
from userdesk.users.field_rules import FieldSpec
from userdesk.users.rules import UserStatus
from userdesk.users.schemas import Count, UserCounts, UserView
from userdesk.web.templating import Zone, fragment, templates, time_element

USERS_PATH = "/console/users"


def users_url(query: Query | str, sort: str = "name", **extra: str) -> str:
    """The Users list's URL for QUERY and SORT, with EXTRA parameters (empty ones left
    out): `columns` keeps the custom columns shown across tabs, sorts and filters."""
    params = {"q": str(query), "sort": sort if sort != "name" else "", **extra}
    encoded = urlencode({k: v for k, v in params.items() if v})
    return f"{USERS_PATH}?{encoded}" if encoded else USERS_PATH


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    active: bool = False
    count: Count | None = None


def tabs(
    query: Query, sort: str, counts: UserCounts | None = None, columns: str = ""
) -> list[Link]:
    """All, one tab per status, and Without Login (a filter beside the status).

    COUNTS are the figures of the tabs, given by the counts fragment that the page loads
    after its rows; the page itself shows the tabs without them. COLUMNS (`plan,seats`):
    the custom columns shown, kept by every link.
    """
    status_terms = query.of_key(Key.STATUS)
    chosen = (
        status_terms[0].values
        if len(status_terms) == 1 and isinstance(status_terms[0], ChoiceTerm)
        else None
    )
    base = query.without_key(Key.STATUS)
    kept = {"columns": columns}
    links = [
        Link("All", users_url(base, sort, **kept), chosen is None, counts.all if counts else None)
    ]
    for status in UserStatus:
        links.append(
            Link(
                status.label,
                users_url(base.with_term(ChoiceTerm(Key.STATUS, (status.value,))), sort, **kept),
                chosen == (status.value,),
                counts.statuses.get(status.value) if counts else None,
            )
        )
    never = LoginNeverTerm() in query.terms
    toggled = query.without(LoginNeverTerm()) if never else query.with_term(LoginNeverTerm())
    links.append(
        Link(
            "Without Login",
            users_url(toggled, sort, **kept),
            never,
            counts.without_login if counts else None,
        )
    )
    return links


def chips(query: Query, sort: str, columns: str = "") -> list[Link]:
    """One removable chip per term of the query."""
    return [
        Link(str(term), users_url(query.without(term), sort, columns=columns))
        for term in query.terms
    ]


@dataclass(frozen=True)
class Menu:
    label: str
    items: list[Link]


def filter_menus(
    query: Query,
    sort: str,
    *,
    teams: list[str],
    groups: list[str],
    roles: list[str],
    columns: str = "",
) -> list[Menu]:
    """Menus that add a filter to the current query (COLUMNS kept, as by tabs)."""

    def _adding(query: Query, sort: str, term: Term, label: str) -> Link:
        url = users_url(query.with_term(term), sort, columns=columns)
        return Link(label, url, term in query.terms)

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


def sort_link(query: Query, sort: str, field: str, columns: str = "") -> Link:
    """A column header: sorts by FIELD, or reverses it when it is the current sort
    (COLUMNS kept, as by tabs)."""
    if sort == field:
        return Link("↑", users_url(query, f"-{field}", columns=columns), True)
    if sort == f"-{field}":
        return Link("↓", users_url(query, field, columns=columns), True)
    first = f"-{field}" if field in DESCENDING_FIRST else field
    return Link("", users_url(query, first, columns=columns))


SORTED_COLUMNS = ("name", "email", "created", "seen", "churn")
DESCENDING_FIRST = frozenset({"churn"})  # risk: most likely to churn first


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
    columns: str = "",
) -> Around:
    """What is around the list, worked out and rendered once per query, sort, names and
    custom columns shown (COLUMNS, `plan,seats`, which every link keeps): a function of
    them alone, the same for every page view. Shared between requests: not to be
    changed."""
    menus = filter_menus(
        query, sort, teams=list(teams), groups=list(groups), roles=list(roles), columns=columns
    )
    return Around(
        tabs_html=fragment("console/_users_tabs.html", tabs=tabs(query, sort, columns=columns)),
        filters_html=fragment(
            "console/_users_filters.html", menus=menus, chips=chips(query, sort, columns)
        ),
        sorts={f: sort_link(query, sort, f, columns) for f in SORTED_COLUMNS},
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
    seen: str  # a <time> element (templating.time_element), or "Never"
    created: str  # a <time> element
    menu: str  # the row's action menu, a key of RowMenus.actions; "" when it has none
    # The custom columns' cells, (field key, the value as shown) each (segments.columns).
    columns: tuple[tuple[str, str], ...] = ()


@cache
def _status_badge(status: str, label: str) -> Markup:
    """The status_badge macro's badge, rendered from Python (once per status a page shows)."""
    macros = templates.env.get_template("console/_macros.html").module
    return Markup(macros.status_badge(status, label))  # type: ignore[attr-defined]  # noqa: S704


@dataclass(frozen=True)
class RowMenus:
    """The action menus of a page of rows: each distinct set of actions once, by key."""

    actions: dict[str, list[str]]


@lru_cache(maxsize=256)
def _by_team(grants: tuple[Grant, ...]) -> bool:
    """Whether the menus of someone holding GRANTS depend on the user's team (some of the
    actions' permissions reach some teams only)."""
    actor = Actor(0, None, None, "", grants)
    return any(actor.team_scope(p) for p in set(lifecycle.PERMISSION.values()))


@lru_cache(maxsize=4096)
def _offered(
    grants: tuple[Grant, ...], status: str, validated: bool, team_id: int | None, oneself: bool
) -> tuple[str, ...]:
    """`lifecycle.available` to someone holding GRANTS over a user (themselves when
    ONESELF) of STATUS, VALIDATED, in TEAM_ID: what it says depends on these alone (the
    actor's grants, and the user's id only as being the actor's or not), so it is worked
    out once for them."""
    actor = Actor(0, 1, None, "", grants)
    offered = lifecycle.available(
        actor, user_id=1 if oneself else 2, status=status, validated=validated, team_id=team_id
    )
    return tuple(a.value for a in offered)


@cache
def _churn(level: str | None) -> tuple[str, str, str]:
    """A churn level (None: not scored) as a row shows it: the level, its label, its color."""
    churn = level or ""
    return churn, churn.capitalize(), CHURN_COLORS.get(churn, "")


def _seen(value: datetime | None, now: datetime, zone: Zone | None) -> str:
    """When a row's user was last seen, as `timestamp(relative_first=True)` writes it (in
    the admin's ZONE, "ago" counted to NOW), or "Never"."""
    if value is None:
        return "Never"
    return time_element(value, zone, relative_first=True, now=now)


def rows(
    actor: Actor,
    items: list[UserView],
    presence: Mapping[str, str],
    now: datetime,
    zone: Zone | None = None,
    columns: Sequence[FieldSpec] = (),
) -> tuple[list[Row], RowMenus]:
    """The rows of ITEMS and their action menus (what ACTOR may do to each user now).

    A menu depends on the user's status, validation and team only (and on whether the
    user is the actor), so a page has a few distinct ones: each is worked out once. The
    team matters only to an actor whose permissions reach some teams and not others.
    """
    menus: dict[tuple[Any, ...], str] = {}
    actions: dict[str, list[str]] = {}
    badges: dict[str, Markup] = {}
    resend = actor.has(Permission.USERS_UPDATE)
    grants = actor.grants
    by_team = _by_team(grants)
    me = str(actor.user_id)
    found = []
    for u in items:
        status, team, user_id = u["status"], u["team"], u["id"]
        team_id = int(team["id"]) if by_team and team else None
        facts = (status, u["validated"], team_id, user_id == me)
        menu = menus.get(facts)
        if menu is None:
            offered = _offered(grants, *facts)
            menu = menus[facts] = " ".join(offered)
            actions[menu] = list(offered)
        badge = badges.get(status)
        if badge is None:
            badge = badges[status] = _status_badge(status, u["status_label"])
        churn, churn_label, churn_color = _churn(u["churn"])
        online = presence.get(user_id)
        verified = u["email_verified"]
        found.append(
            Row(
                user_id,
                u["name"],
                u["email"],
                badge,
                "True" if verified else "False",
                resend and not verified and status in VERIFIABLE_STATUSES,
                team["name"] if team else "",
                ", ".join([r["name"] for r in u["roles"]]),
                churn,
                churn_label,
                churn_color,
                ("Online" if online == "online" else "Away") if online else "",
                _seen(u["last_seen_at"], now, zone),
                time_element(u["created_at"], zone, relative_first=True, now=now),
                menu,
                tuple(
                    (f.key, cell_text(f, (u.get("attributes") or {}).get(f.key))) for f in columns
                ),
            )
        )
    actions.pop("", None)
    return found, RowMenus(actions)


class _Holds(NamedTuple):
    """What the page's templates ask of the actor: whether a permission is held."""

    permissions: frozenset[str]

    def has(self, permission: str) -> bool:
        return permission in self.permissions


class _Named(NamedTuple):
    id: int | None
    name: str
    email: str = ""


class UsersShell(NamedTuple):
    """Every value the Users page shows around its rows (the layout, the sidebar, the tabs,
    the filters and the table's head): the page around its rows is a function of these
    alone, so it is rendered once per distinct set (a session sees a few)."""

    permissions: frozenset[str]  # the actor's (`Actor.has` is membership in them)
    csrf_token: str | None  # the session's; also the page's (request.state)
    impersonation: tuple[tuple[str, Any], ...] | None  # request.state.impersonation's items
    color_scheme: str  # the person's (request.state.color_scheme, base.html's <html>)
    user: tuple[str, str]  # the signed-in person's name and email
    sidebar: tuple[Any, ...]  # the segments' links (`segments.service.SegmentLink`)
    segment: tuple[int, str] | None  # the segment shown: id and name
    q: str
    query: Query
    sort: str
    names: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]  # teams, groups, roles
    bulk_actions: tuple[tuple[str, str], ...]
    error: str | None  # the message of a bad query
    has_items: bool
    columns: tuple[tuple[str, str], ...] = ()  # the custom columns shown: key, label
    offered_columns: tuple[tuple[str, str], ...] = ()  # the fields the admin may show


# Stands for the rows in the shell: a comment escaping never writes (a value's "<" is
# "&lt;"), so it can only be this one.
ROWS_MARK = "<!--userdesk:rows-->"


@lru_cache(maxsize=256)
def users_shell(shell: UsersShell, *, whole: bool) -> tuple[bytes, ...]:
    """The Users page (WHOLE) or its results (the part htmx swaps) for SHELL, split where
    the rows go (in one piece when it shows none: a bad query), encoded as sent (UTF-8):
    the page has characters beyond Latin-1 (a sort arrow), so as one string with the
    rows it took twice the memory and forty times as long to encode. Rendered from
    SHELL's values alone, so that a shell is right for every request that has them.
    Shared between requests: not to be changed."""
    teams, groups, roles = shell.names
    columns_param = ",".join(key for key, _ in shell.columns)
    links = around(
        shell.query, shell.sort, teams=teams, groups=groups, roles=roles, columns=columns_param
    )
    actor = _Holds(shell.permissions)
    auth = SimpleNamespace(csrf_token=shell.csrf_token)
    context: dict[str, Any] = {
        "auth": auth,
        "actor": actor,
        "page": SimpleNamespace(items=shell.has_items) if shell.error is None else None,
        "rows_html": Markup(ROWS_MARK),  # noqa: S704 - a constant
        "bulk_actions": list(shell.bulk_actions),
        "error": SimpleNamespace(message=shell.error) if shell.error is not None else None,
        "q": shell.q,
        "query": shell.query,
        "sort": shell.sort,
        "around": links,
        "sorts": links.sorts,
        "columns": shell.columns,
        "columns_param": columns_param,
        "offered_columns": shell.offered_columns,
    }
    html = str(fragment("console/_users_results.html", **context))
    if whole:
        state = SimpleNamespace(color_scheme=shell.color_scheme)
        if shell.csrf_token is not None:
            state.csrf_token = shell.csrf_token
        if shell.impersonation is not None:
            state.impersonation = dict(shell.impersonation)
        segment = shell.segment and _Named(*shell.segment)
        html = templates.get_template("console/users.html").render(
            request=SimpleNamespace(state=state),
            auth=auth,
            actor=actor,
            user=_Named(None, *shell.user),
            sidebar_segments=list(shell.sidebar),
            segment=segment,
            nav="users",
            results_html=Markup(html),  # noqa: S704 - rendered autoescaped
            q=shell.q,
            sort=shell.sort,
            columns_param=context["columns_param"],
        )
    return tuple(piece.encode() for piece in html.split(ROWS_MARK))
