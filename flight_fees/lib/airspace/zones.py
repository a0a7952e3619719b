"""Charging zones: FIR -> zone membership over time, and zone visits from FIR crossings.

A charging zone (``zone_id``, upper-case string) groups FIRs billed with one tariff. The zone
file (YAML, see ``flight_fees/data/charging_zones.yaml``) maps each zone to FIR ids, each
membership valid from ``valid_from`` (inclusive) until ``valid_to`` (exclusive, optional),
evaluated on the UTC date of a visit's entry. Two optional keys:

- ``class`` (on a FIR listed as a mapping, or on a zone for its plain FIRs): the airspace
  class of the FIR for ``distance_class`` tariffs (FAA), ``enroute`` (default) or
  ``oceanic``. Zone visits carry it in their ``airspace_class`` column and are split where
  it changes.
- ``charged: false`` (on a zone): the zone is **not charged by this installation** (the
  bureau bills no tariff there, e.g. Canada in the world zone file). Its visits are computed
  like the others, then left out of :func:`zone_visits` so they never reach the fee lines
  (no ``no_tariff`` failure for the flight), but never silently: :func:`zone_visits` warns
  (:class:`ZoneDataWarning`) with their count per zone, and :func:`split_zone_visits`
  returns them as a second frame (same columns) for callers that show "visits in uncharged
  zones". A zone with a tariff must stay charged; a charged zone without tariff still fails
  the flight with ``no_tariff`` (``flight_fees.lib.charging.fees``).

:func:`zone_visits` turns the crossings frame (one row per FIR visit) into the zone visits
frame of ``docs/ARCHITECTURE.md``: consecutive, contiguous crossings of one flight in FIRs of
the same zone and airspace class merge into one zone visit.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np
import pandas as pd
import pyproj
import shapely

from flight_fees.lib.airspace.crossings import VISIT_FLOAT_COLUMNS, VISIT_SPAN_COLUMNS
from flight_fees.lib.charging.tariffs.model import AIRSPACE_CLASSES
from flight_fees.lib.core.safe_yaml import YamlDataError, load_yaml
from flight_fees.lib.core.timeutil import as_utc_timestamp

__all__ = [
    "DEFAULT_ZONES_PATH",
    "ZONE_VISIT_COLUMNS",
    "ChargingZones",
    "ZoneDataError",
    "ZoneDataWarning",
    "ZoneVisitSplit",
    "load_charging_zones",
    "split_zone_visits",
    "zone_visits",
]


def _import_default_path() -> Path:
    from flight_fees.lib.airspace.firs import WORLD_ZONES_PATH, FirDataError, default_fir_set

    try:
        return default_fir_set().zones_path
    except FirDataError:  # reported when the set is used, not on import
        return WORLD_ZONES_PATH


#: The default zone file at import time: the one of the shipped FIR set selected by
#: ``FLIGHT_FEES_FIR_SET`` (``flight_fees.lib.airspace.firs.default_fir_set``);
#: :func:`load_charging_zones`
#: resolves the default again on each call.
DEFAULT_ZONES_PATH: Final[Path] = _import_default_path()
#: Airspace class of a FIR membership without ``class``.
DEFAULT_AIRSPACE_CLASS: Final[str] = "enroute"

ZONE_VISIT_COLUMNS: Final[tuple[str, ...]] = (
    "flight_id",
    "visit_index",
    "zone_id",
    "fir_ids",
    *VISIT_SPAN_COLUMNS,
    "interpolated",
    "departure_in_zone",
    "arrival_in_zone",
    "airspace_class",
)

#: Two crossings are contiguous when the second starts at most this long after the first ends.
CONTIGUITY_TOLERANCE: Final[pd.Timedelta] = pd.Timedelta(seconds=1)

_ZONE_ID_RE: Final = re.compile(r"^[A-Z0-9][A-Z0-9_-]*$")
_GEOD: Final = pyproj.Geod(ellps="WGS84")
_CROSSING_REQUIRED: Final = (
    "flight_id", "visit_index", "fir_id", "entry_time", "exit_time", "entry_lat", "entry_lon",
    "exit_lat", "exit_lon", "flown_km", "interpolated",
)  # fmt: skip


class ZoneDataError(ValueError):
    """The charging-zone file is unreadable or inconsistent with the FIR set."""


class ZoneDataWarning(UserWarning):
    """A charging-zone problem that does not stop processing (e.g. a FIR without zone)."""


@dataclass(frozen=True, eq=False)
class ChargingZones:
    """Charging zones bound to a FIR set.

    Attributes:
        memberships: one row per (zone, FIR, period): ``zone_id, fir_id, valid_from,
            valid_to, airspace_class`` (``valid_to`` NaT = open-ended; both
            ``datetime64[ns, UTC]`` midnights; ``airspace_class`` ``enroute``/``oceanic``).
        names: zone name by zone id.
        firs: the FIR set (``fir_id, geometry, ...``) the zones refer to.
        uncharged: ids of the zones flagged ``charged: false`` (not charged by this
            installation).
    """

    memberships: pd.DataFrame
    names: Mapping[str, str]
    firs: pd.DataFrame = field(repr=False)
    uncharged: frozenset[str] = frozenset()

    @property
    def zone_ids(self) -> list[str]:
        """Zone ids, sorted."""
        return sorted(self.names)

    @property
    def charged_zone_ids(self) -> list[str]:
        """Ids of the zones charged by this installation, sorted."""
        return sorted(set(self.names) - self.uncharged)

    def is_charged(self, zone_id: str) -> bool:
        """False for a zone flagged ``charged: false`` (and for an unknown zone)."""
        return zone_id in self.names and zone_id not in self.uncharged

    def zone_for_fir(self, fir_id: str, on_date: date | datetime | str) -> str | None:
        """The zone of ``fir_id`` on ``on_date`` (UTC date of a datetime), or None."""
        day = _to_utc_day(on_date)
        zones = self.zones_for(np.array([fir_id], dtype=object), np.array([day.value]))
        return None if pd.isna(zones[0]) else str(zones[0])

    def zones_for(self, fir_ids: np.ndarray, days_ns: np.ndarray) -> np.ndarray:
        """Vectorised lookup: zone id (object array, None where no zone) of each FIR id at
        each UTC time (epoch ns; only its date matters)."""
        return self.lookup(fir_ids, days_ns)[0]

    def lookup(self, fir_ids: np.ndarray, days_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised lookup of each FIR id at each UTC time (epoch ns; only its date
        matters): ``(zone ids, airspace classes)``, object arrays, None where no zone."""
        fir_ids = np.asarray(fir_ids, dtype=object)
        days = np.asarray(days_ns, dtype=np.int64)
        days = days - np.mod(days, 86_400 * 10**9)
        out = np.full(len(fir_ids), None, dtype=object)
        cls = np.full(len(fir_ids), None, dtype=object)
        if len(fir_ids) == 0:
            return out, cls
        m = self.memberships
        probe = pd.DataFrame({"fir_id": fir_ids, "_row": np.arange(len(fir_ids)), "_day": days})
        joined = probe.merge(
            pd.DataFrame(
                {
                    "fir_id": m["fir_id"].to_numpy(dtype=object),
                    "zone_id": m["zone_id"].to_numpy(dtype=object),
                    "_class": m["airspace_class"].to_numpy(dtype=object),
                    "_from": _ns(m["valid_from"]),
                    "_to": _ns(m["valid_to"], fill=np.iinfo(np.int64).max),
                }
            ),
            on="fir_id",
            how="inner",
        )
        ok = (joined["_day"] >= joined["_from"]) & (joined["_day"] < joined["_to"])
        joined = joined[ok]
        rows = joined["_row"].to_numpy()
        out[rows] = joined["zone_id"].to_numpy(dtype=object)
        cls[rows] = joined["_class"].to_numpy(dtype=object)
        return out, cls

    def firs_of_zone(self, zone_id: str, on_date: date | datetime | str) -> list[str]:
        """FIR ids of ``zone_id`` on ``on_date``."""
        day = _to_utc_day(on_date).value
        m = self.memberships
        ok = (
            (m["zone_id"] == zone_id)
            & (_ns(m["valid_from"]) <= day)
            & (day < _ns(m["valid_to"], fill=np.iinfo(np.int64).max))
        )
        return sorted(m.loc[ok, "fir_id"].astype(str))


