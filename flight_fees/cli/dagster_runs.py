"""Launching Dagster runs from the CLI (``flight-fees process``, ``flight-fees demo``).

Runs execute in-process against the Dagster instance in ``DAGSTER_HOME`` so that they show up
in the UI (``make dev``) with their logs, metadata and lineage.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MINIMAL_INSTANCE_YAML = "telemetry:\n  enabled: false\n"
#: console log level of in-process runs (FLIGHT_FEES_RUN_LOG_LEVEL; the UI keeps every event)
RUN_LOG_LEVEL = os.environ.get("FLIGHT_FEES_RUN_LOG_LEVEL", "WARNING")


def _loggers() -> dict[str, Any]:
    return {"loggers": {"console": {"config": {"log_level": RUN_LOG_LEVEL}}}}


def ensure_dagster_home() -> Path:
    """Use ``DAGSTER_HOME`` or, when unset, ``<FLIGHT_FEES_HOME>/dagster`` (created)."""
    from flight_fees.lib.core.settings import home_dir

    home = Path(os.environ.get("DAGSTER_HOME") or home_dir() / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        repo_yaml = Path.cwd() / "dagster.yaml"
        config.write_text(repo_yaml.read_text() if repo_yaml.exists() else MINIMAL_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def load_definitions() -> Any:
    from flight_fees.definitions import defs

    return defs()


def run_process_flights(
    day: dt.date, flight_ids: Sequence[int] | None, *, tags: dict[str, str] | None = None
) -> Any:
    """Execute ``process_flights`` for one day partition (``flight_ids`` None: backfill)."""
    import dagster as dg

    ensure_dagster_home()
    job = load_definitions().resolve_job_def("process_flights")
    run_config = {
        **_loggers(),
        "ops": {
            # an analyst's run: no queue claim (it takes its flights and renews their lease)
            "flight_tracks": {"config": {"flight_ids": list(flight_ids or [])}}
        },
    }
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            run_config=run_config,
            instance=instance,
            partition_key=day.isoformat(),
            tags={"flight_fees/launched_by": "cli", **(tags or {})},
            raise_on_error=False,
        )
    if not result.success:  # what process_flights_failure_sensor does for daemon runs
        from flight_fees.lib.db import make_engine
        from flight_fees.lib.ops.queue import FlightQueue

        FlightQueue(make_engine()).fail_claimed(
            f"run:{result.run_id}",
            "internal",
            f"run {result.run_id} failed: " + run_failure_message(result),
        )
    return result


def run_consolidation(as_of: dt.date, *, force: bool = False) -> Any:
    import dagster as dg

    ensure_dagster_home()
    job = load_definitions().resolve_job_def("consolidate_invoices")
    with dg.DagsterInstance.get() as instance:
        return job.execute_in_process(
            run_config={
                **_loggers(),
                "ops": {"invoices": {"config": {"as_of": as_of.isoformat(), "force": force}}},
            },
            instance=instance,
            tags={"flight_fees/launched_by": "cli"},
            raise_on_error=False,
        )


def run_reference_refresh() -> Any:
    """Materialize the reference assets (validates every reference file)."""
    import dagster as dg

    ensure_dagster_home()
    job = load_definitions().resolve_job_def("refresh_reference_data")
    with dg.DagsterInstance.get() as instance:
        return job.execute_in_process(
            run_config=_loggers(), instance=instance, raise_on_error=False
        )


def run_overdue_sweep() -> Any:
    import dagster as dg

    ensure_dagster_home()
    job = load_definitions().resolve_job_def("mark_overdue_invoices")
    with dg.DagsterInstance.get() as instance:
        return job.execute_in_process(
            run_config=_loggers(), instance=instance, raise_on_error=False
        )


def materialization_metadata(result: Any, asset: str) -> dict[str, Any]:
    """The metadata values (plain Python) of ``asset``'s materialization in ``result``."""
    import dagster as dg

    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        if mat.asset_key == dg.AssetKey(asset):
            return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    return {}


def run_failure_message(result: Any) -> str:
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            return (
                f"step {event.step_key} failed: {data.error.message.strip() if data.error else ''}"
            )
    return "run failed"
