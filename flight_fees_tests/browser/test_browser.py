"""In a real browser (Debian's chromium via Playwright), with no network but loopback: the
flight map draws its track, FIRs and markers offline; an invoice shows its totals; links in
the Dagster UI's metadata open the map and the invoice."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from flight_fees.lib.core.money import format_money
from flight_fees.lib.db import make_engine
from flight_fees.lib.db.models import Invoice
from flight_fees_tests.browser.conftest import screenshot

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]


def _invoices(world):
    engine = make_engine(f"sqlite:///{world.home / 'billing.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Invoice.number, Invoice.total_amount, Invoice.currency).order_by(
                    Invoice.number
                )
            ).all()
    finally:
        engine.dispose()
    assert rows, "the demo made no invoice"
    return rows


def _assert_map_drawn(page) -> None:  # type: ignore[no-untyped-def]
    """The map page finished drawing: track, crossing segments, FIR polygons, markers, the
    offline background and the legend, as SVG elements with a real size on screen."""
    page.wait_for_selector("body[data-ff-map=ready]")
    track = page.locator("path.ff-track")
    assert track.count() >= 1
    box = track.first.bounding_box()
    assert box is not None and box["width"] + box["height"] > 100  # a line across the map
    d = track.first.get_attribute("d") or ""
    assert len(re.findall(r"[ML]", d)) > 10  # many vertices, not a dot
    assert page.locator("path.ff-crossing").count() >= 1
    assert page.locator("path.ff-fir").count() >= 1
    assert page.locator("path.ff-marker").count() >= 2  # entry and exit
    assert page.locator("path.ff-basemap").count() > 50  # Natural Earth outlines, offline
    assert page.locator(".ff-legend").is_visible()
    assert "FIR" in page.locator(".ff-legend").inner_text()
    assert page.locator(".leaflet-control-layers").is_visible()


def test_map_draws_the_track_offline(demo_world, offline):
    page = offline.new_page()
    page.goto(f"{demo_world.docs_url}/maps/")
    page.locator("a[href^='/maps/20']").first.click()
    assert page.locator("table.ff-day tbody tr").count() >= 1
    row = page.locator("table.ff-day tbody tr").first
    cells = row.locator("td").all_inner_texts()
    assert cells[1] and cells[2] and "\u2192" in cells[4]  # callsign, registration, route
    assert re.search(r"\d\.\d\d [A-Z]{3}", cells[6])  # amount with currency
    screenshot(page, "day_index")
    row.locator("a").first.click()
    _assert_map_drawn(page)
    screenshot(page, "flight_map")
    # a per-country map from the title box, on demand
    page.locator(".ff-map-title a[href*='/maps/flight/']").first.click()
    _assert_map_drawn(page)
    assert "Country:" in page.locator(".ff-map-title").inner_text()
    screenshot(page, "country_map")
    assert offline.blocked == []  # nothing was even requested outside loopback


def test_invoice_shows_its_totals(demo_world, offline):
    number, total, currency = _invoices(demo_world)[0]
    page = offline.new_page()
    response = page.goto(f"{demo_world.docs_url}/invoices/{number}.html")
    assert response is not None and response.status == 200
    text = page.locator("body").inner_text()
    assert number in text
    assert format_money(total, currency) in text
    screenshot(page, "invoice")
    assert offline.blocked == []


def test_dagster_ui_metadata_links_open_the_map_and_the_invoice(demo_world, dagster_ui, offline):
    context = offline.context
    page = offline.new_page()
    page.goto(f"{dagster_ui}/assets/fee_lines")
    with _dismissed(page):
        # a MetadataValue.url entry (opens a new tab), not a link in a markdown table
        link = page.locator(f"a[target=_blank][href^='{demo_world.docs_url}/maps/20']").first
        link.wait_for(timeout=60_000)  # the code location loads, then the metadata shows
        screenshot(page, "dagster_fee_lines")
        with context.expect_page() as opened:
            link.click()
    day = opened.value
    day.wait_for_load_state()
    assert day.url.startswith(f"{demo_world.docs_url}/maps/")
    day.locator("table.ff-day tbody tr a").first.click()
    _assert_map_drawn(day)
    screenshot(day, "dagster_to_map")

    page.goto(f"{dagster_ui}/assets/invoices")
    with _dismissed(page):
        link = page.locator(f"a[target=_blank][href^='{demo_world.docs_url}/invoices/']").first
        link.wait_for(timeout=60_000)
        with context.expect_page() as opened:
            link.click()
    invoice = opened.value
    invoice.wait_for_load_state()
    shown = re.search(r"/invoices/([A-Z0-9-]+)\.html$", invoice.url)
    assert shown is not None
    rows = {n: (t, c) for n, t, c in _invoices(demo_world)}
    total, currency = rows[shown.group(1)]
    assert format_money(total, currency) in invoice.locator("body").inner_text()
    screenshot(invoice, "dagster_to_invoice")
    # the Dagster UI may try the internet; the document pages never do
    assert not [u for u in offline.blocked if u.startswith(demo_world.docs_url)]


class _dismissed:
    """Close Dagster's first-visit dialog if it shows up, then run the block."""

    def __init__(self, page) -> None:  # type: ignore[no-untyped-def]
        self.page = page

    def __enter__(self):  # type: ignore[no-untyped-def]
        skip = self.page.get_by_role("button", name="Skip")
        # the dialog may also show later (a slow first load): Playwright then closes it
        # before any action it would block
        self.page.add_locator_handler(skip, lambda button: button.click())
        try:
            skip.wait_for(timeout=8_000)
            skip.click()
        except Exception:  # no dialog this time (already dismissed in this context)
            pass
        return self

    def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        return None
