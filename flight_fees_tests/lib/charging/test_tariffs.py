"""Tests of the tariff engine: formulas, bands, rounding, dates, exemptions, validation,
unit-rate CSV overrides. Expected amounts are computed here from the published formulas."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Context, Decimal
from pathlib import Path

import pytest

from flight_fees.lib.charging.tariffs import (
    QuoteInputError,
    TariffNotFound,
    Tariffs,
    TariffValidationError,
    load_tariffs,
    load_unit_rates_csv,
    parse_tariffs,
    quote,
)

CTX = Context(prec=34)
CENT = Decimal("0.01")
NM_KM = Decimal("1.852")

EUROCONTROL_ZONES = [
    "EB",
    "ED",
    "EE",
    "EF",
    "EG",
    "EH",
    "EI",
    "EK",
    "EN",
    "EP",
    "ES",
    "EV",
    "EY",
    "GC",
    "LA",
    "LB",
    "LC",
    "LD",
    "LE",
    "LF",
    "LG",
    "LH",
    "LI",
    "LJ",
    "LK",
    "LL",
    "LM",
    "LO",
    "LP",
    "LQ",
    "LR",
    "LS",
    "LT",
    "LU",
    "LW",
    "LY",
    "LZ",
    "UD",
    "UG",
    "UK",
    "LPPO",
    "EGGX",
]


def sqrt(value: Decimal | int | str) -> Decimal:
    return Decimal(value).sqrt(CTX)


def money(value: Decimal, mode: str = ROUND_HALF_UP) -> Decimal:
    return value.quantize(CENT, rounding=mode)


def write(tmp_path: Path, text: str, name: str = "tariffs.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shipped() -> Tariffs:
    return load_tariffs()


ECTL_YAML = """\
schema_version: 1
zones:
  XE:
    currency: EUR
    fx_policy: previous_month_average
    exemptions: {below_mtow_kg: 2000, flags: [state, military]}
    versions:
      - version: "2024"
        valid_from: 2024-01-01
        valid_to: 2025-01-01
        formula: &f
          type: distance_weight
          unit_rate: 72.35
          distance_divisor: 100
          deduction_per_movement: 20
          weight_divisor_t: 50
          weight_exponent: 0.5
        rounding: &r
          mtow: {places: 1, mode: half_up}
          distance_factor: {places: 2, mode: FACTOR_MODE}
          weight_factor: {places: 2, mode: FACTOR_MODE}
      - version: "2025"
        valid_from: 2025-01-01
        formula: {<<: *f, unit_rate: 80.00}
        rounding: *r
