"""The crossing engine at DEFAULT settings on real ADS-B tracks, against the slow reference.

Data: ``flight_fees_tests/data/adsb/switzerland_sample.parquet`` (622 real flights, OpenSky
ADS-B via the MIT-licensed ``traffic`` wheel; see the README beside it). Reference:
:mod:`flight_fees_tests.lib.airspace.crossing_reference` (point labelling + exact segment/boundary
intersection + linear time interpolation; no code shared with the engine).

Acceptance (issue 9): at least 99 % of the reference visits of 2 minutes or more are matched
by an engine visit of the same FIR with entry and exit within 2 s, and none of them is
missing (no engine visit of that FIR overlaps it).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flight_fees.lib.airspace.crossings import NOISE_TOLERANCE_M, compute_crossings
from flight_fees.lib.airspace.firs import load_firs
from flight_fees_tests.lib.airspace.crossing_reference import compare, reference_visits

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "adsb" / "switzerland_sample.parquet"
MIN_DURATION_S = 120.0
TOLERANCE_S = 2.0


@pytest.fixture(scope="module")
def tracks() -> pd.DataFrame:
    return pd.read_parquet(SAMPLE)


@pytest.fixture(scope="module")
def firs() -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_firs()


@pytest.fixture(scope="module")
def reference(tracks: pd.DataFrame, firs: pd.DataFrame) -> list:
    return reference_visits(tracks, firs)


def test_sample_is_real_and_border_rich(tracks: pd.DataFrame, reference: list) -> None:
    assert tracks["flight_id"].nunique() == 622
    assert len(tracks) == 70_024
    long_visits = [v for v in reference if v.duration_s >= MIN_DURATION_S]
    assert len(long_visits) > 1_000
    assert len({v.fir_id for v in long_visits}) >= 6


def test_engine_defaults_match_the_reference(
    tracks: pd.DataFrame, firs: pd.DataFrame, reference: list
) -> None:
    engine = compute_crossings(tracks, firs)  # defaults: what bills
    result = compare(reference, engine, min_duration_s=MIN_DURATION_S, tolerance_s=TOLERANCE_S)
    assert result.missing == []
    assert result.match_rate >= 0.99, (result.match_rate, result.unmatched[:10])
    # the noise merge is visible
    assert engine["merged_excursions"].sum() > 0


def test_nothing_merged_is_exact(tracks: pd.DataFrame, firs: pd.DataFrame, reference: list) -> None:
    exact = compute_crossings(tracks, firs, noise_tolerance_m=0)
    result = compare(reference, exact, min_duration_s=MIN_DURATION_S, tolerance_s=TOLERANCE_S)
    assert result.missing == [] and result.unmatched == []
    assert exact["merged_excursions"].sum() == 0


def test_time_merge_loses_real_visits_which_is_why_it_is_not_the_default(
    tracks: pd.DataFrame, firs: pd.DataFrame, reference: list
) -> None:
    timed = compute_crossings(tracks, firs, jitter_s=60)
    result = compare(reference, timed, min_duration_s=MIN_DURATION_S, tolerance_s=TOLERANCE_S)
    assert result.match_rate < 0.9


def test_cli_without_tuning_flags_gives_the_same_visits(
    tmp_path: Path, tracks: pd.DataFrame, firs: pd.DataFrame, reference: list
) -> None:
    from flight_fees.cli.main import app

    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["crossings", str(SAMPLE), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "merged as position noise" in result.output
    got = pd.read_csv(out, parse_dates=["entry_time", "exit_time"])
    engine = compute_crossings(tracks, firs, noise_tolerance_m=NOISE_TOLERANCE_M)
    assert got["fir_id"].tolist() == engine["fir_id"].tolist()
    assert got["merged_excursions"].tolist() == engine["merged_excursions"].tolist()
    delta = (got["exit_time"] - engine["exit_time"]).abs().max()
    assert delta <= pd.Timedelta(milliseconds=1)  # CSV keeps milliseconds
    cli = compare(reference, got, min_duration_s=MIN_DURATION_S, tolerance_s=TOLERANCE_S)
    assert cli.missing == [] and cli.match_rate >= 0.99
