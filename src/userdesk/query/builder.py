"""The one filter builder: a parsed query becomes SQL conditions on the users table.

Free text is matched by an index on each database. Terms of three characters or more
match any substring of "first last email" (SQLite: the FTS5 trigram table users_fts;
PostgreSQL: a pg_trgm GIN index). Shorter terms match the start of a word (SQLite: the
FTS5 table users_words with prefix indexes; PostgreSQL: a GIN index on the words), since
a substring of one or two characters can only be found by reading every row.

On SQLite the query is planned here (see selection): a term that matches many rows is
checked against its index's list of ids, or row by row (ud_contains, ud_word_prefix: see
userdesk.db.engine) with the same meaning as the index. PostgreSQL plans for itself.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, NoReturn, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    CompoundSelect,
    Select,
    String,
    and_,
    any_,
    case,
    column,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import visitors

from userdesk.access.models import Group, Role, Team
from userdesk.db.engine import unindexed
from userdesk.errors import InvalidInput
from userdesk.query.rules import (
    KEYS_HELP,
    NO,
    YES,
    ChoiceTerm,
    FieldTerm,
    FlagTerm,
    HasTerm,
    Key,
    LoginNeverTerm,
    Query,
    QueryError,
    TextTerm,
    TimeTerm,
    parse,
)
from userdesk.users import attributes
from userdesk.users.attributes import AUDIENCE_PARTIES, Party
from userdesk.users.field_rules import TEXT_MAX, TEXTUAL, FieldSpec, ValueProblem, parse_date
from userdesk.users.models import User, UserFieldValue, UserGroup, UserRole

NAMED_MODELS: dict[Key, type[Role | Team | Group]] = {
    Key.ROLE: Role,
    Key.TEAM: Team,
    Key.GROUP: Group,
}
SHORT_TERM = 3  # terms shorter than this match word prefixes
# On SQLite, a term whose index lists at most this many users is where a page starts:
# they are read by id and sorted (which costs as much as there are of them, some 3 µs
# each, as much as a few index entries read in order). When every term has more, the
# list is read in its sort order: matches are then frequent, so a page fills fast. A
# term listing at most LISTED_MOST users (free text: TEXT_LISTED_MOST, as its row-by-row
# check costs more) is then checked against its list, built once per page (some 0.2 µs
# an id), every other term row by row.
FEW = 5_000
# A read in sort order that runs long sorts the users of the shortest list instead, when
# it has at most this many (more would cost more than the read).
SORTED_INSTEAD_MOST = 10_000
LISTED_MOST = 20_000
TEXT_LISTED_MOST = 50_000
# Free text that starts the values of searchable custom fields: at most this many are
# listed once for a statement, more looked up row by row (see _or_in_fields).
FIELD_TEXT_LISTED_MOST = 5_000
# Free text that searchable fields may hold and at most this many users may match is
# counted from its lists, not block by block (see _text_ids).
TEXT_COUNTED_FEW = 5_000
# Counted block by block on PostgreSQL, such text estimated to be in at most this many
# users' search text is listed by the trigram index once a batch; more is tested row by
# row, block by block (see _text_ids).
PG_TEXT_LISTED_MOST = 5_000
# With such lists, a range on a time (not the sort's) of at most this many users is read
# along its index and sorted (some 0.5 µs an index entry with its ids checked against
# the lists, 25 ms at most), rather than the users read in sort order (see
# _shortest_range).
RANGE_SORTED_MOST = 50_000
# Without lists, each entry of such a range may cost a row read and its checks.
RANGE_ROW_SECONDS = 2e-6
# A range on a time that is the page's only term checked row by row, beside a single
# status (read in sort order, along the status's index) or along the index of a sort that
# does not hold that time (_holds_times): its entries would each cost a row, some 6 µs at
# a million users (found anywhere in the table). Counted up to this many users (with the
# status, whose index holds the time after it), and read along its index and sorted when
# that costs fewer rows than a read in sort order would pass for a page were its matches
# spread evenly (PAGE_ROWS * users / range): when it has at most the square root of
# PAGE_ROWS * users ("created:<7d status:disabled" by name, 459 users at a million: 100 to
# 130 ms of CPU along ix_users_org_status_name, 18 ms sorted; "seen:<1d status:trashed"
# by name 300 to 400 against 10 to 16).
RANGE_FIRST_MOST = 10_000
# A long term is looked up by its rarest trigrams (this many), each first counted up to
# TRIGRAM_PROBE (enough to tell the rare from the common).
RARE_TRIGRAMS = 3
TRIGRAM_PROBE = 1_000
# On PostgreSQL (which estimates a free-text term's matches at a fixed 0.01 % or so, and
# plans a role's page along the sort's index however rare the role), a page's free-text
# terms are first tested on the newest PG_SAMPLE users, and its roles and groups counted
# on their index up to PG_PROBE ids (the rest estimated from how far into the ids those
# reach). The page then either sorts the users of the rarest term (when they are fewer
# than the rows a read in sort order would go through to find a page, PAGE_ROWS over the
# share of users all such terms match together, each such row costing
# PG_READ_IN_ORDER_COST) or reads in sort order, and falls back to sorting the rarest's
# users when the read runs long (the matches lie far along the sort: "el" by name; or
# filters PostgreSQL plans for leave few of them).
PG_PROBE = 1_000
PG_SAMPLE = 400
PAGE_ROWS = 51
# A row read in sort order (from anywhere in the table) costs about twice one of a
# sorted list (read in the table's order). With a role's or group's link looked up, no
# more than a user of theirs sorted (each found by id, anywhere in the table):
# "role:Agent" by name, 13,000 users, reads 4,300 rows in 9 ms, sorts them in 90.
PG_READ_IN_ORDER_COST = 2
PG_LINKED_READ_IN_ORDER_COST = 1
# A role's, tested on the role ids its sort's covering index holds (users.role_ids): an
# index entry, not a row nor a link ("son role:Agent" by name walks 98,000 entries in
# 28 ms, some 0.3 µs each, where sorting Agent's 12,977 users takes 50 to 100).
PG_ROLE_READ_IN_ORDER_COST = 0.1
# Sorting a role's users costs more a user than PG_SORTED_ROW_SECONDS: each is found by
# id anywhere in the table (Agent's 12,977: 49,500 buffers, 96 to 134 ms at a million
# users, 7 to 10 µs each), which the read in sort order, when from the index, is given.
PG_ROLE_SORTED_ROW_SECONDS = 8e-6
# A read in sort order gets as long as sorting the rarest term's users would take (some
# 4 µs a user), PG_READ_IN_ORDER_LEAST at least: a common term ("mar" by email) fills a
# page in a few milliseconds, which a loaded machine may make 30.
PG_SORTED_ROW_SECONDS = 4e-6
PG_READ_IN_ORDER_LEAST = 0.025
# PostgreSQL's SQLSTATE for a statement_timeout; inside a regular expression it is this
# other one ("invalid regular expression: operation cancelled").
_QUERY_CANCELED = "57014"
_REGEX_CANCELED = "2201B"
WORD = re.compile(r"[^\W_]+")
# An empty array of ids (PostgreSQL), for a role or a group nobody holds.
_NO_IDS: ColumnElement[Any] = literal_column("'{}'::bigint[]")
_FTS = table("users_fts", column("rowid"), column("users_fts"))
_WORDS = table("users_words", column("rowid"), column("users_words"))
# Exactly the expression of the index ix_users_search_words (see the migration).
_PG_WORDS: ColumnElement[Any] = literal_column(
    "to_tsvector('simple'::regconfig, regexp_replace(users.search_text, '[^[:alnum:]]+', ' ', 'g'))"
)


def parse_query(source: str) -> Query:
    """Parse Q for a service.

    Raises:
        InvalidInput: the error names the term and what is allowed, under the field "q".
    """
    try:
        return parse(source)
    except QueryError as error:
        raise InvalidInput(
            error.message, code="invalid_query", fields={"q": error.message}
        ) from None


@dataclass(frozen=True)
class Selection:
    """The conditions selecting a query's users, and whether they find few (FEW at most)
    through an index: a page of them is then best sorted, not read along a sort index."""

    where: list[ColumnElement[bool]]
    few: bool
    # When the users are read in sort order and some terms have lists: the same users
    # from the shortest list (or what the lists have in common; or a time's range, read
    # along its index), to sort instead should the read run long (the matches may all lie
    # far along the sort: "jo" sorted by email starts at "jo..."; or be none).
    instead: Selection | None = None
    # Seconds the read in sort order may take before INSTEAD is read (None, or less: the
    # caller's default): as long as reading INSTEAD would about take.
    within: float | None = None


# A condition on the users table, written with each of its columns wrapped in a function
# (unindexed: so that SQLite does not choose an index for it).
Check = Callable[[Callable[[Any], Any]], ColumnElement[bool]]


@dataclass(frozen=True, eq=False)
class _Condition:
    """One term of a query as SQL: CHECK tells whether a row matches; LISTED, where an
    index can, lists the ids of the organization's users that match (only those if EXACT;
    some others too if not: CHECK then narrows them)."""

    check: Check
    listed: Select[Any] | None = None
    exact: bool = True
    # When the rows are read in sort order, left for SQLite to use an index for: a single
    # status or a team, which lead an index with the sort's columns.
    left_to_planner: bool = False
    # Left for SQLite to use an index for when the rows are read in this column's order,
    # which that index gives after the term's value (login:never by last seen), unless
    # another term is (a status, a team).
    ordered_with: Any = None
    # The column of the index that lists it (a time), which may be the sort's.
    column: Any = None
    term_key: Key | None = None  # status, for the choice of the index left to SQLite
    # Checked on a row as cheaply as on a list of ids (a column of users): never a list.
    cheap_check: bool = False
    # LISTED gives the ids in increasing order (a full-text index): how far the first FEW
    # reach into the ids tells how many there are in all.
    in_id_order: bool = False
    # Free text (SQLite): its check row by row costs more than another term's, so its
    # list is checked up to TEXT_LISTED_MOST users.
    free_text: bool = False
    # How many users LISTED has, about, when known as the term is made (free text that
    # searchable fields may hold: see _or_in_fields).
    size: int | None = None
    # PostgreSQL: counted first (see PG_PROBE), with LISTED; and the check written so that
    # no index answers it and the planner takes it for a common one (WALK: a free-text
    # term, when the users are read in sort order).
    probed: bool = False
    walk: Check | None = None
    # PostgreSQL: LISTED as one list per role or group id, each in increasing id order
    # (read so from the index of the links), whose sizes add up to LISTED's, about.
    in_order: tuple[Select[Any], ...] = ()
    # PostgreSQL: CHECK as the users whose users are sorted are found (a role's or a
    # group's: its links' user ids gathered first into one array, then each user found
    # by id, where an EXISTS may be planned as a read of every user).
    sorted_check: Check | None = None
    # PostgreSQL: CHECK on the sorted users of another term, row by row (a role's or a
    # group's link looked up for each, where PostgreSQL would rather hash all its links:
    # 138,000 for a group, 110 ms, to keep 4,500 of the 32,000 users of "ann").
    row_check: Check | None = None
    # PostgreSQL: CHECK when the users are read in sort order, on a column the sort's
    # covering index holds (a role's: users.role_ids), so that the read stays in the index.
    in_order_check: Check | None = None


def conditions(
    db: Session,
    *,
    organization_id: int,
    query: Query,
    now: datetime,
    party: Party = Party.ADMIN,
) -> list[ColumnElement[bool]]:
    """SQL conditions on User selecting exactly the users QUERY describes.

    Raises:
        InvalidInput: a role, team or group name that the organization does not have; a
            custom field it does not have (or PARTY may not see), or a value of the
            wrong type for one.
    """
    return selection(db, organization_id=organization_id, query=query, now=now, party=party).where


def selection(
    db: Session,
    *,
    organization_id: int,
    query: Query,
    now: datetime,
    sort_column: Any = None,
    party: Party = Party.ADMIN,
) -> Selection:
    """The users QUERY describes, and how SQLite should find them.

    SQLite's statistics know how many rows a column's value has on average, not how many
    this value has (a status of 3 % looks like one of 72 %; a group of 50 users like one
    of 140,000), so it cannot tell a rare term from a common one and may read most of the
    table for a page. Here each term that an index can list is counted first:

    - one lists FEW users or fewer: the users come from its list, the other terms are
      checked on them, and they are sorted;
    - otherwise the users are read along the sort's index (SORT_COLUMN leads it: a
      range on it is read from that index), and a term listing at most LISTED_MOST users
      (TEXT_LISTED_MOST for free text) is checked against its list, which the index
      entries answer before any row is read (a term matching 1 % of the users costs a
      few thousand index entries, not a few thousand rows);
    - every other term is checked row by row: each matches many, so a page fills fast.

    PostgreSQL, whose statistics know the common values, plans for itself.

    A custom field's term (plan:pro) is listed by the index of values (user_field_values)
    and checked on a row by a look-up in that index (see _field).

    Raises:
        InvalidInput: a role, team or group name that the organization does not have; a
            custom field it does not have (or PARTY may not see), or a bad value for one.
    """
    dialect = db.get_bind().dialect.name
    found = _conditions(db, organization_id, query, now, dialect, party)
    if dialect != "sqlite":
        if sort_column is None:  # not a page: a count, an export, a bulk action
            return Selection([c.check(_as_is) for c in found], few=False)
        return _pg_selection(db, found, sort_column)
    # A single status, or a time the list is sorted by, is read along an index that gives
    # both the order and the matches: nothing to count there.
    listed = {
        index: c.listed
        for index, c in enumerate(found)
        if c.listed is not None
        and not (c.term_key == Key.STATUS and c.left_to_planner)
        and not (c.column is not None and c.column is sort_column)
    }
    # Read only when a list in id order is to be estimated (not for a page of all users).
    in_id_order = any(found[index].in_id_order for index in listed)
    top_id = _top_id(db) if in_id_order else 0
    # One index at most for SQLite to choose besides the sort's: the status's if there is
    # one (each sort has an index after the status), else the team's.
    planned = [c for c in found if c.left_to_planner]
    planned = planned[:1] if len(planned) < 2 else [c for c in planned if c.term_key == Key.STATUS]
    if not planned and sort_column is not None:
        planned = [c for c in found if c.ordered_with is sort_column][:1]
    # A time's range that is the only term beside a single status: listed along the index
    # of the status and that time (each sort's has one), which gives both.
    status = next((c for c in planned if c.term_key == Key.STATUS and c.listed is not None), None)
    others = [index for index, c in enumerate(found) if c is not status]
    narrowed: _Condition | None = None  # the status, when a time's list holds it
    held = status.listed.whereclause if status is not None and status.listed is not None else None
    if held is not None and len(others) == 1:
        [index] = others
        if index in listed and found[index].column is not None:
            listed[index] = listed[index].where(held)
            narrowed = status
    estimated, ranges = _sizes(db, found, listed, top_id, planned, sort_column)
    if estimated and min(estimated.values()) <= FEW:
        index = min(estimated, key=lambda i: estimated[i])
        chosen = found[index]
        where: list[ColumnElement[bool]] = [User.id.in_(listed[index])]
        where.extend(c.check(unindexed) for c in found if c is not chosen or not c.exact)
        return Selection(where, few=True)
    lists: list[tuple[int, _Condition, Select[Any]]] = []
    checks: list[_Condition] = []
    indexed: list[_Condition] = []
    for index, c in enumerate(found):
        if c in planned or (c.column is not None and c.column is sort_column):
            indexed.append(c)
            continue
        if index in listed and not c.cheap_check:
            ids = listed[index]
            size = estimated[index]
            if size <= _listed_most(c):
                lists.append((size, c, ids))
                continue
        checks.append(c)
    rest = [c.check(unindexed) for c in checks] + [
        c.check(unindexed) for _, c, _ in lists if not c.exact
    ]
    if not lists:
        # Should the read in sort order run long (the terms together match few users, or
        # none: "e login:never seen:>90d" by name read every user, 4 s), the shortest
        # range on a time is read along its index and sorted instead.
        ranged = _shortest_range(checks, ranges)
        if ranged is None:
            return Selection([*(c.check(_as_is) for c in indexed), *rest], few=False)
        if sort_column is not None and checks == [ranged]:
            # Its users listed by its index (with the status's: see above), found by id
            # and sorted: a read of that index with the order left out of it.
            at = next(i for i, c in enumerate(found) if c is ranged)
            where = [User.id.in_(listed[at])]
            where.extend(c.check(unindexed) for c in indexed if c is not narrowed)
            return Selection(where, few=True)
        by_range = [
            ranged.check(_as_is),
            *(c.check(unindexed) for c in (*indexed, *checks) if c is not ranged),
        ]
        if sort_column is None:
            # Not a page (a count, an export): the range is read, not every user ("example
            # created:<7d" counted exactly from 27,000 users, not estimated from a sample).
            return Selection(by_range, few=False)
        # The read in sort order gets as long as the range would about take (a common
        # combination fills its page first: "e verified:no seen:>90d" by name, 60 ms).
        return Selection(
            [*(c.check(_as_is) for c in indexed), *rest],
            few=False,
            instead=Selection(by_range, few=True),
            within=ranges[ranged] * RANGE_ROW_SECONDS,
        )
    most, _, shortest_list = min(lists, key=lambda item: item[0])
    shortest: Select[Any] | CompoundSelect[Any] = shortest_list
    if len(lists) > 1:
        # Lists that are each too long may have few users in common (a term and a role):
        # read once, and when few, the page sorts those ids without finding them again.
        shortest = _intersection(lists)
        common = db.scalars(shortest.limit(FEW + 1)).all()
        if len(common) <= FEW:
            where = [User.id.in_(_given(common)), *(c.check(unindexed) for c in indexed), *rest]
            return Selection(where, few=True)
    in_lists = [unindexed(User.id).in_(listed) for _, _, listed in lists]
    if ranged := _shortest_range(checks, ranges):
        # A page whose cost is known, where a read in sort order can only be guessed at.
        where = [ranged.check(_as_is), *in_lists]
        where.extend(c.check(unindexed) for c in (*indexed, *checks) if c is not ranged)
        where.extend(c.check(unindexed) for _, c, _ in lists if not c.exact)
        return Selection(where, few=True)
    sorted_instead = [
        User.id.in_(shortest),
        *(c.check(unindexed) for c in indexed),
        *rest,
    ]
    return Selection(
        [*in_lists, *(c.check(_as_is) for c in indexed), *rest],
        few=False,
        instead=Selection(sorted_instead, few=True) if most <= SORTED_INSTEAD_MOST else None,
    )


def _as_is(column: Any) -> Any:
    return column


def _holds_times(sort_column: Any) -> bool:
    """Whether the index of the sort by SORT_COLUMN holds the times and flags a filter
    tests (migration 0040: by name, by created time): read along it, a range of another
    time is tested on each entry, a row read only for a match, so that its page costs
    entries (some 0.2 µs each), not rows to sort."""
    return any(sort_column is column for column in (User.first_name, User.created_at))


def _top_id(db: Session, known: int = 0) -> int:
    """The largest user id (about how many users there are): KNOWN, unless 0."""
    return known or db.scalar(select(func.max(User.id))) or 0


def _sizes(
    db: Session,
    found: Sequence[_Condition],
    listed: dict[int, Select[Any]],
    top_id: int,
    planned: Sequence[_Condition],
    sort_column: Any,
) -> tuple[dict[int, int], dict[_Condition, int]]:
    """How many users each LISTED term (by its index in FOUND) lists, each counted once,
    as far as `selection` may ask (a list in id order is estimated from its first FEW: see
    _size; a term may know its size already: _Condition.size); and the times among them
    counted up to RANGE_SORTED_MOST. A term that may be checked against its list is
    counted up to LISTED_MOST (free text: TEXT_LISTED_MOST); a time, when some term will be,
    or some other term will be checked row by row, or for no sort (a count: its range may
    then be read instead: _shortest_range), up to RANGE_SORTED_MOST; a time that is the
    only term checked row by row up to RANGE_FIRST_MOST (and among the ranges only when its
    range is to be read first); any other up to FEW, which tells whether it is few.

    Each was counted up to FEW first, then again up to LISTED_MOST or RANGE_SORTED_MOST:
    a common term's list twice ("mar" with a searchable field's values: 5,001 then
    20,001), a time's range twice ("seen:<1d": 5,001 then 40,000)."""
    sizes: dict[int, int] = {}
    for index, ids in listed.items():
        c = found[index]
        if c.size is not None:
            sizes[index] = c.size
        elif c.in_id_order:
            sizes[index] = _size(db, ids, FEW, top_id)
        elif _listable(c, planned, sort_column):
            sizes[index] = _count_up_to(db, ids, _listed_most(c))
    will_list = any(
        sizes[i] <= _listed_most(found[i])
        for i in sizes
        if _listable(found[i], planned, sort_column)
    )
    # Read in sort order, the terms neither planned nor the sort's range are checked on
    # each row: two or more may match few users together, which none tells alone.
    row_checked = [
        c
        for c in found
        if c not in planned and not (c.column is not None and c.column is sort_column)
    ]
    ranges: dict[_Condition, int] = {}
    for index, ids in listed.items():
        if index in sizes:
            continue
        c = found[index]
        if c.column is not None and (will_list or len(row_checked) > 1 or sort_column is None):
            sizes[index] = ranges[c] = _count_up_to(db, ids, RANGE_SORTED_MOST)
        elif (
            c.column is not None
            and row_checked == [c]
            and (planned or not _holds_times(sort_column))
        ):
            # Its range read first when it costs fewer rows than a read in sort order would
            # pass for a page (see RANGE_FIRST_MOST); else not read at all.
            first_most = min(RANGE_FIRST_MOST, math.isqrt(PAGE_ROWS * _top_id(db, top_id)))
            sizes[index] = _count_up_to(db, ids, max(FEW, first_most))
            if sizes[index] <= first_most:
                ranges[c] = sizes[index]
        else:
            sizes[index] = _count_up_to(db, ids, FEW)
    return sizes, ranges


