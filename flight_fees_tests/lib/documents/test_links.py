"""Document-server URLs for links (Dagster UI metadata, documents)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from flight_fees.lib.documents import links


def test_default_and_configured_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(links.PUBLIC_URL_ENV, raising=False)
    assert links.public_url() == "http://127.0.0.1:8090" == links.DEFAULT_PUBLIC_URL
    monkeypatch.setenv(links.PUBLIC_URL_ENV, "https://docs.ansp.example/ff/")
    assert links.flight_map_url(2026102500001) == (
        "https://docs.ansp.example/ff/maps/flight/2026102500001"
    )
    assert links.day_maps_url(dt.date(2026, 10, 25)) == (
        "https://docs.ansp.example/ff/maps/2026-10-25/"
    )
    monkeypatch.setenv(links.PUBLIC_URL_ENV, "javascript:alert(1)")
    with pytest.raises(ValueError, match="http"):
        links.public_url()


def test_variable_parts_are_encoded_and_stay_under_the_base() -> None:
    base = "http://h:1"
    assert links.invoice_url("INV-2026-000001", base=base) == (
        "http://h:1/invoices/INV-2026-000001.html"
    )
    assert links.credit_note_url("CN-2026-000001", "pdf", base=base) == (
        "http://h:1/credit-notes/CN-2026-000001.pdf"
    )
    assert links.invoice_url("../../x?y#z", base=base) == (
        "http://h:1/invoices/..%2F..%2Fx%3Fy%23z.html"
    )
    assert (
        links.country_map_path(7, "Côte d'Ivoire/x") == "/maps/flight/7/C%C3%B4te%20d%27Ivoire%2Fx"
    )
    assert links.processing_log_url(Path("/home/x/processing_logs/20260101_b.json"), base=base) == (
        "http://h:1/logs/20260101_b.json"
    )
    with pytest.raises(ValueError, match="format"):
        links.invoice_url("INV-1", "exe")
    with pytest.raises(ValueError, match="start with"):
        links.document_url("maps/", base=base)
    with pytest.raises(ValueError):
        links.flight_map_url("1; drop")  # type: ignore[arg-type]
