from __future__ import annotations

import datetime as dt
import os

import pandas as pd
import pytest

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
