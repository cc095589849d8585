"""Declarative base, column types and mixins shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    Table,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.sql.elements import conv

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A 64-bit key on PostgreSQL; on SQLite an INTEGER PRIMARY KEY, which is the rowid itself.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """process_result_value, quicker for what SQLite holds: the text SQLAlchemy wrote
        (no offset), read as UTC in one call. A list reads hundreds per request."""
        general = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or general is None:
            return general

        def process(value: Any) -> datetime | None:
            if value.__class__ is str:
                try:
                    return datetime.fromisoformat(value + "+00:00")
                except ValueError:
                    pass  # an offset of its own, or not a time: the general way says
            return general(value)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if not isinstance(moment, datetime):
            raise TypeError(f"expected a timestamp, got {value!r}")
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# The tables every organization shares (a Citus reference table each, copied to every
# node); the others are distributed by organization_id. docs/scaling.md names them too
# (throttle_hits: an IP's or a typed email's rows belong to no organization).
REFERENCE_TABLES = frozenset({"organizations", "throttle_hits"})
ORG = "organization_id"


def distribute_keys(table: Table) -> None:
    """TABLE's keys as migration 0035 made them on PostgreSQL, beside SQLite's.

    On PostgreSQL every key of a distributed table holds organization_id (Citus checks
    a key on one shard only): a unique constraint gets it at its end, and a foreign key
    to another distributed table becomes (column, organization_id) -> (id,
    organization_id), its SET NULL nulling the column alone. SQLite keeps one-column
    keys. Each shape is declared for its database (`ddl_if`; `on_dialect` says which
    applies); the ORM joins and relates on the one-column foreign key, so relationships
    name it (`foreign_keys`). Primary keys are not declared twice: the mapper's stays
    `id` (session.get(User, id) as before) while PostgreSQL's is (id, organization_id).
    """
    for unique in [c for c in table.constraints if type(c) is UniqueConstraint]:
        columns = [column.name for column in unique.columns]
        if ORG in columns:
            continue
        unique.ddl_if(dialect="sqlite")
        name = conv(f"uq_{table.name}_{'_'.join(columns)}_{ORG}")
        table.append_constraint(
            UniqueConstraint(*columns, ORG, name=name).ddl_if(dialect="postgresql")
        )
    for key in list(table.foreign_key_constraints):
        referred, _, referred_column = key.elements[0].target_fullname.rpartition(".")
        if referred in REFERENCE_TABLES or ORG in key.column_keys:
            continue
        (column,) = key.column_keys
        key.ddl_if(dialect="sqlite")
        ondelete = f"SET NULL ({column})" if key.ondelete == "SET NULL" else key.ondelete
        table.append_constraint(
            ForeignKeyConstraint(
                [column, ORG],
                [f"{referred}.{referred_column}", f"{referred}.{ORG}"],
                ondelete=ondelete,
                name=conv(f"fk_{table.name}_{column}_{referred}"),
            ).ddl_if(dialect="postgresql")
        )


def on_dialect(item: object, dialect: str) -> bool:
    """ITEM (a constraint, an index) exists on DIALECT's databases: it names no other."""
    condition = getattr(item, "_ddl_if", None)
    return condition is None or condition.dialect in (None, dialect)


class OrgScoped:
    """Every row belongs to an organization (the tenant, and the shard key on Citus)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)  # declarative maps the class: its table exists
        table = cls.__dict__.get("__table__")
        if isinstance(table, Table):
            distribute_keys(table)

    # False where the table's own indexes lead with organization_id: one index less to keep.
    organization_indexed: ClassVar[bool] = True

    @declared_attr
    def organization_id(cls) -> Mapped[int]:  # noqa: N805 - a class attribute
        return mapped_column(
            Id, ForeignKey("organizations.id", ondelete="CASCADE"), index=cls.organization_indexed
        )


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