def load_charging_zones(
    path: str | Path | None = None, *, firs: pd.DataFrame | None = None
) -> ChargingZones:
    """Load and validate a charging-zone file against a FIR set.

    Args:
        path: YAML zone file; ``None`` = the zone file of the shipped FIR set selected by
            ``FLIGHT_FEES_FIR_SET`` (``flight_fees.lib.airspace.firs.default_fir_set``).
        firs: the FIR set the zones refer to; ``None`` = the shipped FIR set
            (``flight_fees.lib.airspace.firs.load_firs()``).

    Raises:
        ZoneDataError: unreadable / malformed file, zone id not upper-case, duplicate zone,
            unknown FIR id (the message names the zone), bad dates, a FIR in two zones at the
            same date, ``charged`` not a boolean, unknown airspace ``class``.

    Warns:
        ZoneDataWarning: FIRs of the set that belong to no zone.
    """
    if path is None:
        from flight_fees.lib.airspace.firs import default_fir_set

        src = default_fir_set().zones_path
    else:
        src = Path(path)
    try:
        text = src.read_text(encoding="utf-8")
    except OSError as exc:
        raise ZoneDataError(f"cannot read charging-zone file {src}: {exc}") from exc
    try:
        # strict keys, bounded nesting, impossible dates kept as text (named by _parse_date)
        doc = load_yaml(text, source=str(src))
    except YamlDataError as exc:
        raise ZoneDataError(str(exc)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("zones"), dict) or not doc["zones"]:
        raise ZoneDataError(f"{src}: expected a mapping with a non-empty 'zones' mapping")
    if firs is None:
        from flight_fees.lib.airspace.firs import load_firs

        firs = load_firs()

    file_from = _parse_date(doc.get("valid_from"), src, "file", "valid_from")
    file_to = _parse_date(doc.get("valid_to"), src, "file", "valid_to")
    known = set(firs["fir_id"].astype(str))
    rows: list[tuple[str, str, pd.Timestamp, pd.Timestamp | None, str]] = []
    names: dict[str, str] = {}
    uncharged: set[str] = set()
    for raw_id, spec in doc["zones"].items():
        zone_id = str(raw_id)
        if not _ZONE_ID_RE.match(zone_id):
            raise ZoneDataError(f"{src}: zone id {zone_id!r} must be an upper-case string")
        if not isinstance(spec, dict) or not isinstance(spec.get("firs"), list) or not spec["firs"]:
            raise ZoneDataError(f"{src}: zone {zone_id} needs a non-empty list 'firs'")
        names[zone_id] = str(spec.get("name") or zone_id)
        charged = spec.get("charged", True)
        if not isinstance(charged, bool):
            raise ZoneDataError(f"{src}: zone {zone_id}: 'charged' must be true or false")
        if not charged:
            uncharged.add(zone_id)
        zone_class = _airspace_class(spec.get("class"), src, zone_id, DEFAULT_AIRSPACE_CLASS)
        zone_from = _parse_date(spec.get("valid_from"), src, zone_id, "valid_from") or file_from
        zone_to = _parse_date(spec.get("valid_to"), src, zone_id, "valid_to") or file_to
        for item in spec["firs"]:
            if isinstance(item, dict):
                fir = str(item.get("fir", "")).strip().upper()
                start = _parse_date(item.get("valid_from"), src, zone_id, "valid_from") or zone_from
                end = _parse_date(item.get("valid_to"), src, zone_id, "valid_to") or zone_to
                fir_class = _airspace_class(item.get("class"), src, zone_id, zone_class)
            else:
                fir, start, end = str(item).strip().upper(), zone_from, zone_to
                fir_class = zone_class
            if not fir:
                raise ZoneDataError(f"{src}: zone {zone_id} has an empty FIR id")
            if start is None:
                raise ZoneDataError(f"{src}: zone {zone_id}: FIR {fir} has no valid_from")
            if end is not None and end <= start:
                raise ZoneDataError(
                    f"{src}: zone {zone_id}: FIR {fir} valid_to {end.date()} is not after "
                    f"valid_from {start.date()}"
                )
            rows.append((zone_id, fir, start, end, fir_class))

    memberships = pd.DataFrame(
        rows, columns=["zone_id", "fir_id", "valid_from", "valid_to", "airspace_class"]
    )
    memberships["valid_from"] = pd.to_datetime(memberships["valid_from"], utc=True)
    memberships["valid_to"] = pd.to_datetime(memberships["valid_to"], utc=True)
    memberships = memberships.astype({"zone_id": "str", "fir_id": "str", "airspace_class": "str"})

    unknown = memberships[~memberships["fir_id"].isin(known)]
    if len(unknown):
        detail = "; ".join(
            f"zone {z}: {', '.join(sorted(set(g['fir_id'])))}"
            for z, g in unknown.groupby("zone_id", sort=True)
        )
        hint = (
            " (the default zone file of the shipped FIR set selected by FLIGHT_FEES_FIR_SET was "
            "used with another FIR set: pass the zone file of your FIR set, or select the "
            "matching shipped set)"
            if path is None
            else ""
        )
        raise ZoneDataError(f"{src}: unknown FIR id(s) (not in the FIR set): {detail}{hint}")
    _check_no_overlap(memberships, src)
    orphans = sorted(known - set(memberships["fir_id"]))
    if orphans:
        warnings.warn(
            f"{src}: FIR(s) without charging zone (their visits are not billed): "
            f"{', '.join(orphans)}",
            ZoneDataWarning,
            stacklevel=2,
        )
    memberships = memberships.sort_values(["zone_id", "fir_id", "valid_from"]).reset_index(
        drop=True
    )
    return ChargingZones(
        memberships=memberships, names=names, firs=firs, uncharged=frozenset(uncharged)
    )


