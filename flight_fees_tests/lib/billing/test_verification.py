"""Verifying a bill built from the demo's own fee lines: a clean bill has no finding; known
errors injected into it are reported exactly, each with its cause and amounts."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from flight_fees.lib.billing.verification import BillError, Tolerances, read_bill, verify_bill
from flight_fees.lib.charging.repricing import read_fee_lines
from flight_fees.lib.charging.scenario import current_pricing
from flight_fees.lib.charging.tariffs import quote
from flight_fees.lib.documents.links import flight_map_url
from flight_fees.lib.documents.reports import verification_html
from flight_fees_tests.billed_demo import billed_demo_fixture  # noqa: F401 - fixture billed_demo_db

START = dt.date(2026, 10, 27)
FIELDS = ("date", "callsign", "registration", "departure", "destination", "zone",
          "distance_km", "mtow_kg", "unit_rate", "amount", "currency")  # fmt: skip


@pytest.fixture
def billed(billed_demo_db):  # read only: billed once per module and backend
    return billed_demo_db, read_fee_lines(billed_demo_db)


def clean_bill(lines) -> list[dict]:
    """The authority's bill of our own lines: one row per fee line, in the zone's currency."""
    return [
        {
            "date": line["flight_date"].isoformat(),
            "callsign": line["callsign"],
            "registration": line["registration"],
            "departure": line["origin"],
            "destination": line["destination"],
            "zone": line["zone_id"],
            "distance_km": line["distance_km"],
            "mtow_kg": line["mtow_kg"],
            "unit_rate": line["unit_rate"].normalize(),
            "amount": line["local_amount"].quantize(Decimal("0.01")),
            "currency": line["local_currency"],
        }  # fmt: skip
        for line in lines.to_dict("records")
    ]


def write_bill(path: Path, rows: list[dict], fields=FIELDS) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def authority_amount(reference, line, *, distance=None, mtow=None) -> Decimal:
    """What an authority bills for ``line`` with its own (wrong) figures: the tariff quote."""
    return quote(
        reference.tariffs, line["zone_id"], line["entry_time"],
        distance_km=line["distance_km"] if distance is None else distance,
        mtow_kg=line["mtow_kg"] if mtow is None else mtow,
        takeoffs=line["takeoffs"], landings=line["landings"],
        airspace_class=line["airspace_class"], flight_category=line["category"],
        fir_crossings=line["fir_crossings"],
    ).amount  # fmt: skip


def test_a_clean_bill_verifies_with_zero_differences(billed, tmp_path):
    engine, lines = billed
    path = write_bill(tmp_path / "bill.csv", clean_bill(lines))
    report = verify_bill(engine, read_bill(path), current_pricing())
    assert report.findings == ()
    assert report.bill_lines == report.matched_lines == len(lines) > 20
    assert report.billed == report.expected
    assert report.to_dict()["findings"] == []
    assert set(report.to_dict()["totals"]["by_cause"].values()) == {0}


def test_injected_errors_are_reported_exactly(billed, tmp_path):
    engine, lines = billed
    reference = current_pricing()
    rows = clean_bill(lines)
    charged = [k for k, line in enumerate(lines.to_dict("records")) if line["local_amount"] > 50]
    by_flight: dict[int, int] = {}
    for k in charged:  # one charged line per flight
        by_flight.setdefault(int(lines.loc[k, "flight_id"]), k)
    picks = list(by_flight.values())
    mtow_a, mtow_b, longer, rate, duplicated = picks[:5]
    left_off = int(lines.loc[picks[5], "flight_id"])
    expected: dict[int | None, list] = {}

    def inject(k: int, cause: str, **changes) -> None:
        original = lines.loc[k, "local_amount"].quantize(Decimal("0.01"))
        rows[k].update(changes)
        expected.setdefault(k + 1, []).append(
            (int(lines.loc[k, "flight_id"]), lines.loc[k, "zone_id"], cause,
             rows[k]["amount"], original)
        )  # fmt: skip

    for k in (mtow_a, mtow_b):  # two wrong MTOWs, amounts as the authority computes them
        heavier = lines.loc[k, "mtow_kg"] + 12_000
        inject(k, "mtow", mtow_kg=heavier,
               amount=authority_amount(reference, lines.loc[k], mtow=heavier))  # fmt: skip
    inflated = (lines.loc[longer, "distance_km"] * Decimal("1.18")).quantize(Decimal("0.001"))
    inject(longer, "distance", distance_km=inflated,
           amount=authority_amount(reference, lines.loc[longer], distance=inflated))  # fmt: skip
    wrong_rate = lines.loc[rate, "unit_rate"] + 4
    inject(rate, "unit_rate", unit_rate=wrong_rate.normalize(),
           amount=(rows[rate]["amount"] * wrong_rate / lines.loc[rate, "unit_rate"]).quantize(
               Decimal("0.01")))  # fmt: skip

    bill = [row for k, row in enumerate(rows) if int(lines.loc[k, "flight_id"]) != left_off]
    # line numbers after the flight left off: renumber what was injected
    kept = [k for k in range(len(rows)) if int(lines.loc[k, "flight_id"]) != left_off]
    renumber = {k + 1: n for n, k in enumerate(kept, start=1)}
    expected = {renumber[line]: found for line, found in expected.items()}
    ghost = {**rows[0], "callsign": "GHO999", "registration": "F-GHST", "departure": "LFPG",
             "destination": "LFML", "zone": "LF", "amount": Decimal("612.40")}  # fmt: skip
    bill.append(ghost)
    expected[len(bill)] = [(None, "LF", "not_tracked", Decimal("612.40"), Decimal("0.00"))]
    bill.append(dict(bill[renumber[duplicated + 1] - 1]))
    copy = bill[-1]
    expected[len(bill)] = [(int(lines.loc[duplicated, "flight_id"]), copy["zone"],
                            "duplicate", copy["amount"], Decimal("0.00"))]  # fmt: skip
    billed_zones = {row["zone"] for row in bill}
    for line in lines[lines["flight_id"] == left_off].to_dict("records"):
        if line["zone_id"] not in billed_zones:  # out of the bill's scope: see below
            continue
        expected.setdefault(None, []).append(
            (left_off, line["zone_id"], "not_billed", Decimal("0.00"),
             line["local_amount"].quantize(Decimal("0.01")))
        )  # fmt: skip

    path = write_bill(tmp_path / "bill.csv", bill)
    report = verify_bill(engine, read_bill(path), reference)

    got: dict[int | None, list] = {}
    for f in report.findings:
        got.setdefault(f.line, []).append(
            (f.flight_id, f.zone, f.cause, f.billed_amount, f.expected_amount)
        )
    assert got == expected
    for f in report.findings:
        assert f.difference == f.billed_amount - f.expected_amount
    distance = next(f for f in report.findings if f.cause == "distance")
    km = distance.detail["distance_km"]
    assert km["difference"] == inflated - lines.loc[longer, "distance_km"]
    assert km["our_entry"]["lat"] == lines.loc[longer, "entry_lat"]
    assert km["our_exit"]["time"] == lines.loc[longer, "exit_time"]
    counts = report.by_cause()
    assert counts == {
        "distance": 1,
        "mtow": 2,
        "unit_rate": 1,
        "fx": 0,
        "exemption": 0,
        "not_tracked": 1,
        "not_billed": len(expected[None]),
        "duplicate": 1,
    }
    # totals: over minus under is the sum of the findings' differences, per currency
    eur = report.by_currency()["EUR"]
    assert eur["net"] == sum((f.difference for f in report.findings), Decimal(0))
    assert eur["over"] == sum((f.difference for f in report.findings if f.difference > 0),
                              Decimal(0))  # fmt: skip
    as_json = report.to_dict()
    first = as_json["findings"][0]
    assert {"line", "flight_id", "zone", "cause", "billed_amount", "expected_amount",
            "difference"} <= set(first)  # fmt: skip
    assert all(isinstance(f[k], str) for f in as_json["findings"]
               for k in ("billed_amount", "expected_amount", "difference"))  # fmt: skip
    # the bill's scope covers its own zones; naming every zone brings in the flight's others
    every_zone = verify_bill(
        engine, read_bill(path), reference, zones=sorted(set(lines["zone_id"]))
    )
    missed = [(f.zone, f.expected_amount) for f in every_zone.findings if f.cause == "not_billed"]
    assert missed == [
        (line["zone_id"], line["local_amount"].quantize(Decimal("0.01")))
        for line in lines[lines["flight_id"] == left_off].to_dict("records")
    ]
    assert len(missed) > len(expected[None])
    page = verification_html(report, base_url="http://docs.example")
    for f in report.findings:
        if f.flight_id is not None:
            assert flight_map_url(f.flight_id, base="http://docs.example") in page


def test_differences_within_tolerance_give_no_finding(billed, tmp_path):
    engine, lines = billed
    reference = current_pricing()
    rows = clean_bill(lines)
    k = next(k for k, a in enumerate(lines["local_amount"]) if a > 100)
    for offset in ("0.6", "0.7", "0.8", "0.9"):  # within the 1 km default, a cent or more
        near = lines.loc[k, "distance_km"] + Decimal(offset)
        amount = authority_amount(reference, lines.loc[k], distance=near)
        if amount != lines.loc[k, "local_amount"]:
            break
    assert amount != lines.loc[k, "local_amount"]
    rows[k].update(distance_km=near, amount=amount)
    rows[k + 1]["amount"] += Decimal("0.01")  # one cent: within the amount tolerance
    path = write_bill(tmp_path / "bill.csv", rows)
    assert verify_bill(engine, read_bill(path), reference).findings == ()
    strict = Tolerances(amount=Decimal(0), distance_km=Decimal("0.1"))
    found = verify_bill(engine, read_bill(path), reference, tolerances=strict).findings
    assert [(f.line, f.cause) for f in found] == [(k + 1, "distance"), (k + 2, "unit_rate")]


def test_crco_format_and_registration_spelling(billed, tmp_path):
    engine, lines = billed
    rows = clean_bill(lines)
    crco = {"date": "DOF", "callsign": "ARCID", "registration": "REG", "departure": "ADEP",
            "destination": "ADES", "zone": "CZ", "distance_km": "DIST_KM",
            "unit_rate": "UNIT_RATE", "amount": "CHARGE", "currency": "CUR"}  # fmt: skip
    out = []
    for row in rows:
        renamed = {crco[k]: v for k, v in row.items() if k in crco}
        renamed["DOF"] = dt.date.fromisoformat(row["date"]).strftime("%y%m%d")
        renamed["REG"] = row["registration"].replace("-", "")
        renamed["MTOW_T"] = row["mtow_kg"] / 1000
        out.append(renamed)
    out[3]["MTOW_T"] += 5  # the authority's MTOW, and the amount it gives
    out[3]["CHARGE"] = authority_amount(
        current_pricing(), lines.loc[3], mtow=lines.loc[3, "mtow_kg"] + 5000
    )
    path = write_bill(tmp_path / "crco.csv", out, fields=[*crco.values(), "MTOW_T"])
    bill = read_bill(path, format="crco")
    assert bill.loc[3, "mtow_kg"] == lines.loc[3, "mtow_kg"] + 5000
    report = verify_bill(engine, bill, current_pricing())
    assert [(f.line, f.cause) for f in report.findings] == [(4, "mtow")]


def test_a_bad_bill_names_every_bad_value(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        ",".join(FIELDS) + "\n"
        "2026-13-01,AB1,D-AAAA,EDDF,LFPG,LF,12x,79000,70.8,100,EUR\n"
        "2026-10-27,AB1,D-AAAA,EDDF,LFPG,,100,79000,70.8,100,EURO\n"
    )
    with pytest.raises(BillError) as caught:
        read_bill(path)
    assert caught.value.errors == [
        "line 1, date: '2026-13-01' is not a day (YYYY-MM-DD or YYMMDD)",
        "line 1, distance_km: '12x' is not a number",
        "line 2, zone: missing",
        "line 2, currency: 'EURO' is not a currency code",
    ]
    (tmp_path / "short.csv").write_text("date,zone\n")
    with pytest.raises(BillError, match="missing column"):
        read_bill(tmp_path / "short.csv")


def test_fx_and_exemption_causes(billed, tmp_path):
    engine, lines = billed
    rows = clean_bill(lines)
    gbp = [k for k, c in enumerate(lines["billing_currency"]) if c == "GBP"]
    assert len(gbp) >= 2
    for k in gbp:  # the GBP customer's lines billed in GBP, with the FX rate applied
        rows[k].update(
            amount=lines.loc[k, "billing_amount"].quantize(Decimal("0.01")),
            currency="GBP",
            fx_rate=lines.loc[k, "fx_rate"].normalize(),
        )
    wrong_fx, exempt = gbp[0], next(k for k in gbp[1:] if lines.loc[k, "local_amount"] > 0)
    rate = lines.loc[wrong_fx, "fx_rate"] + Decimal("0.05")
    rows[wrong_fx].update(
        fx_rate=rate.normalize(),
        amount=(lines.loc[wrong_fx, "local_amount"] * rate).quantize(Decimal("0.01")),
    )
    rows[exempt]["amount"] = Decimal("0.00")  # the authority charges nothing
    path = write_bill(tmp_path / "bill.csv", rows, fields=(*FIELDS, "fx_rate"))
    found = verify_bill(engine, read_bill(path), current_pricing()).findings
    assert [(f.line, f.cause, f.currency) for f in found] == sorted(
        [(wrong_fx + 1, "fx", "GBP"), (exempt + 1, "exemption", "GBP")]
    )
    by_cause = {f.cause: f for f in found}
    assert by_cause["exemption"].difference == -lines.loc[exempt, "billing_amount"].quantize(
        Decimal("0.01")
    )
    assert by_cause["fx"].expected_amount == lines.loc[wrong_fx, "billing_amount"].quantize(
        Decimal("0.01")
    )


def test_lines_of_one_aircraft_flying_a_route_twice_a_day_split_by_flight():
    from flight_fees.lib.billing.verification import _split_by_flight

    zones_of = {1: ["LF", "LS", "LF"], 2: ["LF", "LS", "LF"]}
    # a zone visited twice by each flight; the last line bills flight 2's LS again
    billed = ["LF", "LS", "LF", "LF", "LS", "LF", "LS"]
    assert _split_by_flight(billed, [1, 2], zones_of) == [1, 1, 1, 2, 2, 2, 2]
    # flight 1 not billed at all: every line goes to flight 2
    assert _split_by_flight(["LS", "LF"], [1, 2], {1: ["ED"], 2: ["LS", "LF"]}) == [2, 2]
