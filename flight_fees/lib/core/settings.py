"""Where flight_fees keeps its state, from the environment.

- ``FLIGHT_FEES_HOME``: the home directory (default ``./.flight_fees``): the embedded SQLite
  billing database, the embedded track store, maps, invoices and processing logs.
- ``FLIGHT_FEES_DATABASE_URL``: a SQLAlchemy URL of the billing database (PostgreSQL in
  production); default: the SQLite file ``<home>/billing.db``.
- ``FLIGHT_FEES_FIR_SET``: the shipped airspace used when no FIR / zone file is given:
  ``world`` (default: EUROCONTROL EAD world FIRs with ``charging_zones_world.yaml``) or
  ``europe`` (the 58 European FIRs with ``charging_zones.yaml``); see
  ``flight_fees.lib.airspace.firs.default_fir_set``.
- ``FLIGHT_FEES_STORAGE_URL``: the shared storage of run frames, maps, invoice documents and
  processing logs, by URL (``s3://bucket/prefix``; a local path or ``file://`` URL); default:
  the home. See ``flight_fees.lib.core.storage``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flight_fees.lib.core.storage import StoragePath

HOME_ENV = "FLIGHT_FEES_HOME"
DATABASE_URL_ENV = "FLIGHT_FEES_DATABASE_URL"
FIR_SET_ENV = "FLIGHT_FEES_FIR_SET"
STORAGE_URL_ENV = "FLIGHT_FEES_STORAGE_URL"
#: Names accepted by ``FLIGHT_FEES_FIR_SET``; the first is the default.
FIR_SET_NAMES = ("world", "europe")

#: the installed package and the files shipped with it (reference data, templates, static
#: assets for maps, Alembic migrations): one place, whatever module asks
PACKAGE_DIR = Path(__file__).resolve().parents[2]
DATA_DIR = PACKAGE_DIR / "data"
TEMPLATE_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"


def home_dir() -> Path:
    """The flight_fees home directory (not created here)."""
    return Path(os.environ.get(HOME_ENV) or Path.cwd() / ".flight_fees").resolve()


def database_url() -> str:
    """The billing database URL: ``FLIGHT_FEES_DATABASE_URL`` or the embedded SQLite file."""
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if url:
        return normalise_database_url(url)
    return f"sqlite:///{home_dir() / 'billing.db'}"


def storage_url() -> str | None:
    """``FLIGHT_FEES_STORAGE_URL`` (stripped), or None: the shared storage is the home."""
    return os.environ.get(STORAGE_URL_ENV, "").strip() or None


def fir_set_name() -> str:
    """The shipped airspace selected by ``FLIGHT_FEES_FIR_SET`` (lower-cased, stripped;
    unset or empty = ``world``). Unknown names are returned as given (the caller rejects
    them)."""
    return os.environ.get(FIR_SET_ENV, "").strip().lower() or FIR_SET_NAMES[0]


def normalise_database_url(url: str) -> str:
    """Pin PostgreSQL URLs to psycopg2 (the driver dagster-postgres also uses)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Paths:
    """Well-known locations: the home directory (embedded database and track store, imported
    reference files) and the shared storage (run frames, maps, documents, processing logs),
    which is the home unless ``storage_url`` names another root."""

    home: Path
    storage_url: str | None = None

    @property
    def storage(self) -> StoragePath:
        """The shared storage root: a local :class:`~pathlib.Path` (the home by default) or
        a :class:`upath.UPath` (``s3://...``)."""
        if not self.storage_url:
            return self.home
        from flight_fees.lib.core.storage import storage_path

        return storage_path(self.storage_url)

    @property
    def tracks(self) -> Path:
        return self.home / "tracks"

    @property
    def work(self) -> StoragePath:
        return self.storage / "work"

    @property
    def maps(self) -> StoragePath:
        return self.storage / "maps"

    @property
    def invoices(self) -> StoragePath:
        return self.storage / "invoices"

    @property
    def logs(self) -> StoragePath:
        return self.storage / "processing_logs"

    @property
    def reference(self) -> Path:
        return self.home / "reference"


def paths() -> Paths:
    return Paths(home_dir(), storage_url())
