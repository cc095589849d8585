"""Every pair of status and action of the status machine, against a table written by hand."""

import pytest

from userdesk.users.rules import Action, IllegalMove, UserStatus, next_status

P, A, D, B, T, X = "pending", "active", "disabled", "banned", "trashed", "deleted"
ILLEGAL = "illegal"
SAME = "same"
BACK = "back"  # to the previous status

# rows: action; columns: pending, active, disabled, banned, trashed, deleted
EXPECTED = {
    Action.VALIDATE: (SAME, SAME, SAME, SAME, ILLEGAL, ILLEGAL),
    Action.INVALIDATE: (SAME, SAME, SAME, SAME, ILLEGAL, ILLEGAL),
    Action.DISABLE: (D, D, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL),
    Action.ENABLE: (ILLEGAL, ILLEGAL, BACK, ILLEGAL, ILLEGAL, ILLEGAL),
    Action.BAN: (B, B, B, ILLEGAL, ILLEGAL, ILLEGAL),
    Action.UNBAN: (ILLEGAL, ILLEGAL, ILLEGAL, BACK, ILLEGAL, ILLEGAL),
    Action.TRASH: (T, T, T, T, ILLEGAL, ILLEGAL),
    Action.RESTORE: (ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL, BACK, ILLEGAL),
    Action.DELETE: (X, X, X, X, X, ILLEGAL),
    Action.REACTIVATE: (ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL, P),
    Action.ACTIVATE: (A, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL, ILLEGAL),
    Action.REVOKE_SESSIONS: (SAME, SAME, SAME, SAME, SAME, SAME),
}
COLUMNS = [UserStatus(s) for s in (P, A, D, B, T, X)]


def test_the_table_covers_every_action() -> None:
    assert set(EXPECTED) == set(Action)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("current", COLUMNS)
@pytest.mark.parametrize("previous", [None, *COLUMNS])
def test_every_status_and_action(
    action: Action, current: UserStatus, previous: UserStatus | None
) -> None:
    expected = EXPECTED[action][COLUMNS.index(current)]
    if expected == ILLEGAL:
        with pytest.raises(IllegalMove) as caught:
            next_status(current, action, previous)
        assert caught.value.current == current
        assert current.label in str(caught.value)
        return
    result = next_status(current, action, previous)
    if expected == SAME:
        assert result == current
    elif expected == BACK:
        returnable = {UserStatus.PENDING, UserStatus.ACTIVE, UserStatus.DISABLED, UserStatus.BANNED}
        if action is not Action.RESTORE:
            returnable.discard(current)
        assert result == (previous if previous in returnable else UserStatus.ACTIVE)
    else:
        assert result == UserStatus(expected)


def test_restore_brings_back_the_status_before_the_trash() -> None:
    assert next_status(UserStatus.TRASHED, Action.RESTORE, UserStatus.BANNED) == UserStatus.BANNED
    assert next_status(UserStatus.TRASHED, Action.RESTORE, UserStatus.PENDING) == UserStatus.PENDING


def test_enabling_never_lands_back_in_disabled() -> None:
    assert next_status(UserStatus.DISABLED, Action.ENABLE, UserStatus.DISABLED) == UserStatus.ACTIVE
    assert next_status(UserStatus.DISABLED, Action.ENABLE, UserStatus.PENDING) == UserStatus.PENDING
