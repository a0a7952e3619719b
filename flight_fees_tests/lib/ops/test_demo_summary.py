"""The billing summary ``flight-fees demo`` prints, and the registry counts, read from the
database (the entry points do not query tables)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flight_fees.lib.billing.invoicing import consolidate
from flight_fees.lib.ops.demo_summary import billing_summary, invoice_days
from flight_fees.lib.ops.registry_queries import registry_counts
from flight_fees_tests.factories import make_customer, make_fee_line, make_flight

D = dt.date


def test_billing_summary_sums_exactly_per_currency_and_zone(engine):
    eur = make_customer(engine, "ACME")
    fid = make_flight(engine, flight_date=D(2026, 1, 4), customer_id=eur)
    make_fee_line(engine, eur, D(2026, 1, 4), "0.10", flight_id=fid, zone_id="EC")
    make_fee_line(engine, eur, D(2026, 1, 4), "0.20", flight_id=fid, zone_id="EC")
    make_fee_line(
        engine, eur, D(2026, 1, 5), "92.00", zone_id="US", local_amount="100.00",
        local_currency="USD", fx_rate="0.92",
    )  # fmt: skip
    consolidate(engine, D(2026, 1, 31))
    summary = billing_summary(engine)
    assert summary.per_currency == {"EUR": (3, Decimal("92.30"))}
    assert summary.per_zone == {
        ("EC", "EUR"): (2, Decimal("0.30")),
        ("US", "USD"): (1, Decimal("100.00")),
    }
    assert summary.fee_lines == 3 and summary.flights_billed == 1
    assert summary.first_flight_day == D(2026, 1, 4)
    [invoice] = summary.invoices
    assert (invoice.customer_code, invoice.total_amount) == ("ACME", Decimal("92.30"))


def test_invoice_days_follow_the_customers_schedules(engine):
    make_customer(engine, "MONTHLY")
    make_customer(engine, "WEEKLY", billing_frequency="weekly", week_end_weekday=6)
    days = invoice_days(engine, D(2026, 1, 26), D(2026, 2, 8))
    assert days == [D(2026, 1, 31), D(2026, 2, 1), D(2026, 2, 8)]  # month end, two Sundays


def test_registry_counts(engine):
    from flight_fees.lib.db import transaction
    from flight_fees.lib.db.models import Aircraft

    cid = make_customer(engine, "ACME")
    with transaction(engine) as session:
        session.add(Aircraft(registration="FABCD", icao_type="A320", customer_id=cid))
        session.add(Aircraft(registration="FWXYZ", icao_type="A320", mtow_kg=Decimal("78000")))
    counts = registry_counts(engine)
    assert (counts.aircraft, counts.customers) == (2, 1)
    assert counts.aircraft_without_declared_mtow == 1 and counts.aircraft_without_customer == 1
