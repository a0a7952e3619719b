"""PinotTrackSource against the stand-in broker, through the real pinotdb client over HTTP."""

from __future__ import annotations

import base64
import datetime as dt
import math

import httpx
import numpy as np
import pandas as pd
import pinotdb
import pytest

from flight_fees.lib.tracks import (
    NOT_FOUND,
    PARTIAL_RESULT,
    QUERY_ERROR,
    SOURCE_UNAVAILABLE,
    TIMEOUT,
    PinotTrackSource,
    TrackSourceError,
    make_track_source,
    validate_flight_ids,
)
from flight_fees.lib.tracks.pinot import quote_identifier
from flight_fees_tests.pinot_broker import StandInPinotBroker, closed_port, synthetic_positions

DAY = dt.date(2024, 3, 1)


def _expected(positions: pd.DataFrame, flight_id: int) -> pd.DataFrame:
    return positions[positions["flight_id"] == flight_id].reset_index(drop=True)


def _data_queries(broker: StandInPinotBroker) -> list:
    return [q for q in broker.queries if "LIMIT 1" not in q.sql or "IN (" in q.sql]


# -- the stand-in broker itself behaves like Pinot ----------------------------------------------


def test_broker_applies_implicit_limit_10_to_a_naive_client(pinot_broker):
    conn = pinotdb.connect(
        host="127.0.0.1", port=pinot_broker.port, path="/query/sql", scheme="http", timeout=5
    )
    cursor = conn.cursor()
    cursor.execute("SELECT flight_id, ts FROM flight_positions WHERE flight_id = 101")
    assert len(cursor.fetchall()) == 10  # 40 rows exist: Pinot's implicit LIMIT 10
    cursor.execute("SELECT flight_id FROM flight_positions WHERE flight_id = 101 LIMIT 1000")
    assert len(cursor.fetchall()) == 40
    conn.close()
    assert [q.limit_applied for q in pinot_broker.queries] == [10, 1000]


def test_broker_response_shape_timestamps_and_sentinels(make_broker):
    table = synthetic_positions([1], points=2)
    table.loc[1, "alt_ft"] = -np.inf
    table.loc[1, "callsign"] = None
    broker = make_broker(table, max_rows=1)
    body = {
        "sql": 'SELECT "ts", "alt_ft", "callsign" FROM "flight_positions" ORDER BY "ts" LIMIT 5',
        "queryOptions": "timeoutMs=1000",
    }
    response = httpx.post(f"{broker.url}/query/sql", json=body, timeout=5).json()
    assert response["exceptions"] == []
    assert response["numServersQueried"] == response["numServersResponded"] == 2
    assert response["totalDocs"] == 2 and "timeUsedMs" in response
    assert response["resultTable"]["dataSchema"] == {
        "columnNames": ["ts", "alt_ft", "callsign"],
        "columnDataTypes": ["TIMESTAMP", "DOUBLE", "STRING"],
    }
    assert response["resultTable"]["rows"] == [["2024-03-01 10:00:00.123", 35000.0, "TST1"]]
    body["sql"] = body["sql"].replace('ORDER BY "ts"', 'ORDER BY "ts" DESC')
    rows = httpx.post(f"{broker.url}/query/sql", json=body, timeout=5).json()["resultTable"]
    assert rows["rows"] == [["2024-03-01 10:00:05.123", "-Infinity", "null"]]
    bad = httpx.post(f"{broker.url}/query/sql", json={"sql": "SELEC nonsense"}, timeout=5).json()
    assert bad["exceptions"][0]["errorCode"] == 150 and "resultTable" not in bad
    missing = httpx.post(f"{broker.url}/query/sql", json={"sql": "SELECT * FROM nope"}, timeout=5)
    assert missing.status_code == 200 and missing.json()["exceptions"][0]["errorCode"] == 190


# -- completeness: paging, caps, many flights ----------------------------------------------------


