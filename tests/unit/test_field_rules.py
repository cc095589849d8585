"""Custom fields' pure rules (users.field_rules): values checked and converted, patterns
that could backtrack for long refused, the index rows of a value."""

from __future__ import annotations

import time
from datetime import date

import pytest

from userdesk.users.field_rules import (
    FieldSpec,
    ValueProblem,
    check_value,
    convert,
    index_values,
    pattern_problem,
)


def spec(type_: str, **kwargs: object) -> FieldSpec:
    return FieldSpec(id=1, key="f", label="F", type=type_, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+$", "(a*)*b", "(a|aa)*c", "((a+))+", "(x+x+)+y", "(a)\\1", ".*.*.*.*x", "[", "a" * 201],
)
def test_a_pattern_that_may_backtrack_for_long_or_is_not_one_is_refused(pattern: str) -> None:
    assert pattern_problem(pattern) is not None


@pytest.mark.parametrize("pattern", ["[A-Z]{2}-[0-9]{3}", "\\d+(\\.\\d+)?", "(ab){2,3}", "x|y"])
def test_plain_patterns_are_taken_and_match_fast(pattern: str) -> None:
    assert pattern_problem(pattern) is None
    started = time.monotonic()
    field = spec("text", validation={"pattern": pattern})
    with pytest.raises(ValueProblem):
        check_value(field, "a" * 199 + "!")
    assert time.monotonic() - started < 0.5


def test_a_value_longer_than_a_pattern_reads_is_refused_before_matching() -> None:
    field = spec("text", validation={"pattern": ".*"})
    with pytest.raises(ValueProblem, match="longer than 200"):
        check_value(field, "a" * 201)


def test_values_are_kept_as_the_field_spells_them() -> None:
    assert check_value(spec("choice", options=("Free", "Pro")), " pro ") == "Pro"
    assert check_value(spec("choices", options=("en", "fr")), ["FR", "fr", "en"]) == ["fr", "en"]
    assert check_value(spec("number"), 3.0) == 3
    assert check_value(spec("date"), "2024-02-29") == "2024-02-29"


def test_conversions_between_types() -> None:
    assert convert(" 12 ", spec("number")) == 12
    assert convert("yes", spec("boolean")) is True
    assert convert(5, spec("text")) == "5"
    assert convert("2024-05-01T10:00:00+00:00", spec("date")) == "2024-05-01"
    assert convert("Pro", spec("choices", options=("Pro",))) == ["Pro"]
    assert convert(["a", "b"], spec("text")) == "a, b"
    for value, target in (("many", "number"), ("maybe", "boolean"), (["a", "b"], "choice")):
        with pytest.raises(ValueProblem):
            convert(value, spec(target, options=("a", "b")))


def test_index_rows_fold_text_and_hold_a_row_per_choice() -> None:
    assert index_values(spec("text"), "New Zealand") == [("new zealand", None, None)]
    assert index_values(spec("boolean"), False) == [(None, 0.0, None)]
    assert index_values(spec("date"), "2024-01-02") == [(None, None, date(2024, 1, 2))]
    assert index_values(spec("choices"), ["En", "fr"]) == [("en", None, None), ("fr", None, None)]
    assert index_values(spec("text"), None) == []
