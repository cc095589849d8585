"""`userdesk churn evaluate --as-of DATE --horizon 30d`: the backtest on the
organization's own data, for the transparent and the boosting model."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.churn.test_boosting import synthetic
from userdesk.churn import evaluation
from userdesk.cli import app
from userdesk.config import get_settings
from userdesk.errors import InvalidInput
from userdesk.organizations.models import Organization


def test_the_backtest_measures_both_models_on_users_active_before(
    db: Session, org: Organization
) -> None:
    now = synthetic(db, org, 1_000, seed=8)
    found = evaluation.organization(db, org.id, now, timedelta(days=30))
    assert found.snapshot == now - timedelta(days=30)
    assert found.scored > 100
    assert found.dormant > 100  # the users who had stopped: reported apart
    assert found.dormant_stayed_quiet is not None
    assert found.dormant_stayed_quiet > 0.9
    assert found.transparent is not None
    assert found.boosting is not None, found.boosting_note
    assert found.boosting["auc"] > 0.6
    assert found.boosting["log_loss"] < found.transparent["log_loss"]
    assert "trained on" in found.boosting_note
    for name in ("transparent", "boosting"):
        levels = found.reliability[name]
        assert sum(users for users, _ in levels.values()) == found.scored
    boosted = found.reliability["boosting"]
    shares = [share for _, share in boosted.values() if share is not None]
    assert shares == sorted(shares)  # the higher the level, the more went quiet


def test_reliability_is_the_share_of_each_level_that_went_quiet() -> None:
    found = evaluation.reliability([1, 0, 0, 1, 1, 0], [0.1, 0.2, 0.4, 0.5, 0.9, 0.95])
    assert found == {"low": (2, 0.5), "medium": (2, 0.5), "high": (2, 0.5)}
    assert evaluation.reliability([1], [0.9])["low"] == (0, None)


def test_a_bad_horizon_names_the_field_and_the_value() -> None:
    assert evaluation.parse_horizon("30d") == timedelta(days=30)
    with pytest.raises(InvalidInput) as caught:
        evaluation.parse_horizon("soon")
    assert "soon" in caught.value.fields["horizon"]


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("USERDESK_DATABASE_URL", url)
    monkeypatch.setenv("USERDESK_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_the_command_prints_the_table_and_the_dormant_apart(database_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    assert runner.invoke(app, ["demo", "--users", "150", "--seed", "3"]).exit_code == 0
    today = datetime.now(UTC).date().isoformat()
    result = runner.invoke(app, ["churn", "evaluate", "--as-of", today, "--horizon", "30d"])
    assert result.exit_code == 0, result.output
    assert "Transparent" in result.output
    assert "not trained" in result.output  # 150 users: too little history
    assert "Already inactive at the snapshot" in result.output
    assert "Levels of the transparent model, the share who then went quiet: low" in result.output
    bad = runner.invoke(app, ["churn", "evaluate", "--as-of", today, "--horizon", "x"])
    assert bad.exit_code == 1
    assert "horizon" in bad.output
