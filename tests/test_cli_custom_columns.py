"""`userdesk export` writes the organization's custom fields (every one not archived, or
those `--columns` names) after the built-in columns."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from userdesk.access.rules import system_actor
from userdesk.cli import app
from userdesk.config import get_settings
from userdesk.db.session import Database
from userdesk.users import attributes, fields
from userdesk.users.attributes import Party
from userdesk.users.field_schemas import UserFieldCreate
from userdesk.users.models import User

runner = CliRunner()


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("USERDESK_DATABASE_URL", url)
    monkeypatch.setenv("USERDESK_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_export_writes_every_field_not_archived_or_the_ones_named(
    database_url: str, tmp_path: Path
) -> None:
    run("migrate")
    run("create-admin", "--email", "ops@example.com", "--password", "long enough pw")
    database = Database.from_url(database_url)
    with database.unit_of_work() as db:
        user = db.scalars(select(User)).one()
        actor = system_actor(user.organization_id, "tests")
        for key, type_ in (("plan", "choice"), ("since", "date"), ("old", "text")):
            fields.create_field(
                db,
                actor=actor,
                data=UserFieldCreate(
                    key=key,
                    label=key.title(),
                    type=type_,
                    options=["Free", "Pro"] if type_ == "choice" else None,
                ),
            )
        values = {"plan": "Pro", "since": "2025-01-31", "old": "kept"}
        checked = attributes.checked(
            db, organization_id=user.organization_id, values=values, party=Party.SYSTEM
        )
        attributes.write(db, user, checked)
        old = next(f for f in fields.list_fields(db, actor=actor) if f.key == "old")
        fields.archive_field(db, actor=actor, field_id=old.id)
    database.dispose()
    every = tmp_path / "every.csv"
    run("export", "-o", str(every))
    (row,) = csv.DictReader(io.StringIO(every.read_text()))
    assert list(row)[-2:] == ["plan", "since"]
    assert (row["plan"], row["since"]) == ("Pro", "2025-01-31")
    named = tmp_path / "named.csv"
    run("export", "--columns", "since", "-o", str(named))
    assert named.read_text().splitlines()[0].endswith(",churn_probability,since")
    none = tmp_path / "none.csv"
    run("export", "--columns", "", "-o", str(none))
    assert none.read_text().splitlines()[0].endswith(",churn_probability")
    refused = runner.invoke(app, ["export", "--columns", "old"])
    assert refused.exit_code == 1
    assert "'old' is not a field" in refused.output
