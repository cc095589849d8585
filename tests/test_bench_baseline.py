"""The bench's bare baseline (bench/baseline.py) serves the very page GET /api/v1/users
serves, byte for byte: the throughput ratio of issue 17 compares equal work."""

import importlib
import sys
from pathlib import Path

import pytest
from bench import custom_fields
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests import factories
from tests.conftest import make_settings
from userdesk import demo
from userdesk.db.engine import make_engine
from userdesk.db.migrate import upgrade
from userdesk.db.session import Database
from userdesk.web.app import create_app


def test_the_baseline_serves_the_apis_first_page_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    database = Database(engine)
    with database.sessions() as db:
        org = factories.make_organization(db)
        demo.populate(db, organization=org, count=120, seed=3)
        key = factories.make_api_key(db, org)
        db.commit()
    assert org.id == 1  # the organization the baseline serves
    custom_fields.ensure_fields(url)  # the bench's fields, values for most users
    with engine.begin() as conn:  # scored users: a level and a probability
        conn.execute(
            text(
                "UPDATE users SET churn_level = 'high', churn_probability = 0.8125 WHERE id % 3 = 0"
            )
        )
    settings = make_settings(tmp_path, url)
    with TestClient(create_app(settings, database)) as client:
        ours = client.get("/api/v1/users?limit=50", headers={"Authorization": f"Bearer {key}"})
    assert ours.status_code == 200
    page = ours.json()
    assert len(page["items"]) == 50
    assert page["next_cursor"]
    assert any(item["attributes"] for item in page["items"])
    assert any(item["churn_probability"] == 0.8125 for item in page["items"])

    monkeypatch.setenv("BENCH_DATABASE", str(tmp_path / "bench.db"))
    sys.modules.pop("bench.baseline", None)  # it opens its database when imported
    baseline = importlib.import_module("bench.baseline")
    try:
        with TestClient(baseline.app) as bare_client:
            bare = bare_client.get("/users?limit=50")
    finally:
        baseline.connection.close()
        sys.modules.pop("bench.baseline", None)
    assert bare.json() == page  # a readable difference first
    assert bare.content == ours.content
    engine.dispose()
