"""exact, finite numbers: money and measures refuse NaN / Infinity; exact storage on SQLite

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 10:00:00

Every NUMERIC column of 0001 (money, FX rates, distances, MTOW, coordinates) gets a CHECK that
lets only finite values through (:func:`flight_fees.lib.db.models.number_check_sql`):

- PostgreSQL: ``x > '-Infinity' AND x < 'Infinity'`` (NaN sorts above every number, so the
  0001 checks such as ``x >= 0`` let it pass); the column types do not change.
- SQLite: the columns become ``BIGINT`` holding the value in units of ``10^-scale`` (integer
  minor units, read back as exact ``Decimal`` by ``ExactDecimal``) and the CHECK requires
  ``typeof(x) = 'integer'`` (no text such as ``'NaN'`` or ``'abc'``, no REAL). Existing REAL
  values are converted with ``ROUND(x * 10^scale)``: exact for every value 0001 could store
  (at most 15 significant digits). The five tables are rebuilt (SQLite cannot alter a
  column or a CHECK); foreign keys keep pointing at the rebuilt ``invoices``.

Rows that cannot be converted (NaN, infinities, text, values breaking the new CHECK) stop the
migration with an error naming table, row and value: fix them, then upgrade again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flight_fees.lib.db.models import number_check_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: (table, column, scale, integer digits, condition, check name, 0001 condition) -- frozen
COLUMNS: tuple[tuple[str, str, int, int, str | None, str, str | None], ...] = (
    ("aircraft", "mtow_kg", 1, 9, "mtow_kg > 0", "mtow_positive", "mtow_kg IS NULL OR mtow_kg > 0"),
    ("flights", "mtow_kg", 1, 9, "mtow_kg > 0", "mtow_positive", "mtow_kg IS NULL OR mtow_kg > 0"),
    ("fee_lines", "entry_lat", 6, 3, None, "entry_lat_finite", None),
    ("fee_lines", "entry_lon", 6, 4, None, "entry_lon_finite", None),
    ("fee_lines", "exit_lat", 6, 3, None, "exit_lat_finite", None),
    ("fee_lines", "exit_lon", 6, 4, None, "exit_lon_finite", None),
    ("fee_lines", "distance_km", 3, 9, "distance_km >= 0", "distance_non_negative", "distance_km >= 0"),
    ("fee_lines", "flown_km", 3, 9, "flown_km >= 0", "flown_km_non_negative", None),
    ("fee_lines", "mtow_kg", 1, 9, "mtow_kg > 0", "mtow_positive", None),
    ("fee_lines", "service_units", 6, 12, None, "service_units_finite", None),
    ("fee_lines", "unit_rate", 6, 12, None, "unit_rate_finite", None),
    ("fee_lines", "local_amount", 3, 15, "local_amount >= 0", "local_amount_non_negative", "local_amount >= 0"),
    ("fee_lines", "fx_rate", 10, 14, "fx_rate > 0", "fx_rate_positive", "fx_rate > 0"),
    ("fee_lines", "billing_amount", 3, 15, "billing_amount >= 0", "billing_amount_non_negative", "billing_amount >= 0"),
    ("invoices", "total_amount", 3, 15, "total_amount >= 0", "total_non_negative", "total_amount >= 0"),
    ("credit_notes", "amount", 3, 15, "amount >= 0", "amount_non_negative", "amount >= 0"),
)  # fmt: skip
#: rebuilt on SQLite, parents before children (fee_lines and credit_notes reference invoices)
TABLES = ("invoices", "fee_lines", "credit_notes", "aircraft", "flights")
#: the row key shown when a value cannot be converted
ROW_KEYS = {
    "invoices": "number",
    "credit_notes": "number",
    "fee_lines": "id",
    "aircraft": "registration",
    "flights": "flight_id",
}
_TMP = "_exact_"


class UnconvertibleValues(RuntimeError):
    """Rows whose numbers cannot be stored exactly and finitely."""


def _columns_of(table: str) -> list[tuple[str, int, int, str | None, str, str | None]]:
    return [entry[1:] for entry in COLUMNS if entry[0] == table]


def _refuse_bad_rows(conn: sa.Connection) -> None:
    """Raise :class:`UnconvertibleValues` listing every value the new CHECKs would refuse."""
    dialect = conn.dialect.name
    problems: list[str] = []
    for table, column, _scale, digits, condition, _name, _old in COLUMNS:
        if dialect == "postgresql":
            bad = f"NOT ({number_check_sql('postgresql', column, condition)})"
        else:  # what ROUND(x * 10^scale) cannot turn into a finite integer meeting the condition
            fits = f"typeof({column}) IN ('integer', 'real') AND abs({column}) < 1e{digits}" + (
                f" AND ({condition})" if condition else ""
            )
            bad = f"{column} IS NOT NULL AND NOT ({fits})"
        key = ROW_KEYS[table]
        rows = conn.exec_driver_sql(
            f"SELECT {key}, CAST({column} AS TEXT) FROM {table} WHERE {bad} ORDER BY 1 LIMIT 20"
        ).all()
        problems += [f"{table} {key}={k!r}: {column} = {v!r}" for k, v in rows]
    if problems:
        raise UnconvertibleValues(
            "cannot make the numeric columns exact and finite; fix these rows first (at most "
            "20 per column shown): " + "; ".join(problems)
        )


def _set_postgres_checks(exact: bool) -> None:
    for table, column, _scale, _digits, condition, name, old in COLUMNS:
        constraint = f"ck_{table}_{name}"
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint}")
        sql = number_check_sql("postgresql", column, condition) if exact else old
        if sql:
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {constraint} CHECK ({sql})")


def _rebuilt(
    old: sa.Table, md: sa.MetaData, exact: bool
) -> tuple[sa.Table, list[sa.ColumnElement]]:
    """The table ``old`` rebuilt as ``_exact_<name>`` with exact (BIGINT) or 0001 (NUMERIC)
    number columns and their CHECKs, and the expressions converting ``old``'s values."""
    specs = {column: spec for column, *spec in _columns_of(old.name)}
    replaced = {f"ck_{old.name}_{spec[3]}" for spec in specs.values()}
    columns: list[sa.Column] = []
    values: list[sa.ColumnElement] = []
    for col in old.columns:
        type_ = col.type
        value: sa.ColumnElement = col
        if col.name in specs:
            scale, digits = specs[col.name][0], specs[col.name][1]
            if exact:
                type_ = sa.BigInteger()
                value = sa.cast(sa.func.round(col * 10**scale), sa.Integer)
            else:
                type_ = sa.Numeric(digits + scale, scale)
                value = col / float(10**scale)
        columns.append(
            sa.Column(
                col.name,
                type_,
                nullable=col.nullable,
                server_default=(
                    sa.DefaultClause(col.server_default.arg) if col.server_default else None
                ),
                autoincrement=False,
            )
        )
        values.append(value)
    constraints: list[sa.Constraint] = []
    for con in old.constraints:
        if isinstance(con, sa.CheckConstraint) and con.name in replaced:
            continue
        if isinstance(con, sa.PrimaryKeyConstraint):
            constraints.append(sa.PrimaryKeyConstraint(*con.columns.keys(), name=con.name))
        elif isinstance(con, sa.UniqueConstraint):
            constraints.append(sa.UniqueConstraint(*con.columns.keys(), name=con.name))
        elif isinstance(con, sa.CheckConstraint):
            constraints.append(sa.CheckConstraint(con.sqltext.text, name=con.name))
        elif isinstance(con, sa.ForeignKeyConstraint):
            target = con.referred_table.name
            target = _TMP + target if target in TABLES else target
            constraints.append(
                sa.ForeignKeyConstraint(
                    con.column_keys,
                    [f"{target}.{e.column.name}" for e in con.elements],
                    name=con.name,
                    ondelete=con.ondelete,
                )
            )
    for column, (_scale, _digits, condition, name, old_sql) in specs.items():
        sql = number_check_sql("sqlite", column, condition) if exact else old_sql
        if sql:
            constraints.append(sa.CheckConstraint(sql, name=f"ck_{old.name}_{name}"))
    return sa.Table(_TMP + old.name, md, *columns, *constraints), values


