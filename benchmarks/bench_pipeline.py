#!/usr/bin/env python
"""Benchmark of the billing pipeline end to end, paths side by side (``make bench-pipeline``).

``--flights`` synthetic flights (default 10,000) of ONE UTC day (``--day``) are generated with
``flight_fees.lib.ops.demo.generate_demo`` in batches of ``--batch`` flights (bounded memory; flight
ids renumbered so they stay unique within the day, registrations that two batches gave to
different aircraft renamed) into an embedded Parquet track store, cached between runs under
``--cache-dir`` by (flights, seed, day, batch). Then, one after the other, each path on a FRESH
billing database (a SQLite file in a fresh ``FLIGHT_FEES_HOME``, or a fresh PostgreSQL database
on the server of ``--database-url``) and a fresh ``DAGSTER_HOME``, each as a subprocess in its
own session so that CPU and memory are those of its whole process tree:

- ``read``: the track source's fetch of every flight of the day, in the chunks the pipeline
  uses (``flight_fees.lib.processing.pipeline.CHUNK_FLIGHTS``, else 1,000 flights), no cleaning:
  the floor;
- ``library``: the library functions alone, no Dagster, chunk by chunk as the processing assets
  do: tracks (``fetch_tracks_chunks``, else ``fetch_tracks_stage`` per chunk) -> attributes ->
  ``crossings_stage`` -> ``bill_stage`` -> ``write_bills`` (+ failures recorded);
- ``in_process``: ``flight-fees process --day DAY`` (a whole-day backfill through Dagster);
- ``production``: the N flights enqueued, then ``dagster-daemon run -w workspace.yaml``
  (``flight_queue_sensor`` claims every 30 s, the run queue launches ``process_flights`` runs)
  until the queue is empty and every fee line of the library path exists (or no flight is
  queued / processing and every flight is billed or failed), bounded by ``--timeout``; the
  daemon then gets SIGTERM, SIGKILL after a grace period, and no process of its tree survives;
- ``celery_1`` / ``celery_2``: the production path in scale-out mode (FLIGHT_FEES_EXECUTOR=celery:
  the sensor requests ``process_flights_celery``), with 1 or 2 Celery workers of one process
  each (RabbitMQ and Redis of ``FLIGHT_FEES_CELERY_BROKER`` / ``_BACKEND``, default 127.0.0.1;
  a broker queue of the path's own) started beside the daemon, in its measured tree.

Per path: wall seconds, flights/min, CPU ms per flight (user + sys of the whole tree: this
process is a child subreaper, so every descendant is reaped here or by a reaped parent and
counts in ``RUSAGE_CHILDREN``; psutil polling of the live tree is a lower-bound cross-check),
peak RSS of the tree (psutil, sum of the RSS of every descendant, every 0.2 s), fee lines
written and flights billed (from the database). Library, in-process and production must bill
the same flights with the same fee-line totals: a mismatch is printed loudly.

The shared FIR-index cache (``FLIGHT_FEES_CACHE_DIR``) is warmed once before the first path:
every path measures the warm state a long-running installation is in.

Figures are printed, never asserted. ``--json FILE`` writes
``{"flights", "paths": {name: {"flights_per_min", "cpu_ms_per_flight", "peak_rss_mb",
"wall_s"}}, "load_avg"}``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PATHS = ("read", "library", "in_process", "production", "celery_1", "celery_2")
#: paths run by dagster-daemon over the enqueued flights, until they are billed
DAEMON_PATHS = ("production", "celery_1", "celery_2")
#: Celery paths: number of worker processes (one task each)
CELERY_WORKERS = {"celery_1": 1, "celery_2": 2}
DEFAULT_DAY = "2026-10-26"
DEFAULT_CACHE = ROOT / "benchmarks" / "out" / "pipeline-cache"
DEFAULT_CHUNK = 1_000
#: the system this replaces: 5.2 s per flight
REPLACED_S_PER_FLIGHT = 5.2
GOAL_LIBRARY_CPU_MS = 12.0
GOAL_PRODUCTION_SHARE = 0.5
GOAL_RSS_MB = 2048.0
GOAL_RSS_FLIGHTS = 35_000
POLL_S = 0.2
DB_POLL_S = 2.0
GRACE_S = 20.0
PR_SET_CHILD_SUBREAPER = 36
#: caller settings the paths inherit (everything else of flight_fees runs on its defaults)
KEEP_ENV = ("FLIGHT_FEES_FIR_SET",)


# -- measurement ------------------------------------------------------------------------------


@dataclass
class Measured:
    wall_s: float = 0.0
    cpu_s: float = 0.0
    cpu_polled_s: float = 0.0
    peak_rss_mb: float = 0.0
    #: largest subtree of one daemon-launched run (0: no such run; the whole tree is one run)
    peak_run_rss_mb: float = 0.0
    returncode: int | None = None
    timed_out: bool = False
    #: ``until()`` came true (a path run until a condition, not to its end)
    reached: bool = False
    processes_seen: int = 0


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process (and reaped here), so the CPU of
    every process of a measured tree ends up in ``RUSAGE_CHILDREN``."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: a Dagster run launched by the daemon: a ``multiprocessing`` spawn child of the code server
RUN_ROOT_MARK = "spawn_main"


class TreeMonitor(threading.Thread):
    """Every ``POLL_S``: the summed RSS of all descendants of this process (peak kept), the
    summed RSS of each run's subtree (a process whose command line holds ``RUN_ROOT_MARK``,
    with its descendants; peak of the largest kept) and the last CPU time seen of each process
    (a lower bound of the tree's CPU)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self._stop_event = threading.Event()
        self.peak_rss = 0
        self.peak_run_rss = 0
        self.cpu: dict[tuple[int, float], float] = {}
        self._is_run: dict[tuple[int, float], bool] = {}

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(POLL_S)

    def sample(self) -> None:
        psutil = self._psutil
        try:
            procs = self._me.children(recursive=True)
        except psutil.Error:
            return
        tree: dict[int, tuple[int, int, bool]] = {}  # pid -> (parent pid, RSS, run root)
        for proc in procs:
            try:
                with proc.oneshot():
                    key = (proc.pid, proc.create_time())
                    rss = proc.memory_info().rss
                    times = proc.cpu_times()
                    self.cpu[key] = times.user + times.system
                    if key not in self._is_run:
                        self._is_run[key] = any(RUN_ROOT_MARK in a for a in proc.cmdline())
                    tree[proc.pid] = (proc.ppid(), rss, self._is_run[key])
            except psutil.Error:
                continue
        runs: dict[int, int] = {}
        for pid, (_, rss, _) in tree.items():
            node = pid
            while node in tree:
                parent, _, is_run = tree[node]
                if is_run:
                    runs[node] = runs.get(node, 0) + rss
                    break
                node = parent
        self.peak_rss = max(self.peak_rss, sum(rss for _, rss, _ in tree.values()))
        self.peak_run_rss = max(self.peak_run_rss, max(runs.values(), default=0))

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def descendants() -> list[Any]:
    import psutil

    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def kill_tree(main: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the process group of ``main`` and every descendant, SIGKILL what is left after
    ``grace_s``, then reap every child (orphans come back to this subreaper)."""
    import psutil

    gone = (ProcessLookupError, PermissionError, psutil.Error)
    procs = descendants()
    with contextlib.suppress(*gone):
        os.killpg(main.pid, signal.SIGTERM)
    for proc in procs:
        with contextlib.suppress(*gone):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    if main.poll() is None or alive:
        with contextlib.suppress(*gone):
            os.killpg(main.pid, signal.SIGKILL)
        for proc in alive + descendants():
            with contextlib.suppress(*gone):
                proc.kill()
    main.wait()
    reap_all(timeout_s=30.0)


def reap_all(timeout_s: float) -> None:
    """Wait for every remaining child (orphaned grandchildren included) until none is left."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                for proc in descendants():
                    with contextlib.suppress(Exception):
                        proc.kill()
                if time.monotonic() > deadline + 10:
                    print("  warning: child processes left unreaped", file=sys.stderr)
                    return
            time.sleep(0.05)


def run_measured(
    cmd: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log: Path,
    timeout_s: float,
    until: Any = None,
) -> Measured:
    """Run ``cmd`` in its own session and measure its process tree. Without ``until`` it runs to
    its end; with ``until`` (a callable polled every ``DB_POLL_S``) it runs until ``until()``
    is true, then the tree is stopped (SIGTERM, SIGKILL after ``GRACE_S``)."""
    reap_all(timeout_s=5.0)  # nothing of an earlier step may land in this path's figures
    out = Measured()
    monitor = TreeMonitor()
    cpu0 = children_cpu_s()
    t0 = time.perf_counter()
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        monitor.start()
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if until is None:
                    try:
                        proc.wait(timeout=DB_POLL_S)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                else:
                    if until():
                        out.reached = True
                        break
                    if proc.poll() is not None:
                        break
                    time.sleep(DB_POLL_S)
                if time.monotonic() > deadline:
                    out.timed_out = True
                    break
            out.wall_s = time.perf_counter() - t0
        finally:
            if proc.poll() is None or descendants():
                kill_tree(proc, GRACE_S)
            else:
                reap_all(timeout_s=10.0)
            monitor.stop()
            monitor.sample()
    out.returncode = proc.returncode
    out.cpu_s = children_cpu_s() - cpu0
    out.cpu_polled_s = sum(monitor.cpu.values())
    out.peak_rss_mb = monitor.peak_rss / 2**20
    out.peak_run_rss_mb = monitor.peak_run_rss / 2**20
    out.processes_seen = len(monitor.cpu)
    return out


# -- data -------------------------------------------------------------------------------------


def cache_key(args: argparse.Namespace) -> str:
    return f"n{args.flights}-seed{args.seed}-{args.day}-b{args.batch}"


def ensure_data(args: argparse.Namespace) -> Path:
    """The cached day (generated in a child process when missing)."""
    target = Path(args.cache_dir) / cache_key(args)
    if (target / "meta.json").exists():
        print(f"data: cached {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"data: generating {args.flights:,} flights of {args.day} in batches of {args.batch:,}")
    t0 = time.perf_counter()
    cmd = [sys.executable, __file__, "--child", "generate", "--out", str(target)]
    cmd += ["--flights", str(args.flights), "--seed", str(args.seed), "--day", args.day]
    cmd += ["--batch", str(args.batch)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    print(f"data: generated in {time.perf_counter() - t0:.0f} s -> {target}")
    return target


def child_generate(args: argparse.Namespace) -> None:
    """Write ``--flights`` flights of ``--day`` to ``<out>/tracks`` batch by batch, plus
    ``customers.parquet``, ``aircraft.parquet`` and ``meta.json`` (written last)."""
    import numpy as np
    import pandas as pd

    from flight_fees.lib.ops.demo import generate_demo
    from flight_fees.lib.tracks.store import write_track_store

    out = Path(args.out)
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    day = dt.date.fromisoformat(args.day)
    day_code = int(day.strftime("%Y%m%d"))
    day_dir = tmp / "tracks" / f"day={day.isoformat()}"
    day_dir.mkdir(parents=True)
    known: dict[str, tuple[str, ...]] = {}  # registration -> its aircraft (type, operator, MTOW)
    aircraft_parts: list[pd.DataFrame] = []
    customers = None
    done = positions = batch = 0
    while done < args.flights:
        data = generate_demo(n_flights=args.batch, start_day=day, n_days=1, seed=args.seed + batch)
        in_day = data.flights.loc[data.flights["flight_date"] == day, "flight_id"]
        keep = np.sort(in_day.to_numpy(dtype=np.int64))[: args.flights - done]
        tracks = data.tracks[data.tracks["flight_id"].isin(keep)].reset_index(drop=True)
        # ids YYYYMMDD * 100000 + sequence, the sequence going on from the previous batches
        new_ids = day_code * 100_000 + done + 1 + np.arange(len(keep), dtype=np.int64)
        tracks["flight_id"] = new_ids[np.searchsorted(keep, tracks["flight_id"].to_numpy())]
        aircraft, rename = _unique_registrations(data.aircraft, known, batch)
        if rename:
            codes, uniques = pd.factorize(tracks["registration"])
            mapped = np.array([rename.get(r, r) for r in uniques] + [None], dtype=object)
            tracks["registration"] = pd.array(mapped[codes], dtype="str")  # -1 (null) -> None
        aircraft_parts.append(aircraft)
        customers = data.customers if customers is None else customers
        staging = tmp / f"batch-{batch}"
        for path in write_track_store(tracks, staging):
            os.replace(path, day_dir / f"batch-{batch:03d}-{path.name}")
        shutil.rmtree(staging)
        done += len(keep)
        positions += len(tracks)
        batch += 1
        print(f"  batch {batch}: {done:,} / {args.flights:,} flights, {positions:,} positions")
        del data, tracks
    aircraft = pd.concat(aircraft_parts, ignore_index=True).drop_duplicates("registration")
    aircraft.to_parquet(tmp / "aircraft.parquet")
    assert customers is not None
    customers.to_parquet(tmp / "customers.parquet")
    meta = {
        "flights": done,
        "positions": positions,
        "day": day.isoformat(),
        "seed": args.seed,
        "batches": batch,
        "aircraft": len(aircraft),
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)


def _unique_registrations(
    aircraft: Any, known: dict[str, tuple[str, ...]], batch: int
) -> tuple[Any, dict[str, str]]:
    """Each batch draws its own fleet: a registration an earlier batch gave to an aircraft of
    another type or operator is renamed (``REG-<batch>``), so the union stays consistent."""
    rename: dict[str, str] = {}
    regs = []
    for reg, typ, customer, mtow in zip(
        aircraft["registration"],
        aircraft["icao_type"],
        aircraft["customer_code"],
        aircraft["mtow_kg"],
        strict=True,
    ):
        identity = (str(typ), str(customer), str(mtow))
        seen = known.get(reg)
        if seen is not None and seen != identity:
            n, new = 0, f"{reg}-{batch}"
            while new in known:
                n += 1
                new = f"{reg}-{batch}{chr(ord('A') + n)}"
            rename[reg] = new
            reg = new
        known.setdefault(reg, identity)
        regs.append(reg)
    if rename:
        aircraft = aircraft.copy()
        aircraft["registration"] = regs
    return aircraft, rename


# -- one path's environment -------------------------------------------------------------------


@dataclass
class PathEnv:
    name: str
    home: Path
    dagster_home: Path
    url: str
    env: dict[str, str]
    pg_database: str | None = None


@dataclass
class PathResult:
    name: str
    measured: Measured | None = None
    db: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    note: str | None = None


def base_env(args: argparse.Namespace, cache_root: Path) -> dict[str, str]:
    # the defaults: none of the caller's PINOT_* / DAGSTER_* / FLIGHT_FEES_* settings (sensor
    # claim size, flights per run, tick interval, database, home...) but the FIR set
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PINOT_", "DAGSTER_", "FLIGHT_FEES_")) or k in KEEP_ENV
    }
    if args.claim_batch:
        env["FLIGHT_FEES_CLAIM_BATCH"] = str(args.claim_batch)
    if args.per_run:
        env["FLIGHT_FEES_MAX_FLIGHTS_PER_RUN"] = str(args.per_run)
    env["FLIGHT_FEES_CACHE_DIR"] = str(cache_root / "fir-cache")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def prepare_path(
    name: str, args: argparse.Namespace, data: Path, work: Path, env0: dict[str, str]
) -> PathEnv:
    """A fresh home (tracks linked from the cache), DAGSTER_HOME and billing database with the
    customers and aircraft loaded; for ``production`` the day's flights enqueued."""
    import pandas as pd

    from flight_fees.lib.core.settings import normalise_database_url
    from flight_fees.lib.db import make_engine, upgrade
    from flight_fees.lib.ops.queue import FlightQueue
    from flight_fees.lib.ops.registry import load_aircraft, load_customers

    home = work / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "tracks").symlink_to(data / "tracks", target_is_directory=True)
    dagster_home = home / "dagster"
    dagster_home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {**env0, "FLIGHT_FEES_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    if name in CELERY_WORKERS:
        env["FLIGHT_FEES_EXECUTOR"] = "celery"
        env["FLIGHT_FEES_CELERY_QUEUE"] = f"bench_pipeline_{os.getpid()}_{name}"
    pg_database = None
    if args.database_url:
        pg_database = f"bench_pipeline_{name}_{os.getpid()}"
        url = create_pg_database(normalise_database_url(args.database_url), pg_database)
        env["FLIGHT_FEES_DATABASE_URL"] = url
    else:
        url = f"sqlite:///{home / 'billing.db'}"
        env.pop("FLIGHT_FEES_DATABASE_URL", None)
    engine = make_engine(url)
    try:
        upgrade(engine)
        load_customers(engine, pd.read_parquet(data / "customers.parquet"))
        load_aircraft(engine, pd.read_parquet(data / "aircraft.parquet"))
        if name in DAEMON_PATHS:
            FlightQueue(engine).enqueue(day_flight_ids(args), flight_date=args.day_date)
    finally:
        engine.dispose()
    return PathEnv(name, home, dagster_home, url, env, pg_database)


def day_flight_ids(args: argparse.Namespace) -> list[int]:
    code = int(args.day_date.strftime("%Y%m%d")) * 100_000
    return [code + i for i in range(1, args.flights + 1)]


def create_pg_database(server_url: str, name: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(server_url)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def drop_pg_database(server_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(make_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def status_counts(conn: Any) -> tuple[dict[str, int], dict[str, int]]:
    """(queue rows per status, ``flights`` rows per status)."""
    from sqlalchemy import func, select

    from flight_fees.lib.db.models import Flight, FlightQueueItem

    def count(status: Any) -> dict[str, int]:
        rows = conn.execute(select(status, func.count()).group_by(status)).all()
        return {str(k): int(v) for k, v in rows}

    return count(FlightQueueItem.status), count(Flight.status)


def db_summary(url: str) -> dict[str, Any]:
    """Fee lines, totals per billing currency, flights per status, queue per status, and a
    digest of the billed flight ids."""
    from sqlalchemy import func, select

    from flight_fees.lib.db import make_engine
    from flight_fees.lib.db.models import FeeLine, Flight

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            totals = {
                ccy: {"lines": int(n), "total": str(total)}
                for ccy, n, total in conn.execute(
                    select(
                        FeeLine.billing_currency, func.count(), func.sum(FeeLine.billing_amount)
                    ).group_by(FeeLine.billing_currency)
                )
            }
            queue, flights = status_counts(conn)
            billed = conn.execute(
                select(Flight.flight_id).where(Flight.status == "billed").order_by(Flight.flight_id)
            ).scalars()
            digest = hashlib.sha256(",".join(map(str, billed)).encode()).hexdigest()[:16]
    finally:
        engine.dispose()
    return {
        "fee_lines": sum(t["lines"] for t in totals.values()),
        "totals": totals,
        "flights": flights,
        "queue": queue,
        "billed_digest": digest,
    }


def production_done(url: str, n_flights: int, expected_lines: int | None) -> Any:
    """The predicate ending the production path, polled every ``DB_POLL_S`` (prints progress)."""
    from sqlalchemy import func, select

    from flight_fees.lib.db import make_engine
    from flight_fees.lib.db.models import FeeLine

    engine = make_engine(url)
    started = time.monotonic()
    last_print = [0.0]

    def done() -> bool:
        try:
            with engine.connect() as conn:
                queue, flights = status_counts(conn)
                lines = conn.execute(select(func.count()).select_from(FeeLine)).scalar_one()
        except Exception as exc:  # a locked / busy database: ask again at the next poll
            print(f"    (poll failed: {type(exc).__name__}: {exc})")
            return False
        elapsed = time.monotonic() - started
        if elapsed - last_print[0] >= 30:
            last_print[0] = elapsed
            print(
                f"    {elapsed:6.0f} s: queue {dict(sorted(queue.items())) or 'empty'}, "
                f"flights {dict(sorted(flights.items()))}, fee lines {lines:,}",
                flush=True,
            )
        if not queue and (expected_lines is None or lines >= expected_lines):
            return True  # every flight billed (its queue row goes with its fee lines)
        # or nothing left to run and every flight billed or failed
        waiting = queue.get("queued", 0) + queue.get("processing", 0)
        return waiting == 0 and sum(flights.values()) >= n_flights

    done.engine = engine  # type: ignore[attr-defined]
    return done


# -- the paths (child side) -------------------------------------------------------------------


def chunk_flights() -> int:
    from flight_fees.lib.processing import pipeline

    return int(getattr(pipeline, "CHUNK_FLIGHTS", DEFAULT_CHUNK))


def child_read(args: argparse.Namespace) -> dict[str, Any]:
    from flight_fees.lib.tracks import make_track_source

    day = dt.date.fromisoformat(args.day)
    source = make_track_source("parquet")
    ids = source.flight_ids_for_day(day)
    size = chunk_flights()
    positions = flights = 0
    for start in range(0, len(ids), size):
        fetched = source.fetch(ids[start : start + size], day=day)
        positions += len(fetched.tracks)
        flights += int(fetched.tracks["flight_id"].nunique()) if len(fetched.tracks) else 0
        del fetched
    return {"flights": flights, "positions": positions, "chunk": size}


def child_library(args: argparse.Namespace) -> dict[str, Any]:
    """What the processing assets do, chunk by chunk, without Dagster."""
    from flight_fees.lib.airspace.airports import read_airports
    from flight_fees.lib.airspace.firs import load_firs
    from flight_fees.lib.airspace.index_store import cached_fir_index
    from flight_fees.lib.airspace.zones import load_charging_zones
    from flight_fees.lib.billing.fee_lines import (
        record_flight_failures,
    )
    from flight_fees.lib.charging.aircraft_types import load_aircraft_types
    from flight_fees.lib.charging.fx import load_fx_rates
    from flight_fees.lib.charging.tariffs import load_tariffs
    from flight_fees.lib.db import make_engine
    from flight_fees.lib.ops.queue import FlightQueue
    from flight_fees.lib.processing import pipeline as pl
    from flight_fees.lib.tracks import make_track_source

    day = dt.date.fromisoformat(args.day)
    engine = make_engine()
    queue = FlightQueue(engine)
    source = make_track_source("parquet")
    firs = load_firs()
    index = cached_fir_index(firs)
    zones = load_charging_zones(None, firs=firs)
    airports = read_airports()
    tariffs = load_tariffs()
    fx = load_fx_rates(ROOT / "flight_fees" / "data" / "fx_rates_sample.csv")
    types = load_aircraft_types()
    size = chunk_flights()
    if hasattr(pl, "fetch_tracks_chunks"):
        stages = pl.fetch_tracks_chunks(source, day, None, chunk_flights=size)
    else:
        ids = source.flight_ids_for_day(day)
        stages = (
            pl.fetch_tracks_stage(source, day, ids[i : i + size]) for i in range(0, len(ids), size)
        )
    billed = lines = failed = chunks = 0
    for stage in stages:
        chunks += 1
        batch_id = f"{day.isoformat()}-bench-{chunks}"
        failures = dict(stage.failures)
        if stage.source_error is not None:
            record_flight_failures(engine, queue, failures, batch_id=batch_id)
            raise RuntimeError(f"track source failed: {stage.source_error}")
        attrs = pl.flight_attribute_rows(stage.tracks)
        crossed = pl.crossings_stage(stage.tracks, index, zones, attrs=attrs, airports=airports)
        del stage
        bills = pl.bill_stage(
            engine, crossed.visits, attrs, tariffs=tariffs, fx=fx, aircraft_types=types
        )
        # a whole-day backfill leaves invoiced flights alone
        persisted = pl.write_bills(engine, bills, batch_id=batch_id, skip_invoiced=True).persisted
        failures.update(bills.failures)
        failures.update(persisted.failures)
        record_flight_failures(engine, queue, failures, batch_id=batch_id)
        billed += len(persisted.written)
        lines += persisted.lines
        failed += len(failures)
        del crossed, bills, persisted
    engine.dispose()
    return {"billed": billed, "fee_lines": lines, "failed": failed, "chunks": chunks, "chunk": size}


def child_warm(args: argparse.Namespace) -> None:
    """Fill the FIR-index cache the paths share (outside the measurements)."""
    from flight_fees.lib.airspace.firs import load_firs
    from flight_fees.lib.airspace.index_store import cached_fir_index
    from flight_fees.lib.airspace.zones import load_charging_zones

    warnings.simplefilter("ignore")  # the FIR set's data warnings: the fir_boundaries asset's
    firs = load_firs()
    cached_fir_index(firs)
    load_charging_zones(None, firs=firs)


# -- the paths (parent side) ------------------------------------------------------------------


def path_command(name: str, args: argparse.Namespace, result_file: Path) -> list[str]:
    if name in ("read", "library"):
        return [
            sys.executable,
            __file__,
            "--child",
            name,
            "--day",
            args.day,
            "--result",
            str(result_file),
        ]
    if name == "in_process":
        return [str(BIN / "flight-fees"), "process", "--day", args.day]
    daemon = [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")]
    if name not in CELERY_WORKERS:
        return daemon
    # the workers in the background, then the daemon in place of the shell: one measured tree
    worker = (
        f'"{BIN / "celery"}" -A flight_fees.celery_app worker -Q "$FLIGHT_FEES_CELERY_QUEUE" '
        "-c 1 --prefetch-multiplier=1 -l WARNING"
    )
    starts = "".join(f"{worker} -n bench{i}-$$@%h & " for i in range(CELERY_WORKERS[name]))
    return ["sh", "-c", starts + "exec " + " ".join(f'"{a}"' for a in daemon)]


def delete_celery_queue(queue: str) -> None:
    from kombu import Connection

    from flight_fees.defs.processing.scaleout import celery_config

    with contextlib.suppress(Exception), Connection(celery_config()["broker"]) as conn:
        conn.default_channel.queue_delete(queue)


def run_path(
    name: str,
    args: argparse.Namespace,
    data: Path,
    work: Path,
    env0: dict[str, str],
    expected_lines: int | None,
) -> PathResult:
    result = PathResult(name)
    penv = None
    done = None
    try:
        penv = prepare_path(name, args, data, work, env0)
        result_file = penv.home / "child-result.json"
        log = penv.home / f"{name}.log"
        if name in DAEMON_PATHS:
            done = production_done(penv.url, args.flights, expected_lines)
        print(f"\n[{name}] {' '.join(path_command(name, args, result_file))}", flush=True)
        measured = run_measured(
            path_command(name, args, result_file),
            env=penv.env,
            cwd=ROOT,
            log=log,
            timeout_s=args.timeout,
            until=done,
        )
        result.measured = measured
        if done is not None:
            done.engine.dispose()  # type: ignore[attr-defined]
        if name != "read":
            result.db = db_summary(penv.url)
        child = json.loads(result_file.read_text()) if result_file.exists() else {}
        tail = _tail(log)
        if measured.timed_out:
            result.error = f"timed out after {args.timeout:.0f} s; log {log}:\n{tail}"
        elif name in DAEMON_PATHS:
            if not measured.reached:
                result.error = (
                    f"dagster-daemon exited ({measured.returncode}) before every flight was "
                    f"billed or failed; log {log}:\n{tail}"
                )
        elif measured.returncode == 1 and name == "in_process" and result.db.get("fee_lines"):
            result.note = "exit 1: some flights failed (see the failed count)"
        elif measured.returncode != 0:
            result.error = f"exit {measured.returncode}; log {log}:\n{tail}"
        if name == "read" and child:
            result.note = f"{child['positions']:,} positions in chunks of {child['chunk']:,}"
        if name == "library" and child:
            result.note = f"{child['chunks']} chunk(s) of {child['chunk']:,} flights"
        print(
            f"[{name}] {measured.wall_s:.1f} s wall, {measured.cpu_s:.1f} s CPU "
            f"(polled >= {measured.cpu_polled_s:.1f} s, {measured.processes_seen} processes), "
            f"peak RSS {measured.peak_rss_mb:,.0f} MB"
            + (
                f" (largest single run {measured.peak_run_rss_mb:,.0f} MB)"
                if measured.peak_run_rss_mb
                else ""
            )
            + (f", {result.db.get('fee_lines', 0):,} fee lines" if result.db else ""),
            flush=True,
        )
        if measured.cpu_polled_s > measured.cpu_s * 1.05:
            print(
                f"  warning: polled CPU {measured.cpu_polled_s:.1f} s > rusage "
                f"{measured.cpu_s:.1f} s (a process was not reaped); using the polled figure"
            )
            measured.cpu_s = measured.cpu_polled_s
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
    finally:
        if penv is not None:
            if name in CELERY_WORKERS:
                delete_celery_queue(penv.env["FLIGHT_FEES_CELERY_QUEUE"])
            if penv.pg_database and not args.keep:
                try:
                    drop_pg_database(args.database_url, penv.pg_database)
                except Exception as exc:
                    print(f"  warning: could not drop {penv.pg_database}: {exc}")
            if not args.keep:
                shutil.rmtree(penv.home, ignore_errors=True)
    if result.error:
        print(f"\n!!! [{name}] FAILED: {result.error}\n", file=sys.stderr, flush=True)
    return result


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- report -----------------------------------------------------------------------------------


def figures(result: PathResult, n: int) -> dict[str, float] | None:
    m = result.measured
    if m is None or result.error or m.wall_s <= 0:
        return None
    return {
        "flights_per_min": round(n / m.wall_s * 60.0, 1),
        "cpu_ms_per_flight": round(m.cpu_s * 1000.0 / n, 2),
        "peak_rss_mb": round(m.peak_rss_mb, 1),
        "wall_s": round(m.wall_s, 2),
    }


def load_avg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def consistency(results: dict[str, PathResult]) -> list[str]:
    """Library, in-process and production must bill the same flights, same totals."""
    billing = [r for k, r in results.items() if k != "read" and r.db]
    problems = []
    for other in billing[1:]:
        ref = billing[0]
        for key in ("billed_digest", "fee_lines", "totals"):
            if ref.db.get(key) != other.db.get(key):
                problems.append(
                    f"{ref.name} vs {other.name}: {key} {ref.db.get(key)} != {other.db.get(key)}"
                )
        a, b = ref.db.get("flights", {}), other.db.get("flights", {})
        if a.get("billed") != b.get("billed"):
            problems.append(f"{ref.name} vs {other.name}: flights billed {a} != {b}")
    return problems


def report(
    args: argparse.Namespace,
    meta: dict[str, Any],
    results: dict[str, PathResult],
    load: dict[str, list[float]],
    backend: str,
) -> dict[str, Any]:
    n = args.flights
    figs = {name: figures(r, n) for name, r in results.items()}
    replaced = 60.0 / REPLACED_S_PER_FLIGHT
    print("\n" + "=" * 100)
    print(
        f"bench_pipeline: {n:,} flights of {args.day} ({meta.get('positions', 0):,} positions), "
        f"{backend}, chunk {chunk_flights():,} flights, claim "
        f"{args.claim_batch or 'default'} / per run {args.per_run or 'default'}"
    )
    header = (
        f"{'path':<11} {'flights/min':>12} {'CPU ms/flight':>14} {'peak RSS MB':>12} "
        f"{'wall s':>9} {'fee lines':>10} {'billed':>8} {'failed':>7} {'vs 5.2 s/flt':>13}"
    )
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        f = figs[name]
        flights = r.db.get("flights", {})
        failed = flights.get("failed", 0) + flights.get("blocked", 0)
        if f is None:
            print(f"{name:<11} {'FAILED':>12}  {(r.error or '').splitlines()[0][:70]}")
            continue
        db_cols = (
            f"{r.db.get('fee_lines', 0):>10,} {flights.get('billed', 0):>8,} {failed:>7,}"
            if r.db
            else f"{'-':>10} {'-':>8} {'-':>7}"
        )
        print(
            f"{name:<11} {f['flights_per_min']:>12,.0f} {f['cpu_ms_per_flight']:>14,.1f} "
            f"{f['peak_rss_mb']:>12,.0f} {f['wall_s']:>9,.1f} {db_cols} "
            f"{f['flights_per_min'] / replaced:>12,.0f}x" + (f"  ({r.note})" if r.note else "")
        )
    print()

    def ratio(a: str, b: str) -> str:
        fa, fb = figs.get(a), figs.get(b)
        if not fa or not fb:
            return "n/a"
        return f"{fa['flights_per_min'] / fb['flights_per_min']:.2f}"

    print(
        f"throughput ratios: library/read {ratio('library', 'read')}, "
        f"in_process/library {ratio('in_process', 'library')}, "
        f"production/library {ratio('production', 'library')}"
    )
    if any(figs.get(k) for k in CELERY_WORKERS):
        print(
            f"Celery: celery_2/celery_1 {ratio('celery_2', 'celery_1')} (2 workers / 1, on "
            f"{os.cpu_count()} cores), celery_1/production {ratio('celery_1', 'production')}, "
            f"celery_2/production {ratio('celery_2', 'production')}"
        )
        for k in CELERY_WORKERS:
            f = figs.get(k)
            if f:
                per_day = 86_400_000.0 / f["cpu_ms_per_flight"]
                print(
                    f"  {k}: {f['cpu_ms_per_flight']:.1f} ms CPU per flight (whole tree: "
                    f"daemon, code server, run workers, Celery workers) = {per_day:,.0f} "
                    "flights/day per fully busy core"
                )
    print(f"replaced system: {REPLACED_S_PER_FLIGHT} s per flight = {replaced:.1f} flights/min")
    print("goals (measured / goal):")
    lib, prod = figs.get("library"), figs.get("production")
    if lib:
        print(
            f"  library CPU <= {GOAL_LIBRARY_CPU_MS:g} ms/flight: {lib['cpu_ms_per_flight']:.1f} "
            f"-> {lib['cpu_ms_per_flight'] / GOAL_LIBRARY_CPU_MS:.2f}"
            + ("  MET" if lib["cpu_ms_per_flight"] <= GOAL_LIBRARY_CPU_MS else "  not met")
        )
    if lib and prod:
        share = prod["flights_per_min"] / lib["flights_per_min"]
        print(
            f"  production >= {GOAL_PRODUCTION_SHARE:.0%} of library throughput (at 10,000 "
            f"flights): {share:.1%} -> {share / GOAL_PRODUCTION_SHARE:.2f}"
            + ("  MET" if share >= GOAL_PRODUCTION_SHARE else "  not met")
            + ("" if n == 10_000 else f"  (measured at {n:,} flights)")
        )
    # one run: the whole tree, except under the daemon (several runs + daemon + code server)
    peaks = {
        k: (m.peak_run_rss_mb or m.peak_rss_mb)
        for k, r in results.items()
        if figs.get(k) and (m := r.measured) is not None
    }
    if peaks:
        worst = max(peaks, key=lambda k: peaks[k])
        print(
            f"  peak RSS of any run <= {GOAL_RSS_MB:,.0f} MB (at {GOAL_RSS_FLIGHTS:,} flights): "
            f"{peaks[worst]:,.0f} MB ({worst}) -> {peaks[worst] / GOAL_RSS_MB:.2f}"
            + ("  MET" if peaks[worst] <= GOAL_RSS_MB else "  not met")
            + ("" if n == GOAL_RSS_FLIGHTS else f"  (measured at {n:,} flights)")
        )
        prod = results.get("production")
        if prod and prod.measured and prod.measured.peak_run_rss_mb and figs.get("production"):
            print(
                f"    production: largest single run {prod.measured.peak_run_rss_mb:,.0f} MB; "
                f"whole daemon tree {prod.measured.peak_rss_mb:,.0f} MB (daemon, code server "
                "and up to max_concurrent_runs runs)"
            )
    print(f"load average (1/5/15 min): start {load['start']}, end {load['end']}")
    problems = consistency(results)
    billing = [k for k, r in results.items() if k != "read" and r.db]
    if problems:
        bar = "!" * 100
        print(f"\n{bar}\nMISMATCH between the billing paths:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        print(bar, file=sys.stderr)
    elif len(billing) > 1:
        print(f"consistency: {', '.join(billing)} billed the same flights, same fee-line totals")
    for name in billing:
        r = results[name]
        print(
            f"  {name}: totals {r.db['totals']}; flights {r.db['flights']}; queue {r.db['queue']}"
        )
    return {
        "flights": n,
        "paths": {k: f for k, f in figs.items() if f},
        "load_avg": load,
    }


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Pipeline benchmark: read / library / in_process / production, side by side."
    )
    p.add_argument("--flights", type=int, default=10_000, help="flights of the day (10,000)")
    p.add_argument("--day", default=DEFAULT_DAY, help=f"UTC day of the flights ({DEFAULT_DAY})")
    p.add_argument("--seed", type=int, default=7, help="seed of the first batch (batch k: +k)")
    p.add_argument("--batch", type=int, default=2_500, help="flights per generate_demo call")
    p.add_argument("--paths", default=",".join(PATHS), help=f"subset of {','.join(PATHS)}")
    p.add_argument("--json", help="write the figures to this JSON file")
    p.add_argument("--database-url", help="PostgreSQL server: a fresh database per path")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="generated days + FIR cache")
    p.add_argument("--work-dir", help="where the fresh homes go (default: a temporary dir)")
    p.add_argument("--timeout", type=float, help="seconds per path (default 1800 + 0.5 s/flight)")
    p.add_argument("--claim-batch", type=int, help="FLIGHT_FEES_CLAIM_BATCH of the daemon")
    p.add_argument("--per-run", type=int, help="FLIGHT_FEES_MAX_FLIGHTS_PER_RUN of the daemon")
    p.add_argument("--keep", action="store_true", help="keep the homes and databases")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.flights < 1 or args.flights > 99_999:
        p.error("--flights must be within 1..99,999 (flight ids hold 5 sequence digits)")
    try:
        args.day_date = dt.date.fromisoformat(args.day)
    except ValueError:
        p.error(f"--day: not a date: {args.day!r}")
    args.path_list = [x.strip() for x in args.paths.split(",") if x.strip()]
    unknown = set(args.path_list) - set(PATHS)
    if unknown:
        p.error(f"--paths: unknown {sorted(unknown)}; choose from {', '.join(PATHS)}")
    if args.timeout is None:
        args.timeout = 1800.0 + 0.5 * args.flights
    return args


def child_main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    if args.child == "generate":
        child_generate(args)
        return
    if args.child == "warm":
        child_warm(args)
        return
    out = {"read": child_read, "library": child_library}[args.child](args)
    Path(args.result).write_text(json.dumps(out))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return 0
    sys.path.insert(0, str(ROOT))
    if not become_subreaper():
        print("warning: not a child subreaper: CPU of orphaned processes may be missed")
    load = {"start": load_avg(), "end": []}
    data = ensure_data(args)
    meta = json.loads((data / "meta.json").read_text())
    cache_root = Path(args.cache_dir)
    env0 = base_env(args, cache_root)
    subprocess.run([sys.executable, __file__, "--child", "warm"], check=True, cwd=ROOT, env=env0)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench_pipeline_"))
    work.mkdir(parents=True, exist_ok=True)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"work dir {work}; {backend}; timeout {args.timeout:.0f} s per path")
    results: dict[str, PathResult] = {}
    for name in [p for p in PATHS if p in args.path_list]:
        lib = results.get("library")
        expected = lib.db.get("fee_lines") if lib and not lib.error and lib.db else None
        results[name] = run_path(name, args, data, work, env0, expected)
    load["end"] = load_avg()
    out = report(args, meta, results, load, backend)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"figures written to {args.json}")
    if not args.keep and not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if any(r.error for r in results.values()) or consistency(results) else 0


if __name__ == "__main__":
    sys.exit(main())
