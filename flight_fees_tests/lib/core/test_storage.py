"""Shared storage addressed by URL (``FLIGHT_FEES_STORAGE_URL``): a local folder by default,
with the home's folders unchanged; ``s3://`` against moto's S3 server (a protocol stand-in,
``flight_fees_tests/s3_server.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from flight_fees.lib.core import settings
from flight_fees.lib.core.storage import (
    confined,
    is_local,
    parquet_rows,
    read_parquet,
    storage_path,
    write_bytes_atomic,
    write_parquet_atomic,
    write_text_atomic,
)


def test_default_is_the_home_with_its_folders_unchanged(monkeypatch, tmp_path):
    monkeypatch.delenv(settings.STORAGE_URL_ENV, raising=False)
    monkeypatch.setenv(settings.HOME_ENV, str(tmp_path / "home"))
    p = settings.paths()
    home = (tmp_path / "home").resolve()
    assert p.storage == home and is_local(p.storage)
    assert (p.work, p.maps, p.invoices, p.logs) == (
        home / "work",
        home / "maps",
        home / "invoices",
        home / "processing_logs",
    )
    assert (p.tracks, p.reference) == (home / "tracks", home / "reference")


@pytest.mark.parametrize("form", ["path", "file-url"])
def test_a_local_url_is_a_plain_path(monkeypatch, tmp_path, form):
    shared = tmp_path / "shared"
    monkeypatch.setenv(settings.STORAGE_URL_ENV, str(shared) if form == "path" else shared.as_uri())
    p = settings.paths()
    assert type(p.storage) is type(Path()) and p.storage == shared.resolve()
    assert p.logs == shared.resolve() / "processing_logs"
    assert p.tracks == settings.home_dir() / "tracks"  # the track store stays in the home


def test_local_writes_are_atomic_and_leave_no_temp_files(tmp_path):
    target = tmp_path / "a" / "b" / "frame.parquet"
    write_parquet_atomic(target, pd.DataFrame({"x": [1, 2, 3]}))
    write_text_atomic(tmp_path / "a" / "note.json", "{}")
    write_bytes_atomic(tmp_path / "a" / "doc.pdf", b"%PDF")
    assert parquet_rows(target) == 3 and read_parquet(target)["x"].tolist() == [1, 2, 3]
    names = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert names == ["doc.pdf", "frame.parquet", "note.json"]


def test_a_failed_local_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "frame.parquet"
    write_parquet_atomic(target, pd.DataFrame({"x": [1]}))

    class Broken(pd.DataFrame):
        def to_parquet(self, *args, **kwargs):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(target, Broken({"x": [2]}))
    assert read_parquet(target)["x"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["frame.parquet"]


def test_confined_refuses_names_that_leave_the_root(tmp_path):
    assert confined(tmp_path, "a.json") == (tmp_path / "a.json").resolve()
    for parts in (("..",), ("a/../../x",), ("",), (".",), ("a", "..")):
        with pytest.raises(ValueError):
            confined(tmp_path, *parts)


def test_s3_url_is_an_object_store_root(s3_storage_url, s3_server):
    p = settings.paths()
    assert not is_local(p.storage) and str(p.storage) == s3_storage_url
    assert str(p.invoices) == f"{s3_storage_url}/invoices"
    assert p.tracks == settings.home_dir() / "tracks"
    target = p.work / "tracks" / "day=2026-01-05" / "run-a.parquet"
    write_parquet_atomic(target, pd.DataFrame({"flight_id": [1, 2]}))
    write_text_atomic(p.logs / "one.json", '{"ok": true}')
    bucket = s3_storage_url.removeprefix("s3://").split("/")[0]
    assert s3_server.keys(bucket) == [
        "state/processing_logs/one.json",
        "state/work/tracks/day=2026-01-05/run-a.parquet",
    ]
    # another path object (as in another process) reads what this one wrote
    again = storage_path(s3_storage_url)
    assert parquet_rows(again / "work/tracks/day=2026-01-05/run-a.parquet") == 2
    assert (again / "processing_logs" / "one.json").read_text() == '{"ok": true}'
    assert confined(again / "processing_logs", "one.json").read_text() == '{"ok": true}'
    for parts in (("..",), ("a/../../x",), ("",)):
        with pytest.raises(ValueError):
            confined(again / "processing_logs", *parts)


def test_another_process_reads_what_this_one_wrote(s3_storage_url):
    write_parquet_atomic(storage_path(s3_storage_url) / "x.parquet", pd.DataFrame({"v": [7]}))
    code = (
        "import sys; from flight_fees.lib.core.storage import read_parquet, storage_path;"
        "print(read_parquet(storage_path(sys.argv[1]) / 'x.parquet')['v'].sum())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, s3_storage_url], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "7"
