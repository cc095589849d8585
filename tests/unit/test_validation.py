"""The shared input rules: ids, text, email addresses and import files (issue 16, break 5)."""

from __future__ import annotations

import pytest
from email_validator import validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from userdesk.imports import rules as import_rules
from userdesk.users import rules as user_rules
from userdesk.validation import MAX_ID, id_problem, parse_id, text_problem


@pytest.mark.parametrize("value", ["1", "42", str(MAX_ID), 1, MAX_ID])
def test_ids_from_1_to_2_63_minus_1_are_ids(value: object) -> None:
    """Decimal ids within the databases' BIGINT are taken, as strings or integers."""
    assert id_problem(value) is None
    assert parse_id(value) == int(value)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "value",
    ["0", "-1", str(MAX_ID + 1), "9" * 30, "01", "+1", " 1", "1 ", "1_000", "²", "\u0661", "", "x",
     0, -1, MAX_ID + 1, True, 1.0, None],
)  # fmt: skip
def test_anything_else_is_not_an_id(value: object) -> None:
    """Zero, negatives, overflows, other digits and other spellings are refused, quoted."""
    assert id_problem(value) == f"{value!r} is not an id"
    assert parse_id(value) is None


@pytest.mark.parametrize("value", ["", "Ann", "Zoë", "李", "\U0001f600", "tab\there", "a\nb"])
def test_text_without_nul_or_lone_surrogate_is_fine(value: str) -> None:
    """Whole characters of any plane (an emoji is a surrogate pair in UTF-16) are text."""
    assert text_problem(value) is None


@pytest.mark.parametrize(
    ("value", "word"),
    [("\x00", "NUL"), ("An\x00n", "NUL"), ("\udc00", "surrogate"), ("x\ud83d", "surrogate")],
)
def test_a_nul_or_a_lone_surrogate_is_named(value: str, word: str) -> None:
    """The problem says which of the two it is."""
    problem = text_problem(value)
    assert problem is not None
    assert word in problem


@pytest.mark.parametrize(
    "email",
    ["a@b.\x00c", "x@acme.test,X", "<script>@x.test", "x@-acme.test", "x@acme..test",
     "x@acme.test\udc00", "Ann <ann@example.com>", "a b@example.com", "a@localhost",
     "a@x.local", "a@[127.0.0.1]", '"a b"@example.com', ".a@example.com", "a.@example.com",
     "a@example", "a@ab--cd.example", "@example.com", "a@"],
)  # fmt: skip
def test_invalid_addresses_are_refused(email: str) -> None:
    """email-validator decides; the message quotes the address and says why."""
    problem = user_rules.email_problem(email)
    assert problem is not None
    assert problem.startswith(f"{email.strip()!r} is not an email address")


@pytest.mark.parametrize(
    "email",
    ["ann@example.com", "ann+news@example.com", "Ann.Lee@Example.COM", "o'brien@example.ie",
     "jose@bücher.example", "zoë@example.com", "a@sub.acme.test", "admin@demo.example",
     "a_b-c@x-y.example.org", "ann@xn--bcher-kva.example"],
)  # fmt: skip
def test_real_addresses_are_taken(email: str) -> None:
    """Plus addressing, apostrophes, IDN domains and the tests' .test domains are fine."""
    assert user_rules.email_problem(email) is None


@settings(max_examples=300, deadline=None)
@given(st.from_regex(user_rules._PLAIN_EMAIL, fullmatch=True))
def test_the_quick_shape_accepts_only_what_email_validator_accepts(email: str) -> None:
    """The shortcut that spares the library's time never lets through what it refuses."""
    if user_rules._is_plain_email(email) and len(email) <= user_rules.EMAIL_MAX_LENGTH:
        validate_email(email, check_deliverability=False, test_environment=True)


def test_an_import_header_with_a_nul_is_refused_naming_the_column() -> None:
    """A column's own name is a cell like the others: row 1."""
    with pytest.raises(import_rules.FileProblem, match=r"Row 1, column 2 \('na\\x00me'\)"):
        import_rules.header("email,na\x00me\nann@example.com,Ann\n")


def test_an_import_of_too_many_rows_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file of many tiny rows is bounded before it is parsed into memory."""
    monkeypatch.setattr(import_rules, "MAX_ROWS", 3)
    text = "email\n" + "".join(f"u{i}@example.com\n" for i in range(3))
    assert import_rules.header(text) == ["email"]
    with pytest.raises(import_rules.FileProblem, match="more than 3 rows"):
        import_rules.header(text + "u9@example.com\n")


def test_an_import_cell_at_the_limit_is_taken_and_one_over_is_named() -> None:
    """MAX_CELL characters are fine; one more names the row and the column."""
    fits = "x" * import_rules.MAX_CELL
    assert import_rules.header(f"email,notes\nann@example.com,{fits}\n") == ["email", "notes"]
    with pytest.raises(import_rules.FileProblem, match=r"Row 2, column 2 \('notes'\)"):
        import_rules.header(f"email,notes\nann@example.com,{fits}x\n")


def test_an_import_row_of_too_many_cells_is_named() -> None:
    """A row wider than MAX_COLUMNS is refused, naming it."""
    wide = "," * import_rules.MAX_COLUMNS
    with pytest.raises(import_rules.FileProblem, match="Row 3 has"):
        import_rules.header(f"email\nann@example.com\nbo@example.com{wide}\n")
