from __future__ import annotations

import datetime as dt
import html as html_lib
import http.server
import re
import threading
from decimal import Decimal

import pytest
import weasyprint
import yaml
from sqlalchemy import update

from flight_fees.lib.billing.invoicing import (
    CreditNoteNotFound,
    InvoiceNotFound,
    consolidate,
    credit_note_detail,
    invoice_detail,
    list_invoices,
    pay,
    void,
)
from flight_fees.lib.charging.fees import formula_details_json
from flight_fees.lib.charging.tariffs import load_tariffs, quote
from flight_fees.lib.core.money import round_money
from flight_fees.lib.db.models import Customer, Flight
from flight_fees.lib.documents.invoice_figures import line_figures, no_charge_text
from flight_fees.lib.documents.invoices import (
    credit_note_document,
    html_to_pdf,
    invoice_document,
    render_credit_note_html,
    render_invoice_html,
    void_invoice,
    write_invoice_document,
)
from flight_fees.lib.documents.issuer import ISSUER_ENV, load_issuer, parse_issuer
from flight_fees_tests.factories import make_customer, make_fee_line, make_flight

D = dt.date
EVIL = '<script>alert("x")</script>'
TARIFFS = load_tariffs()
OWN_ISSUER = {
    "sample": False,
    "issuer": {"name": "Skyways ANSP", "address": "2 Tower Road", "tax_id": "AB123456789"},
    "contact": {"email": "charges@skyways.example", "phone": "+99 1"},
    "bank": {
        "account_holder": "Skyways ANSP Treasury",
        "iban": "GB82WEST12345698765432",
        "bic": "WESTGB2L",
        "bank_name": "West Bank",
    },
}


def _text(html: str) -> str:
    """The visible text of a page, tags removed and entities decoded, blanks collapsed."""
    body = html.split("</style>", 1)[-1]
    body = re.sub(r"</?(?:strong|sup|a|code)\b[^>]*>", "", body)  # inline: no blank
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", body)))


def _quoted_line(engine, cid, fid, day, zone, distance_km, **quote_args):
    """A fee line as the pipeline stores it: the tariff engine's quote and its details."""
    q = quote(TARIFFS, zone, day, distance_km=distance_km, **quote_args)
    details = q.to_dict()
    details["fx"] = {"policy": q.fx_policy, "from": q.currency, "to": q.currency, "rate": "1"}
    make_fee_line(
        engine, cid, day, round_money(q.amount, q.currency), flight_id=fid, zone_id=zone,
        billing_currency=q.currency, local_amount=q.amount, local_currency=q.currency,
        distance_km=Decimal(str(distance_km)), mtow_kg=Decimal(str(quote_args["mtow_kg"])),
        service_units=q.service_units, unit_rate=q.unit_rate, exemption=q.exemption,
        tariff_id=q.tariff_id, tariff_version=q.tariff_version,
        details=formula_details_json(details),
    )  # fmt: skip
    return q


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
    hostile = parse_issuer(
        {**OWN_ISSUER, "issuer": {**OWN_ISSUER["issuer"], "name": f'ANSP {EVIL} "}}'}},
        source="<test>",
    )
    html = render_invoice_html(
        invoice_detail(engine, inv.number), issuer=hostile, zone_names={"EC": "<b>Zone</b>"}
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(x)&lt;/script&gt;" in html  # address
    assert "<b>CS</b>" not in html and "&lt;b&gt;CS&lt;/b&gt;" in html
    assert "<i>R</i>" not in html and "&lt;i&gt;R&lt;/i&gt;" in html
    assert "<b>Zone</b>" not in html and "&lt;b&gt;Zone&lt;/b&gt;" in html
    # the page footer of the PDF (a CSS string) only ever holds the document number
    assert re.search(r'@bottom-left \{ content: "INV-2026-000001";', html)


def test_document_content(engine):
    inv, f1, f2 = _invoice(engine, map_path="/srv/ff/maps/2026-01-04/1.html")
    html = render_invoice_html(
        invoice_detail(engine, inv.number),
        zone_names={"EC": "Eurocontrol test zone"},
    )
    text = _text(html)
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
        "412.5 km",  # distance (line without stored details: the stored distance)
        "78 t",  # MTOW
        "61.25 EUR",  # unit rate
        "2.78",  # service units
        "69.12 GBP",  # local amount + currency
        "1.1574074074",  # fx rate
        "80.00 EUR",
        f"Subtotal flight {f1}",
        "203.45 EUR",  # subtotal of flight 1
        "Zone EC Eurocontrol test zone 1,123.45 EUR",  # zone total, with the zone's name
        "1,203.45 EUR",  # total
        "PENDING",
        "Total due",
        "Please pay 1,203.45 EUR by 2026-03-02",
    ):
        assert expected in text, expected
    # every flight links its map on the document server (rendered on demand), not printed
    assert (
        f'<span class="no-print">· <a href="http://127.0.0.1:8090/maps/flight/{f1}" '
        'class="map-link">'
    ) in html
    assert html.count('class="map-link"') == 2
    assert "watermark" not in html.split("</style>")[1]
    assert "@media print" in html and "size: A4 landscape" in html
    # the document server's links
    served = render_invoice_html(
        invoice_detail(engine, inv.number), map_base_url="http://127.0.0.1:8080/"
    )
    assert f'href="http://127.0.0.1:8080/maps/flight/{f1}"' in served


