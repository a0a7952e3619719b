"""Tests of the ``quote`` command (registered here on a throwaway Typer app)."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Context, Decimal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from flight_fees.cli.quote import quote_command

CTX = Context(prec=34)


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    application = typer.Typer()
    application.command("quote")(quote_command)

    @application.callback()
    def _root() -> None:
        """Test root (keeps 'quote' a sub-command)."""

    return application


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(app: typer.Typer, runner: CliRunner, *args: str):  # noqa: ANN201
    return runner.invoke(app, ["quote", *args])


def test_json_vtbb(app: typer.Typer, runner: CliRunner) -> None:
    result = run(
        app,
        runner,
        "--zone",
        "VTBB",
        "--date",
        "2025-05-01",
        "--distance-km",
        "1000",
        "--mtow-kg",
        "250000",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # sqrt(250 / 100) x (1000 / 250) x 3500 THB x 1.45 (overflight)
    expected = (Decimal("2.5").sqrt(CTX) * 4 * 3500 * Decimal("1.45")).quantize(
        Decimal("0.01"), ROUND_HALF_UP
    )
    assert data["amount"] == str(expected)
    assert data["currency"] == "THB"
    assert data["zone"] == "VTBB"
    assert data["tariff_version"] == "2024-01"


def test_json_us_oceanic_and_flags(app: typer.Typer, runner: CliRunner) -> None:
    base = ("--zone", "us", "--date", "2024-02-10", "--distance-km", "1852", "--mtow-kg", "80000")
    oceanic = run(app, runner, *base, "--class", "oceanic", "--json")
    assert oceanic.exit_code == 0, oceanic.output
    assert json.loads(oceanic.stdout)["amount"] == str(Decimal("26.51") * 10)
    military = run(app, runner, *base, "--flag", "military", "--json")
    data = json.loads(military.stdout)
    assert (data["amount"], data["exemption"]) == ("0.00", "military")
    landing = run(app, runner, *base, "--landings", "1", "--json")
    assert json.loads(landing.stdout)["exemption"] == "departure_or_arrival_in_zone"


def test_table_output(app: typer.Typer, runner: CliRunner) -> None:
    result = run(
        app,
        runner,
        "--zone",
        "LF",
        "--date",
        "2025-05-01",
        "--distance-km",
        "500",
        "--mtow-kg",
        "70000",
        "--takeoffs",
        "1",
        "--landings",
        "1",
    )
    assert result.exit_code == 0, result.output
    # shipped sample rate 70.8 x 4.60 x 1.18
    expected = (Decimal("70.8") * Decimal("4.60") * Decimal("1.18")).quantize(Decimal("0.01"))
    assert f"{expected:,} EUR" in result.stdout
    assert "4.60" in result.stdout and "1.18" in result.stdout
    assert "not a published rate" in result.stdout


def test_custom_tariffs_and_unit_rates(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    tariffs = tmp_path / "tariffs.yaml"
    tariffs.write_text(
        "zones:\n  XE:\n    currency: EUR\n    versions:\n"
        "      - {valid_from: 2025-01-01, formula: {type: distance_weight, unit_rate: 50}}\n",
        encoding="utf-8",
    )
    rates = tmp_path / "rates.csv"
    rates.write_text("zone,month,rate,currency\nXE,2025-02,55.5,EUR\n", encoding="utf-8")
    args = ("--zone", "XE", "--distance-km", "200", "--mtow-kg", "50000", "--tariffs", str(tariffs))
    january = run(app, runner, *args, "--date", "2025-01-31", "--unit-rates", str(rates), "--json")
    february = run(app, runner, *args, "--date", "2025-02-01", "--unit-rates", str(rates), "--json")
    assert json.loads(january.stdout)["amount"] == "100.00"  # 50 x 2.00 x 1.00
    assert json.loads(february.stdout)["amount"] == "111.00"  # 55.5 x 2.00 x 1.00
    assert json.loads(february.stdout)["tariff_version"] == "2025-02"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--zone", "QQ", "--date", "2025-05-01"), 1, "unknown charging zone 'QQ'"),
        (("--zone", "LF", "--date", "2025-02-30"), 2, "is not a date (expected YYYY-MM-DD)"),
        (("--zone", "LF", "--date", "2018-05-01"), 1, "no tariff version effective on 2018-05-01"),
        (("--zone", "LF", "--date", "2025-05-01", "--flag", "vip"), 1, "unknown flight flag"),
        (
            ("--zone", "LF", "--date", "2025-05-01", "--tariffs", "/no/such.yaml"),
            1,
            "cannot read tariff file",
        ),
    ],
)
def test_errors_without_traceback(
    app: typer.Typer, runner: CliRunner, args: tuple[str, ...], code: int, message: str
) -> None:
    result = run(app, runner, *args, "--distance-km", "500", "--mtow-kg", "70000")
    assert result.exit_code == code
    assert message in " ".join(result.output.split())  # rich may wrap lines
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_invalid_tariff_file(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("zones:\n  XE:\n    currency: EUR\n    versions: []\n", encoding="utf-8")
    result = run(
        app,
        runner,
        "--zone",
        "XE",
        "--date",
        "2025-05-01",
        "--distance-km",
        "1",
        "--mtow-kg",
        "1",
        "--tariffs",
        str(bad),
    )
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "bad.yaml: zone XE: field versions: must list at least one version" in text
    assert "Traceback" not in result.output


def test_bad_number(app: typer.Typer, runner: CliRunner) -> None:
    result = run(
        app,
        runner,
        "--zone",
        "LF",
        "--date",
        "2025-05-01",
        "--distance-km",
        "far",
        "--mtow-kg",
        "1",
    )
    assert result.exit_code == 2
    assert "'far' is not a number" in " ".join(result.output.split())


def test_flight_category_option_and_its_short_alias(app: typer.Typer, runner: CliRunner) -> None:
    """``--flight-category`` sets the multiplier's category; ``--category`` is the same option."""
    common = ["--zone", "VTBB", "--date", "2025-05-01", "--distance-km", "1000"]
    common += ["--mtow-kg", "250000", "--json"]
    amounts = {}
    for option, value in [("--flight-category", "domestic"), ("--category", "domestic")]:
        result = run(app, runner, *common, option, value)
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["inputs"]["category"] == "domestic"
        amounts[option] = data["amount"]
    overflight = json.loads(run(app, runner, *common).stdout)
    assert amounts["--flight-category"] == amounts["--category"] != overflight["amount"]