def _rebuild_sqlite(exact: bool) -> None:
    conn = op.get_bind()
    indexes = (
        conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN "
            f"({', '.join(repr(t) for t in TABLES)})"
        )
        .scalars()
        .all()
    )
    md = sa.MetaData()
    olds = {name: sa.Table(name, md, autoload_with=conn) for name in TABLES}
    for name in TABLES:  # parents first: the copies reference the copy of invoices
        new, values = _rebuilt(olds[name], md, exact)
        new.create(conn)
        conn.execute(new.insert().from_select([c.name for c in new.columns], sa.select(*values)))
    for name in reversed(TABLES):  # children first: nothing references invoices when dropped
        conn.exec_driver_sql(f"DROP TABLE {name}")
    for name in TABLES:  # renaming rewrites the references to _exact_invoices
        conn.exec_driver_sql(f"ALTER TABLE {_TMP}{name} RENAME TO {name}")
    for sql in indexes:
        conn.exec_driver_sql(sql)
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"foreign keys broken by the rebuild: {broken[:10]}")


def upgrade() -> None:
    conn = op.get_bind()
    _refuse_bad_rows(conn)
    if conn.dialect.name == "sqlite":
        _rebuild_sqlite(exact=True)
    else:
        _set_postgres_checks(exact=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(exact=False)
    else:
        _set_postgres_checks(exact=False)