@pytest.mark.parametrize("max_rows", [None, 4_000])
def test_20000_point_flight_is_complete_and_ordered(make_broker, make_pinot_source, max_rows):
    positions = synthetic_positions({7: 20_000, 8: 50})
    broker = make_broker(positions, max_rows=max_rows)
    source = make_pinot_source(broker.url, page_size=6_000)
    result = source.fetch([7], day=DAY)

    assert result.failures == {}
    tracks = result.tracks
    assert len(tracks) == 20_000
    assert tracks["ts"].is_monotonic_increasing and tracks["ts"].is_unique
    expected = _expected(positions, 7)
    assert (tracks["ts"].to_numpy() == expected["ts"].to_numpy()).all()
    np.testing.assert_allclose(tracks["lat"], expected["lat"])
    assert all(q.limit is not None for q in broker.queries)  # never the implicit LIMIT 10
    if max_rows is None:
        # probe + pages of 6000, 6000, 6000, 2000 (short and shorter than a page seen: final)
        assert result.queries == 1 + 4
        assert result.stats["row_cap"] is None
    else:
        # probe + 4000 (capped, confirmed by the next page: cap learnt) + 4 x 4000 + empty page
        assert result.queries == 1 + 6
        assert result.stats["row_cap"] == 4_000
        assert all(q.limit_applied <= 4_000 for q in broker.queries)


def test_500_flights_of_a_day_in_a_bounded_number_of_queries(make_broker, make_pinot_source):
    ids = list(range(5_000, 5_500))
    positions = synthetic_positions(ids, points=40)
    broker = make_broker(positions)
    source = make_pinot_source(broker.url, chunk_size=200, page_size=50_000)

    result = source.fetch(ids, day=DAY)
    assert result.failures == {}
    assert len(result.tracks) == 500 * 40
    assert result.tracks.groupby("flight_id").size().eq(40).all()
    chunks = math.ceil(500 / 200)
    # probe + per chunk floor(rows/page) + 1 pages, + at most one confirming query per chunk:
    # chunks of 8000, 8000, 4000 rows; the first two are not shorter than any earlier page,
    # so each gets a confirming query (empty); the third is provably final.
    assert 1 + chunks <= result.queries <= 1 + 2 * chunks
    assert result.queries == 1 + chunks + 2 and result.stats["confirmations"] == 2
    assert result.stats["chunks"] == chunks

    # with the broker's row cap configured no confirming query is needed: exactly 1 per chunk
    known = make_pinot_source(broker.url, chunk_size=200, page_size=50_000, max_rows=50_000)
    again = known.fetch(ids, day=DAY)
    assert again.queries == 1 + chunks and len(again.tracks) == 20_000

    broker.reset_log()
    by_day = known.fetch_day(DAY)  # one id-listing query + the chunks
    assert sorted(by_day.flight_ids) == ids and len(by_day.tracks) == 20_000
    assert by_day.queries == 1 + chunks == len(broker.queries)


def test_fetch_day_lists_flights_by_first_position(make_broker, make_pinot_source):
    def flights(ids, start, points=10):
        return synthetic_positions(
            ids, points=points, step_s=30.0, start=pd.Timestamp(start, tz="UTC")
        )

    late = flights([1], "2024-03-01 23:55", points=20)  # lands after midnight
    previous = flights([2], "2024-02-29 23:55", points=20)  # positions on March 1st too
    normal = flights([3, 4, 5, 6, 7], "2024-03-01 06:00")
    table = pd.concat([late, previous, normal], ignore_index=True)
    # a broker capping answers at 3 rows: the id list and the tracks are paged around it
    broker = make_broker(table, max_rows=3)
    source = make_pinot_source(broker.url, page_size=4)

    assert source.flight_ids_for_day(DAY) == [1, 3, 4, 5, 6, 7]
    assert source.flight_ids_for_day(dt.date(2024, 2, 29)) == [2]
    result = source.fetch_day(DAY)
    assert result.failures == {}
    assert result.tracks.groupby("flight_id").size().to_dict() == {
        1: 20,
        3: 10,
        4: 10,
        5: 10,
        6: 10,
        7: 10,
    }
    flight_1 = result.tracks[result.tracks["flight_id"] == 1]
    assert flight_1["ts"].max() > pd.Timestamp("2024-03-02", tz="UTC")  # past midnight
    assert result.stats["row_cap"] == 3


