"""Use cases on users: list, read, and create the organization's administrators."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Integer,
    Row,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    false,
    func,
    literal,
    select,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql import visitors
from sqlalchemy.sql.selectable import CTE, Exists

from userdesk.access import service as access
from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import ADMINISTRATOR, Actor, Permission
from userdesk.audit import service as audit
from userdesk.auth import decoy, password_imports, throttle
from userdesk.auth.secrets import hash_password
from userdesk.auth.service import LinkProblem, find_user_token, issue_user_token, set_password
from userdesk.db import bulk
from userdesk.db.base import utcnow
from userdesk.db.engine import Interrupted, sqlite_stopped_at, unindexed
from userdesk.db.paging import RanLong, SortKey, fetch_page, fetch_page_within, merge_pages
from userdesk.db.prepared import Prepared
from userdesk.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)
from userdesk.mail import service as mail
from userdesk.mail.rules import EmailKind
from userdesk.organizations.models import Organization
from userdesk.query import builder
from userdesk.query.rules import ChoiceTerm, Key, Query
from userdesk.users import attributes
from userdesk.users.membership import attach, replace_links, require_change_allowed, resolve
from userdesk.users.models import User, UserFieldValue, UserGroup, UserRole
from userdesk.users.rules import (
    CreatedVia,
    UserStatus,
    created_via_problem,
    email_problem,
    history_time,
    name_problem,
    normalize_email,
    password_problem,
    person_password_words,
)
from userdesk.users.schemas import (
    LIST_COLUMNS,
    UserCounts,
    UserCreate,
    UserPage,
    UserUpdate,
    UserView,
    loaded_user_view,
    named,
    row_views,
)
from userdesk.webhooks import events as webhook_events

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Seconds a page may read users in sort order before it sorts the few it can list instead
# (builder.Selection.instead).
READ_IN_ORDER_WITHIN = 0.025
# PostgreSQL's work_mem for a page of sorted users (see _sorted_page): room for exact
# bitmaps of a million users and more (one entry for each page of the table they are on:
# a status's users, on most of the 350,000 pages of 10 M users, take some 20 MB).
PG_SORTED_WORK_MEM = "64MB"

SORTS = {
    key.name: key
    for field, columns, nullable in (
        ("name", (User.first_name, User.last_name, User.id), False),
        ("email", (User.email_normalized,), False),  # unique within an organization
        ("created", (User.created_at, User.id), False),
        ("seen", (User.last_seen_at, User.id), True),
        # By risk: the probability of the latest scoring (-churn: most likely to churn first).
        ("churn", (User.churn_probability, User.id), True),
    )
    for key in (
        SortKey(field, columns, nullable=nullable),
        SortKey(f"-{field}", columns, descending=True, nullable=nullable),
    )
}


def sort_key(sort: str) -> SortKey:
    key = SORTS.get(sort)
    if key is None:
        allowed = ", ".join(SORTS)
        raise InvalidInput(
            f"Sort '{sort}' is not one of: {allowed}.",
            fields={"sort": f"'{sort}' is not one of: {allowed}"},
        )
    return key


def _with_links(query: Select[User]) -> Select[User]:
    return query.options(
        selectinload(User.team), selectinload(User.groups), selectinload(User.roles)
    )


def matching(
    db: Session, *, actor: Actor, query: Query, permission: str
) -> list[ColumnElement[bool]]:
    """The conditions selecting the users QUERY describes among those PERMISSION covers."""
    return _selection(db, actor=actor, query=query, permission=permission).where


def _selection(
    db: Session, *, actor: Actor, query: Query, permission: str, sort: SortKey | None = None
) -> builder.Selection:
    found = builder.selection(
        db,
        organization_id=actor.organization_id,
        query=query,
        now=utcnow(),
        sort_column=sort.columns[0] if sort else None,
        party=attributes.party_of(actor),
    )
    scope = access.users_in_scope(actor, permission)
    instead = found.instead and builder.Selection([scope, *found.instead.where], few=True)
    return builder.Selection([scope, *found.where], found.few, instead, found.within)


def page_size_checked(limit: int) -> int:
    """LIMIT, where a page of users (or of their scores) may hold that many.

    Raises:
        InvalidInput: out of range (the field `limit`).
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(
            f"Limit {limit} is out of range.",
            fields={"limit": f"{limit} is not between 1 and {MAX_PAGE_SIZE}"},
        )
    return limit


def list_users(
    db: Session,
    *,
    actor: Actor,
    q: str = "",
    sort: str = "name",
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    permission: str = Permission.USERS_READ,
    with_attributes: bool = True,
    names: LinkNames | None = None,
) -> UserPage:
    """One page of the users matching Q that ACTOR may see, in SORT order, after CURSOR.

    PERMISSION is what the page is for (reading by default, exporting): it decides
    whom the actor reaches. WITH_ATTRIBUTES: the users' custom fields read too (the
    console's list reads them only when it shows some as columns). Each user's team and
    roles are named by the ids on the user's row. NAMES: the organization's names
    (`link_names`, which the console reads for its filters anyway) they are named from,
    with no statement more; the users' groups, which the console's list does not show,
    are then not read. Without NAMES, the page's names and groups are read
    (`_with_link_names`).

    Raises:
        PermissionDenied: the actor may not read users.
        InvalidInput: a bad query term, an unknown sort, a limit out of range, or a cursor
            not from this list.
    """
    access.require(actor, permission)
    key = sort_key(sort)
    page_size_checked(limit)
    query = builder.parse_query(q)
    parts = _by_status(db, query)
    columns = _PAGE_COLUMNS[with_attributes]
    pages = [
        _page(
            db,
            actor=actor,
            query=part,
            permission=permission,
            key=key,
            cursor=cursor,
            limit=limit,
            columns=columns,
        )
        for part in parts
    ]
    rows, next_cursor = (
        pages[0] if len(pages) == 1 else merge_pages(columns, key, pages, limit=limit)
    )
    items = _with_link_names(db, rows) if names is None else _named_from(rows, names, groups={})
    if with_attributes:
        stored = {row[_ID]: row[-1] for row in rows}
        attributes.attach_stored(
            db, actor.organization_id, items, stored, attributes.party_of(actor)
        )
    return UserPage(items=items, next_cursor=next_cursor)


def _by_status(db: Session, query: Query) -> list[Query]:
    """QUERY as queries whose pages, merged, make its page: on SQLite, one per status of
    a term naming several (each read along the index of its status and the sort, where
    one read of them all along the sort's index passes every other status's rows, and
    one sort of them all reads every match: 140 ms for banned or trashed by last seen,
    against 1 ms for the two reads); otherwise QUERY alone."""
    statuses = query.of_key(Key.STATUS)
    if len(statuses) != 1 or db.get_bind().dialect.name != "sqlite":
        return [query]
    term = statuses[0]
    if not isinstance(term, ChoiceTerm) or len(term.values) < 2:
        return [query]
    return [
        Query(tuple(ChoiceTerm(Key.STATUS, (value,)) if t == term else t for t in query.terms))
        for value in dict.fromkeys(term.values)
    ]


def _page(
    db: Session,
    *,
    actor: Actor,
    query: Query,
    permission: str,
    key: SortKey,
    cursor: str | None,
    limit: int,
    columns: Sequence[Any] = LIST_COLUMNS,
) -> tuple[Sequence[Sequence[Any]], str | None]:
    """Up to LIMIT rows (COLUMNS) of QUERY's users after CURSOR, and the next cursor."""
    if key.nullable and builder.valued(query, key.columns[0]):
        key = replace(key, nullable=False)  # no user without a value to read
    found = _selection(db, actor=actor, query=query, permission=permission, sort=key)
    if found.few:
        return _sorted_page(db, columns, found.where, key, cursor=cursor, limit=limit)
    if found.instead is None:
        connection = db.connection()
        if connection.dialect.name == "postgresql":
            # A read in sort order stops after a page, sooner than parallel workers start
            # on a loaded machine (as fetch_page_within's): "plan:enterprise" by name at a
            # million users, 4 ms alone, 22 with two workers.
            connection.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
        return fetch_page(db, columns, found.where, key, cursor=cursor, limit=limit)
    try:
        return fetch_page_within(
            db,
            columns,
            found.where,
            key,
            cursor=cursor,
            limit=limit,
            seconds=max(found.within or 0, READ_IN_ORDER_WITHIN),
        )
    except RanLong:  # the matches lie far along the sort: sort them instead
        return _sorted_page(db, columns, found.instead.where, key, cursor=cursor, limit=limit)


