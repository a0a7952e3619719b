"""The read-only document server: routes, confinement to the home (no traversal), the bearer
token, documents through ``flight_fees.lib.documents.invoices``. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from flight_fees.http import docserver
from flight_fees.http.docserver import (
    COOKIE_NAME,
    PathRefused,
    confined_path,
    create_document_app,
    is_loopback,
    validate_token,
)
from flight_fees.lib.core.settings import Paths
from flight_fees_tests.aio import run_coroutine
from flight_fees_tests.lib.documents.test_map_service import (
    DAY,
    FLIGHT_ID,
    make_service,
    seed_stored,
)

TOKEN = "s3cret-token-of-32-characters-xx"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    logs = Paths(home).logs
    logs.mkdir(parents=True)
    (logs / "20260105T100000Z_batch-1.json").write_text('{"batch_id": "batch-1"}')
    (home / "billing-secret.txt").write_text("not for the web")
    (tmp_path / "outside.json").write_text('{"secret": true}')
    os.symlink(tmp_path / "outside.json", logs / "link-out.json")
    return home


@pytest.fixture
def app(engine, home):
    seed_stored(engine, home)
    return create_document_app(engine, make_service(engine, home), home=home)


def _raw_status(app, path: str, method: str = "GET") -> int:
    """Send ``path`` as is (no client-side normalisation of ``..``) and return the status."""
    status: dict[str, int] = {}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            status["code"] = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    run_coroutine(app(scope, receive, send))
    return status["code"]


def test_maps_and_indexes(app):
    client = TestClient(app)
    assert client.get("/health").json() == {"status": "ok"}
    assert 'href="/maps/"' in client.get("/").text
    assert f"/maps/{DAY.isoformat()}/" in client.get("/maps/").text
    day = client.get(f"/maps/{DAY.isoformat()}/")
    assert day.status_code == 200 and f'href="/maps/flight/{FLIGHT_ID}"' in day.text
    assert "script-src" not in day.headers["content-security-policy"]  # no script at all
    assert client.get("/maps/2026-13-45/").status_code == 404
    first = client.get(f"/maps/flight/{FLIGHT_ID}")
    assert first.status_code == 200 and first.headers["x-flight-fees-map"] == "rendered"
    assert "script-src 'self'" in first.headers["content-security-policy"]
    assert first.headers["x-content-type-options"] == "nosniff"
    again = client.get(f"/maps/flight/{FLIGHT_ID}")
    assert again.headers["x-flight-fees-map"] == "cached" and again.text == first.text
    assert client.get(f"/maps/flight/{FLIGHT_ID}/CH").status_code == 200
    missing = client.get(f"/maps/flight/{FLIGHT_ID}/DE")
    assert missing.status_code == 404 and "did not cross" in missing.text
    unknown = client.get("/maps/flight/1")
    assert unknown.status_code == 404 and "?day=" in unknown.text
    assert client.get(f"/maps/flight/1?day={DAY.isoformat()}").status_code == 404  # no track
    assert client.get("/maps/flight/1?day=yesterday").status_code == 404
    assert client.get("/maps/flight/abc").status_code == 404
    js = client.get("/static/leaflet/leaflet.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/basemap/countries-110m.js").text.startswith("/* Natural Earth")
    assert client.post(f"/maps/flight/{FLIGHT_ID}").status_code == 405  # read-only


def test_processing_logs_and_no_path_leaves_its_root(app, home):
    client = TestClient(app)
    listing = client.get("/logs/")
    assert "20260105T100000Z_batch-1.json" in listing.text
    log = client.get("/logs/20260105T100000Z_batch-1.json")
    assert log.status_code == 200 and log.json() == {"batch_id": "batch-1"}
    for path in (
        "/logs/../billing-secret.txt",
        "/logs/..",
        "/logs/%2e%2e%2fbilling-secret.txt",
        "/logs/.hidden.json",
        "/logs/link-out.json",  # a symlink out of the logs folder
        "/static/../lib/maps.py",
        "/static/../../flight_fees/lib/core/settings.py",
        "/static/leaflet/../../lib/maps.py",
        "/static//etc/passwd",
        "/static/%2e%2e/lib/maps.py",
        "/invoices/..%2f..%2fbilling-secret.txt",
        "/maps/flight/1/..",
    ):
        assert _raw_status(app, path) in (404, 405), path
    assert _raw_status(app, "/logs/20260105T100000Z_batch-1.json") == 200


def test_analysis_reports_are_served_from_their_folder_only(app, home):
    from flight_fees.lib.documents.links import report_url
    from flight_fees.lib.documents.reports import write_report

    written = write_report(home, "verification", "bill 2026/10", "<h1>findings</h1>")
    assert written.parent == home / "reports" and " " not in written.name
    client = TestClient(app)
    page = client.get(report_url(written, base="http://testserver"))
    assert page.status_code == 200 and "<h1>findings</h1>" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for path in ("/reports/../billing-secret.txt", "/reports/.hidden.html",
                 "/reports/%2e%2e%2fbilling-secret.txt", "/reports/missing.html"):  # fmt: skip
        assert _raw_status(app, path) == 404, path


def test_confined_path(home):
    logs = Paths(home).logs
    assert confined_path(logs, "20260105T100000Z_batch-1.json").parent == logs.resolve()
    for parts in (("..",), ("a/../../x",), (".env",), ("",), ("link-out.json",), ("a", "..")):
        with pytest.raises(PathRefused):
            confined_path(logs, *parts)


def test_documents_come_from_the_documents_module(app, home, monkeypatch):
    invoices = Paths(home).invoices
    invoices.mkdir(parents=True)
    (invoices / "INV-2026-000001.html").write_text("<html><p>Total 10.00 EUR</p></html>")
    (invoices / "INV-2026-000001.pdf").write_bytes(b"%PDF-1.7 fake")
    calls = []

    def invoice_document(engine, number, fmt, *, out_dir, map_base_url=None):
        calls.append((number, fmt, out_dir, map_base_url))
        if number == "INV-2026-000404":
            raise LookupError(number)
        if number == "INV-2026-000666":
            return home / "billing-secret.txt"  # outside the invoices folder: never served
        return out_dir / f"{number}.{fmt}"

    real = docserver._documents_function
    monkeypatch.setattr(
        docserver,
        "_documents_function",
        lambda name: invoice_document if name == "invoice_document" else None,
    )
    client = TestClient(app)
    page = client.get("/invoices/INV-2026-000001.html")
    assert page.status_code == 200 and "Total 10.00 EUR" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    assert calls[0][2] == invoices and calls[0][3].startswith("http")
    pdf = client.get("/invoices/INV-2026-000001.pdf")
    assert pdf.content == b"%PDF-1.7 fake" and pdf.headers["content-type"] == "application/pdf"
    assert client.get("/invoices/INV-2026-000404.html").status_code == 404
    assert client.get("/invoices/INV-2026-000666.html").status_code == 404
    assert client.get("/invoices/INV-2026-000001.exe").status_code == 404
    absent = client.get("/credit-notes/CN-2026-000001.pdf")
    assert absent.status_code == 404 and "credit_note_document is missing" in absent.text
    monkeypatch.setattr(docserver, "_documents_function", real)
    # the real module: an unknown invoice is a clean 404
    assert client.get("/invoices/INV-2099-999999.html").status_code == 404


def test_token_required_when_configured(engine, home):
    seed_stored(engine, home)
    app = create_document_app(engine, make_service(engine, home), home=home, token=TOKEN)
    client = TestClient(app, follow_redirects=False)
    assert client.get("/health").status_code == 200
    denied = client.get("/maps/")
    assert denied.status_code == 401 and denied.headers["www-authenticate"] == "Bearer"
    assert client.get("/maps/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/maps/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/maps/?token=wrong").status_code == 401
    link = client.get(f"/maps/{DAY.isoformat()}/?token={TOKEN}&x=1")
    assert link.status_code == 303 and link.headers["location"] == f"/maps/{DAY.isoformat()}/?x=1"
    assert (
        COOKIE_NAME in link.headers["set-cookie"]
        and "httponly" in link.headers["set-cookie"].lower()
    )
    assert client.get("/maps/").status_code == 200  # the cookie now
    assert TestClient(app).get("/static/flight_map.js").status_code == 401


def test_bind_rules():
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.10") and is_loopback("::1")
    assert is_loopback("localhost") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("host")
    assert validate_token(None) is None and validate_token("") is None
    assert validate_token(TOKEN) == TOKEN
    with pytest.raises(ValueError, match="16"):
        validate_token("short")


def test_day_route_needs_a_date(app):
    client = TestClient(app)
    assert client.get("/maps/today/").status_code == 404
    assert client.get(f"/maps/{DAY.isoformat()}", follow_redirects=False).status_code in (
        307,
        308,
    )
    assert client.get((DAY - dt.timedelta(days=400)).strftime("/maps/%Y-%m-%d/")).status_code == 200


def test_country_names_with_a_slash(engine, home):
    from flight_fees_tests.lib.documents.test_maps import _firs

    seed_stored(engine, home)
    firs = _firs().assign(country=["FR", "FR", "Belgium/Luxembourg", "IT"])  # LSAS renamed
    service = make_service(engine, home, fir_set=firs)
    client = TestClient(create_document_app(engine, service, home=home))
    page = client.get(f"/maps/flight/{FLIGHT_ID}")
    assert f'href="/maps/flight/{FLIGHT_ID}/Belgium%2FLuxembourg"' in page.text
    country = client.get(f"/maps/flight/{FLIGHT_ID}/Belgium%2FLuxembourg")
    assert country.status_code == 200 and "Country: Belgium/Luxembourg" in country.text
