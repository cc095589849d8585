import pytest
from hypothesis import given
from hypothesis import strategies as st

from userdesk.db.paging import decode_cursor, encode_cursor
from userdesk.errors import InvalidInput
from userdesk.users.service import SORTS

# What a stored name can hold: any text but a NUL (nor lone surrogates).
names = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=40)


@given(names, names, st.integers(min_value=1, max_value=2**63 - 1))
def test_a_cursor_gives_back_the_key_it_was_made_from(first: str, last: str, uid: int) -> None:
    sort = SORTS["name"]
    assert decode_cursor(sort, encode_cursor(sort, [first, last, uid])) == [first, last, uid]


@pytest.mark.parametrize(
    "key", [["Ann", "Lee", 2**63], ["Ann", "Lee", 2**64 - 1], ["An\x00n", "Lee", 1]]
)
def test_a_cursor_holding_what_no_row_holds_is_refused(key: list[object]) -> None:
    """An id beyond 64 bits or a NUL would fail in the database: the cursor is refused."""
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(SORTS["name"], encode_cursor(SORTS["name"], key))
    assert "cursor" in caught.value.fields


@pytest.mark.parametrize("cursor", ["garbage", "e30", "WyJuYW1lIiwgWzFdXQ"])
def test_a_cursor_not_made_by_the_list_is_refused_naming_the_field(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(SORTS["name"], cursor)
    assert "cursor" in caught.value.fields
    assert cursor in caught.value.fields["cursor"]


def test_a_cursor_of_another_sort_is_refused() -> None:
    cursor = encode_cursor(SORTS["email"], ["a@example.com", 3])
    with pytest.raises(InvalidInput):
        decode_cursor(SORTS["name"], cursor)
