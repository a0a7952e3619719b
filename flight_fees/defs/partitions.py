"""Daily UTC partitions, matching the time-partitioned segments of the Pinot track table."""

import datetime as dt
import os

import dagster as dg

#: first day users can backfill; override with FLIGHT_FEES_PARTITIONS_START (YYYY-MM-DD)
PARTITIONS_START = os.environ.get("FLIGHT_FEES_PARTITIONS_START", "2024-01-01")

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START,
    timezone="UTC",
    end_offset=1,  # today's partition exists: flights are billed the day they land
)


def partition_day(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)
