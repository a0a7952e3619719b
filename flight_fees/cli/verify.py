"""``flight-fees verify``: check an authority's route-charges bill against our tracks
(:func:`flight_fees.lib.billing.verification.verify_bill`)."""

from __future__ import annotations

import json
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from flight_fees.cli.common import EXIT_USAGE, err_console, fail, open_engine, wide_console


class BillFormat(StrEnum):
    generic = "generic"
    crco = "crco"


def decimal_option(value: str | None, option: str) -> Decimal | None:
    """``value`` as a Decimal (a usage error otherwise)."""
    from flight_fees.lib.core.money import InvalidAmount, to_decimal

    if value is None:
        return None
    try:
        return to_decimal(value, what=option)
    except InvalidAmount:
        raise typer.BadParameter(f"{value!r} is not a number", param_hint=f"'{option}'") from None


def _columns(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, ours = item.partition("=")
        if not sep or not name.strip() or not ours.strip():
            raise typer.BadParameter(
                f"{item!r} is not BILL_HEADER=OUR_COLUMN", param_hint="'--column'"
            )
        out[name.strip()] = ours.strip()
    return out


def verify_command(
    bill: Annotated[Path, typer.Argument(help="The bill, a CSV file.", show_default=False)],
    bill_format: Annotated[
        BillFormat, typer.Option("--format", help="Column names: generic or crco.")
    ] = BillFormat.generic,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="Write an HTML report (maps linked) here.")
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option("--column", help="Rename a bill header: BILL_HEADER=our_column."),
    ] = None,
    customer: Annotated[
        list[str] | None,
        typer.Option("--customer", help="Customer code the bill is for (default: of its flights)."),
    ] = None,
    zone: Annotated[
        list[str] | None,
        typer.Option("--zone", help="Zone the bill covers (default: the zones it bills)."),
    ] = None,
    amount_tolerance: Annotated[
        str, typer.Option("--amount-tolerance", help="Accepted |billed - expected|.")
    ] = "0.01",
    distance_tolerance: Annotated[
        str, typer.Option("--distance-tolerance-km", help="Accepted distance difference.")
    ] = "1",
    mtow_tolerance: Annotated[
        str, typer.Option("--mtow-tolerance-kg", help="Accepted MTOW difference.")
    ] = "0",
    unit_rate_tolerance: Annotated[
        str, typer.Option("--unit-rate-tolerance", help="Accepted unit-rate difference.")
    ] = "0",
    tariffs: Annotated[
        Path | None, typer.Option("--tariffs", help="Tariff YAML (default: as the pipeline).")
    ] = None,
    unit_rates: Annotated[
        Path | None, typer.Option("--unit-rates", help="Monthly unit-rate CSV.")
    ] = None,
    fx: Annotated[Path | None, typer.Option("--fx", help="FX rate file.")] = None,
) -> None:
    """Verify an authority's route-charges bill against our tracks and fee lines."""
    from flight_fees.lib.billing.verification import BillError, Tolerances, read_bill, verify_bill
    from flight_fees.lib.charging.scenario import current_pricing
    from flight_fees.lib.core.money import CategorizedError
    from flight_fees.lib.documents.reports import verification_html

    try:
        tolerances = Tolerances(
            amount=decimal_option(amount_tolerance, "--amount-tolerance"),
            distance_km=decimal_option(distance_tolerance, "--distance-tolerance-km"),
            mtow_kg=decimal_option(mtow_tolerance, "--mtow-tolerance-kg"),
            unit_rate=decimal_option(unit_rate_tolerance, "--unit-rate-tolerance"),
        )
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        lines = read_bill(bill, format=bill_format.value, columns=_columns(column))
    except BillError as exc:  # one error line per bad value
        for message in exc.errors[:-1]:
            err_console.print(
                f"[red]error:[/red] {escape(f'{bill}: {message}')}", highlight=False, soft_wrap=True
            )
        fail(f"{bill}: {exc.errors[-1]}")
    try:
        reference = current_pricing(tariffs, unit_rates, fx)
    except (CategorizedError, OSError, ValueError) as exc:
        fail(f"reference data: {exc}")
    engine = open_engine(migrated=True)
    report = verify_bill(
        engine,
        lines,
        reference,
        tolerances=tolerances,
        customers=customer,
        zones=zone,
        source=str(bill),
    )
    if html_path is not None:
        html_path.write_text(verification_html(report), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=1))
        return
    _print(report, html_path)


def _print(report: object, html_path: Path | None) -> None:
    from flight_fees.lib.core.money import format_money

    console = wide_console(highlight=False, soft_wrap=True)
    findings = report.findings  # type: ignore[attr-defined]
    table = Table(title=f"{len(findings)} finding(s) on {report.bill_lines} billed line(s)")  # type: ignore[attr-defined]
    for col in ("line", "flight", "day", "callsign", "zone", "cause", "billed", "expected",
                "difference"):  # fmt: skip
        table.add_column(
            col, justify="right" if col in ("billed", "expected", "difference") else "left"
        )
    for f in findings:
        table.add_row(
            "-" if f.line is None else str(f.line), str(f.flight_id or "-"), str(f.day or "-"),
            escape(f.callsign or "-"), f.zone, f.cause,
            format_money(f.billed_amount, f.currency), format_money(f.expected_amount, f.currency),
            format_money(f.difference, f.currency),
        )  # fmt: skip
    console.print(table)
    for ccy, t in report.by_currency().items():  # type: ignore[attr-defined]
        console.print(
            f"{ccy}: billed {format_money(t['billed'], ccy)}, expected "
            f"{format_money(t['expected'], ccy)}; over-billed {format_money(t['over'], ccy)}, "
            f"under-billed {format_money(t['under'], ccy)}"
        )
    if html_path is not None:
        console.print(f"report: {html_path}")
