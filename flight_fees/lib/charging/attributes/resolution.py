"""Resolving attributes by source priority, with conflicts where critical fields disagree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from flight_fees.lib.charging.attributes.normalise import (
    DEFAULT_CRITICAL_FIELDS,
    FIELDS,
    MTOW_TOLERANCE_KG,
    AttributeSourceError,
    _compare_key,
    _empty_field_column,
    _none_for_missing,
    _none_series,
    _normalise_series,
    _unique_flight_ids,
)
from flight_fees.lib.charging.attributes.sources import (
    AttributeSource,
    _frame_for,
)
from flight_fees.lib.core.values import is_null

# -- resolution ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Conflict:
    """Sources disagree on a critical field of a flight: ``{source name: value}``."""

    flight_id: int
    field: str
    candidates: dict[str, Any]


@dataclass(frozen=True)
class ResolvedAttributes:
    """The result of :func:`resolve_attributes`.

    ``attributes``: one row per flight (input order): ``flight_id``, each field of
    :data:`FIELDS`, ``<field>_source`` (the winning source's name, ``None`` when unknown),
    ``has_conflict`` (bool) and ``conflict_fields`` (comma-joined, ``None`` when none). A field
    in conflict is left missing, so that nothing can bill it by mistake.
    """

    attributes: pd.DataFrame
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def blocked_flight_ids(self) -> set[int]:
        """Flights with a conflict in this resolution (see also :func:`blocked_flight_ids`)."""
        return {c.flight_id for c in self.conflicts}


def _validated_lookup(source: AttributeSource, frame: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    """The source's answer: indexed by ``ids``, every field present and normalised."""
    name = source.name
    answer = source.lookup(frame.copy())
    if not isinstance(answer, pd.DataFrame) or "flight_id" not in answer.columns:
        raise AttributeSourceError(
            f"attribute source {name!r} must return a DataFrame with a flight_id column"
        )
    answer = answer[answer["flight_id"].notna()]
    flight_ids = pd.to_numeric(answer["flight_id"], errors="coerce")
    if flight_ids.isna().any():
        raise AttributeSourceError(f"attribute source {name!r} returned non-numeric flight ids")
    answer = answer.set_index(pd.Index(flight_ids.astype("int64"), name="flight_id"))
    answer = answer[answer.index.isin(ids)]
    if answer.index.has_duplicates:
        dupes = sorted(set(answer.index[answer.index.duplicated()]))[:5]
        raise AttributeSourceError(
            f"attribute source {name!r} returned several rows for flight(s) {dupes}"
        )
    out = pd.DataFrame(index=ids)
    for field_name in FIELDS:
        if field_name not in answer.columns:
            out[field_name] = _empty_field_column(field_name, ids)
            continue
        try:
            values = _normalise_series(field_name, answer[field_name])
        except ValueError as exc:
            raise AttributeSourceError(
                f"attribute source {name!r}, field {field_name}: {exc}"
            ) from exc
        reindexed = values.reindex(ids)
        out[field_name] = reindexed if field_name == "mtow_kg" else _none_for_missing(reindexed)
    return out


def _pick(
    lookups: Mapping[str, pd.DataFrame], order: Sequence[str], ids: pd.Index
) -> tuple[dict[str, pd.Series], dict[str, pd.Series]]:
    """Per field, the first known value in priority order, and the name of its source."""
    values: dict[str, pd.Series] = {}
    sources: dict[str, pd.Series] = {}
    for field_name in FIELDS:
        value = _empty_field_column(field_name, ids)
        source = _none_series(ids)
        for name in order:
            candidate = lookups[name][field_name]
            take = value.isna() & candidate.notna()
            if take.any():
                value[take] = candidate[take]
                source[take] = name
        values[field_name] = value if field_name == "mtow_kg" else _none_for_missing(value)
        sources[field_name] = _none_for_missing(source)
    return values, sources


def _disagreement(
    field_name: str, lookups: Mapping[str, pd.DataFrame], order: Sequence[str], winner: pd.Series
) -> pd.Series:
    """Rows where some source's known value differs from the winner (beyond tolerance)."""
    mask = pd.Series(False, index=winner.index)
    if field_name == "mtow_kg":
        matrix = pd.concat([lookups[n][field_name] for n in order], axis=1)
        return (matrix.max(axis=1) - matrix.min(axis=1)) > MTOW_TOLERANCE_KG
    win_key = winner.map(lambda v: _compare_key(field_name, v), na_action="ignore")
    for name in order:
        col = lookups[name][field_name]
        known = col.notna()
        if not known.any():
            continue
        key = col.map(lambda v: _compare_key(field_name, v), na_action="ignore")
        mask |= known & (key != win_key)
    return mask


def _same_values(a: Mapping[str, pd.Series], b: Mapping[str, pd.Series]) -> bool:
    for field_name in FIELDS:
        left, right = a[field_name], b[field_name]
        both_missing = left.isna() & right.isna()
        equal = (left == right) | both_missing
        if not bool(equal.all()):
            return False
    return True


def resolve_attributes(
    flights: pd.DataFrame,
    sources: Sequence[AttributeSource],
    *,
    critical_fields: Sequence[str] = DEFAULT_CRITICAL_FIELDS,
    max_rounds: int = 4,
) -> ResolvedAttributes:
    """Resolve the attributes of ``flights`` (column ``flight_id``) from ``sources``.

    ``sources`` are in priority order (first wins); authoritative sources
    (``source.authoritative``, e.g. :class:`ManualResolutionSource`) come before all others
    whatever their position. Each field takes the first known normalised value. For a field in
    ``critical_fields``, known values that disagree (MTOW: by more than
    :data:`MTOW_TOLERANCE_KG`; operator: case-blind) give a :class:`Conflict` and leave the
    field missing, unless an authoritative source knows the field.

    Sources are asked in rounds, each with the values resolved by the previous one (the first
    round knows only ``flight_id``), until the resolved values are stable or ``max_rounds``
    is reached. Other columns of ``flights`` are not used: wrap values you have in a
    :class:`FrameAttributeSource`. Pure: writes nothing (see :func:`record_conflicts`).
    """
    unknown = [f for f in critical_fields if f not in FIELDS]
    if unknown:
        raise ValueError(f"unknown critical field(s): {', '.join(unknown)}")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"attribute source names must be unique: {names}")
    if max_rounds < 1:
        raise ValueError("max_rounds must be >= 1")
    ids = _unique_flight_ids(flights)
    ordered = sorted(sources, key=lambda s: not getattr(s, "authoritative", False))
    order = [s.name for s in ordered]
    authoritative = [s.name for s in ordered if getattr(s, "authoritative", False)]

    current = {f: _empty_field_column(f, ids) for f in FIELDS}
    lookups: dict[str, pd.DataFrame] = {}
    values: dict[str, pd.Series] = current
    winners: dict[str, pd.Series] = {}
    for _ in range(max_rounds):
        frame = _frame_for(ids, current)
        lookups = {s.name: _validated_lookup(s, frame, ids) for s in ordered}
        values, winners = _pick(lookups, order, ids)
        if _same_values(values, current):
            break
        current = values

    attributes = pd.DataFrame({"flight_id": np.asarray(ids, dtype="int64")})
    conflict_fields: list[list[str]] = [[] for _ in range(len(ids))]
    conflicts: list[Conflict] = []
    flight_ids = ids.to_numpy()
    for field_name in FIELDS:
        value, winner = values[field_name].copy(), winners[field_name].copy()
        if field_name in critical_fields:
            settled = winner.isin(authoritative)
            disputed = _disagreement(field_name, lookups, order, value) & ~settled
            positions = np.flatnonzero(disputed.to_numpy())
            if len(positions):
                columns = [
                    (name, lookups[name][field_name].to_numpy(dtype=object)[positions])
                    for name in order
                ]
                for k, position in enumerate(positions):
                    candidates = {
                        name: _json_value(column[k])
                        for name, column in columns
                        if not is_null(column[k])
                    }
                    conflicts.append(Conflict(int(flight_ids[position]), field_name, candidates))
                    conflict_fields[position].append(field_name)
                value[disputed] = np.nan if field_name == "mtow_kg" else None
                winner[disputed] = None
        attributes[field_name] = (
            value.to_numpy(dtype="float64")
            if field_name == "mtow_kg"
            else _object_column(_none_for_missing(value), attributes.index)
        )
        attributes[f"{field_name}_source"] = _object_column(
            _none_for_missing(winner), attributes.index
        )
    attributes["has_conflict"] = np.array([bool(c) for c in conflict_fields], dtype=bool)
    attributes["conflict_fields"] = pd.Series(
        [",".join(c) if c else None for c in conflict_fields], index=attributes.index, dtype=object
    )
    conflicts.sort(key=lambda c: (c.flight_id, FIELDS.index(c.field)))
    return ResolvedAttributes(attributes=attributes, conflicts=conflicts)


def _object_column(values: pd.Series, index: pd.Index) -> pd.Series:
    """An object column with ``None`` for missing (pandas would infer ``str`` with NaN)."""
    return pd.Series(values.to_numpy(dtype=object), index=index, dtype=object)


def _json_value(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