"""


def ectl(tmp_path: Path, mode: str = "half_up") -> Tariffs:
    return load_tariffs(write(tmp_path, ECTL_YAML.replace("FACTOR_MODE", mode)))


# --- distance_weight: EUROCONTROL ------------------------------------------------------------


@pytest.mark.parametrize(
    ("mtow_kg", "factor"),
    [(2_000, "0.20"), (12_500, "0.50"), (50_000, "1.00"), (200_000, "2.00"), (70_000, "1.18")],
)
@pytest.mark.parametrize("zone", ["LF", "ED", "EGGX"])
def test_eurocontrol_weight_factors(shipped: Tariffs, zone: str, mtow_kg: int, factor: str) -> None:
    result = quote(shipped, zone, "2025-06-15", distance_km=100, mtow_kg=mtow_kg)
    assert result.weight_factor == Decimal(factor)
    assert str(result.weight_factor) == factor  # two decimals
    assert result.distance_factor == Decimal("1.00")


def test_eurocontrol_complete_example(tmp_path: Path) -> None:
    # 500 km great circle in the zone, one take-off and one landing, MTOW 70 t, rate 72.35
    tariffs = ectl(tmp_path)
    result = quote(
        tariffs, "XE", "2024-06-15", distance_km=500, mtow_kg=70_000, takeoffs=1, landings=1
    )
    distance_factor = ((Decimal(500) - 2 * 20) / 100).quantize(CENT, ROUND_HALF_UP)  # 4.60
    weight_factor = sqrt(Decimal("70.0") / 50).quantize(CENT, ROUND_HALF_UP)  # 1.18
    expected = money(Decimal("72.35") * distance_factor * weight_factor)
    assert distance_factor == Decimal("4.60") and weight_factor == Decimal("1.18")
    assert result.distance_factor == distance_factor
    assert result.weight_factor == weight_factor
    assert result.service_units == distance_factor * weight_factor
    assert result.unit_rate == Decimal("72.35")
    assert result.amount == expected == Decimal("392.72")
    assert result.currency == "EUR"
    assert result.tariff_version == "2024"
    assert result.fx_policy == "previous_month_average"
    assert result.exemption is None
    assert result.components == (
        ("route_charge", Decimal("72.35") * distance_factor * weight_factor),
    )


@pytest.mark.parametrize(
    ("mode", "decimal_mode"), [("half_up", ROUND_HALF_UP), ("truncate", ROUND_DOWN)]
)
def test_eurocontrol_factor_rounding_modes(tmp_path: Path, mode: str, decimal_mode: str) -> None:
    tariffs = ectl(tmp_path, mode)
    # 517.5 km -> 5.175 ; 60 t -> sqrt(1.2) = 1.0954...
    result = quote(tariffs, "XE", "2024-03-01", distance_km="517.5", mtow_kg=60_000)
    distance_factor = (Decimal("517.5") / 100).quantize(CENT, decimal_mode)
    weight_factor = sqrt(Decimal("1.2")).quantize(CENT, decimal_mode)
    assert result.distance_factor == distance_factor
    assert result.weight_factor == weight_factor
    assert result.amount == money(Decimal("72.35") * distance_factor * weight_factor)
    expected_factors = {"half_up": ("5.18", "1.10"), "truncate": ("5.17", "1.09")}[mode]
    assert (str(distance_factor), str(weight_factor)) == expected_factors


@pytest.mark.parametrize(("mtow_kg", "tonnes"), [(70_049, "70.0"), (70_050, "70.1")])
def test_eurocontrol_mtow_to_one_decimal(tmp_path: Path, mtow_kg: int, tonnes: str) -> None:
    result = quote(ectl(tmp_path), "XE", "2024-03-01", distance_km=100, mtow_kg=mtow_kg)
    assert result.details["mtow_t"] == tonnes
    assert result.weight_factor == sqrt(Decimal(tonnes) / 50).quantize(CENT, ROUND_HALF_UP)


def test_deduction_never_makes_distance_negative(tmp_path: Path) -> None:
    result = quote(
        ectl(tmp_path), "XE", "2024-03-01", distance_km=30, mtow_kg=50_000, takeoffs=1, landings=1
    )
    assert result.distance_factor == 0
    assert result.amount == Decimal("0.00")
    assert result.exemption is None  # charged, just zero distance


# --- distance_weight: AEROTHAI (VTBB) ----------------------------------------------------------


def aerothai(mtow_t: Decimal, divisor: Decimal, distance_km: Decimal, multiplier: str) -> Decimal:
    """sqrt(MTOW / X) x (distance / 250) x 3,500 THB x multiplier, rounded to satang."""
    return money(sqrt(mtow_t / divisor) * (distance_km / 250) * 3500 * Decimal(multiplier))


@pytest.mark.parametrize(
    ("mtow_kg", "mtow_t", "divisor"),
    [
        (100_000, 100, Decimal(50)),  # X = 50 up to 100 t
        (150_000, 150, Decimal(75)),  # X = MTOW / 2 from 101 to 200 t
        (100_300, 101, Decimal("50.5")),  # 100.3 t rounds up to 101 t: second band
        (200_000, 200, Decimal(100)),  # 200 t: still X = MTOW / 2
        (200_200, 201, Decimal(100)),  # 201 t: X = 100
        (250_000, 250, Decimal(100)),  # X = 100 above 200 t
    ],
)
def test_vtbb_weight_bands(shipped: Tariffs, mtow_kg: int, mtow_t: int, divisor: Decimal) -> None:
    result = quote(shipped, "VTBB", "2025-05-01", distance_km=1000, mtow_kg=mtow_kg)
    assert result.details["mtow_t"] == str(mtow_t)
    assert result.weight_factor == sqrt(Decimal(mtow_t) / divisor)
    assert result.distance_factor == 4
    assert result.amount == aerothai(Decimal(mtow_t), divisor, Decimal(1000), "1.45")
    assert result.currency == "THB"
    assert result.multiplier == Decimal("1.45")


def test_vtbb_middle_band_is_sqrt2_constant(shipped: Tariffs) -> None:
    factors = {
        quote(shipped, "VTBB", "2025-05-01", distance_km=500, mtow_kg=kg).weight_factor
        for kg in (100_000, 120_000, 150_000, 199_000, 200_000)
    }
    assert factors == {sqrt(2)}


def test_vtbb_examples_by_hand(shipped: Tariffs) -> None:
    # 100 t, 1000 km overflight: sqrt(2) x 4 x 3500 x 1.45
    assert quote(shipped, "VTBB", "2025-05-01", distance_km=1000, mtow_kg=100_000).amount == (
        money(sqrt(2) * 4 * 3500 * Decimal("1.45"))
    )
    # 250 t: sqrt(2.5) x 4 x 3500 x 1.45
    assert quote(shipped, "VTBB", "2025-05-01", distance_km=1000, mtow_kg=250_000).amount == (
        money(sqrt("2.5") * 4 * 3500 * Decimal("1.45"))
    )


def test_vtbb_250_km_minimum(shipped: Tariffs) -> None:
    short = quote(shipped, "VTBB", "2025-05-01", distance_km=100, mtow_kg=50_000)
    assert short.distance_factor == 1
    assert short.amount == money(Decimal(3500) * Decimal("1.45"))  # sqrt(50/50) = 1
    # domestic: 300 km - 2 x 50 km = 200 km, raised to the 250 km minimum, x 0.75
    domestic = quote(
        shipped,
        "VTBB",
        "2025-05-01",
        distance_km=300,
        mtow_kg=50_000,
        takeoffs=1,
        landings=1,
        flight_category="domestic",
    )
    assert domestic.distance_factor == 1
    assert domestic.amount == money(Decimal(3500) * Decimal("0.75"))


def test_vtbb_rounds_distance_and_mtow_up(shipped: Tariffs) -> None:
    result = quote(shipped, "VTBB", "2025-05-01", distance_km="1000.2", mtow_kg=49_001)
    assert result.details["distance_rounded"] == "1001"
    assert result.details["mtow_t"] == "50"
    assert result.amount == aerothai(Decimal(50), Decimal(50), Decimal(1001), "1.45")
    # international: one landing, 50 km deducted, no multiplier
    landing = quote(
        shipped,
        "VTBB",
        "2025-05-01",
        distance_km=800,
        mtow_kg=80_000,
        landings=1,
        flight_category="international",
    )
    assert landing.amount == aerothai(Decimal(80), Decimal(50), Decimal(750), "1")


# --- distance_class: FAA -----------------------------------------------------------------------


def test_us_enroute_and_oceanic(shipped: Tariffs) -> None:
    enroute = quote(shipped, "US", "2024-02-10", distance_km=1852, mtow_kg=300_000)
    oceanic = quote(
        shipped, "US", "2024-02-10", distance_km=1852, mtow_kg=300_000, airspace_class="oceanic"
    )
    # 1852 km = 1000 NM = 10 x 100 NM
    assert enroute.amount == Decimal("61.75") * 10 == Decimal("617.50")
    assert oceanic.amount == Decimal("26.51") * 10 == Decimal("265.10")
    assert enroute.unit_rate == Decimal("61.75") and oceanic.unit_rate == Decimal("26.51")
    assert enroute.weight_factor is None  # no weight term
    assert enroute.currency == "USD"
    assert enroute.monthly_invoice_threshold == Decimal(400)
    assert enroute.components == (("enroute", Decimal("617.50")),)


def test_us_distance_in_nautical_miles(shipped: Tariffs) -> None:
    result = quote(shipped, "US", "2024-02-10", distance_km=500, mtow_kg=80_000)
    expected = money(Decimal(500) / NM_KM / 100 * Decimal("61.75"))
    assert result.amount == expected == Decimal("166.71")
    # independent of the MTOW
    heavy = quote(shipped, "US", "2024-02-10", distance_km=500, mtow_kg=400_000)
    assert heavy.amount == result.amount


@pytest.mark.parametrize(("takeoffs", "landings"), [(1, 0), (0, 1), (1, 1)])
def test_us_no_charge_when_taking_off_or_landing(
    shipped: Tariffs, takeoffs: int, landings: int
) -> None:
    result = quote(
        shipped,
        "US",
        "2024-02-10",
        distance_km=3000,
        mtow_kg=80_000,
        takeoffs=takeoffs,
        landings=landings,
    )
    assert result.amount == Decimal("0.00")
    assert result.exemption == "departure_or_arrival_in_zone"


def test_us_rates_start_2019(shipped: Tariffs) -> None:
    with pytest.raises(TariffNotFound, match="2018-12-31"):
        quote(shipped, "US", "2018-12-31", distance_km=1852, mtow_kg=80_000)
    assert quote(shipped, "US", "2019-01-01", distance_km=1852, mtow_kg=80_000).amount == Decimal(
        "617.50"
    )


def test_airspace_class_without_rate(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        zones:
          XC:
            currency: USD
            versions:
              - valid_from: 2024-01-01
                formula: {type: distance_class, rates: {enroute: 10}}
        """,
    )
    with pytest.raises(QuoteInputError, match="oceanic") as info:
        quote(
            load_tariffs(path),
            "XC",
            "2024-06-01",
            distance_km=1,
            mtow_kg=1,
            airspace_class="oceanic",
        )
    assert info.value.category == "invalid_quote_input"


