"""Fixtures of the track-source tests: a stand-in Pinot broker and a Parquet store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from flight_fees.lib.tracks import ParquetTrackSource, PinotTrackSource
from flight_fees_tests.pinot_broker import (
    StandInPinotBroker,
    synthetic_positions,
    write_parquet_store,
)


@pytest.fixture
def positions() -> pd.DataFrame:
    """Three flights of 40 points on 2024-03-01."""
    return synthetic_positions([101, 102, 103])


@pytest.fixture
def pinot_broker(positions: pd.DataFrame) -> Iterator[StandInPinotBroker]:
    """A running stand-in broker serving ``positions`` as table ``flight_positions``."""
    with StandInPinotBroker(positions) as broker:
        yield broker


@pytest.fixture
def make_broker() -> Iterator[Callable[..., StandInPinotBroker]]:
    """Start brokers over custom tables; all are stopped at teardown."""
    started: list[StandInPinotBroker] = []

    def make(table: pd.DataFrame, **kwargs: Any) -> StandInPinotBroker:
        broker = StandInPinotBroker(table, **kwargs).start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.close()


@pytest.fixture
def make_pinot_source() -> Iterator[Callable[..., PinotTrackSource]]:
    """PinotTrackSource factory with test-friendly defaults (no back-off sleeps)."""
    sources: list[PinotTrackSource] = []

    def make(url: str, **kwargs: Any) -> PinotTrackSource:
        kwargs.setdefault("backoff_s", 0.0)
        kwargs.setdefault("timeout_s", 5.0)
        source = PinotTrackSource(url, **kwargs)
        sources.append(source)
        return source

    yield make
    for source in sources:
        source.close()


@pytest.fixture
def parquet_store(tmp_path: Path, positions: pd.DataFrame) -> ParquetTrackSource:
    """A store with ``positions`` (day 2024-03-01) plus flight 201 on 2024-03-02."""
    other = synthetic_positions([201], start=pd.Timestamp("2024-03-02 08:00", tz="UTC"))
    write_parquet_store(pd.concat([positions, other], ignore_index=True), tmp_path / "tracks")
    return ParquetTrackSource(tmp_path / "tracks")
