"""The ``flight-fees`` command line.

Commands are registered **lazily**: this module imports typer and nothing of the project, and
a command's module (with its dependencies: pandas and shapely for ``crossings``, SQLAlchemy for
the database commands, Dagster for ``process`` and ``demo``) is imported only when that command
runs or shows its own ``--help``. ``flight-fees --help`` lists the commands from the one-line
descriptions of :data:`COMMANDS` without importing any of them.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

try:  # typer >= 0.2x vendors its own click: use the same classes as TyperGroup
    from typer import _click as click
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer on the real click
    import click  # type: ignore[no-redef]
    from click.exceptions import UsageError  # type: ignore[no-redef,assignment]


#: what ends a command as "aborted" (Ctrl-C, end of input at a prompt); typer's vendored
#: click (0.29) has no ``Abort`` class, the real click does
_ABORTS: tuple[type[BaseException], ...] = (
    *((_abort,) if (_abort := getattr(click.exceptions, "Abort", None)) else ()),
    KeyboardInterrupt,
    EOFError,
)


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives: ``module.attr`` is a command function, or a ``typer.Typer``
    sub-application when ``group``; ``help`` is its line in ``flight-fees --help``."""

    module: str
    attr: str
    help: str
    group: bool = False


#: Every command, in the order of ``flight-fees --help`` (commands, then command groups). The
#: ``help`` lines repeat the first line of each command's docstring (a test keeps them equal).
COMMANDS: dict[str, LazyCommand] = {
    "enqueue": LazyCommand(
        "flight_fees.cli.commands", "enqueue", "Queue flights for billing (idempotent)."
    ),
    "queue": LazyCommand(
        "flight_fees.cli.commands",
        "queue_summary",
        "Queue summary: counts per status and priority, oldest age, recent errors.",
    ),
    "doctor": LazyCommand(
        "flight_fees.cli.commands",
        "doctor",
        "Check the billing database (reachable, migrated) and the track source.",
    ),
    "demo": LazyCommand(
        "flight_fees.cli.demo",
        "demo_command",
        "Seed demo data (tracks, FIRs, customers, aircraft, tariffs, FX) and run the pipeline.",
    ),
    "process": LazyCommand(
        "flight_fees.cli.process",
        "process_command",
        "Process flights now through Dagster (the run appears in the UI).",
    ),
    "tracks": LazyCommand(
        "flight_fees.cli.tracks",
        "tracks_command",
        "Fetch tracks and show, per flight, points, time span, cleaning flags and errors.",
    ),
    "crossings": LazyCommand(
        "flight_fees.cli.crossings",
        "crossings_command",
        "Compute the FIR crossings (one row per FIR visit) of every flight in TRACKS.",
    ),
    "quote": LazyCommand(
        "flight_fees.cli.quote",
        "quote_command",
        "Quote the route charge of one visit of a charging zone.",
    ),
    "serve-intake": LazyCommand(
        "flight_fees.cli.serve_intake",
        "serve_intake_command",
        "Serve POST /flights (HMAC-signed flight ids -> queue) and GET /health.",
    ),
    "serve": LazyCommand(
        "flight_fees.cli.serve",
        "serve_command",
        "Serve maps, day indexes, invoices, credit notes and processing logs (read-only HTTP).",
    ),
    "lines": LazyCommand(
        "flight_fees.cli.lines",
        "lines_command",
        "Search fee lines by flight, callsign, registration, customer, zone, day, invoice, status.",
    ),
    "verify": LazyCommand(
        "flight_fees.cli.verify",
        "verify_command",
        "Verify an authority's route-charges bill against our tracks and fee lines.",
    ),
    "reprice": LazyCommand(
        "flight_fees.cli.reprice",
        "reprice_command",
        "Reprice a past period's fee lines under other tariffs, unit rates or FX (no writes).",
    ),
    "db": LazyCommand(
        "flight_fees.cli.commands", "db_app", "The billing database (migrations).", group=True
    ),
    "invoice": LazyCommand(
        "flight_fees.cli.invoice",
        "invoice_app",
        "Consolidated invoices: list, show, pay, void, consolidate, document.",
        group=True,
    ),
    "conflicts": LazyCommand(
        "flight_fees.cli.conflicts",
        "conflicts_app",
        "Attribute conflicts (e.g. two MTOWs for one registration) blocking billing.",
        group=True,
    ),
    "customers": LazyCommand(
        "flight_fees.cli.customers",
        "customers_app",
        "Customers (operators billed): add, list, show, import a CSV file.",
        group=True,
    ),
    "aircraft": LazyCommand(
        "flight_fees.cli.aircraft",
        "aircraft_app",
        "Aircraft: add, list, import a CSV file (declared MTOW with the day it takes effect).",
        group=True,
    ),
    "rates": LazyCommand(
        "flight_fees.cli.rates",
        "rates_app",
        "Reference rates: import monthly unit rates or FX rates from a CSV file.",
        group=True,
    ),
    "batches": LazyCommand(
        "flight_fees.cli.batches",
        "batches_app",
        "Processing batches: list with progress, show one's failed flights, --watch.",
        group=True,
    ),
    "credit-notes": LazyCommand(
        "flight_fees.cli.credit_notes",
        "credit_notes_app",
        "Credit notes of voided invoices: list, show.",
        group=True,
    ),
}


def load_command(name: str) -> click.Command:
    """Import command ``name`` and build its click command (as ``app.command`` /
    ``app.add_typer`` would have)."""
    spec = COMMANDS[name]
    obj: Any = getattr(importlib.import_module(spec.module), spec.attr)
    if spec.group:
        command: click.Command = typer.main.get_group(obj)
    else:
        holder = typer.Typer(add_completion=False)
        holder.command(name)(obj)
        command = typer.main.get_command(holder)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The main group: commands of :data:`COMMANDS` are imported on first use; the command
    list of ``--help`` is drawn from their static one-line descriptions."""

    _listing: bool = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        eager = super().list_commands(ctx)
        return [*eager, *(name for name in COMMANDS if name not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in COMMANDS:
            return command
        if self._listing:  # the group's own --help: no import, the static description
            text = COMMANDS[cmd_name].help
            return TyperCommand(name=cmd_name, help=text, short_help=text)
        command = load_command(cmd_name)
        self.commands[cmd_name] = command
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except UsageError as exc:  # suggest among the lazy commands too
            matches = get_close_matches(args[0], list(COMMANDS)) if args else []
            if matches and "Did you mean" not in exc.message:
                names = ", ".join(repr(m) for m in matches)
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {names}?"
            raise

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run, and report every usage error and abort the one way of every command: one
        ``error: ...`` line on stderr (and a hint), exit 2 for usage errors, 1 for failures."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.ClickException as exc:
            from flight_fees.cli.common import usage_error

            usage_error(exc)
        except _ABORTS:
            from flight_fees.cli.common import err_console

            err_console.print("error: aborted", highlight=False)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="flight-fees",
    cls=LazyGroup,
    help="Bill air-navigation route charges from observed aircraft tracks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root() -> None:
    """Bill air-navigation route charges from observed aircraft tracks."""


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        from flight_fees.cli.common import err_console

        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
