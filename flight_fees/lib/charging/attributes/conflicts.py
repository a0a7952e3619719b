"""Attribute conflicts in the database: record, list, resolve, and the flights they block."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import pandas as pd
from sqlalchemy import Engine, Row, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flight_fees.lib.charging.attributes.normalise import (
    _CHUNK,
    _CONFLICT_STATUS_OPEN,
    FIELDS,
    ConflictNotFound,
    normalise_value,
)
from flight_fees.lib.charging.attributes.resolution import Conflict
from flight_fees.lib.db.engine import transaction
from flight_fees.lib.db.models import FlightConflict

# -- persistence ---------------------------------------------------------------------------


def record_conflicts(session: Session, conflicts: Iterable[Conflict]) -> int:
    """Insert ``conflicts`` as open rows of ``flight_conflicts``, in the caller's transaction.

    Idempotent: a (flight_id, field) that already has an open conflict is left as it is
    (the partial unique index ``uq_flight_conflicts_open``). Returns the number inserted.
    """
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for conflict in conflicts:
        if conflict.field not in FIELDS:
            raise ValueError(f"unknown attribute field {conflict.field!r}")
        rows.setdefault(
            (int(conflict.flight_id), conflict.field),
            {
                "flight_id": int(conflict.flight_id),
                "field": conflict.field,
                "candidates": json.dumps(conflict.candidates, sort_keys=True, default=str),
                "status": _CONFLICT_STATUS_OPEN,
            },
        )
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = list(rows.values())
    inserted = 0
    for start in range(0, len(values), _CHUNK):
        stmt = (
            insert_fn(FlightConflict)
            .values(values[start : start + _CHUNK])
            .on_conflict_do_nothing()
            .returning(FlightConflict.id)
        )
        inserted += len(session.execute(stmt).all())
    return inserted


def open_conflicts(engine: Engine, flight_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """Open conflicts (all, or of ``flight_ids``), oldest first.

    Columns: ``id, flight_id, field, candidates`` (dict ``{source: value}``), ``created_at``.
    """
    fc = FlightConflict
    query = select(fc.id, fc.flight_id, fc.field, fc.candidates, fc.created_at).where(
        fc.status == _CONFLICT_STATUS_OPEN
    )
    rows: list[Row[tuple[int, int, str, str, dt.datetime]]] = []
    with engine.connect() as conn:
        if flight_ids is None:
            rows.extend(conn.execute(query).all())
        else:
            ids = [int(i) for i in dict.fromkeys(flight_ids)]
            for start in range(0, len(ids), _CHUNK):
                rows.extend(
                    conn.execute(query.where(fc.flight_id.in_(ids[start : start + _CHUNK]))).all()
                )
    frame = pd.DataFrame(
        [(r.id, r.flight_id, r.field, json.loads(r.candidates), r.created_at) for r in rows],
        columns=["id", "flight_id", "field", "candidates", "created_at"],
    )
    frame["candidates"] = frame["candidates"].astype(object)
    return frame.sort_values(["created_at", "id"], kind="stable").reset_index(drop=True)


def resolve_conflict(
    engine: Engine,
    conflict: int | tuple[int, str],
    resolution: str | float,
    *,
    now: dt.datetime | None = None,
) -> int:
    """Close an open conflict with the chosen value; returns the conflict's id.

    ``conflict`` is the row id or ``(flight_id, field)``. ``resolution`` is validated and
    normalised for the field (MTOW: a positive number) and stored; it then wins through
    :class:`ManualResolutionSource`. It need not be one of the candidates. Raises
    :class:`ConflictNotFound` when no open conflict matches, :class:`ValueError` for an
    invalid value.
    """
    fc = FlightConflict
    with transaction(engine) as session:
        query = select(fc).where(fc.status == _CONFLICT_STATUS_OPEN)
        if isinstance(conflict, tuple):
            flight_id, field_name = conflict
            query = query.where(fc.flight_id == int(flight_id), fc.field == field_name)
        else:
            query = query.where(fc.id == int(conflict))
        row = session.execute(query.with_for_update()).scalar_one_or_none()
        if row is None:
            raise ConflictNotFound(f"no open conflict {conflict!r}")
        try:
            value = normalise_value(row.field, resolution)
        except ValueError as exc:
            raise ValueError(f"invalid resolution for {row.field}: {exc}") from None
        if value is None:
            raise ValueError(f"empty resolution for {row.field}")
        row.status = "resolved"
        row.resolution = repr(value) if isinstance(value, float) else str(value)
        resolved_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        if session.get_bind().dialect.name == "sqlite":
            resolved_at = resolved_at.replace(tzinfo=None)
        row.resolved_at = resolved_at
        return row.id


def blocked_flight_ids(engine: Engine, flight_ids: Iterable[int]) -> set[int]:
    """The flights among ``flight_ids`` with at least one open conflict (not to be billed)."""
    ids = [int(i) for i in dict.fromkeys(flight_ids)]
    blocked: set[int] = set()
    fc = FlightConflict
    with engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            blocked.update(
                conn.execute(
                    select(fc.flight_id)
                    .where(
                        fc.flight_id.in_(ids[start : start + _CHUNK]),
                        fc.status == _CONFLICT_STATUS_OPEN,
                    )
                    .distinct()
                ).scalars()
            )
    return blocked


def conflict_flight_id(engine: Engine, conflict_id: int) -> int:
    """The flight of conflict ``conflict_id``; :class:`ConflictNotFound` if there is none."""
    with engine.connect() as conn:
        flight_id = conn.execute(
            select(FlightConflict.flight_id).where(FlightConflict.id == conflict_id)
        ).scalar_one_or_none()
    if flight_id is None:
        raise ConflictNotFound(f"no conflict {conflict_id}")
    return int(flight_id)
