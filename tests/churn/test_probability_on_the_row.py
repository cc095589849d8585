"""Scoring writes each user's probability on their row with the level, to 3 decimals, and
rewrites only the rows whose level or rounded probability moved; only a level that moved
changes the user (updated_at)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.churn.scored import run_scoring, scored_organization
from userdesk.churn.models import ChurnScore
from userdesk.organizations.models import Organization
from userdesk.users.models import User


def _rows(db: Session, org: Organization) -> dict[int, tuple[str | None, float | None, object]]:
    db.expire_all()
    return {
        u.id: (u.churn_level, u.churn_probability, u.updated_at)
        for u in db.scalars(select(User).where(User.organization_id == org.id))
    }


def test_the_row_holds_the_latest_score_rounded_and_only_moved_levels_touch_the_user(
    db: Session, org: Organization
) -> None:
    scored = scored_organization(db, org, people=12)
    scores = {
        s.user_id: s
        for s in db.scalars(select(ChurnScore).where(ChurnScore.run_id == scored.run.id))
    }
    before = _rows(db, org)
    assert set(scores) == {u.id for u in scored.users}
    for user_id, score in scores.items():
        level, probability, _ = before[user_id]
        assert (level, probability) == (score.level, round(score.probability, 3))
    # One row's probability put off by hand, another's level: the next run puts them back,
    # and leaves every other row as it was (the same scores as of nearly the same time).
    off, moved = scored.users[0].id, scored.users[1].id
    db.execute(update(User).where(User.id == off).values(churn_probability=0.0001))
    db.execute(update(User).where(User.id == moved).values(churn_level="unknown"))
    db.flush()
    edited = _rows(db, org)  # (the ORM's UPDATEs set updated_at of both)
    second = run_scoring(db, org)
    after = _rows(db, org)
    again = {
        s.user_id: s for s in db.scalars(select(ChurnScore).where(ChurnScore.run_id == second.id))
    }
    for user_id, score in again.items():
        assert after[user_id][:2] == (score.level, round(score.probability, 3))
    rewritten = {user_id for user_id in after if after[user_id][2] != edited[user_id][2]}
    assert moved in rewritten  # its level moved back: a change of the user
    assert off not in rewritten  # its probability alone: put back, the user unchanged
    assert after[off][1] != edited[off][1]  # (0.0001 no more)
    unchanged = {
        user_id
        for user_id, score in again.items()
        if round(score.probability, 3) == round(scores[user_id].probability, 3)
        and score.level == scores[user_id].level
    } - {off, moved}
    assert unchanged  # most scores stay the same a moment later
    assert not unchanged & rewritten
