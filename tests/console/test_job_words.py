"""What a job's page and toast say it did, in words (audit.wording.job_summary, bulk_toast)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from userdesk.audit import wording
from userdesk.users import bulk

AT = datetime(2026, 1, 31, 9, 5, tzinfo=UTC)


def _summary(
    kind: str, params: dict[str, object], status: str, done: int, failed: int, total: int
) -> str:
    return wording.job_summary(
        kind, params, status=status, done=done, failed=failed, total=total, at=AT
    )


def test_every_bulk_action_has_words_from_the_audit_table() -> None:
    """A new bulk action fails here until it is given the audit action it words as."""
    assert set(wording.BULK_ACTIONS) == set(bulk.ACTIONS)
    assert set(wording.BULK_ACTIONS.values()) <= set(wording.AUDIT_ACTIONS)
    assert wording.IMPORT_JOB == "users.import"


@pytest.mark.parametrize(
    ("params", "status", "done", "failed", "total", "said"),
    [
        ({"action": "disable"}, "done", 2, 0, 2, "Disabled 2 of 2 users."),
        ({"action": "disable"}, "running", 400, 0, 2001, "Disabled 400 of 2,001 users so far."),
        ({"action": "disable"}, "queued", 0, 0, 12, "Waiting to start: 12 users."),
        (
            {"action": "trash"},
            "done",
            10,
            2,
            12,
            "Moved 10 of 12 users to the trash; 2 users were left out.",
        ),
        ({"action": "ban", "days": 7}, "done", 3, 0, 3, "Banned 3 of 3 users for 7 days."),
        (
            {"action": "ban", "permanent": True},
            "done",
            1,
            1,
            2,
            "Banned 1 of 2 users for good; 1 user was left out.",
        ),
        (
            {"action": "revoke-sessions"},
            "failed",
            5,
            0,
            9,
            "Signed out 5 of 9 users everywhere before the job stopped.",
        ),
        ({"action": "resend-invitation"}, "done", 1, 0, 1, "Sent a new invitation to 1 of 1 user."),
    ],
)
def test_a_bulk_job_says_what_it_did_to_how_many(
    params: dict[str, object], status: str, done: int, failed: int, total: int, said: str
) -> None:
    assert _summary(bulk.KIND, params, status, done, failed, total) == said


def test_an_import_says_how_many_users_it_made_and_how_many_rows_failed() -> None:
    assert _summary("users.import", {}, "done", 1980, 20, 2000) == (
        "Imported 1,980 users; 20 rows had errors."
    )
    assert _summary("users.import", {}, "done", 0, 1, 1) == "Imported no users; 1 row had an error."
    assert _summary("users.import", {}, "done", 5, 0, 5) == "Imported 5 users."
    assert _summary("users.import", {"dry_run": True}, "done", 3, 2, 5) == (
        "Dry run: 3 users would be imported; 2 rows have errors."
    )
    assert _summary("users.import", {}, "running", 100, 5, 2000) == "Read 105 of 2,000 rows so far."


def test_a_churn_run_and_an_unknown_kind_still_read_as_words() -> None:
    assert (
        _summary("churn.score", {}, "done", 40, 0, 40) == "Scored the churn risk of 40 of 40 users."
    )
    assert _summary("report.build", {}, "done", 1, 1, 2) == (
        "Report build: 1 of 2 items done; 1 item was left out."
    )
    # An action the table does not know (an old job's) is not a crash, nor a raw code.
    assert _summary(bulk.KIND, {"action": "zap<b>"}, "done", 1, 0, 1).startswith("Users bulk")


def test_the_toast_says_what_happened_to_how_many() -> None:
    assert wording.bulk_toast("disable", {}, done=12, failed=0) == "Disabled 12 users."
    assert wording.bulk_toast("enable", {}, done=1, failed=0) == "Enabled 1 user."
    assert wording.bulk_toast("ban", {"days": 3}, done=2, failed=1, at=AT) == (
        "Banned 2 users for 3 days; 1 user was left out."
    )
    assert (
        wording.bulk_toast("nope", {}, done=0, failed=3) == "Nope: no users; 3 users were left out."
    )
