"""Issue 13: the bad-input trials of the security review, replayed.

Each row of the issue's table has tests that failed on the old behaviour and pass now. Rows
whose replay lives next to the code it exercises are listed with their tests (the last test
of this module checks that they exist):

======================================  ===============================================
row                                     tests
======================================  ===============================================
intake buffers unauthenticated bodies   ``test_intake_load.py`` (40 x 10 MiB unsigned
                                        uploads, 200 slow-header connections, slow body)
NaN passes every money CHECK            ``lib/db/test_numbers.py``, ``lib/db/
                                        test_migrations.py::test_0002_*``
secrets printed                         ``test_secrets.py``
500 on signed odd bodies                ``test_intake.py::test_every_malformed_signed_
                                        body_is_400``
weak secret accepted                    ``test_intake.py::test_weak_secrets_are_refused``
replay                                  ``test_intake.py::test_replayed_request_is_refused``
reference-data plausibility             here (``test_reference_*``) and
                                        ``lib/test_tariffs.py``
track store                             here (``test_track_store_*``)
Pinot faults spend attempts             here (``test_source_faults_*``)
``crossings`` CLI silent                here (``test_crossings_cli_*``)
terminal injection                      here (``test_terminal_*``)
logs                                    ``test_intake.py::test_one_json_log_line_*``,
                                        ``test_intake.py::test_client_disconnect_*``
ids file                                here (``test_ids_file_*``)
======================================  ===============================================
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from flight_fees.lib.airspace.firs import FirDataError, load_firs, validate_firs
from flight_fees.lib.charging.aircraft_types import (
    AircraftTypesError,
    UnknownMtow,
    load_aircraft_types,
    select_mtow,
)
from flight_fees.lib.charging.attributes import AttributeSourceError, CsvAttributeSource
from flight_fees.lib.charging.fx import FxDataError, FxRates, load_fx_rates
from flight_fees.lib.ops.registry import RegistryError, load_aircraft, load_customers
from flight_fees.lib.tracks import ParquetTrackSource
from flight_fees_tests.pinot_broker import synthetic_positions

# -- reference-data plausibility ----------------------------------------------------------------


@pytest.mark.parametrize("rate", ["1e-30", "1e30"])
def test_reference_fx_rates_out_of_range_name_file_line_and_currency(tmp_path: Path, rate):
    plain = tmp_path / "fx.csv"
    plain.write_text(f"date,currency,rate_per_eur\n2026-01-02,USD,1.09\n2026-01-02,THB,{rate}\n")
    shown = str(Decimal(rate))
    with pytest.raises(
        FxDataError, match=rf"fx.csv: line 3: rate_per_eur {re.escape(shown)} THB per EUR"
    ):
        load_fx_rates(plain)
    ecb = tmp_path / "eurofxref-hist.csv"
    ecb.write_text(f"Date,USD,JPY,\n2026-01-02,1.09,{rate},\n")
    with pytest.raises(FxDataError, match=r"eurofxref-hist.csv: line 2: JPY: rate .* implausible"):
        load_fx_rates(ecb)


def test_reference_fx_conversions_beyond_storage_fail_with_a_category():
    rates = FxRates.from_records([("2026-01-02", "USD", "0.002"), ("2026-01-02", "IDR", "9000000")])
    with pytest.raises(FxDataError, match="beyond what a fee line stores") as info:
        rates.convert(Decimal("900000000000"), "USD", "IDR", "2026-01-02")
    assert info.value.category == "invalid_fx_data"


def test_reference_mtow_1e12_is_refused_everywhere_it_is_read(tmp_path: Path, engine):
    types = tmp_path / "types.csv"
    types.write_text(
        "icao_type,manufacturer,model,mtow_kg,source\n"
        "A320,Airbus,A320,78000,TCDS\n"
        "A388,Airbus,A380,1e12,typo\n"
    )
    with pytest.raises(AircraftTypesError, match=r"types.csv: line 3: mtow_kg '1e12' is implaus"):
        load_aircraft_types(types)
    with pytest.raises(UnknownMtow, match="declared MTOW 1E\\+12 kg is implausible"):
        select_mtow(Decimal("1e12"), "A320", load_aircraft_types())
    attributes = tmp_path / "attributes.csv"
    attributes.write_text("registration,mtow_kg\nDAIRX,78000\nDAIRY,1e12\n")
    with pytest.raises(AttributeSourceError, match=r"line 3, column 'mtow_kg': .*implausible"):
        CsvAttributeSource(attributes).table()
    load_customers(engine, pd.DataFrame({"code": ["C1"], "name": ["c"]}))
    with pytest.raises(
        RegistryError, match="aircraft row 3: mtow_kg .* must be positive and at most"
    ):
        load_aircraft(
            engine,
            pd.DataFrame({"registration": ["DAIRX", "DAIRY"], "mtow_kg": [78000.0, 1e12]}),
        )


@pytest.mark.parametrize(
    ("shift", "fragment"),
    [((0.0, 91.0 - 45.0), "lat 91 .. 95"), ((500.0 - 5.0, 0.0), "lon 500 .. 540")],
)
def test_reference_fir_polygons_out_of_range_name_file_fir_and_field(tmp_path, shift, fragment):
    good = shapely.box(5.0, 45.0, 45.0, 49.0)
    bad = shapely.affinity.translate(shapely.box(5.0, 45.0, 45.0, 49.0), *shift)
    frame = pd.DataFrame({"fir_id": ["GOOD", "BADX"], "geometry": [good, bad]})
    path = tmp_path / "firs.geojson"
    import geopandas as gpd

    gpd.GeoDataFrame(frame, geometry="geometry", crs=4326).to_file(path)
    with pytest.raises(FirDataError) as info:
        load_firs(path, check_overlaps=False)
    message = str(info.value)
    assert str(path) in message and "field geometry" in message
    assert "FIR BADX" in message and fragment in message and "GOOD" not in message
    with pytest.raises(FirDataError, match="FIR BADX"):
        validate_firs(frame, check_overlaps=False)


def test_reference_world_firs_across_the_antimeridian_still_load():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        firs = load_firs(check_overlaps=False)
    assert {"PAZA", "UHMM"} <= set(firs["fir_id"])  # written with longitudes up to 230


def test_listed_row_tests_exist():
    doc = __doc__ or ""
    modules = {
        "flight_fees_tests.http.test_intake": [
            "test_every_malformed_signed_body_is_400",
            "test_weak_secrets_are_refused",
            "test_replayed_request_is_refused",
            "test_one_json_log_line_per_request_never_the_secret",
            "test_client_disconnect_is_one_line_without_traceback",
        ],
        "flight_fees_tests.http.test_intake_load": [
            "test_unsigned_large_uploads_keep_memory_bounded",
            "test_slow_header_connections_are_closed",
            "test_slow_body_is_cut_off",
        ],
        "flight_fees_tests.lib.db.test_numbers": [
            "test_database_refuses_non_finite_and_non_numbers",
            "test_sums_are_exact",
        ],
        "flight_fees_tests.lib.db.test_migrations": [
            "test_0002_converts_existing_numbers_exactly",
            "test_0002_refuses_rows_it_cannot_convert",
        ],
        "flight_fees_tests.test_secrets": ["test_a_pipeline_run_with_credentials_leaks_nothing"],
    }
    for module, names in modules.items():
        loaded = importlib.import_module(module)
        assert module.rsplit(".", 1)[1] in doc.replace("/", ".")
        for name in names:
            assert callable(getattr(loaded, name)), f"{module}.{name}"


# -- track store ----------------------------------------------------------------------------

DAY = dt.date(2024, 3, 1)


def _write_file(folder: Path, name: str, frame: pd.DataFrame) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    frame = frame.assign(ts=frame["ts"].astype("datetime64[us, UTC]"))
    path = folder / name
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, compression="none")
    return path


def _break_column(path: Path, column: str) -> None:
    """Overwrite the page header of ``column``'s first data page: the footer and the other
    columns stay readable, reading ``column`` fails."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    chunk = meta.row_group(0).column(meta.schema.names.index(column))
    data = bytearray(path.read_bytes())
    data[chunk.data_page_offset : chunk.data_page_offset + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["[ab].parquet", "x*y.parquet", "q?.parquet"])
