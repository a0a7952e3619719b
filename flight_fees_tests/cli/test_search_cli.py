"""``flight-fees lines``, ``invoice list`` filters, ``batches`` and ``credit-notes`` on SQLite
and PostgreSQL: pages without gaps or repeats, totals equal to a direct query, batch progress
and failed flights."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import and_, select
from typer.testing import CliRunner

from flight_fees.cli.main import app
from flight_fees.lib.db import transaction
from flight_fees.lib.db.models import (
    CreditNote,
    Customer,
    FeeLine,
    Flight,
    Invoice,
    ProcessingBatch,
)
from flight_fees_tests.factories import make_customer, make_fee_line, make_flight

runner = CliRunner()
D0 = dt.date(2026, 10, 1)


def _invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def _invoice(engine, customer_id: int, number: str, status: str, total: str) -> int:
    with transaction(engine) as session:
        inv = Invoice(
            number=number, customer_id=customer_id, period_start=D0,
            period_end=D0 + dt.timedelta(days=30), issue_date=D0 + dt.timedelta(days=31),
            due_date=D0 + dt.timedelta(days=61), currency="EUR", total_amount=Decimal(total),
            line_count=0, status=status,
        )  # fmt: skip
        session.add(inv)
        session.flush()
        return inv.id


@pytest.fixture
def world(engine, db_url, monkeypatch):
    """Two customers, 30 flights over 6 days in zones LF and ED, EUR and GBP lines; some
    lines on a live invoice INV-2026-000001."""
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    c1 = make_customer(engine, "C1")
    c2 = make_customer(engine, "C2", billing_currency="GBP")
    inv = _invoice(engine, c1, "INV-2026-000001", "PENDING", "0")
    for i in range(30):
        day = D0 + dt.timedelta(days=i % 6)
        customer = c1 if i % 3 else c2
        fid = make_flight(
            engine, 2026100000000 + i, flight_date=day, customer_id=customer,
            callsign=f"CS{i % 4}", registration=f"D-AX{i % 5}",
        )  # fmt: skip
        for line_no, zone in enumerate(("LF", "ED")[: 1 + i % 2], start=1):
            make_fee_line(
                engine, customer, day, f"{100 + i}.{i:02d}", flight_id=fid, line_no=line_no,
                zone_id=zone, billing_currency="EUR" if customer == c1 or i % 2 else "GBP",
                invoice_id=inv if customer == c1 and i < 12 else None,
            )  # fmt: skip
    return {"c1": c1, "c2": c2, "invoice": inv}


def _direct(engine, customer: str, zone: str, d1: dt.date, d2: dt.date) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(FeeLine.flight_id, FeeLine.line_no, FeeLine.billing_amount,
                       FeeLine.billing_currency)
                .join(Customer, Customer.id == FeeLine.customer_id)
                .where(and_(Customer.code == customer, FeeLine.zone_id == zone,
                            FeeLine.flight_date.between(d1, d2)))
            )
        ]  # fmt: skip


def test_lines_json_pages_and_totals_match_a_direct_query(engine, world):
    d1, d2 = D0 + dt.timedelta(days=1), D0 + dt.timedelta(days=4)
    expected = _direct(engine, "C1", "LF", d1, d2)
    assert len(expected) > 7
    base = ["lines", "--customer", "C1", "--zone", "LF", "--from", str(d1), "--to", str(d2)]
    seen: list[tuple] = []
    cursor: list[str] = []
    while True:
        result = _invoke(*base, "--json", "--limit", "3", *cursor)
        assert result.exit_code == 0, result.output
        page = json.loads(result.stdout)
        totals = {k: Decimal(v) for k, v in page["totals"].items()}
        seen += [
            (ln["flight_id"], ln["line_no"], Decimal(ln["billing_amount"]), ln["billing_currency"])
            for ln in page["lines"]
        ]
        assert all(ln["customer"] == "C1" and ln["zone_id"] == "LF" for ln in page["lines"])
        assert all(str(d1) <= ln["day"] <= str(d2) for ln in page["lines"])
        if page["next_cursor"] is None:
            break
        cursor = ["--cursor", page["next_cursor"]]
    assert len(seen) == len(set(seen))  # no repeat
    assert sorted(seen) == sorted(expected)  # no gap
    direct: dict[str, Decimal] = {}
    for *_, amount, ccy in expected:
        direct[ccy] = direct.get(ccy, Decimal(0)) + amount
    assert totals == direct
    by_offset = _invoke(*base, "--json", "--limit", "4", "--offset", "4")
    assert [(ln["flight_id"], ln["line_no"]) for ln in json.loads(by_offset.stdout)["lines"]] == [
        (f, n) for f, n, *_ in seen[4:8]
    ]


def test_lines_status_invoice_and_csv(engine, world):
    invoiced = json.loads(
        _invoke("lines", "--status", "invoiced", "--json", "--limit", "500").stdout
    )
    on_invoice = json.loads(
        _invoke("lines", "--invoice", "INV-2026-000001", "--json", "--limit", "500").stdout
    )
    assert invoiced["lines"] and invoiced["lines"] == on_invoice["lines"]
    assert {ln["status"] for ln in invoiced["lines"]} == {"invoiced"}
    billed = json.loads(_invoke("lines", "--status", "billed", "--json", "--limit", "500").stdout)
    with engine.connect() as conn:
        n_all = len(conn.execute(select(FeeLine.id)).all())
    assert billed["count"] + invoiced["count"] == n_all
    csv_out = _invoke("lines", "--callsign", "cs1", "--csv", "--limit", "500")
    rows = csv_out.stdout.strip().splitlines()
    assert rows[0].startswith("flight_id,line_no,zone_id,day,customer")
    assert len(rows) > 1 and all(",CS1," in r for r in rows[1:])
    listed = _invoke("invoice", "list", "--registration", "D-AX1")
    assert listed.exit_code == 0, listed.output
    assert "INV-2026-000001" in listed.output
    none = _invoke("invoice", "list", "--zone", "ZZ")
    assert none.exit_code == 0 and "no invoices" in none.output


@pytest.mark.parametrize(
    "args",
    [
        ["lines", "--cursor", "garbage"],
        ["lines", "--status", "paid"],
        ["lines", "--from", "2026-13-01"],
        ["lines", "--limit", "0"],
        ["lines", "--json", "--csv"],
    ],
)
def test_lines_bad_input_is_a_usage_error(world, args):
    result = _invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def _batch(engine, batch_id: str, status: str, requested: int, ok: int, failed: int) -> None:
    with transaction(engine) as session:
        session.add(
            ProcessingBatch(
                batch_id=batch_id, run_id=f"run-{batch_id}", partition_key="2026-10-27",
                started_at=dt.datetime(2026, 10, 28, 1, int(batch_id[-1]), tzinfo=dt.UTC),
                finished_at=None if status == "running" else dt.datetime(2026, 10, 28, 2,
                                                                          tzinfo=dt.UTC),
                status=status, flights_requested=requested, flights_ok=ok, flights_failed=failed,
            )
        )  # fmt: skip


def _flight_of_batch(engine, fid: int, batch_id: str, status: str, category=None, msg=None):
    with transaction(engine) as session:
        session.add(
            Flight(flight_id=fid, flight_date=dt.date(2026, 10, 27), status=status,
                   error_category=category, last_error=msg, batch_id=batch_id)
        )  # fmt: skip


def test_batches_progress_and_failed_flights(engine, db_url, monkeypatch):
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    _batch(engine, "b1", "partial", 3, 1, 2)
    _batch(engine, "b2", "running", 4, 0, 0)
    _flight_of_batch(engine, 11, "b1", "billed")
    _flight_of_batch(engine, 12, "b1", "failed", "unknown_mtow", "no declared MTOW and no type")
    _flight_of_batch(engine, 13, "b1", "blocked", "attribute_conflict", "sources disagree")
    _flight_of_batch(engine, 21, "b2", "billed")
    _flight_of_batch(engine, 22, "b2", "billed")
    _flight_of_batch(engine, 23, "b2", "failed", "not_found", "no track")
    listed = _invoke("batches")
    assert listed.exit_code == 0, listed.output
    b2 = next(line for line in listed.output.splitlines() if "b2" in line)
    assert "75 %" in b2 and "running" in b2  # 2 billed + 1 failed of 4, counted live
    assert listed.output.index("b2") < listed.output.index("b1")  # newest first
    only = _invoke("batches", "--status", "partial")
    assert "b1" in only.output and "b2" not in only.output
    paged = _invoke("batches", "--limit", "1")
    assert "next page: --offset 1" in paged.output
    shown = _invoke("batches", "show", "b1")
    assert shown.exit_code == 0, shown.output
    assert "2 failed flight(s)" in shown.output
    for fid, category in ((12, "unknown_mtow"), (13, "attribute_conflict")):
        row = next(line for line in shown.output.splitlines() if f" {fid} " in line)
        assert category in row
    watched = _invoke("batches", "show", "b2", "--watch", "--interval", "0.01", "--timeout", "0.05")
    assert watched.exit_code == 1
    assert "error: batch b2 still running" in watched.stderr
    with transaction(engine) as session:
        session.get(ProcessingBatch, "b2").status = "partial"
    done = _invoke("batches", "show", "b2", "--watch", "--interval", "0.01")
    assert done.exit_code == 0, done.output
    assert _invoke("batches", "show", "nope").exit_code == 1
    assert _invoke("batches", "--status", "weird").exit_code == 2


def test_credit_notes_list_and_show(engine, db_url, monkeypatch):
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    c1 = make_customer(engine, "C1")
    inv = _invoice(engine, c1, "INV-2026-000007", "VOID", "1234.5")
    with transaction(engine) as session:
        session.add(
            CreditNote(number="CN-2026-000001", invoice_id=inv, amount=Decimal("1234.5"),
                       currency="EUR", reason="wrong MTOW")
        )  # fmt: skip
    listed = _invoke("credit-notes", "list")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if "CN-2026-000001" in line)
    assert "INV-2026-000007" in row and "1,234.50 EUR" in row and "wrong MTOW" in row
    shown = _invoke("credit-notes", "show", "CN-2026-000001")
    assert shown.exit_code == 0, shown.output
    assert "cancels   INV-2026-000007" in shown.output
    missing = _invoke("credit-notes", "show", "CN-2026-999999")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: ")
