from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pandas as pd
import pytest

from flight_fees.lib.core.storage import storage_path
from flight_fees.lib.ops.workstore import WorkStore

DAY = dt.date(2026, 10, 27)


def test_frames_are_run_scoped_and_parents_are_found(tmp_path):
    store = WorkStore(tmp_path)
    store.write_frame("tracks", DAY, "run-a", pd.DataFrame({"flight_id": [1, 2]}))
    store.write_frame("tracks", DAY, "run-b", pd.DataFrame({"flight_id": [3]}))
    assert store.read_frame("tracks", DAY, ["run-a"])["flight_id"].tolist() == [1, 2]
    # a re-execution (run-c) of run-b reads its parent's frame
    assert store.read_frame("tracks", DAY, ["run-c", "run-b"])["flight_id"].tolist() == [3]
    with pytest.raises(FileNotFoundError, match="materialize the upstream asset"):
        store.read_frame("tracks", DAY, ["run-z"])


def test_unsafe_keys_are_refused(tmp_path):
    with pytest.raises(ValueError):
        WorkStore(tmp_path).path("../etc", DAY, "run")


def test_prune_removes_old_files_only(tmp_path):
    store = WorkStore(tmp_path)
    old = store.write_frame("tracks", DAY, "old", pd.DataFrame({"a": [1]}))
    new = store.write_frame("tracks", DAY, "new", pd.DataFrame({"a": [1]}))
    ancient = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).timestamp()
    os.utime(old, (ancient, ancient))
    assert store.prune(dt.timedelta(days=14)) == 1
    assert not old.exists() and new.exists()


def test_chunked_stage_is_read_part_by_part_or_whole(tmp_path):
    store = WorkStore(tmp_path)
    store.write_part("tracks", DAY, "run-a", 1, pd.DataFrame({"flight_id": [3]}))
    store.write_part("tracks", DAY, "run-a", 0, pd.DataFrame({"flight_id": [1, 2]}))
    parts = store.parts("tracks", DAY, ["run-b", "run-a"])  # the parent's chunks, in order
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet"]
    assert [pd.read_parquet(p)["flight_id"].tolist() for p in parts] == [[1, 2], [3]]
    assert store.read_frame("tracks", DAY, ["run-a"])["flight_id"].tolist() == [1, 2, 3]
    # a single-file stage is one part
    store.write_frame("crossings", DAY, "run-a", pd.DataFrame({"flight_id": [9]}))
    assert len(store.parts("crossings", DAY, ["run-a"])) == 1
    # pruning old chunks removes the emptied folders too
    for p in parts:
        os.utime(p, (0, 0))
    assert store.prune(dt.timedelta(days=1)) == 2
    assert not (tmp_path / "tracks").exists()


_WRITER = """
import datetime as dt, sys
import pandas as pd
from flight_fees.lib.core.settings import paths
from flight_fees.lib.ops.workstore import WorkStore

store = WorkStore(paths().work)  # FLIGHT_FEES_STORAGE_URL, as a step on another machine
day = dt.date.fromisoformat(sys.argv[1])
store.write_part("tracks", day, "run-a", 0, pd.DataFrame({"flight_id": [1, 2]}))
store.write_part("tracks", day, "run-a", 1, pd.DataFrame({"flight_id": [3]}))
store.write_frame("crossings", day, "run-a", pd.DataFrame({"flight_id": [1, 3]}))
store.write_json("selection", day, "run-a", {"failed": [4]})
"""


def test_frames_written_by_another_process_are_read_from_s3(s3_storage_url, s3_server):
    """A step in another process (another machine in production) writes through
    ``s3://``; this process, with its own store object, reads them."""
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, DAY.isoformat()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    store = WorkStore(storage_path(s3_storage_url) / "work")
    parts = store.parts("tracks", DAY, ["run-b", "run-a"])
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet"]
    assert store.read_frame("tracks", DAY, ["run-a"])["flight_id"].tolist() == [1, 2, 3]
    assert store.count_rows("tracks", DAY, ["run-a"]) == 3
    assert store.read_frame("crossings", DAY, ["run-a"])["flight_id"].tolist() == [1, 3]
    assert store.read_json("selection", DAY, ["run-a"]) == {"failed": [4]}
    bucket = s3_storage_url.removeprefix("s3://").split("/")[0]
    assert s3_server.keys(bucket, "state/work/tracks/") == [
        f"state/work/tracks/day={DAY}/run-a/part-00000.parquet",
        f"state/work/tracks/day={DAY}/run-a/part-00001.parquet",
    ]
    # this process writes the next stage; a new store object (another step) reads it
    store.write_part("zone_visits", DAY, "run-a", 0, pd.DataFrame({"flight_id": [1]}))
    again = WorkStore(storage_path(s3_storage_url) / "work")
    assert again.read_frame("zone_visits", DAY, ["run-a"])["flight_id"].tolist() == [1]
    # pruning: nothing is older than a day; everything is older than "in two days"
    assert again.prune(dt.timedelta(days=1)) == 0
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert again.prune(dt.timedelta(days=1), now=later) == 5
    assert s3_server.keys(bucket) == []
