"""SQLAlchemy 2 models of the billing database.

The schema is created by the Alembic migrations in ``flight_fees/migrations`` (never by
``create_all`` outside tests). Every CHECK constraint here holds on SQLite and PostgreSQL alike.

Numbers (money, FX rates, distances, MTOW, coordinates) are :class:`ExactDecimal` columns that
map to ``decimal.Decimal``: ``NUMERIC(p, s)`` on PostgreSQL and, on SQLite (which has no exact
decimal type: a ``NUMERIC`` column stores REAL), a ``BIGINT`` of the value in units of
``10^-s`` (integer minor units), so values round-trip exactly and ``SUM`` is exact integer
arithmetic. Each such column has a CHECK that only lets finite values through
(:func:`number_checks`): ``'NaN'`` and the infinities pass ``x >= 0`` on PostgreSQL (NaN sorts
above every number), and SQLite stores any text or REAL in any column.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flight_fees.lib.core.money import InvalidAmount, to_decimal

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: BIGINT on PostgreSQL, INTEGER on SQLite (so that SQLite's rowid autoincrement applies).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

QUEUE_STATUSES = ("queued", "processing", "failed", "dead")
PRIORITIES = ("high", "normal", "low")
PRIORITY_RANK = {"high": 0, "normal": 1, "low": 2}
INVOICE_STATUSES = ("PENDING", "PAID", "OVERDUE", "VOID")
BILLING_FREQUENCIES = ("weekly", "monthly")
FLIGHT_STATUSES = ("billed", "failed", "blocked")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def currency_check(column: str) -> str:
    """SQL that holds when ``column`` is three upper-case ASCII letters (SQLite and PostgreSQL)."""
    letters = " AND ".join(f"substr({column}, {i}, 1) BETWEEN 'A' AND 'Z'" for i in (1, 2, 3))
    return f"length({column}) = 3 AND {letters}"


def upper_alnum_check(column: str, min_len: int, max_len: int, nullable: bool = True) -> str:
    """SQL for ICAO-style codes: upper case, ``min_len``..``max_len`` characters, no blanks."""
    body = (
        f"length({column}) BETWEEN {min_len} AND {max_len} "
        f"AND {column} = upper({column}) AND {column} NOT LIKE '% %'"
    )
    return f"{column} IS NULL OR ({body})" if nullable else body


#: wide enough for every quantize of an ``ExactDecimal`` (at most 24 digits)
_EXACT_CONTEXT = Context(prec=60, traps=[InvalidOperation])


class ExactDecimal(TypeDecorator[Decimal]):
    """A decimal column of ``precision`` digits, ``scale`` of them after the point, exact on
    both databases (see the module docstring): ``NUMERIC(p, s)`` on PostgreSQL, ``BIGINT``
    units of ``10^-scale`` on SQLite.

    Values are written rounded half-up to ``scale`` places (as PostgreSQL's NUMERIC does);
    NaN, infinities, non-numbers and values of more than ``precision - scale`` integer digits
    are refused before reaching the database. Reads give ``Decimal`` with ``scale`` places.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def exact(self, value: object) -> Decimal:
        """``value`` as this column stores it, or :class:`ValueError` saying why not."""
        try:
            number = to_decimal(value, what="value")
        except InvalidAmount as exc:
            raise ValueError(f"{exc} ({self.precision},{self.scale} column)") from None
        rounded = number.quantize(
            Decimal(1).scaleb(-self.scale), rounding=ROUND_HALF_UP, context=_EXACT_CONTEXT
        )
        if abs(rounded) >= Decimal(10) ** (self.precision - self.scale):
            raise ValueError(
                f"{value!r} does not fit a NUMERIC({self.precision},{self.scale}) column"
            )
        return rounded

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = self.exact(value)
        return int(number.scaleb(self.scale)) if dialect.name == "sqlite" else number

    def process_literal_param(self, value: Any, dialect: Dialect) -> str:
        return "NULL" if value is None else str(self.process_bind_param(value, dialect))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.scale, context=_EXACT_CONTEXT)
        return value if isinstance(value, Decimal) else self.exact(value)