# --- flat_weight_band: Somalia -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mtow_kg", "crossings", "fee"),
    [(5_700, 1, 40), (20_000, 1, 40), (20_000, 2, 40), (20_001, 1, 275), (300_000, 3, 275)],
)
def test_hcsm_bands_and_crossings(shipped: Tariffs, mtow_kg: int, crossings: int, fee: int) -> None:
    result = quote(
        shipped, "HCSM", "2025-01-10", distance_km=900, mtow_kg=mtow_kg, fir_crossings=crossings
    )
    assert result.amount == Decimal(fee + 10 * crossings)
    assert result.currency == "USD"
    assert dict(result.components) == {
        "weight_band_fee": Decimal(fee),
        "fir_crossing_fee": Decimal(10 * crossings),
    }


def test_flat_fee_per_fir_crossing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        zones:
          XF:
            currency: USD
            versions:
              - valid_from: 2024-01-01
                formula:
                  type: flat_weight_band
                  per: fir_crossing
                  bands: [{up_to_t: 5.7, fee: 12.5}, {up_to_t: null, fee: 80}]
        """,
    )
    tariffs = load_tariffs(path)
    assert quote(
        tariffs, "XF", "2024-06-01", distance_km=1, mtow_kg=5_700, fir_crossings=3
    ).amount == Decimal("37.50")
    assert quote(
        tariffs, "XF", "2024-06-01", distance_km=1, mtow_kg=5_701, fir_crossings=3
    ).amount == Decimal("240.00")


# --- multi_component -----------------------------------------------------------------------------

MULTI_YAML = """\
zones:
  XM:
    currency: EUR
    versions:
      - valid_from: 2024-01-01
        formula:
          type: multi_component
          distance_unit: km
          distance_divisor: 100
          bands:
            - {up_to_t: 5, fixed: 10, per_tonne: 2}
            - {up_to_t: 50, fixed: 20, per_tonne_distance: 0.15}
            - {up_to_t: null, fixed: 100, per_tonne: 1.5, weight_offset_t: 50, per_distance: 3}
        multipliers: {member: 0.5}
