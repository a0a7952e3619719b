"""What a demo home holds and what its reset deletes (``flight_fees.lib.ops.demo_home``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from flight_fees.lib.core.settings import Paths
from flight_fees.lib.db import make_engine, upgrade
from flight_fees.lib.ops.demo_home import demo_home_state, reset_demo_home
from flight_fees.lib.ops.queue import FlightQueue
from flight_fees.lib.ops.registry import load_customers

CUSTOMER = {
    "code": "ABC",
    "name": "ABC Air",
    "billing_frequency": "weekly",
    "week_end_weekday": 6,
    "billing_currency": "EUR",
    "payment_terms_days": 30,
    "email": "billing@abc.example",
    "address": "1 Runway Road",
}


def _write(path: Path, data: bytes = b"x" * 10) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _home(tmp_path: Path) -> Paths:
    p = Paths(home=tmp_path / "home")
    engine = make_engine(f"sqlite:///{p.home / 'billing.db'}")
    upgrade(engine)
    FlightQueue(engine).enqueue([1, 2, 3])
    load_customers(engine, pd.DataFrame([CUSTOMER]))
    engine.dispose()
    _write(p.tracks / "day=2026-10-25" / "part-0.parquet")
    _write(p.invoices / "INV-2026-000001.html", b"<html>" * 5)
    _write(p.invoices / "INV-2026-000001.pdf")
    _write(p.logs / "run.json")
    _write(p.reference / "unit_rates.csv", b"zone,rate\n")
    return p


def test_an_absent_or_only_migrated_home_holds_no_data(tmp_path):
    absent = Paths(home=tmp_path / "nothing")
    assert not demo_home_state(absent).has_data
    assert not absent.home.exists()  # looking never creates the database
    migrated = Paths(home=tmp_path / "migrated")
    migrated.home.mkdir()
    upgrade(make_engine(f"sqlite:///{migrated.home / 'billing.db'}"))
    state = demo_home_state(migrated)
    assert not state.has_data and state.reset[0].rows == {} and state.reset[0].bytes > 0


def test_state_counts_rows_and_files_of_each_place(tmp_path):
    p = _home(tmp_path)
    state = demo_home_state(p)
    assert state.has_data
    by_path = {place.path: place for place in (*state.reset, *state.kept)}
    db = by_path[str(p.home / "billing.db")]
    assert db.rows == {"customers": 1, "flight_processing_queue": 3}
    assert (by_path[str(p.invoices)].files, by_path[str(p.invoices)].bytes) == (2, 40)
    assert by_path[str(p.tracks)].files == 1 and by_path[str(p.logs)].files == 1
    assert by_path[str(p.maps)].files == 0 and not by_path[str(p.maps)].has_data
    assert [place.path for place in state.kept if place.has_data] == [str(p.reference)]


def test_reset_deletes_what_it_reports_and_keeps_reference_files(tmp_path):
    p = _home(tmp_path)
    before = demo_home_state(p)
    deleted = reset_demo_home(p)
    assert deleted == before
    assert not demo_home_state(p).has_data
    for suffix in ("", "-wal", "-shm"):
        assert not (p.home / f"billing.db{suffix}").exists()
    for folder in (p.tracks, p.work, p.maps, p.invoices, p.logs):
        assert not folder.exists()
    assert (p.reference / "unit_rates.csv").read_bytes() == b"zone,rate\n"
