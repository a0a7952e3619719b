"""Tests of flight_fees.lib.charging.aircraft_types: the type table and the MTOW selection."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flight_fees.lib.charging.aircraft_types import (
    AircraftTypes,
    AircraftTypesError,
    UnknownMtow,
    load_aircraft_types,
    select_mtow,
    select_mtow_frame,
)

LB = Decimal("0.45359237")

REQUIRED_TYPES = [
    "A20N",
    "A21N",
    "A319",
    "A320",
    "A321",
    "A332",
    "A333",
    "A339",
    "A343",
    "A346",
    "A359",
    "A35K",
    "A388",
    "B737",
    "B738",
    "B739",
    "B38M",
    "B39M",
    "B744",
    "B748",
    "B752",
    "B763",
    "B772",
    "B77W",
    "B788",
    "B789",
    "B78X",
    "E170",
    "E175",
    "E190",
    "E195",
    "E290",
    "E295",
    "CRJ2",
    "CRJ7",
    "CRJ9",
    "AT72",
    "AT76",
    "DH8D",
    "C172",
    "GLF4",
    "GLF5",
    "GLF6",
    "GL5T",
    "GLEX",
    "CL35",
    "CL60",
    "F2TH",
    "F900",
    "FA7X",
    "FA8X",
    "C25A",
    "C25B",
    "C560",
    "C56X",
    "C680",
    "C68A",
    "C700",
    "E55P",
    "LJ45",
    "LJ75",
    "PC12",
    "PC24",
    "H25B",
    "BE40",
]


def lb_to_kg(pounds: int) -> Decimal:
    return (Decimal(pounds) * LB).quantize(Decimal(1), ROUND_HALF_UP)


@pytest.fixture(scope="module")
def types() -> AircraftTypes:
    return load_aircraft_types()


def test_shipped_table_coverage(types: AircraftTypes) -> None:
    assert len(types) >= 100
    missing = [code for code in REQUIRED_TYPES if code not in types]
    assert missing == []
    for code, entry in types.types.items():
        assert entry.mtow_kg > 0, code
        assert entry.source.strip(), code
        assert code == code.upper()


@pytest.mark.parametrize(
    ("code", "expected_kg"),
    [
        ("B737", lb_to_kg(171_000)),  # BBJ is heavier than the airliner (154,500 lb)
        ("B77W", lb_to_kg(775_000)),
        ("B738", lb_to_kg(174_200)),
        ("A21N", Decimal(101_000)),  # A321XLR heavier than A321neo (97 t)
        ("A319", Decimal(76_500)),  # ACJ319
        ("A388", Decimal(575_000)),
        ("C172", lb_to_kg(2_550)),
    ],
)
def test_heaviest_variant(types: AircraftTypes, code: str, expected_kg: Decimal) -> None:
    entry = types.get(code.lower())
    assert entry is not None
    assert entry.mtow_kg == expected_kg


def test_select_declared_mtow_wins(types: AircraftTypes) -> None:
    assert select_mtow(70_000.0, "B738", types) == (Decimal("70000.0"), "registration")
    assert select_mtow(Decimal("65317.5"), None, types) == (Decimal("65317.5"), "registration")
    assert select_mtow(np.float64(41_000), "A320", types) == (Decimal("41000.0"), "registration")


@pytest.mark.parametrize("declared", [None, float("nan"), pd.NA, 0, -5, ""])
def test_select_falls_back_to_type(types: AircraftTypes, declared: object) -> None:
    assert select_mtow(declared, " b738 ", types) == (lb_to_kg(174_200), "type:B738")  # type: ignore[arg-type]


def test_select_unknown(types: AircraftTypes) -> None:
    with pytest.raises(UnknownMtow, match="'ZZZZ' is not in the table") as info:
        select_mtow(None, "ZZZZ", types)
    assert info.value.category == "unknown_mtow"
    with pytest.raises(UnknownMtow, match="no aircraft type"):
        select_mtow(None, None, types)
    with pytest.raises(UnknownMtow, match="declared MTOW"):
        select_mtow("heavy", "B738", types)


def test_select_mtow_frame(types: AircraftTypes) -> None:
    flights = pd.DataFrame(
        {
            "registration_mtow_kg": [np.nan, 12_345.5, np.nan, 0.0, np.nan],
            "aircraft_type": ["B738", None, "ZZZZ", "C172", "b738"],
        },
        index=[10, 11, 12, 13, 14],
    )
    result = select_mtow_frame(flights, types)
    assert list(result.index) == [10, 11, 12, 13, 14]
    assert result["mtow_kg"].tolist() == [
        lb_to_kg(174_200),
        Decimal("12345.5"),
        None,
        lb_to_kg(2_550),
        lb_to_kg(174_200),
    ]
    assert result["mtow_source"].tolist() == [
        "type:B738",
        "registration",
        None,
        "type:C172",
        "type:B738",
    ]
    assert result["mtow_error"].isna().tolist() == [True, True, False, True, True]
    assert "ZZZZ" in result.loc[12, "mtow_error"]


def test_select_mtow_frame_without_columns(types: AircraftTypes) -> None:
    result = select_mtow_frame(pd.DataFrame({"aircraft_type": ["A320"]}), types)
    assert result.loc[0, "mtow_kg"] == Decimal(78_000)
    empty = select_mtow_frame(pd.DataFrame({"x": [1]}), types)
    assert empty.loc[0, "mtow_error"] == "no declared MTOW and no aircraft type"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("B7378,Boeing,x,1000,src", "is not a 2-4 character ICAO type designator"),
        ("B738,Boeing,x,-1,src", "mtow_kg must be a positive number"),
        ("B738,Boeing,x,heavy,src", "mtow_kg must be a positive number"),
        ("B738,Boeing,x,1000,", "source is required"),
    ],
)
def test_loader_validation(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "types.csv"
    path.write_text("icao_type,manufacturer,model,mtow_kg,source\n" + row + "\n", encoding="utf-8")
    with pytest.raises(AircraftTypesError, match=message) as info:
        load_aircraft_types(path)
    assert "line 2" in str(info.value)
    assert info.value.category == "invalid_aircraft_types"


def test_loader_keeps_heaviest_of_custom_table(tmp_path: Path) -> None:
    path = tmp_path / "types.csv"
    path.write_text(
        "# variants\nicao_type,manufacturer,model,mtow_kg,source\n"
        "XX1,M,light,1000,a\nxx1,M,heavy,1500.5,b\nXX1,M,mid,1200,c\n",
        encoding="utf-8",
    )
    table = load_aircraft_types(path)
    entry = table.get("XX1")
    assert entry is not None and (entry.model, entry.mtow_kg) == ("heavy", Decimal("1500.5"))
