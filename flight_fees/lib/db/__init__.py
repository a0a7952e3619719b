"""The billing database: models, engine and migrations."""

from flight_fees.lib.db.engine import (
    DatabaseError,
    make_engine,
    rows_affected,
    session_factory,
    transaction,
)
from flight_fees.lib.db.migrate import current_revision, downgrade, head_revision, upgrade

__all__ = [
    "DatabaseError",
    "current_revision",
    "downgrade",
    "head_revision",
    "make_engine",
    "rows_affected",
    "session_factory",
    "transaction",
    "upgrade",
]
