"""Gapless document numbers (INV-YYYY-NNNNNN, CN-YYYY-NNNNNN) from ``document_counters``."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flight_fees.lib.db.models import (
    DocumentCounter,
)

# -- numbering -------------------------------------------------------------------------------


def format_number(kind: str, year: int, sequence: int) -> str:
    """``INV-2026-000042``: kind, issue year, 6-digit gapless sequence within the year."""
    return f"{kind}-{year:04d}-{sequence:06d}"


def _next_number(session: Session, kind: str, year: int) -> str:
    """Allocate the next number of ``kind`` in ``year`` inside the caller's transaction.

    The counter row is created if missing, then incremented with ``UPDATE ... RETURNING``:
    the UPDATE takes the same row lock as ``SELECT ... FOR UPDATE`` (held to the end of the
    transaction on PostgreSQL; SQLite writers are serialised by ``BEGIN IMMEDIATE``), so
    numbers are unique, and a rollback of the transaction gives the number back (gapless).
    """
    dialect = session.get_bind().dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert_fn(DocumentCounter)
        .values(kind=kind, year=year, last_number=0)
        .on_conflict_do_nothing(index_elements=["kind", "year"])
    )
    sequence = session.execute(
        update(DocumentCounter)
        .where(DocumentCounter.kind == kind, DocumentCounter.year == year)
        .values(last_number=DocumentCounter.last_number + 1)
        .returning(DocumentCounter.last_number)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return format_number(kind, year, sequence)


# -- time helpers ----------------------------------------------------------------------------


# -- amounts ---------------------------------------------------------------------------------
