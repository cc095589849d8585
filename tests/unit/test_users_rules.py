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


def test_a_password_may_not_hold_the_product_the_person_or_the_organization() -> None:
    from userdesk.users.rules import password_context, password_problem

    words = password_context("annabelle.lee", "Annabelle", "Lee", "Acme Widgets", "acme")
    assert {"userdesk", "annabelle", "acme", "widgets"} <= words
    assert "lee" not in words  # too short to be a word worth refusing
    assert "contains 'annabelle'" in (password_problem("ANNABELLE-1987!x", words) or "")
    assert "contains 'userdesk'" in (password_problem("my userdesk pass", words) or "")
    assert "contains 'widgets'" in (password_problem("widgets4ever!", words) or "")
    assert password_problem("correct horse battery", words) is None
    assert password_problem("userdesk rocks!") is not None  # the product, even with no context


def test_any_characters_and_up_to_128_of_them_make_a_password() -> None:
    """No composition rule (ASVS 6.2.5), and 64 characters or more are welcome (6.2.9)."""
    from userdesk.users.rules import PASSWORD_MAX_LENGTH, password_problem

    assert PASSWORD_MAX_LENGTH >= 64
    for password in ("alllowercaseletters", "ÜnïcødeÆ 🐙 Ωmega", "12345 67890 13579", "x" * 128):
        assert password_problem(password) is None, password
    assert "at most 128" in (password_problem("x" * 129) or "")
