"""Billing periods: a weekly customer's week, a monthly customer's calendar month."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Protocol

from flight_fees.lib.billing.invoicing.states import Period

# -- periods ---------------------------------------------------------------------------------


class BillingSchedule(Protocol):
    """What the period logic needs of a customer (a :class:`Customer` row satisfies it)."""

    @property
    def billing_frequency(self) -> str: ...

    @property
    def week_end_weekday(self) -> int: ...


def last_day_of_month(d: dt.date) -> dt.date:
    """The last day of ``d``'s calendar month (28/29 February, 30, 31)."""
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


def _weekday(customer: BillingSchedule) -> int:
    weekday = int(customer.week_end_weekday)
    if not 0 <= weekday <= 6:
        raise ValueError(f"week_end_weekday must be 0 (Monday) .. 6 (Sunday), got {weekday}")
    return weekday


def _frequency(customer: BillingSchedule) -> str:
    frequency = customer.billing_frequency
    if frequency not in ("weekly", "monthly"):
        raise ValueError(f"unknown billing frequency {frequency!r} (weekly or monthly)")
    return frequency


def is_invoice_day(customer: BillingSchedule, day: dt.date) -> bool:
    """Whether a period of ``customer`` ends on ``day`` (its week-end day / month end)."""
    if _frequency(customer) == "weekly":
        return day.weekday() == _weekday(customer)
    return day == last_day_of_month(day)


def period_for(customer: BillingSchedule, day: dt.date) -> Period:
    """``(start, end)`` of the last billing period of ``customer`` that ends on or before
    ``day`` (both inclusive); on an invoice day, the period ending that day."""
    if _frequency(customer) == "weekly":
        end = day - dt.timedelta(days=(day.weekday() - _weekday(customer)) % 7)
        return end - dt.timedelta(days=6), end
    if day == last_day_of_month(day):
        return day.replace(day=1), day
    end = day.replace(day=1) - dt.timedelta(days=1)
    return end.replace(day=1), end


def period_containing(customer: BillingSchedule, day: dt.date) -> Period:
    """``(start, end)`` of the billing period of ``customer`` that contains ``day``."""
    if _frequency(customer) == "weekly":
        end = day + dt.timedelta(days=(_weekday(customer) - day.weekday()) % 7)
        return end - dt.timedelta(days=6), end
    return day.replace(day=1), last_day_of_month(day)
