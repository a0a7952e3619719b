from __future__ import annotations

import datetime as dt
import multiprocessing as mp
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select, text

from flight_fees.lib.billing import invoicing
from flight_fees.lib.billing.invoicing import (
    InvoiceNotFound,
    InvoiceStateError,
    LineFlag,
    consolidate,
    invoice_detail,
    is_invoice_day,
    last_day_of_month,
    list_invoices,
    mark_overdue,
    pay,
    period_containing,
    period_for,
    totals_by_currency,
    void,
)
from flight_fees.lib.db import make_engine, transaction
from flight_fees.lib.db.models import CreditNote, DocumentCounter, FeeLine, Invoice
from flight_fees_tests.factories import make_customer, make_fee_line, make_flight

D = dt.date


@dataclass(frozen=True)
class Sched:
    billing_frequency: str
    week_end_weekday: int = 6


MONTHLY = Sched("monthly")


def _counter(engine: Engine, kind: str, year: int) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            select(DocumentCounter.last_number).where(
                DocumentCounter.kind == kind, DocumentCounter.year == year
            )
        ).scalar()


def _invoice_of_line(engine: Engine, line_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            select(Invoice.number)
            .join(FeeLine, FeeLine.invoice_id == Invoice.id)
            .where(FeeLine.id == line_id)
        ).scalar()


# -- periods ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "last"),
    [
        (D(2026, 1, 15), D(2026, 1, 31)),  # 31-day month
        (D(2026, 4, 1), D(2026, 4, 30)),  # 30-day month
        (D(2026, 2, 10), D(2026, 2, 28)),  # common year
        (D(2028, 2, 10), D(2028, 2, 29)),  # leap year
        (D(2100, 2, 1), D(2100, 2, 28)),  # century, not leap
        (D(2000, 2, 1), D(2000, 2, 29)),  # 400-year leap
        (D(2026, 12, 31), D(2026, 12, 31)),
    ],
)
def test_last_day_of_month(day, last):
    assert last_day_of_month(day) == last


@pytest.mark.parametrize(
    ("last", "first"),
    [
        (D(2026, 1, 31), D(2026, 1, 1)),
        (D(2026, 4, 30), D(2026, 4, 1)),
        (D(2026, 2, 28), D(2026, 2, 1)),
        (D(2028, 2, 29), D(2028, 2, 1)),
        (D(2026, 12, 31), D(2026, 12, 1)),
    ],
)
def test_monthly_invoice_day_is_the_last_day_only(last, first):
    d = first
    while d.month == first.month:
        assert is_invoice_day(MONTHLY, d) is (d == last), d
        d += dt.timedelta(days=1)
    assert period_for(MONTHLY, last) == (first, last)
    # any day before the end: the previous, complete month
    prev_end = first - dt.timedelta(days=1)
    assert period_for(MONTHLY, last - dt.timedelta(days=1)) == (prev_end.replace(day=1), prev_end)
    assert period_containing(MONTHLY, first + dt.timedelta(days=3)) == (first, last)


def test_monthly_edge_periods():
    assert not is_invoice_day(MONTHLY, D(2028, 2, 28))  # leap year: the 29th is the day
    assert is_invoice_day(MONTHLY, D(2026, 2, 28))
    assert period_for(MONTHLY, D(2028, 3, 5)) == (D(2028, 2, 1), D(2028, 2, 29))
    assert period_for(MONTHLY, D(2026, 3, 30)) == (D(2026, 2, 1), D(2026, 2, 28))
    assert period_for(MONTHLY, D(2026, 1, 3)) == (D(2025, 12, 1), D(2025, 12, 31))


@pytest.mark.parametrize("weekday", range(7))
def test_weekly_periods_for_every_weekday(weekday):
    sched = Sched("weekly", weekday)
    start = D(2026, 2, 20)  # spans a month end and February of a common year
    for offset in range(21):
        d = start + dt.timedelta(days=offset)
        assert is_invoice_day(sched, d) is (d.weekday() == weekday)
        p_start, p_end = period_for(sched, d)
        assert p_end.weekday() == weekday
        assert p_end <= d < p_end + dt.timedelta(days=7)
        assert p_end - p_start == dt.timedelta(days=6)
        if is_invoice_day(sched, d):
            assert p_end == d
        c_start, c_end = period_containing(sched, d)
        assert c_start <= d <= c_end and c_end.weekday() == weekday
        assert c_end - c_start == dt.timedelta(days=6)


