"""Reading an import file: its columns, how they map to fields, and each row. Pure."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import NamedTuple

from userdesk.validation import text_problem

# The moments of a person's history a file may tell (a backfill: users.rules.history_time).
HISTORY_FIELDS = ("created_at", "last_login_at", "last_seen_at")
# A password hash from the system the users come from (auth.imported_hashes): never shown.
PASSWORD_HASH = "password_hash"  # noqa: S105 - a column's name
FIELDS = (
    "first_name",
    "last_name",
    "email",
    "team",
    "groups",
    "roles",
    *HISTORY_FIELDS,
    PASSWORD_HASH,
)
REQUIRED = ("email",)
# A custom field as a target of the mapping: "attributes.<its key>" (users.fields).
ATTRIBUTE = "attributes."
_ATTRIBUTE_TARGET = re.compile(r"^attributes\.([a-z][a-z0-9_]{0,39})$")
# Header spellings taken for each field when guessing the mapping.
ALIASES = {
    "first_name": ("first name", "firstname", "first", "given name", "prénom"),
    "last_name": ("last name", "lastname", "last", "surname", "family name", "nom"),
    "email": ("email", "e-mail", "email address", "mail"),
    "team": ("team",),
    "groups": ("groups", "group"),
    "roles": ("roles", "role"),
    "created_at": ("created", "signed up", "signed up at", "signup date", "sign up date"),
    "last_login_at": ("last login", "last sign in", "last signed in", "last login date"),
    "last_seen_at": ("last seen", "last active", "last activity", "last seen date"),
    PASSWORD_HASH: ("password hash", "passwordhash", "password digest", "hash"),
}
# What an import makes of a row with a password hash: Not Activated until the person
# accepts the emailed invitation (the default), or active at once (signs in with it).
IMPORT_STATUSES = ("pending", "active")
LIST_SEPARATORS = (";", "|")
# What a file may hold: cells, columns and rows beyond these are refused, naming the first
# one (a 20 MB file of one-character rows would otherwise take gigabytes once parsed).
MAX_CELL = 32_768  # characters
MAX_COLUMNS = 500
MAX_ROWS = 500_000
# The csv module's own limit (128 KiB a cell) would stop a read with an error naming
# neither the row nor the column: this module checks cells itself, against MAX_CELL.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


class FileProblem(ValueError):
    """The file cannot be read as a CSV with a header row."""


class Row(NamedTuple):
    number: int  # as a spreadsheet shows it: the header is row 1
    values: dict[str, str]  # field -> the cell, stripped


def header(text: str) -> list[str]:
    """The file's column names, once every row is found within bounds.

    Raises:
        FileProblem: no header row; or, naming the row (and the column): a cell over
            MAX_CELL characters or holding a NUL or a lone surrogate, a row of more than
            MAX_COLUMNS cells, more than MAX_ROWS rows, or text that is not CSV.
    """
    reader = csv.reader(io.StringIO(text))
    try:
        first = next(reader, None)
        if not first or not any(cell.strip() for cell in first):
            raise FileProblem("The file has no header row.")
        columns = [cell.strip() for cell in first]
        unsafe = text_problem(text) is not None
        _check_record(1, first, columns, unsafe=unsafe)
        for number, record in enumerate(reader, start=2):
            if number > MAX_ROWS + 1:
                raise FileProblem(f"The file has more than {MAX_ROWS:,} rows: split it.")
            _check_record(number, record, columns, unsafe=unsafe)
    except csv.Error as exc:
        raise FileProblem(f"Row {reader.line_num}: the file is not CSV: {exc}.") from None
    return columns


def _check_record(number: int, record: list[str], columns: list[str], *, unsafe: bool) -> None:
    """Raise FileProblem for the first cell of RECORD (row NUMBER) out of bounds."""
    if len(record) > MAX_COLUMNS:
        raise FileProblem(
            f"Row {number} has {len(record):,} cells: at most {MAX_COLUMNS} columns are read."
        )
    if record and max(map(len, record)) > MAX_CELL:
        index = next(i for i, cell in enumerate(record) if len(cell) > MAX_CELL)
        raise FileProblem(
            f"Row {number}, {_column(columns, index)}: the cell is longer than "
            f"{MAX_CELL:,} characters."
        )
    if unsafe:
        for index, cell in enumerate(record):
            if problem := text_problem(cell):
                raise FileProblem(f"Row {number}, {_column(columns, index)}: the cell {problem}.")


def _column(columns: list[str], index: int) -> str:
    """Column INDEX as a person finds it: its number, and its name when it has one."""
    name = columns[index] if index < len(columns) else ""
    shown = ascii(name) if text_problem(name) else repr(name)
    return f"column {index + 1} ({shown})" if name else f"column {index + 1}"


def attribute_key(target: str) -> str | None:
    """The custom field's key a mapping target names ("attributes.plan": "plan"), else None."""
    match = _ATTRIBUTE_TARGET.match(target)
    return match.group(1) if match else None


def is_target(target: str) -> bool:
    """Whether TARGET is something a column may map to: a built-in field, or a custom
    field's key under ATTRIBUTE (checked against the schema by the service)."""
    return target in FIELDS or attribute_key(target) is not None


def guess_mapping(columns: list[str], custom: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """field -> column, for the columns whose names say what they hold; CUSTOM, the custom
    fields (key, label) a column may hold, by its key or its label."""
    mapping = {}
    for field, names in ALIASES.items():
        for column in columns:
            normalized = column.strip().lower().replace("_", " ")
            if normalized in names or normalized == field.replace("_", " "):
                mapping[field] = column
                break
    for key, label in custom:  # a column the built-in fields left
        for column in columns:
            name = column.strip().lower()
            if column not in mapping.values() and name in (
                key,
                key.replace("_", " "),
                label.strip().lower(),
                f"{ATTRIBUTE}{key}",
            ):
                mapping[f"{ATTRIBUTE}{key}"] = column
                break
    return mapping


def mapping_problem(mapping: dict[str, str], columns: list[str]) -> str | None:
    for field in REQUIRED:
        if not mapping.get(field):
            return f"Choose the column that holds the {field.replace('_', ' ')}."
    unknown = [c for c in mapping.values() if c and c not in columns]
    if unknown:
        return f"There is no column '{unknown[0]}' in the file."
    return None


def rows(text: str, mapping: dict[str, str]) -> list[Row]:
    """Every data row (rows with no text in any cell are left out), its cells under the
    fields MAPPING gives them."""
    reader = csv.reader(io.StringIO(text))
    columns = [cell.strip() for cell in next(reader, [])]
    where = [(field, columns.index(column)) for field, column in mapping.items() if column]
    width = max((index for _, index in where), default=-1) + 1
    found = []
    for number, record in enumerate(reader, start=2):
        if not "".join(record).strip():
            continue
        if len(record) < width:
            record += [""] * (width - len(record))
        found.append(Row(number, {field: record[index].strip() for field, index in where}))
    return found


def split_list(cell: str) -> list[str]:
    """Names in one cell: separated by ; or |."""
    if not cell:
        return []
    for separator in LIST_SEPARATORS:
        cell = cell.replace(separator, "\n")
    return [name.strip() for name in cell.split("\n") if name.strip()]
