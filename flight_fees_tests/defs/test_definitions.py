from __future__ import annotations

import dagster as dg

from flight_fees.definitions import defs


def test_definitions_load_with_the_expected_graph():
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "fir_boundaries",
        "charging_zones",
        "tariffs",
        "fx_rates",
        "aircraft_registry",
        "queued_flights",
        "flight_tracks",
        "fir_crossings",
        "fee_lines",
        "flight_maps",
        "invoices",
    } <= keys
    # lineage: tracks -> crossings -> fee lines -> invoices
    assert dg.AssetKey("flight_tracks") in graph.get(dg.AssetKey("fir_crossings")).parent_keys
    assert dg.AssetKey("fir_crossings") in graph.get(dg.AssetKey("fee_lines")).parent_keys
    assert dg.AssetKey("fee_lines") in graph.get(dg.AssetKey("invoices")).parent_keys
    for name in ("flight_tracks", "fir_crossings", "fee_lines", "flight_maps"):
        assert isinstance(graph.get(dg.AssetKey(name)).partitions_def, dg.DailyPartitionsDefinition)
    for job in ("process_flights", "consolidate_invoices", "mark_overdue_invoices"):
        assert definitions.resolve_job_def(job).name == job
    assert definitions.resolve_sensor_def("flight_queue_sensor").minimum_interval_seconds == 30
    daily = definitions.resolve_schedule_def("consolidate_invoices_daily")
    assert daily.cron_schedule == "0 1 * * *"
    assert (
        definitions.resolve_schedule_def("mark_overdue_invoices_hourly").cron_schedule
        == "0 * * * *"
    )
