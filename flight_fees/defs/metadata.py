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
