"""The reference data in force: the shipped (or configured) tariffs and FX rates, overlaid by
the rates an administrator imported with ``flight-fees rates import`` (kept under
``<home>/reference``). One rule for every entry point: the pipeline, the invoicing, the CLI.
"""

from __future__ import annotations

from pathlib import Path

from flight_fees.lib.charging.fx import FxRates, load_fx_rates
from flight_fees.lib.charging.tariffs import Tariffs, load_tariffs, load_unit_rates_csv
from flight_fees.lib.core.settings import DATA_DIR, home_dir

#: FX rates used when neither a file is configured nor rates were imported
SAMPLE_FX_RATES = DATA_DIR / "fx_rates_sample.csv"


def imported_rates_file(name: str, home: Path | None = None) -> Path | None:
    """``<home>/reference/<name>`` (``unit_rates.csv``, ``fx_rates.csv``) when it exists."""
    path = (home or home_dir()) / "reference" / name
    return path if path.exists() else None


def tariffs_in_force(
    tariffs_path: str | Path | None = None,
    unit_rates_csv: str | Path | None = None,
    *,
    home: Path | None = None,
) -> Tariffs:
    """The tariffs file (default: the shipped ``tariffs.yaml``) with the monthly unit rates of
    ``unit_rates_csv``, else of the imported ``unit_rates.csv``, else as shipped."""
    loaded = load_tariffs(tariffs_path)
    rates = unit_rates_csv or imported_rates_file("unit_rates.csv", home)
    return load_unit_rates_csv(rates, loaded) if rates else loaded


def fx_rates_path(fx_rates_path: str | Path | None = None, *, home: Path | None = None) -> Path:
    """The FX rates file in force: the configured one, else the imported ``fx_rates.csv``,
    else the shipped sample."""
    if fx_rates_path:
        return Path(fx_rates_path)
    return imported_rates_file("fx_rates.csv", home) or SAMPLE_FX_RATES


def fx_rates_in_force(fx_path: str | Path | None = None, *, home: Path | None = None) -> FxRates:
    """:func:`load_fx_rates` of :func:`fx_rates_path`."""
    return load_fx_rates(fx_rates_path(fx_path, home=home))