"""


@pytest.mark.parametrize(
    ("mtow_kg", "expected"),
    [
        # band 1: 10 + 2 x W
        (5_000, Decimal(10) + 2 * Decimal(5)),
        # band 2: 20 + 0.15 x W x D/100, D = 800 km
        (5_001, Decimal(20) + Decimal("0.15") * Decimal("5.001") * 8),
        (50_000, Decimal(20) + Decimal("0.15") * 50 * 8),
        # band 3: 100 + 1.5 x (W - 50) + 3 x D/100
        (80_000, Decimal(100) + Decimal("1.5") * 30 + 3 * 8),
    ],
)
def test_multi_component_bands(tmp_path: Path, mtow_kg: int, expected: Decimal) -> None:
    tariffs = load_tariffs(write(tmp_path, MULTI_YAML))
    result = quote(tariffs, "XM", "2024-06-01", distance_km=800, mtow_kg=mtow_kg)
    assert result.amount == money(expected)
    assert sum(amount for _, amount in result.components) == expected
    member = quote(
        tariffs, "XM", "2024-06-01", distance_km=800, mtow_kg=mtow_kg, flight_category="member"
    )
    assert member.amount == money(expected * Decimal("0.5"))


# --- effective dates -------------------------------------------------------------------------


def test_version_switch_at_midnight_utc(tmp_path: Path) -> None:
    tariffs = ectl(tmp_path)
    kwargs = {"distance_km": 100, "mtow_kg": 50_000}  # 1 service unit
    cases = {
        date(2024, 12, 31): "2024",
        date(2025, 1, 1): "2025",
        datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC): "2024",
        datetime(2025, 1, 1, 0, 0, 0, tzinfo=UTC): "2025",
        # 00:30 at UTC+01:00 is 23:30 UTC the day before
        datetime(2025, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))): "2024",
        "2025-01-01T00:00:00Z": "2025",
    }
    for on_date, version in cases.items():
        result = quote(tariffs, "XE", on_date, **kwargs)
        assert result.tariff_version == version, on_date
        assert result.amount == (Decimal("72.35") if version == "2024" else Decimal("80.00"))


def test_open_version_ends_at_next_version(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        zones:
          XD:
            currency: EUR
            versions:
              - {version: b, valid_from: 2025-07-01, formula: {type: distance_weight, unit_rate: 2}}
              - {version: a, valid_from: 2025-01-01, formula: {type: distance_weight, unit_rate: 1}}
        """,
    )
    zone = load_tariffs(path).zone("XD")
    assert [(v.version, v.valid_from, v.valid_to) for v in zone.versions] == [
        ("a", date(2025, 1, 1), date(2025, 7, 1)),
        ("b", date(2025, 7, 1), None),
    ]
    assert zone.version_on(date(2025, 6, 30)).version == "a"
    assert zone.version_on(date(2025, 7, 1)).version == "b"


