"""Physical and storage limits that reference data and computations are checked against.

A value outside these ranges is refused where it is read (with the file, line and field), so
that nothing that loads can make a later computation crash or overflow a database column.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

#: heaviest MTOW accepted anywhere (kg): the An-225 was certified at 640 t
MAX_MTOW_KG: Final = Decimal(1_000_000)
#: longest great-circle distance of one zone visit (km): the Earth's circumference
MAX_VISIT_DISTANCE_KM: Final = Decimal(40_075)
#: FIR crossings of one zone visit at most
MAX_FIR_CROSSINGS: Final = 1_000
#: largest charge of one zone visit, in the tariff's currency
MAX_QUOTE_AMOUNT: Final = Decimal(10) ** 12
#: largest amount a fee line or invoice column holds (NUMERIC(18, 3))
MAX_STORED_AMOUNT: Final = Decimal(10) ** 15
#: units of a currency per EUR (ECB convention): KWD is ~0.3, IRR ~1e6 on the free market
MIN_RATE_PER_EUR: Final = Decimal("0.001")
MAX_RATE_PER_EUR: Final = Decimal(10_000_000)
#: largest FX rate a fee line stores (NUMERIC(24, 10), and SQLite's 64-bit minor units)
MAX_STORED_FX_RATE: Final = Decimal(10) ** 8
