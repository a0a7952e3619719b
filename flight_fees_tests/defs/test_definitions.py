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


def test_reference_assets_materialize_with_metadata(engine, db_url, monkeypatch):
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    with dg.instance_for_test() as instance:
        result = (
            defs().resolve_job_def("refresh_reference_data").execute_in_process(instance=instance)
        )
    assert result.success
    meta = {
        event.event_specific_data.materialization.asset_key.to_user_string(): {
            k: getattr(v, "value", v)
            for k, v in event.event_specific_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }
    # the shipped default set: world (FLIGHT_FEES_FIR_SET), 270 FIRs, 151 zones
    assert meta["fir_boundaries"]["firs"] == 270
    assert meta["fir_boundaries"]["overlapping_fir_pairs"] >= 1  # LECB/LFBB in the 2015 data
    assert meta["charging_zones"]["zones"] == 151
    assert meta["charging_zones"]["firs_covered"] == 270
    assert meta["tariffs"]["zones"] >= 45 and "US" not in meta["tariffs"]["zones_with_sample_rates"]
    assert "USD" in meta["fx_rates"]["currencies"]
    assert meta["aircraft_registry"]["icao_types_in_type_table"] >= 100
