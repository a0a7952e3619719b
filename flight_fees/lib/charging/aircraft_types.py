"""Aircraft types and the choice of the MTOW a flight is charged on.

Rule (:func:`select_mtow`): the MTOW declared for the aircraft's registration when there is
one, else the **heaviest** certified MTOW of its ICAO type designator in the type table
(``flight_fees/data/aircraft_types.csv``: one row per variant, the heaviest wins), else
:class:`UnknownMtow`. A declared MTOW that is missing (None/NaN) or not positive (registries
use 0 for "unknown") counts as not declared; a non-numeric one is an error.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar, Final

import pandas as pd

from flight_fees.lib.core.money import CategorizedError, InvalidAmount, to_decimal
from flight_fees.lib.core.plausibility import MAX_MTOW_KG
from flight_fees.lib.core.settings import DATA_DIR
from flight_fees.lib.core.values import is_missing

__all__ = [
    "DEFAULT_AIRCRAFT_TYPES_PATH",
    "REGISTRATION_SOURCE",
    "AircraftType",
    "AircraftTypes",
    "AircraftTypesError",
    "UnknownMtow",
    "load_aircraft_types",
    "select_mtow",
    "select_mtow_frame",
]

DEFAULT_AIRCRAFT_TYPES_PATH: Final[Path] = DATA_DIR / "aircraft_types.csv"
#: ``mtow_source`` of a declared (registration) MTOW; a type MTOW is ``type:<ICAO>``.
REGISTRATION_SOURCE: Final[str] = "registration"

_TYPE_RE: Final = re.compile(r"^[A-Z0-9]{2,4}$")
_COLUMNS: Final = ("icao_type", "manufacturer", "model", "mtow_kg", "source")


class UnknownMtow(CategorizedError, LookupError):
    """Neither a declared MTOW nor a known aircraft type."""

    category: ClassVar[str] = "unknown_mtow"


class AircraftTypesError(CategorizedError, ValueError):
    """An invalid aircraft-type table."""

    category: ClassVar[str] = "invalid_aircraft_types"


@dataclass(frozen=True, slots=True)
class AircraftType:
    """One variant of an ICAO type designator with its certified MTOW."""

    icao_type: str
    manufacturer: str
    model: str
    mtow_kg: Decimal
    source: str


@dataclass(frozen=True, slots=True)
class AircraftTypes:
    """The type table: the heaviest variant of each ICAO designator."""

    types: Mapping[str, AircraftType]
    source: str = "<aircraft types>"

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", MappingProxyType(dict(self.types)))

    def __contains__(self, icao_type: object) -> bool:
        return isinstance(icao_type, str) and icao_type.strip().upper() in self.types

    def __len__(self) -> int:
        return len(self.types)

    def get(self, icao_type: str | None) -> AircraftType | None:
        """The heaviest variant of ``icao_type`` (case-insensitive), or None."""
        if not isinstance(icao_type, str):
            return None
        return self.types.get(icao_type.strip().upper())

    @classmethod
    def from_variants(
        cls, variants: list[AircraftType], source: str = "<variants>"
    ) -> AircraftTypes:
        """Keep the heaviest variant per designator (the first listed on a tie)."""
        heaviest: dict[str, AircraftType] = {}
        for variant in variants:
            current = heaviest.get(variant.icao_type)
            if current is None or variant.mtow_kg > current.mtow_kg:
                heaviest[variant.icao_type] = variant
        return cls(heaviest, source)


def load_aircraft_types(path: str | Path | None = None) -> AircraftTypes:
    """Read a type table (default: the shipped one). CSV columns ``icao_type,
    manufacturer, model, mtow_kg, source``; ``#`` lines are comments."""
    file = Path(path) if path is not None else DEFAULT_AIRCRAFT_TYPES_PATH
    source = str(path) if path is not None else file.name
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise AircraftTypesError(f"{source}: cannot read aircraft types: {exc}") from exc
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise AircraftTypesError(f"{source}: empty aircraft-type table")
    rows = list(csv.reader(io.StringIO("\n".join(line for _, line in lines))))
    header = [cell.strip().lower() for cell in rows[0]]
    missing = [column for column in _COLUMNS if column not in header]
    if missing:
        raise AircraftTypesError(f"{source}: missing column(s) {', '.join(missing)}")
    index = {column: header.index(column) for column in _COLUMNS}
    variants: list[AircraftType] = []
    for (number, _), cells in zip(lines[1:], rows[1:], strict=True):
        if len(cells) < len(header):
            raise AircraftTypesError(f"{source}: line {number}: expected {len(header)} fields")
        values = {column: cells[position].strip() for column, position in index.items()}
        icao = values["icao_type"].upper()
        if not _TYPE_RE.match(icao):
            raise AircraftTypesError(
                f"{source}: line {number}: icao_type {values['icao_type']!r} is not a 2-4 "
                "character ICAO type designator"
            )
        try:
            mtow = to_decimal(values["mtow_kg"], what="mtow_kg")
        except InvalidAmount:
            mtow = Decimal(0)
        if mtow <= 0:
            raise AircraftTypesError(
                f"{source}: line {number}: mtow_kg must be a positive number "
                f"(got {values['mtow_kg']!r})"
            )
        if mtow > MAX_MTOW_KG:
            raise AircraftTypesError(
                f"{source}: line {number}: mtow_kg {values['mtow_kg']!r} is implausible "
                f"(at most {MAX_MTOW_KG:,} kg)"
            )
        if not values["source"]:
            raise AircraftTypesError(f"{source}: line {number}: source is required")
        variants.append(
            AircraftType(icao, values["manufacturer"], values["model"], mtow, values["source"])
        )
    return AircraftTypes.from_variants(variants, source)


