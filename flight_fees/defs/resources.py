"""Resources: the billing database, the track source, reference data and output locations.

Everything is configured from the environment by default (see README, "Configuration"), and
every field can be overridden in the launchpad or in tests.
"""

import datetime as dt
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import dagster as dg
from pydantic import PrivateAttr
from sqlalchemy import Engine

from flight_fees.lib.core.settings import (
    Paths,
    database_url,
    home_dir,
    normalise_database_url,
    storage_url,
)
from flight_fees.lib.db import make_engine
from flight_fees.lib.ops.queue import FlightQueue
from flight_fees.lib.ops.workstore import WorkStore

if TYPE_CHECKING:  # the lib modules load when first used (definitions load fast)
    import pandas as pd

    from flight_fees.lib.airspace.crossings import FirIndex
    from flight_fees.lib.airspace.zones import ChargingZones
    from flight_fees.lib.charging.aircraft_types import AircraftTypes
    from flight_fees.lib.charging.fx import FxRates
    from flight_fees.lib.charging.tariffs import Tariffs
    from flight_fees.lib.ops.breaker import CircuitBreaker
    from flight_fees.lib.tracks.base import TrackSource

_T = TypeVar("_T")


class BillingDatabase(dg.ConfigurableResource):
    """The billing database (SQLite file by default, PostgreSQL via FLIGHT_FEES_DATABASE_URL)."""

    url: str | None = None
    lease_s: float = 3600.0
    #: how long (s) a sensor claim waits for its run to start before its flights are
    #: claimable again (no attempt counted); FLIGHT_FEES_CLAIM_LEASE_S
    claim_lease_s: int = 600
    max_attempts: int = 5
    #: back-off (s) before a retryable failure is tried again (doubling per attempt);
    #: FLIGHT_FEES_RETRY_BACKOFF_S
    retry_backoff_s: int = 60

    _engine: Engine | None = PrivateAttr(default=None)

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(
                normalise_database_url(self.url) if self.url else database_url()
            )
        return self._engine

    def not_ready_reason(self) -> str | None:
        """None when the database answers and is migrated, else why not (no exception)."""
        from flight_fees.lib.db.health import check_schema

        state = check_schema(self.engine())
        if state.ok:
            return None
        return state.error or f"{state.detail}; run `flight-fees db upgrade`"

    def queue(self) -> FlightQueue:
        return FlightQueue(
            self.engine(),
            lease_s=self.lease_s,
            claim_lease_s=self.claim_lease_s,
            max_attempts=self.max_attempts,
            retry_backoff_s=self.retry_backoff_s,
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()


class TrackStore(dg.ConfigurableResource):
    """Where tracks come from: ``pinot`` (PINOT_HTTP_BROKER_URL, PINOT_* settings), ``parquet``
    (the embedded store under the home directory) or ``auto`` (Pinot when configured)."""

    kind: str = "auto"
    parquet_root: str | None = None
    breaker_failure_threshold: int = 5
    breaker_cooldown_s: float = 120.0

    def source(self) -> "TrackSource":
        from flight_fees.lib.tracks import make_track_source

        kind = None if self.kind == "auto" else self.kind
        root = Path(self.parquet_root) if self.parquet_root else None
        return make_track_source(kind, store=root)

    def breaker(self, engine: Engine, name: str) -> "CircuitBreaker":
        from flight_fees.lib.ops.breaker import CircuitBreaker

        return CircuitBreaker(
            engine,
            name,
            failure_threshold=self.breaker_failure_threshold,
            cooldown_s=self.breaker_cooldown_s,
        )


class ReferenceData(dg.ConfigurableResource):
    """Reference files; empty fields mean the shipped defaults."""

    firs_path: str | None = None
    fir_id_property: str | None = None
    fir_name_property: str | None = None
    fir_country_property: str | None = None
    charging_zones_path: str | None = None
    tariffs_path: str | None = None
    unit_rates_csv: str | None = None
    fx_rates_path: str | None = None
    """ECB reference-rate CSV (eurofxref-hist.csv) or plain date,currency,rate_per_eur CSV;
    default: the shipped synthetic sample rates."""
    aircraft_types_path: str | None = None
    attributes_csv: str | None = None

    _cache: dict[str, Any] = PrivateAttr(default_factory=dict)

    def _cached(self, key: str, factory: Callable[[], _T]) -> _T:
        if key not in self._cache:
            self._cache[key] = factory()
        return self._cache[key]

    def firs(self) -> "pd.DataFrame":
        """The FIR set. What the loader warns about (overlaps, repaired polygons, dissolved
        ids) is kept in :meth:`fir_warnings` and shown by the ``fir_boundaries`` asset, not
        printed by every run."""
        from flight_fees.lib.airspace.firs import FirDataWarning, load_firs

        def load() -> "pd.DataFrame":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", FirDataWarning)
                firs = load_firs(
                    self.firs_path,
                    id_property=self.fir_id_property,
                    name_property=self.fir_name_property,
                    country_property=self.fir_country_property,
                )
            for w in caught:
                if not issubclass(w.category, FirDataWarning):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            self._cache["fir_warnings"] = [
                str(w.message) for w in caught if issubclass(w.category, FirDataWarning)
            ]
            return firs

        return self._cached("firs", load)

    def fir_index(self) -> "FirIndex":
        """The FIR set prepared for the crossing engine (``lib.crossings.FirIndex``): built
        once per FIR set and then loaded from the on-disk cache (``lib.fir_index_store``),
        kept in memory for the life of this resource."""
        from flight_fees.lib.airspace.index_store import cached_fir_index

        return self._cached("fir_index", lambda: cached_fir_index(self.firs()))

    def fir_warnings(self) -> list[str]:
        """What loading the FIR set warned about (see :meth:`firs`)."""
        self.firs()
        return list(self._cache.get("fir_warnings", []))

    def charging_zones(self) -> "ChargingZones":
        from flight_fees.lib.airspace.zones import load_charging_zones

        return self._cached(
            "zones", lambda: load_charging_zones(self.charging_zones_path, firs=self.firs())
        )

    def tariffs(self) -> "Tariffs":
        from flight_fees.lib.charging.reference import tariffs_in_force

        return self._cached(
            "tariffs", lambda: tariffs_in_force(self.tariffs_path, self.unit_rates_csv)
        )

    def fx_rates(self) -> "FxRates":
        from flight_fees.lib.charging.reference import fx_rates_in_force

        return self._cached("fx", lambda: fx_rates_in_force(self.fx_rates_path))

    def aircraft_types(self) -> "AircraftTypes":
        from flight_fees.lib.charging.aircraft_types import load_aircraft_types

        return self._cached("types", lambda: load_aircraft_types(self.aircraft_types_path))

    def airports(self) -> "pd.DataFrame":
        from flight_fees.lib.ops.demo import read_airports

        return self._cached("airports", read_airports)


class Workspace(dg.ConfigurableResource):
    """Output locations: the flight_fees home, and the shared storage of maps, invoices, logs
    and intermediates (``storage_url``, default ``FLIGHT_FEES_STORAGE_URL``, else the home)."""

    home: str | None = None
    storage_url: str | None = None
    keep_logs: int = 100

    def paths(self) -> Paths:
        return Paths(
            Path(self.home).resolve() if self.home else home_dir(),
            self.storage_url or storage_url(),
        )

    def work_store(self) -> WorkStore:
        return WorkStore(self.paths().work)


class PipelineSettings(dg.ConfigurableResource):
    """Tunables of the processing stages."""

    gap_threshold_s: float = 600.0
    #: excursions whose positions stay this close (m) to the FIR around them are merged as
    #: position noise (lib.crossings.NOISE_TOLERANCE_M: 92.6 m, ADS-B NACp 8); 0 disables
    noise_tolerance_m: float = 92.6
    #: explicit time-based merge of short visits between two visits of one FIR; 0 = off
    jitter_s: float = 0.0
    max_speed_kt: float = 1200.0
    min_points: int = 10
    render_maps: bool = True
    #: flights fetched, crossed and billed at once within a run (peak memory follows this)
    chunk_flights: int = 1_000
    #: how long run-scoped intermediate frames are kept
    keep_intermediates_days: int = 14

    def keep_intermediates(self) -> dt.timedelta:
        return dt.timedelta(days=self.keep_intermediates_days)


def _from_env(**fields: str) -> dict[str, Any]:
    """Bind resource fields to the environment variables that are set, as ``dg.EnvVar``: the
    run reads them when it starts and the UI shows each field's variable. A field whose
    variable is unset keeps its default. ``int:`` before a name: an integer variable."""
    bound: dict[str, Any] = {}
    for field, spec in fields.items():
        name = spec.removeprefix("int:")
        if os.environ.get(name, "").strip():
            bound[field] = dg.EnvVar.int(name) if spec.startswith("int:") else dg.EnvVar(name)
    return bound


def default_resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "billing": BillingDatabase(
            **_from_env(
                url="FLIGHT_FEES_DATABASE_URL",
                claim_lease_s="int:FLIGHT_FEES_CLAIM_LEASE_S",
                retry_backoff_s="int:FLIGHT_FEES_RETRY_BACKOFF_S",
            )
        ),
        "track_store": TrackStore(),
        "reference": ReferenceData(),
        "workspace": Workspace(
            **_from_env(home="FLIGHT_FEES_HOME", storage_url="FLIGHT_FEES_STORAGE_URL")
        ),
        "settings": PipelineSettings(),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=default_resources())
