"""The processing stages as plain functions (no Dagster): tracks -> crossings -> fee lines
(maps are made on demand: ``flight_fees.lib.documents.map_service``). The Dagster assets in
``flight_fees/defs/processing`` are thin wrappers around these, and a notebook user can call
them directly.

Per-flight failures travel as ``{flight_id: (category, message)}``; a failing flight never
stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flight_fees.lib.core.storage import read_parquet

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from flight_fees.lib.airspace.crossings import FirIndex
    from flight_fees.lib.airspace.zones import ChargingZones
    from flight_fees.lib.billing.fee_lines import FlightBill, PersistResult
    from flight_fees.lib.charging.aircraft_types import AircraftTypes
    from flight_fees.lib.charging.attributes import Conflict, ResolvedAttributes
    from flight_fees.lib.charging.fx import FxRates
    from flight_fees.lib.charging.tariffs import Tariffs
    from flight_fees.lib.ops.workstore import WorkStore
    from flight_fees.lib.tracks.base import TrackSource

log = logging.getLogger(__name__)

Failures = dict[int, tuple[str, str]]


# -- stage 1: tracks --------------------------------------------------------------------------


@dataclass
class TrackStage:
    tracks: pd.DataFrame
    failures: Failures
    report: pd.DataFrame
    requested: list[int] | None
    queries: int = 0
    source_error: tuple[str, str] | None = None

    @property
    def flight_ids(self) -> list[int]:
        return sorted(int(f) for f in self.tracks["flight_id"].unique()) if len(self.tracks) else []


def fetch_tracks_stage(
    source: TrackSource,
    day: dt.date,
    flight_ids: Sequence[int] | None,
    *,
    max_gap_s: float = 600.0,
    max_speed_kt: float = 1200.0,
    min_points: int = 10,
) -> TrackStage:
    """Fetch the flights (or, without ids, every flight of ``day``) and clean their tracks."""
    from flight_fees.lib.tracks import TrackSourceError, empty_tracks
    from flight_fees.lib.tracks.cleaning import clean_tracks

    requested = sorted(set(int(f) for f in flight_ids)) if flight_ids else None
    try:
        fetched = source.fetch(requested, day=day) if requested else source.fetch_day(day)
    except TrackSourceError as exc:
        failure = (exc.category, str(exc))
        return TrackStage(
            tracks=empty_tracks(),
            failures={fid: failure for fid in requested or []},
            report=pd.DataFrame(),
            requested=requested,
            source_error=failure,
        )
    failures: Failures = {int(fid): (f.category, f.message) for fid, f in fetched.failures.items()}
    cleaned = clean_tracks(
        fetched.tracks, max_gap_s=max_gap_s, max_speed_kt=max_speed_kt, min_points=min_points
    )
    for fid, f in cleaned.failures.items():
        failures.setdefault(int(fid), (f.category, f.message))
    tracks = cleaned.tracks
    if failures and len(tracks):
        tracks = tracks[~tracks["flight_id"].isin(list(failures))].reset_index(drop=True)
    return TrackStage(
        tracks=tracks,
        failures=failures,
        report=cleaned.report,
        requested=requested,
        queries=fetched.queries,
    )


#: Flights fetched, crossed and billed at once by a streaming run: peak memory follows this,
#: not the number of flights in the run (~2,000 positions per flight: ~0.5 GB per chunk).
CHUNK_FLIGHTS: int = 1_000


def fetch_tracks_chunks(
    source: TrackSource,
    day: dt.date,
    flight_ids: Sequence[int] | None,
    *,
    chunk_flights: int = CHUNK_FLIGHTS,
    max_gap_s: float = 600.0,
    max_speed_kt: float = 1200.0,
    min_points: int = 10,
) -> Iterator[TrackStage]:
    """:func:`fetch_tracks_stage` over chunks of ``chunk_flights`` flights, one stage per chunk
    (without ids: every flight of ``day``, listed first). A whole-source failure ends the
    iteration with a stage whose ``source_error`` is set and whose failures cover the flights
    of that chunk and of every chunk not fetched yet."""
    from flight_fees.lib.tracks import TrackSourceError, empty_tracks

    if chunk_flights < 1:
        raise ValueError(f"chunk_flights must be >= 1, got {chunk_flights}")
    if flight_ids:
        ids = sorted(set(int(f) for f in flight_ids))
    else:
        try:
            ids = sorted(set(int(f) for f in source.flight_ids_for_day(day)))
        except TrackSourceError as exc:
            yield TrackStage(
                tracks=empty_tracks(),
                failures={},
                report=pd.DataFrame(),
                requested=None,
                source_error=(exc.category, str(exc)),
            )
            return
    for start in range(0, len(ids), chunk_flights):
        chunk = ids[start : start + chunk_flights]
        stage = fetch_tracks_stage(
            source,
            day,
            chunk,
            max_gap_s=max_gap_s,
            max_speed_kt=max_speed_kt,
            min_points=min_points,
        )
        if stage.source_error is not None:
            rest = ids[start + chunk_flights :]
            stage.failures.update({fid: stage.source_error for fid in rest})
            yield stage
            return
        yield stage


def flight_attribute_rows(tracks: pd.DataFrame) -> pd.DataFrame:
    """One row per flight: the most frequent non-null value of each attribute column, plus the
    first and last position (departure/arrival fallbacks) and times."""
    from flight_fees.lib.tracks import ATTRIBUTE_COLUMNS

    if tracks.empty:
        return pd.DataFrame({"flight_id": pd.Series(dtype="int64")})
    grouped = tracks.groupby("flight_id", sort=True)
    out = pd.DataFrame(
        {
            "first_ts": grouped["ts"].min(),
            "last_ts": grouped["ts"].max(),
            "points": grouped.size(),
        }
    )
    for column in ATTRIBUTE_COLUMNS:
        if column in tracks.columns:
            values = tracks[["flight_id", column]].dropna()
            values = values[values[column].astype(str).str.strip() != ""]
            if values.empty:
                out[column] = None
                continue
            counts = values.groupby(["flight_id", column], sort=False).size().reset_index(name="n")
            top = counts.sort_values(["flight_id", "n"], ascending=[True, False]).drop_duplicates(
                "flight_id"
            )
            out[column] = top.set_index("flight_id")[column]
    out = out.reset_index()
    out["flight_date"] = pd.to_datetime(out["first_ts"], utc=True).dt.date
    return out


# -- stage 2: crossings --------------------------------------------------------------------


@dataclass
class CrossingStage:
    crossings: pd.DataFrame
    visits: pd.DataFrame
    flights_without_crossings: list[int] = field(default_factory=list)
    #: zone visits in zones flagged ``charged: false`` (not billed here; reported)
    uncharged: pd.DataFrame | None = None


def aerodrome_points(attrs: pd.DataFrame, airports: pd.DataFrame) -> pd.DataFrame:
    """Origin/destination coordinates per flight (NaN when the aerodrome is unknown)."""
    coords = airports.set_index(airports["icao"].astype(str).str.upper())[["lat", "lon"]]
    out = pd.DataFrame({"flight_id": attrs["flight_id"].astype("int64")})
    for end in ("origin", "destination"):
        codes = (
            attrs[end].astype("string").str.upper()
            if end in attrs.columns
            else pd.Series(pd.NA, index=attrs.index, dtype="string")
        )
        joined = coords.reindex(codes.fillna("").to_numpy())
        out[f"{end}_lat"] = joined["lat"].to_numpy(dtype="float64")
        out[f"{end}_lon"] = joined["lon"].to_numpy(dtype="float64")
    return out


def crossings_stage(
    tracks: pd.DataFrame,
    firs: pd.DataFrame | FirIndex,
    zones: ChargingZones,
    *,
    attrs: pd.DataFrame | None = None,
    airports: pd.DataFrame | None = None,
    gap_threshold_s: float = 600.0,
    noise_tolerance_m: float | None = None,
    jitter_s: float = 0.0,
) -> CrossingStage:
    from flight_fees.lib.airspace.crossings import NOISE_TOLERANCE_M, compute_crossings
    from flight_fees.lib.airspace.zones import split_zone_visits

    crossings = compute_crossings(
        tracks,
        firs,
        gap_threshold_s=gap_threshold_s,
        noise_tolerance_m=NOISE_TOLERANCE_M if noise_tolerance_m is None else noise_tolerance_m,
        jitter_s=jitter_s,
    )
    aerodromes = (
        aerodrome_points(attrs, airports)
        if attrs is not None and airports is not None and len(attrs)
        else None
    )
    visits, uncharged = split_zone_visits(crossings, zones, aerodromes=aerodromes)
    seen = set(crossings["flight_id"].unique().tolist()) if len(crossings) else set()
    without = (
        sorted(int(f) for f in tracks["flight_id"].unique() if f not in seen) if len(tracks) else []
    )
    return CrossingStage(
        crossings=crossings,
        visits=visits,
        flights_without_crossings=without,
        uncharged=uncharged,
    )


def _present(value: Any) -> bool:
    return (
        value is not None
        and not (isinstance(value, float) and np.isnan(value))
        and str(value) != ""
    )


# -- stage 3: fee lines ----------------------------------------------------------------------


@dataclass
class BillStage:
    """The bills of a chunk of flights, priced and not written yet."""

    bills: list[FlightBill]
    failures: Failures
    conflicts: list[Conflict]
    lines: pd.DataFrame

    def preview(self, limit: int = 30) -> pd.DataFrame:
        columns = [
            "flight_id",
            "zone_id",
            "fir_ids",
            "distance_km",
            "mtow_kg",
            "tariff_version",
            "local_amount",
            "local_currency",
            "fx_rate",
            "billing_amount",
            "billing_currency",
        ]
        if self.lines.empty:
            return pd.DataFrame(columns=columns)
        return self.lines[columns].head(limit)


def _text(value: Any) -> str | None:
    return str(value).strip() if _present(value) and str(value).strip() else None


@dataclass(frozen=True)
class CustomerRef:
    """The customer an operator code bills to."""

    id: int
    code: str
    billing_currency: str


@dataclass(frozen=True)
class BillingContext:
    """What pricing needs from the billing database for one chunk of flights, read once by
    :func:`load_billing_context`: :func:`price_flights` then reads nothing."""

    resolved: ResolvedAttributes
    blocked: frozenset[int]
    customers: Mapping[str, CustomerRef]


def load_billing_context(
    engine: Engine, attrs: pd.DataFrame, *, attributes_csv: str | Path | None = None
) -> BillingContext:
    """Reads: resolve the flights' attributes over their sources (track rows, the aircraft
    table, the attributes CSV, manual resolutions), the flights an open conflict blocks and
    the customers. Writes nothing."""
    from sqlalchemy import select

    from flight_fees.lib.charging.attributes import (
        blocked_flight_ids,
        default_attribute_sources,
        resolve_attributes,
    )
    from flight_fees.lib.db.models import Customer

    flight_ids = [int(f) for f in attrs["flight_id"]] if len(attrs) else []
    sources = default_attribute_sources(engine, attrs, csv_path=attributes_csv)
    resolved = resolve_attributes(attrs[["flight_id"]], sources)
    blocked = frozenset(blocked_flight_ids(engine, flight_ids)) if flight_ids else frozenset()
    with engine.connect() as conn:
        customers = {
            row.code: CustomerRef(int(row.id), str(row.code), str(row.billing_currency))
            for row in conn.execute(select(Customer.id, Customer.code, Customer.billing_currency))
        }
    return BillingContext(resolved, blocked, customers)


def price_flights(
    context: BillingContext,
    visits: pd.DataFrame,
    attrs: pd.DataFrame,
    *,
    tariffs: Tariffs,
    fx: FxRates,
    aircraft_types: AircraftTypes,
) -> BillStage:
    """Pure: quote every zone visit of the flights and build one
    :class:`~flight_fees.lib.billing.fee_lines.FlightBill` (a flight's fee lines plus the
    flight row) per billable flight, from what :func:`load_billing_context` read.

    Failures: ``attribute_conflict`` (critical sources disagree: not billed until a human
    resolves it), ``unknown_aircraft`` (no operator known), ``unknown_customer``,
    ``unknown_mtow``, and the tariff/FX categories of
    :func:`flight_fees.lib.charging.fees.compute_fee_lines`. The conflicts to record travel in
    :attr:`BillStage.conflicts` (:func:`write_bills` records them).
    """
    from flight_fees.lib.billing.fee_lines import FlightBill
    from flight_fees.lib.charging.aircraft_types import select_mtow_frame
    from flight_fees.lib.charging.fees import compute_fee_lines
    from flight_fees.lib.core.frames import frame_records

    failures: Failures = {}
    if attrs.empty:
        return BillStage([], failures, [], pd.DataFrame())
    flight_ids = [int(f) for f in attrs["flight_id"]]
    resolved = context.resolved
    for conflict in resolved.conflicts:
        failures[conflict.flight_id] = (
            "attribute_conflict",
            f"sources disagree on {conflict.field}: {conflict.candidates}; resolve it "
            "(flight_conflicts) before billing",
        )
    for fid in sorted(context.blocked):
        failures.setdefault(
            fid, ("attribute_conflict", "an open attribute conflict blocks billing")
        )

    resolved_frame = resolved.attributes.set_index("flight_id")
    base = attrs.set_index("flight_id")
    customers = context.customers
    mtows = select_mtow_frame(
        resolved_frame.reset_index().rename(columns={"mtow_kg": "registration_mtow_kg"}),
        aircraft_types,
    ).set_index(resolved_frame.index)

    rows: list[dict[str, Any]] = []
    flight_info: dict[int, dict[str, Any]] = {}
    # one column-wise look-up per attribute (no per-flight .loc), then plain values per flight
    res = resolved_frame[~resolved_frame.index.duplicated()].reindex(flight_ids)

    def column(frame: pd.DataFrame, name: str) -> list[Any]:
        if name not in frame.columns:
            return [None] * len(frame)
        return list(frame[name].to_numpy(dtype=object).tolist())

    described = {
        name: column(res, name)
        for name in ("callsign", "icao24", "aircraft_type", "origin", "destination")
    }
    mt = mtows[~mtows.index.duplicated()].reindex(flight_ids)
    dates = base[~base.index.duplicated()]["flight_date"].reindex(flight_ids).tolist()
    for k, fid, registration, operator, flags, mtow_kg, mtow_error, mtow_source in zip(
        range(len(flight_ids)),
        flight_ids,
        map(_text, column(res, "registration")),
        map(_text, column(res, "operator")),
        column(res, "flags"),
        column(mt, "mtow_kg"),
        column(mt, "mtow_error"),
        column(mt, "mtow_source"),
        strict=True,
    ):
        if fid in failures:
            continue
        if operator is None:
            failures[fid] = (
                "unknown_aircraft",
                f"no operator known for registration {registration or '?'} "
                "(add it to the aircraft table)",
            )
            continue
        customer = customers.get(operator)
        if customer is None:
            failures[fid] = ("unknown_customer", f"operator {operator!r} is not a customer")
            continue
        if mtow_kg is None or (isinstance(mtow_kg, float) and mtow_kg != mtow_kg):
            failures[fid] = ("unknown_mtow", str(mtow_error))
            continue
        flight_date = dates[k]
        rows.append(
            {
                "flight_id": fid,
                "flight_date": flight_date,
                "mtow_kg": mtow_kg,
                "flags": flags if _present(flags) else None,
                "billing_currency": customer.billing_currency,
            }
        )
        flight_info[fid] = {
            "flight_date": flight_date,
            "callsign": _text(described["callsign"][k]),
            "registration": registration,
            "icao24": _text(described["icao24"][k]),
            "aircraft_type": _text(described["aircraft_type"][k]),
            "origin": _text(described["origin"][k]),
            "destination": _text(described["destination"][k]),
            "customer_id": customer.id,
            "mtow_kg": mtow_kg,
            "mtow_source": mtow_source,
        }
    flights = pd.DataFrame(
        rows, columns=["flight_id", "flight_date", "mtow_kg", "flags", "billing_currency"]
    )
    billable = visits[visits["flight_id"].isin(list(flight_info))] if len(visits) else visits
    result = compute_fee_lines(billable, flights, tariffs, fx)
    failures.update({int(k): v for k, v in result.failures.items()})
    lines_by_flight: dict[int, list[dict[str, Any]]] = {}
    for line in frame_records(result.lines):
        fid = int(line["flight_id"])
        line["customer_id"] = flight_info[fid]["customer_id"]
        lines_by_flight.setdefault(fid, []).append(line)
    bills = [
        FlightBill(fid, lines_by_flight.get(fid, []), info)
        for fid, info in flight_info.items()
        if fid not in failures
    ]
    return BillStage(bills, failures, list(resolved.conflicts), result.lines)


def bill_stage(
    engine: Engine,
    visits: pd.DataFrame,
    attrs: pd.DataFrame,
    *,
    tariffs: Tariffs,
    fx: FxRates,
    aircraft_types: AircraftTypes,
    attributes_csv: str | Path | None = None,
) -> BillStage:
    """:func:`load_billing_context` then :func:`price_flights`: the bills of a chunk of flights,
    nothing written (:func:`write_bills` writes them)."""
    context = load_billing_context(engine, attrs, attributes_csv=attributes_csv)
    return price_flights(
        context, visits, attrs, tariffs=tariffs, fx=fx, aircraft_types=aircraft_types
    )


@dataclass
class WrittenBills:
    """What :func:`write_bills` stored and refused."""

    persisted: PersistResult
    skipped_invoiced: dict[int, str] = field(default_factory=dict)
    conflicts_recorded: int = 0


def write_bills(
    engine: Engine,
    stage: BillStage,
    *,
    batch_id: str | None = None,
    skip_invoiced: bool = False,
) -> WrittenBills:
    """Writes: the stage's attribute conflicts (open rows of ``flight_conflicts``), then its
    bills (:func:`~flight_fees.lib.billing.fee_lines.persist_bills`: a flight's lines, its
    ``flights`` row and the deletion of its queue row in one transaction).

    ``skip_invoiced`` (a whole-day backfill): flights already on an invoice are left alone
    and reported in ``skipped_invoiced``; otherwise persisting refuses them as failures
    (``already_invoiced``)."""
    from flight_fees.lib.billing.fee_lines import invoiced_flights, persist_bills
    from flight_fees.lib.charging.attributes import record_conflicts
    from flight_fees.lib.db.engine import transaction

    recorded = 0
    if stage.conflicts:
        with transaction(engine) as session:
            recorded = record_conflicts(session, stage.conflicts)
    to_write = stage.bills
    skipped: dict[int, str] = {}
    if skip_invoiced and to_write:
        with transaction(engine) as session:
            skipped = dict(invoiced_flights(session, [b.flight_id for b in to_write]))
        to_write = [b for b in to_write if b.flight_id not in skipped]
    persisted = persist_bills(engine, to_write, batch_id=batch_id)
    return WrittenBills(persisted, skipped, recorded)


# -- streaming: a run's flights through the stages chunk by chunk -----------------------------
#
# Each stage reads the chunk files of the stage before it (work store parts) and writes its
# own, one chunk at a time: peak memory follows ``CHUNK_FLIGHTS``, not the size of the run.


@dataclass
class TracksRun:
    """What :func:`stream_tracks` fetched and wrote."""

    flights_with_tracks: int = 0
    points: int = 0
    queries: int = 0
    failures: Failures = field(default_factory=dict)
    report: pd.DataFrame = field(default_factory=pd.DataFrame)  # first rows of the cleaning
    source_error: tuple[str, str] | None = None
    chunks: int = 0


def stream_tracks(
    source: TrackSource,
    store: WorkStore,
    day: dt.date,
    run_id: str,
    flight_ids: Sequence[int] | None,
    *,
    chunk_flights: int = CHUNK_FLIGHTS,
    max_gap_s: float = 600.0,
    max_speed_kt: float = 1200.0,
    min_points: int = 10,
    report_rows: int = 100,
) -> TracksRun:
    """Fetch and clean the flights chunk by chunk (:func:`fetch_tracks_chunks`), writing the
    tracks and one attribute row per flight of each chunk to the work store
    (``tracks`` / ``flight_attributes`` parts).

    A whole-source failure stops the stream: every flight of the run that is not billed by it
    (those of the failing chunk, of the chunks not fetched, and of the chunks already written,
    which no later stage of this run will bill) gets that failure, so that the caller hands
    them all back to the queue."""
    out = TracksRun()
    written: list[int] = []
    reports: list[pd.DataFrame] = []
    for k, stage in enumerate(
        fetch_tracks_chunks(
            source,
            day,
            flight_ids,
            chunk_flights=chunk_flights,
            max_gap_s=max_gap_s,
            max_speed_kt=max_speed_kt,
            min_points=min_points,
        )
    ):
        out.queries += stage.queries
        out.failures.update(stage.failures)
        if stage.source_error is not None:
            out.source_error = stage.source_error
            out.failures.update({fid: stage.source_error for fid in written})
            break
        store.write_part("tracks", day, run_id, k, stage.tracks)
        store.write_part("flight_attributes", day, run_id, k, flight_attribute_rows(stage.tracks))
        out.chunks += 1
        ids = stage.flight_ids
        written.extend(ids)
        out.flights_with_tracks += len(ids)
        out.points += len(stage.tracks)
        if len(stage.report) and sum(map(len, reports)) < report_rows:
            reports.append(stage.report)
    if out.chunks == 0 and out.source_error is None:  # nothing to fetch: an empty stage
        from flight_fees.lib.tracks import empty_tracks

        store.write_part("tracks", day, run_id, 0, empty_tracks())
        store.write_part("flight_attributes", day, run_id, 0, flight_attribute_rows(empty_tracks()))
        out.chunks = 1
    if reports:
        out.report = pd.concat(reports, ignore_index=True).head(report_rows)
    return out


@dataclass
class CrossingsRun:
    """What :func:`stream_crossings` computed and wrote."""

    flights: int = 0
    points: int = 0
    crossings: int = 0
    zone_visits: int = 0
    interpolated: int = 0
    flights_without_crossings: int = 0
    crossings_per_fir: dict[str, int] = field(default_factory=dict)
    merged_per_flight: pd.Series = field(default_factory=lambda: pd.Series(dtype=np.int64))
    uncharged_per_zone: dict[str, int] = field(default_factory=dict)
    preview: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0


def stream_crossings(
    store: WorkStore,
    day: dt.date,
    run_ids: Sequence[str],
    run_id: str,
    firs: pd.DataFrame | FirIndex,
    zones: ChargingZones,
    *,
    airports: pd.DataFrame | None = None,
    gap_threshold_s: float = 600.0,
    noise_tolerance_m: float | None = None,
    jitter_s: float = 0.0,
    preview_rows: int = 30,
) -> CrossingsRun:
    """:func:`crossings_stage` over the track chunks of the run (or of its parents), writing
    ``crossings`` and ``zone_visits`` parts of the same numbers."""
    import time

    from flight_fees.lib.airspace.crossings import merged_excursions_per_flight

    out = CrossingsRun()
    merged: list[pd.Series] = []
    previews: list[pd.DataFrame] = []
    track_parts = store.parts("tracks", day, run_ids)
    attr_parts = store.parts("flight_attributes", day, run_ids)
    for k, (track_file, attr_file) in enumerate(zip(track_parts, attr_parts, strict=True)):
        tracks = read_parquet(track_file)
        attrs = read_parquet(attr_file)
        started = time.perf_counter()
        stage = crossings_stage(
            tracks,
            firs,
            zones,
            attrs=attrs,
            airports=airports,
            gap_threshold_s=gap_threshold_s,
            noise_tolerance_m=noise_tolerance_m,
            jitter_s=jitter_s,
        )
        out.seconds += time.perf_counter() - started
        store.write_part("crossings", day, run_id, k, stage.crossings)
        store.write_part("zone_visits", day, run_id, k, stage.visits)
        cr = stage.crossings
        out.flights += int(tracks["flight_id"].nunique()) if len(tracks) else 0
        out.points += len(tracks)
        out.crossings += len(cr)
        out.zone_visits += len(stage.visits)
        out.interpolated += int(cr["interpolated"].sum()) if len(cr) else 0
        out.flights_without_crossings += len(stage.flights_without_crossings)
        for fir, n in cr.groupby("fir_id").size().items() if len(cr) else []:
            out.crossings_per_fir[str(fir)] = out.crossings_per_fir.get(str(fir), 0) + int(n)
        merged.append(merged_excursions_per_flight(cr))
        unc = stage.uncharged
        for zone, n in (
            unc.groupby("zone_id").size().items() if unc is not None and len(unc) else []
        ):
            out.uncharged_per_zone[str(zone)] = out.uncharged_per_zone.get(str(zone), 0) + int(n)
        if sum(map(len, previews)) < preview_rows and len(cr):
            previews.append(cr.head(preview_rows))
    merged = [m for m in merged if len(m)]
    if merged:
        out.merged_per_flight = pd.concat(merged).sort_values(ascending=False, kind="stable")
    if previews:
        out.preview = pd.concat(previews, ignore_index=True).head(preview_rows)
    out.crossings_per_fir = dict(sorted(out.crossings_per_fir.items(), key=lambda kv: -kv[1]))
    return out


@dataclass
class BillsRun:
    """What :func:`stream_bills` wrote and refused."""

    written: dict[int, int] = field(default_factory=dict)  # flight_id -> lines
    failures: Failures = field(default_factory=dict)
    skipped_invoiced: dict[int, str] = field(default_factory=dict)
    totals: dict[str, Any] = field(default_factory=dict)  # billing currency -> Decimal
    conflicts: int = 0
    flights: int = 0  # flights with attributes (tracks) in the run
    preview: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def lines(self) -> int:
        return sum(self.written.values())


def stream_bills(
    engine: Engine,
    store: WorkStore,
    day: dt.date,
    run_ids: Sequence[str],
    *,
    tariffs: Tariffs,
    fx: FxRates,
    aircraft_types: AircraftTypes,
    attributes_csv: str | Path | None = None,
    batch_id: str | None = None,
    backfill: bool = False,
    preview_rows: int = 30,
) -> BillsRun:
    """:func:`bill_stage` and :func:`~flight_fees.lib.billing.fee_lines.persist_bills` over the
    zone-visit
    chunks of the run: each chunk's lines are written (with the deletion of its flights'
    queue rows, one transaction per chunk of flights) before the next chunk is read.

    ``backfill``: a whole-day run re-bills what is not invoiced yet and leaves invoiced flights
    alone (``skipped_invoiced``); an explicitly requested invoiced flight is refused as a
    failure instead (``already_invoiced``)."""
    from decimal import Decimal

    from flight_fees.lib.billing.fee_lines import fee_line_totals

    out = BillsRun()
    totals: dict[str, Decimal] = {}
    previews: list[pd.DataFrame] = []
    visit_parts = store.parts("zone_visits", day, run_ids)
    attr_parts = store.parts("flight_attributes", day, run_ids)
    for visits_file, attr_file in zip(visit_parts, attr_parts, strict=True):
        visits = read_parquet(visits_file)
        attrs = read_parquet(attr_file)
        out.flights += len(attrs)
        context = load_billing_context(engine, attrs, attributes_csv=attributes_csv)
        bills = price_flights(
            context, visits, attrs, tariffs=tariffs, fx=fx, aircraft_types=aircraft_types
        )
        written = write_bills(engine, bills, batch_id=batch_id, skip_invoiced=backfill)
        persisted = written.persisted
        out.skipped_invoiced.update(written.skipped_invoiced)
        out.failures.update(bills.failures)
        out.failures.update(persisted.failures)
        out.written.update(persisted.written)
        out.conflicts += len(bills.conflicts)
        for ccy, amount in fee_line_totals(engine, list(persisted.written)).items():
            totals[ccy] = totals.get(ccy, Decimal(0)) + amount
        if sum(map(len, previews)) < preview_rows:
            preview = bills.preview(limit=preview_rows)
            if len(preview):
                previews.append(preview)
    out.totals = totals
    if previews:
        out.preview = pd.concat(previews, ignore_index=True).head(preview_rows)
    return out
