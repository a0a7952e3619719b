"""Invoice and credit-note documents: HTML, and PDF from the same HTML (WeasyPrint).

The pages are rendered by Jinja2 from ``flight_fees/templates/`` (``invoice.html`` and
``credit_note.html``, both extending ``_document.html``) with autoescaping **on**: customer
names and addresses, callsigns, registrations, void reasons and the issuer file are untrusted
text and always appear escaped. Map links are relative paths (percent-encoded, so a stored
path can never become a ``javascript:`` or other URL scheme) or, with ``map_base_url``,
``<base>/maps/flight/<flight_id>``.

What a document shows
    - the issuer block, contact and bank details of
    :func:`flight_fees.lib.documents.issuer.load_issuer`
      (``FLIGHT_FEES_ISSUER``; the shipped sample is flagged as such on the document);
    - per fee line the figures an operator checks, from the stored tariff computation
      (``fee_lines.details``, see :func:`.invoice_figures.line_figures`): distance in the
      tariff's unit, deduction per take-off / landing in the zone, chargeable distance,
      distance factor, weight factor (and MTOW), service units, unit rate, the charge in the
      tariff currency, FX rate and date, the amount; the zone's name beside its id; a line
      that is not charged (exemption, take-off or landing in an FAA zone, nothing left after
      the deductions) shows its reason instead of figures, and zero zone totals are left out;
    - a "sample unit rates" notice whenever a line was charged with a rate marked
      ``sample: true`` in the tariffs;
    - replacement invoices name the voided invoice and its credit note; voided invoices say
      VOID (watermark), their credit note and, when known, their replacement.

Files
    Documents live in ``<storage>/invoices/`` (``Paths.invoices``; the storage is the home,
    or the shared storage ``FLIGHT_FEES_STORAGE_URL``, e.g. ``s3://bucket/prefix``):
    ``<number>.html`` and ``<number>.pdf`` for invoices (``INV-...``) and credit notes
    (``CN-...``) alike. :func:`invoice_document` / :func:`credit_note_document` give the path
    of a document by number and format, rendering it when missing or out of date (this is
    what the document server calls). The PDF is always rendered from the HTML file beside it
    and carries that file's modification time: a PDF whose time differs is stale. On an
    object store, where a file's time cannot be set, ``<number>.pdf.source`` beside the PDF
    holds the SHA-256 of the HTML it was rendered from instead. Every file is replaced
    atomically (a temp file and a rename, or one PUT).

    The document of a VOID invoice written when it was voided (:func:`void_invoice`) is final:
    voiding releases the invoice's fee lines, so only that document still lists them; it is
    never overwritten by a later rendering. Credit notes are immutable and so are their
    documents once written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final, Literal

import jinja2
from sqlalchemy import Engine, update

from flight_fees.lib.billing.invoicing import (
    VOID,
    CreditNoteDetail,
    CreditNoteNotFound,
    InvoiceDetail,
    InvoiceNotFound,
    VoidResult,
    credit_note_detail,
    credit_note_of_void,
    invoice_detail,
    void,
)
from flight_fees.lib.core.settings import TEMPLATE_DIR as _TEMPLATE_DIR
from flight_fees.lib.core.settings import paths
from flight_fees.lib.core.storage import (
    StoragePath,
    is_local,
    storage_path,
    write_bytes_atomic,
    write_text_atomic,
)
from flight_fees.lib.db.engine import rows_affected, transaction
from flight_fees.lib.db.models import Invoice
from flight_fees.lib.documents.invoice_figures import (
    _EMPTY,
    LineFigures,
    ZoneTotal,
    _css_string,
    _money,
    _num,
    _ts,
    default_zone_names,
    line_figures,
    no_charge_text,
    zone_totals,
)
from flight_fees.lib.documents.issuer import SAMPLE_ISSUER_PATH, Issuer, load_issuer

__all__ = [
    "DOCUMENT_FORMATS",
    "TEMPLATE_DIR",
    "LineFigures",
    "VoidDocuments",
    "ZoneTotal",
    "credit_note_document",
    "default_zone_names",
    "html_to_pdf",
    "invoice_document",
    "line_figures",
    "no_charge_text",
    "render_credit_note_html",
    "render_invoice_html",
    "void_invoice",
    "write_credit_note_document",
    "write_invoice_document",
]

TEMPLATE_DIR = _TEMPLATE_DIR
DocumentFormat = Literal["html", "pdf"]
DOCUMENT_FORMATS: Final[tuple[str, ...]] = ("html", "pdf")
#: document numbers that may name a file (``INV-2026-000001``, ``CN-2026-000001``, ...)
_SAFE_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    env.filters["money"] = _money
    env.filters["num"] = _num
    env.filters["ts"] = _ts
    env.filters["css_string"] = _css_string
    return env


# -- rendering -------------------------------------------------------------------------------


def _issuer_file(issuer: Issuer) -> str:
    if Path(issuer.source) == SAMPLE_ISSUER_PATH:
        return "flight_fees/data/issuer_sample.yaml"
    return issuer.source


def render_invoice_html(
    detail: InvoiceDetail,
    *,
    issuer: Issuer | None = None,
    zone_names: Mapping[str, str] | None = None,
    map_base_url: str | None = None,
) -> str:
    """The HTML document of an invoice.

    Map links: ``<map_base_url>/maps/flight/<id>``, the base defaulting to the document
    server's public URL (``FLIGHT_FEES_PUBLIC_URL``; maps are rendered on demand). ``issuer``
    defaults to :func:`load_issuer`, ``zone_names`` to :func:`default_zone_names`. A VOID
    invoice gets a VOID watermark and a notice with its credit note.
    """
    issuer = issuer or load_issuer()
    names = default_zone_names() if zone_names is None else zone_names
    flights = []
    from flight_fees.lib.documents.links import public_url

    base = (map_base_url or public_url()).rstrip("/")
    for group in detail.flights:
        # maps are rendered on demand by the document server (flight-fees serve)
        href: str | None = f"{base}/maps/flight/{int(group.flight_id)}"
        flights.append(
            {
                **vars(group),
                "map_href": href,
                "lines": [line_figures(line, names) for line in group.lines],
            }
        )
    sample_zones = sorted({ln.zone_id for f in flights for ln in f["lines"] if ln.sample})
    is_void = detail.invoice.status == VOID
    return (
        _environment()
        .get_template("invoice.html")
        .render(
            doc_kind="invoice",
            doc_number=detail.invoice.number,
            doc_state=detail.invoice.status,
            issuer=issuer,
            issuer_file=_issuer_file(issuer),
            inv=detail.invoice,
            customer=detail.customer,
            flights=flights,
            zone_totals=zone_totals(detail, names),
            sample_zones=sample_zones,
            credit_note=detail.credit_note,
            replaces=detail.replaces,
            replaced_by=detail.replaced_by,
            is_void=is_void,
        )
    )


def render_credit_note_html(
    detail: CreditNoteDetail,
    *,
    issuer: Issuer | None = None,
    zone_names: Mapping[str, str] | None = None,
) -> str:
    """The HTML document of a credit note (the cancelled charges per zone when
    ``detail.invoice`` carries its lines, see :func:`credit_note_of_void`)."""
    issuer = issuer or load_issuer()
    names = default_zone_names() if zone_names is None else zone_names
    cn = detail.credit_note
    created = cn.created_at or detail.invoice.invoice.voided_at
    return (
        _environment()
        .get_template("credit_note.html")
        .render(
            doc_kind="credit_note",
            doc_number=cn.number,
            doc_state="ISSUED",
            issuer=issuer,
            issuer_file=_issuer_file(issuer),
            cn=cn,
            cn_date=created.date().isoformat() if created else _EMPTY,
            inv=detail.invoice.invoice,
            customer=detail.invoice.customer,
            zone_totals=zone_totals(detail.invoice, names),
            flight_count=len(detail.invoice.flights),
            replaced_by=detail.invoice.replaced_by,
        )
    )


def html_to_pdf(html: str, *, base_url: Path | str | None = None) -> bytes:
    """The PDF of an HTML document (WeasyPrint, print media: A4 landscape, repeated table
    headers, page numbers). ``base_url`` resolves relative references; nothing is fetched
    from the network (only ``file:`` and ``data:`` URLs are read)."""
    import weasyprint
    from weasyprint.urls import URLFetcher

    document = weasyprint.HTML(
        string=html,
        base_url=str(base_url) if base_url is not None else None,
        url_fetcher=URLFetcher(allowed_protocols=("file", "data")),
    )
    pdf = document.write_pdf()
    assert pdf is not None
    return pdf


# -- files -----------------------------------------------------------------------------------


def _write_html(path: StoragePath, html: str) -> bool:
    """Write ``html`` to ``path`` unless it already holds exactly that; True when written.

    A rewritten local file always gets a modification time different from its PDF's, so the
    PDF is seen as stale (:func:`_pdf_is_current`) even on a coarse clock (on an object store
    the PDF's source digest no longer matches).
    """
    data = html.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    pdf = path.with_suffix(".pdf")
    write_bytes_atomic(path, data)
    if not is_local(path):
        return True
    try:
        pdf_mtime = pdf.stat().st_mtime_ns
    except FileNotFoundError:
        return True
    stat = path.stat()
    if stat.st_mtime_ns == pdf_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000))
    return True


def _pdf_source(html_path: StoragePath) -> StoragePath:
    """Beside a PDF on an object store: the SHA-256 of the HTML it was rendered from."""
    return html_path.parent / f"{html_path.stem}.pdf.source"


def _pdf_is_current(html_path: StoragePath) -> bool:
    pdf_path = html_path.with_suffix(".pdf")
    try:
        if is_local(html_path):
            return pdf_path.stat().st_mtime_ns == html_path.stat().st_mtime_ns
        digest = hashlib.sha256(html_path.read_bytes()).hexdigest()
        return _pdf_source(html_path).read_text() == digest and pdf_path.exists()
    except FileNotFoundError:
        return False


def _write_pdf(html_path: StoragePath) -> StoragePath:
    """Render the PDF of the HTML file beside it; it takes the HTML file's modification time
    (on an object store: its digest goes beside it, :func:`_pdf_source`)."""
    pdf_path = html_path.with_suffix(".pdf")
    if is_local(html_path) and is_local(pdf_path):
        html_stat = html_path.stat()
        pdf = html_to_pdf(html_path.read_text(encoding="utf-8"), base_url=html_path.parent)
        write_bytes_atomic(pdf_path, pdf)
        os.utime(pdf_path, ns=(html_stat.st_atime_ns, html_stat.st_mtime_ns))
        return pdf_path
    data = html_path.read_bytes()
    write_bytes_atomic(pdf_path, html_to_pdf(data.decode("utf-8")))
    write_text_atomic(_pdf_source(html_path), hashlib.sha256(data).hexdigest())
    return pdf_path


def _target(out_dir: str | Path | StoragePath, name: str) -> StoragePath:
    if Path(name).name != name:
        raise ValueError(f"filename must not contain a directory: {name!r}")
    out_dir = storage_path(out_dir)
    if not is_local(out_dir):
        return out_dir / name
    out_dir.mkdir(parents=True, exist_ok=True)
    return (out_dir / name).resolve()


def write_invoice_document(
    engine: Engine,
    number: str,
    out_dir: Path | StoragePath,
    *,
    filename: str | None = None,
    detail: InvoiceDetail | None = None,
    pdf: bool = True,
    issuer: Issuer | None = None,
    zone_names: Mapping[str, str] | None = None,
) -> StoragePath:
    """Write ``<out_dir>/<number>.html`` (or ``filename``) and, with ``pdf``, the PDF beside
    it (same name, ``.pdf``); store the HTML's absolute path in ``invoices.document_path``;
    return the HTML path.

    ``detail`` renders a given state instead of reading it (e.g. :attr:`VoidResult.detail`,
    the voided invoice with the lines it carried). Files are replaced atomically; an
    unchanged HTML file is left as it is (and its PDF too, when current). Raises
    :class:`InvoiceNotFound` for an unknown number.
    """
    given = detail is not None
    if detail is None:
        detail = invoice_detail(engine, number)
    elif detail.invoice.number != number:
        raise ValueError(f"detail of {detail.invoice.number} given for invoice {number}")
    path = _target(out_dir, filename or f"{number}.html")
    _invoice_html(path, detail, keep_final=not given, issuer=issuer, zone_names=zone_names)
    if pdf and not _pdf_is_current(path):
        _write_pdf(path)
    with transaction(engine) as session:
        changed = rows_affected(
            session.execute(
                update(Invoice)
                .where(Invoice.number == number)
                .values(document_path=str(path))
                .execution_options(synchronize_session=False)
            )
        )
    if not changed:
        raise InvoiceNotFound(number)
    return path


def write_credit_note_document(
    engine: Engine,
    number: str,
    out_dir: Path | StoragePath,
    *,
    detail: CreditNoteDetail | None = None,
    pdf: bool = True,
    issuer: Issuer | None = None,
    zone_names: Mapping[str, str] | None = None,
) -> StoragePath:
    """Write ``<out_dir>/<number>.html`` of a credit note (and its PDF with ``pdf``); return
    the HTML path. ``detail`` (e.g. :func:`credit_note_of_void`) renders a given state.
    Raises :class:`~flight_fees.lib.billing.invoicing.CreditNoteNotFound` for an unknown number."""
    if detail is None:
        detail = credit_note_detail(engine, number)
    elif detail.credit_note.number != number:
        raise ValueError(f"detail of {detail.credit_note.number} given for credit note {number}")
    path = _target(out_dir, f"{number}.html")
    _write_html(path, render_credit_note_html(detail, issuer=issuer, zone_names=zone_names))
    if pdf and not _pdf_is_current(path):
        _write_pdf(path)
    return path


def _format(fmt: str) -> str:
    norm = fmt.strip().lower().lstrip(".")
    if norm not in DOCUMENT_FORMATS:
        raise ValueError(f"unknown document format {fmt!r} (html or pdf)")
    return norm


def _safe_number(number: str, not_found: type[LookupError]) -> str:
    number = number.strip()
    if not _SAFE_NUMBER.fullmatch(number):
        raise not_found(number)
    return number


def _frozen(path: StoragePath, kind: str, number: str, state: str) -> bool:
    """Whether ``path`` is a document of ``kind number`` rendered in ``state``."""
    try:
        head = path.read_text(encoding="utf-8")[:2000]
    except (FileNotFoundError, UnicodeDecodeError):
        return False
    return f'name="flight-fees-document" content="{kind} {number} {state}"' in head


def _invoice_html(
    path: StoragePath,
    detail: InvoiceDetail,
    *,
    keep_final: bool,
    issuer: Issuer | None = None,
    zone_names: Mapping[str, str] | None = None,
    map_base_url: str | None = None,
) -> None:
    """(Re)write the HTML of ``detail`` at ``path`` when it changed; with ``keep_final`` a
    VOID invoice's document already rendered VOID is kept (it lists the released lines)."""
    number = detail.invoice.number
    if keep_final and detail.invoice.status == VOID and _frozen(path, "invoice", number, VOID):
        return
    html = render_invoice_html(
        detail,
        issuer=issuer,
        zone_names=zone_names,
        map_base_url=map_base_url,
    )
    _write_html(path, html)


def _deliver(html_path: StoragePath, fmt: str) -> StoragePath:
    if fmt == "html":
        return html_path
    if not _pdf_is_current(html_path):
        _write_pdf(html_path)
    return html_path.with_suffix(".pdf")


def invoice_document(
    engine: Engine,
    number: str,
    fmt: str = "html",
    *,
    out_dir: Path | StoragePath | None = None,
    map_base_url: str | None = None,
) -> StoragePath:
    """The path of invoice ``number``'s document in format ``fmt`` (``html`` or ``pdf``):
    ``<out_dir>/<number>.<fmt>``, default ``out_dir`` ``Paths.invoices``.

    The document is rendered when missing or out of date (a status change, a replacement),
    except the document of a VOID invoice written when it was voided, which is final (see
    the module documentation). For the document server: raises :class:`InvoiceNotFound` for
    an unknown number (or one that cannot name a file) and :class:`ValueError` for an unknown
    format; writes only files, never the database. ``map_base_url``: see
    :func:`render_invoice_html`.
    """
    fmt = _format(fmt)
    number = _safe_number(number, InvoiceNotFound)
    detail = invoice_detail(engine, number)
    path = _target(out_dir or paths().invoices, f"{number}.html")
    _invoice_html(path, detail, keep_final=True, map_base_url=map_base_url)
    return _deliver(path, fmt)


def credit_note_document(
    engine: Engine,
    number: str,
    fmt: str = "html",
    *,
    out_dir: Path | StoragePath | None = None,
) -> StoragePath:
    """The path of credit note ``number``'s document in format ``fmt`` (``html`` or
    ``pdf``): ``<out_dir>/<number>.<fmt>``, default ``Paths.invoices``; rendered when
    missing (a written credit-note document is final). Raises
    :class:`~flight_fees.lib.billing.invoicing.CreditNoteNotFound` / :class:`ValueError` like
    :func:`invoice_document`."""
    fmt = _format(fmt)
    number = _safe_number(number, CreditNoteNotFound)
    detail = credit_note_detail(engine, number)
    path = _target(out_dir or paths().invoices, f"{number}.html")
    if not _frozen(path, "credit_note", number, "ISSUED"):
        _write_html(path, render_credit_note_html(detail))
    return _deliver(path, fmt)


@dataclass(frozen=True)
class VoidDocuments:
    """What :func:`void_invoice` did: the void and the documents it wrote (HTML paths; the
    PDFs are beside them). ``document_error`` says why no document was written (the void is
    committed all the same); the paths are None then."""

    result: VoidResult
    invoice_path: StoragePath | None
    credit_note_path: StoragePath | None
    document_error: str | None = None


def void_invoice(
    engine: Engine,
    number: str,
    reason: str,
    *,
    voided_at: dt.datetime | None = None,
    out_dir: Path | StoragePath | None = None,
    pdf: bool = True,
) -> VoidDocuments:
    """Void invoice ``number`` (:func:`flight_fees.lib.billing.invoicing.void`) and write its final
    documents: the invoice, watermarked VOID, **with** the lines it carried, and its credit
    note (HTML, and PDF with ``pdf``) in ``out_dir`` (default ``Paths.invoices``). A copy of
    the invoice's document stored elsewhere (``invoices.document_path``) is rewritten too.

    The void is committed before the documents are written: an :class:`OSError` while writing
    is reported in :attr:`VoidDocuments.document_error` and leaves the invoice VOID (the
    credit note's document can be written later with :func:`credit_note_document`; the
    invoice's then lacks the released lines). The issuer file and the zone names are read
    first: an invalid issuer file (:class:`~flight_fees.lib.documents.issuer.IssuerConfigError`)
    stops
    before anything is voided."""
    issuer, names = load_issuer(), default_zone_names()
    result = void(engine, number, reason, voided_at=voided_at)
    target = out_dir or paths().invoices
    try:
        # a copy written elsewhere (``invoice show --html-out``) says VOID too; the
        # canonical document last, so that ``invoices.document_path`` names it
        copies: list[tuple[StoragePath, str | None]] = [(target, None)]
        previous = result.detail.invoice.document_path
        if previous and str(storage_path(previous)) != str(_target(target, f"{number}.html")):
            copy = storage_path(previous)
            copies.insert(0, (copy.parent, copy.name))
        for directory, filename in copies:
            invoice_path = write_invoice_document(
                engine,
                number,
                directory,
                filename=filename,
                detail=result.detail,
                pdf=pdf,
                issuer=issuer,
                zone_names=names,
            )
        credit_path = write_credit_note_document(
            engine,
            result.credit_note_number,
            target,
            detail=credit_note_of_void(result),
            pdf=pdf,
            issuer=issuer,
            zone_names=names,
        )
    except OSError as exc:
        return VoidDocuments(result, None, None, f"{target}: {exc}")
    return VoidDocuments(result, invoice_path, credit_path)