def test_gap_and_unknown_zone(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        zones:
          XG:
            currency: EUR
            versions:
              - {valid_from: 2024-01-01, valid_to: 2024-06-01,
                 formula: {type: distance_weight, unit_rate: 1}}
              - {valid_from: 2025-01-01, formula: {type: distance_weight, unit_rate: 2}}
        """,
    )
    tariffs = load_tariffs(path)
    assert quote(tariffs, "XG", "2024-05-31", distance_km=100, mtow_kg=50_000).tariff_version == (
        "2024-01-01"
    )
    for day in ("2024-06-01", "2024-12-31", "2023-12-31"):
        with pytest.raises(TariffNotFound, match=f"zone XG: no tariff version effective on {day}"):
            quote(tariffs, "XG", day, distance_km=100, mtow_kg=50_000)
    with pytest.raises(TariffNotFound) as info:
        quote(tariffs, "QQ", "2024-05-31", distance_km=100, mtow_kg=50_000)
    assert info.value.category == "no_tariff"
    assert "QQ" in str(info.value)
    # zone ids are case-insensitive on lookup
    assert quote(tariffs, "xg", "2024-05-31", distance_km=100, mtow_kg=50_000).zone_id == "XG"


# --- exemptions ----------------------------------------------------------------------------------


def test_mtow_exemption_below_two_tonnes(shipped: Tariffs) -> None:
    light = quote(shipped, "LF", "2025-03-01", distance_km=400, mtow_kg=1_999)
    assert light.amount == Decimal("0.00")
    assert light.exemption == "mtow_below_2000_kg"
    assert light.components == ()
    two_tonnes = quote(shipped, "LF", "2025-03-01", distance_km=400, mtow_kg=2_000)
    assert two_tonnes.exemption is None
    assert two_tonnes.weight_factor == Decimal("0.20")
    assert two_tonnes.amount == money(Decimal("70.8") * Decimal("4.00") * Decimal("0.20"))


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (frozenset({"military"}), "military"),
        ("state, training", "state"),
        (["search_and_rescue"], "search_and_rescue"),
        ("TRAINING", "training"),
    ],
)
def test_flag_exemptions(shipped: Tariffs, flags: object, reason: str) -> None:
    result = quote(shipped, "ED", "2025-03-01", distance_km=400, mtow_kg=80_000, flags=flags)
    assert result.amount == 0
    assert result.exemption == reason


def test_flag_not_exempt_in_zone_is_charged(shipped: Tariffs) -> None:
    # the FAA tariff exempts state and military flights, not training flights
    training = quote(
        shipped, "US", "2025-03-01", distance_km=1852, mtow_kg=80_000, flags={"training"}
    )
    assert training.exemption is None
    assert training.amount == Decimal("617.50")
    military = quote(
        shipped, "US", "2025-03-01", distance_km=1852, mtow_kg=80_000, flags={"military"}
    )
    assert military.exemption == "military" and military.amount == 0


def test_category_exemption_and_bad_inputs(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        zones:
          XX:
            currency: EUR
            exemptions: {categories: [domestic]}
            versions: [{valid_from: 2024-01-01, formula: {type: distance_weight, unit_rate: 10}}]
        """,
    )
    tariffs = load_tariffs(path)
    domestic = quote(
        tariffs, "XX", "2024-02-01", distance_km=100, mtow_kg=50_000, flight_category="domestic"
    )
    assert (domestic.amount, domestic.exemption) == (Decimal("0.00"), "category_domestic")
    bad = [
        {"distance_km": -1, "mtow_kg": 1000},
        {"distance_km": 1, "mtow_kg": 0},
        {"distance_km": "abc", "mtow_kg": 1000},
        {"distance_km": 1, "mtow_kg": 1000, "flight_category": "cargo"},
        {"distance_km": 1, "mtow_kg": 1000, "flags": {"vip"}},
        {"distance_km": 1, "mtow_kg": 1000, "takeoffs": -1},
        {"distance_km": 1, "mtow_kg": 1000, "airspace_class": "arctic"},
    ]
    for kwargs in bad:
        with pytest.raises(QuoteInputError):
            quote(tariffs, "XX", "2024-02-01", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(QuoteInputError, match="on_date"):
        quote(tariffs, "XX", "2024-02-30", distance_km=1, mtow_kg=1000)


def test_quote_to_dict_is_json(shipped: Tariffs) -> None:
    result = quote(shipped, "VTBB", "2025-05-01", distance_km=1000, mtow_kg=150_000)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["amount"] == str(result.amount)
    assert Decimal(data["amount"]) == aerothai(Decimal(150), Decimal(75), Decimal(1000), "1.45")
    assert data["currency"] == "THB"
    assert data["tariff_id"] == "AEROTHAI-ENROUTE"
    assert data["tariff_version"] == "2024-01"
    assert data["inputs"]["mtow_kg"] == "150000"
    assert data["components"][0]["name"] == "route_charge"


# --- shipped data --------------------------------------------------------------------------------


def test_shipped_zones(shipped: Tariffs) -> None:
    assert set(EUROCONTROL_ZONES) | {"US", "VTBB", "HCSM"} <= set(shipped.zone_ids)
    for zone_id in EUROCONTROL_ZONES:
        zone = shipped.zone(zone_id)
        version = zone.version_on(date(2025, 6, 1))
        assert version.currency == "EUR"
        assert zone.fx_policy == "previous_month_average"
        assert version.sample is True  # not published rates
        assert zone.source and "sample value, not a published rate" in zone.source
        assert version.formula.type == "distance_weight"
    for zone_id in ("US", "VTBB", "HCSM"):
        zone = shipped.zone(zone_id)
        assert zone.source
        assert not zone.version_on(date(2025, 6, 1)).sample
    for zone_id in shipped.zone_ids:
        assert zone_id == zone_id.upper()


# --- YAML validation ------------------------------------------------------------

VALID_VTBB = """\
zones:
  VTBB:
    currency: THB
    versions:
      - version: "2024-01"
        valid_from: 2024-01-01
        formula:
          type: distance_weight
          unit_rate: 3500
          weight_bands:
            - {up_to_t: 100, divisor_t: 50}
            - {up_to_t: 200, divisor_mtow_ratio: 0.5}
            - {up_to_t: null, divisor_t: 100}
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "unit_rate: 3500",
            "unit_rate: -5",
            "tariffs.yaml: zone VTBB version 2024-01: field formula.unit_rate: "
            "must be a positive number",
        ),
        (
            "unit_rate: 3500",
            "unit_rate: lots",
            "zone VTBB version 2024-01: field formula.unit_rate: must be a positive number",
        ),
        (
            "unit_rate: 3500",
            "unit_rat: 3500",
            "zone VTBB version 2024-01: field formula.unit_rat: unknown field",
        ),
        (
            "type: distance_weight",
            "type: distance_wieght",
            "zone VTBB version 2024-01: field formula.type: must be one of",
        ),
        (
            "        valid_from: 2024-01-01\n",
            "",
            "zone VTBB version 2024-01: field valid_from: is required",
        ),
        (
            "valid_from: 2024-01-01",
            "valid_from: 2024-01-01\n        valid_to: 2023-01-01",
            "zone VTBB version 2024-01: field valid_to: must be after valid_from",
        ),
        ("currency: THB", "currency: BAHT", "zone VTBB version 2024-01: field currency: must be"),
        (
            "{up_to_t: 200, divisor_mtow_ratio: 0.5}",
            "{up_to_t: 90, divisor_mtow_ratio: 0.5}",
            "field formula.weight_bands[1].up_to_t: bands must be in increasing order",
        ),
        (
            "{up_to_t: null, divisor_t: 100}",
            "{up_to_t: 300, divisor_t: 100}",
            "field formula.weight_bands[2].up_to_t: the last band must be open-ended",
        ),
        (
            "{up_to_t: 100, divisor_t: 50}",
            "{up_to_t: 100}",
            "field formula.weight_bands[0].divisor_t: give exactly one of",
        ),
        ("  VTBB:", "  vtbb:", "tariffs.yaml: field zones: zone id 'vtbb' must be"),
        (
            "    currency: THB",
            "    currency: THB\n    fx_policy: daily",
            "tariffs.yaml: zone VTBB: field fx_policy: must be one of",
        ),
        (
            "    currency: THB",
            "    currency: THB\n    rounding: {mtow: {places: 0, mode: nearest}}",
            "zone VTBB version 2024-01: field rounding.mtow.mode: unknown rounding mode",
        ),
        (
            "    currency: THB",
            "    currency: THB\n    exemptions: {flags: [vip]}",
            "zone VTBB version 2024-01: field exemptions.flags: must be one of",
        ),
        (
            "    currency: THB",
            "    currency: THB\n    multipliers: {cargo: 2}",
            "zone VTBB version 2024-01: field multipliers.cargo: must be one of",
        ),
        (
            "    currency: THB",
            "    currency: THB\n    multipliers: {domestic: -1}",
            "field multipliers.domestic: must be a non-negative number",
        ),
        (
            "    currency: THB",
            "    currency: THB\n  VTBB:\n    currency: USD",
            "tariffs.yaml: invalid YAML",
        ),
        # plausibility: what loads can be quoted (issue 13)
        (
            "unit_rate: 3500",
            "unit_rate: 1e400",
            "zone VTBB version 2024-01: field formula.unit_rate: must be at most 1,000,000,000",
        ),
        (
            "unit_rate: 3500",
            "unit_rate: 3500\n          weight_exponent: 1000",
            "zone VTBB version 2024-01: field formula.weight_exponent: must be at most 3",
        ),
        (
            "    currency: THB",
            "    currency: THB\n    multipliers: {domestic: 1e6}",
            "field multipliers.domestic: must be at most 100",
        ),
        (
            "unit_rate: 3500",
            "unit_rate: 1000000000\n          distance_divisor: 0.000001\n"
            "          distance_exponent: 3",
            "zone VTBB version 2024-01: field formula: implausible tariff: zone VTBB version "
            "2024-01: the charge of 40075 km at MTOW 1 kg cannot be computed",
        ),
        (
            "valid_from: 2024-01-01",
            "valid_from: 2026-02-30",
            "zone VTBB version 2024-01: field valid_from: must be a date YYYY-MM-DD "
            "(got '2026-02-30')",
        ),
    ],
)
def test_yaml_validation_messages(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in VALID_VTBB
    load_tariffs(write(tmp_path, VALID_VTBB))  # the base document is valid
    path = write(tmp_path, VALID_VTBB.replace(old, new, 1))
    with pytest.raises(TariffValidationError) as info:
        load_tariffs(path)
    assert message in str(info.value)
    assert str(info.value).startswith(str(path))
    assert info.value.category == "invalid_tariff"


def test_deep_yaml_is_refused_cleanly(tmp_path: Path) -> None:
    path = write(tmp_path, "zones:\n  VTBB: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(TariffValidationError, match="line 2: nested deeper than 32 levels"):
        load_tariffs(path)


def test_quote_turns_decimal_errors_into_a_category() -> None:
    """A tariff built in code (no loader probe) never raises decimal.InvalidOperation."""
    from flight_fees.lib.charging.tariffs import DistanceWeightFormula, TariffVersion, ZoneTariff
    from flight_fees.lib.charging.tariffs.errors import ImplausibleCharge

    version = TariffVersion(
        version="v1",
        valid_from=date(2024, 1, 1),
        valid_to=None,
        currency="EUR",
        formula=DistanceWeightFormula(unit_rate=Decimal("1e400")),
    )
    tariffs = Tariffs({"XX": ZoneTariff("XX", (version,))}, ("code",))
    with pytest.raises(ImplausibleCharge, match="cannot be computed") as info:
        quote(tariffs, "XX", "2024-02-01", distance_km=500, mtow_kg=70_000)
    assert info.value.category == "implausible_charge"
    with pytest.raises(QuoteInputError, match="distance_km must be from 0 to 40,075"):
        quote(tariffs, "XX", "2024-02-01", distance_km=50_000, mtow_kg=70_000)
    with pytest.raises(QuoteInputError, match="mtow_kg must be positive and at most"):
        quote(tariffs, "XX", "2024-02-01", distance_km=500, mtow_kg=1e12)


def test_overlapping_versions_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        zones:
          XO:
            currency: EUR
            versions:
              - {version: v1, valid_from: 2024-01-01, valid_to: 2024-08-01,
                 formula: {type: distance_weight, unit_rate: 1}}
              - {version: v2, valid_from: 2024-07-01,
                 formula: {type: distance_weight, unit_rate: 2}}
        """,
    )
    with pytest.raises(TariffValidationError, match="zone XO version v1: field valid_to: overlaps"):
        load_tariffs(path)


