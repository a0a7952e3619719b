"""Engines and sessions for the billing database (SQLite embedded, PostgreSQL in production)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from flight_fees.lib.core.redact import redact
from flight_fees.lib.core.settings import database_url, normalise_database_url


class DatabaseError(RuntimeError):
    """The billing database cannot be used (unreachable, not migrated, bad URL)."""


def make_engine(url: str | None = None, *, echo: bool = False) -> Engine:
    """An engine for ``url`` (default: :func:`flight_fees.lib.core.settings.database_url`).

    SQLite gets foreign keys, WAL journaling and a busy timeout so that the Dagster
    webserver, daemon and run workers can share the embedded file.
    """
    url = normalise_database_url(url or database_url())
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy.exc.ArgumentError
        raise DatabaseError(f"invalid database URL: {redact(exc)}") from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, echo=echo, connect_args={"timeout": 30})
            _configure_sqlite(engine)
            return engine
        return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=5)
    except (ImportError, ArgumentError, NoSuchModuleError, OSError) as exc:
        raise DatabaseError(f"cannot use database URL {shown}: {redact(exc)}") from None


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # take control of transactions: BEGIN IMMEDIATE on write paths is issued by callers
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # serialise writers up front (no lock upgrades -> no SQLITE_BUSY deadlocks)
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def rows_affected(result: Result[Any]) -> int:
    """The rows an UPDATE / DELETE matched: ``Session.execute`` of a DML statement returns a
    :class:`~sqlalchemy.CursorResult` (typed as a plain ``Result``)."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"not the result of an UPDATE / DELETE: {type(result).__name__}")
    return result.rowcount


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on any exception."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC (the default clock of the database writers)."""
    return dt.datetime.now(dt.UTC)
