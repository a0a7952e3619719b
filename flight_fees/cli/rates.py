"""``flight-fees rates import``: unit rates and FX rates into the home's reference files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flight_fees.cli.common import open_engine, wide_console
from flight_fees.cli.customers import (
    ActorOption,
    SkipOption,
    actor_of,
    print_skipped,
    registry_errors,
)

rates_app = typer.Typer(
    help="Reference rates: import monthly unit rates or FX rates from a CSV file.",
    no_args_is_help=True,
)


@rates_app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: zone,month,rate,currency (unit) or date,currency,rate_per_eur (fx)."
        ),
    ],
    kind: Annotated[str, typer.Option("--kind", help="unit or fx.")],
    skip_invalid: SkipOption = False,
    actor: ActorOption = None,
) -> None:
    """Check a rates file row by row and merge it into <home>/reference/ (one transaction)."""
    from flight_fees.lib.charging.rates import RATE_KINDS, import_rates
    from flight_fees.lib.core.settings import paths

    if kind.strip().lower() not in RATE_KINDS:
        raise typer.BadParameter(
            f"{kind!r} is not one of {', '.join(RATE_KINDS)}", param_hint="'--kind'"
        )
    with registry_errors():
        result = import_rates(
            open_engine(migrated=True), file, kind.strip().lower(), paths().reference,
            actor=actor_of(actor), skip_invalid=skip_invalid,
        )  # fmt: skip
    print_skipped(result.errors, str(file))
    wide_console(highlight=False, soft_wrap=True).print(
        f"{kind} rates: {result.added} added, {result.replaced} replaced in {result.path}"
    )
