"""Flight maps on demand: read what is stored about a flight, render its map, cache it on disk.

A map is not made while billing. It is made when someone opens it (``flight-fees serve``) or
when the optional ``render_flight_maps`` job warms the cache, from stored data only:

- the flight and its fee lines (zones, amounts, invoice numbers) from the billing database;
- its track: the cleaned track a processing run kept in the work store
  (``<storage>/work/tracks/day=D/<run>.parquet``, the newest run holding the flight), else the
  track source (Parquet store or Pinot), cleaned with the pipeline's default settings;
- its FIR crossings: the work store's ``crossings`` frame (what was billed), else recomputed
  from the track with the FIR index (the map then says so);
- the FIR set, simplified once per process (:func:`flight_fees.lib.documents.maps.fir_shapes`).

``<storage>`` is the shared storage (``FLIGHT_FEES_STORAGE_URL``, default the home): a map
server on one machine reads the frames runs wrote on others, and its cache is shared.

Cache: ``<storage>/maps/cache/<day>/<flight_id>.<key>.html`` (per-country maps
``<flight_id>.<key>.<country>.html``), ``key`` a digest of the renderer version, the page
assets, the FIR file and the flight's billing state (batch, update time, lines): re-processing,
invoicing or voiding a flight gives a new key, and the older files of that flight are removed
when the new one is written. Flights unknown to the billing database (failed ones) are
rendered on request and never cached. No Dagster here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from flight_fees.lib.core.storage import StoragePath, read_table, write_text_atomic
from flight_fees.lib.documents import links
from flight_fees.lib.documents.country_maps import (
    country_map_html,
    map_countries,
    safe_country_name,
)
from flight_fees.lib.documents.maps import (
    RENDERER_VERSION,
    FirShapes,
    MapAssets,
    escape_text,
    fir_shapes,
    flight_map_html,
)
from flight_fees.lib.ops.workstore import WorkStore

__all__ = [
    "FlightInfo",
    "MapNotFound",
    "MapResult",
    "MapService",
    "PrerenderResult",
    "day_index_html",
    "days_index_html",
    "read_day_flights",
    "read_flight",
    "read_unbilled",
    "read_work_rows",
]


class MapNotFound(LookupError):
    """No map can be made: unknown flight, no track, or a country the flight did not visit."""


# --------------------------------------------------------------------------------------------
# reads: billing database
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInfo:
    zone_id: str
    fir_ids: str
    amount: Decimal
    currency: str
    exemption: str | None
    invoice: str | None


@dataclass(frozen=True)
class FlightInfo:
    """A flight as the billing database knows it, with its fee lines."""

    flight_id: int
    flight_date: dt.date | None
    callsign: str | None
    registration: str | None
    aircraft_type: str | None
    origin: str | None
    destination: str | None
    status: str | None
    batch_id: str | None
    updated_at: dt.datetime | None
    lines: tuple[LineInfo, ...] = ()

    def zones(self) -> list[str]:
        return list(dict.fromkeys(line.zone_id for line in self.lines))

    def totals(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for line in self.lines:
            out[line.currency] = out.get(line.currency, Decimal(0)) + line.amount
        return dict(sorted(out.items()))

    def invoices(self) -> list[str]:
        return sorted({line.invoice for line in self.lines if line.invoice})

    def state(self) -> str:
        """What the map shows of the billing state (part of the cache key)."""
        return repr(
            (
                self.batch_id,
                str(self.updated_at),
                self.callsign,
                self.registration,
                self.origin,
                self.destination,
                [(ln.zone_id, str(ln.amount), ln.currency, ln.invoice) for ln in self.lines],
            )
        )


def _flights_query() -> Any:
    from flight_fees.lib.db.models import Flight

    return select(
        Flight.flight_id,
        Flight.flight_date,
        Flight.callsign,
        Flight.registration,
        Flight.aircraft_type,
        Flight.origin,
        Flight.destination,
        Flight.status,
        Flight.batch_id,
        Flight.updated_at,
    )


def _lines_by_flight(conn: Any, flight_ids: Sequence[int]) -> dict[int, list[LineInfo]]:
    from flight_fees.lib.db.models import FeeLine, Invoice

    out: dict[int, list[LineInfo]] = {}
    for start in range(0, len(flight_ids), 500):
        chunk = list(flight_ids[start : start + 500])
        rows = conn.execute(
            select(
                FeeLine.flight_id,
                FeeLine.zone_id,
                FeeLine.fir_ids,
                FeeLine.billing_amount,
                FeeLine.billing_currency,
                FeeLine.exemption,
                Invoice.number,
            )
            .outerjoin(Invoice, Invoice.id == FeeLine.invoice_id)
            .where(FeeLine.flight_id.in_(chunk))
            .order_by(FeeLine.flight_id, FeeLine.line_no)
        )
        for r in rows:
            out.setdefault(int(r.flight_id), []).append(
                LineInfo(
                    r.zone_id,
                    r.fir_ids,
                    Decimal(r.billing_amount),
                    r.billing_currency,
                    r.exemption,
                    r.number,
                )
            )
    return out


def _info(row: Any, lines: list[LineInfo]) -> FlightInfo:
    return FlightInfo(**dict(row._mapping), lines=tuple(lines))


def read_flight(engine: Engine, flight_id: int) -> FlightInfo | None:
    """The flight's row and fee lines, or None when the billing database does not know it."""
    from flight_fees.lib.db.models import Flight

    with engine.connect() as conn:
        row = conn.execute(_flights_query().where(Flight.flight_id == flight_id)).one_or_none()
        if row is None:
            return None
        return _info(row, _lines_by_flight(conn, [flight_id]).get(flight_id, []))


