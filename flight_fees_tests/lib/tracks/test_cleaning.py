"""clean_tracks: duplicates, ranges, teleports (greedy rule), gaps, minimum points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flight_fees.lib.tracks import BAD_TRACK, clean_tracks
from flight_fees.lib.tracks.cleaning import REPORT_COLUMNS, _greedy_teleports, haversine_nm
from flight_fees_tests.pinot_broker import synthetic_positions


def _report(result, flight_id: int) -> dict:
    return result.report.set_index("flight_id").loc[flight_id].to_dict()


def test_clean_track_passes_unchanged():
    tracks = synthetic_positions([1, 2], points=30)
    result = clean_tracks(tracks)
    pd.testing.assert_frame_equal(result.tracks, tracks)
    assert list(result.report.columns) == list(REPORT_COLUMNS)
    assert result.report["points_out"].tolist() == [30, 30]
    assert result.report["max_gap_s"].tolist() == [5.0, 5.0]
    assert result.failures == {}


def test_sorts_and_drops_duplicates_and_out_of_range():
    tracks = synthetic_positions([1], points=20)
    dup = tracks.iloc[[3, 3]]  # repeated reports of one position
    broken = tracks.iloc[[5, 6, 7, 8]].copy()
    broken["ts"] = broken["ts"] + pd.Timedelta(milliseconds=1)
    broken.loc[broken.index[0], "lat"] = 91.0
    broken.loc[broken.index[1], "lon"] = np.nan
    broken.loc[broken.index[2], ["lat", "lon"]] = 0.0
    broken.loc[broken.index[3], "ts"] = pd.NaT
    messy = pd.concat([tracks, dup, broken]).sample(frac=1.0, random_state=3)
    original = messy.copy()

    result = clean_tracks(messy)
    pd.testing.assert_frame_equal(messy, original)  # input untouched
    pd.testing.assert_frame_equal(result.tracks, tracks)
    report = _report(result, 1)
    assert report["points_in"] == 26 and report["points_out"] == 20
    assert report["duplicates_dropped"] == 2 and report["out_of_range_dropped"] == 4


def test_first_row_of_a_timestamp_is_kept():
    tracks = synthetic_positions([1], points=12)
    second = tracks.iloc[[4]].assign(alt_ft=1.0)
    both = pd.concat([tracks.iloc[:5], second, tracks.iloc[5:]], ignore_index=True)
    result = clean_tracks(both)
    assert _report(result, 1)["duplicates_dropped"] == 1
    pd.testing.assert_frame_equal(result.tracks, tracks)


def test_teleports_spike_cluster_and_tail_are_dropped():
    tracks = synthetic_positions([1], points=40)
    bad = tracks.copy()
    bad.loc[10, "lat"] += 5.0  # a spike
    bad.loc[20:22, "lon"] += 8.0  # a cluster of three consistent wrong points
    bad.loc[39, "lat"] -= 3.0  # a bad last point
    result = clean_tracks(bad)
    assert _report(result, 1)["teleports_dropped"] == 5
    pd.testing.assert_frame_equal(
        result.tracks, tracks.drop(index=[10, 20, 21, 22, 39]).reset_index(drop=True)
    )


def test_a_bad_first_point_does_not_eat_the_track():
    tracks = synthetic_positions([1], points=30)
    bad = tracks.copy()
    bad.loc[0, "lat"] += 10.0
    result = clean_tracks(bad)
    report = _report(result, 1)
    assert report["teleports_dropped"] == 1 and report["points_out"] == 29
    pd.testing.assert_frame_equal(result.tracks, tracks.iloc[1:].reset_index(drop=True))


def test_speed_threshold_is_respected():
    # two points 0.5 degree of latitude (30 NM) apart in 60 s: 1800 kt
    tracks = pd.DataFrame(
        {
            "flight_id": [1, 1, 1],
            "ts": pd.to_datetime(
                ["2024-03-01 10:00", "2024-03-01 10:01", "2024-03-01 10:10"], utc=True
            ),
            "lat": [45.0, 45.5, 45.5],
            "lon": [5.0, 5.0, 5.0],
            "alt_ft": [1.0, 2.0, 3.0],
        }
    )
    assert clean_tracks(tracks, min_points=1).report["teleports_dropped"].item() == 1
    assert (
        clean_tracks(tracks, min_points=1, max_speed_kt=2000).report["teleports_dropped"].item()
        == 0
    )


def test_gaps_are_counted_not_filled():
    tracks = synthetic_positions([1], points=30)
    tracks.loc[10:, "ts"] += pd.Timedelta(minutes=15)
    tracks.loc[20:, "ts"] += pd.Timedelta(minutes=30)
    # keep the implied speed plausible across the gaps
    result = clean_tracks(tracks, max_gap_s=600)
    report = _report(result, 1)
    assert report["gaps"] == 2 and report["max_gap_s"] == pytest.approx(30 * 60 + 5)
    assert report["points_out"] == 30


def test_too_few_points_is_a_bad_track():
    tracks = synthetic_positions({1: 30, 2: 9, 3: 12})
    tracks.loc[tracks.index[-12:-9], "lat"] = np.nan  # flight 3 left with 9 points
    result = clean_tracks(tracks, min_points=10)
    assert sorted(result.failures) == [2, 3]
    assert (
        result.failures[2].category == BAD_TRACK and "9 usable points" in result.failures[2].message
    )
    assert result.tracks["flight_id"].unique().tolist() == [1]
    assert result.report.set_index("flight_id")["too_few_points"].to_dict() == {
        1: False,
        2: True,
        3: True,
    }


def test_empty_input():
    empty = synthetic_positions([1], points=1).iloc[0:0]
    result = clean_tracks(empty)
    assert result.tracks.empty and result.report.empty and result.failures == {}
    assert list(result.report.columns) == list(REPORT_COLUMNS)


def _sequential_reference(group, t_s, lat, lon, max_kt):
    """The rule spelt out point by point: drop if too fast from the last kept point."""
    drop = np.zeros(group.size, bool)
    last = 0
    for i in range(group.size):
        if i == 0 or group[i] != group[i - 1]:
            last = i
            continue
        speed = haversine_nm(lat[last], lon[last], lat[i], lon[i]) / ((t_s[i] - t_s[last]) / 3600)
        if speed > max_kt:
            drop[i] = True
        else:
            last = i
    return drop


def test_vectorised_teleport_rule_matches_the_sequential_rule():
    rng = np.random.default_rng(7)
    for _ in range(150):
        sizes = rng.integers(1, 50, rng.integers(1, 5))
        group = np.repeat(np.arange(sizes.size), sizes)
        n = group.size
        t_s = np.cumsum(rng.uniform(1, 30, n))
        lat = np.radians(45 + np.cumsum(rng.normal(0, 0.02, n)))
        lon = np.radians(5 + np.cumsum(rng.normal(0, 0.02, n)))
        noisy = rng.random(n) < rng.uniform(0, 0.5)
        lat[noisy] += np.radians(rng.normal(0, 3, noisy.sum()))
        if n > 10:  # a block of consistent wrong points
            s = rng.integers(0, n - 8)
            lat[s : s + rng.integers(1, 8)] += np.radians(5)
        got = _greedy_teleports(group, t_s, lat, lon, 1200.0)
        np.testing.assert_array_equal(got, _sequential_reference(group, t_s, lat, lon, 1200.0))


def test_a_frame_without_any_usable_position_is_reported_not_a_crash() -> None:
    frame = pd.DataFrame(
        {
            "flight_id": [7, 7, 7],
            "ts": pd.to_datetime(["2024-03-01T10:00:00Z"] * 3),
            "lat": [50.0, 95.0, np.nan],
            "lon": [545.0, 5.0, 5.0],
            "alt_ft": np.nan,
        }
    )
    result = clean_tracks(frame)
    assert result.tracks.empty
    assert result.report[["out_of_range_dropped", "duplicates_dropped"]].values.tolist() == [[3, 0]]
    assert {f: x.category for f, x in result.failures.items()} == {7: BAD_TRACK}
