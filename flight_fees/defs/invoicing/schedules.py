"""Schedules: consolidation daily at 01:00, the overdue sweep hourly."""

import datetime as dt
import os

import dagster as dg

from flight_fees.defs.invoicing.jobs import consolidate_invoices, mark_overdue_invoices

#: timezone of the 01:00 consolidation (FLIGHT_FEES_SCHEDULE_TIMEZONE, default UTC)
SCHEDULE_TIMEZONE = os.environ.get("FLIGHT_FEES_SCHEDULE_TIMEZONE", "UTC")


def consolidation_run_config(scheduled: dt.datetime) -> dict:
    """The run at 01:00 on day D invoices the periods that ended on D - 1."""
    from flight_fees.lib.usecases.invoicing import default_consolidation_day

    as_of = default_consolidation_day(scheduled)
    return {"ops": {"invoices": {"config": {"as_of": as_of.isoformat(), "force": False}}}}


@dg.schedule(
    name="consolidate_invoices_daily",
    cron_schedule="0 1 * * *",
    execution_timezone=SCHEDULE_TIMEZONE,
    target=consolidate_invoices,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="01:00 daily: invoice weekly customers on their week-end day and monthly "
    "customers on the last day of the month (the day that just ended).",
)
def consolidate_invoices_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    scheduled = context.scheduled_execution_time
    config = consolidation_run_config(scheduled)
    as_of = config["ops"]["invoices"]["config"]["as_of"]
    return dg.RunRequest(
        run_key=f"consolidate-{as_of}", run_config=config, tags={"flight_fees/as_of": as_of}
    )


mark_overdue_invoices_hourly = dg.ScheduleDefinition(
    name="mark_overdue_invoices_hourly",
    cron_schedule="0 * * * *",
    execution_timezone=SCHEDULE_TIMEZONE,
    job=mark_overdue_invoices,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