def read_day_flights(engine: Engine, day: dt.date) -> list[FlightInfo]:
    """The flights of a UTC day known to the billing database, by flight id, with lines."""
    from flight_fees.lib.db.models import Flight

    with engine.connect() as conn:
        rows = conn.execute(
            _flights_query().where(Flight.flight_date == day).order_by(Flight.flight_id)
        ).all()
        lines = _lines_by_flight(conn, [int(r.flight_id) for r in rows])
    return [_info(r, lines.get(int(r.flight_id), [])) for r in rows]


def read_unbilled(engine: Engine, day: dt.date) -> list[tuple[int, str, str | None, str | None]]:
    """Flights of the day still in the queue: ``(flight_id, status, category, last error)``."""
    from flight_fees.lib.db.models import FlightQueueItem as Q

    with engine.connect() as conn:
        rows = conn.execute(
            select(Q.flight_id, Q.status, Q.error_category, Q.last_error)
            .where(Q.flight_date == day)
            .order_by(Q.flight_id)
        ).all()
    return [(int(r.flight_id), r.status, r.error_category, r.last_error) for r in rows]


def read_days(engine: Engine, limit: int = 400) -> list[tuple[dt.date, int]]:
    """Days with billed flights, newest first: ``(day, flights)``."""
    from flight_fees.lib.db.models import Flight

    with engine.connect() as conn:
        rows = conn.execute(
            select(Flight.flight_date, func.count())
            .where(Flight.flight_date.is_not(None))
            .group_by(Flight.flight_date)
            .order_by(Flight.flight_date.desc())
            .limit(limit)
        ).all()
    return [(r[0], int(r[1])) for r in rows]


# --------------------------------------------------------------------------------------------
# reads: track and crossings
# --------------------------------------------------------------------------------------------


def read_work_rows(store: WorkStore, stage: str, day: dt.date, flight_id: int) -> pd.DataFrame:
    """The rows of ``flight_id`` in the newest run frame of ``stage`` for ``day`` that holds the
    flight (a run's one file, or a chunk file of a streamed run); an empty frame when none
    does, e.g. after the work store was pruned."""
    folder = store.path(stage, day, "x").parent
    if not folder.is_dir():
        return pd.DataFrame()
    files = []
    for path in [*folder.glob("*.parquet"), *folder.glob("*/part-*.parquet")]:
        try:
            files.append((path.stat().st_mtime_ns, path))
        except OSError:  # pruned meanwhile
            continue
    for _, path in sorted(files, reverse=True):
        try:
            table = read_table(path, filters=[("flight_id", "=", int(flight_id))])
        except (OSError, ValueError):
            continue
        if table.num_rows:
            return table.to_pandas()
    return pd.DataFrame()


@dataclass
class MapInputs:
    track: pd.DataFrame
    crossings: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)


