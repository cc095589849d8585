"""Custom user fields, pure: what a field's values may be, and how the index holds them.

No database. users.attributes checks and writes values with these; users.fields converts
them when a field's type changes; the query builder reads values the same way.
"""

from __future__ import annotations

import math
import re
import re._parser as re_parser  # type: ignore[import-not-found]  # refuses slow patterns
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from userdesk.users.rules import email_problem
from userdesk.validation import text_problem

TEXT_MAX = 500  # characters of a text, email or URL value (the index holds them whole)
NUMBER_MAX = 1e15  # beyond, a float no longer holds every integer
PATTERN_MAX = 200
# A text checked against a pattern is at most this long: Python's re has no timeout, so
# both the pattern and what it reads are kept short.
PATTERNED_TEXT_MAX = 200
CHOICES_MAX = 50  # values of a `choices` field per user
TEXTUAL = frozenset({"text", "choice", "choices", "email", "url"})
YES = ("yes", "true")
NO = ("no", "false")
# Repetitions a pattern may hold that have no upper bound (each multiplies how long a
# failing match may backtrack, by the length of the text: 200³ steps at most).
UNBOUNDED_MOST = 3


class ValueProblem(ValueError):
    """A value the field does not take; the message says why, in words."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of a schema as the rules need it (a snapshot of a UserField row)."""

    id: int
    key: str
    label: str
    type: str
    options: tuple[str, ...] = ()
    visibility: str = "admins"
    editable_by: str = "admins"
    validation: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    searchable: bool = False
    archived: bool = False

    @property
    def compiled(self) -> re.Pattern[str] | None:
        pattern = self.validation.get("pattern")
        return _compiled(pattern) if pattern else None


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    found = _PATTERNS.get(pattern)
    if found is None:
        found = _PATTERNS[pattern] = re.compile(pattern)
    return found


def pattern_problem(pattern: str) -> str | None:
    """Why PATTERN may not limit a text field (too long, not a regular expression, or
    shaped to backtrack for long), else None."""
    if len(pattern) > PATTERN_MAX:
        return f"is longer than {PATTERN_MAX} characters"
    if problem := text_problem(pattern):
        return problem
    try:
        re.compile(pattern)
        parsed = re_parser.parse(pattern)
    except re.error as error:
        return f"is not a regular expression ({error})"
    unbounded = _walk(parsed)
    if unbounded < 0:
        return (
            "repeats a repetition or a choice (as (a+)+ or (a|b)* do), or refers back to a "
            "group: such patterns can take a very long time to fail"
        )
    if unbounded > UNBOUNDED_MOST:
        return f"has more than {UNBOUNDED_MOST} unbounded repetitions (+, *)"
    return None


_REPEATS = {re_parser.MAX_REPEAT, re_parser.MIN_REPEAT, re_parser.POSSESSIVE_REPEAT}


def _walk(parsed: Any, *, inside_repeat: bool = False) -> int:
    """How many unbounded repetitions PARSED (re's parse tree) holds; -1 when one repeats
    another repetition or a choice, or when it refers back to a group."""
    count = 0
    for op, argument in parsed:
        if op in _REPEATS:
            low, high, sub = argument
            repeats = high > 1 and high != low  # ? and {n} do not multiply the ways
            if inside_repeat and repeats:
                return -1
            if high == re_parser.MAXREPEAT:
                count += 1
            found = _walk(sub, inside_repeat=inside_repeat or repeats)
            if found < 0:
                return -1
            count += found
        elif op is re_parser.BRANCH:
            if inside_repeat:
                return -1
            for branch in argument[1]:
                found = _walk(branch, inside_repeat=inside_repeat)
                if found < 0:
                    return -1
                count += found
        elif op is re_parser.SUBPATTERN:
            found = _walk(argument[-1], inside_repeat=inside_repeat)
            if found < 0:
                return -1
            count += found
        elif op in (re_parser.GROUPREF, re_parser.GROUPREF_EXISTS):
            return -1
        elif op in (re_parser.ASSERT, re_parser.ASSERT_NOT):
            found = _walk(argument[1], inside_repeat=inside_repeat)
            if found < 0:
                return -1
            count += found
    return count


def check_value(spec: FieldSpec, value: Any) -> Any:
    """VALUE as the field keeps it (a date as "YYYY-MM-DD", several choices deduplicated).

    Raises:
        ValueProblem: a value of another type, or out of the field's limits.
    """
    kind = spec.type
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueProblem("is not true or false")
        return value
    if kind == "number":
        return _number(spec, value)
    if kind == "date":
        return _date(spec, value)
    if kind == "choices":
        if not isinstance(value, list):
            raise ValueProblem("is not a list of choices")
        if len(value) > CHOICES_MAX:
            raise ValueProblem(f"has more than {CHOICES_MAX} choices")
        return list(dict.fromkeys(_choice(spec, v) for v in value))
    if kind == "choice":
        return _choice(spec, value)
    return _text(spec, value)