def _listed_most(c: _Condition) -> int:
    """The most users C may list and still be checked against its list."""
    return TEXT_LISTED_MOST if c.free_text else LISTED_MOST


def _listable(c: _Condition, planned: Sequence[_Condition], sort_column: Any) -> bool:
    """Whether `selection` may check C against its list (when it is short enough)."""
    return not (c.cheap_check or c in planned or (c.column is not None and c.column is sort_column))


def _shortest_range(
    checks: Sequence[_Condition], counted: dict[_Condition, int]
) -> _Condition | None:
    """Among CHECKS, the range on a time (not the sort's) with the fewest users, when it
    has at most RANGE_SORTED_MOST (SQLite; COUNTED by _sizes): its page may then be read
    along that time's index, each entry tested (against the terms' lists; on the entry
    itself for what the index holds) before any row is read, and sorted. That read costs
    as many index entries as the range has; a read in sort order costs what the matches'
    place along the sort makes it, which their share only guesses at: a text term's
    matches crowd where the sort puts the names and addresses that hold it ("mar seen:<1d"
    by name passes 74,000 entries where its share foretold 26,000; by its range, 39,000),
    and terms that each match many may together match none ("e login:never seen:>90d")."""
    fitting = [(counted[c], c) for c in checks if c in counted and counted[c] <= RANGE_SORTED_MOST]
    return min(fitting, key=lambda item: item[0])[1] if fitting else None


