"""Apply the Alembic migrations shipped inside the package."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine

from userdesk.db.base import on_dialect
from userdesk.db.registry import NOT_MODELED

MIGRATIONS = Path(__file__).parent / "migrations"


def include_name(name: str | None, _type: Any, _parents: MutableMapping[Any, Any]) -> bool:
    """For autogenerate: leave out what the migrations make by hand (full-text search)."""
    return not (name and name.startswith(NOT_MODELED))


def include_object_on(dialect: str) -> Callable[[Any, Any, Any, bool, Any], bool]:
    """For autogenerate on DIALECT: the models' keys declared for another database left out
    (db.base.distribute_keys: PostgreSQL's hold organization_id, SQLite's do not)."""

    def include_object(item: Any, _name: Any, _type: Any, reflected: bool, _to: Any) -> bool:
        return reflected or on_dialect(item, dialect)

    return include_object


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(bind: Engine | Connection, revision: str = "heads") -> None:
    """Bring the database behind BIND to REVISION (the newest by default)."""
    config = alembic_config()
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    else:
        config.attributes["connection"] = bind
        command.upgrade(config, revision)
