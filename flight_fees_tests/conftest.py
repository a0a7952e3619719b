"""Shared fixtures: every database test runs on SQLite **and** PostgreSQL.

PostgreSQL comes from ``FLIGHT_FEES_TEST_POSTGRES_URL``, else 127.0.0.1:5432 when it answers,
else a throwaway cluster started from the local PostgreSQL binaries. Only when none of these
exists are the PostgreSQL tests skipped, with the reason; with ``CI=true`` that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from flight_fees.lib.db import make_engine, upgrade
from flight_fees.lib.db.models import Base
from flight_fees_tests.pg import PostgresUnavailable, provide_postgres_server
from flight_fees_tests.s3_server import s3_server, s3_storage_url  # noqa: F401 (fixtures)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches the developer's ./.flight_fees or a configured database."""
    home = tmp_path / "ff_home"
    monkeypatch.setenv("FLIGHT_FEES_HOME", str(home))
    monkeypatch.delenv("FLIGHT_FEES_DATABASE_URL", raising=False)
    monkeypatch.delenv("FLIGHT_FEES_STORAGE_URL", raising=False)
    monkeypatch.delenv("PINOT_HTTP_BROKER_URL", raising=False)
    return home


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """Base URL (no database) of a PostgreSQL server, or skip/fail with the reason."""
    try:
        with provide_postgres_server() as url:
            yield url
    except PostgresUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL tests cannot be skipped in CI: {exc}", pytrace=False)
        pytest.skip(f"no PostgreSQL server available: {exc}")


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def postgres_database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated database on the PostgreSQL server for this test session/worker."""
    from flight_fees_tests.pg import create_database, drop_database

    name = f"flight_fees_test_{_worker_suffix()}_{os.getpid()}"
    url = create_database(postgres_server_url, name)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    drop_database(postgres_server_url, name)


@pytest.fixture(scope="session")
def sqlite_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sqlite") / "billing.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _truncate(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty, migrated billing database; the test runs once per backend."""
    fixture = {"sqlite": "sqlite_database_url", "postgresql": "postgres_database_url"}
    url = request.getfixturevalue(fixture[request.param])
    engine = make_engine(url)
    _truncate(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def pg_engine(postgres_database_url: str) -> Iterator[Engine]:
    """PostgreSQL only (concurrency tests)."""
    eng = make_engine(postgres_database_url)
    _truncate(eng)
    yield eng
    eng.dispose()