def _intersection(lists: Sequence[tuple[int, _Condition, Select[Any]]]) -> Select[Any]:
    """The ids in each of LISTS ((size, term, ids)) on SQLite: the longest read, its ids
    looked up in the others (which SQLite makes into lookup tables): half what INTERSECT
    costs, which makes a sorted table of every list ("son role:Agent": 8 against 16 ms)."""
    ordered = sorted(lists, key=lambda item: item[0])
    longest = ordered[-1][2].subquery()
    ids = longest.c[0]
    # The unary + keeps SQLite from asking a full-text index for each id (a second).
    return select(ids).where(*(unindexed(ids).in_(listed) for _, _, listed in ordered[:-1]))


def _given(ids: Sequence[int]) -> Select[Any]:
    """IDS (already found) as a subquery, in one value whatever their number, so that a
    page's statement keeps one shape."""
    return select(column("value")).select_from(
        func.json_each(literal(json.dumps(list(ids)), String))
    )


def _pg_selection(db: Session, found: list[_Condition], sort_column: Any) -> Selection:
    """How PostgreSQL should find a page of the users FOUND describes (see PG_PROBE)."""
    probed = [c for c in found if c.probed and c.listed is not None]
    if not probed:
        return Selection([c.check(_as_is) for c in found], few=False)
    top_id = _top_id(db)
    sizes = {c: _pg_size(db, c, top_id) for c in probed}
    rarest = min(probed, key=lambda c: sizes[c])
    share = math.prod(min(1.0, sizes[c] / max(top_id, 1)) for c in probed)
    planned_share = _pg_planned_share(db, [c for c in found if c not in sizes], sort_column, top_id)
    share *= planned_share
    # The rarest term's users found by its index and sorted. When it is a role or a group,
    # the free-text terms are checked on them without an index (PostgreSQL, taking a term
    # for rare, would rather read all its matches); when it is free text, the others keep
    # theirs (their lists are intersected before any row is read: "ann lee").
    by_text = rarest.walk is not None
    sorted_ = [
        (c.sorted_check or c.check)(_as_is)
        if c is rarest
        else c.row_check(_as_is)
        if c.row_check is not None
        else c.check(_as_is)
        if c.walk is None or by_text
        else c.walk(_as_is)
        for c in found
    ]
    # Read in order, a group's rows each cost a look-up of the links too; a role's
    # (without a group) is tested from the index.
    from_index = all(c.in_order_check is not None for c in found if c.sorted_check is not None)
    cost = (
        PG_READ_IN_ORDER_COST
        if by_text
        else PG_ROLE_READ_IN_ORDER_COST
        if from_index
        else PG_LINKED_READ_IN_ORDER_COST
    )
    if share == 0 or sizes[rarest] <= cost * PAGE_ROWS / share:
        return Selection(sorted_, few=True)
    # Read in sort order; should that run long (the matches lie far along the sort, or
    # the filters PostgreSQL plans for leave few of them), the rarest term's users sorted
    # (which costs as many as they are, where the read in order might not end: 2.6 s for
    # "jo verified:no team:Sales" by email).
    walk = [(c.walk or c.in_order_check or c.check)(_as_is) for c in found]
    by_role = not by_text and from_index
    per_row = PG_ROLE_SORTED_ROW_SECONDS if by_role else PG_SORTED_ROW_SECONDS
    # Sorted instead, the users are found by the bitmaps of every indexed term, not the
    # rarest's alone: no more than the planned terms leave, as PostgreSQL estimates them
    # ("e login:never seen:>90d" by name, at 10 M users: "e" matches nearly all, and the
    # read in order went on for 8 to 40 s to the end of the name index, where the users of
    # the other two, sorted, took 70 ms).
    sorted_most = min(sizes[rarest], planned_share * top_id)
    within = max(PG_READ_IN_ORDER_LEAST, sorted_most * per_row)
    return Selection(walk, few=False, instead=Selection(sorted_, few=True), within=within)