def _sorted_page(
    db: Session,
    columns: Sequence[Any],
    where: Sequence[ColumnElement[bool]],
    key: SortKey,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Sequence[Any]], str | None]:
    """A page of the few users WHERE selects, found by their terms' indexes and sorted.

    PostgreSQL finds them by ANDing the bitmaps of those indexes, each of many users
    (the users of a status, of a word prefix). Beyond work_mem a bitmap keeps pages, not
    rows, and every row of those pages is then tested again: at 10 M users,
    "el status:pending group:VIP" by name made the words of nearly every user (40 to
    97 s, where exact bitmaps of its 140,000 and 1.2 M users read 17,000 rows: 2 s cold).
    The transaction's work_mem is raised to PG_SORTED_WORK_MEM for such a page."""
    connection = db.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL work_mem = '{PG_SORTED_WORK_MEM}'")
    return fetch_page(db, columns, where, key, cursor=cursor, limit=limit, few=True)


@lru_cache(maxsize=256)
def _links(dialect: Dialect, users: int, roles: int, teams: int) -> Prepared:
    """The groups of a page of USERS users (kind, user id, group id, name), and the names
    of ROLES roles and TEAMS teams by id (kind, None, id, name), in one statement compiled
    once per dialect and size (values `user_<i>`, `role_<i>`, `team_<i>`).

    The roles come by the ids on the users' rows (users.role_ids): joined from
    user_roles, they were half of the statement's time (110 against 60 µs a page of 50
    on SQLite). Unsorted: a user's few groups are sorted by name as they are named."""
    user_ids = [bindparam(f"user_{i}", type_=Integer) for i in range(users)]
    role_ids = [bindparam(f"role_{i}", type_=Integer) for i in range(roles)]
    team_ids = [bindparam(f"team_{i}", type_=Integer) for i in range(teams)]
    statement: CompoundSelect[Any] = union_all(
        select(literal("group"), UserGroup.user_id, Group.id, Group.name)
        .join(Group, Group.id == UserGroup.group_id)
        .where(UserGroup.user_id.in_(user_ids)),
        select(literal("role"), literal(None), Role.id, Role.name).where(
            Role.id.in_(role_ids) if role_ids else false()
        ),
        select(literal("team"), literal(None), Team.id, Team.name).where(
            Team.id.in_(team_ids) if team_ids else false()
        ),
    )
    names = [b.key for b in (*user_ids, *role_ids, *team_ids)]
    return Prepared.named(dialect, statement, names, fixed=True)


# The positions of a user's id and team id among LIST_COLUMNS, of their role ids among
# _NAMED_LIST_COLUMNS.
_ID, _TEAM_ID, _ROLE_IDS = 0, 9, len(LIST_COLUMNS)


def _role_ids(text_: str | None) -> list[int]:
    """The ids of users.role_ids as text: '[1,3]' (SQLite's JSON), '{1,3}' (PostgreSQL's)."""
    return [int(i) for i in (text_ or "").strip("[]{} ").split(",") if i.strip()]


def _with_link_names(db: Session, rows: Sequence[Sequence[Any]]) -> list[UserView]:
    """The users of ROWS (of _NAMED_LIST_COLUMNS) as shown, with the names of their team,
    groups and roles (`_links`: one statement, as large as the page)."""
    if not rows:
        return []
    role_ids = list({i for text_ in {row[_ROLE_IDS] for row in rows} for i in _role_ids(text_)})
    team_ids = list({row[_TEAM_ID] for row in rows if row[_TEAM_ID] is not None})
    values = {f"user_{i}": row[_ID] for i, row in enumerate(rows)}
    values.update((f"role_{i}", role_id) for i, role_id in enumerate(role_ids))
    values.update((f"team_{i}", team_id) for i, team_id in enumerate(team_ids))
    connection = db.connection()
    statement = _links(connection.dialect, len(rows), len(role_ids), len(team_ids))
    names = LinkNames(teams={}, groups={}, roles={})
    held: dict[int, list[int]] = {}
    for kind, user_id, link_id, name in statement.rows(connection, (), values):
        if kind == "group":
            names.groups[link_id] = name
            held.setdefault(user_id, []).append(link_id)
        else:
            (names.roles if kind == "role" else names.teams)[link_id] = name
    known = names.groups
    groups = {
        user_id: [named(i, known[i]) for i in sorted(ids, key=known.__getitem__)]
        for user_id, ids in held.items()
    }
    return _named_from(rows, names, groups=groups)


@dataclass(frozen=True)
class LinkNames:
    """An organization's teams, groups and roles: each kind's names by id, in name order."""

    teams: dict[int, str]
    groups: dict[int, str]
    roles: dict[int, str]


@lru_cache(maxsize=4)
def _link_names_statement(dialect: Dialect) -> Prepared:
    """Every team, group and role of an organization (value `organization_id`): kind, id
    and name, in one statement compiled once per dialect."""
    statement = union_all(
        *(
            select(literal(kind).label("kind"), model.id, model.name).where(
                model.organization_id == bindparam("organization_id")
            )
            for kind, model in (("group", Group), ("role", Role), ("team", Team))
        )
    ).order_by("kind", "name")
    return Prepared.named(dialect, statement, ["organization_id"], fixed=True)


def link_names(db: Session, *, actor: Actor) -> LinkNames:
    """The names of the teams, groups and roles of ACTOR's organization (what the Users
    list's filters offer, and what names its rows' links: `list_users(names=...)`).

    Raises:
        PermissionDenied: the actor may not read users.
    """
    access.require(actor, Permission.USERS_READ)
    found: dict[str, dict[int, str]] = {"group": {}, "role": {}, "team": {}}
    connection = db.connection()
    statement = _link_names_statement(connection.dialect)
    for kind, id_, name in statement.rows(
        connection, (), {"organization_id": actor.organization_id}
    ):
        found[kind][id_] = name
    return LinkNames(teams=found["team"], groups=found["group"], roles=found["role"])


# The list's columns with the user's role ids (users.role_ids, which the database keeps
# from user_roles) as text: '[1,3]' (SQLite's JSON), '{1,3}' (PostgreSQL's array).
_NAMED_LIST_COLUMNS: tuple[Any, ...] = (
    *LIST_COLUMNS,
    cast(User.role_ids, Text).label("role_ids_text"),
)


# The page's columns (by whether custom fields are read): each a constant, so that a
# page of each shape is prepared once (db.paging). The custom fields come last, as the
# driver gives them (attributes.attach_stored), read with the row.
_STORED_ATTRIBUTES = type_coerce(User.attributes, Text).label("attributes_text")
_PAGE_COLUMNS: dict[bool, tuple[Any, ...]] = {
    with_attributes: (
        *_NAMED_LIST_COLUMNS,
        *((_STORED_ATTRIBUTES,) if with_attributes else ()),
    )
    for with_attributes in (False, True)
}


def _named_from(
    rows: Sequence[Sequence[Any]], names: LinkNames, *, groups: dict[int, list[dict[str, str]]]
) -> list[UserView]:
    """The users of ROWS (of _NAMED_LIST_COLUMNS) as shown, their team and roles named
    from NAMES (a role or team made since NAMES was read is left out), with GROUPS (by
    user id)."""
    teams = {
        id_: named(id_, names.teams[id_])
        for id_ in {row[_TEAM_ID] for row in rows}
        if id_ in names.teams
    }
    known = names.roles
    # A page's users share a few sets of roles: each set named once, its list shared.
    by_text: dict[str | None, list[dict[str, str]]] = {}
    roles: dict[int, list[dict[str, str]]] = {}
    for row in rows:
        text_ = row[_ROLE_IDS]
        held = by_text.get(text_)
        if held is None:
            ids = sorted((i for i in _role_ids(text_) if i in known), key=known.__getitem__)
            held = by_text[text_] = [named(i, known[i]) for i in ids]
        if held:
            roles[row[_ID]] = held
    return row_views(rows, teams=teams, groups=groups, roles=roles)


