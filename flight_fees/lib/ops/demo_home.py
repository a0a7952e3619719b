"""What a demo home holds, and its reset (``flight-fees demo --reset``).

:func:`demo_home_state` reads, :func:`reset_demo_home` deletes; both name exactly the same
places, so what the command announces is what it removes:

- reset: the embedded database ``<home>/billing.db`` (with its ``-wal`` / ``-shm`` files),
  the track store ``<home>/tracks`` and every output of the pipeline under the storage root
  (``work``, ``maps``, ``invoices`` (with the credit notes), ``processing_logs``);
- kept: imported reference files ``<home>/reference`` (unit and FX rates: configuration, not
  data of the demo) and the derived cache ``<home>/cache``.

A place holds data when it has a file, or for the database a row in any table (a database
only migrated by ``flight-fees db upgrade`` is empty).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, func, inspect, select

from flight_fees.lib.core.settings import Paths
from flight_fees.lib.db import make_engine

#: suffixes of the embedded SQLite database's files
_DB_SUFFIXES = ("", "-wal", "-shm")
#: the schema version table: not data
_NOT_DATA_TABLES = frozenset({"alembic_version"})


@dataclass(frozen=True)
class HomePlace:
    """One place of the home: a folder (``files``, ``bytes``) or the database (``rows`` per
    table with rows, ``bytes`` of its files)."""

    path: str
    files: int = 0
    bytes: int = 0
    rows: Mapping[str, int] = field(default_factory=dict)

    @property
    def has_data(self) -> bool:
        return self.files > 0 or any(self.rows.values())


@dataclass(frozen=True)
class DemoHomeState:
    """The places a reset deletes (``reset``) and those it keeps (``kept``)."""

    reset: tuple[HomePlace, ...]
    kept: tuple[HomePlace, ...]

    @property
    def has_data(self) -> bool:
        """True when a reset would delete something."""
        return any(place.has_data for place in self.reset)


def _database_file(paths: Paths) -> Path:
    return paths.home / "billing.db"


def _reset_folders(paths: Paths) -> tuple[Any, ...]:
    return (paths.tracks, paths.work, paths.maps, paths.invoices, paths.logs)


def _kept_folders(paths: Paths) -> tuple[Path, ...]:
    return (paths.reference, paths.home / "cache")


def _folder(path: Any) -> HomePlace:
    """Files and bytes below ``path`` (a local Path or a storage path with the pathlib API)."""
    if not path.exists():
        return HomePlace(str(path))
    files = [p for p in path.rglob("*") if p.is_file()]
    return HomePlace(str(path), files=len(files), bytes=sum(p.stat().st_size for p in files))


def _database(db: Path) -> HomePlace:
    """Rows per table of the embedded database; never creates the file."""
    size = sum(f.stat().st_size for f in (Path(f"{db}{s}") for s in _DB_SUFFIXES) if f.exists())
    if not db.exists():
        return HomePlace(str(db))
    engine = make_engine(f"sqlite:///{db}")
    try:
        names = sorted(set(inspect(engine).get_table_names()) - _NOT_DATA_TABLES)
        meta = MetaData()
        meta.reflect(engine, only=names)
        with engine.connect() as conn:
            counts = {
                name: conn.execute(select(func.count()).select_from(meta.tables[name])).scalar_one()
                for name in names
            }
    finally:
        engine.dispose()
    return HomePlace(str(db), bytes=size, rows={k: int(v) for k, v in counts.items() if v})


def demo_home_state(paths: Paths) -> DemoHomeState:
    """What the home holds: the places :func:`reset_demo_home` deletes and those it keeps."""
    return DemoHomeState(
        reset=(_database(_database_file(paths)), *map(_folder, _reset_folders(paths))),
        kept=tuple(map(_folder, _kept_folders(paths))),
    )


def _remove_tree(path: Any) -> None:
    if isinstance(path, Path):
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():  # a storage path (fsspec): no rmtree, the filesystem removes
        path.fs.rm(path.path, recursive=True)


def reset_demo_home(paths: Paths) -> DemoHomeState:
    """Delete the embedded database, the track store and the pipeline's outputs (see the
    module docstring); returns the state just before, i.e. what was deleted."""
    before = demo_home_state(paths)
    db = _database_file(paths)
    for suffix in _DB_SUFFIXES:
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    for folder in _reset_folders(paths):
        _remove_tree(folder)
    return before
