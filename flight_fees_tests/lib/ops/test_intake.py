"""Tests of the intake rules: flight ids from files and arguments, JSON enqueue requests."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from flight_fees.lib.ops.intake import (
    MAX_REPORTED_ERRORS,
    EnqueueRequest,
    InvalidRequest,
    TooManyIds,
    parse_enqueue_request,
    parse_flight_ids,
)


def _body(payload: object) -> bytes:
    return json.dumps(payload).encode()


def test_ids_from_arguments_and_a_csv_file(tmp_path: Path) -> None:
    ids = tmp_path / "ids.csv"
    ids.write_text("callsign,flight_id\nAFR1,102\n# comment\n\nBAW2,x\nDLH3,101\n")
    parsed = parse_flight_ids(["101", "0"], [ids])
    assert parsed.ids == [101, 102]
    assert parsed.duplicates == 1
    assert [where for where, _ in parsed.invalid] == ["argument 2", "ids.csv:5"]


def test_request_object_and_bare_list() -> None:
    request = parse_enqueue_request(
        _body({"flight_ids": [7, "8"], "priority": "high", "flight_date": "2024-05-01"}), 10
    )
    assert request == EnqueueRequest([7, 8], "high", dt.date(2024, 5, 1))
    assert parse_enqueue_request(_body([9]), 10) == EnqueueRequest([9], "normal", None)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"flight_ids": [1], "extra": 1}, "unknown field(s): 'extra'"),
        ({"priority": "high"}, "missing field: flight_ids"),
        ({"flight_ids": [1], "priority": "urgent"}, "priority must be one of"),
        ({"flight_ids": [1], "flight_date": "01/05/2024"}, "flight_date must be"),
        ({"flight_ids": [1], "flight_date": "2024-02-30"}, "not a valid date"),
        ({"flight_ids": 1}, "flight_ids must be a JSON list"),
        ("1", "the body must be a JSON object"),
    ],
)
def test_invalid_requests_say_why(payload: object, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_enqueue_request(_body(payload), 10)
    assert fragment in info.value.message
    assert not isinstance(info.value, TooManyIds)


def test_not_json_and_too_many_ids() -> None:
    with pytest.raises(InvalidRequest, match="not UTF-8"):
        parse_enqueue_request(b"\xff", 10)
    with pytest.raises(InvalidRequest, match="invalid JSON: Expecting value at line 1"):
        parse_enqueue_request(b"", 10)
    with pytest.raises(TooManyIds, match=r"too many flight ids \(3 > 2\)"):
        parse_enqueue_request(_body([1, 2, 3]), 2)


def test_one_bad_id_refuses_all_and_names_the_first_ones() -> None:
    raw = [1, True, 2.0, "x", *([-1] * 20)]
    with pytest.raises(InvalidRequest) as info:
        parse_enqueue_request(_body(raw), 100)
    assert info.value.message == f"{len(raw) - 1} invalid flight id(s); nothing was enqueued"
    assert info.value.invalid is not None
    assert len(info.value.invalid) == MAX_REPORTED_ERRORS
    assert info.value.invalid[:2] == [
        "flight_ids[1]: not a flight id (positive integer expected): True",
        "flight_ids[2]: not a flight id (positive integer expected): 2.0",
    ]
    assert [e.split(":")[0] for e in info.value.invalid] == [
        f"flight_ids[{i}]" for i in range(1, MAX_REPORTED_ERRORS + 1)
    ]