def test_issuer_block_bank_details_and_sample_notice(engine, tmp_path, monkeypatch):
    inv, _, _ = _invoice(engine)
    sample = _text(render_invoice_html(invoice_detail(engine, inv.number)))
    shipped = load_issuer()
    assert shipped.sample
    for expected in (shipped.name, shipped.tax_id, shipped.iban_display, shipped.bic):
        assert expected in sample, expected
    assert "Sample issuer." in sample and "not a demand for payment" in sample

    own = tmp_path / "issuer.yaml"
    own.write_text(yaml.safe_dump(OWN_ISSUER), encoding="utf-8")
    monkeypatch.setenv(ISSUER_ENV, str(own))
    text = _text(render_invoice_html(invoice_detail(engine, inv.number)))
    assert "Sample issuer." not in text and shipped.name not in text
    for expected in (
        "Skyways ANSP 2 Tower Road Tax id AB123456789",
        "charges@skyways.example · +99 1",
        "Account holder Skyways ANSP Treasury",
        "IBAN GB82 WEST 1234 5698 7654 32",
        "BIC WESTGB2L",
        "Bank West Bank",
        f"Reference {inv.number}",
    ):
        assert expected in text, expected


def test_eurocontrol_line_shows_what_an_operator_checks(engine):
    """412.5 km in France with a take-off: 392.5 km chargeable, distance factor 3.93,
    weight factor sqrt(78/50) = 1.25 (2 decimals), 4.9125 service units x the unit rate."""
    cid = make_customer(engine, "ACME")
    fid = make_flight(engine, flight_date=D(2026, 1, 4), origin="LFPG", destination="EGLL")
    q = _quoted_line(engine, cid, fid, D(2026, 1, 4), "LF", "412.5", mtow_kg=78000, takeoffs=1)
    [inv] = consolidate(engine, D(2026, 1, 31)).created
    [line] = invoice_detail(engine, inv.number).lines
    fig = line_figures(line, {"LF": "France"})
    rate = TARIFFS.version_on("LF", D(2026, 1, 4))[1].formula.unit_rate
    assert (fig.zone_id, fig.zone_name) == ("LF", "France")
    assert (fig.distance, fig.deduction, fig.deduction_note) == ("412.5 km", "20 km", "1 take-off")
    assert fig.chargeable == "392.5 km"
    assert (fig.distance_factor, fig.weight_factor, fig.weight_note) == ("3.93", "1.25", "78 t")
    assert fig.service_units == "4.9125"
    assert fig.unit_rate == f"{rate:.2f} EUR" and fig.sample is True
    amount = round_money(rate * Decimal("4.9125"), "EUR")
    assert q.amount == amount and fig.charge == fig.amount == f"{amount:,.2f} EUR"
    assert fig.no_charge_reason is None

    text = _text(render_invoice_html(invoice_detail(engine, inv.number)))
    assert "Sample unit rates. The unit rates of LF (marked †) are sample values" in text
    assert "Zone LF France" in text  # the name from the shipped tariffs by default