def _number(spec: FieldSpec, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueProblem("is not a number")
    if not math.isfinite(value) or abs(value) > NUMBER_MAX:
        raise ValueProblem(f"is not a number between -{NUMBER_MAX:.0e} and {NUMBER_MAX:.0e}")
    low, high = spec.validation.get("min"), spec.validation.get("max")
    if isinstance(low, int | float) and value < low:
        raise ValueProblem(f"is less than {low:g}")
    if isinstance(high, int | float) and value > high:
        raise ValueProblem(f"is more than {high:g}")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def parse_date(value: Any) -> date:
    """An ISO date (YYYY-MM-DD). Raises ValueProblem."""
    if not isinstance(value, str) or len(value) != 10:
        raise ValueProblem("is not a date like 2025-01-31")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueProblem("is not a date like 2025-01-31") from None


def _date(spec: FieldSpec, value: Any) -> str:
    day = parse_date(value)
    low, high = spec.validation.get("min"), spec.validation.get("max")
    if isinstance(low, str) and day < parse_date(low):
        raise ValueProblem(f"is before {low}")
    if isinstance(high, str) and day > parse_date(high):
        raise ValueProblem(f"is after {high}")
    return day.isoformat()


def _choice(spec: FieldSpec, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueProblem("is not one of the choices")
    for option in spec.options:  # the option as the schema spells it
        if option.lower() == value.strip().lower():
            return option
    shown = ", ".join(spec.options[:20])
    raise ValueProblem(f"is not one of the choices ({shown})")


def _text(spec: FieldSpec, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueProblem("is not text")
    if problem := text_problem(value):
        raise ValueProblem(problem)
    text = value.strip()
    if len(text) > TEXT_MAX:
        raise ValueProblem(f"is longer than {TEXT_MAX} characters")
    if spec.type == "email":
        if problem := email_problem(text):
            raise ValueProblem(problem)
        return text
    if spec.type == "url":
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in text:
            raise ValueProblem("is not an http or https URL")
        return text
    low, high = spec.validation.get("min_length"), spec.validation.get("max_length")
    if isinstance(low, int) and len(text) < low:
        raise ValueProblem(f"is shorter than {low} characters")
    if isinstance(high, int) and len(text) > high:
        raise ValueProblem(f"is longer than {high} characters")
    if (pattern := spec.compiled) is not None:
        if len(text) > PATTERNED_TEXT_MAX:
            raise ValueProblem(f"is longer than {PATTERNED_TEXT_MAX} characters")
        if pattern.fullmatch(text) is None:
            raise ValueProblem(f"does not match the pattern {pattern.pattern}")
    return text


def index_values(spec: FieldSpec, value: Any) -> list[tuple[str | None, float | None, date | None]]:
    """The rows (text, number, date) that the index of values holds for VALUE (already
    checked): text folded to lower case, as the query language compares it; a boolean as
    1 or 0; one row per choice."""
    if value is None:
        return []
    if spec.type in ("number", "boolean"):
        return [(None, float(value), None)]
    if spec.type == "date":
        return [(None, None, date.fromisoformat(value))]
    if spec.type == "choices":
        return [(str(v).lower(), None, None) for v in value]
    return [(str(value).lower(), None, None)]


def convert(value: Any, spec: FieldSpec) -> Any:
    """VALUE (of another type, or another field's options) as the field SPEC keeps it.

    Raises:
        ValueProblem: it does not convert.
    """
    if value is None:
        return None
    kind = spec.type
    if kind == "boolean" and isinstance(value, str):
        if value.strip().lower() in YES:
            return True
        if value.strip().lower() in NO:
            return False
    if kind == "number" and isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueProblem("is not a number") from None
        return check_value(spec, number)
    if kind == "number" and isinstance(value, bool):
        return int(value)
    if kind == "date" and isinstance(value, str):
        with_time = value.strip()
        try:
            return check_value(spec, datetime.fromisoformat(with_time).date().isoformat())
        except ValueError:
            pass
    if kind == "choices" and not isinstance(value, list):
        return check_value(spec, [value])
    if kind == "choice" and isinstance(value, list):
        if len(value) != 1:
            raise ValueProblem("holds several choices")
        value = value[0]
    if kind in TEXTUAL and kind != "choices" and not isinstance(value, str | list):
        value = str(value).lower() if isinstance(value, bool) else str(value)
    if kind in ("text", "email", "url") and isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return check_value(spec, value)
