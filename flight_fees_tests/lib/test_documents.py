from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import update

from flight_fees.lib.db.models import Customer, Flight
from flight_fees.lib.documents import map_href, render_invoice_html, write_invoice_document
from flight_fees.lib.invoicing import (
    InvoiceNotFound,
    consolidate,
    invoice_detail,
    list_invoices,
    pay,
    void,
)
from flight_fees_tests.factories import make_customer, make_fee_line, make_flight

D = dt.date
EVIL = '<script>alert("x")</script>'


def _invoice(engine, *, name="Acme Air", map_path=None, callsign="ACM123", registration="FABCD"):
    cid = make_customer(engine, "ACME", name=name, address="1 Runway Road\nAirport City")
    f1 = make_flight(
        engine,
        flight_date=D(2026, 1, 4),
        callsign=callsign,
        registration=registration,
        map_path=map_path,
    )
    make_fee_line(
        engine, cid, D(2026, 1, 4), "123.45", flight_id=f1, zone_id="EC",
        local_amount="123.45", fx_rate="1", unit_rate=Decimal("61.250000"),
    )  # fmt: skip
    make_fee_line(
        engine, cid, D(2026, 1, 4), "80.00", flight_id=f1, zone_id="UK",
        local_amount="69.12", local_currency="GBP", fx_rate="1.1574074074",
    )  # fmt: skip
    f2 = make_flight(engine, flight_date=D(2026, 1, 9), callsign="ACM9", registration="FWXYZ")
    make_fee_line(engine, cid, D(2026, 1, 9), "1000.00", flight_id=f2, zone_id="EC")
    [inv] = consolidate(engine, D(2026, 1, 31)).created
    return inv, f1, f2


def test_untrusted_text_is_escaped(engine):
    inv, _, _ = _invoice(engine, name=f"Evil {EVIL} Air")
    with engine.begin() as conn:  # callsign/registration/address come from outside too
        conn.execute(update(Flight).values(callsign="<b>CS</b>", registration="<i>R</i>"))
        conn.execute(update(Customer).values(address="<script>alert(x)</script>"))
    html = render_invoice_html(invoice_detail(engine, inv.number))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(x)&lt;/script&gt;" in html  # address
    assert "<b>CS</b>" not in html and "&lt;b&gt;CS&lt;/b&gt;" in html
    assert "<i>R</i>" not in html and "&lt;i&gt;R&lt;/i&gt;" in html


def test_document_content(engine):
    inv, f1, f2 = _invoice(engine, map_path="/srv/ff/maps/2026-01-04/1.html")
    html = render_invoice_html(
        invoice_detail(engine, inv.number), document_dir=Path("/srv/ff/invoices")
    )
    text = re.sub(r"\s+", " ", html)
    for expected in (
        inv.number,
        "Acme Air",
        "1 Runway Road",
        "2026-01-01 – 2026-01-31",  # period
        "2026-03-02",  # due date (30 days)
        "30 days net",
        f"Flight {f1}",
        f"Flight {f2}",
        "ACM123",
        "FABCD",
        "LFPG → EGLL",
        "LFFF,LFEE",
        "2026-01-04 10:00:00",  # entry
        "2026-01-04 10:42:00",  # exit
        "412.5",  # distance km
        "78000",  # MTOW
        "61.25",  # unit rate
        "2.78",  # service units
        "UK-ROUTE / 2026-01",
        "69.12 GBP",  # local amount + currency
        "1.1574074074",  # fx rate
        "80.00 EUR",
        f"Subtotal flight {f1}",
        "203.45 EUR",  # subtotal of flight 1
        "Zone EC",
        "1,123.45 EUR",  # zone EC total
        "1,203.45 EUR",  # total
        "PENDING",
        "Total due",
        "please pay 1,203.45 EUR by",
    ):
        assert expected in text, expected
    # the map link is relative to the document's directory
    assert 'href="../maps/2026-01-04/1.html"' in html
    assert html.count('class="map-link"') == 1  # flight 2 has no map
    assert "watermark" not in html.split("</style>")[1]
    assert "@media print" in html


def test_map_href_never_yields_a_scheme():
    assert map_href(None) is None and map_href("  ") is None
    assert map_href("javascript:alert(1)") == "javascript%3Aalert%281%29"
    assert map_href("maps/a b.html") == "maps/a%20b.html"
    assert (
        map_href("maps/d/1.html", document_dir=Path("/h/invoices"), home=Path("/h"))
        == "../maps/d/1.html"
    )


def test_void_document_has_watermark_and_credit_note(engine, tmp_path):
    inv, f1, _ = _invoice(engine)
    res = void(engine, inv.number, f"customer dispute {EVIL}")
    html = render_invoice_html(res.detail)  # the voided invoice with the lines it carried
    assert '<div class="watermark" aria-hidden="true">VOID</div>' in html
    assert res.credit_note_number in html and "1,203.45 EUR" in html
    assert f"Flight {f1}" in html
    assert "<script>" not in html and "customer dispute &lt;script&gt;" in html
    assert "please pay" not in html and "Total (cancelled)" in html
    # re-read after the void: lines were released, the document says so
    after = render_invoice_html(invoice_detail(engine, inv.number))
    assert "VOID</div>" in after and "released when it was voided" in after
    assert res.credit_note_number in after


def test_write_invoice_document_stores_its_path(engine, tmp_path):
    inv, _, _ = _invoice(engine, map_path="maps/2026-01-04/1.html")
    out = tmp_path / "docs"
    path = write_invoice_document(engine, inv.number, out)
    assert path == (out / f"{inv.number}.html").resolve()
    html = path.read_text(encoding="utf-8")
    assert inv.number in html and html.startswith("<!DOCTYPE html>")
    assert list(out.iterdir()) == [path]  # no temp file left behind
    frame = list_invoices(engine)
    assert frame.loc[0, "document_path"] == str(path)
    assert invoice_detail(engine, inv.number).invoice.document_path == str(path)
    # relative map paths are taken relative to the flight_fees home
    home = Path(__import__("os").environ["FLIGHT_FEES_HOME"]).resolve()
    expected = Path(__import__("os").path.relpath(home / "maps/2026-01-04/1.html", out))
    assert f'href="{expected.as_posix()}"' in html

    custom = write_invoice_document(engine, inv.number, out, filename="copy.html")
    assert custom.name == "copy.html"
    with pytest.raises(ValueError, match="directory"):
        write_invoice_document(engine, inv.number, out, filename="../x.html")
    with pytest.raises(InvoiceNotFound):
        write_invoice_document(engine, "INV-2026-999999", out)


def test_paid_document_asks_for_no_payment(engine):
    inv, _, _ = _invoice(engine)
    pay(engine, inv.number, paid_at=dt.datetime(2026, 2, 10, 8, 0, tzinfo=dt.UTC))
    html = render_invoice_html(invoice_detail(engine, inv.number))
    assert "please pay" not in html and "Total (paid)" in html
    assert "Paid</strong> on 2026-02-10 08:00:00 UTC" in html
    assert "VOID</div>" not in html
