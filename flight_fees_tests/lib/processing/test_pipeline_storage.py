"""A run whose steps run in different processes (machines, in production) sharing the work
store on an object store (``FLIGHT_FEES_STORAGE_URL=s3://...``, moto's S3 server as a protocol
stand-in): the tracks step writes its chunks in one process, the crossings and billing steps
read them in another, and the bill equals the one-process run's. On SQLite only (the billing
database is not what is shared here) and the European FIR set (smaller, faster to load)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
from sqlalchemy import select

from flight_fees.lib.core.settings import paths
from flight_fees.lib.db import make_engine
from flight_fees.lib.db.models import FeeLine
from flight_fees.lib.ops.demo import generate_demo
from flight_fees.lib.ops.registry import load_aircraft, load_customers
from flight_fees_tests.lib.processing.test_pipeline_chunks import DAY, _bill_day, source  # noqa: F401

_TRACKS_STEP = """
import datetime as dt, sys
from flight_fees.lib.core.settings import paths
from flight_fees.lib.ops.workstore import WorkStore
from flight_fees.lib.processing.pipeline import stream_tracks
from flight_fees.lib.tracks.parquet import ParquetTrackSource

store = WorkStore(paths().work)  # FLIGHT_FEES_STORAGE_URL: the bucket
done = stream_tracks(
    ParquetTrackSource(sys.argv[1]), store, dt.date.fromisoformat(sys.argv[2]), "r1", None,
    chunk_flights=3,
)
print(done.chunks)
"""


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_steps_in_other_processes_share_the_work_store(
    db_url,
    source,  # noqa: F811 (the fixture imported above)
    tmp_path,
    s3_storage_url,
    monkeypatch,
):
    monkeypatch.setenv("FLIGHT_FEES_FIR_SET", "europe")
    src, ids = source
    data = generate_demo(n_flights=7, start_day=DAY, n_days=1, seed=4)
    engine = make_engine(db_url)
    load_customers(engine, data.customers)
    load_aircraft(engine, data.aircraft)

    def lines():
        with engine.connect() as conn:
            return conn.execute(
                select(
                    FeeLine.flight_id, FeeLine.line_no, FeeLine.zone_id, FeeLine.billing_amount
                ).order_by(FeeLine.flight_id, FeeLine.line_no)
            ).all()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = _bill_day(engine, src, tmp_path, 100)  # one process, local work store
    alone = lines()

    # the tracks step in another process, writing to the bucket
    step = subprocess.run(
        [sys.executable, "-c", _TRACKS_STEP, str(src.root), DAY.isoformat()],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert step.returncode == 0, step.stderr
    assert step.stdout.strip() == "3"  # 7 flights, 3 per chunk

    # crossings and billing here, from the bucket (re-billing the same day)
    from flight_fees.lib.airspace.airports import read_airports
    from flight_fees.lib.airspace.firs import load_firs
    from flight_fees.lib.airspace.zones import load_charging_zones
    from flight_fees.lib.charging import tariffs as tariff_lib
    from flight_fees.lib.charging.aircraft_types import load_aircraft_types
    from flight_fees.lib.charging.fx import load_fx_rates
    from flight_fees.lib.core.settings import DATA_DIR
    from flight_fees.lib.ops.workstore import WorkStore
    from flight_fees.lib.processing.pipeline import stream_bills, stream_crossings

    store = WorkStore(paths().work)
    assert str(store.root).startswith("s3://")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        firs = load_firs()
        crossings = stream_crossings(
            store, DAY, ["r1"], "r1", firs, load_charging_zones(firs=firs), airports=read_airports()
        )
        bills = stream_bills(
            engine,
            store,
            DAY,
            ["r1"],
            tariffs=tariff_lib.load_tariffs(None),
            fx=load_fx_rates(DATA_DIR / "fx_rates_sample.csv"),
            aircraft_types=load_aircraft_types(None),
            batch_id="shared",
            backfill=True,
        )
    assert crossings.crossings == local[1].crossings > 0
    assert bills.written == local[2].written and len(bills.written) == len(ids)
    assert bills.totals == local[2].totals
    assert lines() == alone
    assert len(store.parts("zone_visits", DAY, ["r1"])) == 3
    engine.dispose()