def test_document_errors() -> None:
    with pytest.raises(TariffValidationError, match="x.yaml: the document must be a mapping"):
        parse_tariffs([1, 2], source="x.yaml")
    with pytest.raises(TariffValidationError, match="field zones: must be a mapping"):
        parse_tariffs({"zones": None}, source="x.yaml")
    with pytest.raises(TariffValidationError, match="field zone: unknown field"):
        parse_tariffs({"zone": {}}, source="x.yaml")
    with pytest.raises(TariffValidationError, match="cannot read tariff file"):
        load_tariffs("/nonexistent/tariffs.yaml")


# --- unit-rate CSV ------------------------------------------------------------


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "unit_rates.csv"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_unit_rate_csv_overrides_months(shipped: Tariffs, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        """\
        # CRCO monthly adjusted unit rates (test data)
        zone,month,rate,currency
        LF,2025-03,65.43,EUR
        LF,2025-04,66.00,EUR
        ed,2025-03,90.12,EUR
        VTBB,2025-03,3600,THB
        """,
    )
    tariffs = load_unit_rates_csv(path, shipped)
    kwargs = {"distance_km": 500, "mtow_kg": 70_000}  # DF 5.00, WF 1.18
    service_units = Decimal("5.00") * Decimal("1.18")

    february = quote(tariffs, "LF", "2025-02-28", **kwargs)
    assert (february.tariff_version, february.unit_rate) == ("2025-01", Decimal("70.8"))
    march = quote(tariffs, "LF", "2025-03-01", **kwargs)
    assert march.tariff_version == "2025-03"
    assert march.unit_rate == Decimal("65.43")
    assert march.amount == money(Decimal("65.43") * service_units)
    assert march.sample is False
    assert march.fx_policy == "previous_month_average"  # zone settings kept
    april = quote(tariffs, "LF", "2025-04-30", **kwargs)
    assert april.amount == money(Decimal("66.00") * service_units)
    may = quote(tariffs, "LF", "2025-05-01", **kwargs)  # back to the YAML version
    assert (may.tariff_version, may.unit_rate) == ("2025-01", Decimal("70.8"))
    assert quote(tariffs, "ED", "2025-03-31", **kwargs).unit_rate == Decimal("90.12")
    vtbb = quote(tariffs, "VTBB", "2025-03-15", distance_km=1000, mtow_kg=100_000)
    assert vtbb.amount == money(sqrt(2) * 4 * 3600 * Decimal("1.45"))  # bands kept
    # the input tariffs are unchanged
    assert quote(shipped, "LF", "2025-03-01", **kwargs).unit_rate == Decimal("70.8")
    assert str(path) in tariffs.sources