def test_weekly_period_across_leap_day():
    sunday = Sched("weekly", 6)
    assert period_for(sunday, D(2028, 3, 5)) == (D(2028, 2, 28), D(2028, 3, 5))
    assert period_containing(sunday, D(2028, 2, 29)) == (D(2028, 2, 28), D(2028, 3, 5))


def test_bad_schedule_is_refused():
    with pytest.raises(ValueError, match="billing frequency"):
        is_invoice_day(Sched("daily"), D(2026, 1, 1))
    with pytest.raises(ValueError, match="week_end_weekday"):
        period_for(Sched("weekly", 7), D(2026, 1, 1))


# -- consolidation ---------------------------------------------------------------------------


def test_monthly_consolidation_creates_one_invoice(engine):
    cid = make_customer(engine, "ACME", payment_terms_days=30)
    in_period = [
        make_fee_line(engine, cid, D(2026, 1, 1), "100.10"),
        make_fee_line(engine, cid, D(2026, 1, 15), "0.20"),
        make_fee_line(engine, cid, D(2026, 1, 31), "1234.56"),
    ]
    after = make_fee_line(engine, cid, D(2026, 2, 1), "5.00")

    assert consolidate(engine, D(2026, 1, 30)).created == ()  # not an invoice day
    result = consolidate(engine, D(2026, 1, 31))

    assert result.customers_due == 1
    [inv] = result.created
    assert inv.number == "INV-2026-000001"
    assert (inv.period_start, inv.period_end) == (D(2026, 1, 1), D(2026, 1, 31))
    assert inv.issue_date == D(2026, 1, 31) and inv.due_date == D(2026, 3, 2)
    assert inv.total_amount == Decimal("1334.86") and isinstance(inv.total_amount, Decimal)
    assert inv.line_count == 3 and inv.currency == "EUR"
    assert all(_invoice_of_line(engine, lid) == inv.number for lid in in_period)
    assert _invoice_of_line(engine, after) is None
    frame = list_invoices(engine)
    assert frame["number"].tolist() == ["INV-2026-000001"]
    assert frame.loc[0, "status"] == "PENDING"
    assert frame.loc[0, "total_amount"] == Decimal("1334.86")
    assert result.totals_by_currency() == {"EUR": Decimal("1334.86")}
    assert result.metadata()["invoice_numbers"] == ["INV-2026-000001"]


def test_total_is_rounded_to_the_currency_minor_unit(engine):
    cid = make_customer(engine, "JAPAN", billing_currency="JPY")
    make_fee_line(engine, cid, D(2026, 1, 3), "1000.4", billing_currency="JPY")
    make_fee_line(engine, cid, D(2026, 1, 4), "2000.3", billing_currency="JPY")
    [inv] = consolidate(engine, D(2026, 1, 31)).created
    assert inv.total_amount == Decimal("3001") and inv.currency == "JPY"


def test_weekly_customer_is_invoiced_on_its_week_end_day(engine):
    cid = make_customer(engine, "WEEKLY", billing_frequency="weekly", week_end_weekday=2)
    make_fee_line(engine, cid, D(2026, 1, 8), "10.00")  # Thursday: first day of the period
    make_fee_line(engine, cid, D(2026, 1, 14), "20.00")  # Wednesday: last day
    make_fee_line(engine, cid, D(2026, 1, 15), "40.00")  # next period
    assert D(2026, 1, 14).weekday() == 2
    assert consolidate(engine, D(2026, 1, 13)).customers_due == 0
    [inv] = consolidate(engine, D(2026, 1, 14)).created
    assert (inv.period_start, inv.period_end) == (D(2026, 1, 8), D(2026, 1, 14))
    assert inv.total_amount == Decimal("30.00") and inv.line_count == 2


def test_only_customers_due_that_day_are_invoiced(engine):
    monthly = make_customer(engine, "MONTHLY")
    saturday = make_customer(engine, "SAT", billing_frequency="weekly", week_end_weekday=5)
    make_fee_line(engine, monthly, D(2026, 1, 30), "1.00")
    make_fee_line(engine, saturday, D(2026, 1, 30), "2.00")
    res = consolidate(engine, D(2026, 1, 31))  # a Saturday and a month end
    assert {c.customer_code for c in res.created} == {"MONTHLY", "SAT"}
    assert consolidate(engine, D(2026, 2, 7)).customers_due == 1  # Saturday only


def test_zero_line_period_creates_no_invoice(engine):
    make_customer(engine, "QUIET")
    res = consolidate(engine, D(2026, 1, 31))
    assert res.created == () and res.empty == ("QUIET",)
    assert _counter(engine, "INV", 2026) is None  # no number consumed
    assert list_invoices(engine).empty