def _pg_planned_share(db: Session, found: list[_Condition], sort_column: Any, top_id: int) -> float:
    """The share of users FOUND (terms on the users' own columns) leaves to a read in
    SORT_COLUMN's order, as PostgreSQL's statistics estimate it (they know these columns'
    common values and ranges): a read in order passes the users they leave out ("mar
    seen:<1d" by name, one user in 27 seen: 73,000 rows for a page, 220 ms, where the 1,900
    users of both sorted take 30). Left out, terms that an index with the sort's column
    answers: a range on that column, a single status (each sort has an index after it), a
    team by name or last seen."""
    by_index = (User.first_name, User.last_seen_at)
    lengthening = [
        c
        for c in found
        if not (c.column is not None and c.column is sort_column)
        and not (c.left_to_planner and c.term_key == Key.STATUS)
        and not (c.left_to_planner and any(sort_column is i for i in by_index))
    ]
    if not lengthening or top_id <= 0:
        return 1.0
    statement = select(literal(1)).select_from(User).where(*(c.check(_as_is) for c in lengthening))
    compiled = statement.compile(
        dialect=db.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    plan = (
        db.connection()
        .exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled.string}", compiled.params)
        .scalar_one()
    )
    rows = float(plan[0]["Plan"]["Plan Rows"])
    return min(1.0, max(rows, 1.0) / top_id)


def timed_out(error: DBAPIError) -> bool:
    """Whether ERROR is PostgreSQL's statement_timeout stopping the statement."""
    state = getattr(error.orig, "sqlstate", None)
    return state == _QUERY_CANCELED or (state == _REGEX_CANCELED and "cancel" in str(error.orig))


