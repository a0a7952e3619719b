"""``rates import`` (lib.rates): rows checked against the plausibility limits, every bad value
reported, nothing written unless skip_invalid; the merged file loads with the pipeline's
loaders; each import is audited."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from flight_fees.lib.charging.fx import load_fx_csv
from flight_fees.lib.charging.rates import import_rates
from flight_fees.lib.charging.tariffs import load_tariffs, load_unit_rates_csv
from flight_fees.lib.db.models import AuditEntry
from flight_fees.lib.ops.registry import ImportRejected


def test_unit_rates_merge_and_load(engine, tmp_path):
    ref = tmp_path / "reference"
    first = tmp_path / "u1.csv"
    first.write_text("zone,month,rate,currency\nLF,2026-10,70.84,EUR\nED,2026-10,60.1,EUR\n")
    done = import_rates(engine, first, "unit", ref, actor="ops")
    assert (done.added, done.replaced) == (2, 0)
    second = tmp_path / "u2.csv"
    second.write_text("zone,month,rate,currency\nLF,2026-10,71.00,EUR\n")
    again = import_rates(engine, second, "unit", ref, actor="ops")
    assert (again.added, again.replaced) == (0, 1)
    tariffs = load_unit_rates_csv(ref / "unit_rates.csv", load_tariffs())
    version = tariffs.zone("LF").version_on(dt.date(2026, 10, 15))
    assert version.formula.unit_rate == Decimal("71.00")
    with engine.connect() as conn:
        actions = conn.execute(select(AuditEntry.actor, AuditEntry.entity)).all()
    assert [tuple(a) for a in actions] == [("ops", "unit_rates"), ("ops", "unit_rates")]


def test_bad_rows_write_nothing_unless_skipped(engine, tmp_path):
    ref = tmp_path / "reference"
    path = tmp_path / "fx.csv"
    path.write_text(
        "date,currency,rate_per_eur\n2026-10-27,USD,1.08\n2026-10-27,JPY,0\n"
        "2026-02-30,GBP,0.85\n2026-10-28,KWD,99999999\n"
    )
    with pytest.raises(ImportRejected) as info:
        import_rates(engine, path, "fx", ref, actor="t")
    assert [(e.line, e.field) for e in info.value.errors] == [
        (3, "rate_per_eur"), (4, "date"), (5, "rate_per_eur"),
    ]  # fmt: skip
    assert "implausible" in str(info.value.errors[0])
    assert not (ref / "fx_rates.csv").exists()
    done = import_rates(engine, path, "fx", ref, actor="t", skip_invalid=True)
    assert done.added == 1 and len(done.errors) == 3
    assert list(load_fx_csv(ref / "fx_rates.csv")) == [
        (dt.date(2026, 10, 27), "USD", Decimal("1.08"))
    ]