def test_consolidation_is_idempotent_and_reports_late_lines(engine):
    cid = make_customer(engine, "ACME")
    make_fee_line(engine, cid, D(2026, 1, 5), "10.00")
    [first] = consolidate(engine, D(2026, 1, 31)).created

    again = consolidate(engine, D(2026, 1, 31))
    assert again.created == ()
    assert [s.invoice_number for s in again.skipped] == [first.number]

    late = make_fee_line(engine, cid, D(2026, 1, 20), "7.00")  # arrives after invoicing
    rerun = consolidate(engine, D(2026, 1, 31))
    assert rerun.created == ()
    [flag] = rerun.late_lines
    assert flag.line_id == late and flag.reason == LineFlag.PERIOD_INVOICED
    assert flag.invoice_number == first.number
    assert (flag.period_start, flag.period_end) == (D(2026, 1, 1), D(2026, 1, 31))
    # the old invoice is untouched and the line stays un-invoiced
    detail = invoice_detail(engine, first.number)
    assert detail.invoice.total_amount == Decimal("10.00") and len(detail.lines) == 1
    assert _invoice_of_line(engine, late) is None

    # the next period's run reports it too, and does not mix it into February's invoice
    make_fee_line(engine, cid, D(2026, 2, 3), "3.00")
    feb = consolidate(engine, D(2026, 2, 28))
    [inv] = feb.created
    assert inv.total_amount == Decimal("3.00")
    assert [f.line_id for f in feb.late_lines] == [late]


def test_earlier_period_without_invoice_is_reported_then_forced(engine):
    cid = make_customer(engine, "MISSED")
    missed = make_fee_line(engine, cid, D(2025, 12, 24), "50.00")  # the December run was missed
    make_fee_line(engine, cid, D(2026, 1, 2), "1.00")
    res = consolidate(engine, D(2026, 1, 31))
    assert res.created[0].total_amount == Decimal("1.00")
    [flag] = res.late_lines
    assert (flag.line_id, flag.reason, flag.invoice_number) == (
        missed,
        LineFlag.PERIOD_NOT_INVOICED,
        None,
    )
    assert (flag.period_start, flag.period_end) == (D(2025, 12, 1), D(2025, 12, 31))

    catch_up = consolidate(engine, D(2026, 1, 5), force=True, customer_ids=[cid])
    [dec] = catch_up.created
    assert (dec.period_start, dec.period_end) == (D(2025, 12, 1), D(2025, 12, 31))
    assert dec.issue_date == D(2026, 1, 5) and dec.number == "INV-2026-000002"
    assert catch_up.late_lines == ()


def test_lines_in_another_currency_are_reported_not_mixed(engine):
    cid = make_customer(engine, "ACME", billing_currency="EUR")
    make_fee_line(engine, cid, D(2026, 1, 5), "10.00")
    usd = make_fee_line(engine, cid, D(2026, 1, 6), "99.00", billing_currency="USD")
    res = consolidate(engine, D(2026, 1, 31))
    assert res.created[0].total_amount == Decimal("10.00")
    assert res.created[0].line_count == 1
    [flag] = res.currency_mismatch_lines
    assert flag.line_id == usd and flag.reason == LineFlag.CURRENCY_MISMATCH
    assert "USD" in flag.detail and "EUR" in flag.detail
    assert _invoice_of_line(engine, usd) is None


def test_customer_filter_and_force(engine):
    a = make_customer(engine, "A")
    b = make_customer(engine, "B", billing_frequency="weekly", week_end_weekday=0)
    make_fee_line(engine, a, D(2026, 1, 5), "1.00")
    make_fee_line(engine, b, D(2026, 1, 6), "2.00")
    res = consolidate(engine, D(2026, 1, 14), force=True, customer_ids=[b])
    [inv] = res.created
    assert inv.customer_code == "B"
    assert (inv.period_start, inv.period_end) == (D(2026, 1, 6), D(2026, 1, 12))


def test_issue_date_sets_number_year_and_due_date(engine):
    cid = make_customer(engine, "ACME", payment_terms_days=15)
    make_fee_line(engine, cid, D(2026, 12, 10), "1.00")
    [inv] = consolidate(engine, D(2026, 12, 31), issue_date=D(2027, 1, 2)).created
    assert inv.number == "INV-2027-000001" and inv.due_date == D(2027, 1, 17)
    make_fee_line(engine, cid, D(2026, 11, 10), "1.00")
    with pytest.raises(ValueError, match="precedes the end"):
        consolidate(engine, D(2026, 11, 30), issue_date=D(2026, 11, 29))