def _size(
    db: Session, listed: Select[Any] | CompoundSelect[Any], most: int, top_id: int | None
) -> int:
    """How many ids LISTED has: exactly up to MOST; beyond, MOST + 1, or when TOP_ID (the
    largest user id) is given, an estimate from how far into the ids the first MOST + 1
    reach (LISTED in increasing order)."""
    counted = listed.limit(most + 1).subquery()
    count, deepest = db.execute(
        select(func.count(), func.max(counted.c[0])).select_from(counted)
    ).one()
    if count <= most or not top_id or not deepest:
        return int(count)
    return int(count * top_id // deepest)


def _count_up_to(db: Session, listed: Select[Any], most: int) -> int:
    """How many rows LISTED has, counting no further than MOST + 1.

    Its rows are counted as constants, not as the ids it selects: SQLite then reads no
    column for them (40,000 users seen in a day counted in 1.6 ms, not 2.6)."""
    rows = (
        listed
        if listed._distinct
        else listed.with_only_columns(literal_column("1"), maintain_column_froms=True)
    )
    return db.scalar(select(func.count()).select_from(rows.limit(most + 1).subquery())) or 0


def _conditions(
    db: Session,
    organization_id: int,
    query: Query,
    now: datetime,
    dialect: str,
    party: Party = Party.ADMIN,
) -> list[_Condition]:
    found: list[_Condition] = []
    times: dict[Key, list[TimeTerm]] = {}
    ranges: dict[str, list[FieldTerm]] = {}
    for term in query.terms:
        if isinstance(term, FieldTerm) and term.op != "=":
            ranges.setdefault(term.key, []).append(term)
        elif isinstance(term, FieldTerm | HasTerm):
            found.append(_field(db, organization_id, [term], party))
        elif isinstance(term, ChoiceTerm):
            found.append(_choice(db, organization_id, term, _seen_in(query, now)))
        elif isinstance(term, FlagTerm):
            found.append(_flag(term))
        elif isinstance(term, LoginNeverTerm):
            found.append(_login_never(organization_id, query, now))
        elif isinstance(term, TimeTerm):
            times.setdefault(term.key, []).append(term)
    found.extend(_time(organization_id, key, terms, now) for key, terms in times.items())
    # A field's comparisons (numbers, dates: one value a user) on one index row: an
    # interval read between its ends (seats:>=10 seats:<=20).
    found.extend(_field(db, organization_id, terms, party) for terms in ranges.values())
    searchable = _searchable(db, organization_id, party) if query.texts else []
    if searchable:
        # A term of SHORT_TERM characters or more: a shorter one starts too many values.
        found.extend(
            _or_in_fields(db, c, term, searchable, dialect) if len(term) >= SHORT_TERM else c
            for term in query.texts
            for c in _text(db, organization_id, [term], dialect)
        )
    else:
        found.extend(_text(db, organization_id, query.texts, dialect))
    return found


def _searchable(db: Session, organization_id: int, party: Party) -> list[int]:
    """The ids of the organization's text fields that free text searches (marked
    searchable, not archived, visible to PARTY)."""
    return [
        f.id
        for f in attributes.schema(db, organization_id).active
        if f.searchable and f.type == "text" and party in AUDIENCE_PARTIES[f.visibility]
    ]


def _or_in_fields(
    db: Session, condition: _Condition, term: str, field_ids: list[int], dialect: str
) -> _Condition:
    """CONDITION (free text TERM in the search text), or TERM starting the value of one of
    the searchable fields FIELD_IDS: a range of the index of values (field, text, user),
    folded to lower case as it holds them, read as cheaply as a built-in filter's.

    Bounded as the built-in text is (its trigrams counted up to TRIGRAM_PROBE first): the
    values starting with TERM are counted up to FIELD_TEXT_LISTED_MOST. At most that many,
    they are read once for the whole statement (a list each row is looked up in); more
    (a common prefix: "acme" starts 50,000 companies of a million users) would cost more
    to read than a page needs, so each row walked looks its own values up instead, one
    seek per field in (field, user, text) (ix_user_field_values_field_user). PostgreSQL
    too: it takes the range for some 100 values whatever its size, and hashed all 50,000
    of "acme" for each statement (the page's sample check 30 to 67 ms, the page as much
    again; 1 and 10 ms seeking).

    Likewise on SQLite, when users_fts lists at most FIELD_TEXT_LISTED_MOST users for
    TERM, a row is looked up in that list before its search text is read: a row walked
    along the sort's index and found in neither is never read ("initech status:active"
    at a million users: 860 rows walked, 4.5 ms, 2 with the list).

    The two lists together are free text to `selection` (checked against up to
    TEXT_LISTED_MOST users), their size estimated as the text's alone is, from how far
    into the ids its first FIELD_TEXT_LISTED_MOST reach, plus the values': counted up to
    LISTED_MOST instead, the 32,500 users of "ann" were checked row by row ("ann
    group:Trial" by name at a million users, 11,000 rows read for a page: 110 to 118 ms).
    But when the text's list is kept, a row's check reads no search text unless that
    list has the row: it costs what a custom field's does (a look-up in a list, a seek),
    so the two lists are checked against only up to LISTED_MOST users, as a field's are.
    The values are counted once, up to LISTED_MOST (whether they are few, and the lists'
    size), and the lists not counted again: "initech status:active" at a million users
    counted them up to TEXT_LISTED_MOST and built a list of the 50,000 values' users for
    each page (page p95 37 ms; 6 ms of CPU more than the walk along the status's index
    that finds one); "acme" counted 50,001 ids where its text alone is in 200,000
    addresses.
    """
    where = _values_starting(term, field_ids, dialect)
    in_fields = select(UserFieldValue.user_id).where(*where)
    in_text = condition.listed if dialect == "sqlite" else None
    size: int | None = None
    few = True
    if dialect == "sqlite" and in_text is not None:
        top_id = _top_id(db)
        text_size = _size(db, in_text, FIELD_TEXT_LISTED_MOST, top_id)
        if text_size > FIELD_TEXT_LISTED_MOST:
            in_text = None
        # Text too common to list whatever the values ("acme" is in 200,000 addresses):
        # the values counted only as far as telling whether they are few.
        most = FIELD_TEXT_LISTED_MOST if text_size > TEXT_LISTED_MOST else LISTED_MOST
        starting = _count_up_to(db, in_fields, most)
        few = starting <= FIELD_TEXT_LISTED_MOST
        # The lists' size, about; unknown when the values are past their count and the
        # two may still be few enough to list (selection counts them then).
        size = text_size + starting
        if starting > most and in_text is None and size <= TEXT_LISTED_MOST:
            size = None
    elif dialect == "postgresql":
        few = _count_up_to(db, in_fields, FIELD_TEXT_LISTED_MOST) <= FIELD_TEXT_LISTED_MOST

    def in_values(c: Callable[[Any], Any]) -> ColumnElement[bool]:
        if few:
            found: ColumnElement[bool] = c(User.id).in_(in_fields)
            return found
        if dialect == "sqlite":
            return _values_of(c(User.id), where)
        # OFFSET 0: PostgreSQL would otherwise plan the EXISTS as a hash of the whole range
        # after all (its estimate again), not a seek per row.
        sought: Select[Any] = select(literal_column("1")).where(
            *where, UserFieldValue.user_id == c(User.id)
        )
        return sought.offset(0).exists()

    def check(c: Callable[[Any], Any]) -> ColumnElement[bool]:
        held = condition.check(c)
        if in_text is not None:
            held = and_(c(User.id).in_(in_text), held)
        found: ColumnElement[bool] = or_(held, in_values(c))
        return found

    def walk(c: Callable[[Any], Any]) -> ColumnElement[bool]:
        inner = condition.walk or condition.check
        found: ColumnElement[bool] = or_(inner(c), in_values(c))
        return found

    # Both lists as they come (UNION ALL: a user in both is listed twice, which an IN
    # does not mind and a count up to a bound barely does), so that a count up to FEW or
    # LISTED_MOST reads no further: a UNION collected and sorted every id of both first.
    listed = condition.listed.union_all(in_fields) if condition.listed is not None else None
    ids = select(listed.subquery().c[0]) if listed is not None else None
    sorted_check = None
    if dialect == "postgresql" and ids is not None:
        # The users sorted when the text is rare: found by id from both lists, where the
        # OR of the text's test and the values' list has no index to answer it, and every
        # user was read ("xyz" by last seen at a million users: 540 ms).
        def sorted_check(c: Callable[[Any], Any]) -> ColumnElement[bool]:
            found: ColumnElement[bool] = c(User.id).in_(ids)
            return found

    return _Condition(
        check,
        ids,
        exact=condition.exact,
        free_text=condition.free_text and in_text is None,
        size=size,
        probed=condition.probed,
        walk=walk if condition.walk is not None else None,
        sorted_check=sorted_check,
    )


def _values_starting(
    term: str, field_ids: list[int], dialect: str, text_value: Any = UserFieldValue.text_value
) -> list[ColumnElement[bool]]:
    """The conditions on a row of user_field_values of one of FIELD_IDS whose value TERM
    starts (folded to lower case, as the index holds it), written on TEXT_VALUE."""
    folded = term.lower()[:TEXT_MAX]
    # The values starting with FOLDED sort from it to FOLDED with its last character one
    # higher (an index range on either database).
    where = [UserFieldValue.field_id.in_(field_ids), text_value >= folded]
    if ord(folded[-1]) < 0x10FFFF:
        where.append(text_value < folded[:-1] + chr(ord(folded[-1]) + 1))
        if dialect == "sqlite":
            # Exactly those: SQLite compares text byte by byte (UTF-8 keeps the order of
            # the characters), and a LIKE on each value read cost 60 ns more ("initech",
            # 20,001 values counted: 2.0 against 0.9 ms).
            return where
    # PostgreSQL's collation may sort otherwise: LIKE keeps exactly those.
    where.append(text_value.startswith(folded, autoescape=True))
    return where


def _listed(
    organization_id: int, where: Callable[[type[User]], ColumnElement[bool]]
) -> Select[Any]:
    """The ids of the organization's users that meet WHERE (written on the class it is
    given: another name for the users table, inside a statement on users)."""
    listed = _listed_users()
    return select(listed.id).where(listed.organization_id == organization_id, where(listed))


@cache
def _listed_users() -> Any:
    """The users table under another name, for a statement listing ids inside one on users:
    made once (an alias of the mapped class took some 3 ms to make, each term each page)."""
    return aliased(User, name="listed")


def _flag(term: FlagTerm) -> _Condition:
    def check(c: Callable[[Any], Any]) -> ColumnElement[bool]:
        column_ = c(User.email_verified_at if term.key == Key.VERIFIED else User.validated_at)
        found: ColumnElement[bool] = column_.is_not(None) if term.value else column_.is_(None)
        return found

    # No index: the flags split the users in large parts, never a rare one.
    return _Condition(check)


def _choice(
    db: Session,
    organization_id: int,
    term: ChoiceTerm,
    seen_in: Callable[[Any], ColumnElement[bool]] | None = None,
) -> _Condition:
    """TERM as a condition. A team is listed with SEEN_IN, the query's range of last seen
    (see _seen_in), as one interval of ix_users_team_last_seen."""
    values = term.values
    if term.key == Key.STATUS:
        return _Condition(
            lambda c: c(User.status).in_(values),
            _listed(organization_id, lambda u: u.status.in_(values)),
            cheap_check=True,
            left_to_planner=len(values) == 1,
            term_key=Key.STATUS,
        )
    if term.key == Key.CHURN:
        return _Condition(
            lambda c: c(User.churn_level).in_(values),
            _listed(organization_id, lambda u: u.churn_level.in_(values)),
            cheap_check=True,
        )
    ids = _ids_by_name(db, NAMED_MODELS[term.key], organization_id, term)
    if term.key == Key.TEAM:
        listed = _listed_users()  # a team is one organization's
        return _Condition(
            lambda c: c(User.team_id).in_(ids),
            select(listed.id).where(
                listed.team_id.in_(ids), *([seen_in(listed.last_seen_at)] if seen_in else [])
            ),
            cheap_check=True,
            left_to_planner=True,
        )
    link = UserRole if term.key == Key.ROLE else UserGroup
    link_column = UserRole.role_id if term.key == Key.ROLE else UserGroup.group_id
    gathered = select(func.array_agg(link.user_id)).where(link_column.in_(ids)).scalar_subquery()

    def linked() -> ColumnElement[bool]:
        return exists().where(link.user_id == User.id, link_column.in_(ids))

    on_row: Check | None = None
    if term.key == Key.ROLE:
        # The role ids on the row (PostgreSQL's bigint[], which its covering indexes hold):
        # a row read in sort order is tested from the index alone, and a sorted user
        # without a look-up of the links. Counts keep the links (linked), whose index
        # lists a role's users without reading every user.
        held = literal(ids, ARRAY(BigInteger()))
        on_row = lambda _c: _unestimated(  # noqa: E731
            User.role_ids.op("&&", return_type=Boolean)(held)
        )
    return _Condition(
        lambda _c: linked(),
        select(link.user_id).where(link_column.in_(ids)),
        probed=True,
        in_order=tuple(
            select(link.user_id).where(link_column == id_).order_by(link.user_id) for id_ in ids
        ),
        sorted_check=lambda _c: User.id == any_(func.coalesce(gathered, _NO_IDS)),
        row_check=on_row or (lambda _c: _unestimated(linked())),
        in_order_check=on_row,
    )


def _field(
    db: Session, organization_id: int, terms: Sequence[FieldTerm | HasTerm], party: Party
) -> _Condition:
    """Terms on one custom field (one term, or comparisons of a single-valued field, met
    by one row): the users with a row in the index of values (field, value, user) that
    matches; checked on a row by a look-up of (field, that user) in the index of the
    field's users (ix_user_field_values_field_user), its values tested there."""
    spec, where = _field_where(db, organization_id, terms, party)
    listed_ids = select(UserFieldValue.user_id).where(*where)
    if spec.type == "choices":  # a row per choice; every other type one row a user
        listed_ids = listed_ids.distinct()

    def check(c: Callable[[Any], Any]) -> ColumnElement[bool]:
        return _values_of(c(User.id), where)

    return _Condition(check, listed_ids)


def _values_of(user_id: Any, where: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    """Whether USER_ID has a row of user_field_values that meets WHERE: a constant
    selected, not `*`, so that SQLite answers it from a covering index, no row read."""
    found: ColumnElement[bool] = (
        select(literal_column("1")).where(*where, UserFieldValue.user_id == user_id).exists()
    )
    return found


def _field_where(
    db: Session, organization_id: int, terms: Sequence[FieldTerm | HasTerm], party: Party
) -> tuple[FieldSpec, list[ColumnElement[bool]]]:
    """The field TERMS are on, and the conditions on its rows of user_field_values that
    they state.

    Raises:
        InvalidInput: a field the organization does not have (or PARTY may not see), or
            a value it cannot hold.
    """
    term = terms[0]
    key = term.field if isinstance(term, HasTerm) else term.key
    schema = attributes.schema(db, organization_id)
    spec = schema.fields.get(key)
    if spec is None or spec.archived or party not in AUDIENCE_PARTIES[spec.visibility]:
        known = [f.key for f in schema.active if party in AUDIENCE_PARTIES[f.visibility]]
        listed = ", ".join(known[:30]) or "none yet"
        _refuse(
            f"Unknown filter '{term}': the filters are {KEYS_HELP}, has: and your "
            f"fields ({listed})."
        )
    where: list[ColumnElement[bool]] = [UserFieldValue.field_id == spec.id]
    where.extend(_field_values(spec, t) for t in terms if isinstance(t, FieldTerm))
    return spec, where


@dataclass(frozen=True)
class FieldIds:
    """A query's term on a custom field (TERMS: one, or the comparisons of one field) as
    the index of values lists its users, id range by id range (a count's sample reads
    only the matches of each block of ids, not every user of it); REST: the query's
    other terms.

    Or its free text (TERMS: that one TextTerm) where searchable fields may hold it: WHERE
    then finds the values it starts, and IN_TEXT the users whose search text may hold it
    (users_fts), TEXT_CHECK telling which do (None: all of them); TEXT_WALKED: IN_TEXT
    tests each user it reads (a common text on PostgreSQL), so that it is read by blocks
    of ids, never over a whole batch at once."""

    terms: tuple[FieldTerm | HasTerm | TextTerm, ...]
    where: tuple[ColumnElement[bool], ...]
    rest: Query
    in_text: Select[Any] | None = None
    text_check: ColumnElement[bool] | None = None
    text_walked: bool = False

    def between(self, low: Any, high: Any) -> Select[Any]:
        """The ids (once or more: a field of several choices) of the users between LOW
        and HIGH (included; values, or a block's ends in a statement that reads many)
        that the terms match (free text: in a field's value)."""
        return select(UserFieldValue.user_id).where(
            *self.where, UserFieldValue.user_id.between(low, high)
        )

    def held_by(self, user_id: Any) -> ColumnElement[bool]:
        """Whether USER_ID has a value the terms match: a look-up of that user's values."""
        return _values_of(user_id, self.where)

    def text_ids(self, within: Callable[[Any], ColumnElement[bool]]) -> Select[Any] | None:
        """For free text, the ids of the users whose search text may hold it (TEXT_CHECK
        tells) among those WITHIN (a condition on an id) keeps; else None."""
        if self.in_text is None:
            return None
        return self.in_text.where(within(self.in_text.selected_columns[0]))


def field_ids(
    db: Session, *, organization_id: int, query: Query, party: Party = Party.ADMIN
) -> FieldIds | None:
    """QUERY's first term on a custom field (a comparison: all of that field's) as
    FieldIds; without one, its first free text that searchable fields may hold (see
    _text_ids); None when it has neither.

    Raises:
        InvalidInput: a field the organization does not have (or PARTY may not see), or
            a value it cannot hold.
    """
    first = next((t for t in query.terms if isinstance(t, FieldTerm | HasTerm)), None)
    if first is None:
        return _text_ids(db, organization_id, query, party)
    terms: tuple[FieldTerm | HasTerm, ...] = (first,)
    if isinstance(first, FieldTerm) and first.op != "=":
        terms = tuple(
            t
            for t in query.terms
            if isinstance(t, FieldTerm) and t.key == first.key and t.op != "="
        )
    _, where = _field_where(db, organization_id, terms, party)
    if db.get_bind().dialect.name == "postgresql":
        where = [_by_user(condition) for condition in where]
    rest = Query(tuple(t for t in query.terms if t not in terms))
    return FieldIds(terms, tuple(where), rest)


# A number's or a date's value + 0: the same value, in a form no index of values leads with.
_NOT_LED = {
    UserFieldValue.__table__.c.number_value: UserFieldValue.__table__.c.number_value + 0,
    UserFieldValue.__table__.c.date_value: UserFieldValue.__table__.c.date_value + 0,
}


def _by_user(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """CONDITION on a number's or a date's value read along (field, user)
    (ix_user_field_values_field_user) on PostgreSQL: a count reads blocks of ids whose
    ends its planner cannot know, and would rather read every value of a range for each
    block (`seats:>10`, four blocks: 172 against 15 ms). Text is compared with = and read
    along (field, value, user) as it is."""
    replaced = visitors.replacement_traverse(condition, {}, _NOT_LED.get)  # type: ignore[call-overload]
    return cast(ColumnElement[bool], replaced)


def _text_ids(db: Session, organization_id: int, query: Query, party: Party) -> FieldIds | None:
    """QUERY's first free text of SHORT_TERM characters or more, when the organization
    has searchable fields (which it may start the values of: _or_in_fields), as FieldIds:
    a block's values are read along (field, user) (ix_user_field_values_field_user: the
    fields' values of the block's users, not every value the text starts, which may be
    50,000), its users whose search text may hold it listed by users_fts on SQLite, read
    by id and tested on PostgreSQL (its trigram index would list every user of a common
    text for each block). None when the text is rare (see below)."""
    term = next(
        (t for t in query.terms if isinstance(t, TextTerm) and len(t.text) >= SHORT_TERM), None
    )
    searchable = _searchable(db, organization_id, party) if term is not None else []
    if term is None or not searchable:
        return None
    dialect = db.get_bind().dialect.name
    [condition] = _text(db, organization_id, [term.text], dialect)
    assert condition.listed is not None  # noqa: S101 - an index lists every long term
    # Text that few users may hold (in their search text and in the values it starts,
    # TEXT_COUNTED_FEW at most together) is counted exactly from its lists by the common
    # count: read block by block, "xyz" read every value of the blocks' users and ran out
    # of time.
    in_values = select(UserFieldValue.user_id).where(
        *_values_starting(term.text, searchable, dialect)
    )
    few = TEXT_COUNTED_FEW
    walked = False
    if dialect == "sqlite":
        in_text = condition.listed
        text_size = _count_up_to(db, in_text, few)
        text_value = unindexed(UserFieldValue.text_value)
        text_check = None if condition.exact else condition.check(_as_is)
    else:
        text_value = UserFieldValue.text_value
        # Its users estimated from the newest (the trigram index would list all of a
        # common text's first: "acme", 200,000 addresses, 470 ms). Rare there, listed by
        # that index ("initech": 0.7 ms); else tested row by row (_unestimated: a block's
        # users read by id, some 1 µs each). Their own statement, not the count's.
        assert condition.walk is not None  # noqa: S101 - _pg_substring's
        text_size = _pg_size(db, condition, _top_id(db))
        walked = text_size > PG_TEXT_LISTED_MOST
        tested = condition.walk(_as_is) if walked else condition.check(_as_is)
        in_text = select(User.id).where(tested).correlate(None)
        text_check = None
    if text_size + _count_up_to(db, in_values, few) <= few:
        return None
    where = _values_starting(term.text, searchable, dialect, text_value)
    if dialect != "sqlite":
        # The value's range unestimated: PostgreSQL would rather read every value the
        # text starts for each block (its estimate of them some 10 rows) than the block's
        # users' values along (field, user).
        where = [UserFieldValue.field_id.in_(searchable), _unestimated(and_(*where))]
    return FieldIds(
        (term,),
        tuple(where),
        query.without(term),
        in_text=in_text,
        text_check=text_check,
        text_walked=walked,
    )


def _refuse(message: str) -> NoReturn:
    raise InvalidInput(message, code="invalid_query", fields={"q": message})


def _field_values(spec: FieldSpec, term: FieldTerm) -> ColumnElement[bool]:
    """The condition on an index row of SPEC's values that TERM states.

    Raises:
        InvalidInput: a value the field cannot hold, or a comparison it does not take.
    """
    values = term.values
    if spec.type in TEXTUAL:
        if term.op != "=":
            _refuse(f"'{term}': {spec.key} is {spec.type}, compared with = only ({spec.key}:x).")
        folded = []
        for value in values:
            if len(value) > TEXT_MAX:
                _refuse(f"'{term}': a {spec.key} is at most {TEXT_MAX} characters.")
            if spec.type in ("choice", "choices") and value.lower() not in {
                o.lower() for o in spec.options
            }:
                shown = ", ".join(spec.options[:20])
                _refuse(f"'{value}' is not a choice of {spec.key}: use {shown}.")
            folded.append(value.lower())
        return UserFieldValue.text_value.in_(folded)
    if spec.type == "boolean":
        if term.op != "=" or len(values) != 1 or values[0].lower() not in (*YES, *NO):
            _refuse(f"'{term}': {spec.key} is yes or no.")
        return UserFieldValue.number_value == (1.0 if values[0].lower() in YES else 0.0)
    column_: Any
    parsed: list[Any] = []
    if spec.type == "number":
        column_ = UserFieldValue.number_value
        for value in values:
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                _refuse(f"'{value}' in '{term}' is not a number: {spec.key} is a number.")
            parsed.append(number)
    else:
        column_ = UserFieldValue.date_value
        for value in values:
            try:
                parsed.append(parse_date(value))
            except ValueProblem:
                _refuse(
                    f"'{value}' in '{term}' is not a date like 2025-01-31: {spec.key} is a date."
                )
    if term.op == "=":
        found: ColumnElement[bool] = column_.in_(parsed)
        return found
    compared: ColumnElement[bool] = {
        ">": column_ > parsed[0],
        ">=": column_ >= parsed[0],
        "<": column_ < parsed[0],
        "<=": column_ <= parsed[0],
    }[term.op]
    return compared


def _ids_by_name(
    db: Session, model: type[Role | Team | Group], organization_id: int, term: ChoiceTerm
) -> list[int]:
    wanted = {v.casefold(): v for v in term.values}
    rows = db.execute(
        select(model.id, model.name).where(
            model.organization_id == organization_id,
            func.lower(model.name).in_([v.lower() for v in term.values]),
        )
    ).all()
    known = {name.casefold() for _, name in rows}
    missing = [original for folded, original in wanted.items() if folded not in known]
    if missing:
        names = sorted(
            db.scalars(select(model.name).where(model.organization_id == organization_id))
        )
        listed = ", ".join(names[:20]) or "none yet"
        message = f"No {term.key} '{missing[0]}' in '{term}': the {term.key}s are {listed}."
        raise InvalidInput(message, code="invalid_query", fields={"q": message})
    return [row_id for row_id, _ in rows]


def valued(query: Query, column: Any) -> bool:
    """Whether every user QUERY selects has a value in COLUMN: a time that one of its terms
    bounds (seen or created). A list sorted by it then has no part of NULLs to read ("e
    login:never seen:>90d" by -seen read 186,000 users never seen, at a million, to find
    none of them in the range)."""
    return any(
        isinstance(t, TimeTerm)
        and (User.last_seen_at if t.key == Key.SEEN else User.created_at) is column
        for t in query.terms
    )


def _login_never(organization_id: int, query: Query, now: datetime) -> _Condition:
    """login:never: checked on a user's own column. Listed by ix_users_org_last_login,
    which holds the last seen time after the sign-in's (0038), with QUERY's range of last
    seen (_seen_in): "a login:never seen:>30d" lists none, from 186,000 and 700,000 users
    at a million, where a read in sort order passed every user (4 s)."""
    seen_in = _seen_in(query, now)

    def listed(u: Any) -> ColumnElement[bool]:
        never: ColumnElement[bool] = u.last_login_at.is_(None)
        return and_(never, seen_in(u.last_seen_at)) if seen_in else never

    return _Condition(
        lambda c: c(User.last_login_at).is_(None),
        _listed(organization_id, listed),
        cheap_check=True,
        # ix_users_org_last_login gives the order by last seen after the sign-in (0038).
        ordered_with=User.last_seen_at,
    )


def _seen_in(query: Query, now: datetime) -> Callable[[Any], ColumnElement[bool]] | None:
    """QUERY's terms on the last seen time as one interval (None: it has none), for the
    list of another term whose index holds that time after its own value (a team's, the
    sign-in's): each term is checked anyway, so a term's list may leave out users another
    term does, and the two together may list few where each lists many ("team:Billing
    seen:>90d": 4,200 of 100,000 and 42,000 users at a million)."""
    seen = [t for t in query.terms if isinstance(t, TimeTerm) and t.key == Key.SEEN]
    return _interval(seen, now) if seen else None


def _interval(terms: Sequence[TimeTerm], now: datetime) -> Callable[[Any], ColumnElement[bool]]:
    """The terms on one time as one interval: a condition on the column it is given."""
    lowers = [low for low, _ in (t.bounds(now) for t in terms) if low is not None]
    uppers = [high for _, high in (t.bounds(now) for t in terms) if high is not None]

    def between(column_: Any) -> ColumnElement[bool]:
        parts = [column_ >= max(lowers)] if lowers else []
        parts += [column_ < min(uppers)] if uppers else []
        return and_(*parts) if parts else column_.is_not(None)

    return between


def _time(organization_id: int, key: Key, terms: list[TimeTerm], now: datetime) -> _Condition:
    """The terms on one time (seen or created) as one interval, so that an index reads
    only the rows between its ends."""
    between = _interval(terms, now)

    def column_of(user: Any) -> Any:
        return user.last_seen_at if key == Key.SEEN else user.created_at

    return _Condition(
        lambda c: between(c(column_of(User))),
        _listed(organization_id, lambda u: between(column_of(u))),
        cheap_check=True,
        column=column_of(User),
    )


def words(text: str) -> list[str]:
    """The words of TEXT as the word indexes see them: runs of letters and digits."""
    return WORD.findall(text.lower())


def _text(
    db: Session, organization_id: int, texts: Sequence[str], dialect: str
) -> list[_Condition]:
    found: list[_Condition] = []
    prefixes: list[str] = []
    long_terms = [t for t in texts if len(t) >= SHORT_TERM]
    if dialect == "sqlite":
        rare = [t for term in long_terms for t in _rare_trigrams(db, term)]
        if len(long_terms) == 1:
            found.append(_substring(long_terms[0], rare))
        elif long_terms:  # the index finds rows with all of them at once, faster than each
            found.append(_substrings(long_terms, rare))
    else:
        found.extend(_pg_substring(organization_id, term) for term in long_terms)
    for term in texts:
        if len(term) >= SHORT_TERM:
            continue
        if term_words := words(term):
            prefixes.extend(term_words)
        else:  # punctuation only: no index knows it, so read the rows
            found.append(_Condition(_like_check(term)))
    unique = list(dict.fromkeys(prefixes))
    if dialect == "sqlite":
        if len(unique) == 1:
            found.append(_word_prefix(unique[0]))
        elif unique:
            found.append(_word_prefixes(unique))
    elif unique:
        found.append(_pg_word_prefixes(organization_id, unique))
    return found


def _pg_substring(organization_id: int, term: str) -> _Condition:
    """TERM anywhere in the search text: listed by the trigram index (PostgreSQL).

    A term with an @ is looked up in that index by its part up to the @ alone (when of
    SHORT_TERM characters or more), the whole term checked on the rows found: the index
    reads every trigram's list, and a domain's ("exa", "com") hold most users ("megan.
    hickman@example.com": 3,000 index pages, 30 ms, against 210 pages, 3 ms)."""
    local = term[: term.find("@") + 1]
    check: Check = _like_check(term)
    if len(local) > SHORT_TERM and len(local) < len(term):
        check = lambda _c: and_(_like(local), _unestimated(_like(term)))  # noqa: E731
    return _Condition(
        check,
        select(User.id).where(User.organization_id == organization_id, check(_as_is)),
        probed=True,
        walk=lambda _c: _unestimated(_like(term)),
    )


def _pg_word_prefixes(organization_id: int, prefixes: list[str]) -> _Condition:
    """Words starting with each of PREFIXES: listed by the index of the words (the words
    of the text as to_tsvector sees them once every run of other characters is a space).

    Read in sort order, a row's words (some 14 µs to make) are made only for the rows
    that hold each prefix somewhere (ILIKE, a necessary condition: some 1 µs), tested
    first inside the same expression, which no index answers (an ILIKE of one or two
    characters alone would have the trigram index read whole).
    """
    tsquery = " & ".join(f"{p}:*" for p in prefixes)

    def words_match() -> ColumnElement[bool]:
        query = func.to_tsquery(literal_column("'simple'::regconfig"), tsquery)
        found: ColumnElement[bool] = _PG_WORDS.op("@@")(query)
        return found

    def walk(_c: Callable[[Any], Any]) -> ColumnElement[bool]:
        # Case folding of ASCII letters is the same for ILIKE and to_tsvector.
        cheap = [_like(p) for p in prefixes if p.isascii()]
        return _unestimated(and_(*cheap, words_match()))

    return _Condition(
        lambda _c: words_match(),
        select(User.id).where(User.organization_id == organization_id, words_match()),
        probed=True,
        walk=walk,
    )


def _pg_size(db: Session, condition: _Condition, top_id: int) -> int:
    """How many users CONDITION lists, about (PostgreSQL). A free-text term is tested on
    the newest PG_SAMPLE users (its index would list every match of a common one before
    the first, all of "e:*"; and a long term's common trigrams cost as much), and taken
    for as common as it is among them (one more, when it is rare there); a role or a
    group is counted on the index of its links."""
    if condition.walk is not None:
        newest = User.id > top_id - PG_SAMPLE
        hits = db.scalar(select(func.count()).where(newest, condition.walk(_as_is))) or 0
        return max(hits, 1) * top_id // PG_SAMPLE
    # Each id's links in id order: without the order, PostgreSQL reads a common role's
    # links in the table's order, and how far their ids reach tells nothing ("role:Member",
    # 985,000 users, was taken for 1,300 and its users sorted: 800 ms).
    return sum(_size(db, listed, PG_PROBE, top_id) for listed in condition.in_order)


def _unestimated(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """CONDITION as an expression no index answers, whose share of rows PostgreSQL takes
    for a half (its default for a boolean expression it has no statistics for): a page
    is then read along the sort's index (or a filter's), testing each row. AND inside it
    is evaluated in the order written, and stops at the first false."""
    found: ColumnElement[bool] = case((condition, true()))
    return found


def _like_check(text: str) -> Check:
    return lambda _c: _like(text)


def _word_prefix(prefix: str) -> _Condition:
    """A word starting with PREFIX: listed by the prefix index of users_words."""
    return _Condition(
        lambda _c: func.ud_word_prefix(User.search_text, prefix),
        select(_WORDS.c.rowid).where(_WORDS.c.users_words.op("MATCH")(f"{_fts_string(prefix)}*")),
        in_id_order=True,
        free_text=True,
    )


def _word_prefixes(prefixes: list[str]) -> _Condition:
    """Words starting with each of PREFIXES, listed together by users_words."""
    match = " AND ".join(f"{_fts_string(p)}*" for p in prefixes)
    return _Condition(
        lambda _c: and_(*(func.ud_word_prefix(User.search_text, p) for p in prefixes)),
        select(_WORDS.c.rowid).where(_WORDS.c.users_words.op("MATCH")(match)),
        in_id_order=True,
        free_text=True,
    )


def _rare_trigrams(db: Session, term: str) -> list[str]:
    """The trigrams of TERM to ask the index for: the rarest RARE_TRIGRAMS of them.

    The index is asked for rows holding these, not for TERM as a phrase: a phrase reads
    the positions of every one of its trigrams, and in an email address most are in
    every row ("exa", "com"), which costs a second at a million users. The rows found
    are then checked for TERM.
    """
    trigrams = list(dict.fromkeys(term[i : i + 3] for i in range(len(term) - 2)))
    counted: list[tuple[int, int, str]] = []
    for index, trigram in enumerate(trigrams):
        count = _fts_count_up_to(db, _fts_string(trigram), TRIGRAM_PROBE)
        counted.append((count, index, trigram))
        if count == 0:  # no row has it: nor has any TERM
            break
    rarest = sorted(counted)
    # Rare trigrams narrow each other cheaply; the index finds common ones together only
    # by reading through them all, so one common trigram (the rarest) is asked alone.
    return [t for count, _, t in rarest[:RARE_TRIGRAMS] if count <= TRIGRAM_PROBE] or [rarest[0][2]]


def _substring(term: str, trigrams: list[str]) -> _Condition:
    """TERM anywhere in the search text: listed by the trigram index users_fts."""
    return _Condition(
        lambda _c: func.ud_contains(User.search_text, term.lower()),
        _trigram_rows(trigrams),
        exact=len(term) == SHORT_TERM,  # its one trigram
        in_id_order=True,
        free_text=True,
    )


def _substrings(terms: list[str], trigrams: list[str]) -> _Condition:
    """Each of TERMS anywhere in the search text, listed together by users_fts."""
    return _Condition(
        lambda _c: and_(*(func.ud_contains(User.search_text, t.lower()) for t in terms)),
        _trigram_rows(list(dict.fromkeys(trigrams))),
        exact=False,
        in_id_order=True,
        free_text=True,
    )


def _trigram_rows(trigrams: list[str]) -> Select[Any]:
    match = " AND ".join(_fts_string(t) for t in trigrams)
    return select(_FTS.c.rowid).where(_FTS.c.users_fts.op("MATCH")(match))


_FTS_COUNT = text(
    "SELECT count(*) FROM (SELECT rowid FROM users_fts WHERE users_fts MATCH :match LIMIT :most)"
)


def _fts_count_up_to(db: Session, match: str, most: int) -> int:
    return db.scalar(_FTS_COUNT, {"match": match, "most": most + 1}) or 0


def _fts_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _like(text: str) -> ColumnElement[bool]:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return User.search_text.ilike(f"%{escaped}%", escape="\\")