def test_faa_flat_band_and_multiplier_lines(engine):
    cid = make_customer(engine, "NSC", billing_currency="USD")
    fid = make_flight(engine, flight_date=D(2026, 1, 4))
    day = D(2026, 1, 4)
    oceanic = _quoted_line(
        engine, cid, fid, day, "US", "926", mtow_kg=350000, airspace_class="oceanic"
    )
    band = _quoted_line(engine, cid, fid, day, "HCSM", "300", mtow_kg=350000, fir_crossings=2)
    [inv] = consolidate(engine, D(2026, 1, 31)).created
    us, hcsm = invoice_detail(engine, inv.number).lines
    fig = line_figures(us)
    # 926 km = 500 NM exactly: 5 service units of 100 NM at the oceanic rate
    assert (fig.distance, fig.distance_note, fig.chargeable) == ("500 NM", "926 km", "500 NM")
    assert fig.service_units == "5" and fig.unit_rate_note == "per 100 NM"
    assert fig.airspace_class == "oceanic" and fig.weight_factor == "—"
    assert fig.unit_rate == f"{oceanic.unit_rate:.2f} USD"
    assert fig.charge == f"{oceanic.unit_rate * 5:,.2f} USD" and not fig.sample
    fig = line_figures(hcsm)
    assert fig.unit_rate == "275.00 USD" and fig.unit_rate_note == "band fee"
    assert fig.charge_note == "weight band fee 275 + FIR crossing fee 20; 2 FIR crossing(s)"
    assert fig.charge == "295.00 USD" == f"{band.amount:,.2f} USD"

    # a category multiplier is shown beside the charge (AEROTHAI overflight x 1.45)
    thai = make_customer(engine, "THAI", billing_currency="THB")
    fid2 = make_flight(engine, flight_date=D(2026, 2, 4))
    _quoted_line(engine, thai, fid2, D(2026, 2, 4), "VTBB", "600", mtow_kg=80000)
    [feb] = consolidate(engine, D(2026, 2, 28)).created
    [vtbb] = invoice_detail(engine, feb.number).lines
    assert line_figures(vtbb).charge_note == "× 1.45 (overflight)"


def test_exempt_and_zero_lines_show_only_their_reason(engine):
    cid = make_customer(engine, "ACME")
    fid = make_flight(engine, flight_date=D(2026, 1, 4))
    day = D(2026, 1, 4)
    _quoted_line(engine, cid, fid, day, "LF", "500", mtow_kg=78000)  # charged
    _quoted_line(engine, cid, fid, day, "ED", "300", mtow_kg=78000, flags="state")
    _quoted_line(engine, cid, fid, day, "EK", "15.5", mtow_kg=78000, landings=1)  # < 20 km
    _quoted_line(engine, cid, fid, day, "LS", "0.2", mtow_kg=78000)  # factor rounds to 0
    [inv] = consolidate(engine, D(2026, 1, 31)).created
    detail = invoice_detail(engine, inv.number)
    reasons = [line_figures(ln).no_charge_reason for ln in detail.lines]
    assert reasons == [
        None,
        "exempt: state flight",
        "not charged: 15.5 km in the zone less 20 km for 1 landing leaves no chargeable distance",
        "not charged: 0.2 km chargeable, the distance factor rounds to 0",
    ]
    html = render_invoice_html(detail)
    rows = re.findall(r'<tr class="line no-charge">(.*?)</tr>', html, re.S)
    assert len(rows) == 3
    for row in rows:  # the reason and the distance, no figures and no 0.00 amount
        assert "0.00" not in row and "no charge" in row and 'class="reason"' in row
    summary = html.split('<table class="totals">')[1]
    assert "Zone LF" in summary and "Zone ED" not in summary and "Zone EK" not in summary
    assert no_charge_text("mtow_below_2000_kg") == "exempt: MTOW below 2000 kg"
    assert no_charge_text("category_domestic") == "exempt: domestic flight"
    assert no_charge_text("departure_or_arrival_in_zone").startswith("not charged: the flight")


def test_void_document_has_watermark_and_credit_note(engine, tmp_path):
    inv, f1, _ = _invoice(engine)
    res = void(engine, inv.number, f"customer dispute {EVIL}")
    html = render_invoice_html(res.detail)  # the voided invoice with the lines it carried
    assert '<div class="watermark" aria-hidden="true">VOID</div>' in html
    assert res.credit_note_number in html and "1,203.45 EUR" in html
    assert f"Flight {f1}" in html
    assert "<script>" not in html and "customer dispute &lt;script&gt;" in html
    assert "Please pay" not in html and "Total (cancelled)" in html
    assert 'id="bank-details"' not in html
    # re-read after the void: lines were released, the document says so
    after = render_invoice_html(invoice_detail(engine, inv.number))
    assert "VOID</div>" in after and "released when it was voided" in after
    assert res.credit_note_number in after


