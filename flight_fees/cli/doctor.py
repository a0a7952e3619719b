"""``flight-fees doctor``: is everything this installation needs reachable and ready?"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""


def check_database() -> list[Check]:
    from flight_fees.lib.db import DatabaseError, make_engine
    from flight_fees.lib.db.health import check_schema

    try:
        engine = make_engine()
    except DatabaseError as exc:
        return [Check("billing database", False, str(exc), "fix FLIGHT_FEES_DATABASE_URL")]
    url = engine.url.render_as_string(hide_password=True)
    state = check_schema(engine)
    engine.dispose()
    if state.error:
        return [
            Check("billing database", False, state.error, "check FLIGHT_FEES_DATABASE_URL / server")
        ]
    return [
        Check("billing database", True, f"reachable: {url}"),
        Check("schema", state.ok, state.detail, "" if state.ok else "run `flight-fees db upgrade`"),
    ]


def check_track_source() -> Check:
    from flight_fees.lib.tracks import TrackSourceError, make_track_source

    kind = "pinot" if os.environ.get("PINOT_HTTP_BROKER_URL") else "parquet"
    try:
        source = make_track_source(kind)
        source.ping()
    except TrackSourceError as exc:
        return Check(f"track source ({kind})", False, str(exc), f"{kind} track source unreachable")
    except Exception as exc:  # configuration errors
        return Check(
            f"track source ({kind})", False, str(exc), f"{kind} track source misconfigured"
        )
    return Check(f"track source ({kind})", True, source.description)


def run_checks() -> list[Check]:
    """Every check, with credentials masked in what it says (URL passwords, tokens)."""
    from dataclasses import replace

    from flight_fees.lib.core.redact import environment_secrets, redact

    secrets = environment_secrets()
    return [
        replace(check, detail=redact(check.detail, secrets), hint=redact(check.hint, secrets))
        for check in (*check_database(), check_track_source())
    ]
