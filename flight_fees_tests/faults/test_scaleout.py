"""Scale-out (issue 16) on the production topology of the fault suite (``stack.py``): the Dagster
instance on PostgreSQL (``dagster-prod.yaml``) and the Celery mode (``process_flights_celery``
with two real Celery workers, RabbitMQ broker, Redis result backend).

Every stack has its own billing and Dagster databases (created and dropped by ``make_stack``)
and, in Celery mode, its own broker queue (``FLIGHT_FEES_CELERY_QUEUE``), so that concurrent
test sessions sharing the broker never run each other's steps. Without RabbitMQ or Redis the
Celery tests are skipped, except under ``CI=true`` where that is a failure (``.ci/run`` starts
both).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
from dagster import DagsterEventType as Event
from sqlalchemy import create_engine, text

from flight_fees.defs.processing.scaleout import CELERY_JOB, IN_PROCESS_JOB, celery_config
from flight_fees_tests.faults.conftest import FaultDay, fee_lines
from flight_fees_tests.faults.stack import BIN, ROOT, Service, Stack, Watch, wait_until
from flight_fees_tests.faults.test_recovery import check_bill, enqueue, run_status, wait_billed

pytestmark = [pytest.mark.scaleout, pytest.mark.slow, pytest.mark.xdist_group("faults")]

OVERDUE_SCHEDULE = "mark_overdue_invoices_hourly"
#: the production claim lease (the fault suite's 40 s is about lease expiry, not tested here):
#: on a loaded machine a run may take longer than 40 s to start
LEASE = {"FLIGHT_FEES_CLAIM_LEASE_S": "600"}
#: bounds of these tests: hangs, not speed (a 2-core machine shared with other test sessions)
BOUND_S = 420


def production_start_timeout(stack: Stack) -> Stack:
    """The fault suite's instance with the production run start timeout (180 s instead of
    60 s): these tests are not about run monitoring, and a loaded machine may take a minute to
    start a run."""
    import yaml

    path = stack.dagster_home / "dagster.yaml"
    config = yaml.safe_load(path.read_text())
    prod = yaml.safe_load((ROOT / "dagster-prod.yaml").read_text())
    config["run_monitoring"]["start_timeout_seconds"] = prod["run_monitoring"][
        "start_timeout_seconds"
    ]
    path.write_text(yaml.safe_dump(config))
    return stack


# -- helpers -----------------------------------------------------------------------------------


def _answers(url: str, default_port: int) -> str | None:
    """None when the server of ``url`` accepts a TCP connection, else why not."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=3):
            return None
    except OSError as exc:
        return f"{host}:{port}: {exc}"


@pytest.fixture(scope="module")
def broker_and_backend() -> dict[str, Any]:
    """The Celery settings of the code location; RabbitMQ and Redis must answer."""
    config = celery_config()
    down = {
        name: why
        for name, why in (
            ("RabbitMQ (FLIGHT_FEES_CELERY_BROKER)", _answers(config["broker"], 5672)),
            ("Redis (FLIGHT_FEES_CELERY_BACKEND)", _answers(config["backend"], 6379)),
        )
        if why
    }
    if down:
        message = "; ".join(f"{name} not answering at {why}" for name, why in down.items())
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"Celery tests cannot be skipped in CI: {message}", pytrace=False)
        pytest.skip(message)
    return config


def _delete_queue(broker: str, queue: str) -> None:
    from kombu import Connection

    with contextlib.suppress(Exception), Connection(broker, connect_timeout=5) as conn:
        conn.default_channel.queue_delete(queue)


CeleryStack = tuple[Stack, list[Service]]


