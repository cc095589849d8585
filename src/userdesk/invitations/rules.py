"""Reading a pasted list of people. Pure."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

from userdesk.users.rules import email_problem, normalize_email

_NAMED = re.compile(r"^\s*(?P<name>.*?)\s*<\s*(?P<email>[^<>\s]+)\s*>\s*$")


@dataclass(frozen=True)
class PastedPerson:
    first_name: str
    last_name: str
    email: str
    problem: str | None = None


def _split_name(name: str) -> tuple[str, str]:
    name = name.strip().strip('"').strip()
    if not name:
        return "", ""
    first, _, last = name.partition(" ")
    return first, last.strip()


def parse_people(text: str) -> list[PastedPerson]:
    """One person per non-empty line: `First Last <email>`, `email`, or CSV
    `first,last,email` (any column order when a header row names them).

    Each person carries the problem of its line, if any (a bad email, a repeat).
    """
    lines = [line for line in text.splitlines() if line.strip()]
    people: list[PastedPerson] = []
    header: list[str] | None = None
    for index, line in enumerate(lines):
        if index == 0 and "," in line and "@" not in line:
            header = [cell.strip().lower().replace(" ", "_") for cell in next(csv.reader([line]))]
            continue
        people.append(_person(line, header))
    seen: set[str] = set()
    checked = []
    for person in people:
        key = normalize_email(person.email)
        if person.problem is None and key in seen:
            person = PastedPerson(
                person.first_name, person.last_name, person.email, "is listed twice"
            )
        seen.add(key)
        checked.append(person)
    return checked


def _person(line: str, header: list[str] | None) -> PastedPerson:
    if match := _NAMED.match(line):
        first, last = _split_name(match.group("name"))
        email = match.group("email")
    elif "," in line or "\t" in line:
        cells = [
            c.strip() for c in next(csv.reader([line], delimiter="\t" if "\t" in line else ","))
        ]
        if header:
            row = dict(zip(header, cells, strict=False))
            first, last = row.get("first_name", ""), row.get("last_name", "")
            email = row.get("email", "")
        else:
            email = next((c for c in cells if "@" in c), "")
            names = [c for c in cells if c != email]
            first, last = [*names, "", ""][:2]
    else:
        first, last, email = "", "", line.strip()
    problem = email_problem(email)
    return PastedPerson(first, last, email.strip(), problem)
