"""Tests of flight_fees.lib.charging.fees.compute_fee_lines. Expected amounts are worked out by hand
from the tariff formulas below."""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd
import pytest

from flight_fees.lib.charging.fees import (
    FEE_LINE_FRAME_COLUMNS,
    compute_fee_lines,
    derive_flight_category,
    formula_details_json,
)
from flight_fees.lib.charging.fx import RATE_PLACES, FxRates
from flight_fees.lib.charging.tariffs import Tariffs, parse_tariffs

CENT = Decimal("0.01")

TARIFFS_DOC: dict[str, Any] = {
    "zones": {
        "AA": {
            "currency": "EUR",
            "fx_policy": "previous_month_average",
            "exemptions": {"below_mtow_kg": 2000, "flags": ["military"]},
            "multipliers": {"domestic": "0.5", "international": "0.8"},
            "rounding": {
                "mtow": {"places": 1},
                "distance_factor": {"places": 2},
                "weight_factor": {"places": 2},
            },
            "versions": [
                {
                    "version": "old",
                    "valid_from": "2026-01-01",
                    "valid_to": "2026-03-01",
                    "formula": {
                        "type": "distance_weight",
                        "unit_rate": 100,
                        "deduction_per_movement": 20,
                    },
                },
                {
                    "version": "new",
                    "valid_from": "2026-03-01",
                    "formula": {
                        "type": "distance_weight",
                        "unit_rate": 120,
                        "deduction_per_movement": 20,
                    },
                },
            ],
        },
        "BB": {
            "currency": "USD",
            "fx_policy": "flight_date",
            "versions": [
                {
                    "valid_from": "2026-01-01",
                    "formula": {
                        "type": "flat_weight_band",
                        "bands": [{"up_to_t": 20, "fee": 40}, {"up_to_t": None, "fee": 275}],
                        "per_crossing_fee": 10,
                    },
                }
            ],
        },
    }
}


@pytest.fixture(scope="module")
def tariffs() -> Tariffs:
    return parse_tariffs(TARIFFS_DOC, source="test")


@pytest.fixture(scope="module")
def fx() -> FxRates:
    return FxRates.from_records(
        [
            ("2026-01-05", "USD", "1.05"),
            ("2026-01-15", "GBP", "0.84"),
            ("2026-02-02", "USD", "1.10"),
            ("2026-02-27", "USD", "1.20"),
            ("2026-02-10", "GBP", "0.86"),
            ("2026-03-02", "USD", "1.09"),
            ("2026-03-06", "USD", "1.08"),  # a Friday
        ]
    )


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def visit(
    flight_id: int,
    index: int,
    zone: str,
    distance: float,
    entry: str,
    *,
    dep: bool = False,
    arr: bool = False,
    fir_ids: str = "X1",
) -> dict[str, Any]:
    return {
        "flight_id": flight_id,
        "visit_index": index,
        "zone_id": zone,
        "fir_ids": fir_ids,
        "entry_time": ts(entry),
        "exit_time": ts(entry) + pd.Timedelta(hours=1),
        "entry_lat": 50.0,
        "entry_lon": 5.0,
        "exit_lat": 51.0,
        "exit_lon": 6.0,
        "distance_km": distance,
        "flown_km": distance * 1.01,
        "interpolated": index == 1,
        "departure_in_zone": dep,
        "arrival_in_zone": arr,
    }


def frames(
    visits: list[dict[str, Any]], flights: list[dict[str, Any]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.DataFrame(visits), pd.DataFrame(flights)


def q10(value: Decimal) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-RATE_PLACES), ROUND_HALF_UP)