def test_write_invoice_document_writes_html_and_pdf(engine, tmp_path):
    inv, _, _ = _invoice(engine, map_path="maps/2026-01-04/1.html")
    out = tmp_path / "docs"
    path = write_invoice_document(engine, inv.number, out)
    assert path == (out / f"{inv.number}.html").resolve()
    html = path.read_text(encoding="utf-8")
    assert inv.number in html and html.startswith("<!DOCTYPE html>")
    pdf = path.with_suffix(".pdf")
    assert sorted(out.iterdir()) == [path, pdf]  # no temp file left behind
    assert pdf.read_bytes().startswith(b"%PDF-")
    # A4 landscape (297 x 210 mm = 841.89 x 595.28 pt; WeasyPrint measures in CSS px)
    pages = weasyprint.HTML(filename=str(path)).render().pages
    assert 1 <= len(pages) <= 2  # 3 lines
    assert {(round(p.width * 0.75), round(p.height * 0.75)) for p in pages} == {(842, 595)}
    assert pdf.stat().st_mtime_ns == path.stat().st_mtime_ns  # rendered from this HTML
    frame = list_invoices(engine)
    assert frame.loc[0, "document_path"] == str(path)
    assert invoice_detail(engine, inv.number).invoice.document_path == str(path)
    # map links go to the document server (FLIGHT_FEES_PUBLIC_URL)
    assert 'href="http://127.0.0.1:8090/maps/flight/' in html

    custom = write_invoice_document(engine, inv.number, out, filename="copy.html", pdf=False)
    assert custom.name == "copy.html" and not custom.with_suffix(".pdf").exists()
    with pytest.raises(ValueError, match="directory"):
        write_invoice_document(engine, inv.number, out, filename="../x.html")
    with pytest.raises(InvoiceNotFound):
        write_invoice_document(engine, "INV-2026-999999", out)


def test_html_to_pdf_loads_nothing_remote(tmp_path):
    requests: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        page = (
            f'<html><head><link rel="stylesheet" href="{url}/style.css"></head>'
            f'<body><img src="{url}/x.png"><p>Total</p></body></html>'
        )
        pdf = html_to_pdf(page, base_url=tmp_path)
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert pdf.startswith(b"%PDF-")
    assert requests == []  # the stylesheet and the image were refused, not fetched


def test_invoice_document_renders_when_missing_or_out_of_date(engine, tmp_path):
    inv, _, _ = _invoice(engine)
    out = tmp_path / "served"
    html = invoice_document(engine, inv.number, "html", out_dir=out)
    assert html == (out / f"{inv.number}.html").resolve() and not html.with_suffix(".pdf").exists()
    assert invoice_detail(engine, inv.number).invoice.document_path is None  # no DB write
    pdf = invoice_document(engine, inv.number, "PDF", out_dir=out)
    assert pdf == html.with_suffix(".pdf") and pdf.read_bytes().startswith(b"%PDF-")
    stamp = (html.stat().st_mtime_ns, pdf.stat().st_mtime_ns)
    # unchanged invoice: nothing is rewritten
    assert invoice_document(engine, inv.number, "pdf", out_dir=out) == pdf
    assert (html.stat().st_mtime_ns, pdf.stat().st_mtime_ns) == stamp
    # paid: the HTML is rewritten at once and its PDF follows
    pay(engine, inv.number, paid_at=dt.datetime(2026, 2, 10, 8, 0, tzinfo=dt.UTC))
    invoice_document(engine, inv.number, "html", out_dir=out)
    assert "Total (paid)" in html.read_text(encoding="utf-8")
    assert pdf.stat().st_mtime_ns != html.stat().st_mtime_ns  # stale until asked for
    invoice_document(engine, inv.number, "pdf", out_dir=out)
    assert pdf.stat().st_mtime_ns == html.stat().st_mtime_ns

    for bad in ("INV-2026-999999", "../INV-2026-000001", "INV/1", ".hidden", ""):
        with pytest.raises(InvoiceNotFound):
            invoice_document(engine, bad, "html", out_dir=out)
    with pytest.raises(ValueError, match="unknown document format 'docx'"):
        invoice_document(engine, inv.number, "docx", out_dir=out)
    assert sorted(p.name for p in out.iterdir()) == [f"{inv.number}.html", f"{inv.number}.pdf"]