COUNT_CAP = 10_000  # matches enough for an estimate good to about 1 %
# Seconds from the start of count_users (reading the query and its probes included)
# until the exact count stops, then until the estimate's sample stops: with a request's
# own cost, some 125 ms in all, however long the query took to read (see _EXACT_LEAST).
COUNT_EXACT_WITHIN = 0.045
COUNT_SAMPLE_WITHIN = 0.075
# The sample reads the id range in blocks of consecutive ids (at most _SAMPLE_BLOCKS of
# them, each of at least _SAMPLE_BLOCK_IDS ids), in an order that spreads any first few
# over the whole range, so that old and new users are both in it.
_SAMPLE_BLOCKS = 1024
_SAMPLE_BLOCK_IDS = 256
# Seconds the exact count and the sample each get however late they start (reading the
# query ran long: a loaded machine): the count enough for what is exact in 20 ms or so on
# a quiet one; the sample enough for the list of ids an index makes for a common term,
# which comes before its first row. So a count ends at most _EXACT_LEAST +
# _SAMPLE_LEAST after reading its query, not 80 ms.
_EXACT_LEAST = 0.03
_SAMPLE_LEAST = 0.03
# Rows fetched at a time: first few (PostgreSQL reads blocks until it has them, and a
# block without a match still gives a row), then twice as many each time.
_SAMPLE_FETCH = 16
_SAMPLE_FETCH_MOST = 1024
_SAVEPOINT = "user_counts"
# A count on a custom field reads the field's matches (by the index of values) in blocks
# of ids, _FIELD_BLOCKS at most, each of _FIELD_BLOCK_IDS ids at least, in the order of
# _stride (so that any first few are spread over the whole range), a batch of blocks a
# statement: first _FIELD_FIRST_BATCH (a small organization's every block), then as many
# as the matches found so far say will reach FIELD_COUNT_CAP, at most _FIELD_GROWTH
# times as many as were read before. FIELD_COUNT_CAP matches are enough for an estimate:
# the blocks read are a sample of the users, so 1,000 matches give all of them within
# 3 % (one standard deviation), a status of a tenth of them within 10 %; the figures
# are shown with two significant digits and labelled as estimates. The first batch has
# all the count's time (a small organization's count is exact); the others stop
# COUNT_FIELD_WITHIN seconds after the start of count_users, the batch being read then
# left out: under load the estimate is made from fewer matches, not later.
FIELD_COUNT_CAP = 1_000
COUNT_FIELD_WITHIN = 0.02
_FIELD_BLOCKS = 1024
_FIELD_BLOCK_IDS = 256
_FIELD_FIRST_BATCH = 4
_FIELD_GROWTH = 8
# A batch of more blocks than this reads free text's users_fts once, not block by block.
_FIELD_TEXT_BLOCKS = 32


def count_users(
    db: Session,
    *,
    actor: Actor,
    q: str = "",
    cap: int = COUNT_CAP,
    exact_within: float = COUNT_EXACT_WITHIN,
    sample_within: float = COUNT_SAMPLE_WITHIN,
    field_within: float = COUNT_FIELD_WITHIN,
) -> UserCounts:
    """How many users match Q in each status, in all, and without a sign-in.

    The status term of Q is left out, so that every status can be counted. One statement
    counts every figure at once; when it finishes within EXACT_WITHIN seconds of the call
    (reading the query included; _EXACT_LEAST at least after it) the figures are exact,
    however large. Otherwise (a common term over many users) they are
    estimates, labelled as such, scaled from the matches in an even spread of the users
    (see _sampled), or "at least" what it found where it found too few to scale: the
    spread grows until it has found CAP matches, EXACT_WITHIN + SAMPLE_WITHIN seconds
    have passed since the call, or it has covered everyone (the figures are then exact).
    So counting never holds a page for long, whatever the query, and is never silently
    wrong. A term on a custom field is counted from its index of values (_field_counts),
    an estimate once FIELD_COUNT_CAP matches are found or FIELD_WITHIN seconds have
    passed since the call.

    Raises:
        PermissionDenied: the actor may not read users.
        InvalidInput: a bad query term.
    """
    started = time.monotonic()
    access.require(actor, Permission.USERS_READ)
    query = builder.parse_query(q).without_key(Key.STATUS)
    deadline = started + exact_within + sample_within
    by_field = _field_counts(
        db,
        actor=actor,
        query=query,
        cap=min(cap, FIELD_COUNT_CAP),
        deadline=deadline,
        hurry=started + field_within,
    )
    if by_field is not None:
        return by_field
    where = matching(db, actor=actor, query=query, permission=Permission.USERS_READ)
    connection = db.connection()
    # Reading the query counts against the time, unless it ran long: the count then gets
    # _EXACT_LEAST (or what EXACT_WITHIN says if that is less, 0: no exact count).
    least = time.monotonic() + min(exact_within, _EXACT_LEAST)
    try:
        with _stopped_at(connection, max(started + exact_within, least)):
            tally = _tally_query(where, connection.dialect.name)
            return _Tally(connection.execute(tally).all()).exact()
    except _OutOfTime:
        pass
    return _sampled(connection, where, cap=cap, deadline=started + exact_within + sample_within)


def _field_counts(
    db: Session, *, actor: Actor, query: Query, cap: int, deadline: float, hurry: float
) -> UserCounts | None:
    """count_users for a QUERY with a term on a custom field (issue 22) or free text that
    searchable fields may hold, unless another of its terms lists few users (the common
    count reads those); else None.

    The id range is cut in _FIELD_BLOCKS blocks (spread as _sampled's are), read a batch
    of blocks at a time: each block's matches listed by the index of values
    (builder.field_ids: of that block alone) and found by id, the other terms checked on
    them: a block costs its matches, not its users (plan:pro at a million users: 200,000
    of them, where the common count read every user and checked each). Exact when every
    block is read; once CAP matches are found, or time.monotonic() passes DEADLINE (the
    first batch, which gets _SAMPLE_LEAST at least) or HURRY (the others; the batch
    being read is then left out), estimated from the blocks read.

    Free text that searchable fields may hold counts so too (without a term on a field):
    a block's matches are its users whose values the text starts, then those that
    users_fts lists for it and the text's check keeps (PostgreSQL: its trigram index, or
    each user of the block tested: builder._text_ids), the former left out. Its
    batches all have until DEADLINE, not HURRY: with another term beside ("son
    role:Agent", "ann lee") the matches are rare among the text's, and blocks read for
    20 ms found too few to scale ("at least 3").

    Raises:
        InvalidInput: a bad query term.
    """
    party = attributes.party_of(actor)
    by_field = builder.field_ids(
        db, organization_id=actor.organization_id, query=query, party=party
    )
    if by_field is None:
        return None
    rest = _selection(db, actor=actor, query=by_field.rest, permission=Permission.USERS_READ)
    if rest.few:
        return None
    connection = db.connection()
    tally = _Tally()
    if (cut := _id_blocks(connection, most=_FIELD_BLOCKS, least_ids=_FIELD_BLOCK_IDS)) is None:
        return tally.exact()
    low, high, size, blocks = cut
    stride = _stride(blocks)
    steps = _block_steps()
    first = _first_id(steps)
    last = first + bindparam("size", type_=Integer) - 1
    matches = by_field.between(first, last)
    never = User.last_login_at.is_(None)
    # The batch's matches listed first (IN), then each user found by id: joined to them,
    # SQLite would reckon a batch's matches many and first read every user to make a
    # Bloom filter of them (seats:>10, eight blocks: 500 against 5 ms).
    in_values = (
        select(User.status, never, func.count())
        .where(
            User.id.in_(matches),
            *_read_by_id(rest.where, fields_joined=connection.dialect.name != "postgresql"),
        )
        .group_by(User.status, never)
    )
    # Free text: the users whose search text holds it, other than those found above,
    # listed by users_fts block by block (its every read of a common text costs some
    # milliseconds: "acm", 3.5), or for a batch of many blocks once, each id's block told
    # by arithmetic ("pac", 1,024 blocks: 88 ms a block at a time, 10 ms at once).
    # PostgreSQL reads the trigram index's list once for a batch of any size (a bitmap of
    # the whole index each time); a text walked row by row is read block by block.
    once_past = _FIELD_TEXT_BLOCKS if connection.dialect.name == "sqlite" else 0
    # Not found above: on PostgreSQL each user's values looked up (NOT IN scanned the
    # batch's values for each user, their estimate too large to hash: "acme", four
    # blocks, 16 ms).
    not_found = (
        unindexed(User.id).not_in(matches)
        if connection.dialect.name == "sqlite"
        else ~by_field.held_by(User.id)
    )
    by_text: dict[bool, Select[str, bool, int]] = {}
    for at_once, within in (
        (False, lambda id_: id_.between(first, last)),
        (True, _in_batch),
    )[: 1 if by_field.text_walked else 2]:
        if (in_text := by_field.text_ids(within)) is not None:
            held = [] if by_field.text_check is None else [by_field.text_check]
            by_text[at_once] = (
                select(User.status, never, func.count())
                .where(
                    User.id.in_(in_text),
                    # The text checked first: the batch's values are listed again for the
                    # NOT IN only once a user holds it ("initech": 0.35 against 1.2 ms a
                    # batch of 19 blocks, none of whose users has it in their own text).
                    *held,
                    not_found,
                    *_read_by_id(rest.where),
                )
                .group_by(User.status, never)
            )
    params = {"low": low, "size": size, "blocks": blocks, "stride": stride}
    params["inverse"] = pow(stride, -1, blocks)
    done = read = 0  # blocks and ids read
    # The first batch gets _SAMPLE_LEAST at least, however late it starts (reading the
    # query ran long: a loaded machine), as the common count's sample does.
    stop, until = min(blocks, _FIELD_FIRST_BATCH), max(deadline, time.monotonic() + _SAMPLE_LEAST)
    while True:
        try:
            with _stopped_at(connection, until, by_id=True):
                statements = [in_values]
                if by_text:
                    statements.append(by_text[not by_field.text_walked and stop - done > once_past])
                found = [
                    row
                    for each in statements
                    for row in connection.execute(each, {**params, "start": done, "stop": stop})
                ]
        except _OutOfTime:
            break
        tally.add(found)
        for n in range(done, stop):
            start = low + (n * stride % blocks) * size
            read += min(high, start + size - 1) - start + 1
        done = stop
        if done == blocks:
            return tally.exact()
        if tally.total >= cap:
            break
        # As many blocks as should reach CAP at the rate found so far (a tenth more).
        wanted = math.ceil(1.1 * (cap - tally.total) * done / max(1, tally.total))
        stop = min(blocks, done + min(wanted, _FIELD_GROWTH * done))
        until = deadline if by_field.in_text is not None else min(deadline, hurry)
    return tally.scaled(share=read / (high - low + 1) if read else 1.0)


