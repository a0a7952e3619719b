"""Processing logs: one JSON audit file per processing batch, the latest ``keep`` kept."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class FlightTiming:
    flight_id: int
    fee_lines: int
    seconds: float


@dataclass
class ProcessingLog:
    batch_id: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    run_id: str | None = None
    partition_key: str | None = None
    processed: list[FlightTiming] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)  # flight_id, category, message
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return data


def write_processing_log(log: ProcessingLog, directory: Path, *, keep: int = 100) -> Path:
    """Write ``log`` atomically as ``<started>_<batch_id>.json`` and keep the latest ``keep``."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = log.started_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = directory / f"{stamp}_{log.batch_id}.json"
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(log.to_dict(), handle, indent=1, default=str)
    os.replace(tmp, target)
    logs = sorted(directory.glob("*.json"))
    for old in logs[: max(0, len(logs) - keep)]:
        old.unlink(missing_ok=True)
    return target
