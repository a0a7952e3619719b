from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from flight_fees.defs.invoicing.schedules import consolidate_invoices_daily
from flight_fees.lib.billing.invoicing import is_invoice_day


class _Customer:
    def __init__(self, frequency: str, weekday: int = 6) -> None:
        self.billing_frequency = frequency
        self.week_end_weekday = weekday


def _as_of(when: dt.datetime) -> dt.date:
    context = dg.build_schedule_context(scheduled_execution_time=when)
    request = consolidate_invoices_daily(context)
    return dt.date.fromisoformat(request.run_config["ops"]["invoices"]["config"]["as_of"])


@pytest.mark.parametrize(
    ("run_at", "as_of"),
    [
        (dt.datetime(2026, 2, 1, 1, tzinfo=dt.UTC), dt.date(2026, 1, 31)),  # 31-day month
        (dt.datetime(2026, 5, 1, 1, tzinfo=dt.UTC), dt.date(2026, 4, 30)),  # 30-day month
        (dt.datetime(2026, 3, 1, 1, tzinfo=dt.UTC), dt.date(2026, 2, 28)),  # common February
        (dt.datetime(2028, 3, 1, 1, tzinfo=dt.UTC), dt.date(2028, 2, 29)),  # leap February
        (dt.datetime(2027, 1, 1, 1, tzinfo=dt.UTC), dt.date(2026, 12, 31)),  # year end
    ],
)
def test_the_0100_run_invoices_the_month_that_just_ended(run_at, as_of):
    assert _as_of(run_at) == as_of
    monthly = _Customer("monthly")
    assert is_invoice_day(monthly, as_of)
    assert not is_invoice_day(monthly, as_of - dt.timedelta(days=1))


def test_february_28_is_not_month_end_in_a_leap_year():
    monthly = _Customer("monthly")
    assert not is_invoice_day(monthly, dt.date(2028, 2, 28))
    assert is_invoice_day(monthly, dt.date(2026, 2, 28))


@pytest.mark.parametrize("weekday", range(7))
def test_weekly_customers_are_invoiced_on_their_week_end_day_only(weekday):
    customer = _Customer("weekly", weekday)
    week = [dt.date(2026, 10, 19) + dt.timedelta(days=i) for i in range(7)]  # Mon..Sun
    invoice_days = [d for d in week if is_invoice_day(customer, d)]
    assert invoice_days == [week[weekday]]
    # the schedule run the morning after that day hands exactly that day to consolidation
    run_at = dt.datetime.combine(week[weekday] + dt.timedelta(days=1), dt.time(1), dt.UTC)
    assert _as_of(run_at) == week[weekday]


def test_run_key_is_stable_per_day():
    when = dt.datetime(2026, 10, 27, 1, tzinfo=dt.UTC)
    first = consolidate_invoices_daily(dg.build_schedule_context(scheduled_execution_time=when))
    second = consolidate_invoices_daily(dg.build_schedule_context(scheduled_execution_time=when))
    assert first.run_key == second.run_key == "consolidate-2026-10-26"