class _OutOfTime(Exception):
    """A count statement ran past its deadline and was stopped."""


class _Timer:
    """What a long read inside _stopped_at calls around each fetch of a server-side cursor:
    PostgreSQL times each fetch on its own (SQLite's handler watches the whole time)."""

    def __init__(self, connection: Connection, deadline: float) -> None:
        self.connection, self.deadline = connection, deadline

    def renew(self) -> None:
        """The timeout set again to the time left; _OutOfTime when there is none."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _OutOfTime
        if self.connection.dialect.name != "sqlite":
            ms = math.ceil(left * 1000)
            self.connection.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")

    def lift(self) -> None:
        """No timeout, so that closing the cursor is not cancelled (after a cancelled fetch
        the transaction is in error and this fails: the savepoint's rollback follows)."""
        if self.connection.dialect.name != "sqlite":
            with suppress(DBAPIError):
                self.connection.exec_driver_sql("SET LOCAL statement_timeout = 0")


@contextmanager
def _stopped_at(
    connection: Connection, deadline: float, *, by_id: bool = False
) -> Iterator[_Timer]:
    """Statements run inside stop with _OutOfTime once time.monotonic() passes DEADLINE.

    SQLite: a progress handler on the connection interrupts the statement (a read; the
    transaction goes on). PostgreSQL: statement_timeout set in a savepoint that is rolled
    back after, which also clears a cancelled statement's error. BY_ID: PostgreSQL finds
    each user by id (a nested loop), not by hashing every user of the organization: a
    batch of blocks whose size it cannot know (a recursive CTE's rows) was costed at
    50,000 matches and joined by a hash of all million users (plan:pro, four blocks,
    782 matches: 966 against 12 ms).
    """
    timer = _Timer(connection, deadline)
    if deadline <= time.monotonic():
        raise _OutOfTime
    if connection.dialect.name == "sqlite":
        try:
            with sqlite_stopped_at(connection, deadline):
                yield timer
        except Interrupted:
            raise _OutOfTime from None
        return
    # No JIT: compiling a plan the planner costs high (a count over every user) takes a
    # few hundred milliseconds that statement_timeout does not interrupt. No parallel
    # workers: starting them and stopping them at the deadline took 50 ms more than a
    # deadline of 40 on this loaded 2-core machine (and they took the other core). All in
    # one round trip with the savepoint, as its end is: a count of two batches sent 12
    # statements around its 2, each a wake-up of the server (2 ms apiece at load 2).
    settings = ["SET LOCAL jit = off", "SET LOCAL max_parallel_workers_per_gather = 0"]
    if by_id:
        settings += ["SET LOCAL enable_hashjoin = off", "SET LOCAL enable_mergejoin = off"]
    ms = math.ceil((deadline - time.monotonic()) * 1000)
    settings.append(f"SET LOCAL statement_timeout = {max(ms, 1)}")
    connection.exec_driver_sql("; ".join([f"SAVEPOINT {_SAVEPOINT}", *settings]))
    try:
        yield timer
    except DBAPIError as error:
        if builder.timed_out(error):
            raise _OutOfTime from None
        raise
    finally:
        connection.exec_driver_sql(
            f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}; RELEASE SAVEPOINT {_SAVEPOINT}"
        )


def _tally_query(where: Sequence[ColumnElement[bool]], dialect: str) -> Select[str, bool, int]:
    """Matches per (status, never signed in): every figure of the tabs in one statement.

    On SQLite the status is grouped by behind a unary +: grouped as it is, SQLite would
    read the users along an index that leads with it (ix_users_org_status_login), each
    user, rather than along the index of a time's range that WHERE bounds ("created:<7d",
    27,000 users at a million, was counted from all of them)."""
    never = User.last_login_at.is_(None)
    status = unindexed(User.status) if dialect == "sqlite" else User.status
    return select(status, never, func.count()).where(*where).group_by(status, never)


def _read_by_id(
    where: Sequence[ColumnElement[bool]], *, fields_joined: bool = True
) -> list[ColumnElement[bool]]:
    """WHERE as tests that no index answers ("IS TRUE"), so that a block of ids is read by
    id, not found by walking another index over the whole organization. A role's or a
    group's EXISTS stays as it is: PostgreSQL then joins the links of the block's users
    (it would otherwise run the subquery once per user). Unless FIELDS_JOINED, a custom
    field's EXISTS is such a test too, looked up for each match: joined, PostgreSQL may
    drive the batch by that field's values ("plan:team seats:>100" at a million users,
    the 218,000 values above 100 read for 287 matches: 3.6 s against 8 ms)."""
    return [
        c if isinstance(c, Exists) and (fields_joined or not _on_field_values(c)) else c.is_(true())
        for c in where
    ]


def _on_field_values(condition: Exists) -> bool:
    """Whether CONDITION reads the index of custom-field values."""
    return any(
        getattr(element, "__visit_name__", None) == "table"
        and getattr(element, "name", None) == UserFieldValue.__tablename__
        for element in visitors.iterate(condition)
    )


