"""Is the billing database reachable and migrated? Answers in words, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text

from flight_fees.lib.core.redact import redact
from flight_fees.lib.db.migrate import current_revision, head_revision


@dataclass(frozen=True)
class SchemaState:
    ok: bool
    detail: str
    error: str | None = None  # unreachable: nothing else can be said


def describe_connection_error(engine: Engine, exc: BaseException) -> str:
    """A one-line explanation of why ``engine`` cannot connect."""
    url = engine.url.render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = redact(reason[0]) if reason else type(exc).__name__
    return f"cannot connect to the billing database {url}: {first}"


def ping(engine: Engine) -> str | None:
    """None when the database answers, else the reason."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # driver errors vary by backend
        return describe_connection_error(engine, exc)


def check_schema(engine: Engine) -> SchemaState:
    error = ping(engine)
    if error:
        return SchemaState(False, error, error)
    try:
        current = current_revision(engine)
    except Exception as exc:
        return SchemaState(False, f"cannot read the schema revision: {redact(exc)}", redact(exc))
    head = head_revision()
    if current == head:
        return SchemaState(True, f"schema at {current} (latest)")
    if current is None:
        return SchemaState(False, "database is empty (not migrated)")
    return SchemaState(False, f"schema at {current}, latest is {head}")