def select_mtow(
    registration_mtow_kg: float | Decimal | str | None,
    icao_type: str | None,
    types: AircraftTypes,
) -> tuple[Decimal, str]:
    """``(mtow_kg, source)``: the declared MTOW (source ``"registration"``), else the
    heaviest MTOW of ``icao_type`` (source ``"type:<ICAO>"``); :class:`UnknownMtow` when
    neither is usable."""
    if not is_missing(registration_mtow_kg):
        try:
            declared = to_decimal(registration_mtow_kg, what="declared MTOW")
        except InvalidAmount as exc:
            raise UnknownMtow(str(exc)) from None
        if declared > MAX_MTOW_KG:
            raise UnknownMtow(
                f"declared MTOW {declared} kg is implausible (at most {MAX_MTOW_KG:,} kg)"
            )
        if declared > 0:
            return declared, REGISTRATION_SOURCE
    designator = None if is_missing(icao_type) else str(icao_type).strip().upper()
    if designator is None:
        raise UnknownMtow("no declared MTOW and no aircraft type")
    known = types.get(designator)
    if known is None:
        raise UnknownMtow(f"no declared MTOW and aircraft type {designator!r} is not in the table")
    return known.mtow_kg, f"type:{known.icao_type}"


def select_mtow_frame(
    flights: pd.DataFrame,
    types: AircraftTypes,
    *,
    registration_mtow_column: str = "registration_mtow_kg",
    type_column: str = "aircraft_type",
) -> pd.DataFrame:
    """:func:`select_mtow` over a frame, on ``flights``' index.

    Either column may be absent (all values missing). Returns columns ``mtow_kg``
    (Decimal or None), ``mtow_source`` (str or None) and ``mtow_error`` (the
    :class:`UnknownMtow` message, or None); no exception for individual rows.
    """
    count = len(flights)
    declared = (
        flights[registration_mtow_column].tolist()
        if registration_mtow_column in flights
        else [None] * count
    )
    designators = flights[type_column].tolist() if type_column in flights else [None] * count
    mtows: list[Decimal | None] = []
    sources: list[str | None] = []
    errors: list[str | None] = []
    cache: dict[str, tuple[Decimal, str] | str] = {}
    for value, designator in zip(declared, designators, strict=True):
        try:
            if is_missing(value) and isinstance(designator, str):
                # by type only: memoise per designator
                key = designator.strip().upper()
                if key not in cache:
                    try:
                        cache[key] = select_mtow(None, key, types)
                    except UnknownMtow as exc:
                        cache[key] = str(exc)
                hit = cache[key]
                if isinstance(hit, str):
                    raise UnknownMtow(hit)
                mtow, source = hit
            else:
                mtow, source = select_mtow(value, designator, types)
        except UnknownMtow as exc:
            mtows.append(None)
            sources.append(None)
            errors.append(str(exc))
            continue
        mtows.append(mtow)
        sources.append(source)
        errors.append(None)
    return pd.DataFrame(
        {
            "mtow_kg": pd.Series(mtows, index=flights.index, dtype=object),
            "mtow_source": pd.Series(sources, index=flights.index, dtype=object),
            "mtow_error": pd.Series(errors, index=flights.index, dtype=object),
        }
    )