def test_unit_rate_csv_creates_version_before_first(shipped: Tariffs, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "zone,month,rate,currency\nLS,2024-12,101.5,EUR\n")
    tariffs = load_unit_rates_csv(path, shipped)
    result = quote(tariffs, "LS", "2024-12-24", distance_km=100, mtow_kg=50_000)
    assert result.amount == Decimal("101.50")  # 1 service unit
    with pytest.raises(TariffNotFound):
        quote(tariffs, "LS", "2024-11-30", distance_km=100, mtow_kg=50_000)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("LF,2025-13,65,EUR", "line 2: zone LF month 2025-13: field month: must be YYYY-MM"),
        ("LF,2025-03,-1,EUR", "line 2: zone LF month 2025-03: field rate: must be a positive"),
        ("LF,2025-03,x,EUR", "field rate: must be a positive number"),
        ("LF,2025-03,65,EURO", "field currency: must be a 3-letter"),
        ("QQ,2025-03,65,EUR", "line 2: zone QQ month 2025-03: unknown zone"),
        ("US,2025-03,65,USD", "unit rates apply to distance_weight zones only"),
        (
            "LF,2025-03,65,EUR\nLF,2025-03,66,EUR",
            "line 3: zone LF month 2025-03: duplicate of line 2",
        ),
    ],
)
def test_unit_rate_csv_errors(shipped: Tariffs, tmp_path: Path, body: str, message: str) -> None:
    path = write_csv(tmp_path, "zone,month,rate,currency\n" + body + "\n")
    with pytest.raises(TariffValidationError) as info:
        load_unit_rates_csv(path, shipped)
    assert message in str(info.value)
    assert str(info.value).startswith(str(path))