def test_flight_days(make_broker, make_pinot_source):
    late = synthetic_positions([1], start=pd.Timestamp("2024-02-29 23:58", tz="UTC"))
    table = pd.concat([late, synthetic_positions([2, 3])], ignore_index=True)
    source = make_pinot_source(make_broker(table).url, chunk_size=2)
    assert source.flight_days([3, 1, 2, 99]) == {
        1: dt.date(2024, 2, 29),
        2: DAY,
        3: DAY,
    }
    assert "flight_positions" in source.description


# -- faults and their categories -----------------------------------------------------------------


def test_missing_flight_is_not_found(pinot_broker, make_pinot_source):
    result = make_pinot_source(pinot_broker.url).fetch([101, 999], day=DAY)
    assert result.flight_ids == [101]
    assert result.failures[999].category == NOT_FOUND


def test_timeout_from_a_slow_answer(pinot_broker, make_pinot_source):
    source = make_pinot_source(pinot_broker.url, timeout_s=0.2, http_grace_s=0.1, retries=0)
    source.ping()
    pinot_broker.inject("slow", delay_s=1.0)
    result = source.fetch([101, 102], day=DAY)
    assert {f.category for f in result.failures.values()} == {TIMEOUT}
    assert result.tracks.empty and result.queries == 1


def test_broker_side_timeout_honours_timeout_ms(pinot_broker, make_pinot_source):
    source = make_pinot_source(pinot_broker.url, timeout_s=0.1, retries=0)
    source.ping()
    pinot_broker.inject("slow", delay_s=5.0, honour_timeout=True)
    result = source.fetch([101], day=DAY)
    assert result.failures[101].category == TIMEOUT
    assert "250" in result.failures[101].message
    assert pinot_broker.queries[-1].options["timeoutMs"] == "100"


@pytest.mark.parametrize("fault", ["sql_error", "execution_error"])
def test_query_errors_are_not_retried(pinot_broker, make_pinot_source, fault):
    source = make_pinot_source(pinot_broker.url, retries=3)
    source.ping()
    pinot_broker.inject(fault, times=5)
    result = source.fetch([101, 102], day=DAY)
    assert {f.category for f in result.failures.values()} == {QUERY_ERROR}
    assert result.queries == 1 and result.stats["retries"] == 0


def test_missing_table_is_a_query_error(pinot_broker, make_pinot_source):
    source = make_pinot_source(pinot_broker.url, table="no_such_table")
    result = source.fetch([101], day=DAY)
    assert result.failures[101].category == QUERY_ERROR
    assert "190" in result.failures[101].message
    with pytest.raises(TrackSourceError) as info:
        source.ping()
    assert info.value.category == QUERY_ERROR


@pytest.mark.parametrize("fault", ["partial", "servers_short", "partial_flag", "missing_stats"])
def test_partial_results_are_never_returned(pinot_broker, make_pinot_source, fault):
    source = make_pinot_source(pinot_broker.url, retries=1)
    source.ping()
    pinot_broker.inject(fault, times=2)  # the first answer and its retry
    result = source.fetch([101, 102, 103], day=DAY)
    assert result.tracks.empty  # the broker did send half of the rows
    assert pinot_broker.queries[-1].rows > 0 or fault == "missing_stats"
    assert {f.category for f in result.failures.values()} == {PARTIAL_RESULT}
    assert result.queries == 2 and result.stats["retries"] == 1


def test_a_retry_cures_a_transient_partial_result(pinot_broker, make_pinot_source, positions):
    source = make_pinot_source(pinot_broker.url, retries=1)
    source.ping()
    pinot_broker.inject("partial")
    result = source.fetch([101, 102, 103], day=DAY)
    assert result.failures == {} and len(result.tracks) == len(positions)
    assert result.stats["retries"] == 1


def test_failed_page_keeps_only_flights_completed_on_earlier_pages(
    pinot_broker, make_pinot_source, positions
):
    source = make_pinot_source(pinot_broker.url, retries=0, page_size=50)
    source.ping()
    # page 1: flight 101 (40 rows) + 10 rows of 102; page 2 (keyset after 102) is partial
    pinot_broker.inject("partial", match='"flight_id" > 102')
    result = source.fetch([101, 102, 103], day=DAY)
    assert result.flight_ids == [101]
    assert len(result.tracks) == 40
    assert {f: c.category for f, c in result.failures.items()} == {
        102: PARTIAL_RESULT,
        103: PARTIAL_RESULT,
    }


