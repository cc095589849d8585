"""What the file alone decides of an import row's fate: its email, an earlier row with the
same email, its names. No database: the organization's emails and names are given."""

from __future__ import annotations

from typing import Any

from userdesk.access.models import Group, Role, Team
from userdesk.access.rules import system_actor
from userdesk.imports import service as imports
from userdesk.users.rules import NAME_MAX_LENGTH

MAPPING = (("email", "email"), ("first_name", "first"), ("last_name", "last"))
NO_NAMES: dict[Any, dict[str, Any]] = {Team: {}, Group: {}, Role: {}}


def fates(text: str, existing: frozenset[str] = frozenset()) -> list[tuple[str, str] | None]:
    parsed = imports._parse("digest", text, MAPPING)
    actor = system_actor(1, "tests")
    checked = imports._check(parsed, 0)
    return [
        imports._fate(actor, None, row, check, NO_NAMES, set(existing))
        for row, check in zip(parsed.rows, checked, strict=True)
    ]


def test_a_name_is_refused_past_its_length_whatever_the_file() -> None:
    longest, over = "N" * NAME_MAX_LENGTH, "N" * (NAME_MAX_LENGTH + 1)
    text = f"email,first,last\na@x.org,{longest},Lee\nb@x.org,Bo,{over}\nc@x.org, {longest} ,Cy\n"
    assert fates(text) == [
        None,
        ("invalid", f"last name is longer than {NAME_MAX_LENGTH} characters"),
        None,  # the spaces around a name are not part of it
    ]


def test_a_name_holding_a_nul_is_refused_in_a_file_kept_before_uploads_were_checked() -> None:
    """A file with a NUL is refused at upload (rules.header); one kept before that was
    checked still has each name checked for it, while a clean file's names are not."""
    text = "email,first,last\na@x.org,A\x00nn,Lee\nb@x.org,Bo,Bay\n"
    assert not imports._parse("digest", text, MAPPING).clean
    first, second = fates(text)
    assert first is not None
    assert first[0] == "invalid"
    assert first[1].startswith("first name contains a NUL character")
    assert second is None
    assert imports._parse("digest", text.replace("\x00", ""), MAPPING).clean


def test_the_email_comes_first_then_the_organization_then_an_earlier_row() -> None:
    text = (
        "email,first,last\n"
        "not-an-email,A,B\n"
        "taken@x.org,A,B\n"
        "twice@x.org,A,B\n"
        "TWICE@x.org,A,B\n"
        "ok@x.org,A,B\n"
    )
    found = fates(text, existing=frozenset({"taken@x.org"}))
    assert found[0] is not None
    assert found[0][0] == "invalid"
    assert found[0][1].startswith("email 'not-an-email' is not an email address")
    assert found[1:] == [
        ("exists", "taken@x.org is in the organization already"),
        None,
        ("invalid", "TWICE@x.org is also on row 4"),
        None,
    ]
