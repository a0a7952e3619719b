from __future__ import annotations

import datetime as dt
import json

from flight_fees.lib.ops.audit import FlightTiming, ProcessingLog, write_processing_log


def test_processing_log_is_written_and_only_the_latest_are_kept(tmp_path):
    t0 = dt.datetime(2026, 10, 27, 8, tzinfo=dt.UTC)
    for i in range(105):
        log = ProcessingLog(batch_id=f"b{i:03d}", started_at=t0 + dt.timedelta(minutes=i))
        log.processed = [FlightTiming(flight_id=i, fee_lines=2, seconds=0.01)]
        log.failed = [{"flight_id": 10_000 + i, "category": "not_found", "message": "no rows"}]
        log.finished_at = log.started_at + dt.timedelta(seconds=3)
        path = write_processing_log(log, tmp_path, keep=100)
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 100
    assert files[0].name.endswith("_b005.json")  # the five oldest are gone
    data = json.loads(path.read_text())
    assert data["batch_id"] == "b104"
    assert data["processed"] == [{"flight_id": 104, "fee_lines": 2, "seconds": 0.01}]
    assert data["failed"][0]["category"] == "not_found"
    assert data["started_at"] < data["finished_at"]
    assert not list(tmp_path.glob("*.tmp"))


def test_processing_logs_go_to_the_shared_storage(s3_storage_url, s3_server):
    from flight_fees.lib.core.settings import paths
    from flight_fees.lib.core.storage import storage_path

    t0 = dt.datetime(2026, 10, 27, 8, tzinfo=dt.UTC)
    for i in range(5):
        log = ProcessingLog(batch_id=f"b{i}", started_at=t0 + dt.timedelta(minutes=i))
        path = write_processing_log(log, paths().logs, keep=3)
    assert str(path) == f"{s3_storage_url}/processing_logs/20261027T080400000000Z_b4.json"
    bucket = s3_storage_url.removeprefix("s3://").split("/")[0]
    assert s3_server.keys(bucket) == [
        f"state/processing_logs/20261027T08{m:02d}00000000Z_b{m}.json" for m in (2, 3, 4)
    ]
    again = storage_path(s3_storage_url) / "processing_logs" / path.name
    assert json.loads(again.read_text())["batch_id"] == "b4"
