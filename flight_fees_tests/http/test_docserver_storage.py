"""The document server over the shared storage (``FLIGHT_FEES_STORAGE_URL=s3://...``, moto's
S3 server as a protocol stand-in): it serves the processing logs, invoice documents and maps
that other machines wrote to the bucket, and no key outside their folders. SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from starlette.testclient import TestClient

from flight_fees.http.docserver import PathRefused, confined_path, create_document_app
from flight_fees.lib.core.settings import paths
from flight_fees.lib.core.storage import storage_path
from flight_fees.lib.ops.audit import ProcessingLog, write_processing_log
from flight_fees.lib.ops.workstore import WorkStore
from flight_fees_tests.http.test_docserver import _raw_status
from flight_fees_tests.lib.documents.test_documents import _invoice
from flight_fees_tests.lib.documents.test_map_service import DAY, seed_stored
from flight_fees_tests.lib.documents.test_maps import FLIGHT_ID, _track
from flight_fees_tests.lib.documents.test_shared_storage import _bucket, _service


def test_serves_logs_documents_and_maps_from_the_bucket(
    engine, tmp_path, s3_storage_url, s3_server
):
    home = tmp_path / "home"
    inv, _, _ = _invoice(engine)  # consolidated before the map's flight exists
    seed_stored(engine, home)
    # what runs on other machines wrote: a processing log and a run's cleaned track
    log = ProcessingLog(batch_id="b1", started_at=dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC))
    written = write_processing_log(log, paths().logs)
    WorkStore(paths().work).write_part("tracks", DAY, "run-1", 0, _track())
    bucket = _bucket(s3_storage_url)
    s3_server.client().put_object(Bucket=bucket, Key="state/secret.json", Body=b"{}")

    storage = storage_path(s3_storage_url)
    app = create_document_app(
        engine, _service(engine, home, storage), home=home, storage_url=s3_storage_url
    )
    client = TestClient(app)
    listing = client.get("/logs/")
    assert listing.status_code == 200 and written.name in listing.text
    served = client.get(f"/logs/{written.name}")
    assert served.status_code == 200 and served.json()["batch_id"] == "b1"
    assert client.get("/logs/20990101T000000000000Z_none.json").status_code == 404

    pdf = client.get(f"/invoices/{inv.number}.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    page = client.get(f"/invoices/{inv.number}.html")
    assert page.status_code == 200 and inv.number in page.text
    assert f"state/invoices/{inv.number}.pdf" in s3_server.keys(bucket, "state/invoices/")

    first = client.get(f"/maps/flight/{FLIGHT_ID}")
    assert first.status_code == 200 and first.headers["x-flight-fees-map"] == "rendered"
    assert "track source" not in first.text  # the run's track, read from the bucket
    assert len(s3_server.keys(bucket, f"state/maps/cache/{DAY.isoformat()}/")) == 1
    assert client.get(f"/maps/flight/{FLIGHT_ID}").headers["x-flight-fees-map"] == "cached"

    for path in (
        "/logs/../secret.json",
        "/logs/%2e%2e%2fsecret.json",
        "/logs/..",
        "/logs/.hidden.json",
        "/invoices/..%2fsecret.json",
        "/invoices/..%2f..%2fsecret.html",
    ):
        assert _raw_status(app, path) in (404, 405), path
    assert json.loads(client.get(f"/logs/{written.name}").text)["batch_id"] == "b1"


def test_confined_path_on_the_bucket(s3_storage_url):
    logs = storage_path(s3_storage_url) / "processing_logs"
    assert str(confined_path(logs, "a.json")) == f"{s3_storage_url}/processing_logs/a.json"
    for parts in (("..",), ("a/../../x",), (".env",), ("",), ("a", "..")):
        with pytest.raises(PathRefused):
            confined_path(logs, *parts)
