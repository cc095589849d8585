"""Types for the API's parameters and bodies that say in the document what the API takes.

Pydantic's lax mode reads a number as a moment (`0` is 1970-01-01) and `0` or `"no"` as a
boolean; the API takes a date or a moment only as ISO 8601 text, and a boolean only as
`true` or `false`, as its document says.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import BeforeValidator, Strict, StringConstraints

from userdesk.access.admin import NAME_MAX

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_date(value: object) -> object:
    if isinstance(value, date) or (isinstance(value, str) and _DATE.fullmatch(value)):
        return value
    raise ValueError("is not a date like 2026-01-31")


def _iso_moment(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _MOMENT.match(value)):
        return value
    raise ValueError("is not a moment like 2026-01-31T09:30:00Z")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_moment)]
StrictBool = Annotated[bool, Strict()]

# A name: not blank (the services strip it), no NUL, at most NAME_MAX characters.
NAME_PATTERN = "^[^\\x00]*[^\\s\\x00][^\\x00]*$"
NameText = Annotated[
    str, StringConstraints(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)
]