def test_track_store_file_names_are_never_globs(tmp_path: Path, name: str):
    folder = tmp_path / "tracks" / f"day={DAY}"
    _write_file(folder, "a.parquet", synthetic_positions([1], points=12))
    _write_file(folder, "b.parquet", synthetic_positions([2], points=12))
    _write_file(folder, "xzy.parquet", synthetic_positions([4], points=12))
    _write_file(folder, "qq.parquet", synthetic_positions([5], points=12))
    _write_file(folder, name, synthetic_positions([3], points=12))
    source = ParquetTrackSource(tmp_path / "tracks")
    result = source.fetch([1, 2, 3, 4, 5], day=DAY)
    assert result.failures == {}
    assert result.tracks.groupby("flight_id").size().to_dict() == {f: 12 for f in range(1, 6)}
    assert source.flight_ids_for_day(DAY) == [1, 2, 3, 4, 5]
    assert source.fetch_day(DAY).tracks.groupby("flight_id").size().to_dict() == {
        f: 12 for f in range(1, 6)
    }


@pytest.fixture
def store_with_corrupt_files(tmp_path: Path) -> ParquetTrackSource:
    """Day 2024-03-01: 101 and 102 in a sound file, 103 in a file whose ``lat`` pages are
    broken, and a file that is no Parquet at all."""
    folder = tmp_path / "tracks" / f"day={DAY}"
    _write_file(folder, "sound.parquet", synthetic_positions([101, 102]))
    broken = _write_file(folder, "broken.parquet", synthetic_positions([103]))
    _break_column(broken, "lat")
    (folder / "garbage.parquet").write_bytes(b"this is no parquet file " * 40)
    return ParquetTrackSource(tmp_path / "tracks")


