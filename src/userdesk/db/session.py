"""Sessions and the unit of work. Adapters own the transaction; services only flush."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from userdesk.db.engine import BEGIN_OPTION, make_engine


class Database:
    """An engine and the session factory bound to it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(bind=engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(make_engine(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def unit_of_work(self, *, write: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises.

        WRITE says the transaction will change data; on SQLite it then takes the write
        lock at its start, waiting its turn instead of failing later.
        """
        with self.sessions() as session:
            if write and self.dialect == "sqlite":
                session.connection(execution_options={BEGIN_OPTION: "IMMEDIATE"})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def best_effort(db: Session) -> Iterator[None]:
    """Writes that a read-only request makes if the write lock is free, and otherwise
    drops (hints such as last-seen times): such a request must not fail because another
    writer got there first."""
    try:
        with db.begin_nested():
            yield
    except OperationalError:
        return