def test_lines_of_a_two_zone_flight(tariffs: Tariffs, fx: FxRates) -> None:
    visits, flights = frames(
        [
            visit(1, 0, "AA", 500.0, "2026-03-06T10:00Z", dep=True),
            visit(1, 1, "BB", 1000.0, "2026-03-06T12:00Z", fir_ids="HCSM,HXXX"),
        ],
        [
            {
                "flight_id": 1,
                "flight_date": date(2026, 3, 6),
                "mtow_kg": 50_000.0,
                "billing_currency": "EUR",
            }
        ],
    )
    result = compute_fee_lines(visits, flights, tariffs, fx)
    assert result.failures == {}
    lines = result.lines
    assert tuple(lines.columns) == FEE_LINE_FRAME_COLUMNS
    assert lines["line_no"].tolist() == [0, 1]
    assert lines["flight_id"].dtype == "int64"

    aa = lines.iloc[0]
    # AA, version "new" (rate 120): one take-off -> (500 - 20) / 100 = 4.80; sqrt(50/50) = 1.00;
    # category derived: departure only -> international x 0.8
    expected_aa = (Decimal(120) * Decimal("4.80") * Decimal("1.00") * Decimal("0.8")).quantize(CENT)
    assert aa["category"] == "international"
    assert aa["tariff_version"] == "new"
    assert aa["local_amount"] == expected_aa == Decimal("460.80")
    assert aa["local_currency"] == "EUR"
    assert aa["fx_rate"] == 1 and aa["billing_amount"] == expected_aa
    assert aa["service_units"] == Decimal("4.80")
    assert aa["unit_rate"] == Decimal(120)
    assert aa["distance_km"] == Decimal("500.000")
    assert aa["mtow_kg"] == Decimal("50000.0")
    assert aa["exemption"] is None
    assert aa["fir_ids"] == "X1"

    bb = lines.iloc[1]
    # BB: 50 t > 20 t -> USD 275, plus USD 10 x 2 FIRs in fir_ids; USD on Friday 2026-03-06
    rate = q10(1 / Decimal("1.08"))
    assert bb["local_amount"] == Decimal("295.00")
    assert bb["local_currency"] == "USD"
    assert bb["fx_rate"] == rate
    assert bb["fx_date"] == date(2026, 3, 6)
    assert bb["billing_amount"] == (Decimal(295) * rate).quantize(CENT, ROUND_HALF_UP)
    assert bb["billing_amount"] == Decimal("273.15")
    assert bb["billing_currency"] == "EUR"
    assert bool(bb["interpolated"]) is True
    assert bb["service_units"] is None

    details = aa["formula_details"]
    assert json.loads(formula_details_json(details))["amount"] == "460.80"
    assert details["fx"] == {
        "policy": "previous_month_average",
        "from": "EUR",
        "to": "EUR",
        "rate": "1",
        "rate_date": "2026-03-06",
    }


def test_domestic_visit_with_previous_month_fx(tariffs: Tariffs, fx: FxRates) -> None:
    visits, flights = frames(
        [visit(2, 0, "AA", 300.1234, "2026-02-28T20:00Z", dep=True, arr=True)],
        [
            {
                "flight_id": 2,
                "flight_date": "2026-02-28",
                "mtow_kg": Decimal(70_000),
                "billing_currency": "GBP",
            }
        ],
    )
    line = compute_fee_lines(visits, flights, tariffs, fx).lines.iloc[0]
    # old version (rate 100); 300.123 km - 2 x 20 km = 260.123 -> 2.60; sqrt(70/50) -> 1.18;
    # domestic x 0.5
    local = (Decimal(100) * Decimal("2.60") * Decimal("1.18") * Decimal("0.5")).quantize(CENT)
    assert line["distance_km"] == Decimal("300.123")
    assert line["category"] == "domestic"
    assert line["local_amount"] == local == Decimal("153.40")
    # previous_month_average of February 2026 -> January's GBP mean (one rate, 0.84)
    assert line["fx_rate"] == Decimal("0.84")
    assert line["fx_date"] == date(2026, 1, 1)
    assert line["billing_amount"] == (local * Decimal("0.84")).quantize(CENT, ROUND_HALF_UP)
    assert line["billing_currency"] == "GBP"


