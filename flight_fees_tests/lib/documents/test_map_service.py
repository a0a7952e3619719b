"""Maps on demand from stored data (billing database, work store, track store), cached on disk;
the day index. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select, update

from flight_fees.lib.db import transaction
from flight_fees.lib.db.models import Flight
from flight_fees.lib.documents.map_service import (
    MapNotFound,
    MapService,
    day_index_html,
    read_work_rows,
)
from flight_fees.lib.documents.maps import MapAssets
from flight_fees.lib.ops.workstore import WorkStore
from flight_fees.lib.tracks import make_track_source
from flight_fees.lib.tracks.store import write_track_store
from flight_fees_tests.factories import make_customer, make_fee_line, make_flight
from flight_fees_tests.lib.documents.test_maps import (
    FIR_BOUNDS,
    FLIGHT_ID,
    HOSTILE,
    HOSTILE_ESCAPED,
    _crossings,
    _firs,
    _track,
)

DAY = dt.date(2026, 1, 5)
UNBILLED = FLIGHT_ID + 1


def _payload(text: str) -> dict:
    found = re.search(r'<script type="application/json" id="ff-map-data">(.*?)</script>', text)
    assert found is not None
    return json.loads(found.group(1))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def seed_stored(engine, home: Path) -> None:
    """One billed flight (hostile callsign, two fee lines) and one unbilled flight in the
    track store; no work-store frames."""
    write_track_store(pd.concat([_track(), _track(flight_id=UNBILLED)]), home / "tracks")
    customer = make_customer(engine, "TST")
    make_flight(
        engine,
        FLIGHT_ID,
        flight_date=DAY,
        customer_id=customer,
        callsign=HOSTILE,
        registration="G-<i>X",
        origin="LFPG",
        destination="LIRF",
    )
    make_fee_line(engine, customer, DAY, "123.45", flight_id=FLIGHT_ID, zone_id="LF")
    make_fee_line(engine, customer, DAY, "67.80", flight_id=FLIGHT_ID, zone_id="LS")


@pytest.fixture
def stored(engine, home):
    seed_stored(engine, home)
    return engine


def make_service(
    engine, home: Path, *, index: bool = True, fir_set: pd.DataFrame | None = None
) -> MapService:
    """A map service over ``home`` with the four-FIR test set or ``fir_set`` (loads counted)."""
    calls = {"firs": 0}

    def firs():
        calls["firs"] += 1
        return _firs() if fir_set is None else fir_set

    service = MapService(
        engine,
        home=home,
        firs=firs,
        fir_index=(lambda frame: frame) if index else None,  # compute_crossings takes a frame
        source=lambda: make_track_source("parquet", store=home / "tracks"),
        assets=MapAssets(static_url="/static"),
    )
    service.calls = calls  # type: ignore[attr-defined]
    return service


def test_flight_map_is_rendered_once_then_served_from_the_cache(stored, home):
    service = make_service(stored, home)
    first = service.flight_map(FLIGHT_ID)
    assert not first.cached and first.path is not None and first.path.is_file()
    assert first.path.is_relative_to(home / "maps" / "cache" / DAY.isoformat())
    data = _payload(first.html)
    # crossings recomputed from the track (no work store) with the FIR set: all four FIRs
    assert [f["id"] for f in data["firs"]] == list(FIR_BOUNDS)
    assert "crossings recomputed from the track" in first.html
    assert "track from the track source" in first.html
    # the billing state in the title box, escaped
    assert HOSTILE_ESCAPED in first.html and HOSTILE not in first.html
    assert "LF 123.45 EUR" in first.html and "LS 67.80 EUR" in first.html
    assert '<script src="/static/leaflet/leaflet.js"></script>' in first.html
    assert f'href="/maps/flight/{FLIGHT_ID}/FR"' in first.html  # per-country map links
    second = service.flight_map(FLIGHT_ID)
    assert second.cached and second.html == first.html and second.path == first.path
    assert service.calls["firs"] == 1  # FIR set loaded (and simplified) once


def test_billing_state_change_renders_a_new_map_and_drops_the_old(stored, home):
    service = make_service(stored, home)
    old = service.flight_map(FLIGHT_ID)
    with transaction(stored) as session:
        session.execute(
            update(Flight).where(Flight.flight_id == FLIGHT_ID).values(batch_id="reprocessed")
        )
    new = service.flight_map(FLIGHT_ID)
    assert not new.cached and new.path != old.path
    assert new.path.is_file() and not old.path.exists()


def test_work_store_crossings_win_over_recomputing(stored, home):
    track = _track()
    only_two = _crossings(track, {k: FIR_BOUNDS[k] for k in ("LFFF", "LFMM")})
    store = WorkStore(home / "work")
    store.write_frame("crossings", DAY, "run-1", only_two.assign(flight_id=FLIGHT_ID))
    store.write_frame("tracks", DAY, "run-1", track)
    assert len(read_work_rows(store, "crossings", DAY, FLIGHT_ID)) == 2
    assert read_work_rows(store, "crossings", DAY, 1).empty
    # a streamed run's chunk files count too; the newest run holding the flight wins
    newer = _crossings(track, {"LSAS": FIR_BOUNDS["LSAS"]}).assign(flight_id=FLIGHT_ID)
    store.write_part("crossings", DAY, "run-2", 0, newer.iloc[:0])
    store.write_part("crossings", DAY, "run-2", 1, newer)
    assert list(read_work_rows(store, "crossings", DAY, FLIGHT_ID)["fir_id"]) == ["LSAS"]
    (store.path("crossings", DAY, "run-2", "") / "part-00001.parquet").unlink()
    text = make_service(stored, home).flight_map(FLIGHT_ID).html
    assert [f["id"] for f in _payload(text)["firs"]] == ["LFFF", "LFMM"]
    assert "recomputed" not in text and "track source" not in text


def test_country_map_on_demand(stored, home):
    service = make_service(stored, home)
    result = service.flight_map(FLIGHT_ID, country="CH")
    assert [f["id"] for f in _payload(result.html)["firs"]] == ["LSAS"]
    assert "Country: CH" in result.html and result.path.name.endswith(".CH.html")
    assert service.flight_map(FLIGHT_ID, country="CH").cached
    assert service.flight_map(FLIGHT_ID).path != result.path  # the flight map is its own file
    with pytest.raises(MapNotFound, match="did not cross"):
        service.flight_map(FLIGHT_ID, country="DE")


def test_unbilled_flights_need_a_day_and_are_not_cached(stored, home):
    service = make_service(stored, home, index=False)
    with pytest.raises(MapNotFound, match=r"\?day="):
        service.flight_map(UNBILLED)
    result = service.flight_map(UNBILLED, day=DAY)
    assert not result.cached and result.path is None
    assert "not billed" in result.html and "crossings not available" in result.html
    assert _payload(result.html)["firs"] == []
    with pytest.raises(MapNotFound, match="no track"):
        service.flight_map(424242, day=DAY)


def test_day_index_lists_flights_with_escaped_text(stored, home):
    service = make_service(stored, home)
    text = service.day_index(DAY)
    assert f'<a href="/maps/flight/{FLIGHT_ID}">{FLIGHT_ID}</a>' in text
    assert HOSTILE_ESCAPED in text and HOSTILE not in text and "G-&lt;i&gt;X" in text
    assert "LFPG &rarr; LIRF" in text and "LF, LS" in text and "191.25 EUR" in text
    assert str(DAY - dt.timedelta(days=1)) in text  # day navigation
    assert "1 flight(s) billed" in text
    empty = day_index_html(DAY, [], [(UNBILLED, "failed", "no_tariff", "<b>x</b>")])
    assert f"/maps/flight/{UNBILLED}?day={DAY.isoformat()}" in empty
    assert "&lt;b&gt;x&lt;/b&gt;" in empty and "<b>x</b>" not in empty
    assert f"/maps/{DAY.isoformat()}/" in service.days_index()


def test_prerender_day_warms_the_cache(stored, home):
    service = make_service(stored, home)
    result = service.prerender_day(DAY)
    assert result.maps == 1 and result.flight_ids == [FLIGHT_ID] and not result.failures
    assert result.bytes > 10_000
    assert service.flight_map(FLIGHT_ID).cached
    again = service.prerender_day(DAY)
    assert again.maps == 0 and again.already_cached == 1


def test_totals_keep_decimal_money(stored, home):
    from flight_fees.lib.documents.map_service import read_flight

    info = read_flight(stored, FLIGHT_ID)
    assert info is not None and info.totals() == {"EUR": Decimal("191.25")}
    assert info.zones() == ["LF", "LS"] and read_flight(stored, 1) is None


def test_invoiced_flight_links_its_invoice(stored, home):
    from flight_fees.lib.db.models import FeeLine, Invoice

    with transaction(stored) as session:
        customer_id = session.execute(select(FeeLine.customer_id).limit(1)).scalar_one()
        invoice = Invoice(
            number="INV-2026-000042",
            customer_id=customer_id,
            period_start=DAY,
            period_end=DAY,
            issue_date=DAY,
            due_date=DAY + dt.timedelta(days=30),
            currency="EUR",
            total_amount=Decimal("191.25"),
            line_count=2,
        )
        session.add(invoice)
        session.flush()
        session.execute(update(FeeLine).values(invoice_id=invoice.id))
    service = make_service(stored, home)
    link = '<a href="/invoices/INV-2026-000042.html">INV-2026-000042</a>'
    assert link in service.flight_map(FLIGHT_ID).html
    assert link in service.day_index(DAY)
