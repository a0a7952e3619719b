from __future__ import annotations

import datetime as dt

from flight_fees.lib.ops.claims import group_by_day
from flight_fees.lib.ops.queue import ClaimedFlight

D1, D2 = dt.date(2026, 10, 26), dt.date(2026, 10, 27)


def test_groups_by_priority_lane_then_day_and_locates_undated_flights():
    claimed = [
        ClaimedFlight(1, D1, "normal", 0),
        ClaimedFlight(2, D2, "high", 0),
        ClaimedFlight(3, None, "normal", 0),
        ClaimedFlight(4, None, "low", 0),
        ClaimedFlight(5, None, "normal", 0),
    ]
    asked: list[list[int]] = []

    def locate(ids):
        asked.append(list(ids))
        return {3: D2, 4: D1}

    requests, unplaced = group_by_day(claimed, locate)
    assert asked == [[3, 4, 5]]  # one lookup for every undated flight
    assert [(r.priority, r.day, r.flight_ids) for r in requests] == [
        ("high", D2, (2,)),
        ("normal", D1, (1,)),
        ("normal", D2, (3,)),
        ("low", D1, (4,)),
    ]
    assert [r.run_priority for r in requests] == [10, 0, 0, -10]
    assert set(unplaced) == {5}
