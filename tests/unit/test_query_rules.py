from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from userdesk.query.rules import (
    CHURN_LEVELS,
    ChoiceTerm,
    FlagTerm,
    Key,
    LoginNeverTerm,
    Query,
    QueryError,
    TextTerm,
    TimeTerm,
    parse,
)
from userdesk.users.rules import UserStatus

# Text a query can search for: anything but a NUL (nor lone surrogates).
text = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), min_size=1, max_size=20
)
stripped = text.map(str.strip).filter(bool)
text_terms = stripped.map(TextTerm)
choice_terms = st.one_of(
    st.lists(
        st.sampled_from([s.value for s in UserStatus]), min_size=1, max_size=3, unique=True
    ).map(lambda v: ChoiceTerm(Key.STATUS, tuple(v))),
    st.lists(st.sampled_from(CHURN_LEVELS), min_size=1, max_size=3, unique=True).map(
        lambda v: ChoiceTerm(Key.CHURN, tuple(v))
    ),
    st.tuples(
        st.sampled_from([Key.ROLE, Key.TEAM, Key.GROUP]),
        st.lists(stripped, min_size=1, max_size=3, unique=True),
    ).map(lambda kv: ChoiceTerm(kv[0], tuple(kv[1]))),
)
flag_terms = st.builds(FlagTerm, st.sampled_from([Key.VERIFIED, Key.VALIDATED]), st.booleans())
ages = st.tuples(st.integers(0, 9999), st.sampled_from(["hours", "days", "weeks"])).map(
    lambda nu: timedelta(**{nu[1]: nu[0]})
)
time_terms = st.one_of(
    st.builds(
        lambda k, op, age: TimeTerm(k, op, age=age),
        st.sampled_from([Key.SEEN, Key.CREATED]),
        st.sampled_from([">", ">=", "<", "<="]),
        ages,
    ),
    st.builds(
        lambda k, op, day: TimeTerm(k, op, day=day),
        st.sampled_from([Key.SEEN, Key.CREATED]),
        st.sampled_from([">", ">=", "<", "<="]),
        st.dates(min_value=date(1970, 1, 1), max_value=date(2999, 12, 31)),
    ),
)
terms = st.one_of(text_terms, choice_terms, flag_terms, st.just(LoginNeverTerm()), time_terms)
queries = st.lists(terms, max_size=6, unique=True).map(lambda t: Query(tuple(t)))


@given(queries)
def test_a_printed_query_parses_back_to_itself(query: Query) -> None:
    assert parse(str(query)) == query


@given(st.text(max_size=80))
def test_any_input_parses_or_fails_with_a_query_error_naming_a_term(source: str) -> None:
    try:
        query = parse(source)
    except QueryError as error:
        failure = error
    else:
        assert parse(str(query)) == query
        return
    assert failure.term
    assert failure.message


def test_the_contract_example_parses_into_its_terms() -> None:
    query = parse(
        'anna status:active team:"Support EU" verified:no login:never churn:high seen:>30d'
    )
    assert query.terms == (
        TextTerm("anna"),
        ChoiceTerm(Key.STATUS, ("active",)),
        ChoiceTerm(Key.TEAM, ("Support EU",)),
        FlagTerm(Key.VERIFIED, False),
        LoginNeverTerm(),
        ChoiceTerm(Key.CHURN, ("high",)),
        TimeTerm(Key.SEEN, ">", age=timedelta(days=30)),
    )


def test_commas_give_alternatives_and_quotes_keep_spaces_and_commas() -> None:
    query = parse('status:Active,disabled group:"Beta, testers",VIP "ann lee"')
    assert query.terms == (
        ChoiceTerm(Key.STATUS, ("active", "disabled")),
        ChoiceTerm(Key.GROUP, ("Beta, testers", "VIP")),
        TextTerm("ann lee"),
    )


@pytest.mark.parametrize(
    ("source", "term", "hint"),
    [
        ("sort:name", "sort:name", "status, role, team"),
        ("status:sleeping", "status:sleeping", "pending, active"),
        ("verified:maybe", "verified:maybe", "yes or no"),
        ("login:always", "login:always", "never"),
        ("seen:30d", "seen:30d", "30d"),
        ("created:>yesterday", "created:>yesterday", "2026-01-31"),
        ("churn:extreme", "churn:extreme", "low, medium, high"),
        ("team:", "team:", "needs a value"),
        ('ann "lee', '"lee', "never closed"),
        ("validated:yes,no", "validated:yes,no", "one value"),
    ],
)
def test_a_bad_term_is_named_with_what_is_allowed(source: str, term: str, hint: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse(source)
    assert caught.value.term == term
    assert hint in caught.value.message


def test_ages_look_back_from_now_and_dates_cover_whole_days() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    thirty = now - timedelta(days=30)
    assert parse("seen:>30d").terms[0].bounds(now) == (None, thirty)  # type: ignore[union-attr]
    assert parse("seen:<30d").terms[0].bounds(now) == (thirty, None)  # type: ignore[union-attr]
    day = datetime(2026, 1, 1, tzinfo=UTC)
    next_day = day + timedelta(days=1)
    expectations = {
        ">": (next_day, None),
        ">=": (day, None),
        "<": (None, day),
        "<=": (None, next_day),
    }
    for op, expected in expectations.items():
        term = parse(f"created:{op}2026-01-01").terms[0]
        assert term.bounds(now) == expected  # type: ignore[union-attr]


def test_adding_a_flag_replaces_the_old_one_and_terms_can_be_removed() -> None:
    query = parse("ann verified:yes")
    flipped = query.with_term(FlagTerm(Key.VERIFIED, False))
    assert str(flipped) == "ann verified:no"
    assert str(flipped.without(TextTerm("ann"))) == "verified:no"
    assert str(parse("status:active ann").without_key(Key.STATUS)) == "ann"


def test_repeated_terms_count_once() -> None:
    assert str(parse("ann ann status:active status:active")) == "ann status:active"