def test_closed_port_is_source_unavailable(make_pinot_source):
    source = make_pinot_source(f"http://127.0.0.1:{closed_port()}", retries=1)
    result = source.fetch([1, 2], day=DAY)
    assert {f.category for f in result.failures.values()} == {SOURCE_UNAVAILABLE}
    assert result.queries == 2  # the attempt and one retry
    with pytest.raises(TrackSourceError) as info:
        source.ping()
    assert info.value.category == SOURCE_UNAVAILABLE


def test_stopped_broker_opens_the_circuit(pinot_broker, make_pinot_source):
    source = make_pinot_source(pinot_broker.url, chunk_size=1, retries=1)
    source.ping()
    pinot_broker.stop()
    result = source.fetch([101, 102, 103, 104], day=DAY)
    assert {f.category for f in result.failures.values()} == {SOURCE_UNAVAILABLE}
    assert result.queries == 2  # first chunk and its retry; the circuit spares the others
    assert "circuit open" in result.failures[104].message


@pytest.mark.parametrize(("status", "category"), [(503, SOURCE_UNAVAILABLE), (400, QUERY_ERROR)])
def test_http_errors(pinot_broker, make_pinot_source, status, category):
    source = make_pinot_source(pinot_broker.url, retries=0)
    source.ping()
    pinot_broker.inject("http_error", status=status)
    assert source.fetch([101], day=DAY).failures[101].category == category


def test_dropped_connection_is_retried(pinot_broker, make_pinot_source):
    source = make_pinot_source(pinot_broker.url, retries=1)
    source.ping()
    pinot_broker.inject("drop_connection")
    result = source.fetch([101], day=DAY)
    assert result.failures == {} and len(result.tracks) == 40 and result.stats["retries"] == 1


# -- values -------------------------------------------------------------------------------------


def test_zone_less_timestamps_come_back_utc(pinot_broker, make_pinot_source, positions):
    tracks = make_pinot_source(pinot_broker.url).fetch([102], day=DAY).tracks
    assert str(tracks["ts"].dt.tz) == "UTC"
    expected = _expected(positions, 102)["ts"]
    assert tracks["ts"].iloc[0] == pd.Timestamp("2024-03-01 10:01:00.123", tz="UTC")
    assert (tracks["ts"].to_numpy() == expected.to_numpy()).all()
    assert list(tracks.columns) == [
        "flight_id",
        "ts",
        "lat",
        "lon",
        "alt_ft",
        "callsign",
        "registration",
        "aircraft_type",
        "icao24",
        "origin",
        "destination",
    ]
    assert tracks["flight_id"].dtype == "int64" and tracks["callsign"].iloc[0] == "TST102"


def test_epoch_millisecond_time_column(make_broker, make_pinot_source):
    table = synthetic_positions([1], points=12)
    table["ts"] = table["ts"].astype("datetime64[ms, UTC]").astype("int64")
    broker = make_broker(table, column_types={"ts": "LONG"})
    tracks = make_pinot_source(broker.url).fetch([1], day=DAY).tracks
    assert len(tracks) == 12
    assert tracks["ts"].iloc[0] == pd.Timestamp("2024-03-01 10:00:00.123", tz="UTC")


def test_null_sentinels_are_dropped(make_broker, make_pinot_source):
    table = synthetic_positions({1: 12, 2: 2})
    table.loc[0, "lat"] = -np.inf  # Pinot's default null for DOUBLE
    table.loc[1, "lon"] = np.nan
    table.loc[2, ["lat", "lon"]] = 0.0
    table.loc[3, "lat"] = 95.0
    table.loc[4, "alt_ft"] = -np.inf  # unknown altitude: the row stays
    table.loc[5, "callsign"] = "null"  # Pinot's default null for STRING
    table.loc[12:13, "lat"] = -np.inf  # flight 2 has nothing usable
    broker = make_broker(table)
    result = make_pinot_source(broker.url).fetch([1, 2], day=DAY)
    tracks = result.tracks
    assert len(tracks) == 8 and result.stats["sentinel_rows_dropped"] == 6
    assert np.isnan(tracks["alt_ft"].iloc[0])
    assert pd.isna(tracks["callsign"].iloc[1]) and tracks["callsign"].iloc[0] == "TST1"
    assert result.failures[2].category == NOT_FOUND
    assert "sentinel" in result.failures[2].message


