"""Reading an import file: its columns, how they map to fields, and each row. Pure."""

from __future__ import annotations

import csv
import io
from typing import NamedTuple

FIELDS = ("first_name", "last_name", "email", "team", "groups", "roles")
REQUIRED = ("email",)
# Header spellings taken for each field when guessing the mapping.
ALIASES = {
    "first_name": ("first name", "firstname", "first", "given name", "prénom"),
    "last_name": ("last name", "lastname", "last", "surname", "family name", "nom"),
    "email": ("email", "e-mail", "email address", "mail"),
    "team": ("team",),
    "groups": ("groups", "group"),
    "roles": ("roles", "role"),
}
LIST_SEPARATORS = (";", "|")


class FileProblem(ValueError):
    """The file cannot be read as a CSV with a header row."""


class Row(NamedTuple):
    number: int  # as a spreadsheet shows it: the header is row 1
    values: dict[str, str]  # field -> the cell, stripped


def header(text: str) -> list[str]:
    """The file's column names.

    Raises:
        FileProblem: no header row.
    """
    try:
        first = next(csv.reader(io.StringIO(text)), None)
    except csv.Error as exc:
        raise FileProblem(f"The file is not CSV: {exc}") from None
    if not first or not any(cell.strip() for cell in first):
        raise FileProblem("The file has no header row.")
    return [cell.strip() for cell in first]


def guess_mapping(columns: list[str]) -> dict[str, str]:
    """field -> column, for the columns whose names say what they hold."""
    mapping = {}
    for field, names in ALIASES.items():
        for column in columns:
            normalized = column.strip().lower().replace("_", " ")
            if normalized in names or normalized == field.replace("_", " "):
                mapping[field] = column
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
