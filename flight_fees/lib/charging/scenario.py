"""What fee lines are priced with: the reference data in force
(:mod:`flight_fees.lib.charging.reference`) or a what-if scenario that replaces part of it.

A :class:`PricingReference` is a tariff set and an FX set, with where each came from;
:func:`current_pricing` is what the pipeline bills with, :func:`scenario_pricing` an
alternative for :func:`flight_fees.lib.charging.repricing.reprice_period`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flight_fees.lib.charging.fx import FxRates, load_fx_rates
from flight_fees.lib.charging.reference import (
    fx_rates_path,
    imported_rates_file,
    tariffs_in_force,
)
from flight_fees.lib.charging.tariffs import Tariffs, load_unit_rates_csv

__all__ = ["PricingReference", "current_pricing", "scenario_pricing"]


@dataclass(frozen=True)
class PricingReference:
    """Tariffs and FX rates that price fee lines; ``sources``: ``(what, file)`` pairs."""

    tariffs: Tariffs
    fx: FxRates
    sources: tuple[tuple[str, str], ...] = ()


def _tariff_sources(
    tariffs_path: str | Path | None, unit_rates_csv: str | Path | None, home: Path | None
) -> list[tuple[str, str]]:
    sources = [("tariffs", str(tariffs_path) if tariffs_path else "shipped tariffs.yaml")]
    unit_rates = unit_rates_csv or imported_rates_file("unit_rates.csv", home)
    if unit_rates:
        sources.append(("unit_rates", str(unit_rates)))
    return sources


def current_pricing(
    tariffs_path: str | Path | None = None,
    unit_rates_csv: str | Path | None = None,
    fx_path: str | Path | None = None,
    *,
    home: Path | None = None,
) -> PricingReference:
    """The reference data in force (a path given replaces its default, as for the
    pipeline's ``reference`` resource)."""
    fx_file = fx_rates_path(fx_path, home=home)
    return PricingReference(
        tariffs_in_force(tariffs_path, unit_rates_csv, home=home),
        load_fx_rates(fx_file),
        (*_tariff_sources(tariffs_path, unit_rates_csv, home), ("fx", str(fx_file))),
    )


def scenario_pricing(
    *,
    tariffs_path: str | Path | None = None,
    unit_rates_csv: str | Path | None = None,
    fx_path: str | Path | None = None,
    base: tuple[str | Path | None, str | Path | None, str | Path | None] = (None, None, None),
    home: Path | None = None,
) -> PricingReference:
    """An alternative to the reference data in force: ``tariffs_path`` replaces the tariff
    file (the monthly unit rates in force are still laid over it), ``unit_rates_csv`` rows
    are laid over that last (a row replaces its zone's rate for its month; other months and
    zones keep theirs), ``fx_path`` replaces the FX rates. ``base``: the configured
    ``(tariffs_path, unit_rates_csv, fx_path)`` in force (None: the defaults)."""
    if tariffs_path is None and unit_rates_csv is None and fx_path is None:
        raise ValueError("a scenario needs a tariff file, a unit-rate file or an FX file")
    base_tariffs, base_unit_rates, base_fx = base
    current_file = tariffs_path or base_tariffs
    tariffs = tariffs_in_force(current_file, base_unit_rates, home=home)
    sources = _tariff_sources(current_file, base_unit_rates, home)
    if unit_rates_csv is not None:
        tariffs = load_unit_rates_csv(unit_rates_csv, tariffs)
        sources.append(("scenario_unit_rates", str(unit_rates_csv)))
    fx_file = fx_rates_path(fx_path or base_fx, home=home)
    return PricingReference(tariffs, load_fx_rates(fx_file), (*sources, ("fx", str(fx_file))))