# -- configuration ------------------------------------------------------------------------------


def test_column_map_and_schema_discovery(make_broker, make_pinot_source, monkeypatch):
    table = (
        synthetic_positions([1], points=12)
        .rename(
            columns={
                "flight_id": "fid",
                "ts": "event_time",
                "lat": "latitude",
                "lon": "longitude",
                "alt_ft": "baro_alt",
            }
        )
        .drop(columns=["registration", "origin", "destination"])
    )
    broker = make_broker(table, table_name="adsb")
    monkeypatch.setenv("PINOT_HTTP_BROKER_URL", broker.url)
    monkeypatch.setenv("PINOT_TABLE", "adsb")
    monkeypatch.setenv("PINOT_TIMEOUT_S", "7.5")
    monkeypatch.setenv(
        "PINOT_COLUMN_MAP",
        '{"flight_id": "fid", "ts": "event_time", '
        '"lat": "latitude", "lon": "longitude", "alt_ft": "baro_alt", "icao24": null}',
    )
    source = make_track_source()
    assert isinstance(source, PinotTrackSource) and source.timeout_s == 7.5
    try:
        result = source.fetch([1], day=DAY)
    finally:
        source.close()
    assert result.failures == {} and len(result.tracks) == 12
    # absent optional columns are left out, disabled ones are not queried
    assert list(result.tracks.columns) == [
        "flight_id",
        "ts",
        "lat",
        "lon",
        "alt_ft",
        "callsign",
        "aircraft_type",
    ]
    data_sql = broker.queries[-1].sql
    assert '"event_time" >= 1709251200000' in data_sql and "icao24" not in data_sql
    assert broker.queries[-1].options == {"timeoutMs": "7500"}

    missing = make_pinot_source(broker.url, table="adsb")  # default names: no flight_id column
    assert missing.fetch([1], day=DAY).failures[1].category == QUERY_ERROR


def test_bearer_and_basic_authentication(make_broker, make_pinot_source, positions):
    broker = make_broker(positions, required_authorization="Bearer s3cret")
    assert make_pinot_source(broker.url, bearer_token="s3cret").fetch([101]).failures == {}
    wrong = make_pinot_source(broker.url, bearer_token="nope", retries=3)
    denied = wrong.fetch([101])
    failure = denied.failures[101]
    assert failure.category == SOURCE_UNAVAILABLE and "401" in failure.message
    assert broker.queries[-1].status == 401 and denied.queries == 1  # 401 is not retried

    basic = "Basic " + base64.b64encode(b"ops:pw").decode()
    broker2 = make_broker(positions, required_authorization=basic)
    ok = make_pinot_source(broker2.url, username="ops", password="pw").fetch([101])
    assert ok.failures == {} and len(ok.tracks) == 40


def test_from_env_requires_a_url(monkeypatch):
    monkeypatch.delenv("PINOT_HTTP_BROKER_URL", raising=False)
    with pytest.raises(TrackSourceError, match="PINOT_HTTP_BROKER_URL"):
        PinotTrackSource.from_env()
    with pytest.raises(ValueError, match="PINOT_COLUMN_MAP"):
        PinotTrackSource.from_env(
            {"PINOT_HTTP_BROKER_URL": "http://x:8099", "PINOT_COLUMN_MAP": "[1]"}
        )
    with pytest.raises(ValueError, match="unknown track column"):
        PinotTrackSource("http://x:8099", columns={"speed": "gs"})


def test_no_sql_injection_through_ids_or_names():
    for bad in (["1; DROP TABLE x"], [1.5], [True], [0], [2**63]):
        with pytest.raises((TypeError, ValueError)):
            validate_flight_ids(bad)
    assert validate_flight_ids([np.int64(3), 1, 3]) == [3, 1]
    assert quote_identifier('a"b') == '"a""b"'
