"""Deterministic synthetic demo data: customers, aircraft, flights and their tracks.

The generated tracks follow the Tracks frame contract of ``docs/ARCHITECTURE.md`` and mimic
ADS-B observations of real European airport pairs:

- lateral path: the WGS84 geodesic (great circle) origin -> destination, positions computed
  with one vectorised :meth:`pyproj.Geod.fwd` call for all points of all flights;
- vertical profile: climb at a type-specific, altitude-tapered rate (~2,500 ft/min at the
  bottom, ~1,700 ft/min around FL400 for jets) to a type-specific cruise flight level
  (lowered on short legs so that climb and descent fit), cruise, then a 3 degree descent path;
- speed: a type-specific ground-speed profile over altitude (~150 kt at the runway, 250 kt below
  FL100, ~450 kt in cruise for jets) plus a per-flight along-track wind varying with distance;
- sampling every ``sample_s`` seconds, gaussian horizontal position noise (sigma 30-50 m per
  flight), altitudes quantised to 25 ft like Mode-S, and ~10 % of the flights with one
  8-15 minute coverage gap (no positions) somewhere in the en-route phase.

Aircraft fly their itineraries continuously (each leg departs from where the previous one
arrived, after a 40-100 minute turnaround), so an aircraft is never in two places at once.
One flight (the first leg of the PC-12 ``G-TXJC``) carries the hostile callsign
``TST<b>&1`` so that every renderer has to escape data-derived text.

Everything is drawn from one ``numpy.random.Generator`` seeded with ``seed``: the same
arguments always produce identical frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyproj import Geod

from flight_fees.lib.airspace.airports import AIRPORTS_CSV, read_airports
from flight_fees.lib.tracks.store import write_track_store

__all__ = [
    "HOSTILE_CALLSIGN",
    "DemoData",
    "default_start_day",
    "generate_demo",
    # moved to flight_fees.lib.airspace.airports / flight_fees.lib.tracks.store, re-exported
    # for the callers not yet updated
    "read_airports",
    "write_track_store",
]

_GEOD = Geod(ellps="WGS84")
_KT_TO_KM_PER_S = 1.852 / 3600.0
#: altitude lost per km on a 3 degree descent path
_FT_PER_KM_3DEG = math.tan(math.radians(3.0)) * 1000.0 / 0.3048
_M_PER_DEG_LAT = 111_132.0
_US_PER_S = 1_000_000
#: altitude knots (ft) of the speed profiles of :class:`_TypePerf`
_SPEED_ALT_KNOTS_FT = np.array([0.0, 3_000.0, 10_000.0, 26_000.0])
#: spatial resolution of the per-flight distance grid the time profile is integrated on
_GRID_KM = 0.25


@dataclass(frozen=True, slots=True)
class _TypePerf:
    """Simplified performance of an aircraft type."""

    mtow_kg: float
    #: inclusive range of cruise flight levels (hundreds of feet), drawn in steps of 10
    cruise_fl: tuple[int, int]
    #: initial climb rate, tapering linearly to 65 % of it at FL450
    climb_fpm: float
    #: still-air ground speed (kt) at ``_SPEED_ALT_KNOTS_FT`` (0 / 3,000 / 10,000 / 26,000 ft)
    speeds_kt: tuple[float, float, float, float]


_TYPES: dict[str, _TypePerf] = {
    "A320": _TypePerf(78_000, (340, 380), 2_500, (150, 250, 290, 450)),
    "A321": _TypePerf(93_500, (330, 370), 2_300, (155, 250, 290, 450)),
    "B738": _TypePerf(79_016, (340, 380), 2_400, (150, 250, 290, 450)),
    "A359": _TypePerf(280_000, (350, 390), 2_200, (160, 250, 300, 485)),
    "B77L": _TypePerf(347_815, (330, 370), 2_000, (165, 250, 300, 480)),
    "E190": _TypePerf(51_800, (330, 360), 2_500, (140, 250, 280, 440)),
    "C56X": _TypePerf(9_163, (390, 430), 3_500, (125, 230, 280, 430)),
    "GLF6": _TypePerf(45_178, (410, 450), 3_500, (140, 250, 300, 490)),
    "PC12": _TypePerf(4_740, (240, 280), 1_500, (95, 170, 220, 270)),
}

#: code, name, billing_frequency, week_end_weekday, billing_currency, payment_terms_days,
#: email, address (fictional; .example domains, RFC 2606)
_CUSTOMERS: tuple[tuple[str, str, str, int, str, int, str, str], ...] = (
    ("ARW", "Aurora Regional Airways", "weekly", 6, "EUR", 30,
     "billing@aurora-regional.example", "1 Airside Park, Dublin, IE"),
    ("LHV", "Lufthaven Airlines", "monthly", 6, "EUR", 30,
     "accounts.payable@lufthaven.example", "Lufthavenring 7, Frankfurt, DE"),
    ("NSC", "Northstar Cargo Inc.", "monthly", 6, "USD", 45,
     "ap@northstar-cargo.example", "400 Freight Way, Wilmington DE, US"),
    ("TXJ", "Thames Executive Jets & Charter Ltd", "weekly", 4, "GBP", 14,
     "finance@thames-exec.example", "Hangar 3, Luton Airport, GB"),
    ("SMA", "Solmar Atlantic", "weekly", 0, "EUR", 21,
     "faturacao@solmar-atlantic.example", "Rua do Aeroporto 12, Lisboa, PT"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _BaseAircraft:
    registration: str
    icao_type: str
    customer_code: str
    #: airports visited cyclically: leg k flies itinerary[k % n] -> itinerary[(k + 1) % n]
    itinerary: tuple[str, ...]
    declares_mtow: bool = True


#: the core fleet; larger demos clone it with new registrations. Order = round-robin order:
#: the first aircraft always flies first, so ``G-TXJC`` (hostile callsign) is always present.
_BASE_FLEET: tuple[_BaseAircraft, ...] = (
    _BaseAircraft("G-TXJC", "PC12", "TXJ", ("EGKK", "EIDW")),
    _BaseAircraft("EI-FXA", "E190", "ARW", ("EIDW", "LFPG", "LFMN", "LFPG")),
    _BaseAircraft("D-AIRX", "A321", "LHV", ("EDDF", "LEMD")),
    _BaseAircraft("CS-TQA", "B738", "SMA", ("LPPT", "LPPD")),
    _BaseAircraft("EI-FXB", "A320", "ARW", ("EGLL", "LGAV"), declares_mtow=False),
    _BaseAircraft("CS-TQB", "A320", "SMA", ("EHAM", "GCLP")),
    _BaseAircraft("D-AIRY", "A320", "LHV", ("EDDM", "EKCH", "LIRF")),
    _BaseAircraft("N123AB", "B738", "NSC", ("EBLG", "LTFM")),
    _BaseAircraft("G-ABCD", "C56X", "TXJ", ("EGGW", "LFMN", "LSGG")),
    _BaseAircraft("D-AXLA", "A359", "LHV", ("EDDF", "LCLK")),
    _BaseAircraft("G-TXJB", "GLF6", "TXJ", ("EGGW", "LMML", "LCLK")),
    _BaseAircraft("N456CD", "B77L", "NSC", ("EBLG", "BIKF")),
    _BaseAircraft("EI-FXC", "E190", "ARW", ("EIDW", "EGPH", "EHAM")),
    _BaseAircraft("CS-TQC", "A320", "SMA", ("LPPT", "GCTS", "LPPR")),
    _BaseAircraft("D-AIRZ", "A320", "LHV", ("EDDM", "EPWA", "LHBP", "LOWW")),
    _BaseAircraft("EI-FXD", "A320", "ARW", ("EIDW", "LEBL", "LSZH")),
    # long haul beyond Europe, billed from the tracks: Liege -> Mexico City overflies the
    # United States (FAA en-route and New York oceanic), Frankfurt -> Bangkok lands in the
    # Bangkok FIR (VTBB), Dubai -> Johannesburg crosses the Mogadishu FIR (HCSM) twice
    _BaseAircraft("N789EF", "B77L", "NSC", ("EBLG", "MMMX")),
    _BaseAircraft("D-AXLB", "A359", "LHV", ("EDDF", "VTBS")),
    _BaseAircraft("N246GH", "B77L", "NSC", ("EBLG", "OMDB", "FAOR")),
)

#: ICAO 24-bit address blocks (inclusive) per registration prefix
_ICAO24_BLOCKS: dict[str, tuple[int, int]] = {
    "D": (0x3C0000, 0x3FFFFF),
    "G": (0x400000, 0x43FFFF),
    "EI": (0x4CA000, 0x4CAFFF),
    "CS": (0x490000, 0x497FFF),
    "N": (0xA00001, 0xADF7C7),
}
_LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))

#: the deliberately hostile callsign of one flight (HTML special characters)
HOSTILE_CALLSIGN = "TST<b>&1"


def _new_registration(nationality: str, rng: np.random.Generator, taken: set[str]) -> str:
    """A fresh, syntactically valid registration of ``nationality`` not in ``taken``."""
    for _ in range(10_000):
        if nationality == "N":
            digits = "".join(map(str, rng.integers(0, 10, size=3)))
            reg = f"N{int(digits[0]) % 9 + 1}{digits[1:]}{''.join(rng.choice(_LETTERS, 2))}"
        elif nationality == "G":
            reg = "G-" + "".join(rng.choice(_LETTERS, 4))
        elif nationality == "D":
            reg = "D-A" + "".join(rng.choice(_LETTERS, 3))
        elif nationality == "EI":
            reg = "EI-" + "".join(rng.choice(_LETTERS, 3))
        elif nationality == "CS":
            reg = "CS-T" + "".join(rng.choice(_LETTERS, 2))
        else:  # pragma: no cover - guarded by the static customer table
            raise ValueError(f"unknown nationality {nationality!r}")
        if reg not in taken:
            taken.add(reg)
            return reg
    raise RuntimeError(f"registration space of {nationality!r} exhausted")  # pragma: no cover


def _nationality(registration: str) -> str:
    if registration.startswith("N"):
        return "N"
    return registration.split("-", 1)[0]


@dataclass(frozen=True, slots=True)
class _Aircraft:
    registration: str
    icao24: str
    icao_type: str
    mtow_kg: float
    customer_code: str
    itinerary: tuple[str, ...]
    #: first flight number of the aircraft (its legs of a day are base+1, base+2, ...)
    flight_number_base: int


def _build_fleet(n_aircraft: int, rng: np.random.Generator) -> list[_Aircraft]:
    """The base fleet, cloned (new registrations, reversed itineraries) up to ``n_aircraft``."""
    taken = {b.registration for b in _BASE_FLEET}
    used_icao24: set[int] = set()
    per_customer: dict[str, int] = {}
    fleet: list[_Aircraft] = []
    for i in range(n_aircraft):
        base = _BASE_FLEET[i % len(_BASE_FLEET)]
        clone = i >= len(_BASE_FLEET)
        nationality = _nationality(base.registration)
        registration = _new_registration(nationality, rng, taken) if clone else base.registration
        lo, hi = _ICAO24_BLOCKS[nationality]
        while True:
            address = int(rng.integers(lo, hi + 1))
            if address not in used_icao24:
                used_icao24.add(address)
                break
        itinerary = (
            base.itinerary[::-1] if clone and (i // len(_BASE_FLEET)) % 2 else base.itinerary
        )
        k = per_customer.get(base.customer_code, 0)
        per_customer[base.customer_code] = k + 1
        fleet.append(
            _Aircraft(
                registration=registration,
                icao24=f"{address:06x}",
                icao_type=base.icao_type,
                mtow_kg=_TYPES[base.icao_type].mtow_kg if base.declares_mtow else math.nan,
                customer_code=base.customer_code,
                itinerary=itinerary,
                flight_number_base=100 + 20 * k,
            )
        )
    return fleet


# --------------------------------------------------------------------------------------------
# flight profiles
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Profile:
    """Along-track distance and altitude as functions of time since take-off."""

    t_s: np.ndarray
    s_km: np.ndarray
    alt_ft: np.ndarray

    @property
    def duration_s(self) -> float:
        return float(self.t_s[-1])


def _still_air_speed_kt(alt_ft: np.ndarray, perf: _TypePerf) -> np.ndarray:
    return np.interp(alt_ft, _SPEED_ALT_KNOTS_FT, np.asarray(perf.speeds_kt, dtype=float))


def _leg_profile(
    distance_km: float,
    elev_origin_ft: float,
    elev_dest_ft: float,
    perf: _TypePerf,
    rng: np.random.Generator,
) -> _Profile:
    """Climb / cruise / 3-degree descent over ``distance_km`` with a random wind.

    The climb is integrated in the altitude domain (constant-rate segments at the local
    speed), the whole profile then in the distance domain (``dt = ds / ground speed``) on a
    grid of ``_GRID_KM``; callers resample it at fixed time steps.
    """
    lo, hi = perf.cruise_fl
    target_ft = 100.0 * float(rng.choice(np.arange(lo, hi + 1, 10)))
    # climb: distance flown to reach each altitude of a fine altitude grid
    h = np.linspace(elev_origin_ft, max(target_ft, elev_origin_ft + 1_000.0), 400)
    rate_fpm = perf.climb_fpm * (1.0 - 0.35 * np.clip(h / 45_000.0, 0.0, 1.0))
    v_km_per_min = _still_air_speed_kt(h, perf) * _KT_TO_KM_PER_S * 60.0
    dh = np.diff(h)
    minutes = dh / (0.5 * (rate_fpm[1:] + rate_fpm[:-1]))
    s_climb = np.concatenate(
        ([0.0], np.cumsum(minutes * 0.5 * (v_km_per_min[1:] + v_km_per_min[:-1])))
    )
    # highest level from which the 3 degree descent still fits, keeping >= 10 % cruise
    s_descent = np.maximum(h - elev_dest_ft, 0.0) / _FT_PER_KM_3DEG
    feasible = s_climb + s_descent <= 0.9 * distance_km
    top_ft = float(h[feasible][-1]) if feasible.any() else float(h[0]) + 1_000.0
    cruise_ft = min(target_ft, max(math.floor(top_ft / 1_000.0) * 1_000.0, h[0] + 1_000.0))

    n = max(200, math.ceil(distance_km / _GRID_KM)) + 1
    s = np.linspace(0.0, distance_km, n)
    alt = np.minimum(
        np.minimum(cruise_ft, np.interp(s, s_climb, h)),
        elev_dest_ft + _FT_PER_KM_3DEG * (distance_km - s),
    )
    # along-track wind: per-flight mean + two long-wave components, weaker near the ground
    mean_kt = rng.normal(0.0, 25.0)
    amp = rng.uniform(0.0, 12.0, size=2)
    wavelength_km = rng.uniform(300.0, 1_500.0, size=2)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=2)
    wind_kt = mean_kt + (
        amp[:, None] * np.sin(2.0 * np.pi * s[None, :] / wavelength_km[:, None] + phase[:, None])
    ).sum(axis=0)
    airspeed = _still_air_speed_kt(alt, perf)
    ground_kt = np.maximum(airspeed + wind_kt * np.clip(alt / 25_000.0, 0.2, 1.0), 0.6 * airspeed)
    ground_km_s = ground_kt * _KT_TO_KM_PER_S
    dt = np.diff(s) / (0.5 * (ground_km_s[1:] + ground_km_s[:-1]))
    t = np.concatenate(([0.0], np.cumsum(dt)))
    return _Profile(t_s=t, s_km=s, alt_ft=alt)


# --------------------------------------------------------------------------------------------
# schedule
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Leg:
    aircraft: int
    origin: str
    destination: str
    callsign: str
    departure_s: int  # UTC epoch seconds
    profile: _Profile
    distance_km: float
    azimuth_deg: float


def default_start_day(today: date | None = None) -> date:
    """Monday of the most recent *completed* ISO week (UTC), so weekly invoices can be issued."""
    today = today or datetime.now(UTC).date()
    return today - timedelta(days=today.weekday() + 7)


def _epoch_s(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _schedule(
    fleet: Sequence[_Aircraft],
    airports: pd.DataFrame,
    n_flights: int,
    start_day: date,
    n_days: int,
    rng: np.random.Generator,
) -> list[_Leg]:
    """Distribute ``n_flights`` legs evenly over the days, round-robin over the fleet."""
    ap = airports.set_index("icao")
    elevation_ft = dict(zip(ap.index, ap["elevation_ft"].to_numpy(dtype="float64"), strict=True))
    pair_cache: dict[tuple[str, str], tuple[float, float]] = {}

    def geodesic(o: str, d: str) -> tuple[float, float]:
        if (o, d) not in pair_cache:
            az, _, dist_m = _GEOD.inv(
                ap.at[o, "lon"], ap.at[o, "lat"], ap.at[d, "lon"], ap.at[d, "lat"]
            )
            pair_cache[(o, d)] = (float(az), float(dist_m) / 1_000.0)
        return pair_cache[(o, d)]

    n_aircraft = len(fleet)
    position = np.zeros(n_aircraft, dtype=np.int64)
    free_at = np.full(n_aircraft, -np.inf)
    legs: list[_Leg] = []
    next_ac = 0
    hostile_done = False
    per_day = [len(chunk) for chunk in np.array_split(np.arange(n_flights), n_days)]
    for day_index, n_today in enumerate(per_day):
        day0 = _epoch_s(start_day + timedelta(days=day_index))
        quota = np.full(n_aircraft, n_today // n_aircraft)
        extra = n_today % n_aircraft
        quota[(next_ac + np.arange(extra)) % n_aircraft] += 1
        next_ac = (next_ac + extra) % n_aircraft
        for a in np.flatnonzero(quota):
            ac = fleet[int(a)]
            perf = _TYPES[ac.icao_type]
            plan: list[tuple[str, str, _Profile, float, float]] = []
            for _ in range(int(quota[a])):
                k = int(position[a])
                o = ac.itinerary[k % len(ac.itinerary)]
                d = ac.itinerary[(k + 1) % len(ac.itinerary)]
                position[a] += 1
                az, dist_km = geodesic(o, d)
                prof = _leg_profile(
                    dist_km,
                    float(elevation_ft[o]),
                    float(elevation_ft[d]),
                    perf,
                    rng,
                )
                plan.append((o, d, prof, az, dist_km))
            turns = rng.uniform(40 * 60, 100 * 60, size=len(plan))
            busy = sum(p[2].duration_s for p in plan) + float(turns[:-1].sum())
            earliest, latest = day0 + 4.0 * 3600, day0 + max(4.0 * 3600, 22.5 * 3600 - busy)
            wanted = rng.uniform(earliest, latest) if latest > earliest else earliest
            departure = max(wanted, free_at[a] + turns[-1])  # after yesterday's last leg
            for j, (o, d, prof, az, dist_km) in enumerate(plan):
                dep_s = int(round(departure))
                if a == 0 and not hostile_done:
                    callsign, hostile_done = HOSTILE_CALLSIGN, True
                else:
                    callsign = f"{ac.customer_code}{ac.flight_number_base + j % 20 + 1}"
                legs.append(_Leg(int(a), o, d, callsign, dep_s, prof, dist_km, az))
                arrival = dep_s + prof.duration_s
                free_at[a] = arrival
                if j + 1 < len(plan):
                    departure = arrival + turns[j]
    return legs


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoData:
    """Synthetic demo data set (see :func:`generate_demo`).

    - ``tracks``: Tracks frame (``flight_id`` int64, ``ts`` datetime64[us, UTC], ``lat``,
      ``lon``, ``alt_ft`` float64, ``callsign, registration, aircraft_type, icao24, origin,
      destination`` str), ordered by ``flight_id, ts``.
    - ``flights``: one row per flight: ``flight_id`` int64, ``flight_date`` (``datetime.date``,
      UTC day of departure = track store partition), ``callsign, registration, aircraft_type,
      icao24, origin, destination, customer_code`` str, ``departure_time, arrival_time``
      datetime64[us, UTC] (first / last position), ``great_circle_km`` float64.
    - ``aircraft``: ``registration, icao24`` (6 lowercase hex), ``icao_type`` str,
      ``mtow_kg`` float64 (declared; NaN = not declared, use the type table),
      ``customer_code`` str.
    - ``customers``: ``code, name, billing_frequency`` ('weekly' | 'monthly'),
      ``week_end_weekday`` int64 (0 = Monday .. 6 = Sunday), ``billing_currency`` (ISO 4217),
      ``payment_terms_days`` int64, ``email, address`` str.
    """

    tracks: pd.DataFrame
    flights: pd.DataFrame
    aircraft: pd.DataFrame
    customers: pd.DataFrame
    days: tuple[date, ...]


def _str_column(
    values: Sequence[str], take: np.ndarray | None = None
) -> pd.api.extensions.ExtensionArray:
    """A pandas ``str`` (Arrow-backed) column, optionally ``values[take]`` without Python loops."""
    arr = pa.array(list(values), type=pa.string())
    if take is not None:
        arr = pc.take(arr, pa.array(take, type=pa.int64()))
    # pandas-stubs: pd.array's overloads take no pyarrow array (pandas does)
    return pd.array(arr, dtype="str")  # type: ignore[call-overload]


def generate_demo(
    *,
    n_flights: int = 40,
    start_day: date | None = None,
    n_days: int = 7,
    seed: int = 7,
    sample_s: float = 5.0,
    gap_fraction: float = 0.1,
) -> DemoData:
    """Generate a deterministic synthetic data set (see the module docstring).

    Args:
        n_flights: number of flights, spread evenly over the days.
        start_day: first UTC day with departures; default :func:`default_start_day` (Monday of
            the last completed week). Pass it explicitly for reproducible data.
        n_days: number of consecutive departure days.
        seed: seed of the random generator; same arguments -> identical frames.
        sample_s: time between two positions of a track (seconds).
        gap_fraction: fraction of the flights (at least one) that get one 8-15 minute
            coverage gap; 0 disables gaps.

    Flight ids are ``YYYYMMDD * 100_000 + n`` (n = 1.. in departure order within the UTC
    day): unique, deterministic and stable across runs with the same arguments.
    """
    if n_flights < 1:
        raise ValueError("n_flights must be >= 1")
    if n_days < 1:
        raise ValueError("n_days must be >= 1")
    if not sample_s > 0:
        raise ValueError("sample_s must be > 0")
    if not 0.0 <= gap_fraction <= 1.0:
        raise ValueError("gap_fraction must be within [0, 1]")
    start_day = start_day or default_start_day()
    rng = np.random.default_rng(seed)
    airports = read_airports()
    known = set(airports["icao"])
    missing = {icao for b in _BASE_FLEET for icao in b.itinerary} - known
    if missing:  # pragma: no cover - static data consistency
        raise ValueError(f"itinerary airports missing from {AIRPORTS_CSV}: {sorted(missing)}")

    n_aircraft = max(len(_BASE_FLEET), math.ceil(n_flights / (3 * n_days)))
    fleet = _build_fleet(n_aircraft, rng)
    legs = _schedule(fleet, airports, n_flights, start_day, n_days, rng)
    legs.sort(key=lambda leg: (leg.departure_s, leg.aircraft))

    # flight ids: day-coded, sequence by departure within the UTC day
    dep_s = np.array([leg.departure_s for leg in legs], dtype=np.int64)
    dep_day = dep_s.astype("datetime64[s]").astype("datetime64[D]")
    starts = np.flatnonzero(np.r_[True, dep_day[1:] != dep_day[:-1]])
    seq = np.arange(len(legs)) - np.repeat(starts, np.diff(np.r_[starts, len(legs)]))
    month = dep_day.astype("datetime64[M]")
    yyyymmdd = (
        (month.astype("datetime64[Y]").astype(np.int64) + 1970) * 10_000
        + (month.astype(np.int64) % 12 + 1) * 100
        + (dep_day - month.astype("datetime64[D]")).astype(np.int64)
        + 1
    )
    flight_ids = yyyymmdd * 100_000 + seq + 1

    # coverage gaps: exactly max(1, round(fraction * n)) eligible flights (> 40 min)
    durations = np.array([leg.profile.duration_s for leg in legs])
    eligible = np.flatnonzero(durations > 40 * 60)
    n_gaps = min(len(eligible), max(1, round(gap_fraction * len(legs)))) if gap_fraction > 0 else 0
    gap_flights = (
        set(rng.choice(eligible, size=n_gaps, replace=False).tolist()) if n_gaps else set()
    )

    # per-flight sampling (vectorised within a flight)
    counts = np.empty(len(legs), dtype=np.int64)
    s_parts: list[np.ndarray] = []
    alt_parts: list[np.ndarray] = []
    t_parts: list[np.ndarray] = []
    for i, leg in enumerate(legs):
        prof = leg.profile
        t = np.arange(0.0, prof.duration_s, sample_s)
        if i in gap_flights:
            length = rng.uniform(8 * 60, 15 * 60)
            begin = rng.uniform(
                0.2 * prof.duration_s, max(0.2 * prof.duration_s, 0.8 * prof.duration_s - length)
            )
            t = t[(t < begin) | (t >= begin + length)]
        s_parts.append(np.interp(t, prof.t_s, prof.s_km))
        alt_parts.append(np.round(np.interp(t, prof.t_s, prof.alt_ft) / 25.0) * 25.0 + 0.0)
        t_parts.append(t)
        counts[i] = t.size

    ap = airports.set_index("icao")
    origins = [leg.origin for leg in legs]
    lon0 = np.repeat(ap.loc[origins, "lon"].to_numpy(), counts)
    lat0 = np.repeat(ap.loc[origins, "lat"].to_numpy(), counts)
    az = np.repeat(np.array([leg.azimuth_deg for leg in legs]), counts)
    s_km = np.concatenate(s_parts)
    lon, lat, _ = _GEOD.fwd(lon0, lat0, az, s_km * 1_000.0)
    # gaussian horizontal noise (local flat-earth metres -> degrees; fine at sigma ~ 40 m)
    sigma = np.repeat(rng.uniform(30.0, 50.0, size=len(legs)), counts)
    north = rng.standard_normal(s_km.size) * sigma
    east = rng.standard_normal(s_km.size) * sigma
    lat = lat + north / _M_PER_DEG_LAT
    lon = lon + east / (_M_PER_DEG_LAT * np.cos(np.radians(lat)))
    lon = (lon + 180.0) % 360.0 - 180.0

    t_us = np.round(np.concatenate(t_parts) * _US_PER_S).astype(np.int64)
    ts_us = np.repeat(dep_s * _US_PER_S, counts) + t_us
    row_flight = np.repeat(np.arange(len(legs)), counts)

    ac_of_leg = [fleet[leg.aircraft] for leg in legs]
    per_flight_str: dict[str, list[str]] = {
        "callsign": [leg.callsign for leg in legs],
        "registration": [ac.registration for ac in ac_of_leg],
        "aircraft_type": [ac.icao_type for ac in ac_of_leg],
        "icao24": [ac.icao24 for ac in ac_of_leg],
        "origin": origins,
        "destination": [leg.destination for leg in legs],
    }
    tracks = pd.DataFrame(
        {
            "flight_id": np.repeat(flight_ids, counts),
            "ts": pd.DatetimeIndex(ts_us.astype("datetime64[us]")).tz_localize("UTC"),
            "lat": lat,
            "lon": lon,
            "alt_ft": np.concatenate(alt_parts),
            **{name: _str_column(vals, row_flight) for name, vals in per_flight_str.items()},
        }
    )

    last_us = ts_us[np.cumsum(counts) - 1]
    flights = pd.DataFrame(
        {
            "flight_id": flight_ids,
            "flight_date": [d.item() for d in dep_day],
            **{name: _str_column(vals) for name, vals in per_flight_str.items()},
            "customer_code": _str_column([ac.customer_code for ac in ac_of_leg]),
            "departure_time": pd.DatetimeIndex(
                (dep_s * _US_PER_S).astype("datetime64[us]")
            ).tz_localize("UTC"),
            "arrival_time": pd.DatetimeIndex(last_us.astype("datetime64[us]")).tz_localize("UTC"),
            "great_circle_km": np.array([leg.distance_km for leg in legs]),
        }
    )
    aircraft = pd.DataFrame(
        {
            "registration": _str_column([ac.registration for ac in fleet]),
            "icao24": _str_column([ac.icao24 for ac in fleet]),
            "icao_type": _str_column([ac.icao_type for ac in fleet]),
            "mtow_kg": np.array([ac.mtow_kg for ac in fleet], dtype=np.float64),
            "customer_code": _str_column([ac.customer_code for ac in fleet]),
        }
    )
    cols = ("code", "name", "billing_frequency", "week_end_weekday", "billing_currency",
            "payment_terms_days", "email", "address")  # fmt: skip
    customers = pd.DataFrame(list(_CUSTOMERS), columns=list(cols))
    customers = customers.astype({"week_end_weekday": "int64", "payment_terms_days": "int64"})
    days = tuple(start_day + timedelta(days=i) for i in range(n_days))
    return DemoData(
        tracks=tracks, flights=flights, aircraft=aircraft, customers=customers, days=days
    )
