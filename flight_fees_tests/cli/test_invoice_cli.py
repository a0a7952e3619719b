"""``flight-fees invoice ...`` (the sub-app, invoked directly)."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flight_fees.cli.invoice import invoice_app
from flight_fees.lib.billing.invoicing import consolidate, invoice_detail, list_invoices
from flight_fees_tests.factories import make_customer, make_fee_line, make_flight

D = dt.date
runner = CliRunner()


@pytest.fixture
def db(engine, db_url, monkeypatch):
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    return engine


def _run(*args: str):
    return runner.invoke(invoice_app, list(args), env={"COLUMNS": "200"})


def _seed(engine) -> str:
    cid = make_customer(engine, "ACME", name="Acme <b>Air</b>")
    fid = make_flight(engine, flight_date=D(2026, 1, 4), callsign="ACM42")
    make_fee_line(engine, cid, D(2026, 1, 4), "120.00", flight_id=fid)
    make_fee_line(engine, cid, D(2026, 1, 20), "30.50")
    [inv] = consolidate(engine, D(2026, 1, 31)).created
    return inv.number


def _assert_clean_failure(result, *fragments: str) -> None:
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback, a clean exit
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_list_and_filters(db):
    number = _seed(db)
    result = _run("list")
    assert result.exit_code == 0, result.output
    assert number in result.output and "150.50 EUR" in result.output
    assert "Acme <b>Air</b>" in result.output  # rich markup in names is not interpreted
    assert "1 invoice(s)" in result.output
    assert "no invoices" in _run("list", "--status", "paid").output
    assert "no invoices" in _run("list", "--customer", "NOBODY").output
    bad = _run("list", "--status", "LOST")
    assert bad.exit_code != 0 and "LOST" in bad.output


def test_show_writes_and_opens_the_document(db, tmp_path, monkeypatch):
    number = _seed(db)
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    out = tmp_path / "doc.html"
    result = _run("show", number, "--html-out", str(out), "--open")
    assert result.exit_code == 0, result.output
    assert number in result.output and "150.50 EUR" in result.output
    assert "ACM42" in result.output and "2026-01-01 .. 2026-01-31" in result.output
    assert out.exists() and number in out.read_text(encoding="utf-8")
    assert opened == [out.resolve().as_uri()]
    assert invoice_detail(db, number).invoice.document_path == str(out.resolve())

    # default location: <FLIGHT_FEES_HOME>/invoices/<number>.html, no browser
    result = _run("show", number)
    assert result.exit_code == 0, result.output
    home = Path(__import__("os").environ["FLIGHT_FEES_HOME"])
    assert (home / "invoices" / f"{number}.html").exists()
    assert len(opened) == 1


def test_pay_then_refused_transitions(db):
    number = _seed(db)
    result = _run("pay", number, "--date", "2026-02-14")
    assert result.exit_code == 0, result.output
    assert "PAID" in result.output
    paid_at = invoice_detail(db, number).invoice.paid_at
    assert paid_at is not None and paid_at.date() == D(2026, 2, 14)

    _assert_clean_failure(
        _run("pay", number),
        f"invoice {number} is PAID; only PENDING or OVERDUE invoices can be paid",
    )
    _assert_clean_failure(
        _run("void", number, "--reason", "dispute"),
        f"invoice {number} is PAID; only PENDING or OVERDUE invoices can be voided",
    )


def test_void_then_second_void_and_pay_refused(db, tmp_path):
    number = _seed(db)
    shown = _run("show", number, "--html-out", str(tmp_path))
    assert shown.exit_code == 0, shown.output
    result = _run("void", number, "--reason", "wrong MTOW")
    assert result.exit_code == 0, result.output
    assert "credit note CN-2026-000001" in result.output
    assert "2 fee line(s) released" in result.output
    doc = (tmp_path / f"{number}.html").read_text(encoding="utf-8")
    assert "VOID</div>" in doc and "ACM42" in doc  # the exported copy: rewritten, lines kept
    invoices = Path(os.environ["FLIGHT_FEES_HOME"]) / "invoices"
    for name in (f"{number}.html", f"{number}.pdf", "CN-2026-000001.html", "CN-2026-000001.pdf"):
        assert (invoices / name).exists(), name
    assert "ACM42" in (invoices / f"{number}.html").read_text(encoding="utf-8")
    assert str(invoices.resolve() / "CN-2026-000001.html") in result.output.replace("\n", "")
    # what to do next, with the exact command
    assert "flight-fees invoice consolidate --date 2026-01-31 --force --customer ACME" in (
        result.output
    )
    _assert_clean_failure(_run("void", number, "--reason", "again"), f"invoice {number} is VOID")
    _assert_clean_failure(
        _run("pay", number),
        f"invoice {number} is VOID; only PENDING or OVERDUE invoices can be paid",
    )
    assert list_invoices(db).loc[0, "status"] == "VOID"


def test_unknown_number_is_a_clean_error(db):
    for args in (
        ("show", "INV-2026-424242"),
        ("pay", "INV-2026-424242"),
        ("void", "INV-2026-424242", "--reason", "x"),
    ):
        _assert_clean_failure(_run(*args), "no invoice numbered 'INV-2026-424242'")


def test_consolidate_command(db):
    cid = make_customer(db, "ACME")
    other = make_customer(db, "WEEK", billing_frequency="weekly", week_end_weekday=0)
    make_fee_line(db, cid, D(2026, 1, 10), "10.00")
    make_fee_line(db, other, D(2026, 1, 10), "20.00")

    result = _run("consolidate", "--date", "2026-01-30")
    assert result.exit_code == 0, result.output
    assert "0 customer(s) due, 0 invoice(s) created" in result.output

    # forced on Jan 30: ACME's last complete month is December, which has no lines
    result = _run("consolidate", "--date", "2026-01-30", "--force", "--customer", "ACME")
    assert result.exit_code == 0, result.output
    assert "(forced): 1 customer(s) due, 0 invoice(s) created" in result.output

    # forced on Jan 13 for the weekly customer: its week 2026-01-06..01-12
    result = _run("consolidate", "--date", "2026-01-13", "--force", "-c", "WEEK")
    assert result.exit_code == 0, result.output
    assert "INV-2026-000001" in result.output and "2026-01-06..2026-01-12" in result.output

    result = _run("consolidate", "--date", "2026-01-31")
    assert result.exit_code == 0, result.output
    assert "1 invoice(s) created" in result.output and "INV-2026-000002" in result.output
    home = Path(__import__("os").environ["FLIGHT_FEES_HOME"])
    assert (home / "invoices" / "INV-2026-000002.html").exists()
    again = _run("consolidate", "--date", "2026-01-31")
    assert "0 invoice(s) created" in again.output and "already invoiced: ACME" in again.output
    frame = list_invoices(db, customer_code="ACME")
    assert frame["total_amount"].tolist() == [Decimal("10.00")]

    _assert_clean_failure(_run("consolidate", "--date", "2026-01-31", "-c", "NOPE"), "NOPE")
    bad = _run("consolidate", "--date", "31/01/2026")
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output


def test_overdue_command_is_idempotent(db):
    number = _seed(db)  # due 2026-03-02
    first = _run("overdue", "--date", "2026-03-03")
    assert first.exit_code == 0 and f"1 invoice(s) marked OVERDUE: {number}" in first.output
    second = _run("overdue", "--date", "2026-03-03")
    assert "0 invoice(s) marked OVERDUE" in second.output


def test_reinvoicing_after_a_void_and_the_document_command(db):
    number = _seed(db)  # January, issued 2026-01-31
    assert _run("void", number, "--reason", "wrong MTOW").exit_code == 0
    before = dt.datetime.now(dt.UTC).date()
    result = _run("consolidate", "--date", "2026-01-31", "--force", "--customer", "ACME")
    after = dt.datetime.now(dt.UTC).date()
    assert result.exit_code == 0, result.output
    [replacement] = [n for n in list_invoices(db)["number"] if n != number]
    detail = invoice_detail(db, replacement)
    # issued on the day it is created, not back-dated to the period end
    assert detail.invoice.issue_date in {before, after}
    row = next(line for line in result.output.splitlines() if replacement in line)
    assert str(detail.invoice.issue_date) in row and number in row  # issued, replaces
    assert [r.number for r in detail.replaces] == [number]

    pdf = _run("document", replacement)
    assert pdf.exit_code == 0, pdf.output
    path = Path(pdf.output.strip())
    assert path.name == f"{replacement}.pdf" and path.read_bytes().startswith(b"%PDF-")
    credit = _run("document", "CN-2026-000001", "--format", "html")
    assert credit.exit_code == 0, credit.output
    page = Path(credit.output.strip()).read_text(encoding="utf-8")
    assert f'<strong id="cancelled-invoice">{number}</strong>' in page  # written by the void
    _assert_clean_failure(
        _run("document", "INV-2026-424242"), "no invoice or credit note numbered 'INV-2026-424242'"
    )
    _assert_clean_failure(_run("document", replacement, "-f", "docx"), "unknown document format")