def test_unit_rate_csv_missing_column(shipped: Tariffs, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "zone,month,rate\nLF,2025-03,65\n")
    with pytest.raises(TariffValidationError, match="missing column"):
        load_unit_rates_csv(path, shipped)


def test_rounding_up_mode_of_amount(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        zones:
          XU:
            currency: JPY
            rounding: {amount: {mode: up}}
            versions: [{valid_from: 2024-01-01, formula: {type: distance_weight, unit_rate: 1.01}}]
        """,
    )
    result = quote(load_tariffs(path), "XU", "2024-01-01", distance_km=100, mtow_kg=50_000)
    assert result.amount == Decimal("1.01").quantize(Decimal(1), ROUND_UP) == Decimal(2)


GENERIC_YAML = """\
zones:
  XP:
    currency: EUR
    versions:
      - valid_from: 2024-01-01
        formula:
          type: distance_weight
          unit_rate: 10
          distance_unit: NM
          distance_divisor: 100
          deduction_per_movement: 10  # NM
          max_distance: 1000  # NM
          distance_exponent: 0.7
          weight_divisor_t: 50
          weight_exponent: 0.7
          min_weight_t: 10
          max_weight_t: 300
          max_weight_factor: 2.5
"""


def test_generic_distance_weight_parameters(tmp_path: Path) -> None:
    tariffs = load_tariffs(write(tmp_path, GENERIC_YAML))
    power = CTX.power
    # 926 km = 500 NM, one take-off: 490 NM; 5 t is raised to the 10 t minimum
    light = quote(tariffs, "XP", "2024-06-01", distance_km=926, mtow_kg=5_000, takeoffs=1)
    distance_factor = power(Decimal("4.9"), Decimal("0.7"))
    weight_factor = power(Decimal("0.2"), Decimal("0.7"))
    assert light.distance_factor == distance_factor
    assert light.weight_factor == weight_factor
    assert light.amount == money(10 * distance_factor * weight_factor)
    # 3704 km = 2000 NM capped at 1000 NM; 400 t capped at 300 t, (300/50)^0.7 = 3.50 > 2.5
    heavy = quote(tariffs, "XP", "2024-06-01", distance_km=3704, mtow_kg=400_000)
    assert power(Decimal(6), Decimal("0.7")) > Decimal("2.5")
    assert heavy.weight_factor == Decimal("2.5")
    assert heavy.distance_factor == power(Decimal(10), Decimal("0.7"))
    assert heavy.amount == money(10 * power(Decimal(10), Decimal("0.7")) * Decimal("2.5"))
