"""Metadata helpers for the Dagster UI (markdown tables, escaped)."""

from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg
import pandas as pd


def _cell(value: Any) -> str:
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def md_rows(header: Sequence[str], rows: Iterable[Sequence[Any]], *, limit: int = 50) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    total = 0
    for row in rows:
        total += 1
        if total <= limit:
            lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    if total > limit:
        lines.append(f"\n… {total - limit} more row(s)")
    if total == 0:
        lines.append("| " + " | ".join("" for _ in header) + " |")
    return "\n".join(lines)


def md_table(frame: pd.DataFrame, *, limit: int = 50) -> dg.MetadataValue:
    return dg.MetadataValue.md(
        md_rows(list(frame.columns), frame.itertuples(index=False, name=None), limit=limit)
    )


def failures_table(failures: dict[int, tuple[str, str]], *, limit: int = 100) -> dg.MetadataValue:
    rows = sorted((fid, cat, msg) for fid, (cat, msg) in failures.items())
    return dg.MetadataValue.md(md_rows(["flight_id", "category", "message"], rows, limit=limit))


def merge_metadata(crossings: pd.DataFrame, *, limit: int = 50) -> dict[str, Any]:
    """Asset metadata of the excursions merged as position noise (see lib.crossings)."""
    from flight_fees.lib.crossings import merged_excursions_per_flight

    per_flight = merged_excursions_per_flight(crossings)
    table = per_flight.rename("merged_excursions").reset_index()
    return {
        "merged_excursions": int(per_flight.sum()),
        "flights_with_merged_excursions": len(per_flight),
        "merged_excursions_per_flight": md_table(table.head(limit))
        if len(table)
        else "no excursion merged",
    }


def uncharged_metadata(uncharged: pd.DataFrame | None) -> dict[str, Any]:
    """Asset metadata of the zone visits in zones not charged by this installation."""
    if uncharged is None or len(uncharged) == 0:
        return {"uncharged_zone_visits": 0}
    per_zone = uncharged.groupby("zone_id").size().sort_values(ascending=False)
    return {
        "uncharged_zone_visits": len(uncharged),
        "uncharged_zone_visits_per_zone": dg.MetadataValue.json(
            {str(k): int(v) for k, v in per_zone.items()}
        ),
    }
