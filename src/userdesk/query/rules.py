"""The query language, parsed and printed. Pure: no database, no clock.

    anna status:active team:"Support EU" verified:no login:never churn:high seen:>30d

A query is a sequence of terms combined with AND. A term is free text (a word, or a
"quoted phrase") or a filter `key:value`. Filters that name things take several values
separated by commas, any of which may match (`status:active,disabled`); values with
spaces or commas are quoted (`team:"Support EU"`). Times take an operator and an age or a
date: `seen:>30d` (last seen more than 30 days ago), `seen:<7d` (within the last 7 days),
`created:>=2026-01-01`.

Any other key is one of the organization's own fields (users.fields), resolved by the
builder against its schema: `plan:pro,team` (any of), `seats:>10`, `since:<2025-01-01`,
`country:"New Zealand"`; `has:company` is whoever has a value for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from userdesk.churn.rules import LEVELS
from userdesk.users.rules import UserStatus
from userdesk.validation import text_problem

CHURN_LEVELS = LEVELS
YES = ("yes", "true")
NO = ("no", "false")


class Key(StrEnum):
    STATUS = "status"
    ROLE = "role"
    TEAM = "team"
    GROUP = "group"
    VERIFIED = "verified"
    VALIDATED = "validated"
    LOGIN = "login"
    CHURN = "churn"
    SEEN = "seen"
    CREATED = "created"


# Not a custom field's key: the built-in keys, and words kept for the language to grow.
RESERVED_KEYS = frozenset(
    {k.value for k in Key}
    | {"has", "is", "not", "no", "or", "and", "in", "id", "q", "sort", "email", "name"}
    | {"first_name", "last_name", "first", "last", "created_via", "external_id", "sort_by"}
    | {"attributes", "password", "search", "text", "user", "users", "org", "organization"}
    | {"verified_at", "seen_at", "created_at", "updated", "updated_at", "lang", "tag", "tags"}
)
FIELD_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
FIELD_OPS = (">=", "<=", ">", "<")
CHOICE_KEYS = (Key.STATUS, Key.ROLE, Key.TEAM, Key.GROUP, Key.CHURN)
FLAG_KEYS = (Key.VERIFIED, Key.VALIDATED)
TIME_KEYS = (Key.SEEN, Key.CREATED)
KEYS_HELP = ", ".join(k.value for k in Key)


class QueryError(ValueError):
    """A term that is not part of the language; the message names it and says what is."""

    def __init__(self, term: str, message: str) -> None:
        super().__init__(message)
        self.term = term
        self.message = message


@dataclass(frozen=True)
class TextTerm:
    """Matches people whose "first last email" contains TEXT, ignoring case."""

    text: str

    def __str__(self) -> str:
        return _quote(self.text, force=":" in self.text)


@dataclass(frozen=True)
class ChoiceTerm:
    """status / role / team / group / churn: any of VALUES."""

    key: Key
    values: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.key}:{','.join(_quote(v) for v in self.values)}"


@dataclass(frozen=True)
class FlagTerm:
    """verified / validated: yes or no."""

    key: Key
    value: bool

    def __str__(self) -> str:
        return f"{self.key}:{'yes' if self.value else 'no'}"


@dataclass(frozen=True)
class LoginNeverTerm:
    """login:never, people who have never signed in ("Without Login")."""

    def __str__(self) -> str:
        return "login:never"


@dataclass(frozen=True)
class TimeTerm:
    """seen / created compared with an age (`>30d`: longer ago) or a date (`>2026-01-01`)."""

    key: Key
    op: str  # one of > >= < <=
    age: timedelta | None = None
    day: date | None = None

    def __str__(self) -> str:
        return f"{self.key}:{self.op}{_age_text(self.age) if self.age is not None else self.day}"

    def bounds(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """The half-open interval [lower, upper) of matching times; None is unbounded."""
        if self.day is None:
            cut = now - (self.age or timedelta())
            # An age compares how long ago: "> 30d" is before the cut, "< 7d" after it.
            return (None, cut) if self.op in (">", ">=") else (cut, None)
        start = datetime(self.day.year, self.day.month, self.day.day, tzinfo=now.tzinfo)
        end = start + timedelta(days=1)
        return {
            ">": (end, None),
            ">=": (start, None),
            "<": (None, start),
            "<=": (None, end),
        }[self.op]


@dataclass(frozen=True)
class FieldTerm:
    """A custom field compared with VALUES: "=" any of them, or one of > >= < <= with one.
    The builder checks the key and the values against the organization's schema."""

    key: str
    op: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        if self.op == "=":
            return f"{self.key}:{','.join(_quote(v) for v in self.values)}"
        return f"{self.key}:{self.op}{_quote(self.values[0])}"


