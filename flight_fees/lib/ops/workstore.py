"""Run-scoped intermediate frames of the pipeline (tracks, crossings, zone visits, failures).

Each processing run writes its stage outputs as Parquet files keyed by stage, UTC day and run
id: ``<root>/<stage>/day=YYYY-MM-DD/<run_id>.parquet``, or, when a run streams its flights in
chunks, one file per chunk: ``<root>/<stage>/day=YYYY-MM-DD/<run_id>/part-00000.parquet``.
Two runs of the same day never read each other's flights, and analysts can open any stage of
any run with pandas or DuckDB (a chunked stage is a Parquet dataset directory).

The root is a local folder (``<home>/work``) or a folder of the shared storage
(``FLIGHT_FEES_STORAGE_URL``, e.g. ``s3://bucket/prefix/work``): a step running on another
machine reads the frames the previous step wrote (:mod:`flight_fees.lib.core.storage`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from flight_fees.lib.core.storage import (
    StoragePath,
    parquet_rows,
    read_parquet,
    remove_empty_dirs,
    write_parquet_atomic,
    write_text_atomic,
)

_SAFE = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class WorkStore:
    root: StoragePath

    def path(self, stage: str, day: dt.date, run_id: str, suffix: str = ".parquet") -> StoragePath:
        for part in (stage, run_id):
            if not _SAFE.match(part):
                raise ValueError(f"unsafe work-store key {part!r}")
        return self.root / stage / f"day={day.isoformat()}" / f"{run_id}{suffix}"

    def write_frame(
        self, stage: str, day: dt.date, run_id: str, frame: pd.DataFrame
    ) -> StoragePath:
        """Write atomically (temp file + rename, or one PUT): a crash never leaves a half file
        behind."""
        return write_parquet_atomic(self.path(stage, day, run_id), frame)

    def write_part(
        self, stage: str, day: dt.date, run_id: str, part: int, frame: pd.DataFrame
    ) -> StoragePath:
        """Write chunk ``part`` of a streamed stage, atomically."""
        folder = self.path(stage, day, run_id, "")
        return write_parquet_atomic(folder / f"part-{int(part):05d}.parquet", frame)

    def parts(self, stage: str, day: dt.date, run_ids: Iterable[str]) -> list[StoragePath]:
        """The files of ``stage`` of the first run id that has it (a re-execution reads its
        parent's): the chunk files of a streamed stage in order, or the one file."""
        tried = []
        for run_id in run_ids:
            folder = self.path(stage, day, run_id, "")
            if folder.is_dir():
                return sorted(folder.glob("part-*.parquet"))
            target = self.path(stage, day, run_id)
            if target.exists():
                return [target]
            tried.append(run_id)
        raise FileNotFoundError(
            f"no {stage!r} frame for {day} in runs {', '.join(tried)}; "
            f"materialize the upstream asset in this run first"
        )

    def count_rows(self, stage: str, day: dt.date, run_ids: Iterable[str]) -> int:
        """Rows of ``stage`` (all its chunks), from the Parquet footers alone."""
        return sum(parquet_rows(f) for f in self.parts(stage, day, run_ids))

    def read_frame(self, stage: str, day: dt.date, run_ids: Iterable[str]) -> pd.DataFrame:
        """The whole frame of the first run id that has one (chunks concatenated)."""
        files = self.parts(stage, day, run_ids)
        if len(files) == 1:
            return read_parquet(files[0])
        frames = [read_parquet(f) for f in files]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def write_json(
        self, stage: str, day: dt.date, run_id: str, payload: Mapping[str, Any]
    ) -> StoragePath:
        target = self.path(stage, day, run_id, ".json")
        return write_text_atomic(target, json.dumps(payload, indent=1, default=str))

    def read_json(self, stage: str, day: dt.date, run_ids: Iterable[str]) -> dict[str, Any] | None:
        """The JSON object :meth:`write_json` stored for the first of ``run_ids`` that has one."""
        for run_id in run_ids:
            target = self.path(stage, day, run_id, ".json")
            if target.exists():
                payload = json.loads(target.read_text())
                if not isinstance(payload, dict):
                    raise ValueError(f"{target}: not a JSON object")
                return payload
        return None

    def prune(self, older_than: dt.timedelta, *, now: dt.datetime | None = None) -> int:
        """Delete intermediate files older than ``older_than``; returns how many."""
        cutoff = ((now or dt.datetime.now(dt.UTC)) - older_than).timestamp()
        removed = 0
        if not self.root.exists():
            return 0
        for path in self.root.rglob("*"):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        remove_empty_dirs(self.root)  # chunk and day folders emptied above (local only)
        return removed
