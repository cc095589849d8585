"""Key-set (seek) paging: opaque cursors that hold the sort key of the last row shown."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, tuple_

from userdesk.errors import InvalidInput


@dataclass(frozen=True)
class SortKey:
    """An ordering of rows that ends in a unique column, so that every row has one place."""

    name: str
    columns: Sequence[Any]  # ORM attributes, the last one unique
    descending: bool = False

    def order_by(self) -> list[Any]:
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def after(self, values: Sequence[Any]) -> ColumnElement[bool]:
        """Rows that come after the row whose key is VALUES."""
        key = tuple_(*self.columns)
        bound = tuple_(*values)
        return key < bound if self.descending else key > bound


def encode_cursor(sort: SortKey, values: Sequence[Any]) -> str:
    payload = [sort.name, [v.isoformat() if isinstance(v, datetime) else v for v in values]]
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_cursor(sort: SortKey, cursor: str) -> list[Any]:
    """The key values in CURSOR.

    Raises:
        InvalidInput: the cursor is malformed or was made for another sort.
    """
    problem = InvalidInput(
        f"Cursor '{cursor}' is not one this list gave out (or the sort has changed).",
        code="invalid_cursor",
        fields={"cursor": f"'{cursor}' is not a valid cursor for sort '{sort.name}'"},
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, values = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise problem from exc
    if name != sort.name or not isinstance(values, list) or len(values) != len(sort.columns):
        raise problem
    decoded = []
    for column, value in zip(sort.columns, values, strict=True):
        python_type = column.type.python_type
        try:
            if python_type is datetime and isinstance(value, str):
                value = datetime.fromisoformat(value)
            elif not isinstance(value, python_type):
                raise TypeError(value)
        except (TypeError, ValueError) as exc:
            raise problem from exc
        decoded.append(value)
    return decoded
