"""Invoice documents: one self-contained, print-friendly HTML page per invoice.

The page is rendered by Jinja2 from ``flight_fees/templates/invoice.html`` with autoescaping
**on**: customer names and addresses, callsigns, registrations and void reasons are untrusted
text and always appear escaped. Map links are relative paths (percent-encoded, so a stored
path can never become a ``javascript:`` or other URL scheme).

PDF is not produced here: the page carries print CSS (A4 landscape, repeated table headers,
no row split across pages), so a browser's "Print to PDF" gives the PDF.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from decimal import Decimal
from functools import cache
from pathlib import Path
from urllib.parse import quote

import jinja2
from sqlalchemy import Engine, update

import flight_fees
from flight_fees.lib.db.engine import transaction
from flight_fees.lib.db.models import Invoice
from flight_fees.lib.invoicing import (
    VOID,
    InvoiceDetail,
    InvoiceNotFound,
    invoice_detail,
)
from flight_fees.lib.money import format_money
from flight_fees.lib.settings import home_dir

__all__ = [
    "TEMPLATE_DIR",
    "map_href",
    "render_invoice_html",
    "write_invoice_document",
]

TEMPLATE_DIR = Path(flight_fees.__file__).resolve().parent / "templates"
_EMPTY = "—"


def _money(value: Decimal | None, currency: str) -> str:
    return _EMPTY if value is None else format_money(value, currency)


def _num(value: Decimal | float | int | None) -> str:
    """A stored number without trailing zeros and without exponent (``2.780000`` -> ``2.78``)."""
    if value is None:
        return _EMPTY
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    return format(value.normalize(), "f")


def _ts(value: dt.datetime | None) -> str:
    if value is None:
        return _EMPTY
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S")


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
    return env


def map_href(
    map_path: str | None, *, document_dir: Path | None = None, home: Path | None = None
) -> str | None:
    """The link from an invoice document to a flight map stored at ``map_path``.

    With ``document_dir`` the link is relative to it (a relative ``map_path`` is taken
    relative to the flight_fees home, ``home`` or :func:`home_dir`); without it the stored
    path is used as is. The result is percent-encoded (``:`` included), so it is always a
    relative or absolute *path* reference, never a URL with a scheme.
    """
    if not map_path or not map_path.strip():
        return None
    path = Path(map_path.strip())
    if document_dir is None:
        target = path.as_posix()
    else:
        if not path.is_absolute():
            path = (home or home_dir()) / path
        try:
            target = Path(os.path.relpath(path, document_dir)).as_posix()
        except ValueError:  # another drive (Windows): keep the absolute path
            target = path.as_posix()
    return quote(target, safe="/")


def render_invoice_html(
    detail: InvoiceDetail, *, document_dir: Path | None = None, home: Path | None = None
) -> str:
    """The HTML document of an invoice (see :func:`map_href` for ``document_dir``/``home``).

    A VOID invoice gets a VOID watermark and a notice with its credit note.
    """
    flights = [
        {**vars(g), "map_href": map_href(g.map_path, document_dir=document_dir, home=home)}
        for g in detail.flights
    ]
    template = _environment().get_template("invoice.html")
    return template.render(
        inv=detail.invoice,
        customer=detail.customer,
        flights=flights,
        zone_totals=detail.zone_totals(),
        credit_note=detail.credit_note,
        is_void=detail.invoice.status == VOID,
    )


def write_invoice_document(
    engine: Engine,
    number: str,
    out_dir: Path,
    *,
    filename: str | None = None,
    detail: InvoiceDetail | None = None,
) -> Path:
    """Write ``<out_dir>/<number>.html`` (or ``filename``) and store its absolute path in
    ``invoices.document_path``; returns the path.

    ``detail`` renders a given state instead of reading it (e.g. :attr:`VoidResult.detail`,
    the voided invoice with the lines it carried). The file is replaced atomically.
    Raises :class:`InvoiceNotFound` for an unknown number.
    """
    if detail is None:
        detail = invoice_detail(engine, number)
    elif detail.invoice.number != number:
        raise ValueError(f"detail of {detail.invoice.number} given for invoice {number}")
    name = filename or f"{number}.html"
    if Path(name).name != name:
        raise ValueError(f"filename must not contain a directory: {name!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = (out_dir / name).resolve()
    html = render_invoice_html(detail, document_dir=path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with transaction(engine) as session:
        changed = session.execute(
            update(Invoice)
            .where(Invoice.number == number)
            .values(document_path=str(path))
            .execution_options(synchronize_session=False)
        ).rowcount
    if not changed:
        raise InvoiceNotFound(number)
    return path
