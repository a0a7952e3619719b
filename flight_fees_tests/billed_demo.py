"""The demo data billed through the pipeline's stages (no Dagster): tracks in the home's
Parquet store, customers and aircraft registered, every flight's fee lines written, and
optionally the invoices consolidated. For tests that need real, stored fee lines
(``bill_demo``; the module-scoped fixture ``billed_demo_db`` for tests that only read
them: import ``billed_demo_fixture`` into the test module)."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pytest
from sqlalchemy import Engine

from flight_fees.lib.ops.demo import DemoData, generate_demo, write_track_store


def bill_demo(
    engine: Engine,
    home: Path,
    *,
    n_flights: int = 12,
    start: dt.date = dt.date(2026, 10, 27),
    days: int = 2,
    seed: int = 7,
    invoice_on: dt.date | None = None,
) -> DemoData:
    """Generate the demo, store its tracks under ``home``, bill every day with the
    pipeline's stages and, with ``invoice_on``, consolidate every customer's invoices up to
    that day (``force``)."""
    from flight_fees.lib.airspace.firs import load_firs
    from flight_fees.lib.airspace.zones import load_charging_zones
    from flight_fees.lib.billing.invoicing import consolidate
    from flight_fees.lib.charging.aircraft_types import load_aircraft_types
    from flight_fees.lib.charging.scenario import current_pricing
    from flight_fees.lib.ops.demo import read_airports
    from flight_fees.lib.ops.registry import load_aircraft, load_customers
    from flight_fees.lib.ops.workstore import WorkStore
    from flight_fees.lib.processing.pipeline import stream_bills, stream_crossings, stream_tracks
    from flight_fees.lib.tracks.parquet import ParquetTrackSource

    data = generate_demo(n_flights=n_flights, start_day=start, n_days=days, seed=seed)
    write_track_store(data.tracks, home / "tracks")
    load_customers(engine, data.customers)
    load_aircraft(engine, data.aircraft)
    source = ParquetTrackSource(home / "tracks")
    store = WorkStore(home / "work")
    reference = current_pricing(home=home)
    types = load_aircraft_types(None)
    with warnings.catch_warnings():  # the FIR set's known repairs; zones not charged
        warnings.simplefilter("ignore")
        firs = load_firs()
        zones = load_charging_zones(firs=firs)
        for day in data.days:
            run = f"demo-{day}"
            stream_tracks(source, store, day, run, None)
            stream_crossings(store, day, [run], run, firs, zones, airports=read_airports())
            stream_bills(
                engine, store, day, [run], tariffs=reference.tariffs, fx=reference.fx,
                aircraft_types=types, batch_id=run, backfill=True,
            )  # fmt: skip
    if invoice_on is not None:
        consolidate(engine, invoice_on, force=True)
    return data


@pytest.fixture(
    name="billed_demo_db",
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def billed_demo_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """An engine on a database holding the demo billed (2026-10-27 and 28, 12 flights) and
    invoiced up to 31 October, once per module and backend: for tests that only read it."""
    from flight_fees.lib.db import make_engine
    from flight_fees_tests.conftest import _truncate

    fixture = {"sqlite": "sqlite_database_url", "postgresql": "postgres_database_url"}
    engine = make_engine(request.getfixturevalue(fixture[request.param]))
    _truncate(engine)
    bill_demo(engine, tmp_path_factory.mktemp("demo_home"), invoice_on=dt.date(2026, 10, 31))
    yield engine
    engine.dispose()


def table_dump(engine: Engine) -> str:
    """Every row of the billing tables an analysis must not touch (fee lines, invoices,
    flights, credit notes, document counters), as text: equal dumps, identical tables."""
    from sqlalchemy import text

    out = []
    with engine.connect() as conn:
        for table in ("fee_lines", "invoices", "flights", "credit_notes", "document_counters"):
            rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2")).all()
            out.append(f"{table}: {[tuple(r) for r in rows]!r}")
    return "\n".join(out)