def test_explicit_category_overrides_derivation(tariffs: Tariffs, fx: FxRates) -> None:
    visits, flights = frames(
        [visit(3, 0, "AA", 100.0, "2026-03-06T10:00Z", dep=True, arr=True)],
        [
            {
                "flight_id": 3,
                "flight_date": "2026-03-06",
                "mtow_kg": 50_000,
                "billing_currency": "EUR",
                "category": "overflight",
            }
        ],
    )
    line = compute_fee_lines(visits, flights, tariffs, fx).lines.iloc[0]
    # overflight: no multiplier; 100 km - 40 km = 60 km -> 0.60 x 1.00 x 120
    assert line["category"] == "overflight"
    assert line["local_amount"] == Decimal("72.00")


@pytest.mark.parametrize(
    ("dep", "arr", "category"),
    [
        (True, True, "domestic"),
        (True, False, "international"),
        (False, True, "international"),
        (False, False, "overflight"),
    ],
)
def test_derive_flight_category(dep: bool, arr: bool, category: str) -> None:
    assert derive_flight_category(dep, arr) == category


def test_all_or_nothing_per_flight(tariffs: Tariffs, fx: FxRates) -> None:
    visits, flights = frames(
        [
            visit(10, 0, "AA", 400.0, "2026-03-06T10:00Z"),
            visit(10, 1, "ZZ", 200.0, "2026-03-06T11:00Z"),  # no tariff
            visit(11, 0, "AA", 400.0, "2026-03-06T10:00Z"),
            visit(12, 0, "AA", 400.0, "2026-03-06T10:00Z"),  # billed in THB: no rate
            visit(13, 0, "AA", 400.0, "2026-03-06T10:00Z"),  # no MTOW
            visit(14, 0, "AA", 400.0, "2026-03-06T10:00Z"),  # not in flights
            visit(15, 0, "AA", 400.0, "2026-03-06T10:00Z"),  # no billing currency
            visit(16, 0, "AA", 400.0, "2026-03-06T10:00Z"),  # unknown flag
        ],
        [
            {
                "flight_id": 10,
                "flight_date": "2026-03-06",
                "mtow_kg": 50_000,
                "billing_currency": "EUR",
            },
            {
                "flight_id": 11,
                "flight_date": "2026-03-06",
                "mtow_kg": 50_000,
                "billing_currency": "EUR",
            },
            {
                "flight_id": 12,
                "flight_date": "2026-03-06",
                "mtow_kg": 50_000,
                "billing_currency": "THB",
            },
            {
                "flight_id": 13,
                "flight_date": "2026-03-06",
                "mtow_kg": None,
                "billing_currency": "EUR",
            },
            {
                "flight_id": 15,
                "flight_date": "2026-03-06",
                "mtow_kg": 50_000,
                "billing_currency": None,
            },
            {
                "flight_id": 16,
                "flight_date": "2026-03-06",
                "mtow_kg": 50_000,
                "billing_currency": "EUR",
                "flags": "vip",
            },
        ],
    )
    result = compute_fee_lines(visits, flights, tariffs, fx)
    assert result.lines["flight_id"].tolist() == [11]
    categories = {fid: category for fid, (category, _) in result.failures.items()}
    assert categories == {
        10: "no_tariff",
        12: "missing_fx_rate",
        13: "unknown_mtow",
        14: "missing_flight_data",
        15: "invalid_flight_data",
        16: "invalid_quote_input",
    }
    assert "visit 1 in zone ZZ" in result.failures[10][1]
    assert "THB" in result.failures[12][1]
    frame = result.failures_frame()
    assert frame["flight_id"].tolist() == [10, 12, 13, 14, 15, 16]


