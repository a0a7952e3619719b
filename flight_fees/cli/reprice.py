"""``flight-fees reprice``: what a past period would have billed under other tariffs, unit
rates or FX rates (:func:`flight_fees.lib.charging.repricing.reprice_period`); nothing is
written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from flight_fees.cli.common import fail, open_engine, parse_day, wide_console


def reprice_command(
    day_from: Annotated[str, typer.Option("--from", help="First UTC day (YYYY-MM-DD).")],
    day_to: Annotated[str, typer.Option("--to", help="Last UTC day (inclusive).")],
    tariffs: Annotated[
        Path | None, typer.Option("--tariffs", help="Alternative tariff YAML file.")
    ] = None,
    unit_rates: Annotated[
        Path | None,
        typer.Option(
            "--unit-rates", help="Alternative monthly unit rates (zone,month,rate,currency)."
        ),
    ] = None,
    fx: Annotated[Path | None, typer.Option("--fx", help="Alternative FX rate file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="Write an HTML report (maps linked) here.")
    ] = None,
    lines: Annotated[
        bool, typer.Option("--lines/--no-lines", help="With --json: every line too.")
    ] = True,
) -> None:
    """Reprice a past period's fee lines under other tariffs, unit rates or FX (no writes)."""
    from flight_fees.lib.charging.repricing import reprice_period
    from flight_fees.lib.charging.scenario import current_pricing, scenario_pricing
    from flight_fees.lib.core.money import CategorizedError
    from flight_fees.lib.documents.reports import reprice_html

    start, end = parse_day(day_from, "--from"), parse_day(day_to, "--to")
    if start > end:
        raise typer.BadParameter(f"--from {start} is after --to {end}", param_hint="'--from'")
    if tariffs is None and unit_rates is None and fx is None:
        raise typer.BadParameter(
            "give the scenario: --tariffs FILE, --unit-rates FILE or --fx FILE",
            param_hint="'--tariffs'",
        )
    try:
        current = current_pricing()
        scenario = scenario_pricing(tariffs_path=tariffs, unit_rates_csv=unit_rates, fx_path=fx)
    except (CategorizedError, OSError, ValueError) as exc:
        fail(f"scenario: {exc}")
    report = reprice_period(open_engine(migrated=True), start, end, scenario, current=current)
    if html_path is not None:
        html_path.write_text(reprice_html(report), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(report.to_dict(lines=lines), indent=1))
        return
    _print(report, html_path)


def _print(report: Any, html_path: Path | None) -> None:
    from flight_fees.lib.core.money import format_money

    console = wide_console(highlight=False, soft_wrap=True)
    console.print(
        f"{len(report.lines)} fee line(s) of {report.day_from} to {report.day_to}, "
        f"{len(report.changed)} changed; nothing written"
    )
    for title, frame, key in (
        ("per zone", report.by_zone(), "zone_id"),
        ("per customer", report.by_customer(), "customer"),
        ("totals", report.totals(), None),
    ):
        table = Table(title=title)
        for col in ([key] if key else []) + ["lines", "changed", "old", "new", "difference"]:
            table.add_column(col, justify="left" if col == key else "right")
        for row in frame.to_dict("records"):
            ccy = row["billing_currency"]
            table.add_row(
                *([escape(str(row[key]))] if key else []), str(row["lines"]),
                str(row["changed_lines"]), format_money(row["old_amount"], ccy),
                format_money(row["new_amount"], ccy), format_money(row["difference"], ccy),
            )  # fmt: skip
        console.print(table)
    for fid, message in sorted(report.failures.items())[:20]:
        console.print(f"flight {fid} cannot be priced under the scenario: {escape(message)}")
    if html_path is not None:
        console.print(f"report: {html_path}")