@dataclass(frozen=True)
class HasTerm:
    """has:KEY, whoever has a value for the custom field KEY."""

    field: str

    def __str__(self) -> str:
        return f"has:{self.field}"


Term = TextTerm | ChoiceTerm | FlagTerm | LoginNeverTerm | TimeTerm | FieldTerm | HasTerm


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...] = ()

    def __str__(self) -> str:
        return " ".join(str(t) for t in self.terms)

    @property
    def texts(self) -> list[str]:
        return [t.text for t in self.terms if isinstance(t, TextTerm)]

    def of_key(self, key: Key) -> list[Term]:
        return [t for t in self.terms if getattr(t, "key", None) == key or _is_login(t, key)]

    def without_key(self, key: Key) -> Query:
        return Query(tuple(t for t in self.terms if t not in self.of_key(key)))

    def without(self, term: Term) -> Query:
        return Query(tuple(t for t in self.terms if t != term))

    def with_term(self, term: Term) -> Query:
        """This query with TERM added (replacing a flag or `login` term of the same key)."""
        key = getattr(term, "key", Key.LOGIN if isinstance(term, LoginNeverTerm) else None)
        base = self.without_key(key) if key in (*FLAG_KEYS, Key.LOGIN) else self
        if term in base.terms:
            return base
        return replace(base, terms=(*base.terms, term))


def _is_login(term: Term, key: Key) -> bool:
    return key == Key.LOGIN and isinstance(term, LoginNeverTerm)