def number_check_sql(dialect: str, column: str, condition: str | None = None) -> str:
    """SQL that holds when ``column`` (an :class:`ExactDecimal` column) is NULL or a finite
    number satisfying ``condition`` (e.g. ``"x >= 0"`` written with the column name).

    PostgreSQL: ``-Infinity < x < Infinity`` (false for NaN, which sorts above Infinity);
    SQLite: the stored value is an integer (no text, no REAL, hence no NaN/Infinity).
    """
    if dialect == "postgresql":
        finite = f"{column} > '-Infinity' AND {column} < 'Infinity'"
    elif dialect == "sqlite":
        finite = f"typeof({column}) = 'integer'"
    else:
        raise ValueError(f"no number CHECK for dialect {dialect!r}")
    body = f"{finite} AND ({condition})" if condition else finite
    return f"{column} IS NULL OR ({body})"


def number_checks(column: str, condition: str | None, name: str) -> list[CheckConstraint]:
    """The CHECK ``name`` of :func:`number_check_sql`, one per database (each created only
    there)."""
    return [
        CheckConstraint(number_check_sql(d, column, condition), name=name).ddl_if(dialect=d)
        for d in ("postgresql", "sqlite")
    ]


#: ``(table, column, condition, check name)`` of every :class:`ExactDecimal` column
EXACT_COLUMNS: tuple[tuple[str, str, str | None, str], ...] = (
    ("aircraft", "mtow_kg", "mtow_kg > 0", "mtow_positive"),
    ("flights", "mtow_kg", "mtow_kg > 0", "mtow_positive"),
    ("fee_lines", "entry_lat", None, "entry_lat_finite"),
    ("fee_lines", "entry_lon", None, "entry_lon_finite"),
    ("fee_lines", "exit_lat", None, "exit_lat_finite"),
    ("fee_lines", "exit_lon", None, "exit_lon_finite"),
    ("fee_lines", "distance_km", "distance_km >= 0", "distance_non_negative"),
    ("fee_lines", "flown_km", "flown_km >= 0", "flown_km_non_negative"),
    ("fee_lines", "mtow_kg", "mtow_kg > 0", "mtow_positive"),
    ("fee_lines", "service_units", None, "service_units_finite"),
    ("fee_lines", "unit_rate", None, "unit_rate_finite"),
    ("fee_lines", "local_amount", "local_amount >= 0", "local_amount_non_negative"),
    ("fee_lines", "fx_rate", "fx_rate > 0", "fx_rate_positive"),
    ("fee_lines", "billing_amount", "billing_amount >= 0", "billing_amount_non_negative"),
    ("invoices", "total_amount", "total_amount >= 0", "total_non_negative"),
    ("credit_notes", "amount", "amount >= 0", "amount_non_negative"),
    ("aircraft_mtow_declarations", "mtow_kg", "mtow_kg > 0", "mtow_positive"),
)


def _exact_checks(table: str) -> list[CheckConstraint]:
    return [
        check
        for tbl, column, condition, name in EXACT_COLUMNS
        if tbl == table
        for check in number_checks(column, condition, name)
    ]