def test_track_store_corrupt_file_fails_only_its_flights(store_with_corrupt_files, engine):
    from flight_fees.lib.billing.fee_lines import record_flight_failures
    from flight_fees.lib.ops.queue import FlightQueue
    from flight_fees.lib.processing.pipeline import fetch_tracks_stage

    source = store_with_corrupt_files
    result = source.fetch([101, 102, 103, 104], day=DAY)
    assert result.flight_ids == [101, 102]  # the rest of the day is delivered
    categories = {f: x.category for f, x in result.failures.items()}
    assert categories == {103: "corrupt_file", 104: "corrupt_file"}
    assert "broken.parquet" in result.failures[103].message  # its file, by name
    assert "garbage.parquet" in result.failures[104].message  # may be in the unreadable one
    assert sorted(Path(p).name for p in result.stats["corrupt_files"]) == [
        "broken.parquet",
        "garbage.parquet",
    ]
    day = source.fetch_day(DAY)
    assert day.flight_ids == [101, 102] and set(day.failures) == {103}
    assert source.flight_ids_for_day(DAY) == [101, 102, 103]

    # in the pipeline: only 103 and 104 fail, for good (no retry, no attempt wasted on them)
    queue = FlightQueue(engine)
    queue.enqueue([101, 102, 103, 104], flight_date=DAY)
    stage = fetch_tracks_stage(source, DAY, [101, 102, 103, 104])
    assert stage.flight_ids == [101, 102] and stage.source_error is None
    statuses = record_flight_failures(engine, queue, stage.failures)
    assert statuses == {103: "failed", 104: "failed"}


def test_track_store_a_flight_split_over_a_corrupt_file_is_not_billed(tmp_path: Path):
    """Rows of 201 in a sound file and in one whose lat pages are broken: never a partial
    track."""
    folder = tmp_path / "tracks" / f"day={DAY}"
    track = synthetic_positions([201, 202])
    first, second = track.iloc[::2], track.iloc[1::2]
    _write_file(folder, "a.parquet", first)
    broken = _write_file(folder, "b.parquet", second[second["flight_id"] == 201])
    _write_file(folder, "c.parquet", second[second["flight_id"] == 202])
    _break_column(broken, "lat")
    result = ParquetTrackSource(tmp_path / "tracks").fetch([201, 202], day=DAY)
    assert result.flight_ids == [202] and len(result.tracks) == 40
    assert result.failures[201].category == "corrupt_file"