_AGE = re.compile(r"^(\d{1,5})([hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_KEY = re.compile(r"([A-Za-z_]+):")
_BARE_SPECIALS = frozenset('",')


def _age_text(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    if seconds % (7 * 86400) == 0:
        return f"{seconds // (7 * 86400)}w"
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    return f"{seconds // 3600}h"


def _quote(value: str, *, force: bool = False) -> str:
    if value and not force and not any(c in _BARE_SPECIALS or c.isspace() for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _read_quoted(source: str, start: int) -> tuple[str, int]:
    """The text of the quoted string opening at START, and the index just after it."""
    out = []
    i = start + 1
    while i < len(source):
        char = source[i]
        if char == "\\" and i + 1 < len(source):
            out.append(source[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise QueryError(source[start:], f"The quote in {source[start:]!r} is never closed.")


def _tokens(source: str) -> Iterator[tuple[str, str | None, list[str]]]:
    """(raw text, key or None, values) for each term of SOURCE."""
    i = 0
    n = len(source)
    while i < n:
        if source[i].isspace():
            i += 1
            continue
        start = i
        match = _KEY.match(source, i)
        key = None
        if match:
            key = match.group(1)
            i = match.end()
        values: list[str] = []
        current: list[str] = []
        while i < n and not source[i].isspace():
            char = source[i]
            if char == '"':
                text, i = _read_quoted(source, i)
                current.append(text)
            elif char == "," and key is not None:
                values.append("".join(current))
                current = []
                i += 1
            else:
                current.append(char)
                i += 1
        values.append("".join(current))
        yield source[start:i], key, values


def parse(source: str) -> Query:
    """The query SOURCE says.

    Raises:
        QueryError: a term is malformed, names an unknown filter, or has a value the
            filter does not take; the error names the term and what is allowed. A NUL
            or a lone surrogate is no text to search for (SQLite's full-text index errs
            on a NUL, PostgreSQL refuses it).
    """
    if problem := text_problem(source):
        raise QueryError(ascii(source)[1:-1], f"The query {problem}.")
    terms: list[Term] = []
    for raw, key_text, values in _tokens(source):
        if key_text is None:
            text = values[0].strip()
            if text and TextTerm(text) not in terms:
                terms.append(TextTerm(text))
            continue
        term = _filter(raw, key_text.lower(), values)
        if term not in terms:
            terms.append(term)
    return Query(tuple(terms))


def _filter(raw: str, key_text: str, values: list[str]) -> Term:
    values = [v.strip() for v in values]
    try:
        key = Key(key_text)
    except ValueError:
        return _custom(raw, key_text, values)
    if any(not v for v in values):
        raise QueryError(raw, f"'{raw}' needs a value after '{key}:'.")
    if key in CHOICE_KEYS:
        return _choice(raw, key, values)
    if len(values) > 1:
        raise QueryError(raw, f"'{raw}': {key} takes one value.")
    value = values[0]
    if key in FLAG_KEYS:
        if value.lower() in YES:
            return FlagTerm(key, True)
        if value.lower() in NO:
            return FlagTerm(key, False)
        raise QueryError(raw, f"'{raw}': {key} is yes or no.")
    if key == Key.LOGIN:
        if value.lower() == "never":
            return LoginNeverTerm()
        raise QueryError(raw, f"'{raw}': login takes 'never' (people who never signed in).")
    return _time(raw, key, value)


def _choice(raw: str, key: Key, values: list[str]) -> ChoiceTerm:
    if key == Key.STATUS:
        allowed = [s.value for s in UserStatus]
        values = [v.lower() for v in values]
    elif key == Key.CHURN:
        allowed = list(CHURN_LEVELS)
        values = [v.lower() for v in values]
    else:
        allowed = []
    for value in values:
        if allowed and value not in allowed:
            raise QueryError(raw, f"'{value}' is not a {key}: use {', '.join(allowed)}.")
    unique = tuple(dict.fromkeys(values))
    return ChoiceTerm(key, unique)


def _time(raw: str, key: Key, value: str) -> TimeTerm:
    op = next((o for o in (">=", "<=", ">", "<") if value.startswith(o)), None)
    help_text = (
        f"'{raw}': {key} takes >, >=, < or <= and an age (30d, 12h, 2w) or a date "
        f"(2026-01-31), as in {key}:>30d."
    )
    if op is None:
        raise QueryError(raw, help_text)
    rest = value[len(op) :].lower()
    if match := _AGE.match(rest):
        return TimeTerm(key, op, age=int(match.group(1)) * _UNITS[match.group(2)])
    try:
        return TimeTerm(key, op, day=date.fromisoformat(rest))
    except ValueError:
        raise QueryError(raw, help_text) from None


def _custom(raw: str, key_text: str, values: list[str]) -> Term:
    """A term on a custom field (or has:), its key and values not yet checked against
    the schema (the builder does)."""
    if (key_text in RESERVED_KEYS and key_text != "has") or not FIELD_KEY.match(key_text):
        raise QueryError(
            raw, f"Unknown filter '{raw}': the filters are {KEYS_HELP}, has: and your fields."
        )
    if any(not v for v in values):
        raise QueryError(raw, f"'{raw}' needs a value after '{key_text}:'.")
    if key_text == "has":
        field = values[0].lower()
        if len(values) > 1 or not FIELD_KEY.match(field):
            raise QueryError(raw, f"'{raw}': has takes one field's key, as in has:company.")
        return HasTerm(field)
    op = next((o for o in FIELD_OPS if values[0].startswith(o)), None)
    if op is None:
        return FieldTerm(key_text, "=", tuple(dict.fromkeys(values)))
    value = values[0][len(op) :].strip()
    if len(values) > 1 or not value:
        raise QueryError(raw, f"'{raw}': {op} takes one value, as in {key_text}:{op}10.")
    return FieldTerm(key_text, op, (value,))