class ZoneVisitSplit(NamedTuple):
    """Zone visits of charged zones (``visits``, billed) and of zones flagged
    ``charged: false`` (``uncharged``, same columns, reported only)."""

    visits: pd.DataFrame
    uncharged: pd.DataFrame


def zone_visits(
    crossings: pd.DataFrame,
    zones: ChargingZones,
    *,
    aerodromes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Zone visits of the **charged** zones (see :func:`split_zone_visits`).

    Visits in zones flagged ``charged: false`` are left out with a :class:`ZoneDataWarning`
    giving their count per zone; use :func:`split_zone_visits` to get them as a frame.
    """
    split = split_zone_visits(crossings, zones, aerodromes=aerodromes)
    if len(split.uncharged):
        counts = split.uncharged["zone_id"].value_counts().sort_index()
        warnings.warn(
            f"{len(split.uncharged)} visit(s) in zone(s) not charged by this installation left "
            f"out: {', '.join(f'{z} {n}' for z, n in counts.items())}",
            ZoneDataWarning,
            stacklevel=2,
        )
    return split.visits


def split_zone_visits(
    crossings: pd.DataFrame,
    zones: ChargingZones,
    *,
    aerodromes: pd.DataFrame | None = None,
) -> ZoneVisitSplit:
    """Zone visits (``docs/ARCHITECTURE.md``) from FIR crossings, split into the visits of
    charged zones and those of zones flagged ``charged: false``.

    Consecutive crossings of one flight (by ``visit_index``) in FIRs of the same zone and the
    same airspace class merge into one zone visit when contiguous (the next entry is at most
    :data:`CONTIGUITY_TOLERANCE` after the previous exit; a stretch outside every FIR, or a
    crossing without zone, in between keeps them apart). Per zone visit: entry from the first
    crossing, exit from the last, ``distance_km`` = geodesic (WGS84) distance from the first
    entry point to the last exit point, ``flown_km`` summed, ``interpolated`` = any, ``fir_ids``
    = the FIR ids of the merged crossings in visiting order, comma-separated (one per FIR
    crossing: a FIR re-entered within the zone visit appears again, e.g. ``LFFF,LFEE,LFFF``).

    ``departure_in_zone`` is only set on a flight's first zone visit, ``arrival_in_zone`` on its
    last. With ``aerodromes`` (``flight_id, origin_lat, origin_lon, destination_lat,
    destination_lon``; NaN when unknown), the aerodrome point is tested against the zone's FIR
    polygons (boundary included). Where the aerodrome is unknown: the first visit counts as
    departure when the track starts inside it (``starts_inside``), the last as arrival when it
    ends inside it (``ends_inside``); without these columns, False.

    ``airspace_class`` is the FIR membership's class (``enroute`` unless the zone file says
    ``class: oceanic``); a zone visit is split where it changes (e.g. KZBW -> KZNY in the
    world zone file gives two ``US`` visits, ``enroute`` then ``oceanic``).

    Visits are built over all zones (so departure / arrival flags and contiguity do not
    depend on the ``charged`` flag), then split; ``visit_index`` is renumbered ``0..n-1`` per
    flight within each frame.

    Crossings whose FIR has no zone on the visit's date are left out, with a
    :class:`ZoneDataWarning`.
    """
    frame = _zone_visits(crossings, zones, aerodromes)
    if not zones.uncharged or len(frame) == 0:
        return ZoneVisitSplit(frame, _empty_zone_visits())
    off = frame["zone_id"].isin(sorted(zones.uncharged)).to_numpy(dtype=bool)
    return ZoneVisitSplit(_renumber(frame[~off]), _renumber(frame[off]))


def _renumber(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.reset_index(drop=True)
    out["visit_index"] = out.groupby("flight_id", sort=False).cumcount().astype(np.int64)
    return out


def _zone_visits(
    crossings: pd.DataFrame, zones: ChargingZones, aerodromes: pd.DataFrame | None
) -> pd.DataFrame:
    missing = set(_CROSSING_REQUIRED) - set(crossings.columns)
    if missing:
        raise ValueError(f"crossings frame is missing column(s): {', '.join(sorted(missing))}")
    if len(crossings) == 0:
        return _empty_zone_visits()
    cr = crossings.sort_values(["flight_id", "visit_index"], kind="stable").reset_index(drop=True)
    entry = pd.to_datetime(cr["entry_time"], utc=True)
    exit_ = pd.to_datetime(cr["exit_time"], utc=True)
    entry_ns = _ns(entry)
    zone, aclass = zones.lookup(cr["fir_id"].to_numpy(dtype=object), entry_ns)
    no_zone = pd.isna(zone)
    if no_zone.any():
        firs = sorted(set(cr.loc[no_zone, "fir_id"].astype(str)))
        warnings.warn(
            f"{int(no_zone.sum())} crossing(s) in FIR(s) without charging zone at their date "
            f"left out: {', '.join(firs)}",
            ZoneDataWarning,
            stacklevel=4,
        )

    fid = cr["flight_id"].to_numpy(dtype=np.int64)
    vidx = cr["visit_index"].to_numpy(dtype=np.int64)
    exit_ns = _ns(exit_)
    zone_s = np.where(no_zone, "", zone).astype(str)
    class_s = np.where(no_zone, "", aclass).astype(str)
    same = np.zeros(len(cr), dtype=bool)
    same[1:] = (
        (fid[1:] == fid[:-1])
        & (zone_s[1:] == zone_s[:-1])
        & (class_s[1:] == class_s[:-1])
        & (vidx[1:] == vidx[:-1] + 1)
        & (entry_ns[1:] - exit_ns[:-1] <= CONTIGUITY_TOLERANCE.value)
    )
    keep = ~no_zone
    new = ~same & keep
    # groups: runs of kept rows; a dropped (zone-less) row never joins a group and breaks runs
    grp = np.cumsum(new) - 1
    rows = np.flatnonzero(keep)
    g = grp[rows]
    first = rows[np.r_[True, g[1:] != g[:-1]]]
    last = rows[np.r_[g[1:] != g[:-1], True]]

    flown = np.bincount(g, weights=cr["flown_km"].to_numpy(dtype=float)[rows])
    interp = np.bincount(g, weights=cr["interpolated"].to_numpy(dtype=bool)[rows]) > 0
    elat = cr["entry_lat"].to_numpy(dtype=float)[first]
    elon = cr["entry_lon"].to_numpy(dtype=float)[first]
    xlat = cr["exit_lat"].to_numpy(dtype=float)[last]
    xlon = cr["exit_lon"].to_numpy(dtype=float)[last]
    _, _, dist = _GEOD.inv(elon, elat, xlon, xlat)

    fir_ids = cr["fir_id"].astype(str).to_numpy(dtype=object)[first].copy()
    multi = np.flatnonzero(last != first)
    if multi.size:  # join FIR ids of multi-FIR visits (few)
        sub = pd.DataFrame({"g": g, "fir": cr["fir_id"].astype(str).to_numpy()[rows]})
        sub = sub[np.isin(sub["g"].to_numpy(), multi)]
        joined = sub.groupby("g", sort=True)["fir"].agg(",".join)
        fir_ids[joined.index.to_numpy()] = joined.to_numpy()

    out_fid = fid[first]
    fl_first = np.r_[True, out_fid[1:] != out_fid[:-1]]
    fl_last = np.r_[out_fid[1:] != out_fid[:-1], True]
    starts = np.flatnonzero(fl_first)
    visit_index = np.arange(len(first)) - np.repeat(starts, np.diff(np.r_[starts, len(first)]))

    starts_inside = _bool_col(cr, "starts_inside")[first]
    ends_inside = _bool_col(cr, "ends_inside")[last]
    dep = fl_first & starts_inside
    arr = fl_last & ends_inside
    if aerodromes is not None and len(aerodromes):
        zone_out = zone[first].astype(str)
        dep = _aerodrome_flags(
            dep, fl_first, out_fid, zone_out, entry_ns[first], aerodromes, "origin", zones
        )
        arr = _aerodrome_flags(
            arr, fl_last, out_fid, zone_out, entry_ns[first], aerodromes, "destination", zones
        )

    frame = pd.DataFrame(
        {
            "flight_id": out_fid,
            "visit_index": visit_index.astype(np.int64),
            "zone_id": pd.array(zone[first].astype(str), dtype="str"),
            "fir_ids": pd.array(fir_ids.astype(str), dtype="str"),
            "entry_time": entry.iloc[first].reset_index(drop=True),
            "exit_time": exit_.iloc[last].reset_index(drop=True),
            "entry_lat": elat,
            "entry_lon": elon,
            "exit_lat": xlat,
            "exit_lon": xlon,
            "distance_km": np.asarray(dist, dtype=float) / 1000.0,
            "flown_km": flown,
            "interpolated": interp,
            "departure_in_zone": dep,
            "arrival_in_zone": arr,
            "airspace_class": pd.array(class_s[first], dtype="str"),
        }
    )
    return frame[list(ZONE_VISIT_COLUMNS)]


# --------------------------------------------------------------------------------------------
# helpers


def _airspace_class(value: Any, src: Path, zone: str, default: str) -> str:
    if value is None:
        return default
    cls = str(value).strip().lower()
    if cls not in AIRSPACE_CLASSES:
        raise ZoneDataError(
            f"{src}: zone {zone}: unknown airspace class {value!r} "
            f"(expected {', '.join(AIRSPACE_CLASSES)})"
        )
    return cls


def _parse_date(value: Any, src: Path, zone: str, what: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        return _to_utc_day(value)
    except (ValueError, TypeError) as exc:
        raise ZoneDataError(f"{src}: zone {zone}: bad {what} {value!r}") from exc


def _to_utc_day(value: date | datetime | str | pd.Timestamp) -> pd.Timestamp:
    """Midnight UTC of a date, of the UTC date of a datetime (naive = UTC), or of an ISO
    string."""
    ts = as_utc_timestamp(value)
    if pd.isna(ts):
        raise ValueError(f"not a date: {value!r}")
    return ts.normalize()


def _ns(col: pd.Series, fill: int | None = None) -> np.ndarray:
    """Epoch ns (int64) of a datetime column; NaT -> ``fill`` (default: int64 min)."""
    values = pd.to_datetime(col, utc=True).dt.as_unit("ns")
    out = values.to_numpy(dtype="datetime64[ns]").view(np.int64).copy()
    if fill is not None:
        out[values.isna().to_numpy()] = fill
    return out


def _bool_col(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame[name].fillna(False).to_numpy(dtype=bool)


def _check_no_overlap(m: pd.DataFrame, src: Path) -> None:
    """A FIR must not be in two memberships (zones) at the same date."""
    big = np.iinfo(np.int64).max
    s = m.assign(_from=_ns(m["valid_from"]), _to=_ns(m["valid_to"], fill=big))
    s = s.sort_values(["fir_id", "_from"], kind="stable").reset_index(drop=True)
    fir = s["fir_id"].to_numpy(dtype=object)
    clash = np.flatnonzero(
        (fir[1:] == fir[:-1]) & (s["_from"].to_numpy()[1:] < s["_to"].to_numpy()[:-1])
    )
    if clash.size:
        k = int(clash[0])
        a, b = s.iloc[k], s.iloc[k + 1]
        where = (
            "twice in zone " + a["zone_id"]
            if a["zone_id"] == b["zone_id"]
            else (f"in zones {a['zone_id']} and {b['zone_id']}")
        )
        raise ZoneDataError(
            f"{src}: FIR {a['fir_id']} is {where} at the same date "
            f"({b['valid_from'].date()}); membership periods must not overlap"
        )


def _aerodrome_flags(
    fallback: np.ndarray,
    candidate: np.ndarray,
    fid: np.ndarray,
    zone: np.ndarray,
    day_ns: np.ndarray,
    aerodromes: pd.DataFrame,
    which: str,
    zones: ChargingZones,
) -> np.ndarray:
    """Departure / arrival flags where the aerodrome is known: point in the zone's FIRs."""
    cols = ["flight_id", f"{which}_lat", f"{which}_lon"]
    missing = set(cols) - set(aerodromes.columns)
    if missing:
        raise ValueError(f"aerodromes frame is missing column(s): {', '.join(sorted(missing))}")
    ad = aerodromes[cols].drop_duplicates("flight_id", keep="last").set_index("flight_id")
    idx = np.flatnonzero(candidate)
    lat = ad[f"{which}_lat"].reindex(fid[idx]).to_numpy(dtype=float, na_value=np.nan)
    lon = ad[f"{which}_lon"].reindex(fid[idx]).to_numpy(dtype=float, na_value=np.nan)
    known = np.isfinite(lat) & np.isfinite(lon)
    out = fallback.copy()
    if not known.any():
        return out
    idx, lat, lon = idx[known], lat[known], lon[known]
    inside = np.zeros(idx.size, dtype=bool)
    m = zones.memberships
    # normalised FIR polygons (antimeridian-safe, lon within [-180, 180])
    from flight_fees.lib.airspace.crossings import build_fir_index

    index = build_fir_index(zones.firs)
    geoms = dict(zip(index.fir_ids, index.geoms, strict=True))
    big = np.iinfo(np.int64).max
    m_from, m_to = _ns(m["valid_from"]), _ns(m["valid_to"], fill=big)
    vzone, vday = zone[idx], day_ns[idx] - np.mod(day_ns[idx], 86_400 * 10**9)
    for k in range(len(m)):  # per membership (tens), vectorised over the visits
        sel = (vzone == m["zone_id"].iat[k]) & (vday >= m_from[k]) & (vday < m_to[k]) & ~inside
        if sel.any():
            geom = geoms[m["fir_id"].iat[k]]
            inside[sel] = shapely.intersects_xy(geom, _wrap(lon[sel]), lat[sel])
    out[idx] = inside
    return out


def _wrap(lon: np.ndarray) -> np.ndarray:
    return np.mod(lon + 180.0, 360.0) - 180.0


def _empty_zone_visits() -> pd.DataFrame:
    frame = pd.DataFrame({c: [] for c in ZONE_VISIT_COLUMNS})
    return frame.astype(
        {
            "flight_id": "int64",
            "visit_index": "int64",
            "zone_id": "str",
            "fir_ids": "str",
            "entry_time": "datetime64[ns, UTC]",
            "exit_time": "datetime64[ns, UTC]",
            **{c: "float64" for c in VISIT_FLOAT_COLUMNS},
            "interpolated": "bool",
            "departure_in_zone": "bool",
            "arrival_in_zone": "bool",
            "airspace_class": "str",
        }
    )
