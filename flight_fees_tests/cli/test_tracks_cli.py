"""``flight-fees tracks`` (registered here in a throwaway typer app)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from flight_fees.cli.tracks import tracks_command
from flight_fees_tests.pinot_broker import (
    StandInPinotBroker,
    synthetic_positions,
    write_parquet_store,
)

app = typer.Typer()


@app.callback()
def _group() -> None:
    """A command group, as in the real ``flight-fees`` app."""


app.command("tracks")(tracks_command)
runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    frame = synthetic_positions({11: 30, 12: 30, 13: 5})
    frame.loc[frame.index[40], "lat"] += 6.0  # one teleport in flight 12
    root = tmp_path / "tracks"
    write_parquet_store(frame, root)
    return root


def _run(*args: str):
    return runner.invoke(app, ["tracks", *args], env={"COLUMNS": "200"})


def test_parquet_flights_table_and_csv_output(store: Path, tmp_path: Path):
    out = tmp_path / "out" / "points.csv"
    result = _run("11", "12", "--day", "2024-03-01", "--store", str(store), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "tracks from parquet" in result.output
    assert "teleport -1" in result.output and "clean" in result.output
    assert "2 flights, 2 ok, 0 failed" in result.output
    written = pd.read_csv(out)
    assert written.groupby("flight_id").size().to_dict() == {11: 30, 12: 29}
    assert pd.to_datetime(written["ts"], utc=True).iloc[0] == pd.Timestamp(
        "2024-03-01 10:00:00.123", tz="UTC"
    )


def test_failures_give_a_non_zero_exit(store: Path, tmp_path: Path):
    out = tmp_path / "points.parquet"
    result = _run("11", "13", "99", "--store", str(store), "-o", str(out), "--raw")
    assert result.exit_code == 1
    assert "not_found" in result.output and "bad_track" in result.output
    assert "3 flights, 1 ok, 2 failed" in result.output
    raw = pd.read_parquet(out)
    assert sorted(raw["flight_id"].unique()) == [11, 13]  # --raw: as fetched


def test_whole_day(store: Path):
    result = _run("--day", "2024-03-01", "--store", str(store))
    assert result.exit_code == 1  # flight 13 has too few points
    assert "3 flights, 2 ok, 1 failed" in result.output


@pytest.mark.parametrize(
    "args",
    [["abc"], [], ["1", "--day", "2024-13-01"], ["1", "-o", "x.txt"], ["1", "--source", "kafka"]],
)
def test_usage_errors(args: list[str], store: Path):
    result = _run(*args, "--store", str(store))
    assert result.exit_code == 2


def test_pinot_is_the_default_when_configured(monkeypatch: pytest.MonkeyPatch):
    positions = synthetic_positions([21, 22], points=15)
    positions.loc[3, "lat"] = -np.inf
    with StandInPinotBroker(positions) as broker:
        monkeypatch.setenv("PINOT_HTTP_BROKER_URL", broker.url)
        result = _run("21", "22", "23", "--day", "2024-03-01")
    assert result.exit_code == 1
    assert "tracks from pinot" in result.output
    assert "2 ok, 1 failed" in result.output and "not_found" in result.output
    assert all(q.limit is not None for q in broker.queries)


def test_unreachable_pinot_is_reported(monkeypatch: pytest.MonkeyPatch):
    from flight_fees_tests.pinot_broker import closed_port

    monkeypatch.setenv("PINOT_HTTP_BROKER_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("PINOT_RETRIES", "0")
    result = _run("21", "--source", "pinot")
    assert result.exit_code == 1 and "source_unavailable" in result.output
