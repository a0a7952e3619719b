"""Maps and invoice documents on the shared storage (``FLIGHT_FEES_STORAGE_URL=s3://...``),
against moto's S3 server (a protocol stand-in, ``flight_fees_tests/s3_server.py``): what one
service instance (one machine) writes, another reads. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from flight_fees.lib.billing.invoicing import pay
from flight_fees.lib.core.settings import paths
from flight_fees.lib.core.storage import storage_path
from flight_fees.lib.documents import invoices as documents
from flight_fees.lib.documents.invoices import (
    credit_note_document,
    invoice_document,
    void_invoice,
    write_invoice_document,
)
from flight_fees.lib.documents.map_service import MapService
from flight_fees.lib.documents.maps import MapAssets
from flight_fees.lib.ops.workstore import WorkStore
from flight_fees.lib.tracks import make_track_source
from flight_fees_tests.lib.documents.test_documents import _invoice
from flight_fees_tests.lib.documents.test_map_service import DAY, _payload, seed_stored
from flight_fees_tests.lib.documents.test_maps import (
    FIR_BOUNDS,
    FLIGHT_ID,
    _crossings,
    _firs,
    _track,
)


def _bucket(url: str) -> str:
    return url.removeprefix("s3://").split("/")[0]


def _service(engine, home, storage) -> MapService:
    return MapService(
        engine,
        home=home,
        storage=storage,
        firs=_firs,
        fir_index=lambda frame: frame,
        source=lambda: make_track_source("parquet", store=home / "tracks"),
        assets=MapAssets(static_url="/static"),
    )


def test_maps_read_run_frames_and_share_their_cache_through_s3(
    engine, tmp_path, s3_storage_url, s3_server
):
    home = tmp_path / "home"
    seed_stored(engine, home)
    storage = storage_path(s3_storage_url)
    # a processing run (another machine) left its frames in the shared work store
    track = _track()
    two = _crossings(track, {k: FIR_BOUNDS[k] for k in ("LFFF", "LFMM")})
    run = WorkStore(paths().work)
    run.write_part("tracks", DAY, "run-1", 0, track)
    run.write_part("crossings", DAY, "run-1", 0, two.assign(flight_id=FLIGHT_ID))

    first = _service(engine, home, storage).flight_map(FLIGHT_ID)
    assert not first.cached
    # the billed crossings and the cleaned track of the run, not recomputed / refetched
    assert [f["id"] for f in _payload(first.html)["firs"]] == ["LFFF", "LFMM"]
    assert "recomputed" not in first.html and "track source" not in first.html
    assert str(first.path).startswith(f"{s3_storage_url}/maps/cache/{DAY.isoformat()}/")
    keys = s3_server.keys(_bucket(s3_storage_url), "state/maps/")
    assert keys == [str(first.path).removeprefix(f"s3://{_bucket(s3_storage_url)}/")]
    # another server (another machine) finds it in the shared cache
    second = _service(engine, home, storage_path(s3_storage_url)).flight_map(FLIGHT_ID)
    assert second.cached and second.html == first.html


def test_invoice_documents_land_in_the_bucket_and_stay_current(
    engine, s3_storage_url, s3_server, monkeypatch
):
    inv, _, _ = _invoice(engine)
    renders = []
    real = documents.html_to_pdf
    monkeypatch.setattr(
        documents, "html_to_pdf", lambda *a, **k: renders.append(1) or real(*a, **k)
    )
    out = paths().invoices
    html = invoice_document(engine, inv.number, "html", out_dir=out)
    assert str(html) == f"{s3_storage_url}/invoices/{inv.number}.html"
    pdf = invoice_document(engine, inv.number, "pdf", out_dir=out)
    assert pdf.read_bytes().startswith(b"%PDF-") and len(renders) == 1
    bucket = _bucket(s3_storage_url)
    assert s3_server.keys(bucket, "state/invoices/") == [
        f"state/invoices/{inv.number}.html",
        f"state/invoices/{inv.number}.pdf",
        f"state/invoices/{inv.number}.pdf.source",
    ]
    # unchanged invoice: the PDF is current, nothing is rendered again
    assert invoice_document(engine, inv.number, "pdf", out_dir=out) == pdf
    assert len(renders) == 1
    # paid: the HTML changes, its PDF is stale until asked for, then rendered again
    pay(engine, inv.number, paid_at=dt.datetime(2026, 2, 10, 8, 0, tzinfo=dt.UTC))
    invoice_document(engine, inv.number, "html", out_dir=out)
    assert "Total (paid)" in html.read_text(encoding="utf-8") and len(renders) == 1
    invoice_document(engine, inv.number, "pdf", out_dir=out)
    assert len(renders) == 2


def test_void_writes_final_documents_to_the_bucket(engine, s3_storage_url, s3_server):
    inv, _, _ = _invoice(engine)
    out = paths().invoices
    written = write_invoice_document(engine, inv.number, out, pdf=False)
    assert str(written) == f"{s3_storage_url}/invoices/{inv.number}.html"
    done = void_invoice(engine, inv.number, "MTOW corrected", pdf=False)
    assert done.document_error is None
    assert str(done.invoice_path) == str(written)  # the stored document_path is the same key
    assert "VOID" in done.invoice_path.read_text(encoding="utf-8")
    number = done.result.credit_note_number
    assert str(done.credit_note_path) == f"{s3_storage_url}/invoices/{number}.html"
    # read back by number, as the document server does, from a fresh path object
    again = credit_note_document(engine, number, "html", out_dir=storage_path(str(out)))
    assert again.read_text(encoding="utf-8") == done.credit_note_path.read_text(encoding="utf-8")
    assert s3_server.keys(_bucket(s3_storage_url), "state/invoices/") == sorted(
        [f"state/invoices/{inv.number}.html", f"state/invoices/{number}.html"]
    )


@pytest.mark.parametrize("name", ["../x.html", "a/b.html"])
def test_document_names_stay_in_the_bucket_folder(engine, s3_storage_url, name):
    inv, _, _ = _invoice(engine)
    with pytest.raises(ValueError, match="must not contain a directory"):
        write_invoice_document(engine, inv.number, paths().invoices, filename=name)