@pytest.fixture
def start_celery_stack(
    make_stack: Any, broker_and_backend: dict[str, Any]
) -> Iterator[Callable[..., CeleryStack]]:
    """``start_celery_stack(**env)``: a stack whose queue sensor requests
    ``process_flights_celery``, started: a code server, a daemon and two Celery workers of one
    process each (``scripts/prod_service.sh worker``) on a broker queue of its own (deleted
    afterwards; ``make_stack`` kills the services)."""
    queues: list[str] = []

    def start(**env: str) -> CeleryStack:
        queues.append(f"flight_fees_test_{uuid.uuid4().hex[:12]}")
        stack = make_stack(
            FLIGHT_FEES_EXECUTOR="celery",
            FLIGHT_FEES_CELERY_QUEUE=queues[-1],
            FLIGHT_FEES_WORKER_CONCURRENCY="1",
            **LEASE,
            **env,
        )
        production_start_timeout(stack)
        stack.start("code-server")
        stack.start("daemon")
        workers = [stack.start("worker") for _ in range(2)]
        for worker in workers:

            def ready(worker: Service = worker) -> bool:
                if not worker.alive():
                    raise RuntimeError(f"Celery worker exited:\n{worker.tail()}")
                return b" ready." in worker.log.read_bytes()

            wait_until(ready, 90, f"{worker.name} ready", every_s=0.3)
        return stack, workers

    yield start
    for queue in queues:
        _delete_queue(broker_and_backend["broker"], queue)


def worker_name(worker: Service) -> str:
    """The Celery node name of a worker started by ``prod_service.sh worker``."""
    return f"flight_fees-{worker.pid}@{socket.gethostname()}"


def job_runs(stack: Stack, job_name: str) -> list[Any]:
    from dagster import RunsFilter

    records = stack.instance().get_run_records(RunsFilter(job_name=job_name))
    return sorted((r.dagster_run for r in records), key=lambda run: run.run_id)


def celery_executions(stack: Stack, run_id: str) -> list[tuple[str, str]]:
    """``(step key, Celery worker)`` of every step execution of a run, in order (the engine
    event a worker writes when it takes a step)."""
    from dagster import DagsterEventType

    found = []
    for entry in stack.instance().all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        worker = data.metadata.get("Celery worker") if data is not None else None
        if worker is not None:
            found.append((entry.step_key or "?", str(getattr(worker, "value", worker))))
    return found


def step_start_pids(stack: Stack, run_id: str) -> dict[str, set[int]]:
    """Step key -> pids of the processes that started it (STEP_START events)."""
    from dagster import DagsterEventType

    pids: dict[str, set[int]] = {}
    for entry in stack.instance().all_logs(run_id, of_type=DagsterEventType.STEP_START):
        pids.setdefault(entry.step_key or "?", set()).add(int(entry.dagster_event.pid))
    return pids


def pool_pids(workers: list[Service]) -> dict[int, str]:
    """pid -> worker name, for every process of the workers (main and pool)."""
    pids = {}
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(worker.pid)
            for p in [proc, *proc.children(recursive=True)]:
                pids[p.pid] = worker_name(worker)
    return pids


# -- the Dagster instance on PostgreSQL ---------------------------------------------------------


def start_schedule_in_the_past(stack: Stack, name: str, minutes: float) -> None:
    """Stop and start a schedule with the CLI (before the daemon runs: a schedule running by
    default has no stored state until then), then move its start back: the daemon evaluates
    the ticks missed since then, as after a daemon outage."""
    from dagster._core.scheduler.instigation import InstigatorType, ScheduleInstigatorData

    for command in ("stop", "start"):
        subprocess.run(
            [str(BIN / "dagster"), "schedule", command, name]
            + ["-w", str(ROOT / "workspace-prod.yaml")],
            env=stack.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=120,
        )
    instance = stack.instance()
    (state,) = [
        s
        for s in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
        if s.instigator_name == name
    ]
    data = state.instigator_data
    instance.update_instigator_state(
        state.with_data(
            ScheduleInstigatorData(data.cron_schedule, start_timestamp=time.time() - minutes * 60)
        )
    )


def instigator_ticks(stack: Stack, name: str) -> list[Any]:
    from dagster._core.scheduler.instigation import TickStatus

    instance = stack.instance()
    states = [s for s in instance.all_instigator_state() if s.instigator_name == name]
    return [
        tick
        for state in states
        for tick in instance.get_ticks(
            state.instigator_origin_id, state.selector_id, statuses=[TickStatus.SUCCESS]
        )
    ]


def event_types(stack: Stack, run_id: str) -> list[Any]:
    """The run's Dagster event types, in order."""
    return [
        e.dagster_event.event_type
        for e in stack.instance().all_logs(run_id)
        if e.dagster_event is not None
    ]