# -- source faults ---------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["partial", "broker_timeout", "servers_short"])
def test_source_faults_spend_no_attempts_and_open_the_breaker(engine, fault):
    """Ten rounds of a broker incident: the healthy flights never lose an attempt (the old
    code made them dead after five), the breaker opens after five; then they bill."""
    from flight_fees.lib.billing.fee_lines import settle_track_failures
    from flight_fees.lib.ops.breaker import CircuitBreaker
    from flight_fees.lib.ops.queue import FlightQueue
    from flight_fees.lib.tracks import PinotTrackSource
    from flight_fees_tests.pinot_broker import StandInPinotBroker

    ids = [101, 102, 103]
    queue = FlightQueue(engine, max_attempts=5, retry_backoff_s=0)
    queue.enqueue(ids, flight_date=DAY)
    breaker = CircuitBreaker(engine, "pinot-test", failure_threshold=5, cooldown_s=0)
    with StandInPinotBroker(synthetic_positions(ids)) as broker:
        source = PinotTrackSource(broker.url, retries=0, backoff_s=0, timeout_s=2)
        broker.inject(fault, times=1000, match=lambda sql: " IN (" in sql)
        for _ in range(10):
            claimed = [c.flight_id for c in queue.claim("run", 10)]
            assert claimed == ids
            result = source.fetch(claimed, day=DAY)
            failures = {f: (x.category, x.message) for f, x in result.failures.items()}
            settled = settle_track_failures(
                engine, queue, breaker, failures, delivered=len(result.flight_ids)
            )
            assert settled.source_down and settled.statuses == dict.fromkeys(ids, "queued")
        state = breaker.state()
        assert state.state == "open" and state.consecutive_failures == 10
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT status, attempts FROM flight_processing_queue")).all()
        assert {tuple(r) for r in rows} == {("queued", 0)}
        broker.clear_faults()
        claimed = [c.flight_id for c in queue.claim("run", 10)]
        result = source.fetch(claimed, day=DAY)
        assert result.failures == {} and result.flight_ids == ids
        settle_track_failures(engine, queue, breaker, {}, delivered=3)
        assert breaker.state().state == "closed"
        source.close()


def test_source_faults_are_released_but_flight_data_faults_count(engine):
    from flight_fees.lib.billing.fee_lines import record_flight_failures
    from flight_fees.lib.ops.queue import FlightQueue

    queue = FlightQueue(engine, retry_backoff_s=600)
    queue.enqueue([1, 2, 3, 4], flight_date=DAY)
    queue.claim("run", 10)
    statuses = record_flight_failures(
        engine,
        queue,
        {
            1: ("timeout", "no answer within 32 s"),
            2: ("partial_result", "only 2 of 3 servers responded"),
            3: ("bad_track", "3 usable points"),
            4: ("not_found", "no positions"),
        },
    )
    assert statuses == {1: "queued", 2: "queued", 3: "failed", 4: "failed"}
    with engine.connect() as conn:
        rows = dict(
            conn.execute(text("SELECT flight_id, attempts FROM flight_processing_queue")).all()
        )
    assert rows == {1: 0, 2: 0, 3: 1, 4: 1}
    assert queue.count_claimable() == 0  # the released ones wait for the back-off


# -- crossings CLI ------------------------------------------------------------------------------


def _crossings(*args: object):
    import typer
    from typer.testing import CliRunner

    from flight_fees.cli.crossings import crossings_command

    app = typer.Typer(add_completion=False)

    @app.callback()
    def _main() -> None:
        """test app"""

    app.command("crossings")(crossings_command)
    return CliRunner().invoke(app, ["crossings", *map(str, args)])


def _straight_track(flight_id: int = 1, n: int = 300) -> pd.DataFrame:
    """Lat 50.5 from 4.5 E to 7.5 E (Brussels -> Germany), every 5 s."""
    t0 = pd.Timestamp("2024-05-01T10:00:00Z")
    return pd.DataFrame(
        {
            "flight_id": flight_id,
            "ts": t0 + pd.to_timedelta(np.arange(n) * 5, unit="s"),
            "lat": 50.5,
            "lon": np.linspace(4.5, 7.5, n),
        }
    )


def test_crossings_cli_track_shifted_by_540_degrees_fails_loudly(tmp_path: Path):
    track = _straight_track()
    good = tmp_path / "good.parquet"
    track.to_parquet(good)
    shifted = tmp_path / "shifted.parquet"
    track.assign(lon=track["lon"] + 540.0).to_parquet(shifted)
    ok = _crossings(good, "-o", tmp_path / "good.csv")
    assert ok.exit_code == 0, ok.output
    bad = _crossings(shifted, "-o", tmp_path / "shifted.csv")
    assert bad.exit_code == 1
    assert "300 position(s) of 1 flight(s) missing, at (0, 0) or outside" in bad.output
    assert "lon [-180, 180]" in bad.output and "fewer than 10 usable positions" in bad.output


def test_crossings_cli_positions_outside_every_fir_fail_loudly(tmp_path: Path):
    import geopandas as gpd

    firs = tmp_path / "firs.geojson"
    gpd.GeoDataFrame(
        {"fir_id": ["AAAA"], "name": ["A"], "geometry": [shapely.box(4.0, 50.0, 6.0, 51.0)]},
        crs=4326,
    ).to_file(firs)
    src = tmp_path / "tracks.parquet"
    _straight_track().to_parquet(src)  # leaves the FIR at 6 E
    result = _crossings(src, "--firs", firs, "-o", tmp_path / "out.csv")
    assert result.exit_code == 1
    assert "outside every FIR (e.g. flight 1 at lat 50.5000, lon 6.0" in result.output
    assert (tmp_path / "out.csv").exists()  # the crossings of the rest are written