def _partial_unique_index(name: str, *columns: str, where: str) -> Index:
    """A unique index over the rows for which the SQL ``where`` holds (SQLite and PostgreSQL)."""
    return Index(
        name, *columns, unique=True, sqlite_where=text(where), postgresql_where=text(where)
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class FlightQueueItem(TimestampMixin, Base):
    """A flight waiting to be billed. Deleted in the transaction that writes its fee lines."""

    __tablename__ = "flight_processing_queue"
    __table_args__ = (
        CheckConstraint(_in("status", QUEUE_STATUSES), name="status_valid"),
        CheckConstraint(_in("priority", PRIORITIES), name="priority_valid"),
        CheckConstraint("priority_rank BETWEEN 0 AND 2", name="priority_rank_valid"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        CheckConstraint("flight_id > 0", name="flight_id_positive"),
        # the claim order: status, then priority, then age
        Index("ix_queue_claim_order", "status", "priority_rank", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    flight_id: Mapped[int] = mapped_column(BigInteger, nullable=False, unique=True)
    flight_date: Mapped[dt.date | None] = mapped_column(Date)
    priority: Mapped[str] = mapped_column(String(6), nullable=False, default="normal")
    priority_rank: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=1)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="queued")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    error_category: Mapped[str | None] = mapped_column(String(40))
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Customer(TimestampMixin, Base):
    """An aircraft operator that receives invoices."""

    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint(_in("billing_frequency", BILLING_FREQUENCIES), name="frequency_valid"),
        CheckConstraint("week_end_weekday BETWEEN 0 AND 6", name="weekday_valid"),
        CheckConstraint(currency_check("billing_currency"), name="currency_valid"),
        CheckConstraint("payment_terms_days >= 0", name="terms_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    billing_frequency: Mapped[str] = mapped_column(String(10), nullable=False, default="monthly")
    #: 0 = Monday ... 6 = Sunday: the last day of a weekly billing period
    week_end_weekday: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=6)
    billing_currency: Mapped[str] = mapped_column(String(3), nullable=False, default="EUR")
    payment_terms_days: Mapped[int] = mapped_column(Integer, nullable=False, default=30)
    email: Mapped[str | None] = mapped_column(String(320))
    address: Mapped[str | None] = mapped_column(Text)
    #: VAT / tax identification number (migration 0003)
    tax_id: Mapped[str | None] = mapped_column(String(40))


class Aircraft(TimestampMixin, Base):
    """An aircraft known to the billing system, with its declared MTOW and operator."""

    __tablename__ = "aircraft"
    __table_args__ = (
        CheckConstraint(upper_alnum_check("registration", 2, 10, False), name="registration_fmt"),
        CheckConstraint(
            "icao24 IS NULL OR (length(icao24) = 6 AND icao24 = lower(icao24))", name="icao24_fmt"
        ),
        CheckConstraint(upper_alnum_check("icao_type", 2, 4), name="icao_type_fmt"),
        *_exact_checks("aircraft"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    registration: Mapped[str] = mapped_column(String(10), nullable=False, unique=True)
    icao24: Mapped[str | None] = mapped_column(String(6), index=True)
    icao_type: Mapped[str | None] = mapped_column(String(4))
    mtow_kg: Mapped[Decimal | None] = mapped_column(ExactDecimal(10, 1))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="RESTRICT"), index=True
    )
    #: comma-separated flight flags applying to every flight of this aircraft
    #: (state, military, search_and_rescue, training)
    flags: Mapped[str | None] = mapped_column(String(200))


class Flight(TimestampMixin, Base):
    """What was resolved about a flight when it was last processed (attributes, MTOW, status)."""

    __tablename__ = "flights"
    __table_args__ = (
        CheckConstraint(_in("status", FLIGHT_STATUSES), name="status_valid"),
        *_exact_checks("flights"),
        CheckConstraint(upper_alnum_check("origin", 3, 4), name="origin_fmt"),
        CheckConstraint(upper_alnum_check("destination", 3, 4), name="destination_fmt"),
    )

    flight_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    flight_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    callsign: Mapped[str | None] = mapped_column(String(16))
    registration: Mapped[str | None] = mapped_column(String(10))
    icao24: Mapped[str | None] = mapped_column(String(6))
    aircraft_type: Mapped[str | None] = mapped_column(String(4))
    origin: Mapped[str | None] = mapped_column(String(4))
    destination: Mapped[str | None] = mapped_column(String(4))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    mtow_kg: Mapped[Decimal | None] = mapped_column(ExactDecimal(10, 1))
    mtow_source: Mapped[str | None] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="billed")
    error_category: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(Text)
    batch_id: Mapped[str | None] = mapped_column(String(64))
    map_path: Mapped[str | None] = mapped_column(Text)


class FeeLine(Base):
    """The charge of one charging-zone visit of one flight.

    ``(flight_id, line_no)`` is unique: re-processing a flight replaces its not-yet-invoiced
    lines in one transaction, so a flight is never billed twice.
    """

    __tablename__ = "fee_lines"
    __table_args__ = (
        UniqueConstraint("flight_id", "line_no"),
        *_exact_checks("fee_lines"),
        CheckConstraint(currency_check("local_currency"), name="local_currency_valid"),
        CheckConstraint(currency_check("billing_currency"), name="billing_currency_valid"),
        CheckConstraint(upper_alnum_check("zone_id", 1, 8, False), name="zone_id_fmt"),
        Index("ix_fee_lines_uninvoiced", "customer_id", "flight_date", "invoice_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    flight_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    line_no: Mapped[int] = mapped_column(Integer, nullable=False)
    flight_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    zone_id: Mapped[str] = mapped_column(String(8), nullable=False)
    fir_ids: Mapped[str] = mapped_column(String(200), nullable=False)
    entry_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    exit_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    entry_lat: Mapped[float | None] = mapped_column(ExactDecimal(9, 6))
    entry_lon: Mapped[float | None] = mapped_column(ExactDecimal(10, 6))
    exit_lat: Mapped[float | None] = mapped_column(ExactDecimal(9, 6))
    exit_lon: Mapped[float | None] = mapped_column(ExactDecimal(10, 6))
    distance_km: Mapped[Decimal] = mapped_column(ExactDecimal(12, 3), nullable=False)
    flown_km: Mapped[Decimal | None] = mapped_column(ExactDecimal(12, 3))
    mtow_kg: Mapped[Decimal | None] = mapped_column(ExactDecimal(10, 1))
    category: Mapped[str | None] = mapped_column(String(20))
    service_units: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 6))
    unit_rate: Mapped[Decimal | None] = mapped_column(ExactDecimal(18, 6))
    tariff_id: Mapped[str] = mapped_column(String(60), nullable=False)
    tariff_version: Mapped[str] = mapped_column(String(60), nullable=False)
    local_amount: Mapped[Decimal] = mapped_column(ExactDecimal(18, 3), nullable=False)
    local_currency: Mapped[str] = mapped_column(String(3), nullable=False)
    fx_rate: Mapped[Decimal] = mapped_column(ExactDecimal(24, 10), nullable=False)
    fx_date: Mapped[dt.date | None] = mapped_column(Date)
    billing_amount: Mapped[Decimal] = mapped_column(ExactDecimal(18, 3), nullable=False)
    billing_currency: Mapped[str] = mapped_column(String(3), nullable=False)
    exemption: Mapped[str | None] = mapped_column(String(60))
    interpolated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: JSON of the tariff computation (factors, components), for audit
    details: Mapped[str | None] = mapped_column(Text)
    invoice_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoices.id", ondelete="RESTRICT"), index=True
    )
    batch_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class Invoice(TimestampMixin, Base):
    """A consolidated invoice of one customer for one billing period."""

    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint(_in("status", INVOICE_STATUSES), name="status_valid"),
        *_exact_checks("invoices"),
        CheckConstraint(currency_check("currency"), name="currency_valid"),
        CheckConstraint("period_end >= period_start", name="period_ordered"),
        CheckConstraint("due_date >= issue_date", name="due_after_issue"),
        # one live invoice per customer and period; voided ones make room for a re-issue
        _partial_unique_index(
            "uq_invoices_customer_period_live",
            "customer_id",
            "period_start",
            "period_end",
            where="status <> 'VOID'",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), nullable=False)
    period_start: Mapped[dt.date] = mapped_column(Date, nullable=False)
    period_end: Mapped[dt.date] = mapped_column(Date, nullable=False)
    issue_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    due_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    total_amount: Mapped[Decimal] = mapped_column(ExactDecimal(18, 3), nullable=False)
    line_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="PENDING")
    paid_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    voided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    void_reason: Mapped[str | None] = mapped_column(Text)
    document_path: Mapped[str | None] = mapped_column(Text)


