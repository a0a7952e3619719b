"""Processing logs: one JSON audit file per processing batch, the latest ``keep`` kept."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from flight_fees.lib.core.storage import StoragePath, write_text_atomic


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


def write_processing_log(
    log: ProcessingLog, directory: StoragePath, *, keep: int = 100
) -> StoragePath:
    """Write ``log`` atomically as ``<started>_<batch_id>.json`` in ``directory`` (a local
    folder or a folder of the shared storage, :mod:`flight_fees.lib.core.storage`) and keep
    the latest ``keep``."""
    stamp = log.started_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = write_text_atomic(
        directory / f"{stamp}_{log.batch_id}.json",
        json.dumps(log.to_dict(), indent=1, default=str),
    )
    logs: list[StoragePath] = sorted(directory.glob("*.json"), key=lambda p: p.name)
    for old in logs[: max(0, len(logs) - keep)]:
        old.unlink(missing_ok=True)
    return target
