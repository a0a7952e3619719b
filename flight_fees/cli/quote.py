"""``flight-fees quote``: the charge of one zone visit, from the command line.

The lead registers :func:`quote_command` in the main app (``app.command("quote")``).
Errors (unknown zone, bad date, unreadable or invalid tariff file) are reported as one line
on stderr with exit code 1 (2 for malformed options), never as a traceback.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.table import Table

from flight_fees.cli.common import SafeConsole, fail
from flight_fees.lib.charging.reference import tariffs_in_force
from flight_fees.lib.charging.tariffs import Quote, quote
from flight_fees.lib.core.money import CategorizedError, InvalidAmount, format_money, to_decimal

__all__ = ["AirspaceClassOption", "CategoryOption", "quote_command"]


class AirspaceClassOption(StrEnum):
    enroute = "enroute"
    oceanic = "oceanic"


class CategoryOption(StrEnum):
    overflight = "overflight"
    international = "international"
    domestic = "domestic"
    member = "member"


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (expected YYYY-MM-DD)", param_hint="'--date'"
        ) from None


def _parse_number(value: str, option: str) -> Decimal:
    try:
        return to_decimal(value, what=option)
    except InvalidAmount:
        raise typer.BadParameter(f"{value!r} is not a number", param_hint=f"'{option}'") from None


def _fail(message: str) -> NoReturn:
    """The convention of every command (:func:`flight_fees.cli.common.fail`)."""
    fail(message, 1)


def _show(value: Decimal) -> str:
    """A Decimal for display: at most 8 decimals (JSON output keeps every digit)."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        return f"{value.quantize(Decimal('1e-8'))}..."
    return str(value)


def _table(result: Quote) -> Table:
    table = Table(
        title=f"Charge in zone {result.zone_id} on {result.on_date.isoformat()}",
        show_header=False,
    )
    table.add_column("item", style="bold")
    table.add_column("value")

    def add(label: str, value: object) -> None:
        if value is not None:
            table.add_row(label, _show(value) if isinstance(value, Decimal) else str(value))

    details = result.details
    add("Tariff", f"{result.tariff_id} version {result.tariff_version} ({result.formula})")
    if result.sample:
        add("Sample", "yes: the unit rate is not a published rate")
    add("Currency", result.currency)
    add("MTOW (t)", details.get("mtow_t"))
    if "distance_charged" in details:
        add("Distance charged", f"{details['distance_charged']} {details['distance_unit']}")
    add("Unit rate", result.unit_rate)
    add("Distance factor", result.distance_factor)
    add("Weight factor", result.weight_factor)
    add("Service units", result.service_units)
    for name, amount in result.components:
        add(f"Component {name}", amount)
    add("Multiplier", f"{result.multiplier} ({result.inputs.flight_category})")
    add("Exemption", result.exemption)
    if result.monthly_invoice_threshold is not None:
        add(
            "Monthly invoice threshold",
            format_money(result.monthly_invoice_threshold, result.currency),
        )
    table.add_row("Amount", f"[bold]{format_money(result.amount, result.currency)}[/]")
    return table


def quote_command(
    zone: Annotated[str, typer.Option("--zone", help="Charging zone id, e.g. LF, VTBB, US.")],
    on_date: Annotated[str, typer.Option("--date", help="UTC day of the flight, YYYY-MM-DD.")],
    distance_km: Annotated[
        str, typer.Option("--distance-km", help="Great-circle km between zone entry and exit.")
    ],
    mtow_kg: Annotated[str, typer.Option("--mtow-kg", help="Maximum take-off mass in kg.")],
    takeoffs: Annotated[
        int, typer.Option("--takeoffs", min=0, help="Take-offs inside the zone.")
    ] = 0,
    landings: Annotated[
        int, typer.Option("--landings", min=0, help="Landings inside the zone.")
    ] = 0,
    airspace_class: Annotated[
        AirspaceClassOption,
        typer.Option("--class", help="Airspace class (distance_class tariffs)."),
    ] = AirspaceClassOption.enroute,
    flight_category: Annotated[
        CategoryOption,
        typer.Option("--flight-category", "--category", help="Flight category (multipliers)."),
    ] = CategoryOption.overflight,
    fir_crossings: Annotated[
        int, typer.Option("--fir-crossings", min=0, help="FIR crossings of the visit.")
    ] = 1,
    tariffs: Annotated[
        Path | None, typer.Option("--tariffs", help="Tariff YAML file (default: shipped).")
    ] = None,
    unit_rates: Annotated[
        Path | None,
        typer.Option("--unit-rates", help="CSV of monthly unit rates (zone,month,rate,currency)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the quote as JSON.")] = False,
    flags: Annotated[
        list[str] | None,
        typer.Option("--flag", help="Flight flag (state, military, search_and_rescue, training)."),
    ] = None,
) -> None:
    """Quote the route charge of one visit of a charging zone."""
    day = _parse_date(on_date)
    distance = _parse_number(distance_km, "--distance-km")
    mtow = _parse_number(mtow_kg, "--mtow-kg")
    try:
        # the rates the pipeline bills with: imported unit rates apply unless --unit-rates
        tariff_set = tariffs_in_force(tariffs, unit_rates)
        result = quote(
            tariff_set,
            zone,
            day,
            distance_km=distance,
            mtow_kg=mtow,
            takeoffs=takeoffs,
            landings=landings,
            airspace_class=airspace_class.value,
            flight_category=flight_category.value,
            flags=frozenset(flags or ()),
            fir_crossings=fir_crossings,
        )
    except CategorizedError as exc:
        raise _fail(str(exc)) from None

    if as_json:
        typer.echo(json.dumps({"zone": result.zone_id, **result.to_dict()}, indent=2))
        return
    SafeConsole(highlight=False).print(_table(result))
