"""URLs of the documents served by ``flight-fees serve`` (maps, day indexes, invoices, credit
notes, processing logs), for links from the Dagster UI, invoices and e-mails.

The base is ``FLIGHT_FEES_PUBLIC_URL`` (default ``http://127.0.0.1:8090``, where ``flight-fees
serve`` listens by default): set it to the address users reach the document server at. Every
variable part of a path is percent-encoded, so a URL built here is always under the base.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import PurePath
from urllib.parse import quote

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_PUBLIC_URL",
    "PUBLIC_URL_ENV",
    "country_map_path",
    "credit_note_url",
    "day_maps_url",
    "document_url",
    "flight_map_path",
    "flight_map_url",
    "invoice_path",
    "invoice_url",
    "processing_log_url",
    "public_url",
    "report_url",
]

PUBLIC_URL_ENV = "FLIGHT_FEES_PUBLIC_URL"
DEFAULT_PORT = 8090
DEFAULT_PUBLIC_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
_FORMATS = ("html", "pdf")


def public_url() -> str:
    """The document server's base URL, without a trailing slash."""
    base = os.environ.get(PUBLIC_URL_ENV, "").strip() or DEFAULT_PUBLIC_URL
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"{PUBLIC_URL_ENV} must be an http(s) URL, got {base!r}")
    return base.rstrip("/")


def document_url(path: str, *, base: str | None = None) -> str:
    """``base`` (default :func:`public_url`) + ``path`` (a server path starting with ``/``)."""
    if not path.startswith("/"):
        raise ValueError(f"server path must start with '/': {path!r}")
    return (base.rstrip("/") if base else public_url()) + path


def _segment(value: object) -> str:
    return quote(str(value), safe="")


def flight_map_path(flight_id: int) -> str:
    return f"/maps/flight/{int(flight_id)}"


def country_map_path(flight_id: int, country: str) -> str:
    return f"{flight_map_path(flight_id)}/{_segment(country)}"


def flight_map_url(flight_id: int, *, base: str | None = None) -> str:
    """The map of a flight (rendered on demand)."""
    return document_url(flight_map_path(flight_id), base=base)


def day_maps_url(day: dt.date, *, base: str | None = None) -> str:
    """The index of a UTC day's flights (callsign, registration, route, zones, amounts, maps)."""
    return document_url(f"/maps/{day.isoformat()}/", base=base)


def _document(kind: str, number: str, fmt: str) -> str:
    if fmt not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS}, got {fmt!r}")
    return f"/{kind}/{_segment(number)}.{fmt}"


def invoice_path(number: str, fmt: str = "html") -> str:
    """The server path of invoice ``number``'s document (links inside served pages)."""
    return _document("invoices", number, fmt)


def invoice_url(number: str, fmt: str = "html", *, base: str | None = None) -> str:
    """The invoice document ``number`` as ``html`` or ``pdf``."""
    return document_url(invoice_path(number, fmt), base=base)


def credit_note_url(number: str, fmt: str = "html", *, base: str | None = None) -> str:
    """The credit-note document ``number`` as ``html`` or ``pdf``."""
    return document_url(_document("credit-notes", number, fmt), base=base)


def processing_log_url(log: str | PurePath, *, base: str | None = None) -> str:
    """A processing log (the file name of ``log``, under ``<home>/processing_logs``)."""
    return document_url(f"/logs/{_segment(PurePath(log).name)}", base=base)


def report_url(name: str | PurePath, *, base: str | None = None) -> str:
    """An analysis report (bill verification, repricing): the file name of ``name``, under
    ``<home>/reports``."""
    return document_url(f"/reports/{_segment(PurePath(name).name)}", base=base)
