"""Find or start a PostgreSQL server for the tests (no Dagster, no fixtures here)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from flight_fees.lib.core.settings import normalise_database_url

ENV_URL = "FLIGHT_FEES_TEST_POSTGRES_URL"
LOCAL_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


class PostgresUnavailable(RuntimeError):
    pass


def _answers(url: str) -> str | None:
    """None when ``url`` accepts a connection, else the error text."""
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # driver errors vary
        return str(exc).strip().splitlines()[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _throwaway_cluster() -> Iterator[str]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    initdb = shutil.which("initdb") or (bins[-1] if bins else None)
    if not initdb:
        raise PostgresUnavailable("no initdb binary found")
    bindir = os.path.dirname(initdb)
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        if not shutil.which("runuser"):
            raise PostgresUnavailable("running as root and no runuser to drop privileges")
        prefix = ["runuser", "-u", "postgres", "--"]
    datadir = tempfile.mkdtemp(prefix="ff_pg_")
    if prefix:
        shutil.chown(datadir, "postgres")
    port = _free_port()
    try:
        subprocess.run(
            [*prefix, initdb, "-D", datadir, "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *prefix,
                os.path.join(bindir, "pg_ctl"),
                "-D",
                datadir,
                "-w",
                "-l",
                os.path.join(datadir, "log"),
                "-o",
                f"-p {port} -k {datadir} -h 127.0.0.1",
                "start",
            ],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        raise PostgresUnavailable(f"throwaway cluster failed: {exc.stderr!r}") from exc
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, os.path.join(bindir, "pg_ctl"), "-D", datadir, "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(datadir, ignore_errors=True)


@contextlib.contextmanager
def provide_postgres_server() -> Iterator[str]:
    """Yield a URL of a maintenance database (``postgres``) on a usable server."""
    env_url = os.environ.get(ENV_URL)
    if env_url:
        url = normalise_database_url(env_url)
        error = _answers(url)
        if error:
            raise PostgresUnavailable(f"{ENV_URL}={env_url} does not answer: {error}")
        yield url
        return
    if _answers(LOCAL_URL) is None:
        yield LOCAL_URL
        return
    with _throwaway_cluster() as url:
        yield url


def _admin(server_url: str, sql: str) -> None:
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


def create_database(server_url: str, name: str) -> str:
    _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(server_url, f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
