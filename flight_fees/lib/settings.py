"""Where flight_fees keeps its state, from the environment.

- ``FLIGHT_FEES_HOME``: the home directory (default ``./.flight_fees``): the embedded SQLite
  billing database, the embedded track store, maps, invoices and processing logs.
- ``FLIGHT_FEES_DATABASE_URL``: a SQLAlchemy URL of the billing database (PostgreSQL in
  production); default: the SQLite file ``<home>/billing.db``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "FLIGHT_FEES_HOME"
DATABASE_URL_ENV = "FLIGHT_FEES_DATABASE_URL"


def home_dir() -> Path:
    """The flight_fees home directory (not created here)."""
    return Path(os.environ.get(HOME_ENV) or Path.cwd() / ".flight_fees").resolve()


def database_url() -> str:
    """The billing database URL: ``FLIGHT_FEES_DATABASE_URL`` or the embedded SQLite file."""
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if url:
        return normalise_database_url(url)
    return f"sqlite:///{home_dir() / 'billing.db'}"


def normalise_database_url(url: str) -> str:
    """Pin PostgreSQL URLs to psycopg2 (the driver dagster-postgres also uses)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Paths:
    """Well-known locations below the home directory."""

    home: Path

    @property
    def tracks(self) -> Path:
        return self.home / "tracks"

    @property
    def maps(self) -> Path:
        return self.home / "maps"

    @property
    def invoices(self) -> Path:
        return self.home / "invoices"

    @property
    def logs(self) -> Path:
        return self.home / "processing_logs"

    @property
    def reference(self) -> Path:
        return self.home / "reference"


def paths() -> Paths:
    return Paths(home_dir())