def test_numbering_is_gapless_across_many_invoices_and_years(engine):
    ids = [make_customer(engine, f"C{i:02d}") for i in range(25)]
    for cid in ids:
        make_fee_line(engine, cid, D(2026, 1, 10), "1.00")
        make_fee_line(engine, cid, D(2026, 2, 10), "1.00")
    jan = consolidate(engine, D(2026, 1, 31)).numbers
    feb = consolidate(engine, D(2026, 2, 28)).numbers
    assert jan + feb == [f"INV-2026-{n:06d}" for n in range(1, 51)]
    assert _counter(engine, "INV", 2026) == 50
    make_fee_line(engine, ids[0], D(2026, 12, 10), "1.00")
    assert consolidate(engine, D(2026, 12, 31), issue_date=D(2027, 1, 1)).numbers == [
        "INV-2027-000001"
    ]


def test_rollback_leaves_no_gap(engine, monkeypatch):
    a = make_customer(engine, "A")
    b = make_customer(engine, "B")
    make_fee_line(engine, a, D(2026, 1, 5), "1.00")
    b_line = make_fee_line(engine, b, D(2026, 1, 5), "2.00")
    assert consolidate(engine, D(2026, 1, 31), customer_ids=[a]).numbers == ["INV-2026-000001"]

    def boom(session, invoice_id, line_ids):
        # the number is allocated and the invoice inserted when the stamping fails
        assert _counter_in(session) == 2
        raise RuntimeError("disk full")

    def _counter_in(session):
        return session.execute(
            select(DocumentCounter.last_number).where(DocumentCounter.kind == "INV")
        ).scalar()

    monkeypatch.setattr(invoicing.consolidation, "_stamp_lines", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        consolidate(engine, D(2026, 1, 31), customer_ids=[b])
    monkeypatch.undo()

    assert _counter(engine, "INV", 2026) == 1
    assert list_invoices(engine)["number"].tolist() == ["INV-2026-000001"]
    assert _invoice_of_line(engine, b_line) is None
    assert consolidate(engine, D(2026, 1, 31)).numbers == ["INV-2026-000002"]


def test_zone_threshold_holds_small_amounts(engine):
    cid = make_customer(engine, "ACME", billing_currency="EUR")
    # FAA lines: local USD, billed in EUR
    faa1 = make_fee_line(
        engine,
        cid,
        D(2026, 1, 5),
        "150.00",
        zone_id="FAA",
        local_amount="180.00",
        local_currency="USD",
        fx_rate="0.8333",
    )
    faa2 = make_fee_line(
        engine,
        cid,
        D(2026, 1, 9),
        "150.00",
        zone_id="FAA",
        local_amount="180.00",
        local_currency="USD",
        fx_rate="0.8333",
    )
    make_fee_line(engine, cid, D(2026, 1, 7), "20.00", zone_id="EC")
    res = consolidate(engine, D(2026, 1, 31), thresholds={"faa": Decimal("400")})
    [inv] = res.created
    assert inv.total_amount == Decimal("20.00") and inv.line_count == 1
    assert sorted(f.line_id for f in res.held_lines) == sorted([faa1, faa2])
    assert all(f.reason == LineFlag.BELOW_THRESHOLD for f in res.held_lines)
    assert "360.00 USD below the threshold 400.00 USD" in res.held_lines[0].detail
    # a re-run still calls them held, not late
    rerun = consolidate(engine, D(2026, 1, 31), thresholds={"FAA": Decimal("400")})
    assert rerun.late_lines == () and len(rerun.held_lines) == 2

    # at or above the threshold the zone is invoiced
    make_fee_line(
        engine,
        cid,
        D(2026, 2, 5),
        "333.33",
        zone_id="FAA",
        local_amount="400.00",
        local_currency="USD",
        fx_rate="0.833325",
    )
    feb = consolidate(engine, D(2026, 2, 28), thresholds={"FAA": Decimal("400")})
    assert feb.created[0].total_amount == Decimal("333.33")
    with pytest.raises(ValueError, match="negative"):
        consolidate(engine, D(2026, 2, 28), thresholds={"FAA": Decimal("-1")})


# -- transitions -----------------------------------------------------------------------------


def _one_invoice(engine, amount="100.00", code="ACME", day=D(2026, 1, 31), terms=30):
    cid = make_customer(engine, code, payment_terms_days=terms)
    lines = [
        make_fee_line(engine, cid, day.replace(day=5), amount),
        make_fee_line(engine, cid, day.replace(day=6), "0.50"),
    ]
    [inv] = consolidate(engine, day, customer_ids=[cid]).created
    return cid, inv, lines


def test_pay_and_refusals(engine):
    _, inv, _ = _one_invoice(engine)
    paid_at = dt.datetime(2026, 2, 10, 9, 30, tzinfo=dt.UTC)
    summary = pay(engine, inv.number, paid_at=paid_at)
    assert summary.status == "PAID" and summary.paid_at == paid_at
    with pytest.raises(InvoiceStateError) as exc:
        pay(engine, inv.number)
    assert str(exc.value) == (
        f"invoice {inv.number} is PAID; only PENDING or OVERDUE invoices can be paid"
    )
    with pytest.raises(
        InvoiceStateError, match="is PAID; only PENDING or OVERDUE invoices can be voided"
    ):
        void(engine, inv.number, "customer dispute")
    assert invoice_detail(engine, inv.number).invoice.paid_at == paid_at  # unchanged


def test_unknown_number(engine):
    with pytest.raises(InvoiceNotFound, match="INV-2026-999999"):
        pay(engine, "INV-2026-999999")
    with pytest.raises(InvoiceNotFound):
        void(engine, "INV-2026-999999", "x")
    with pytest.raises(InvoiceNotFound):
        invoice_detail(engine, "nope")


def test_void_releases_lines_records_credit_note_and_reinvoice(engine):
    cid, inv, lines = _one_invoice(engine)
    voided_at = dt.datetime(2026, 2, 3, 12, tzinfo=dt.UTC)
    res = void(engine, inv.number, "wrong MTOW", voided_at=voided_at)
    assert res.credit_note_number == "CN-2026-000001"
    assert res.amount == Decimal("100.50") and res.released_lines == 2
    assert res.detail.invoice.status == "VOID" and len(res.detail.lines) == 2
    assert res.detail.credit_note is not None
    assert res.detail.credit_note.number == "CN-2026-000001"
    assert all(_invoice_of_line(engine, lid) is None for lid in lines)

    detail = invoice_detail(engine, inv.number)
    assert detail.invoice.status == "VOID" and detail.invoice.void_reason == "wrong MTOW"
    assert detail.invoice.voided_at == voided_at and detail.lines == ()
    with engine.connect() as conn:
        cn = conn.execute(select(CreditNote)).one()
    assert (cn.number, cn.amount, cn.currency) == ("CN-2026-000001", Decimal("100.50"), "EUR")

    # second void and paying a void invoice are refused with a clear message
    with pytest.raises(InvoiceStateError) as exc:
        void(engine, inv.number, "again")
    assert str(exc.value).startswith(f"invoice {inv.number} is VOID; only PENDING or OVERDUE")
    with pytest.raises(InvoiceStateError) as exc:
        pay(engine, inv.number)
    assert str(exc.value) == (
        f"invoice {inv.number} is VOID; only PENDING or OVERDUE invoices can be paid"
    )
    assert _counter(engine, "CN", 2026) == 1  # the refused void consumed no number

    # a normal re-run does not re-invoice (not an invoice day); a forced one does
    assert consolidate(engine, D(2026, 2, 3), today=D(2026, 2, 3)).created == ()
    [again] = consolidate(
        engine, D(2026, 2, 3), force=True, customer_ids=[cid], today=D(2026, 2, 3)
    ).created
    assert again.number == "INV-2026-000002" and again.replaces == inv.number
    assert (again.period_start, again.period_end) == (D(2026, 1, 1), D(2026, 1, 31))
    assert again.issue_date == D(2026, 2, 3) and again.due_date == D(2026, 3, 5)
    assert again.total_amount == Decimal("100.50")
    assert all(_invoice_of_line(engine, lid) == again.number for lid in lines)
    statuses = list_invoices(engine).set_index("number")["status"].to_dict()
    assert statuses == {inv.number: "VOID", again.number: "PENDING"}


def test_replacement_is_issued_on_its_real_day_and_references_the_void(engine):
    cid, inv, lines = _one_invoice(engine)  # January, issued 2026-01-31, due 2026-03-02
    res = void(
        engine, inv.number, "wrong MTOW", voided_at=dt.datetime(2026, 3, 9, 16, tzinfo=dt.UTC)
    )
    # the operator re-invoices January by naming its last day: the replacement is not dated
    # 2026-01-31 (due 2026-03-02, overdue on arrival) but on the day it is created
    [rep] = consolidate(
        engine, D(2026, 1, 31), force=True, customer_ids=[cid], today=D(2026, 3, 10)
    ).created
    assert (rep.period_start, rep.period_end) == (D(2026, 1, 1), D(2026, 1, 31))
    assert rep.issue_date == D(2026, 3, 10) and rep.due_date == D(2026, 4, 9)
    assert rep.replaces == inv.number and rep.number == "INV-2026-000002"
    assert all(_invoice_of_line(engine, lid) == rep.number for lid in lines)
    assert mark_overdue(engine, D(2026, 3, 11)) == []  # full payment terms from the real day

    detail = invoice_detail(engine, rep.number)
    [ref] = detail.replaces
    assert (ref.number, ref.credit_note_number) == (inv.number, res.credit_note_number)
    assert ref.issue_date == D(2026, 1, 31) and ref.total_amount == Decimal("100.50")
    assert ref.voided_at == dt.datetime(2026, 3, 9, 16, tzinfo=dt.UTC)
    assert detail.replaced_by is None
    voided = invoice_detail(engine, inv.number)
    assert voided.replaced_by == rep.number and voided.replaces == ()
    stored = list_invoices(engine).set_index("number")["issue_date"].to_dict()
    assert stored == {inv.number: D(2026, 1, 31), rep.number: D(2026, 3, 10)}


def test_replacement_issue_date_is_never_before_the_void_or_the_planned_date(engine):
    cid, inv, _ = _one_invoice(engine)
    void(engine, inv.number, "late void", voided_at=dt.datetime(2026, 2, 20, tzinfo=dt.UTC))
    # a clock behind the void (tests, a skewed host): the void's day wins
    [rep] = consolidate(
        engine, D(2026, 1, 31), force=True, customer_ids=[cid], today=D(2026, 2, 1)
    ).created
    assert rep.issue_date == D(2026, 2, 20)
    # a chain of replacements: each names the invoice it replaces, latest void first
    void(engine, rep.number, "again", voided_at=dt.datetime(2026, 2, 21, tzinfo=dt.UTC))
    [third] = consolidate(
        engine,
        D(2026, 1, 31),
        force=True,
        customer_ids=[cid],
        issue_date=D(2026, 2, 25),  # a planned date after today and the void is kept
        today=D(2026, 2, 22),
    ).created
    assert third.issue_date == D(2026, 2, 25) and third.replaces == rep.number
    refs = invoice_detail(engine, third.number).replaces
    assert [r.number for r in refs] == [rep.number, inv.number]
    assert [r.credit_note_number for r in refs] == ["CN-2026-000002", "CN-2026-000001"]
    assert invoice_detail(engine, rep.number).replaced_by == third.number


def test_a_first_invoice_keeps_its_planned_issue_date(engine):
    cid = make_customer(engine, "ACME")
    make_fee_line(engine, cid, D(2026, 1, 5), "10.00")
    # a catch-up of a missed period is not a replacement: dated as asked
    [inv] = consolidate(engine, D(2026, 1, 31), today=D(2026, 6, 1)).created
    assert inv.issue_date == D(2026, 1, 31) and inv.replaces is None
    assert invoice_detail(engine, inv.number).replaces == ()


def test_credit_note_detail_and_invoices_of_flights(engine):
    cid = make_customer(engine, "ACME")
    fid = make_flight(engine, flight_date=D(2026, 1, 4))
    make_fee_line(engine, cid, D(2026, 1, 4), "12.00", flight_id=fid, zone_id="EC")
    make_fee_line(engine, cid, D(2026, 1, 4), "3.00", flight_id=fid, zone_id="UK")
    other = make_flight(engine, flight_date=D(2026, 2, 4))
    make_fee_line(engine, cid, D(2026, 2, 4), "1.00", flight_id=other)
    [inv] = consolidate(engine, D(2026, 1, 31)).created

    [(flight, found)] = invoicing.invoices_of_flights(engine, [fid, other, 999]).items()
    assert flight == fid and (found.number, found.status) == (inv.number, "PENDING")
    assert (found.customer_code, found.period_end) == ("ACME", D(2026, 1, 31))

    res = void(engine, inv.number, "dispute", voided_at=dt.datetime(2026, 2, 2, tzinfo=dt.UTC))
    assert invoicing.invoices_of_flights(engine, [fid]) == {}  # released
    cn = invoicing.credit_note_detail(engine, res.credit_note_number)
    assert cn.credit_note.number == res.credit_note_number
    assert (cn.credit_note.amount, cn.credit_note.reason) == (Decimal("15.00"), "dispute")
    assert cn.invoice.invoice.number == inv.number and cn.invoice.lines == ()
    at_void = invoicing.credit_note_of_void(res)
    assert at_void.invoice.zone_totals() == {"EC": Decimal("12.00"), "UK": Decimal("3.00")}
    with pytest.raises(invoicing.CreditNoteNotFound, match="no credit note numbered 'CN-1'"):
        invoicing.credit_note_detail(engine, "CN-1")


def test_void_requires_a_reason(engine):
    _, inv, _ = _one_invoice(engine)
    with pytest.raises(ValueError, match="reason"):
        void(engine, inv.number, "  ")
    assert invoice_detail(engine, inv.number).invoice.status == "PENDING"


def test_mark_overdue_is_idempotent(engine):
    _, a, _ = _one_invoice(engine, code="A", terms=10)  # due 2026-02-10
    _, b, _ = _one_invoice(engine, code="B", terms=20)  # due 2026-02-20
    _, c, _ = _one_invoice(engine, code="C", terms=0)  # due 2026-01-31
    pay(engine, c.number)
    assert mark_overdue(engine, D(2026, 2, 10)) == []  # due today: not overdue yet
    assert mark_overdue(engine, D(2026, 2, 11)) == [a.number]
    assert mark_overdue(engine, D(2026, 2, 11)) == []
    assert mark_overdue(engine, D(2026, 3, 1)) == [b.number]
    statuses = list_invoices(engine).set_index("number")["status"].to_dict()
    assert statuses == {a.number: "OVERDUE", b.number: "OVERDUE", c.number: "PAID"}
    # overdue invoices can still be paid or voided
    assert pay(engine, a.number).status == "PAID"
    assert void(engine, b.number, "written off").detail.invoice.status == "VOID"
    assert list_invoices(engine, status="overdue").empty


def test_list_filters_and_totals(engine):
    _one_invoice(engine, code="A", amount="10.00")
    _, b, _ = _one_invoice(engine, code="B", amount="20.00")
    usd = make_customer(engine, "U", billing_currency="USD")
    make_fee_line(engine, usd, D(2026, 1, 9), "7.25", billing_currency="USD")
    consolidate(engine, D(2026, 1, 31), customer_ids=[usd])
    pay(engine, b.number)

    assert list_invoices(engine, customer_code="B")["number"].tolist() == [b.number]
    assert list_invoices(engine, status="PAID")["customer_code"].tolist() == ["B"]
    assert list(list_invoices(engine).columns) == list(invoicing.INVOICE_COLUMNS)
    with pytest.raises(ValueError, match="unknown invoice status"):
        list_invoices(engine, status="LOST")
    assert totals_by_currency(engine) == {"EUR": Decimal("31.00"), "USD": Decimal("7.25")}
    assert totals_by_currency(engine, statuses=["PENDING"]) == {
        "EUR": Decimal("10.50"),
        "USD": Decimal("7.25"),
    }
    assert totals_by_currency(engine, issued_from=D(2026, 2, 1)) == {}


def test_invoice_detail_joins_flights(engine):
    cid = make_customer(engine, "ACME")
    f1 = make_flight(engine, flight_date=D(2026, 1, 4), callsign="ACM1", map_path="maps/f1.html")
    make_fee_line(engine, cid, D(2026, 1, 4), "10.00", flight_id=f1, zone_id="EC")
    make_fee_line(engine, cid, D(2026, 1, 4), "5.00", flight_id=f1, zone_id="UK")
    make_fee_line(engine, cid, D(2026, 1, 2), "1.00")  # no flights row
    [inv] = consolidate(engine, D(2026, 1, 31)).created
    detail = invoice_detail(engine, inv.number)
    assert detail.customer.code == "ACME"
    assert [ln.flight_date for ln in detail.lines] == [D(2026, 1, 2), D(2026, 1, 4), D(2026, 1, 4)]
    orphan, groups = detail.flights[0], detail.flights
    assert orphan.callsign is None and orphan.subtotal == Decimal("1.00")
    assert groups[1].flight_id == f1 and groups[1].callsign == "ACM1"
    assert groups[1].map_path == "maps/f1.html" and groups[1].subtotal == Decimal("15.00")
    assert detail.zone_totals() == {"EC": Decimal("11.00"), "UK": Decimal("5.00")}
    assert detail.lines_total == inv.total_amount
    entry = detail.lines[1].entry_time
    assert entry.tzinfo is not None and entry == dt.datetime(2026, 1, 4, 10, tzinfo=dt.UTC)


# -- concurrency (PostgreSQL) ----------------------------------------------------------------


def _consolidate_worker(url: str, day: dt.date, out: mp.Queue, start: mp.Barrier) -> None:
    engine = make_engine(url)
    try:
        start.wait(timeout=60)
        out.put(("ok", consolidate(engine, day).numbers))
    except Exception as exc:  # reported to the test
        out.put(("error", repr(exc)))
    finally:
        engine.dispose()


def _run_processes(target, args_list) -> list[tuple[str, object]]:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    start = ctx.Barrier(len(args_list))
    procs = [ctx.Process(target=target, args=(*args, out, start)) for args in args_list]
    for p in procs:
        p.start()
    results = [out.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return results


@pytest.mark.postgres
def test_concurrent_consolidation_one_invoice_per_period_no_gap(pg_engine, postgres_database_url):
    n_customers = 12
    for i in range(n_customers):
        cid = make_customer(pg_engine, f"C{i:02d}")
        for day in (3, 17, 30):
            make_fee_line(pg_engine, cid, D(2026, 1, day), f"{i + 1}.10")
    results = _run_processes(
        _consolidate_worker, [(postgres_database_url, D(2026, 1, 31)) for _ in range(4)]
    )
    assert all(kind == "ok" for kind, _ in results), results
    numbers = [n for _, nums in results for n in nums]  # type: ignore[union-attr]
    assert sorted(numbers) == [f"INV-2026-{n:06d}" for n in range(1, n_customers + 1)]

    with pg_engine.connect() as conn:
        per_customer = conn.execute(
            select(Invoice.customer_id, func.count()).group_by(Invoice.customer_id)
        ).all()
        uninvoiced = conn.execute(
            select(func.count()).select_from(FeeLine).where(FeeLine.invoice_id.is_(None))
        ).scalar()
        mismatched = conn.execute(
            text(
                "SELECT count(*) FROM invoices i WHERE i.line_count <> "
                "(SELECT count(*) FROM fee_lines l WHERE l.invoice_id = i.id) OR i.total_amount <> "
                "(SELECT sum(l.billing_amount) FROM fee_lines l WHERE l.invoice_id = i.id)"
            )
        ).scalar()
    assert len(per_customer) == n_customers and all(c == 1 for _, c in per_customer)
    assert uninvoiced == 0 and mismatched == 0
    assert _counter(pg_engine, "INV", 2026) == n_customers


def _transition_worker(url: str, action: str, number: str, out: mp.Queue, start: mp.Barrier):
    engine = make_engine(url)
    try:
        start.wait(timeout=60)
        if action == "pay":
            pay(engine, number)
        else:
            void(engine, number, "race")
        out.put((action, "ok"))
    except InvoiceStateError as exc:
        out.put((action, str(exc)))
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_concurrent_pay_and_void_exactly_one_wins(pg_engine, postgres_database_url):
    _, inv, _ = _one_invoice(pg_engine)
    results = _run_processes(
        _transition_worker,
        [(postgres_database_url, "pay", inv.number), (postgres_database_url, "void", inv.number)],
    )
    outcomes = dict(results)
    assert sorted(outcomes.values()).count("ok") == 1, outcomes
    status = invoice_detail(pg_engine, inv.number).invoice.status
    winner = "pay" if outcomes["pay"] == "ok" else "void"
    assert status == {"pay": "PAID", "void": "VOID"}[winner]
    with pg_engine.connect() as conn:
        n_cn = conn.execute(select(func.count()).select_from(CreditNote)).scalar()
    assert n_cn == (1 if winner == "void" else 0)


@pytest.mark.postgres
def test_unique_index_is_the_last_line_of_defence(pg_engine, monkeypatch):
    """A writer that does not lock the customer inserts the period's invoice between our
    check and our insert: ours rolls back cleanly (no number consumed), reported skipped."""
    cid = make_customer(pg_engine, "RACE")
    line = make_fee_line(pg_engine, cid, D(2026, 1, 5), "1.00")
    original = invoicing.consolidation._create_invoice

    def intruder_then_create(session, customer, period, issue, lines, **kwargs):
        with transaction(pg_engine) as other:  # another connection, committed first
            other.add(
                Invoice(
                    number="MANUAL-1",
                    customer_id=cid,
                    period_start=period[0],
                    period_end=period[1],
                    issue_date=issue,
                    due_date=issue,
                    currency="EUR",
                    total_amount=Decimal("0"),
                    line_count=0,
                    status="PENDING",
                )
            )
        return original(session, customer, period, issue, lines, **kwargs)

    monkeypatch.setattr(invoicing.consolidation, "_create_invoice", intruder_then_create)
    res = consolidate(pg_engine, D(2026, 1, 31))
    assert res.created == ()
    assert [s.invoice_number for s in res.skipped] == ["MANUAL-1"]
    assert _counter(pg_engine, "INV", 2026) is None  # the allocation rolled back
    assert _invoice_of_line(pg_engine, line) is None
