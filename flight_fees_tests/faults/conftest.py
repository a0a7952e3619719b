"""Fixtures of the fault suite: the scenario day and its fault-free bill, and fresh stacks.

The day: ``generate_demo`` flights of one UTC day in a Parquet track store, customers and
aircraft loaded with ``flight_fees.lib.ops.registry``. The fault-free bill: the same three
processing assets materialized in this process (no daemon, no fault) on a fresh PostgreSQL
database. Every scenario gets its own billing and Dagster databases (dropped afterwards) and
its own services, killed in teardown.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from flight_fees.lib.db import make_engine, upgrade
from flight_fees.lib.db.models import FeeLine
from flight_fees.lib.ops.demo import generate_demo
from flight_fees.lib.ops.registry import load_aircraft, load_customers
from flight_fees.lib.tracks.store import write_track_store
from flight_fees_tests.faults.stack import ROOT, Stack
from flight_fees_tests.pg import create_database, drop_database

DAY = dt.date(2026, 10, 27)
N_FLIGHTS = 16
#: two runs per claim: a fault can hit one run while its sibling is waiting or running
PER_RUN = 8
RECOVERY_FILE = ROOT / "test-artifacts" / "faults" / "recovery.json"
#: one scenario at a time on this machine, whatever the test distribution
LOCK_FILE = Path(tempfile.gettempdir()) / "flight_fees_faults.lock"

#: (flight_id, line_no, zone_id, billing_amount, billing_currency)
Line = tuple[int, int, str, Decimal, str]


@dataclasses.dataclass(frozen=True)
class FaultDay:
    tracks: Path
    cache_dir: Path
    flight_ids: list[int]
    customers: pd.DataFrame
    aircraft: pd.DataFrame
    #: the fault-free bill, sorted
    lines: list[Line]


def fee_lines(engine: Any) -> list[Line]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                FeeLine.flight_id,
                FeeLine.line_no,
                FeeLine.zone_id,
                FeeLine.billing_amount,
                FeeLine.billing_currency,
            ).order_by(FeeLine.flight_id, FeeLine.line_no)
        ).all()
    return [(int(f), int(n), z, Decimal(a), c) for f, n, z, a, c in rows]


def _new_database(server_url: str, stem: str) -> tuple[str, str]:
    name = f"ff_faults_{stem}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    return name, create_database(server_url, name)


def _prepare_billing(url: str, day: FaultDay) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
        load_customers(engine, day.customers)
        load_aircraft(engine, day.aircraft)
    finally:
        engine.dispose()


def _fault_free_bill(url: str, tracks: Path, home: Path, flight_ids: list[int]) -> list[Line]:
    import dagster as dg

    from flight_fees.defs.processing.assets import fee_lines as fee_lines_asset
    from flight_fees.defs.processing.assets import fir_crossings, flight_tracks
    from flight_fees.defs.resources import (
        BillingDatabase,
        PipelineSettings,
        ReferenceData,
        TrackStore,
        Workspace,
    )

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [flight_tracks, fir_crossings, fee_lines_asset],
            partition_key=DAY.isoformat(),
            run_config={"ops": {"flight_tracks": {"config": {"flight_ids": flight_ids}}}},
            resources={
                "billing": BillingDatabase(url=url),
                "track_store": TrackStore(kind="parquet", parquet_root=str(tracks)),
                "reference": ReferenceData(),
                "workspace": Workspace(home=str(home)),
                "settings": PipelineSettings(),
            },
            instance=instance,
            selection=["flight_tracks", "fir_crossings", "fee_lines"],
        )
    assert result.success
    engine = make_engine(url)
    try:
        return fee_lines(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def fault_day(
    postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultDay]:
    root = tmp_path_factory.mktemp("fault_day")
    data = generate_demo(n_flights=N_FLIGHTS, start_day=DAY, n_days=1, seed=3)
    ids = sorted(int(f) for f in data.flights.loc[data.flights["flight_date"] == DAY, "flight_id"])
    write_track_store(data.tracks, root / "tracks")
    cache = root / "cache"  # the FIR index, built once by the fault-free run, shared by all
    name, url = _new_database(postgres_server_url, "baseline")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLIGHT_FEES_CACHE_DIR", str(cache))
        mp.setenv("FLIGHT_FEES_HOME", str(root / "home"))
        day = FaultDay(root / "tracks", cache, ids, data.customers, data.aircraft, [])
        try:
            _prepare_billing(url, day)
            lines = _fault_free_bill(url, root / "tracks", root / "home", ids)
        finally:
            drop_database(postgres_server_url, name)
    assert {line[0] for line in lines} == set(ids), "the fault-free run must bill every flight"
    yield dataclasses.replace(day, lines=lines)


@pytest.fixture(autouse=True)
def _one_scenario_at_a_time() -> Iterator[None]:
    """Scenarios measure recovery times: never two at once. The ``xdist_group`` mark keeps
    them on one worker, but pytest-xdist 3.8 cannot group under pytest 9.2 (it renames
    ``item._nodeid``, which pytest 9.2 no longer reads), so a lock file serialises them (the
    wait counts in the test's timeout)."""
    with LOCK_FILE.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


StackFactory = Callable[..., Stack]


@pytest.fixture
def make_stack(
    postgres_server_url: str,
    fault_day: FaultDay,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[StackFactory]:
    """``make_stack(billing_server=None, **env)``: a fresh stack (billing database on
    ``billing_server``, default the suite's server; the Dagster instance always on the suite's
    server). Services are killed and databases dropped in teardown."""
    stacks: list[Stack] = []
    databases: list[tuple[str, str]] = []

    def make(billing_server: str | None = None, **env: str) -> Stack:
        billing_name, billing_url = _new_database(billing_server or postgres_server_url, "bill")
        databases.append((billing_server or postgres_server_url, billing_name))
        _prepare_billing(billing_url, fault_day)
        instance_name, instance_url = _new_database(postgres_server_url, "dagster")
        databases.append((postgres_server_url, instance_name))
        # dagster-postgres takes a plain postgresql:// URL (psycopg2)
        instance_url = make_url(instance_url).set(drivername="postgresql")
        plain = instance_url.render_as_string(hide_password=False)
        monkeypatch.setenv("DAGSTER_POSTGRES_URL", plain)
        settings = {
            "FLIGHT_FEES_QUEUE_SENSOR_INTERVAL_S": "2",
            "FLIGHT_FEES_MAX_FLIGHTS_PER_RUN": str(PER_RUN),
            "FLIGHT_FEES_CLAIM_LEASE_S": "40",
            **env,
        }
        stack = Stack(
            tmp_path / f"stack{len(stacks)}",
            billing_url=billing_url,
            instance_url=plain,
            tracks=fault_day.tracks,
            cache_dir=fault_day.cache_dir,
            env=settings,
        )
        stack.write_instance()
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()
    for server, name in databases:
        try:
            drop_database(server, name)
        except Exception as exc:  # a stopped throwaway cluster: nothing left to drop
            print(f"could not drop {name}: {exc}")


def record_recovery(scenario: str, figures: dict[str, Any]) -> None:
    """Recovery figures of a scenario, printed and merged into test-artifacts/faults/ (the
    README quotes them)."""
    print(f"[faults] {scenario}: {json.dumps(figures)}")
    RECOVERY_FILE.parent.mkdir(parents=True, exist_ok=True)
    try:
        known = json.loads(RECOVERY_FILE.read_text())
    except (OSError, ValueError):
        known = {}
    known[scenario] = {
        **figures,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    RECOVERY_FILE.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
