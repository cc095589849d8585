"""Migration 0024 puts each scored user's probability on the users row: their score in the
latest run that scored them (the level's), to 3 decimals; the unscored stay null."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text

from userdesk.db.engine import make_engine
from userdesk.db.migrate import alembic_config, upgrade

T = "2026-01-01 00:00:00.000000"


def test_the_latest_score_of_each_user_is_copied_and_indexed(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    upgrade(engine, "0023")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (id, slug, name, settings, created_at) "
                "VALUES (1, 'o', 'O', '{}', :t)"
            ),
            {"t": T},
        )
        for user_id, level in ((1, "high"), (2, "low"), (3, None)):
            conn.execute(
                text(
                    "INSERT INTO users (id, organization_id, email, email_normalized, "
                    "first_name, last_name, status, created_via, version, churn_level, "
                    "created_at, updated_at) VALUES (:id, 1, :email, :email, '', '', "
                    "'active', 'admin', 1, :level, :t, :t)"
                ),
                {"id": user_id, "email": f"u{user_id}@example.com", "level": level, "t": T},
            )
        for run_id in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO churn_runs (id, organization_id, as_of, model, users, "
                    "calibration, created_at, finished_at) "
                    "VALUES (:id, 1, :t, 'transparent-v1', 2, '{}', :t, :t)"
                ),
                {"id": run_id, "t": T},
            )
        scores = [(1, 1, 0.2, "low"), (1, 2, 0.5, "medium"), (2, 1, 0.87654, "high")]
        scores.append((2, 2, 0.01234, "low"))
        for n, (run_id, user_id, probability, level) in enumerate(scores, start=1):
            conn.execute(
                text(
                    "INSERT INTO churn_scores (id, organization_id, run_id, user_id, "
                    "probability, level, reasons) VALUES (:id, 1, :run, :user, :p, :level, '[]')"
                ),
                {"id": n, "run": run_id, "user": user_id, "p": probability, "level": level},
            )
    upgrade(engine)
    with engine.connect() as conn:
        found = dict(conn.execute(text("SELECT id, churn_probability FROM users")).all())
        indexes = {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("users")}
    engine.dispose()
    assert found == {1: 0.877, 2: 0.012, 3: None}
    assert indexes["ix_users_org_churn_probability"] == [
        "organization_id",
        "churn_probability",
        "id",
    ]


def test_downgrading_puts_the_tables_back_as_0023_had_them(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/new.db")
    upgrade(engine)
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0023")
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("users")}
        indexes = {i["name"] for i in inspect(conn).get_indexes("churn_scores")}
    engine.dispose()
    assert "churn_probability" not in columns
    assert "ix_churn_scores_run_probability" in indexes
    assert "ix_churn_scores_run_probability_user" not in indexes
