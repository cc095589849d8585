"""What every surface checks of its input, the same way: ids and text. Pure.

The web faces, the CLI and the services call these, so that a rule holds everywhere at once:
an id is a decimal integer from 1 to 2**63 - 1 (the databases' BIGINT: a larger one is an
overflow in the driver, not a missing row), and text holds no NUL (PostgreSQL refuses it
in text, SQLite's full-text index errs on it) and no lone surrogate (half of a UTF-16 pair:
no encoding can store it).
"""

from __future__ import annotations

import re

MAX_ID = 2**63 - 1
# How the API describes an id it takes as a string (ids are strings to clients).
ID_PATTERN = r"^[1-9][0-9]{0,18}$"
_ID = re.compile(ID_PATTERN)

_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def id_problem(value: object) -> str | None:
    """What is wrong with VALUE as an id, or None when it is a decimal 1 .. 2**63 - 1."""
    if isinstance(value, str) and _ID.match(value) and int(value) <= MAX_ID:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID:
        return None
    return f"{value!r} is not an id"


def parse_id(value: object) -> int | None:
    """VALUE as an id, or None when it is not one (see id_problem)."""
    if isinstance(value, int | str) and id_problem(value) is None:
        return int(value)
    return None


def text_problem(value: str) -> str | None:
    """What makes VALUE unfit to store as text (a NUL, a lone surrogate), or None."""
    found = _UNSAFE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\x00), which is not allowed"
    return f"contains a lone surrogate (\\u{ord(found.group()):04x}), which is not text"
