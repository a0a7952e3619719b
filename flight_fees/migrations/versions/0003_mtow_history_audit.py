"""MTOW declaration history with effective dates, audit log, customers.tax_id

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00

- ``aircraft_mtow_declarations``: every declared MTOW of an aircraft with the UTC day it takes
  effect (unique per aircraft and day); a flight is charged on the declaration in force on its
  day. The MTOW already in ``aircraft.mtow_kg`` becomes a declaration in force since always
  (``0001-01-01``), so nothing billed so far changes.
- ``audit_log``: who changed what and when in customers, aircraft, MTOWs and rates.
- ``customers.tax_id``: the customer's VAT / tax identification number.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flight_fees.lib.db.models import number_check_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: the ``effective_from`` of a declaration in force since always (frozen)
SINCE_ALWAYS = "0001-01-01"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column("customers", sa.Column("tax_id", sa.String(length=40), nullable=True))
    op.create_table(
        "aircraft_mtow_declarations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("aircraft_id", sa.Integer() if dialect == "sqlite" else sa.BigInteger(),
                  nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column(
            "mtow_kg",
            sa.BigInteger() if dialect == "sqlite" else sa.Numeric(10, 1),
            nullable=False,
        ),
        sa.Column("recorded_by", sa.String(length=120), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            number_check_sql(dialect, "mtow_kg", "mtow_kg > 0"),
            name=op.f("ck_aircraft_mtow_declarations_mtow_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["aircraft_id"],
            ["aircraft.id"],
            name=op.f("fk_aircraft_mtow_declarations_aircraft_id_aircraft"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aircraft_mtow_declarations")),
        sa.UniqueConstraint(
            "aircraft_id",
            "effective_from",
            name=op.f("uq_aircraft_mtow_declarations_aircraft_id_effective_from"),
        ),
    )  # fmt: skip
    op.create_index(
        op.f("ix_aircraft_mtow_declarations_aircraft_id"),
        "aircraft_mtow_declarations",
        ["aircraft_id"],
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("entity_key", sa.String(length=200), nullable=False),
        sa.Column("details", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_key"])
    op.execute(
        "INSERT INTO aircraft_mtow_declarations (aircraft_id, effective_from, mtow_kg, "
        f"recorded_by) SELECT id, '{SINCE_ALWAYS}', mtow_kg, 'migration 0003' FROM aircraft "
        "WHERE mtow_kg IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(
        op.f("ix_aircraft_mtow_declarations_aircraft_id"), table_name="aircraft_mtow_declarations"
    )
    op.drop_table("aircraft_mtow_declarations")
    # a plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch rebuild of customers
    # would drop a table that invoices, aircraft and fee lines reference
    op.drop_column("customers", "tax_id")