def test_void_invoice_writes_final_documents(engine, tmp_path):
    cid = make_customer(engine, "ACME", name="Acme Air")
    fid = make_flight(engine, flight_date=D(2026, 1, 4), callsign="ACM1")
    _quoted_line(engine, cid, fid, D(2026, 1, 4), "LF", "500", mtow_kg=78000)
    _quoted_line(engine, cid, fid, D(2026, 1, 4), "ED", "200", mtow_kg=78000)
    [inv] = consolidate(engine, D(2026, 1, 31)).created
    out = tmp_path / "docs"
    write_invoice_document(engine, inv.number, out)
    done = void_invoice(
        engine,
        inv.number,
        "wrong MTOW",
        voided_at=dt.datetime(2026, 2, 3, 9, tzinfo=dt.UTC),
        out_dir=out,
    )
    cn = done.result.credit_note_number
    assert done.document_error is None
    assert done.invoice_path == (out / f"{inv.number}.html").resolve()
    assert done.credit_note_path == (out / f"{cn}.html").resolve()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{inv.number}.html", f"{inv.number}.pdf", f"{cn}.html", f"{cn}.pdf"]
    )
    voided = _text(done.invoice_path.read_text(encoding="utf-8"))
    assert "This invoice is VOID" in voided and f"Flight {fid}" in voided  # lines kept
    credit = _text(done.credit_note_path.read_text(encoding="utf-8"))
    total = f"{inv.total_amount:,.2f} EUR"
    for expected in (
        f"Credit note number {cn}",
        "Date 2026-02-03",
        f"Cancels invoice {inv.number} of 2026-01-31",
        f"cancels invoice {inv.number} of 2026-01-31 in full ({total})",
        "Reason: wrong MTOW",
        "Zone ED Germany",
        "Zone LF France",
        f"Total credited {total}",
        "No payment is due",
    ):
        assert expected in credit, expected

    # the final documents are kept: a later rendering cannot lose the released lines
    stamp = done.invoice_path.stat().st_mtime_ns
    assert invoice_document(engine, inv.number, "html", out_dir=out) == done.invoice_path
    assert done.invoice_path.stat().st_mtime_ns == stamp
    write_invoice_document(engine, inv.number, out)
    assert f"Flight {fid}" in done.invoice_path.read_text(encoding="utf-8")
    cn_pdf = credit_note_document(engine, cn, "pdf", out_dir=out)
    assert cn_pdf == done.credit_note_path.with_suffix(".pdf")
    with pytest.raises(CreditNoteNotFound):
        credit_note_document(engine, "CN-2026-999999", out_dir=out)

    # the replacement names the voided invoice and its credit note, issued on its real day
    [rep] = consolidate(
        engine, D(2026, 1, 31), force=True, customer_ids=[cid], today=D(2026, 2, 4)
    ).created
    text = _text(invoice_document(engine, rep.number, out_dir=out).read_text(encoding="utf-8"))
    assert f"Replaces invoice {inv.number}, cancelled by credit note {cn}" in text
    assert f"This invoice replaces invoice {inv.number} of 2026-01-31" in text
    assert "Issue date 2026-02-04" in text and f"Do not pay {inv.number}" in text
    # a credit note rendered afresh knows the replacement
    fresh = _text(render_credit_note_html(credit_note_detail(engine, cn)))
    assert f"re-invoiced on invoice {rep.number}" in fresh


def test_credit_note_document_of_a_void_made_without_documents(engine, tmp_path):
    inv, _, _ = _invoice(engine)
    res = void(engine, inv.number, "dispute")  # lib void only: no document yet
    path = credit_note_document(engine, res.credit_note_number, "html", out_dir=tmp_path)
    text = _text(path.read_text(encoding="utf-8"))
    assert f"Credit note number {res.credit_note_number}" in text
    assert f"{inv.line_count} fee line(s) of invoice {inv.number}" in text
    assert "Total credited 1,203.45 EUR" in text


def test_paid_document_asks_for_no_payment(engine):
    inv, _, _ = _invoice(engine)
    pay(engine, inv.number, paid_at=dt.datetime(2026, 2, 10, 8, 0, tzinfo=dt.UTC))
    html = render_invoice_html(invoice_detail(engine, inv.number))
    assert "Please pay" not in html and "Total (paid)" in html
    assert "Paid</strong> on 2026-02-10 08:00:00 UTC" in html
    assert "VOID</div>" not in html
