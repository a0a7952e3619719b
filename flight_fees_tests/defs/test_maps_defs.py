"""Maps are off the billing path: ``process_flights`` renders none; the optional
``render_flight_maps`` job warms the map cache of a day from stored data."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from flight_fees.definitions import defs
from flight_fees.lib.core.settings import paths
from flight_fees.lib.db import make_engine
from flight_fees.lib.documents.map_service import read_day_flights
from flight_fees.lib.ops.demo import generate_demo
from flight_fees.lib.ops.registry import load_aircraft, load_customers
from flight_fees.lib.tracks.store import write_track_store
from flight_fees_tests.defs.test_processing import _meta

DAY = dt.date(2026, 10, 29)


def test_jobs_keep_maps_out_of_billing():
    definitions = defs()
    billing = definitions.resolve_job_def("process_flights")
    maps = definitions.resolve_job_def("render_flight_maps")
    graph = definitions.resolve_asset_graph()
    assert dg.AssetKey("flight_maps") not in billing.asset_layer.executable_asset_keys
    assert maps.asset_layer.executable_asset_keys == {dg.AssetKey("flight_maps")}
    assert int(maps.tags["dagster/priority"]) < 0
    assert graph.get(dg.AssetKey("flight_maps")).group_name == "maps"
    for sensor in definitions.sensors or []:  # no automation starts map rendering
        assert "render_flight_maps" not in {t.job_name for t in sensor.targets}
    for schedule in definitions.schedules or []:
        assert schedule.job_name != "render_flight_maps"


def test_render_flight_maps_warms_the_cache_after_billing(db_url, monkeypatch):
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    monkeypatch.setenv("FLIGHT_FEES_PUBLIC_URL", "http://docs.example:8090")
    data = generate_demo(n_flights=3, start_day=DAY, n_days=1, seed=3)
    write_track_store(data.tracks, paths().tracks)
    engine = make_engine(db_url)
    load_customers(engine, data.customers)
    load_aircraft(engine, data.aircraft)
    ids = [int(f) for f in data.flights["flight_id"]]
    with dg.instance_for_test() as instance:
        billed = (
            defs()
            .resolve_job_def("process_flights")
            .execute_in_process(
                run_config={"ops": {"flight_tracks": {"config": {"flight_ids": ids}}}},
                partition_key=DAY.isoformat(),
                instance=instance,
            )
        )
        assert billed.success
        assert not (paths().maps / "cache").exists()  # billing made no map
        warmed = (
            defs()
            .resolve_job_def("render_flight_maps")
            .execute_in_process(partition_key=DAY.isoformat(), instance=instance)
        )
    assert warmed.success
    meta = _meta(warmed, "flight_maps")
    flights = read_day_flights(engine, DAY)
    engine.dispose()
    assert meta["maps_rendered"] == len(flights) > 0 and meta["map_failures"] == 0
    assert meta["index"] == f"http://docs.example:8090/maps/{DAY.isoformat()}/"
    assert meta["example_map"].startswith("http://docs.example:8090/maps/flight/")
    cached = sorted((paths().maps / "cache" / DAY.isoformat()).glob("*.html"))
    assert len(cached) == len(flights)
    assert {int(p.name.split(".")[0]) for p in cached} == {f.flight_id for f in flights}