def test_crossings_cli_cleans_tracks_as_the_pipeline_does(tmp_path: Path):
    """Conflicting duplicate timestamps: the pipeline keeps the first position of each
    timestamp; the command now gives exactly the pipeline's crossings."""
    from flight_fees.lib.airspace.crossings import compute_crossings
    from flight_fees.lib.airspace.index_store import cached_fir_index, load_firs_cached
    from flight_fees.lib.tracks import clean_tracks

    track = _straight_track()
    ghosts = track.iloc[5::10].assign(lat=lambda f: f["lat"] + 2.5)  # same ts, elsewhere
    noisy = pd.concat([track, ghosts], ignore_index=True).sort_values("ts", kind="stable")
    src = tmp_path / "noisy.parquet"
    noisy.to_parquet(src)
    result = _crossings(src, "-o", tmp_path / "out.parquet")
    assert result.exit_code == 0, result.output
    assert "30 position(s) with an already seen timestamp dropped" in result.output
    got = pd.read_parquet(tmp_path / "out.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        index = cached_fir_index(load_firs_cached(None))
    pipeline = compute_crossings(clean_tracks(noisy.assign(alt_ft=np.nan)).tracks, index)
    raw = compute_crossings(noisy, index)
    assert len(raw) != len(pipeline)  # what the command computed before
    assert got["fir_id"].tolist() == pipeline["fir_id"].tolist()
    assert np.allclose(got["flown_km"], pipeline["flown_km"])


# -- terminal injection ---------------------------------------------------------------------

EVIL = "Evil\x1b[2J\x1b]0;owned\x07 Corp\u202e\x9b31m"


def _no_control(text: str) -> bool:
    return not any(c in text for c in "\x1b\x07\u202e\x9b")


def test_terminal_invoice_show_strips_control_characters(engine, db_url, monkeypatch):
    from typer.testing import CliRunner

    from flight_fees.cli.invoice import invoice_app
    from flight_fees.lib.billing.invoicing import consolidate
    from flight_fees_tests.factories import make_customer, make_fee_line, make_flight

    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    cid = make_customer(engine, "EVIL", name=EVIL)
    fid = make_flight(engine, flight_date=dt.date(2026, 1, 4), callsign="EV\x1b[5m1")
    make_fee_line(engine, cid, dt.date(2026, 1, 4), "120.00", flight_id=fid)
    [invoice] = consolidate(engine, dt.date(2026, 1, 31)).created
    runner = CliRunner()
    for args in (["show", invoice.number], ["list"]):
        result = runner.invoke(invoice_app, args, env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "Evil[2J]0;owned Corp31m" in result.output  # the text, without its controls
        assert _no_control(result.output)


def test_terminal_queue_errors_strip_control_characters(engine, db_url, monkeypatch):
    from typer.testing import CliRunner

    from flight_fees.cli.main import app
    from flight_fees.lib.ops.queue import FlightQueue

    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    queue = FlightQueue(engine)
    queue.enqueue([7])
    queue.fail(7, "query_error", f"broker said: {EVIL}")
    result = CliRunner().invoke(app, ["queue"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "broker said: Evil" in result.output and _no_control(result.output)


# -- ids file -------------------------------------------------------------------------------


def test_ids_file_reports_the_non_utf8_line_and_goes_on(
    tmp_path: Path, engine, db_url, monkeypatch
):
    from typer.testing import CliRunner

    from flight_fees.cli.main import app
    from flight_fees.lib.ops.intake import parse_flight_ids

    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"flight_id\n101\n102\xff\n103\n\xe9104\n105\n")
    parsed = parse_flight_ids([], [ids])
    assert parsed.ids == [101, 103, 105]
    assert parsed.invalid == [
        ("ids.txt:3", "not UTF-8 text (byte 0xff at column 4)"),
        ("ids.txt:5", "not UTF-8 text (byte 0xe9 at column 1)"),
    ]
    monkeypatch.setenv("FLIGHT_FEES_DATABASE_URL", db_url)
    result = CliRunner().invoke(app, ["enqueue", "--file", str(ids)])
    assert result.exit_code == 1
    assert "ids.txt:3" in result.output and "not UTF-8" in result.output
    assert "queued 3 new flight(s)" in result.output
