"""Analysis reports (bill verification, what-if repricing): self-contained HTML pages whose
flights link to their maps on the document server, kept under ``<home>/reports`` and served
by ``flight-fees serve`` at ``/reports/<name>``
(:func:`~flight_fees.lib.documents.links.report_url`)."""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from flight_fees.lib.documents.links import flight_map_url

if TYPE_CHECKING:
    from flight_fees.lib.billing.verification import VerificationReport
    from flight_fees.lib.charging.repricing import RepriceReport

__all__ = ["report_name", "reprice_html", "verification_html", "write_report"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def report_name(kind: str, stem: str, now: dt.datetime | None = None) -> str:
    """``<kind>-<stem>-<UTC time>.html``, letters, digits and ``_.-`` only (a name the
    document server serves)."""
    when = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    clean = _UNSAFE.sub("_", stem).strip("._-")[:80] or "report"
    return f"{_UNSAFE.sub('_', kind)}-{clean}-{when}.html"


def write_report(home: Path, kind: str, stem: str, text: str) -> Path:
    """Write ``text`` atomically to ``<home>/reports/<report_name(kind, stem)>``."""
    folder = Path(home) / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / report_name(kind, stem)
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=".report-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def reprice_html(report: RepriceReport, *, base_url: str | None = None) -> str:
    """A self-contained HTML page of ``report``: totals, zones, customers, then the flights
    whose amount changes, each linked to its map on the document server."""
    from flight_fees.lib.charging.repricing import ROUNDING_NOTE, plain_value

    e = html.escape

    def table(frame: pd.DataFrame, link: bool = False) -> str:
        head = "".join(f"<th>{e(str(c))}</th>" for c in frame.columns)
        body = []
        for row in frame.to_dict("records"):
            cells = []
            for name, value in row.items():
                text = e("" if value is None else str(plain_value(value)))
                if link and name == "flight_id":
                    url = e(flight_map_url(int(value), base=base_url), quote=True)
                    text = f'<a href="{url}">{text}</a>'
                cls = " class=n" if isinstance(value, Decimal | int) else ""
                cells.append(f"<td{cls}>{text}</td>")
            body.append(f"<tr>{''.join(cells)}</tr>")
        return f"<table><tr>{head}</tr>{''.join(body)}</table>"

    flights = report.by_flight()
    changed = flights[flights["difference"] != 0] if len(flights) else flights
    scenario = ", ".join(f"{k}: {v}" for k, v in report.scenario)
    failed = "".join(f"<li>{fid}: {e(msg)}</li>" for fid, msg in sorted(report.failures.items()))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Repricing "
        f"{report.day_from} to {report.day_to}</title><style>body{{font-family:sans-serif;"
        "margin:1.5em}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px "
        "solid #ccc;padding:.2em .5em;font-size:90%}td.n{text-align:right}</style></head><body>"
        f"<h1>What-if repricing, {report.day_from} to {report.day_to}</h1>"
        f"<p>Scenario: {e(scenario)}. {len(report.lines)} fee line(s), "
        f"{len(report.changed)} changed. Nothing was written: fee lines and invoices are "
        f"untouched.</p><p>Rounding: {e(ROUNDING_NOTE)}.</p>"
        f"<h2>Totals</h2>{table(report.totals())}<h2>Per zone</h2>{table(report.by_zone())}"
        f"<h2>Per customer</h2>{table(report.by_customer())}"
        f"<h2>Flights that change</h2>{table(changed, link=True)}"
        + (f"<h2>Flights the scenario cannot price</h2><ul>{failed}</ul>" if failed else "")
        + "</body></html>"
    )


def verification_html(report: VerificationReport, *, base_url: str | None = None) -> str:
    """A self-contained HTML page of ``report``: totals, then every finding with a link to
    its flight's map on the document server (``base_url``, default ``FLIGHT_FEES_PUBLIC_URL``)."""
    e = html.escape
    rows = []
    for f in report.findings:
        url = None if f.flight_id is None else flight_map_url(f.flight_id, base=base_url)
        flight = f'<a href="{e(url, quote=True)}">{f.flight_id}</a>' if url else "-"
        dist = f.detail.get("distance_km") if f.cause == "distance" else None
        note = (
            f"{dist['billed']} km billed, {dist['ours']} km flown ({dist['difference']:+} km)"
            if dist
            else str(f.detail.get("reason") or ", ".join(f.causes))
        )
        rows.append(
            "<tr>"
            f"<td>{'' if f.line is None else f.line}</td><td>{flight}</td>"
            f"<td>{e(str(f.day or ''))}</td><td>{e(f.callsign or '')}</td>"
            f"<td>{e(f.registration or '')}</td><td>{e(f.zone)}</td><td>{e(f.cause)}</td>"
            f"<td class=n>{f.billed_amount}</td><td class=n>{f.expected_amount}</td>"
            f"<td class=n>{f.difference}</td><td>{e(f.currency)}</td><td>{e(note)}</td></tr>"
        )
    totals = "".join(
        f"<tr><td>{e(ccy)}</td>"
        + "".join(
            f"<td class=n>{t[k]}</td>" for k in ("billed", "expected", "over", "under", "net")
        )
        + "</tr>"
        for ccy, t in report.by_currency().items()
    )
    zones = "".join(
        f"<tr><td>{e(z['zone'])}</td><td>{e(z['currency'])}</td><td class=n>{z['over']}</td>"
        f"<td class=n>{z['under']}</td><td class=n>{z['net']}</td>"
        f"<td class=n>{z['findings']}</td></tr>"
        for z in report.by_zone()
    )
    causes = ", ".join(f"{c}: {n}" for c, n in report.by_cause().items() if n) or "none"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Bill verification: {e(report.source)}</title>"
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;"
        "margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .5em;font-size:90%}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}</style></head><body>"
        f"<h1>Bill verification</h1><p>{e(report.source)}: {report.bill_lines} billed line(s), "
        f"{report.matched_lines} matched to our zone visits, {len(report.findings)} "
        f"finding(s) ({e(causes)}). Differences are billed &minus; expected: positive is "
        "over-billing.</p>"
        "<h2>Totals per currency</h2><table><tr><th>currency</th><th>billed</th>"
        f"<th>expected</th><th>over</th><th>under</th><th>net</th></tr>{totals}</table>"
        "<h2>Findings per zone</h2><table><tr><th>zone</th><th>currency</th><th>over</th>"
        f"<th>under</th><th>net</th><th>findings</th></tr>{zones}</table>"
        "<h2>Findings</h2><table><tr><th>line</th><th>flight (map)</th><th>day</th>"
        "<th>callsign</th><th>registration</th><th>zone</th><th>cause</th><th>billed</th>"
        "<th>expected</th><th>difference</th><th>currency</th><th>detail</th></tr>"
        f"{''.join(rows)}</table></body></html>"
    )