class DocumentCounter(Base):
    """Gapless per-year counters for invoice and credit-note numbers (row-locked on use)."""

    __tablename__ = "document_counters"
    __table_args__ = (CheckConstraint("last_number >= 0", name="non_negative"),)

    kind: Mapped[str] = mapped_column(String(10), primary_key=True)  # 'INV' or 'CN'
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class CreditNote(Base):
    """Records the cancellation of a voided invoice."""

    __tablename__ = "credit_notes"
    __table_args__ = (
        *_exact_checks("credit_notes"),
        CheckConstraint(currency_check("currency"), name="currency_valid"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), nullable=False, unique=True)
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(18, 3), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class ProcessingBatch(Base):
    """One processing run over a set of flights (the audit trail of the pipeline)."""

    __tablename__ = "processing_batches"
    __table_args__ = (
        CheckConstraint(
            _in("status", ("running", "succeeded", "partial", "failed")), name="status_valid"
        ),
    )

    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    partition_key: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="running")
    flights_requested: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    flights_ok: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    flights_failed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    fee_lines: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class FlightConflict(Base):
    """A disagreement between attribute sources on a critical field, awaiting review."""

    __tablename__ = "flight_conflicts"
    __table_args__ = (
        CheckConstraint(_in("status", ("open", "resolved")), name="status_valid"),
        _partial_unique_index(
            "uq_flight_conflicts_open", "flight_id", "field", where="status = 'open'"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    flight_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    field: Mapped[str] = mapped_column(String(40), nullable=False)
    #: JSON object {source name: value}
    candidates: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default="open")
    resolution: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class CircuitBreakerState(Base):
    """State of the circuit breaker of one external source, kept between sensor ticks."""

    __tablename__ = "circuit_breakers"
    __table_args__ = (
        CheckConstraint(_in("state", ("closed", "open", "half_open")), name="state_valid"),
        CheckConstraint("consecutive_failures >= 0", name="failures_non_negative"),
    )

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    state: Mapped[str] = mapped_column(String(10), nullable=False, default="closed")
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    opened_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class AircraftMtowDeclaration(Base):
    """One declared MTOW of an aircraft, in force from ``effective_from`` (a UTC day) until the
    next declaration of the same aircraft (migration 0003). A flight is charged on the
    declaration in force on its day; ``aircraft.mtow_kg`` mirrors the latest declaration."""

    __tablename__ = "aircraft_mtow_declarations"
    __table_args__ = (
        UniqueConstraint("aircraft_id", "effective_from"),
        *_exact_checks("aircraft_mtow_declarations"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    aircraft_id: Mapped[int] = mapped_column(
        ForeignKey("aircraft.id", ondelete="CASCADE"), nullable=False, index=True
    )
    effective_from: Mapped[dt.date] = mapped_column(Date, nullable=False)
    mtow_kg: Mapped[Decimal] = mapped_column(ExactDecimal(10, 1), nullable=False)
    recorded_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class AuditEntry(Base):
    """Who changed what and when in the reference data (customers, aircraft, MTOW, rates)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    actor: Mapped[str] = mapped_column(String(120), nullable=False)
    #: ``create``, ``update``, ``declare_mtow``, ``import``
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    #: ``customer``, ``aircraft``, ``unit_rates``, ``fx_rates``
    entity: Mapped[str] = mapped_column(String(40), nullable=False)
    entity_key: Mapped[str] = mapped_column(String(200), nullable=False)
    #: JSON object of the change: {field: [old, new]} or the values written
    details: Mapped[str | None] = mapped_column(Text)
