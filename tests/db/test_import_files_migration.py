"""Migration 0016 moves the file of imports made before it out of their jobs' params."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from userdesk.db.engine import make_engine
from userdesk.db.migrate import upgrade


def test_a_draft_made_before_keeps_its_file_beside_its_job(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    upgrade(engine, "0015")
    params = {"filename": "a.csv", "csv": "email\na@x.org\n", "columns": ["email"]}
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (id, slug, name, settings, created_at) "
                "VALUES (1, 'o', 'O', '{}', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO jobs (id, organization_id, kind, status, params, total, done, "
                "failed, problems, cursor, actor, created_at) VALUES (7, 1, 'users.import', "
                "'draft', :params, 0, 0, 0, '[]', 0, '{}', '2026-01-01')"
            ),
            {"params": json.dumps(params)},
        )
    upgrade(engine)
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT content, digest FROM import_files WHERE job_id = 7")).one()
        moved = json.loads(conn.execute(text("SELECT params FROM jobs WHERE id = 7")).scalar_one())
    engine.dispose()
    assert kept.content == "email\na@x.org\n"
    assert len(kept.digest) == 64
    assert moved == {"filename": "a.csv", "columns": ["email"]}