def read_flight_track(
    store: WorkStore | None, source: Any, day: dt.date, flight_id: int
) -> tuple[pd.DataFrame, str]:
    """The flight's cleaned track and where it came from (``work store`` / ``track source``)."""
    if store is not None:
        rows = read_work_rows(store, "tracks", day, flight_id)
        if len(rows):
            return rows, "work store"
    if source is None:
        raise MapNotFound(f"no track of flight {flight_id} on {day}")
    from flight_fees.lib.tracks import TrackSourceError
    from flight_fees.lib.tracks.cleaning import clean_tracks

    try:
        fetched = source.fetch([int(flight_id)], day=day)
    except TrackSourceError as exc:
        raise MapNotFound(f"track of flight {flight_id} unavailable: {exc}") from exc
    raw = fetched.tracks
    if raw is None or raw.empty:
        failure = fetched.failures.get(int(flight_id)) if fetched.failures else None
        reason = f" ({failure.category}: {failure.message})" if failure else ""
        raise MapNotFound(f"no track of flight {flight_id} on {day}{reason}")
    cleaned = clean_tracks(raw).tracks
    return (cleaned if len(cleaned) else raw), "track source"


# --------------------------------------------------------------------------------------------
# pages (pure)
# --------------------------------------------------------------------------------------------


def _money(amount: Decimal, currency: str) -> str:
    from flight_fees.lib.core.money import format_money

    try:
        return format_money(amount, currency)
    except Exception:  # unknown currency code: show it as stored
        return f"{amount} {currency}"


def _a(href: str, text: str) -> str:
    return f'<a href="{html.escape(href, quote=True)}">{text}</a>'


def _flight_lines(
    info: FlightInfo | None, countries: Sequence[str], notes: Sequence[str]
) -> list[str]:
    """Title-box lines (safe HTML) of a flight map: charges, invoices, per-country links."""
    out: list[str] = []
    if info is not None and info.lines:
        per_zone: dict[tuple[str, str], Decimal] = {}
        for line in info.lines:
            key = (line.zone_id, line.currency)
            per_zone[key] = per_zone.get(key, Decimal(0)) + line.amount
        out.append(
            "charged: "
            + " &middot; ".join(
                f"{escape_text(z)} {escape_text(_money(a, c))}" for (z, c), a in per_zone.items()
            )
        )
        invoices = info.invoices()
        if invoices:
            out.append(
                "invoice: " + ", ".join(_a(links.invoice_path(n), escape_text(n)) for n in invoices)
            )
    elif info is not None:
        out.append(f"no fee line (status {escape_text(info.status)})")
    else:
        out.append("<i>not billed: unknown to the billing database</i>")
    if info is not None and countries:
        out.append(
            "by country: "
            + " ".join(
                _a(links.country_map_path(info.flight_id, c), escape_text(c)) for c in countries
            )
        )
    if info is not None and info.flight_date is not None:
        out.append(_a(f"/maps/{info.flight_date.isoformat()}/", "all flights of the day"))
    out.extend(f"<i>{escape_text(n)}</i>" for n in notes)
    return out


