"""Reference data assets: FIR boundaries, charging zones, tariffs, FX rates, aircraft registry.

Materializing them validates the files (a bad tariff file fails here, loudly, before any
flight is billed) and records what the pipeline bills with.
"""

from collections import Counter

import dagster as dg
import pandas as pd

from flight_fees.defs.metadata import md_table
from flight_fees.defs.resources import BillingDatabase, ReferenceData

GROUP = "reference"


@dg.asset(
    name="fir_boundaries",
    group_name=GROUP,
    kinds={"geojson", "shapely"},
    description="Lateral boundaries of the flight information regions (FIRs).",
)
def fir_boundaries(reference: ReferenceData) -> dg.MaterializeResult:
    from flight_fees.lib.airspace.firs import find_fir_overlaps

    firs = reference.firs()
    minx, miny, maxx, maxy = _bounds(firs)
    overlaps = find_fir_overlaps(firs, min_area_km2=1.0)
    return dg.MaterializeResult(
        metadata={
            "firs": len(firs),
            "countries": int(firs["country"].nunique()),
            "bounds": f"lon {minx:.1f}..{maxx:.1f}, lat {miny:.1f}..{maxy:.1f}",
            "source": reference.firs_path or _shipped("firs"),
            "overlapping_fir_pairs": len(overlaps),
            "load_warnings": md_table(
                pd.DataFrame({"warning": reference.fir_warnings()}), limit=100
            )
            if reference.fir_warnings()
            else "none",
            "overlaps": md_table(overlaps) if len(overlaps) else "none",
            "preview": md_table(firs[["fir_id", "name", "country"]], limit=60),
        }
    )


def _shipped(what: str) -> str:
    """Label of the shipped file used when no path is configured (``FLIGHT_FEES_FIR_SET``)."""
    from flight_fees.lib.airspace.firs import default_fir_set

    fir_set = default_fir_set()
    path = fir_set.firs_path if what == "firs" else fir_set.zones_path
    return f"shipped {fir_set.name} set (FLIGHT_FEES_FIR_SET): {path.name}"


def _bounds(firs) -> tuple[float, float, float, float]:  # type: ignore[no-untyped-def]
    import shapely

    return tuple(float(v) for v in shapely.total_bounds(firs["geometry"].to_numpy()))  # type: ignore[return-value]


@dg.asset(
    name="charging_zones",
    group_name=GROUP,
    deps=[fir_boundaries],
    kinds={"yaml"},
    description="Charging zones: each zone covers one or more FIRs, effective-dated.",
)
def charging_zones(reference: ReferenceData) -> dg.MaterializeResult:
    zones = reference.charging_zones()
    members = zones.memberships
    per_zone = (
        members.groupby("zone_id")["fir_id"]
        .agg(lambda firs: ",".join(sorted(set(firs))))
        .reset_index(name="firs")
    )
    per_zone["name"] = per_zone["zone_id"].map(zones.names)
    per_zone["charged"] = ~per_zone["zone_id"].isin(sorted(zones.uncharged))
    return dg.MaterializeResult(
        metadata={
            "zones": int(per_zone.shape[0]),
            "uncharged_zones": len(zones.uncharged),
            "firs_covered": int(members["fir_id"].nunique()),
            "source": reference.charging_zones_path or _shipped("zones"),
            "preview": md_table(per_zone[["zone_id", "name", "charged", "firs"]], limit=200),
        }
    )


@dg.asset(
    name="tariffs",
    group_name=GROUP,
    deps=[charging_zones],
    kinds={"yaml"},
    description="Effective-dated tariffs per charging zone (formula, rates, rounding).",
)
def tariffs(reference: ReferenceData) -> dg.MaterializeResult:
    loaded = reference.tariffs()
    versions = [v for zone in loaded.zones.values() for v in zone.versions]
    formulas = Counter(type(v.formula).__name__ for v in versions)
    samples = sorted({z.zone_id for z in loaded.zones.values() for v in z.versions if v.sample})
    return dg.MaterializeResult(
        metadata={
            "zones": len(loaded.zone_ids),
            "versions": len(versions),
            "formulas": dg.MetadataValue.json(dict(formulas)),
            "zones_with_sample_rates": dg.MetadataValue.json(samples),
            "source": reference.tariffs_path or "shipped tariffs.yaml",
            "unit_rates_csv": reference.unit_rates_csv or "none",
        }
    )


@dg.asset(
    name="fx_rates",
    group_name=GROUP,
    kinds={"csv"},
    description="Exchange rates per EUR (ECB reference-rate format or plain CSV).",
)
def fx_rates(reference: ReferenceData) -> dg.MaterializeResult:
    rates = reference.fx_rates()
    frame = rates.to_frame()
    return dg.MaterializeResult(
        metadata={
            "currencies": dg.MetadataValue.json(list(rates.currencies)),
            "rates": len(rates),
            "first_date": str(frame["date"].min()) if len(frame) else "none",
            "last_date": str(frame["date"].max()) if len(frame) else "none",
            "source": reference.fx_rates_path or "shipped sample rates (synthetic)",
        }
    )


@dg.asset(
    name="aircraft_registry",
    group_name=GROUP,
    kinds={"sqlalchemy"},
    description="Aircraft known to billing (registration, type, declared MTOW, operator) "
    "and the ICAO type table used when no MTOW is declared.",
)
def aircraft_registry(billing: BillingDatabase, reference: ReferenceData) -> dg.MaterializeResult:
    from flight_fees.lib.ops.registry_queries import registry_counts

    types = reference.aircraft_types()
    counts = registry_counts(billing.engine())
    return dg.MaterializeResult(
        metadata={
            "aircraft": counts.aircraft,
            "aircraft_without_declared_mtow": counts.aircraft_without_declared_mtow,
            "aircraft_without_customer": counts.aircraft_without_customer,
            "customers": counts.customers,
            "icao_types_in_type_table": len(types),
        }
    )
