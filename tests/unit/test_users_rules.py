from hypothesis import given
from hypothesis import strategies as st

from userdesk.users.rules import (
    STATUS_LABELS,
    UserStatus,
    display_name,
    email_problem,
    normalize_email,
)


@given(st.text())
def test_normalizing_an_email_twice_changes_nothing(email: str) -> None:
    assert normalize_email(normalize_email(email)) == normalize_email(email)


def test_emails_compare_case_insensitively_and_without_surrounding_space() -> None:
    assert normalize_email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"


def test_a_plain_address_has_no_problem() -> None:
    assert email_problem("ann.lee@example.com") is None


def test_a_bad_address_is_named_in_the_problem() -> None:
    problem = email_problem("ann.lee-at-example.com")
    assert problem is not None
    assert "ann.lee-at-example.com" in problem


def test_an_empty_or_overlong_address_is_refused() -> None:
    assert email_problem("   ") == "is required"
    assert email_problem("a" * 250 + "@x.io") is not None


def test_a_person_without_a_name_is_shown_by_email() -> None:
    assert display_name("", "", "ann@example.com") == "ann@example.com"
    assert display_name("Ann", "Lee", "ann@example.com") == "Ann Lee"


def test_every_status_has_a_label_and_pending_reads_not_activated() -> None:
    assert set(STATUS_LABELS) == set(UserStatus)
    assert UserStatus.PENDING.label == "Not Activated"