_INDEX_CSS = (
    "body{font:14px/1.45 sans-serif;margin:24px;color:#222}"
    "table{border-collapse:collapse}th,td{padding:4px 10px;border-bottom:1px solid #ddd;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}td.num{text-align:right}"
    "nav a{margin-right:14px}"
)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape_text(title)}</title><style>{_INDEX_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def day_index_html(
    day: dt.date,
    flights: Sequence[FlightInfo],
    unbilled: Sequence[tuple[int, str, str | None, str | None]] = (),
) -> str:
    """The index of a day's flights: callsign, registration, route, zones, amount, invoices,
    with links to each flight's map (server-relative links; every data text escaped)."""
    prev_day, next_day = day - dt.timedelta(days=1), day + dt.timedelta(days=1)
    nav = (
        "<nav>"
        + _a(f"/maps/{prev_day.isoformat()}/", "&larr; " + prev_day.isoformat())
        + _a("/maps/", "all days")
        + _a(f"/maps/{next_day.isoformat()}/", next_day.isoformat() + " &rarr;")
        + "</nav>"
    )
    rows = []
    totals: dict[str, Decimal] = {}
    for f in flights:
        for ccy, total in f.totals().items():
            totals[ccy] = totals.get(ccy, Decimal(0)) + total
        amount = "<br>".join(escape_text(_money(a, c)) for c, a in f.totals().items()) or "&mdash;"
        invoices = ", ".join(_a(links.invoice_path(n), escape_text(n)) for n in f.invoices())
        rows.append(
            "<tr>"
            f"<td>{_a(links.flight_map_path(f.flight_id), str(f.flight_id))}</td>"
            f"<td>{escape_text(f.callsign)}</td><td>{escape_text(f.registration)}</td>"
            f"<td>{escape_text(f.aircraft_type)}</td>"
            f"<td>{escape_text(f.origin)} &rarr; {escape_text(f.destination)}</td>"
            f"<td>{escape_text(', '.join(f.zones())) if f.lines else '&mdash;'}</td>"
            f'<td class="num">{amount}</td><td>{invoices or "&mdash;"}</td>'
            f"<td>{escape_text(f.status)}</td></tr>"
        )
    summary = ", ".join(escape_text(_money(a, c)) for c, a in sorted(totals.items()))
    body = [
        f"<h1>Flights of {day.isoformat()}</h1>",
        nav,
        f"<p>{len(flights)} flight(s) billed" + (f"; total {summary}" if summary else "") + "</p>",
    ]
    if rows:
        body.append(
            '<table class="ff-day"><thead><tr><th>flight (map)</th><th>callsign</th>'
            "<th>registration</th><th>type</th><th>route</th><th>zones</th><th>amount</th>"
            "<th>invoice</th><th>status</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )
    if unbilled:
        body.append("<h2>Not billed (still in the queue)</h2>")
        body.append(
            "<table><thead><tr><th>flight (map)</th><th>status</th><th>category</th>"
            "<th>last error</th></tr></thead><tbody>"
            + "".join(
                f"<tr><td>{_a(links.flight_map_path(fid) + '?day=' + day.isoformat(), str(fid))}"
                f"</td><td>{escape_text(status)}</td><td>{escape_text(category)}</td>"
                f"<td>{escape_text((error or '')[:300])}</td></tr>"
                for fid, status, category, error in unbilled
            )
            + "</tbody></table>"
        )
    return _page(f"Flights of {day.isoformat()}", "".join(body))


def days_index_html(days: Sequence[tuple[dt.date, int]]) -> str:
    """The list of days with billed flights, newest first."""
    items = "".join(
        f"<li>{_a(f'/maps/{d.isoformat()}/', d.isoformat())}: {n} flight(s)</li>" for d, n in days
    )
    body = "<h1>Flight maps</h1>" + (f"<ul>{items}</ul>" if items else "<p>No billed flight.</p>")
    return _page("Flight maps", body)


# --------------------------------------------------------------------------------------------
# the service: reads + render + cache
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapResult:
    html: str
    cached: bool
    path: StoragePath | None
    seconds: float


@dataclass
class PrerenderResult:
    maps: int = 0
    already_cached: int = 0
    flight_ids: list[int] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    failures: dict[int, str] = field(default_factory=dict)


class MapService:
    """Flight maps from stored data, cached on disk (see the module docstring).

    Args:
        engine: the billing database.
        home: the flight_fees home.
        storage: the shared storage root (work store and map cache below it; a local folder
            or an ``s3://`` UPath); default: ``home``.
        firs: returns the FIR frame (called once; its simplified shapes are kept).
        fir_index: returns the crossing engine's FIR index of the FIR frame it is given (for
            flights whose crossings are no longer in the work store); None: such maps show the
            track alone.
        source: returns the track source (None: work store only).
        assets: page assets (static URL prefix, optional tiles).
        fir_file: the FIR file, whose size and modification time enter the cache key.
        cache: keep rendered maps on disk.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        home: Path,
        firs: Callable[[], pd.DataFrame],
        fir_index: Callable[[pd.DataFrame], Any] | None = None,
        source: Callable[[], Any] | None = None,
        assets: MapAssets | None = None,
        fir_file: Path | None = None,
        cache: bool = True,
        storage: StoragePath | None = None,
    ) -> None:
        self.engine = engine
        self.home = Path(home)
        self.storage = storage if storage is not None else self.home
        self.work = WorkStore(self.storage / "work")
        self.cache_dir = self.storage / "maps" / "cache"
        self.assets = assets or MapAssets(static_url="/static")
        self.cache = cache
        self._firs_loader = firs
        self._index_loader = fir_index
        self._source_loader = source
        self._locks = {name: threading.Lock() for name in ("firs", "shapes", "index", "source")}
        self._firs: pd.DataFrame | None = None
        self._shapes: FirShapes | None = None
        self._index: Any = None
        self._source: Any = None
        stamp = ""
        if fir_file is not None:
            try:
                st = Path(fir_file).stat()
                stamp = f"{Path(fir_file).resolve()}:{st.st_size}:{st.st_mtime_ns}"
            except OSError:
                stamp = str(fir_file)
        self._base_key = f"{RENDERER_VERSION}|{self.assets.key()}|{stamp}"

    # -- lazily loaded, once per service --------------------------------------------------

    # one lock per resource: a map that needs only the FIR shapes never waits for the index
    def _frame(self) -> pd.DataFrame:
        with self._locks["firs"]:
            if self._firs is None:
                self._firs = self._firs_loader()
            return self._firs

    def shapes(self) -> FirShapes | None:
        if self._shapes is None:
            with self._locks["shapes"]:
                if self._shapes is None:
                    self._shapes = fir_shapes(self._frame())
        return self._shapes

    def fir_index(self) -> Any:
        if self._index_loader is None:
            return None
        if self._index is None:
            with self._locks["index"]:
                if self._index is None:
                    self._index = self._index_loader(self._frame())
        return self._index

    def source(self) -> Any:
        if self._source_loader is None:
            return None
        if self._source is None:
            with self._locks["source"]:
                if self._source is None:
                    self._source = self._source_loader()
        return self._source

    @classmethod
    def from_environment(
        cls,
        engine: Engine,
        *,
        home: Path | None = None,
        assets: MapAssets | None = None,
        storage: StoragePath | None = None,
    ) -> MapService:
        """The service over the configured stores: the home (``FLIGHT_FEES_HOME``), the shared
        storage (``FLIGHT_FEES_STORAGE_URL``, else the home), the shipped FIR set
        (``FLIGHT_FEES_FIR_SET``, FIR frame and index from the on-disk cache), the track source
        (``PINOT_HTTP_BROKER_URL`` or the Parquet store)."""
        import warnings

        from flight_fees.lib.airspace.firs import default_fir_set
        from flight_fees.lib.core.settings import Paths, home_dir, storage_url
        from flight_fees.lib.tracks import make_track_source

        def firs() -> pd.DataFrame:
            from flight_fees.lib.airspace.index_store import load_firs_cached

            with warnings.catch_warnings():  # the loader's data warnings: fir_boundaries shows them
                warnings.simplefilter("ignore")
                return load_firs_cached()

        home = home or home_dir()
        return cls(
            engine,
            home=home,
            storage=storage if storage is not None else Paths(home, storage_url()).storage,
            firs=firs,
            fir_index=_cached_fir_index,
            source=make_track_source,
            assets=assets,
            fir_file=default_fir_set().firs_path,
        )

    def warm(self) -> None:
        """Load the FIR shapes and index now (e.g. in a thread when a server starts), and the
        modules a first map needs."""
        import pyarrow.parquet  # noqa: F401

        import flight_fees.lib.tracks.cleaning  # noqa: F401

        self.shapes()
        self.source()
        self.fir_index()

    # -- cache ------------------------------------------------------------------------------

    def _key(self, info: FlightInfo) -> str:
        return hashlib.sha256(f"{self._base_key}|{info.state()}".encode()).hexdigest()[:16]

    def _cache_path(
        self, day: dt.date, flight_id: int, key: str, country: str | None
    ) -> StoragePath:
        suffix = f".{safe_country_name(country)}" if country is not None else ""
        return self.cache_dir / day.isoformat() / f"{int(flight_id)}.{key}{suffix}.html"

    def _store(self, path: StoragePath, text: str, flight_id: int, country: str | None) -> None:
        write_text_atomic(path, text)
        suffix = f".{safe_country_name(country)}.html" if country is not None else ".html"
        for old in path.parent.glob(f"{int(flight_id)}.*{suffix}"):
            if old != path and old.name.count(".") == path.name.count("."):
                old.unlink(missing_ok=True)

    # -- inputs -----------------------------------------------------------------------------

    def _day(self, flight_id: int, info: FlightInfo | None, day: dt.date | None) -> dt.date:
        if info is not None and info.flight_date is not None:
            return info.flight_date
        if day is not None:
            return day
        raise MapNotFound(
            f"flight {flight_id} is unknown to the billing database; give its UTC day "
            "(?day=YYYY-MM-DD)"
        )

    def inputs(self, flight_id: int, day: dt.date) -> MapInputs:
        track, track_from = read_flight_track(self.work, self.source(), day, flight_id)
        notes = []
        crossings: pd.DataFrame | None
        crossings = read_work_rows(self.work, "crossings", day, flight_id)
        if crossings.empty:
            index = self.fir_index()
            if index is not None:
                from flight_fees.lib.airspace.crossings import compute_crossings

                crossings = compute_crossings(track, index)
                notes.append("crossings recomputed from the track with the current FIR set")
            else:
                crossings = None
                notes.append("crossings not available")
        if track_from != "work store":
            notes.append(f"track from the {track_from}")
        return MapInputs(track=track, crossings=crossings, notes=notes)

    # -- use cases --------------------------------------------------------------------------

    def flight_map(
        self, flight_id: int, *, day: dt.date | None = None, country: str | None = None
    ) -> MapResult:
        """The map of a flight (``country``: only that country's part), from the cache when
        it is there. Raises :class:`MapNotFound`."""
        started = time.perf_counter()
        info = read_flight(self.engine, flight_id)
        the_day = self._day(flight_id, info, day)
        path = None
        if info is not None and self.cache:
            path = self._cache_path(the_day, flight_id, self._key(info), country)
            try:
                text = path.read_text(encoding="utf-8")
                return MapResult(text, True, path, time.perf_counter() - started)
            except FileNotFoundError:
                pass
        text = self.render(flight_id, the_day, info, country=country)
        if path is not None:
            self._store(path, text, flight_id, country)
        return MapResult(text, False, path, time.perf_counter() - started)

    def render(
        self,
        flight_id: int,
        day: dt.date,
        info: FlightInfo | None,
        *,
        country: str | None = None,
    ) -> str:
        """Render (no cache) the map page of a flight or of its part in ``country``."""
        inputs = self.inputs(flight_id, day)
        shapes = self.shapes()
        try:
            countries = map_countries(inputs.crossings, shapes)
        except ValueError:  # a FIR without country: no per-country links
            countries = []
        lines = _flight_lines(info, countries, inputs.notes)
        if country is None:
            return flight_map_html(
                inputs.track, inputs.crossings, shapes, lines=lines, assets=self.assets
            )
        if country not in countries:
            raise MapNotFound(f"flight {flight_id} did not cross a FIR of {country!r}")
        return country_map_html(
            inputs.track, inputs.crossings, shapes, country, lines=lines, assets=self.assets
        )

    def day_index(self, day: dt.date) -> str:
        return day_index_html(
            day, read_day_flights(self.engine, day), read_unbilled(self.engine, day)
        )

    def days_index(self) -> str:
        return days_index_html(read_days(self.engine))

    def prerender_day(self, day: dt.date, *, limit: int | None = None) -> PrerenderResult:
        """Warm the cache with the flight maps of a day's billed flights (per-country maps
        stay on demand); a failing map never stops the others."""
        started = time.perf_counter()
        result = PrerenderResult()
        flights = read_day_flights(self.engine, day)
        for info in flights[:limit] if limit is not None else flights:
            try:
                path = self._cache_path(day, info.flight_id, self._key(info), None)
                if path.exists():
                    result.already_cached += 1
                    result.bytes += path.stat().st_size
                else:
                    text = self.render(info.flight_id, day, info)
                    self._store(path, text, info.flight_id, None)
                    result.maps += 1
                    result.bytes += len(text.encode("utf-8"))
                result.flight_ids.append(info.flight_id)
            except Exception as exc:  # a map is a convenience: report, never block
                result.failures[info.flight_id] = f"{type(exc).__name__}: {exc}"
        result.seconds = time.perf_counter() - started
        return result


def _cached_fir_index(firs: pd.DataFrame) -> Any:
    from flight_fees.lib.airspace.index_store import cached_fir_index

    return cached_fir_index(firs)