@pytest.mark.timeout(900)
def test_dagster_instance_on_postgres(make_stack: Any, fault_day: FaultDay) -> None:
    """``dagster-prod.yaml`` (the instance of ``make prod-*`` and ``DAGSTER_INSTANCE=postgres``)
    on a throwaway PostgreSQL database, with a real code server and daemon: the queue sensor's
    ticks, the runs and their passage through the run queue, a schedule's ticks and its run
    are all stored in PostgreSQL, and the day is billed like the fault-free run."""
    stack = production_start_timeout(make_stack(**LEASE))
    stack.start("code-server")
    start_schedule_in_the_past(stack, OVERDUE_SCHEDULE, minutes=61)
    stack.start("daemon")
    with Watch(stack) as watch:
        enqueue(stack, fault_day)
        wait_billed(stack, fault_day, time.monotonic(), BOUND_S)
    check_bill(stack, fault_day, watch)

    instance = stack.instance()
    storages = {
        type(instance.run_storage).__name__,
        type(instance.event_log_storage).__name__,
        type(instance.schedule_storage).__name__,
    }
    assert storages == {"PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"}

    # runs: the sensor's process_flights runs went through the run queue; those that billed
    # succeeded (a run the loaded machine could not start in time fails and hands its flights
    # back: check_bill above holds either way)
    # (the lines commit before the run records its end: wait for the runs to finish)
    deadline = time.monotonic() + 120
    while True:
        runs = job_runs(stack, IN_PROCESS_JOB)
        finished = all(run.is_finished for run in runs)
        if (runs and finished) or time.monotonic() > deadline:
            break
        time.sleep(2)
    billed_by = {run.run_id for run in runs if run.status.value == "SUCCESS"}
    assert billed_by
    for run in runs:
        if run.run_id not in billed_by:
            continue
        events = event_types(stack, run.run_id)
        # the run coordinator queued it, the daemon's run queue launched it
        assert events.index(Event.RUN_ENQUEUED) < events.index(Event.RUN_STARTING)
        assert events.index(Event.RUN_STARTING) < events.index(Event.RUN_SUCCESS)

    # sensor ticks: the runs were requested by ticks of flight_queue_sensor
    sensor_ticks = instigator_ticks(stack, "flight_queue_sensor")
    assert {r for tick in sensor_ticks for r in tick.run_ids} == {run.run_id for run in runs}

    # schedule ticks: the hourly schedule's missed ticks were evaluated, each launched a run
    # through the run queue
    ticks = wait_until(
        lambda: [t for t in instigator_ticks(stack, OVERDUE_SCHEDULE) if t.run_ids],
        BOUND_S,
        "a schedule tick with its run",
    )
    hour = 3600
    assert all(int(t.timestamp) % hour == 0 for t in ticks)  # on the hour, as the cron says
    assert all(time.time() - t.timestamp < 61 * 60 + 600 for t in ticks)
    scheduled = [r for t in ticks for r in t.run_ids]
    wait_until(
        lambda: all(run_status(stack, r) == "SUCCESS" for r in scheduled),
        BOUND_S,
        "the scheduled runs succeeded",
    )
    for run_id in scheduled:
        assert Event.RUN_ENQUEUED in event_types(stack, run_id)

    # and it is PostgreSQL that holds them: the instance database's own tables
    url = os.environ["DAGSTER_POSTGRES_URL"]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stored_runs = conn.execute(text("SELECT count(*) FROM runs")).scalar_one()
            stored_ticks = conn.execute(
                text("SELECT count(*) FROM job_ticks WHERE status = 'SUCCESS'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert stored_runs == len(runs) + len(scheduled)
    assert stored_ticks >= len(sensor_ticks) + len(ticks)
    print(
        f"[scaleout] instance on PostgreSQL: {len(runs)} process_flights run(s), "
        f"{len(sensor_ticks)} sensor tick(s) with runs, {len(ticks)} schedule tick(s)"
    )


# -- Celery workers ----------------------------------------------------------------------------


@pytest.mark.timeout(900)
def test_two_celery_workers_bill_a_day_like_in_process(
    start_celery_stack: Callable[..., CeleryStack], fault_day: FaultDay
) -> None:
    """FLIGHT_FEES_EXECUTOR=celery: the queue sensor requests ``process_flights_celery``; its
    steps run on the two Celery workers (both take steps, no step runs in the run worker), and
    the fee lines are those of the in-process run."""
    stack, workers = start_celery_stack()
    with Watch(stack) as watch:
        enqueue(stack, fault_day)
        wait_billed(stack, fault_day, time.monotonic(), BOUND_S)
    check_bill(stack, fault_day, watch)  # == the in-process (fault-free) bill

    runs = job_runs(stack, CELERY_JOB)
    assert runs and not job_runs(stack, IN_PROCESS_JOB)
    wait_until(lambda: all(run_status(stack, r.run_id) == "SUCCESS" for r in runs), 60, "runs done")
    names = {worker_name(w) for w in workers}
    processes = pool_pids(workers)
    by_worker: dict[str, list[str]] = {}
    for run in runs:
        executions = celery_executions(stack, run.run_id)
        started = step_start_pids(stack, run.run_id)
        # each step (the three assets and their checks) executed once, by a Celery worker
        assert {"flight_tracks", "fir_crossings", "fee_lines"} <= set(started)
        assert sorted(step for step, _ in executions) == sorted(started)
        for step, worker in executions:
            by_worker.setdefault(worker, []).append(step)
        # ... in a process of that worker (pid in the event log), none elsewhere
        for step, pids in started.items():
            assert {processes.get(pid) for pid in pids} == {dict(executions)[step]}, (step, pids)
    assert set(by_worker) == names, by_worker  # both workers executed steps
    print(f"[scaleout] steps per Celery worker: {by_worker}")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("moment", ["before_lines", "after_lines"])
def test_sigkill_of_a_celery_worker_mid_step(
    start_celery_stack: Callable[..., CeleryStack],
    fault_day: FaultDay,
    tmp_path: Path,
    moment: str,
) -> None:
    """A Celery worker SIGKILLed (its whole process group: a lost machine) while it executes a
    ``fee_lines`` step, before it wrote any fee line or after it wrote them all (the test hook
    FLIGHT_FEES_TEST_PAUSE_IN_STEP holds the step there): the step was not acknowledged, so
    RabbitMQ gives it to the other worker. Until then the flights without fee lines are still
    in the queue, held by the run; after it, the day is billed exactly like the fault-free run:
    no fee line lost, none duplicated, no attempt counted."""
    hook = tmp_path / "pause_in_step"
    hook.write_text(f"fee_lines:{moment} 40")
    taken = hook.with_suffix(".taken")
    stack, workers = start_celery_stack(FLIGHT_FEES_TEST_PAUSE_IN_STEP=str(hook))
    with Watch(stack) as watch:
        enqueue(stack, fault_day)
        # the step holding the hook writes its pid into the taken file, then waits
        paused = wait_until(
            lambda: taken.exists() and taken.read_text().strip(), BOUND_S, "a paused step"
        )
        pid = int(paused)
        (victim,) = [w for w in workers if pid in pool_pids([w])]
        survivor = next(w for w in workers if w is not victim)
        billed_before = {line[0] for line in fee_lines(stack.engine)}
        victim.signal_group(signal.SIGKILL)
        t0 = time.monotonic()
        victim.wait_exit(30)
        # nothing lost: every flight is billed (all its lines) or still in the queue
        queued = {int(row.flight_id) for row in stack.queue_rows()}
        billed = {line[0] for line in fee_lines(stack.engine)}
        assert billed >= billed_before
        assert not queued & billed
        assert queued | billed == set(fault_day.flight_ids)
        if moment == "before_lines":
            assert queued  # the killed step's flights are still queued
        recovery = wait_billed(stack, fault_day, t0, BOUND_S)
    check_bill(stack, fault_day, watch)  # identical lines: 0 lost, 0 duplicated
    assert stack.fee_line_count() == len(fault_day.lines)
    assert not {f: a for f, a in watch.seen.max_attempts.items() if a}  # no attempt
    # the killed step ran again, on the survivor; every other step ran once
    runs = job_runs(stack, CELERY_JOB)
    fee_steps = {
        run.run_id: [w for step, w in celery_executions(stack, run.run_id) if step == "fee_lines"]
        for run in runs
    }
    assert sorted(fee_steps.values(), key=len)[-1] == [
        worker_name(victim),
        worker_name(survivor),
    ], fee_steps
    assert sorted(map(len, fee_steps.values())) == [1] * (len(runs) - 1) + [2]
    wait_until(lambda: all(run_status(stack, r.run_id) == "SUCCESS" for r in runs), 60, "runs done")
    print(f"[scaleout] worker killed {moment}: billed again {recovery:.1f} s after the kill")
