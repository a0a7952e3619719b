"""``flight-fees customers ...``: add, list, show and import the customers (operators billed).

Business rules live in :mod:`flight_fees.lib.ops.registry`; this module translates arguments and
results. Every change is recorded in the audit log with ``--actor`` (default:
``FLIGHT_FEES_ACTOR``, else the login name).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from flight_fees.cli.common import err_console, fail, open_engine, wide_console

if TYPE_CHECKING:
    from collections.abc import Sequence

    from flight_fees.lib.ops.registry import ImportResult, RowError

customers_app = typer.Typer(
    help="Customers (operators billed): add, list, show, import a CSV file.",
    no_args_is_help=True,
)

ActorOption = Annotated[
    str | None,
    typer.Option("--actor", help="Who makes the change (audit log); default: the login name."),
]
SkipOption = Annotated[
    bool,
    typer.Option(
        "--skip-invalid", help="Apply the valid rows of a file with bad rows (default: none)."
    ),
]


@contextmanager
def registry_errors(code: int = 1) -> Iterator[None]:
    """The registry's refusals as ``error:`` lines (one per bad value of a file) and exit
    ``code`` (1: a file or the database refused; 2 for the values of ``add``'s options)."""
    from flight_fees.lib.ops.registry import ImportRejected, RegistryError

    try:
        yield
    except ImportRejected as exc:
        for row in exc.errors:
            err_console.print(
                f"[red]error:[/red] {escape(f'{exc.source}: {row}')}",
                highlight=False,
                soft_wrap=True,
            )
        fail(str(exc), 1)
    except RegistryError as exc:
        fail(str(exc), code)


def actor_of(actor: str | None) -> str:
    from flight_fees.lib.ops.registry import default_actor

    return actor.strip() if actor and actor.strip() else default_actor()


def print_import(result: ImportResult, what: str, source: str) -> None:
    """The summary of an import; the skipped rows (``--skip-invalid``) on stderr."""
    print_skipped(result.errors, source)
    extra = f", {result.declarations} MTOW declaration(s)" if what == "aircraft" else ""
    wide_console(highlight=False).print(
        f"{what}: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged{extra}"
        + (f"; {len(result.errors)} bad row(s) skipped" if result.errors else "")
    )


def print_skipped(errors: Sequence[RowError], source: str) -> None:
    """The rows ``--skip-invalid`` left out, on stderr."""
    for row in errors:
        err_console.print(
            f"[yellow]skipped[/yellow] {escape(f'{source}: {row}')}",
            highlight=False,
            soft_wrap=True,
        )


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, default=str)


@customers_app.command("add")
def add_command(
    code: Annotated[str, typer.Argument(help="Customer code (the operator code of aircraft).")],
    name: Annotated[str, typer.Option("--name", help="Name on the invoices.")],
    address: Annotated[str | None, typer.Option("--address", help="Postal address.")] = None,
    tax_id: Annotated[str | None, typer.Option("--tax-id", help="VAT / tax id.")] = None,
    frequency: Annotated[
        str | None, typer.Option("--frequency", help="Billing frequency: weekly or monthly.")
    ] = None,
    week_end_day: Annotated[
        str | None,
        typer.Option("--week-end-day", help="Last day of a weekly period (monday..sunday)."),
    ] = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="Billing currency (ISO 4217).")
    ] = None,
    terms: Annotated[str | None, typer.Option("--terms", help="Payment terms in days.")] = None,
    actor: ActorOption = None,
) -> None:
    """Create a customer, or update the fields given of an existing one."""
    from flight_fees.lib.ops.registry import add_customer

    values = {
        "code": code, "name": name, "address": address, "tax_id": tax_id,
        "billing_frequency": frequency, "week_end_day": week_end_day,
        "billing_currency": currency, "payment_terms_days": terms,
    }  # fmt: skip
    with registry_errors(2):
        result = add_customer(open_engine(migrated=True), values, actor=actor_of(actor))
    state = "created" if result.created else "updated" if result.updated else "unchanged"
    wide_console(highlight=False).print(f"customer {code.strip()} {state}")


@customers_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the customers with their billing terms and number of aircraft."""
    from flight_fees.lib.ops.registry_queries import list_customers

    customers = list_customers(open_engine(migrated=True))
    console = wide_console(highlight=False, soft_wrap=True)
    if as_json:
        typer.echo(_json([asdict(c) for c in customers]))
        return
    if not customers:
        console.print("no customers (add one: flight-fees customers add / import)")
        return
    table = Table(title=f"{len(customers)} customer(s)")
    for col in (
        "code",
        "name",
        "tax id",
        "frequency",
        "week ends",
        "currency",
        "terms",
        "aircraft",
    ):
        table.add_column(col, justify="right" if col in ("terms", "aircraft") else "left")
    for c in customers:
        table.add_row(
            escape(c.code), escape(c.name), escape(c.tax_id or "-"), c.billing_frequency,
            c.week_end_day if c.billing_frequency == "weekly" else "-", c.billing_currency,
            f"{c.payment_terms_days} d", str(c.aircraft),
        )  # fmt: skip
    console.print(table)


@customers_app.command("show")
def show_command(
    code: Annotated[str, typer.Argument(help="Customer code.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a customer, its aircraft and their declared MTOWs."""
    from flight_fees.lib.ops.registry_queries import customer_detail

    with registry_errors():
        customer, aircraft = customer_detail(open_engine(migrated=True), code)
    if as_json:
        typer.echo(_json({**asdict(customer), "fleet": [asdict(a) for a in aircraft]}))
        return
    console = wide_console(highlight=False, soft_wrap=True)
    console.print(f"[bold]{escape(customer.code)}[/]  {escape(customer.name)}")
    for label, value in (
        ("address", customer.address), ("tax id", customer.tax_id),
        ("billing", f"{customer.billing_frequency}"
         + (f", weeks end on {customer.week_end_day}"
            if customer.billing_frequency == "weekly" else "")),
        ("currency", customer.billing_currency),
        ("terms", f"{customer.payment_terms_days} days"),
    ):  # fmt: skip
        console.print(f"{label:<9} {escape(str(value or '-'))}")
    from flight_fees.cli.aircraft import aircraft_table

    console.print(aircraft_table(aircraft) if aircraft else "no aircraft")


@customers_app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: code,name,address,tax_id,billing_frequency,week_end_day,"
            "billing_currency,payment_terms_days."
        ),
    ],
    skip_invalid: SkipOption = False,
    actor: ActorOption = None,
) -> None:
    """Import customers from a CSV file in one transaction (nothing when a row is bad)."""
    from flight_fees.lib.ops.registry import import_customers

    with registry_errors():
        result = import_customers(
            open_engine(migrated=True), file, actor=actor_of(actor), skip_invalid=skip_invalid
        )
    print_import(result, "customers", str(file))