def _id_blocks(
    connection: Connection, *, most: int, least_ids: int
) -> tuple[int, int, int, int] | None:
    """The users' id range cut in blocks of consecutive ids, MOST of them at most, each of
    LEAST_IDS ids at least: (lowest id, highest id, ids a block, blocks); None when there
    are no users."""
    # Two subqueries: each reads one end of the primary key (together, in one SELECT, they
    # would read the whole table on SQLite).
    low, high = connection.execute(
        select(
            select(func.min(User.id)).scalar_subquery(), select(func.max(User.id)).scalar_subquery()
        )
    ).one()
    if low is None:
        return None
    span = high - low + 1
    size = max(least_ids, -(-span // most))
    return low, high, size, -(-span // size)


def _stride(blocks: int) -> int:
    """A step through BLOCKS blocks (taken modulo BLOCKS) that visits each once and spreads
    any first few over the whole range: the golden ratio of BLOCKS, made coprime to it."""
    stride = max(1, round(blocks * 0.6180339887))
    while math.gcd(stride, blocks) != 1:
        stride += 1
    return stride


class _Tally:
    """The figures summed from rows of _tally_query."""

    def __init__(self, rows: Sequence[Row[str, bool, int]] = ()) -> None:
        self.statuses = {s.value: 0 for s in UserStatus}
        self.total = self.without_login = 0
        self.add(rows)

    def add(self, rows: Sequence[Row[str, bool, int]] | Sequence[tuple[str, bool, int]]) -> None:
        for status, never, n in rows:
            self.statuses[status] += n
            self.total += n
            self.without_login += n if never else 0

    def exact(self) -> UserCounts:
        return UserCounts.exact(self.total, self.statuses, self.without_login)

    def scaled(self, share: float) -> UserCounts:
        return UserCounts.scaled(self.total, self.statuses, self.without_login, share=share)


def _sampled(
    connection: Connection, where: Sequence[ColumnElement[bool]], *, cap: int, deadline: float
) -> UserCounts:
    """The figures estimated from the matches among an even spread of the users.

    One statement reads the id range block by block, in the order of _stride (each block
    gives its matches, or one empty row, so that its end shows), and hands the rows over
    as it goes: a statement's own cost, such as a list of ids an index makes for a term,
    is paid once. Reading stops when CAP matches are found, time.monotonic() passes
    DEADLINE (it gets _SAMPLE_LEAST at least), or every block is read (the figures are
    then exact). The block being read when it stops is left out; each figure is scaled
    by the share of the id range in the blocks read.
    """
    tally = _Tally()
    if (cut := _id_blocks(connection, most=_SAMPLE_BLOCKS, least_ids=_SAMPLE_BLOCK_IDS)) is None:
        return tally.exact()
    low, high, size, blocks = cut
    span = high - low + 1
    stride = _stride(blocks)
    params = {"low": low, "size": size, "blocks": blocks, "stride": stride, "start": 0}
    params["stop"] = blocks
    read = done = 0  # ids and blocks read
    block: dict[tuple[str, bool], int] = {}  # the matches of the block being read
    deadline = max(deadline, time.monotonic() + _SAMPLE_LEAST)
    try:
        with _stopped_at(connection, deadline) as timer:
            # Rows as they come (PostgreSQL: a server-side cursor), so that it can stop.
            result = connection.execute(
                _sample_query(connection.dialect.name, where),
                params,
                execution_options={"yield_per": _SAMPLE_FETCH},
            )
            try:
                fetch = _SAMPLE_FETCH
                while tally.total < cap and time.monotonic() < deadline:
                    rows = result.fetchmany(fetch)
                    fetch = min(fetch * 2, _SAMPLE_FETCH_MOST)
                    if not rows:  # every block read
                        tally.add([(s, n, count) for (s, n), count in block.items()])
                        return tally.exact()
                    for position, status, never in rows:
                        while done < position:  # the blocks before this row's are read
                            tally.add([(s, n, count) for (s, n), count in block.items()])
                            block.clear()
                            first = low + (done * stride % blocks) * size
                            read += min(high, first + size - 1) - first + 1
                            done += 1
                        if status is not None:
                            block[status, bool(never)] = block.get((status, bool(never)), 0) + 1
                    timer.renew()
            finally:
                timer.lift()
                result.close()
    except _OutOfTime:
        pass
    if read == 0:
        return tally.scaled(share=1.0)  # nothing read: every figure "at least 0"
    return tally.scaled(share=read / span)


def _sample_query(dialect: str, where: Sequence[ColumnElement[bool]]) -> Select[int, str, bool]:
    """The matches of WHERE, block by block in the order of _stride, one empty row for a
    block without any (see _sampled for the parameters).

    Each block is read by id: SQLite joins the blocks to the users in the order written;
    PostgreSQL, whose planner would rather read every match once and then compare each
    block with all of them, is made to look each block up by a LATERAL subquery.
    """
    steps = _block_steps()
    first = _first_id(steps)
    in_block = and_(
        User.id.between(first, first + bindparam("size", type_=Integer) - 1),
        *_read_by_id(where),
    )
    never = User.last_login_at.is_(None)
    if dialect == "sqlite":
        return select(steps.c.n, User.status, never).select_from(steps.outerjoin(User, in_block))
    # OFFSET 0 keeps the planner from merging the subquery into the join.
    matches = select(User.status, never.label("never")).where(in_block).offset(0).lateral("matches")
    return select(steps.c.n, matches.c.status, matches.c.never).select_from(
        steps.outerjoin(matches, true())
    )


@lru_cache(maxsize=1)
def _block_steps() -> CTE:
    """The positions :start to :stop (left out) of blocks of ids in the order of _stride,
    as a recursive CTE (`blocks`, its column n), one row each."""
    steps = select(bindparam("start", type_=Integer).label("n")).cte("blocks", recursive=True)
    stop = bindparam("stop", type_=Integer)
    return steps.union_all(select((steps.c.n + 1).label("n")).where(steps.c.n + 1 < stop))


def _in_batch(id_: Any) -> ColumnElement[bool]:
    """Whether ID_ lies in a block at a position of :start to :stop (left out) in the
    order of _stride: the id range cut as _id_blocks says (:low, :size, :blocks), :inverse
    the inverse of :stride modulo :blocks."""
    blocks = bindparam("blocks", type_=Integer)
    block = (type_coerce(id_, Integer) - bindparam("low", type_=Integer)) // bindparam(
        "size", type_=Integer
    )
    position = block * bindparam("inverse", type_=Integer) % blocks
    return and_(
        position >= bindparam("start", type_=Integer), position < bindparam("stop", type_=Integer)
    )


@lru_cache(maxsize=1)
def _first_id(steps: CTE) -> ColumnElement[int]:
    """The first id of the block at each position of STEPS (_block_steps), the id range
    cut as _id_blocks says (:low, :size, :blocks) and read in the order of _stride
    (:stride)."""
    blocks, size = bindparam("blocks", type_=Integer), bindparam("size", type_=Integer)
    stride = bindparam("stride", type_=Integer)
    first: ColumnElement[int] = (
        bindparam("low", type_=Integer) + (steps.c.n * stride % blocks) * size
    )
    return first


def get_user(db: Session, *, actor: Actor, user_id: int) -> User:
    """A user ACTOR may read, with team, groups and roles loaded.

    Raises:
        PermissionDenied: the actor may not read users at all.
        NotFound: no such user in the actor's reach (outside it, users do not exist).
    """
    access.require(actor, Permission.USERS_READ)
    user: User | None = db.scalar(
        _with_links(
            select(User).where(
                User.id == user_id, access.users_in_scope(actor, Permission.USERS_READ)
            )
        )
    )
    if user is None:
        raise NotFound(f"No user {user_id}.", code="user.not_found")
    return user


def user_in_reach(db: Session, *, actor: Actor, user_id: int, permission: str) -> User:
    """The user PERMISSION lets ACTOR act on (no links loaded).

    Raises:
        PermissionDenied: the actor lacks PERMISSION altogether.
        NotFound: no such user in the actor's reach (outside it, users do not exist).
    """
    access.require(actor, permission)
    user = db.scalar(
        select(User).where(User.id == user_id, access.users_in_scope(actor, permission))
    )
    if user is None:
        raise NotFound(f"No user {user_id}.", code="user.not_found")
    return user


def create_admin(
    db: Session,
    *,
    actor: Actor,
    email: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
) -> tuple[User, bool]:
    """Create an active Administrator with EMAIL, or reset the password of the one there is.

    Returns the user and whether it was created.

    Raises:
        InvalidInput: a malformed email or a too short password.
    """
    problems = {}
    if problem := email_problem(email):
        problems["email"] = problem
    organization = db.get_one(Organization, actor.organization_id)
    words = person_password_words(
        email, first_name, last_name, organization.name, organization.slug
    )
    if problem := password_problem(password, words):
        problems["password"] = problem
    if problems:
        raise InvalidInput("The administrator's details are not valid.", fields=problems)
    now = utcnow()
    user = db.scalar(
        select(User).where(
            User.organization_id == actor.organization_id,
            User.email_normalized == normalize_email(email),
        )
    )
    created = user is None
    if user is None:
        user = User(
            organization_id=actor.organization_id,
            email=email.strip(),
            email_normalized=normalize_email(email),
            first_name=first_name.strip(),
            last_name=last_name.strip(),
            created_via=CreatedVia.ADMIN.value,
            email_verified_at=now,
            validated_at=now,
        )
        db.add(user)
    user.password_hash = hash_password(password)
    user.status = UserStatus.ACTIVE.value
    user.status_reason = None
    user.status_until = None
    db.flush()
    role = access.get_role_by_name(db, actor.organization_id, ADMINISTRATOR.name)
    _ensure_role(db, user, role)
    audit.record(
        db,
        actor=actor,
        action="user.created" if created else "user.password_reset",
        target_type="user",
        target_id=user.id,
        changes={"email": user.email, "roles": [role.name]} if created else {},
    )
    return user, created


def _ensure_role(db: Session, user: User, role: Role) -> None:
    db.execute(delete(UserRole).where(UserRole.user_id == user.id, UserRole.role_id == role.id))
    db.add(UserRole(organization_id=user.organization_id, user_id=user.id, role_id=role.id))
    db.flush()


WELCOME_LINK_TTL = timedelta(days=7)
VERIFICATION_LINK_TTL = timedelta(days=3)
RESET_LINK_TTL = timedelta(hours=1)
SET_PASSWORD = "set_password"  # noqa: S105 - a token purpose, not a password
VERIFY_EMAIL = "verify_email"


def check_new_person(
    db: Session | None,
    *,
    organization_id: int,
    email: str,
    first_name: str,
    last_name: str,
    field: str = "",
) -> dict[str, str]:
    """The problems of a person about to be added, by field (FIELD prefixes the names)."""
    problems = {}
    if problem := email_problem(email):
        problems[f"{field}email"] = problem
    for name, value in (("first_name", first_name), ("last_name", last_name)):
        if problem := name_problem(value):
            problems[f"{field}{name}"] = problem
    return problems


def find_by_email(db: Session, organization_id: int, email: str) -> User | None:
    return db.scalar(
        select(User).where(
            User.organization_id == organization_id,
            User.email_normalized == normalize_email(email),
        )
    )


def create_user(db: Session, *, actor: Actor, data: UserCreate, base_url: str) -> User:
    """Add a user (see add_user), the existing one for a pending user known already."""
    return add_user(db, actor=actor, data=data, base_url=base_url)[0]


def add_user(
    db: Session, *, actor: Actor, data: UserCreate, base_url: str, external_id: str | None = None
) -> tuple[User, bool]:
    """Add a user, and whether it was created.

    Active by default (validated; with send_welcome_email, emailed a link to choose a
    password). With status "pending", a Not Activated user known by email alone, as the
    host product makes them from a ticket or a chat: adding one is idempotent on the email,
    the user already there is returned and nothing changes.
    A PASSWORD_HASH from another system (`auth.password_imports`) is checked and kept
    until their first sign-in; it is taken for a new user only. EXTERNAL_ID: the identity
    provider's id for a user SCIM creates.

    Raises:
        PermissionDenied: the actor may not create users, or not with that team or those roles.
        InvalidInput: a bad email, name, status, created_via, team, group, role or password
            hash (each named).
        Conflict: the email is in the organization already (for an active user), or belongs
            to someone outside the actor's reach.
    """
    access.require(actor, Permission.USERS_CREATE)
    now = utcnow()
    problems, created_at = new_user_problems(data, now=now)
    if problems:
        raise InvalidInput("The user's details are not valid.", fields=problems)
    pending = data.status == UserStatus.PENDING.value
    given_attributes = (
        attributes.checked(
            db,
            organization_id=actor.organization_id,
            values=data.attributes,
            party=attributes.party_of(actor),
        )
        if data.attributes is not None
        else {}
    )
    imported_hash = None
    if data.password_hash is not None:  # a user coming with their password (password_imports)
        organization = db.get_one(Organization, actor.organization_id)
        imported_hash = password_imports.checked_hash(organization, data.password_hash)
    membership = resolve(
        db, actor=actor, team_id=data.team_id, group_ids=data.group_ids, role_ids=data.role_ids
    )
    existing = find_by_email(db, actor.organization_id, data.email)
    if existing is not None:
        if pending and db.scalar(
            select(User.id).where(
                User.id == existing.id, access.users_in_scope(actor, Permission.USERS_READ)
            )
        ):
            return existing, False
        raise Conflict(
            f"{data.email.strip()} is in the organization already.",
            code="user.email_taken",
            fields={"email": f"'{data.email.strip()}' is taken"},
        )
    via = created_via_of(actor, data)
    user = User(
        organization_id=actor.organization_id,
        email=data.email.strip(),
        email_normalized=normalize_email(data.email),
        first_name=data.first_name.strip(),
        last_name=data.last_name.strip(),
        status=UserStatus.PENDING.value if pending else UserStatus.ACTIVE.value,
        created_via=via,
        # validated on creation: when the person signed up, for a backfilled one
        validated_at=created_at or now,
        created_at=created_at or now,
        password_hash=imported_hash,
        external_id=external_id,
    )
    db.add(user)
    db.flush()
    attach(db, user, membership)
    set_attributes = attributes.write(db, user, given_attributes)
    audit.record(
        db,
        actor=actor,
        action="user.created",
        target_type="user",
        target_id=user.id,
        changes={
            "email": user.email,
            **membership.names(),
            "welcome_email": data.send_welcome_email,
        }
        | ({"status": user.status, "created_via": via} if pending else {})
        | ({"created_at": created_at.isoformat()} if created_at else {})
        | ({"external_id": external_id} if external_id is not None else {})
        | (password_imports.audited(imported_hash) if imported_hash else {})
        | (
            {"attributes": {k: v["to"] for k, v in set_attributes.items()}}
            if set_attributes
            else {}
        ),
    )
    if data.send_welcome_email:
        send_set_password_email(db, user=user, kind=EmailKind.WELCOME, base_url=base_url)
    return user, True


# What add_users writes of each new user (besides what they all share).
NEW_USER_COLUMNS = (
    "id",
    "email",
    "email_normalized",
    "first_name",
    "last_name",
    "created_via",
    "team_id",
    "validated_at",
    "created_at",
    "external_id",
)


def add_users(
    db: Session,
    *,
    actor: Actor,
    items: Sequence[tuple[UserCreate, str | None] | Exception],
    max_errors: int | None = None,
) -> list[int | Exception]:
    """Add many active users at once (each a UserCreate and its EXTERNAL_ID, as add_user
    takes them), in a few statements for them all: what became of each, in order, the new
    user's id or the error add_user would have raised for it (an email given twice: the
    second is taken). An item the caller refused already (an exception) stays refused in
    its place. After MAX_ERRORS errors the rest are neither checked nor added (the list is
    shorter). Audited and told to webhooks as add_user does, one `user.created` each
    (audit.record_many).

    Only for new active users without custom fields, imported password hash or welcome
    email (SCIM's Bulk): add_user adds the others.

    Raises:
        PermissionDenied: the actor may not create users.
        ValueError: an item add_user alone adds (see above).
        IntegrityError: an email another transaction took since it was looked for (the
            caller's savepoint rolls the batch back).
    """
    access.require(actor, Permission.USERS_CREATE)
    now = utcnow()
    outcomes: list[int | Exception] = []
    wanted: list[tuple[int, UserCreate, str | None, Any]] = []  # (index, data, id, links)
    taken = {
        email
        for (email,) in db.execute(
            select(User.email_normalized).where(
                User.organization_id == actor.organization_id,
                User.email_normalized.in_(
                    {normalize_email(item[0].email) for item in items if isinstance(item, tuple)}
                ),
            )
        )
    }
    errors = 0
    for item in items:
        if isinstance(item, Exception):
            outcomes.append(item)
            errors += 1
            if max_errors is not None and errors >= max_errors:
                break
            continue
        data, external_id = item
        if (
            data.attributes is not None
            or data.password_hash is not None
            or data.send_welcome_email
            or data.status == UserStatus.PENDING.value
        ):
            raise ValueError("add_users adds new active users only: use add_user")
        try:
            problems, created_at = new_user_problems(data, now=now)
            if problems:
                raise InvalidInput("The user's details are not valid.", fields=problems)
            links = resolve(
                db,
                actor=actor,
                team_id=data.team_id,
                group_ids=data.group_ids,
                role_ids=data.role_ids,
            )
            key = normalize_email(data.email)
            if key in taken:
                raise Conflict(
                    f"{data.email.strip()} is in the organization already.",
                    code="user.email_taken",
                    fields={"email": f"'{data.email.strip()}' is taken"},
                )
        except DomainError as error:
            outcomes.append(error)
            errors += 1
            if max_errors is not None and errors >= max_errors:
                break
            continue
        taken.add(key)
        outcomes.append(0)  # the new user's id, once inserted
        wanted.append((len(outcomes) - 1, data, external_id, (links, created_at)))
    if not wanted:
        return outcomes
    connection = db.connection()
    sql_time = bulk.sql_time(connection.dialect.name)
    new_ids = bulk.next_ids(connection, "users", len(wanted))
    rows = []
    for (_, data, external_id, (links, created_at)), user_id in zip(wanted, new_ids, strict=True):
        rows.append(
            (
                user_id,
                data.email.strip(),
                normalize_email(data.email),
                data.first_name.strip(),
                data.last_name.strip(),
                created_via_of(actor, data),
                links.team.id if links.team else None,
                sql_time(created_at or now),  # validated on creation, as add_user does
                sql_time(created_at or now),
                external_id,
            )
        )
    bulk.insert_rows(
        connection,
        "users",
        NEW_USER_COLUMNS,
        rows,
        same={
            "organization_id": actor.organization_id,
            "status": UserStatus.ACTIVE.value,
            "updated_at": sql_time(now),
            "version": 1,
        },
    )
    events: list[tuple[int, dict[str, Any]]] = []
    for (index, data, external_id, (links, created_at)), user_id in zip(
        wanted, new_ids, strict=True
    ):
        outcomes[index] = user_id
        if links.groups or links.roles:
            user = db.get_one(User, user_id)
            attach(db, user, links)
        events.append(
            (
                user_id,
                {"email": data.email.strip(), **links.names(), "welcome_email": False}
                | ({"created_at": created_at.isoformat()} if created_at else {})
                | ({"external_id": external_id} if external_id is not None else {}),
            )
        )
    audit.record_many(db, actor=actor, action="user.created", target_type="user", targets=events)
    return outcomes


def backdate(db: Session, *, actor: Actor, user_id: int, created_at: datetime) -> User:
    """Set when a user really signed up (CREATED_AT, a past time the caller checked with
    rules.history_time), as a host product backfilling its history tells it: what churn
    scoring "as of" a date reads. Audited as an update.

    Raises:
        PermissionDenied: the actor may not update users.
        NotFound: no such user within reach.
    """
    user = user_in_reach(db, actor=actor, user_id=user_id, permission=Permission.USERS_UPDATE)
    before = user.created_at
    if before == created_at:
        return user
    user.created_at = created_at
    user.version += 1
    db.flush()
    audit.record(
        db,
        actor=actor,
        action="user.updated",
        target_type="user",
        target_id=user.id,
        changes={"created_at": {"from": before.isoformat(), "to": created_at.isoformat()}},
    )
    return user


NEW_STATUSES = (UserStatus.ACTIVE.value, UserStatus.PENDING.value)


def new_user_problems(data: UserCreate, *, now: datetime) -> tuple[dict[str, str], datetime | None]:
    """What is wrong with DATA as someone new, by field (nothing the database knows: the
    email's owner, the team, groups and roles are checked apart), and its created_at as
    a time (None: not given)."""
    problems = check_new_person(
        None,
        organization_id=0,
        email=data.email,
        first_name=data.first_name,
        last_name=data.last_name,
    )
    if data.status is not None and data.status not in NEW_STATUSES:
        problems["status"] = f"'{data.status}' is not one of: {', '.join(NEW_STATUSES)}"
    if data.created_via is not None and (problem := created_via_problem(data.created_via)):
        problems["created_via"] = problem
    created_at = None
    if data.created_at is not None:
        created_at, problem = history_time(data.created_at, now=now)
        if problem:
            problems["created_at"] = problem
    return problems, created_at


def created_via_of(actor: Actor, data: UserCreate) -> str:
    """How a user DATA describes came: as the host says, else by API key or by an admin."""
    return data.created_via or (CreatedVia.API if actor.api_key_id else CreatedVia.ADMIN).value


def send_set_password_email(db: Session, *, user: User, kind: EmailKind, base_url: str) -> None:
    """Email USER a link to choose a password (never a password)."""
    token, expires = issue_user_token(db, user=user, purpose=SET_PASSWORD, ttl=WELCOME_LINK_TTL)
    _email(db, user, kind, f"{base_url}/password/reset/{token}", expires)


def _email(db: Session, user: User, kind: EmailKind, link: str, expires: datetime) -> None:
    organization = db.get_one(Organization, user.organization_id)
    mail.enqueue(
        db,
        organization_id=user.organization_id,
        to=user.email,
        kind=kind,
        context=mail.email_context(organization, user, link=link, expires=expires),
        user_id=user.id,
    )


def send_verification_email(db: Session, *, actor: Actor, user_id: int, base_url: str) -> User:
    """Email the user a new link to confirm their address (the previous link dies).

    Raises:
        PermissionDenied: the actor may not update this user, or the user holds as much
            as the actor (their permissions are not a strict subset of the actor's).
        NotFound: no such user in reach.
        Conflict: the address is verified already.
        RateLimited: too many verification emails for this account lately.
    """
    access.require(actor, Permission.USERS_UPDATE)
    user = get_user(db, actor=actor, user_id=user_id)
    if not actor.covers(Permission.USERS_UPDATE, user.team_id):
        raise NotFound(f"No user {user_id}.", code="user.not_found")
    access.require_stronger(db, actor, user, what="be sent a verification email")
    _send_verification(db, user, base_url)
    audit.record(
        db,
        actor=actor,
        action="user.verification_email_sent",
        target_type="user",
        target_id=user.id,
    )
    return user


def send_own_verification_email(
    db: Session, *, user: User, base_url: str, ip: str | None = None
) -> None:
    """A signed-in person asks for a new link to confirm their own address.

    Raises:
        Conflict: the address is verified already.
        RateLimited: too many verification emails for this account or from IP lately.
    """
    _send_verification(db, user, base_url, ip=ip)


def _send_verification(db: Session, user: User, base_url: str, *, ip: str | None = None) -> None:
    if user.email_verified_at is not None:
        raise Conflict(f"{user.email} is verified already.", code="user.already_verified")
    throttle.verification_resend(db, ip=ip, user_id=user.id)
    token, expires = issue_user_token(
        db, user=user, purpose=VERIFY_EMAIL, ttl=VERIFICATION_LINK_TTL
    )
    _email(db, user, EmailKind.VERIFICATION, f"{base_url}/verify/{token}", expires)


def verify_email(db: Session, *, token: str) -> User:
    """Mark the address behind a verification link as verified.

    Raises:
        LinkProblem: the link is unknown, used or expired.
    """
    found, user = find_user_token(db, token=token, purpose=VERIFY_EMAIL)
    now = utcnow()
    found.used_at = now
    verified = user.email_verified_at is not None
    user.email_verified_at = user.email_verified_at or now
    db.flush()
    if not verified:
        webhook_events.user_changed(
            db,
            actor=webhook_events.the_user(user),
            action="user.email_verified",
            user_id=user.id,
            changes={"email_verified": {"from": False, "to": True}},
        )
    return user


def request_password_reset(
    db: Session, *, email: str, base_url: str, ip: str | None = None
) -> None:
    """Email a reset link to EMAIL when it belongs to someone who may sign in.

    Says nothing either way, so that it cannot tell who has an account, not even by the
    time it takes: without an account the same link and email are made for a stand-in, and
    undone (auth.decoy).

    Raises:
        RateLimited: too many requests from IP or for EMAIL (known or not) lately.
    """
    throttle.password_reset(db, ip=ip, email=email)
    found = db.scalars(select(User).where(User.email_normalized == normalize_email(email))).all()
    eligible = [u for u in found if u.status in (UserStatus.ACTIVE.value, UserStatus.PENDING.value)]
    for user in eligible:
        _send_reset_link(db, user, base_url)
    if not eligible:
        with decoy.undone(db):
            # Someone who exists: a known address's answer adds no person either.
            if (person := decoy.someone(db) or decoy.stand_in(db, email)) is not None:
                _send_reset_link(db, person, base_url)


def _send_reset_link(db: Session, user: User, base_url: str) -> None:
    token, expires = issue_user_token(db, user=user, purpose=SET_PASSWORD, ttl=RESET_LINK_TTL)
    _email(db, user, EmailKind.PASSWORD_RESET, f"{base_url}/password/reset/{token}", expires)


def reset_password(db: Session, *, token: str, password: str) -> User:
    """Set a password through an emailed link; the link also proves the address.

    Raises:
        LinkProblem: the link is unknown, used or expired.
        InvalidInput: the password is too short, too long or too common.
    """
    found, user = find_user_token(db, token=token, purpose=SET_PASSWORD)
    set_password(db, user=user, password=password)
    now = utcnow()
    found.used_at = now
    moved = _verified_and_activated(user, now)
    db.flush()
    if moved:  # the host product hears of it (the audit log records no password reset)
        webhook_events.user_changed(
            db,
            actor=webhook_events.the_user(user),
            action="user.password_reset",
            user_id=user.id,
            changes=moved,
        )
    return user


def _verified_and_activated(user: User, now: datetime) -> dict[str, Any]:
    """Mark USER's address verified and a Not Activated USER active (their link proved
    the address); the fields that moved, as {"from", "to"}."""
    moved: dict[str, Any] = {}
    if user.email_verified_at is None:
        user.email_verified_at = now
        moved["email_verified"] = {"from": False, "to": True}
    if user.status == UserStatus.PENDING.value:
        user.status = UserStatus.ACTIVE.value
        moved["status"] = {"from": UserStatus.PENDING.value, "to": UserStatus.ACTIVE.value}
    return moved


def is_last_administrator(db: Session, user: User) -> bool:
    administrators = (
        select(func.count())
        .select_from(UserRole)
        .join(Role, Role.id == UserRole.role_id)
        .join(User, User.id == UserRole.user_id)
        .where(
            Role.organization_id == user.organization_id,
            Role.name == ADMINISTRATOR.name,
            Role.builtin.is_(True),
            User.status == UserStatus.ACTIVE.value,
        )
    )
    holds = (
        select(UserRole.user_id)
        .join(Role, Role.id == UserRole.role_id)
        .where(UserRole.user_id == user.id, Role.name == ADMINISTRATOR.name, Role.builtin.is_(True))
    )
    return (
        user.status == UserStatus.ACTIVE.value
        and db.scalar(holds) is not None
        and (db.scalar(administrators) or 0) <= 1
    )


CHANGE_EMAIL = "change_email"
EMAIL_CHANGE_TTL = timedelta(days=3)


def update_user(
    db: Session,
    *,
    actor: Actor,
    user_id: int,
    data: UserUpdate,
    version: int | None,
    base_url: str,
    set_external_id: bool = False,
    external_id: str | None = None,
) -> User:
    """Change a user's names, team, groups and roles; a new email waits for confirmation.
    SET_EXTERNAL_ID: the identity provider's id for the user (SCIM externalId) becomes
    EXTERNAL_ID too, audited and told to webhooks (user.updated) like the names.

    VERSION is the one the edit was based on (the ETag): someone else's save since then
    makes the edit fail rather than overwrite it.

    Raises:
        PreconditionRequired: no VERSION.
        PreconditionFailed: the user changed since VERSION.
        PermissionDenied: the actor may not update this user, give or take those roles
            or that team (beyond its own grant over the user), or edits its own roles or
            team (fields role_ids, team_id).
        NotFound: no such user within reach.
        InvalidInput: a bad name, email, team, group or role (each field named).
        Conflict: the new email is taken, or the last Administrator would be demoted.
    """
    access.require(actor, Permission.USERS_UPDATE)
    user = db.scalar(
        select(User).where(
            User.id == user_id, access.users_in_scope(actor, Permission.USERS_UPDATE)
        )
    )
    if user is None:
        raise NotFound(f"No user {user_id}.", code="user.not_found")
    if version is None:
        raise PreconditionRequired(
            "Send the user's ETag as If-Match, so that no one else's change is overwritten.",
            fields={"If-Match": "is required"},
        )
    if version != user.version:
        raise PreconditionFailed(
            f"{user.email} was changed by someone else since you loaded it (version "
            f"{version}, now {user.version}). Reload, then apply your change again.",
            fields={"If-Match": f"version {version} is not the current version {user.version}"},
        )
    access.require_not_weaker(db, actor, user)
    if data.email is not None and normalize_email(data.email) != user.email_normalized:
        access.refuse_while_impersonating(actor, "change an email")
        if user.id != actor.user_id:
            access.require_stronger(db, actor, user, what="have their email changed")
    if actor.impersonator_id is not None and data.role_ids is not None:
        held = db.scalars(select(UserRole.role_id).where(UserRole.user_id == user.id))
        if set(data.role_ids) != {str(role_id) for role_id in held}:
            access.refuse_while_impersonating(actor, "change roles")
    given = data.model_fields_set
    new_attributes = (
        attributes.checked(
            db,
            organization_id=user.organization_id,
            values=data.attributes,
            party=attributes.party_of(actor),
        )
        if data.attributes is not None
        else {}
    )
    problems = check_new_person(
        db,
        organization_id=user.organization_id,
        email=data.email if data.email is not None else user.email,
        first_name=data.first_name or "",
        last_name=data.last_name or "",
    )
    if problems:
        raise InvalidInput("The user's details are not valid.", fields=problems)
    membership = resolve(
        db,
        actor=actor,
        team_id=data.team_id
        if "team_id" in given
        else (str(user.team_id) if user.team_id else None),
        group_ids=data.group_ids or [],
        role_ids=data.role_ids or [],
        default_team=False,
        permission=Permission.USERS_UPDATE,
        check_roles=False,
    )
    held_roles = access.roles_of(db, user)
    require_change_allowed(
        actor,
        user=user,
        held=held_roles,
        team_after=membership.team.id if membership.team else None,
        roles_after=membership.roles if data.role_ids is not None else held_roles,
    )
    before = loaded_user_view(get_user(db, actor=actor, user_id=user.id))
    keeps_admin = any(r.name == ADMINISTRATOR.name and r.builtin for r in membership.roles)
    if data.role_ids is not None and not keeps_admin and is_last_administrator(db, user):
        raise Conflict(
            "This is the organization's last active Administrator: the role stays.",
            code="user.last_administrator",
        )
    for field in ("first_name", "last_name"):
        value = getattr(data, field)
        if value is not None:
            setattr(user, field, value.strip())
    replace_links(
        db,
        user,
        team=membership.team if "team_id" in given else False,
        groups=membership.groups if data.group_ids is not None else None,
        roles=membership.roles if data.role_ids is not None else None,
    )
    if data.email is not None and normalize_email(data.email) != user.email_normalized:
        _request_email_change(db, user, data.email.strip(), base_url)
    external_before = user.external_id
    if set_external_id:
        user.external_id = external_id
    moved_attributes = attributes.write(db, user, new_attributes)
    user.version += 1
    db.flush()
    db.expire(user)
    after = loaded_user_view(get_user(db, actor=actor, user_id=user.id))
    changes = {
        key: {"from": _plain(before[key]), "to": _plain(after[key])}
        for key in ("first_name", "last_name", "team", "groups", "roles")
        if before[key] != after[key]
    }
    if set_external_id and external_id != external_before:
        changes["external_id"] = {"from": external_before, "to": external_id}
    if moved_attributes:  # the fields that moved: before and after, as webhooks tell them
        changes["attributes"] = {
            "from": {key: moved["from"] for key, moved in moved_attributes.items()},
            "to": {key: moved["to"] for key, moved in moved_attributes.items()},
        }
    if data.email is not None and normalize_email(data.email) != before["email"].lower():
        changes["pending_email"] = {"from": None, "to": data.email.strip()}
    audit.record(
        db,
        actor=actor,
        action="user.updated",
        target_type="user",
        target_id=user.id,
        changes=changes,
    )
    return user


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("name")
    if isinstance(value, list):
        return [v.get("name") for v in value]
    return value


def _request_email_change(db: Session, user: User, new_email: str, base_url: str) -> None:
    if find_by_email(db, user.organization_id, new_email) is not None:
        raise Conflict(
            f"{new_email} is in the organization already.",
            code="user.email_taken",
            fields={"email": f"'{new_email}' is taken"},
        )
    user.pending_email = new_email
    token, expires = issue_user_token(db, user=user, purpose=CHANGE_EMAIL, ttl=EMAIL_CHANGE_TTL)
    organization = db.get_one(Organization, user.organization_id)
    context = mail.email_context(
        organization,
        user,
        link=f"{base_url}/email/confirm/{token}",
        expires=expires,
        new_email=new_email,
    )
    mail.enqueue(
        db,
        organization_id=user.organization_id,
        to=new_email,
        kind=EmailKind.EMAIL_CHANGE,
        context=context,
        user_id=user.id,
    )
    mail.enqueue(
        db,
        organization_id=user.organization_id,
        to=user.email,
        kind=EmailKind.EMAIL_CHANGE_NOTICE,
        context=context,
        user_id=user.id,
    )


def confirm_email_change(db: Session, *, token: str) -> User:
    """The owner of a new address confirms it: the email changes now.

    Raises:
        LinkProblem: the link is unknown, used, expired, or the address was taken since.
    """
    found, user = find_user_token(db, token=token, purpose=CHANGE_EMAIL)
    new_email = user.pending_email
    if not new_email or find_by_email(db, user.organization_id, new_email) is not None:
        raise LinkProblem("That address cannot be used any more.", code="link.invalid")
    now = utcnow()
    found.used_at = now
    changes: dict[str, Any] = {"email": {"from": user.email, "to": new_email}}
    if user.email_verified_at is None:
        changes["email_verified"] = {"from": False, "to": True}
    user.email = new_email
    user.email_normalized = normalize_email(new_email)
    user.email_verified_at = now
    user.pending_email = None
    user.version += 1
    db.flush()
    webhook_events.user_changed(
        db,
        actor=webhook_events.the_user(user),
        action="user.updated",
        user_id=user.id,
        changes=changes,
    )
    return user