def test_exempt_flight_gets_zero_line(tariffs: Tariffs, fx: FxRates) -> None:
    visits, flights = frames(
        [
            visit(20, 0, "AA", 400.0, "2026-03-06T10:00Z"),
            visit(21, 0, "AA", 400.0, "2026-03-06T10:00Z"),
        ],
        [
            {
                "flight_id": 20,
                "flight_date": "2026-03-06",
                "mtow_kg": 50_000,
                "billing_currency": "USD",
                "flags": "state, military",
            },
            {
                "flight_id": 21,
                "flight_date": "2026-03-06",
                "mtow_kg": 1_500,
                "billing_currency": "EUR",
                "flags": frozenset(),
            },
        ],
    )
    result = compute_fee_lines(visits, flights, tariffs, fx)
    assert result.failures == {}
    lines = result.lines.set_index("flight_id")
    assert lines.loc[20, "exemption"] == "military"  # state is not exempt in AA
    assert lines.loc[20, "local_amount"] == Decimal("0.00")
    assert lines.loc[20, "billing_amount"] == Decimal("0.00")
    assert lines.loc[20, "billing_currency"] == "USD"
    assert lines.loc[21, "exemption"] == "mtow_below_2000_kg"


def test_date_basis(tariffs: Tariffs, fx: FxRates) -> None:
    # departs on 28 February, enters the zone 10 minutes after midnight UTC on 1 March
    visits, flights = frames(
        [visit(30, 0, "AA", 100.0, "2026-03-01T00:10Z")],
        [
            {
                "flight_id": 30,
                "flight_date": "2026-02-28",
                "mtow_kg": 50_000,
                "billing_currency": "EUR",
            }
        ],
    )
    by_entry = compute_fee_lines(visits, flights, tariffs, fx).lines.iloc[0]
    assert by_entry["tariff_version"] == "new"
    assert by_entry["local_amount"] == Decimal("120.00")
    assert by_entry["flight_date"] == date(2026, 2, 28)
    by_flight = compute_fee_lines(visits, flights, tariffs, fx, date_basis="flight_date")
    assert by_flight.lines.iloc[0]["tariff_version"] == "old"
    assert by_flight.lines.iloc[0]["local_amount"] == Decimal("100.00")


def test_billing_currency_argument(tariffs: Tariffs, fx: FxRates) -> None:
    visits, flights = frames(
        [
            visit(40, 0, "BB", 10.0, "2026-03-06T10:00Z"),
            visit(41, 0, "BB", 10.0, "2026-03-06T10:00Z"),
        ],
        [
            {"flight_id": 40, "flight_date": "2026-03-06", "mtow_kg": 20_000},
            {"flight_id": 41, "flight_date": "2026-03-06", "mtow_kg": 20_000},
        ],
    )
    result = compute_fee_lines(visits, flights, tariffs, fx, billing_currency={41: "USD"})
    assert result.failures[40][0] == "invalid_flight_data"
    line = result.lines.iloc[0]
    assert (line["flight_id"], line["billing_amount"], line["fx_rate"]) == (41, Decimal("50.00"), 1)
    default = compute_fee_lines(visits, flights, tariffs, fx, billing_currency="usd")
    assert default.lines["billing_currency"].tolist() == ["USD", "USD"]


def test_empty_and_contract_errors(tariffs: Tariffs, fx: FxRates) -> None:
    empty_visits = pd.DataFrame(columns=list(visit(1, 0, "AA", 1.0, "2026-03-06T00:00Z")))
    result = compute_fee_lines(empty_visits, pd.DataFrame({"flight_id": [1]}), tariffs, fx)
    assert result.lines.empty and tuple(result.lines.columns) == FEE_LINE_FRAME_COLUMNS
    assert result.failures == {}
    with pytest.raises(ValueError, match="lacks column"):
        compute_fee_lines(pd.DataFrame({"flight_id": [1]}), pd.DataFrame(), tariffs, fx)
    visits, _ = frames([visit(1, 0, "AA", 1.0, "2026-03-06T00:00Z")], [])
    with pytest.raises(ValueError, match="duplicate flight_id"):
        compute_fee_lines(visits, pd.DataFrame({"flight_id": [1, 1]}), tariffs, fx)
