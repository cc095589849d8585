"""The one filter builder: a parsed query becomes SQL conditions on the users table.

Free text is matched by an index on each database. Terms of three characters or more
match any substring of "first last email" (SQLite: the FTS5 trigram table users_fts;
PostgreSQL: a pg_trgm GIN index). Shorter terms match the start of a word (SQLite: the
FTS5 table users_words with prefix indexes; PostgreSQL: a GIN index on the words), since
a substring of one or two characters can only be found by reading every row.

On SQLite a term that matches many rows is instead checked row by row (ud_contains,
ud_word_prefix: see userdesk.db.engine), with the same meaning as the index.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    TableClause,
    and_,
    column,
    exists,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy.orm import Session

from userdesk.access.models import Group, Role, Team
from userdesk.errors import InvalidInput
from userdesk.query.rules import (
    ChoiceTerm,
    FlagTerm,
    Key,
    LoginNeverTerm,
    Query,
    QueryError,
    TimeTerm,
    parse,
)
from userdesk.users.models import User, UserGroup, UserRole

NAMED_MODELS: dict[Key, type[Role | Team | Group]] = {
    Key.ROLE: Role,
    Key.TEAM: Team,
    Key.GROUP: Group,
}
SHORT_TERM = 3  # terms shorter than this match word prefixes
# A term found in more rows than this is checked row by row as the list is read in its
# sort order (matches are frequent, so a page fills fast) instead of collecting every
# match from the index first (which costs as much as there are matches).
FTS_FEW = 5_000
WORD = re.compile(r"[^\W_]+")
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


def conditions(
    db: Session, *, organization_id: int, query: Query, now: datetime
) -> list[ColumnElement[bool]]:
    """SQL conditions on User selecting exactly the users QUERY describes.

    Raises:
        InvalidInput: a role, team or group name that the organization does not have.
    """
    dialect = db.get_bind().dialect.name
    found: list[ColumnElement[bool]] = []
    for term in query.terms:
        if isinstance(term, ChoiceTerm):
            found.append(_choice(db, organization_id, term))
        elif isinstance(term, FlagTerm):
            column_ = User.email_verified_at if term.key == Key.VERIFIED else User.validated_at
            found.append(column_.is_not(None) if term.value else column_.is_(None))
        elif isinstance(term, LoginNeverTerm):
            found.append(User.last_login_at.is_(None))
        elif isinstance(term, TimeTerm):
            found.append(_time(term, now))
    found.extend(_text(db, query.texts, dialect))
    return found


def _choice(db: Session, organization_id: int, term: ChoiceTerm) -> ColumnElement[bool]:
    if term.key == Key.STATUS:
        return User.status.in_(term.values)
    if term.key == Key.CHURN:
        return User.churn_level.in_(term.values)
    ids = _ids_by_name(db, NAMED_MODELS[term.key], organization_id, term)
    if term.key == Key.TEAM:
        return User.team_id.in_(ids)
    link = UserRole if term.key == Key.ROLE else UserGroup
    link_column = UserRole.role_id if term.key == Key.ROLE else UserGroup.group_id
    return exists().where(link.user_id == User.id, link_column.in_(ids))


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


def _time(term: TimeTerm, now: datetime) -> ColumnElement[bool]:
    column_ = User.last_seen_at if term.key == Key.SEEN else User.created_at
    lower, upper = term.bounds(now)
    parts = []
    if lower is not None:
        parts.append(column_ >= lower)
    if upper is not None:
        parts.append(column_ < upper)
    return and_(*parts) if parts else column_.is_not(None)


def words(text: str) -> list[str]:
    """The words of TEXT as the word indexes see them: runs of letters and digits."""
    return WORD.findall(text.lower())


def _text(db: Session, texts: Sequence[str], dialect: str) -> list[ColumnElement[bool]]:
    long_terms = [t for t in texts if len(t) >= SHORT_TERM]
    short_terms = [t for t in texts if len(t) < SHORT_TERM]
    found: list[ColumnElement[bool]] = []
    prefixes: list[str] = []
    for term in short_terms:
        term_words = words(term)
        if term_words:
            prefixes.extend(term_words)
        else:  # punctuation only: no index knows it, so read the rows
            found.append(_like(term))
    if dialect == "sqlite":
        if long_terms:
            match = " AND ".join(_fts_string(t) for t in long_terms)
            found.append(
                _sqlite_match(db, _FTS, _FTS.c.users_fts, match)
                if _few(db, _FTS, _FTS.c.users_fts, match)
                else and_(*(func.ud_contains(User.search_text, t.lower()) for t in long_terms))
            )
        if prefixes:
            unique = list(dict.fromkeys(prefixes))
            match = " AND ".join(f"{_fts_string(p)}*" for p in unique)
            found.append(
                _sqlite_match(db, _WORDS, _WORDS.c.users_words, match)
                if _few(db, _WORDS, _WORDS.c.users_words, match)
                else and_(*(func.ud_word_prefix(User.search_text, p) for p in unique))
            )
        return found
    found.extend(_like(t) for t in long_terms)
    if prefixes:
        tsquery = " & ".join(f"{p}:*" for p in dict.fromkeys(prefixes))
        found.append(
            _PG_WORDS.op("@@")(func.to_tsquery(literal_column("'simple'::regconfig"), tsquery))
        )
    return found


def _few(db: Session, fts: TableClause, column: ColumnClause[Any], match: str) -> bool:
    """Whether MATCH finds at most FTS_FEW rows (it stops counting there)."""
    found = select(fts.c.rowid).where(column.op("MATCH")(match)).limit(FTS_FEW + 1).subquery()
    return (db.scalar(select(func.count()).select_from(found)) or 0) <= FTS_FEW


def _sqlite_match(
    db: Session, fts: TableClause, column: ColumnClause[Any], match: str
) -> ColumnElement[bool]:
    return User.id.in_(select(fts.c.rowid).where(column.op("MATCH")(match)))


def _fts_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _like(text: str) -> ColumnElement[bool]:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return User.search_text.ilike(f"%{escaped}%", escape="\\")
