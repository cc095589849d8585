"""Read replicas without a replica: the settings, which paths may read on one, and the
read-your-writes window (tests/db/test_replicas.py runs them against a real one)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from tests.conftest import make_settings
from userdesk.config import load_settings
from userdesk.db.replicas import READ_PATHS, Replicas, principal_of
from userdesk.db.session import Database


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("USERDESK_SECRET_KEY", "test")
    monkeypatch.setenv("USERDESK_VAR_DIR", str(tmp_path))
    for name in (
        "USERDESK_DATABASE_REPLICA_URLS",
        "USERDESK_REPLICA_MAX_LAG_SECONDS",
        "USERDESK_REPLICA_READ_YOUR_WRITES_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_replica_settings_default_to_none_and_the_documented_seconds(
    env: pytest.MonkeyPatch,
) -> None:
    settings = load_settings()
    assert settings.database_replica_urls == ()
    assert settings.replica_max_lag_seconds == 10.0
    assert settings.replica_read_your_writes_seconds == 5.0


def test_replica_urls_are_comma_separated_and_blanks_left_out(env: pytest.MonkeyPatch) -> None:
    env.setenv("USERDESK_DATABASE_REPLICA_URLS", " postgresql://u@r1:5432/ud ,, postgres://r2/ud, ")
    env.setenv("USERDESK_REPLICA_MAX_LAG_SECONDS", "2.5")
    env.setenv("USERDESK_REPLICA_READ_YOUR_WRITES_SECONDS", "0")
    settings = load_settings()
    assert settings.database_replica_urls == ("postgresql://u@r1:5432/ud", "postgres://r2/ud")
    assert settings.replica_max_lag_seconds == 2.5
    assert settings.replica_read_your_writes_seconds == 0.0


@pytest.mark.parametrize(
    "value", ["mysql://u:hunter2@h/db", "sqlite:///var/x.db", "r1:5432", "postgresql"]
)
def test_a_replica_url_that_is_not_postgresql_is_refused_by_name_without_its_password(
    env: pytest.MonkeyPatch, value: str
) -> None:
    env.setenv("USERDESK_DATABASE_REPLICA_URLS", f"postgresql://ok/db,{value}")
    with pytest.raises(ValueError, match="USERDESK_DATABASE_REPLICA_URLS") as raised:
        load_settings()
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("value", ["-1", "abc", "nan", "inf", "1e9", "5 seconds"])
@pytest.mark.parametrize(
    "name", ["USERDESK_REPLICA_MAX_LAG_SECONDS", "USERDESK_REPLICA_READ_YOUR_WRITES_SECONDS"]
)
def test_bad_replica_seconds_are_refused_naming_the_setting_and_value(
    env: pytest.MonkeyPatch, name: str, value: str
) -> None:
    env.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        load_settings()


def test_replicas_of_a_sqlite_primary_are_ignored_with_an_error_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path}/primary.db")
    settings = dataclasses.replace(settings, database_replica_urls=("postgresql://r1/ud",))
    with caplog.at_level(logging.ERROR):
        database = Database.from_settings(settings)
    assert database.replicas is None
    assert "USERDESK_DATABASE_REPLICA_URLS is ignored" in caplog.text
    database.dispose()


def test_no_replica_settings_make_a_database_without_replicas(tmp_path: Path) -> None:
    database = Database.from_settings(make_settings(tmp_path, f"sqlite:///{tmp_path}/p.db"))
    assert database.replicas is None
    assert database.reading(principal="user:1") is database
    database.dispose()


@pytest.mark.parametrize(
    ("path", "on_replica"),
    [
        ("/console/users", True),
        ("/console/users/counts", True),
        ("/console/users/export", True),
        ("/console/users/12/activity", True),
        ("/console/audit", True),
        ("/api/v1/users", True),
        ("/api/v1/users/counts", True),
        ("/api/v1/users/export", True),
        ("/api/v1/users/12/activity", True),
        ("/api/v1/audit", True),
        ("/console/users/12", False),  # a user's page: just changed, maybe, by this admin
        ("/api/v1/users/12", False),
        ("/console/users/new", False),
        ("/console/usersx", False),
        ("/console/users/12/activity/", False),
        ("/api/v1/users/1x/activity", False),
        ("/api/v2/users", False),
        ("/me", False),
        ("/console/users\n", False),
    ],
)
def test_only_lists_counts_exports_timelines_and_the_audit_log_may_read_on_a_replica(
    path: str, *, on_replica: bool
) -> None:
    assert bool(READ_PATHS.match(path)) is on_replica


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_caller_reads_their_writes_for_the_window_only() -> None:
    clock = Clock()
    replicas = Replicas([], max_lag=10, read_your_writes=5, clock=clock)
    assert not replicas.wrote_lately("user:1", None)
    replicas.wrote("user:1")
    clock.now += 4.9
    assert replicas.wrote_lately("user:1", None)
    assert not replicas.wrote_lately("user:2", None)  # another admin: not theirs
    assert not replicas.wrote_lately("key:1", None)  # an API key is another principal
    clock.now += 0.2
    assert not replicas.wrote_lately("user:1", None)


@pytest.mark.parametrize(
    ("cookie", "lately"),
    [
        ("999998.0", True),  # 2 s ago, written by another process
        ("1000000.5", True),  # a clock a little ahead
        ("999990.0", False),  # 10 s ago: past the window
        ("99999999999", False),  # far ahead: forged, never a pin to the primary
        ("nan", False),
        ("inf", False),
        ("", False),
        ("abc", False),
        ("1e400", False),
    ],
)
def test_the_cookie_of_a_write_counts_within_the_window_only(cookie: str, *, lately: bool) -> None:
    clock = Clock()
    replicas = Replicas([], max_lag=10, read_your_writes=5, clock=clock)
    assert replicas.wrote_lately("user:1", cookie) is lately


def test_with_no_replica_healthy_reads_stay_on_the_primary() -> None:
    replicas = Replicas([], max_lag=10, read_your_writes=5)
    assert replicas.pick() is None


def test_the_principal_is_the_signed_in_user_or_else_the_api_key() -> None:
    assert principal_of({"actor_user_id": 3, "actor_api_key_id": 4}) == "user:3"
    assert principal_of({"actor_api_key_id": 4}) == "key:4"
    assert principal_of({}) is None
