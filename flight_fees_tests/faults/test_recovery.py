"""Fault suite (issue 11): the production topology (standalone code server, ``dagster-daemon``,
PostgreSQL for billing and for the Dagster instance, ``scripts/prod_service.sh``) started for
real, one fault injected per scenario, and then no manual step.

Every scenario ends with every flight of the day billed exactly once, fee lines equal to the
fault-free bill (flight ids, line numbers, zones, billing amounts and currencies), attempts
increased by at most one, no flight left in the queue, within the scenario's recovery bound.
Recovery time = from the fault to the last flight billed; each is printed and merged into
``test-artifacts/faults/recovery.json``.

Configuration as in production except: claim lease 40 s (FLIGHT_FEES_CLAIM_LEASE_S; 600 s in
production), queue sensor every 2 s (FLIGHT_FEES_QUEUE_SENSOR_INTERVAL_S; 30 s), run monitoring
polled every 2 s, run queue dequeued every second, one launch retry after 2 s. The failure
sensor (30 s) and the 60 s retry back-off of a crashed run's flights are production values.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable

import pytest

from flight_fees.lib.ops.queue import FlightQueue
from flight_fees_tests.faults.conftest import DAY, FaultDay, fee_lines, record_recovery
from flight_fees_tests.faults.stack import Stack, ThrowawayCluster, Watch, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.xdist_group("faults")]

CLAIM_LEASE_S = 40.0


# -- helpers -----------------------------------------------------------------------------------


def enqueue(stack: Stack, day: FaultDay) -> None:
    FlightQueue(stack.engine).enqueue(day.flight_ids, flight_date=DAY)


def wait_for_adoption(stack: Stack, timeout_s: float = 120) -> tuple[str, set[int]]:
    """The first run holding flights (adopted: ``claimed_by = run:<id>``): its id and flights."""

    def adopted() -> tuple[str, set[int]] | None:
        held: dict[str, set[int]] = {}
        for row in stack.queue_rows():
            if row.status == "processing" and (row.claimed_by or "").startswith("run:"):
                held.setdefault(row.claimed_by.removeprefix("run:"), set()).add(row.flight_id)
        return next(iter(held.items()), None)

    return wait_until(adopted, timeout_s, "a run adopting its flights", every_s=0.1)


def run_status(stack: Stack, run_id: str) -> str:
    run = stack.instance().get_run_by_id(run_id)
    return run.status.value if run is not None else "MISSING"


def wait_billed(stack: Stack, day: FaultDay, since: float, bound_s: float) -> float:
    """Seconds from ``since`` until the queue is empty and every fee line exists; fails with
    the services' logs when the bound passes."""

    def billed() -> bool:
        try:
            return not stack.queue_rows() and stack.fee_line_count() == len(day.lines)
        except Exception:  # the database is down: ask again
            return False

    remaining = bound_s - (time.monotonic() - since)
    try:
        wait_until(billed, max(remaining, 0.0), "every flight billed", every_s=0.5)
    except TimeoutError:
        rows = [(r.flight_id, r.status, r.claimed_by, r.attempts) for r in stack.queue_rows()]
        runs = [(r.dagster_run.run_id[:8], r.dagster_run.status.value) for r in stack.runs()]
        pytest.fail(
            f"not recovered within {bound_s:.0f} s: queue {rows}, fee lines "
            f"{stack.fee_line_count()}/{len(day.lines)}, runs {runs}\n{stack.logs()}"
        )
    return time.monotonic() - since


def check_bill(stack: Stack, day: FaultDay, watch: Watch) -> None:
    """Billed exactly once, like the fault-free run; no flight left; attempts <= 1."""
    assert fee_lines(stack.engine) == day.lines
    assert stack.queue_rows() == []
    assert watch.seen.polls > 0
    too_many = {f: a for f, a in watch.seen.max_attempts.items() if a > 1}
    assert not too_many, f"one fault counted more than once: {too_many}"
    assert set(watch.seen.max_attempts) == set(day.flight_ids)  # the watch saw every flight


def attempted(watch: Watch) -> set[int]:
    return {f for f, a in watch.seen.max_attempts.items() if a >= 1}


def finished(stack: Stack, run_ids: Iterable[str]) -> bool:
    return all(run_status(stack, r) in ("SUCCESS", "FAILURE", "CANCELED") for r in run_ids)


def claims_held(stack: Stack) -> set[str]:
    return {
        row.claimed_by
        for row in stack.queue_rows()
        if row.status == "processing" and (row.claimed_by or "").startswith("sensor:")
    }


def kill_adopted_run_worker(stack: Stack) -> tuple[str, set[int], float]:
    """SIGKILL the worker of the first run holding its flights: (run id, its flights, when)."""
    run_id, held = wait_for_adoption(stack)
    pid = wait_until(lambda: stack.run_worker_pid(run_id), 30, "the run worker's pid")
    os.kill(pid, signal.SIGKILL)
    return run_id, held, time.monotonic()


# -- scenarios ---------------------------------------------------------------------------------


@pytest.mark.timeout(600)
def test_sigkill_of_a_run_worker_mid_run(make_stack, fault_day: FaultDay) -> None:
    """A run worker SIGKILLed while it holds its flights: its code server sees the worker die
    and fails the run at once (the DefaultRunLauncher cannot report a worker's health to run
    monitoring), the failure sensor fails its flights with ONE attempt, they are retried after
    the back-off. Bound: failure sensor (30 s) + back-off (60 s) + a run = 180 s."""
    stack = make_stack()
    stack.start("code-server")
    stack.start("daemon")
    with Watch(stack) as watch:
        enqueue(stack, fault_day)
        run_id, held, t0 = kill_adopted_run_worker(stack)
        wait_until(lambda: run_status(stack, run_id) == "FAILURE", 30, "the killed run failed")
        detected = time.monotonic() - t0
        recovery = wait_billed(stack, fault_day, t0, 180)
    check_bill(stack, fault_day, watch)
    assert attempted(watch) == held  # one crash = one attempt, for the flights it held only
    record_recovery(
        "a_run_worker_sigkill",
        {"run_failed_after_s": round(detected, 1), "recovery_s": round(recovery, 1)},
    )


@pytest.mark.timeout(600)
def test_sigkill_of_the_daemon_right_after_a_claim_commit(make_stack, fault_day: FaultDay) -> None:
    """The daemon SIGKILLed between the claim's commit and the run requests (the test hook
    FLIGHT_FEES_TEST_PAUSE_AFTER_CLAIM holds that tick after its commit): no run ever exists
    for the claim, its flights come back when the claim lease runs out, without an attempt,
    and the restarted daemon bills them. Bound: claim lease + 60 s."""
    stack = make_stack()
    stack.pause_file.write_text("20")
    stack.start("code-server")
    daemon = stack.start("daemon")
    with Watch(stack) as watch:
        enqueue(stack, fault_day)
        (claim,) = wait_until(lambda: claims_held(stack), 60, "a claim committed", every_s=0.1)
        t_claim = time.monotonic()
        daemon.signal_group(signal.SIGKILL)
        daemon.wait_exit(30)
        t0 = time.monotonic()
        stack.start("daemon")  # restarted by its supervisor
        recovery = wait_billed(stack, fault_day, t0, CLAIM_LEASE_S + 60)
    claim_id = claim.removeprefix("sensor:")
    assert not [r for r in stack.runs() if r.dagster_run.tags.get("flight_fees/claim") == claim_id]
    check_bill(stack, fault_day, watch)
    assert attempted(watch) == set()
    # nothing took the claimed flights back before the lease ran out
    assert recovery + (t0 - t_claim) >= CLAIM_LEASE_S
    record_recovery(
        "b_daemon_sigkill_after_claim",
        {"claim_lease_s": CLAIM_LEASE_S, "recovery_s": round(recovery, 1)},
    )


@pytest.mark.timeout(600)
def test_sigterm_of_the_daemon_with_runs_in_progress(make_stack, fault_day: FaultDay) -> None:
    """The daemon's whole process group gets SIGTERM (a restart by its supervisor) while a run
    holds its flights: run workers are children of the standalone code server, not of the
    daemon, so every run in progress finishes with SUCCESS; the restarted daemon launches
    what was still queued. No attempt. Bound 120 s."""
    stack = make_stack()
    stack.start("code-server")
    daemon = stack.start("daemon")
    with Watch(stack) as watch:
        enqueue(stack, fault_day)
        run_id, _ = wait_for_adoption(stack)
        in_progress = [
            r.dagster_run.run_id
            for r in stack.runs()
            if r.dagster_run.status.value in ("STARTING", "STARTED")
        ]
        daemon.signal_group(signal.SIGTERM)
        t0 = time.monotonic()
        daemon.wait_exit(60)
        assert run_id in in_progress
        wait_until(lambda: finished(stack, in_progress), 120, "the runs in progress finished")
        survived = {r: run_status(stack, r) for r in in_progress}
        stack.start("daemon")  # its supervisor starts it again
        recovery = wait_billed(stack, fault_day, t0, 120)
    assert set(survived.values()) == {"SUCCESS"}, survived
    check_bill(stack, fault_day, watch)
    assert attempted(watch) == set()
    assert [r.dagster_run.status.value for r in stack.runs()].count("FAILURE") == 0
    record_recovery(
        "c_daemon_sigterm",
        {"runs_in_progress": len(in_progress), "recovery_s": round(recovery, 1)},
    )


@pytest.mark.timeout(600)
def test_a_run_that_fails_at_launch(make_stack, fault_day: FaultDay) -> None:
    """Runs requested for a claim, then their code location goes down before they launch
    (the run queue is held with max_concurrent_runs 0 until the code server is stopped, then
    the daemon is restarted with run slots): the launch fails (after one retry), the runs fail
    without ever starting, and when the code server is back the failure sensor hands the
    claim's flights back WITHOUT an attempt — long before the claim lease (600 s, production
    value here) would. Bound: 150 s from the code server's return."""
    stack = make_stack(FLIGHT_FEES_CLAIM_LEASE_S="600")
    stack.write_instance(max_concurrent_runs=0)
    code_server = stack.start("code-server")
    daemon = stack.start("daemon")
    with Watch(stack) as watch:
        enqueue(stack, fault_day)

        def queued_runs() -> list[str]:
            runs = [r.dagster_run for r in stack.runs()]
            ok = len(runs) == 2 and all(r.status.value == "QUEUED" for r in runs)
            return [r.run_id for r in runs] if ok else []

        run_ids = wait_until(queued_runs, 60, "two runs queued")
        (claim,) = claims_held(stack)
        code_server.stop()
        daemon.stop()
        stack.write_instance()
        stack.start("daemon")
        wait_until(
            lambda: all(run_status(stack, r) == "FAILURE" for r in run_ids),
            60,
            "the runs failed at launch",
        )
        # nothing was started: the flights are still held by the claim
        assert claims_held(stack) == {claim}
        stack.start("code-server")
        t0 = time.monotonic()
        recovery = wait_billed(stack, fault_day, t0, 150)
    check_bill(stack, fault_day, watch)
    assert attempted(watch) == set()
    released = {
        f for f, errs in watch.seen.errors.items() if any("never started" in e for e in errs)
    }
    assert released == set(fault_day.flight_ids)  # by the failure sensor, not by the lease
    record_recovery("d_run_fails_at_launch", {"recovery_s": round(recovery, 1)})


@pytest.mark.timeout(600)
def test_two_daemons_at_once(make_stack, fault_day: FaultDay) -> None:
    """Two ``dagster-daemon`` on one instance by mistake, and a run worker SIGKILLed: each
    flight is billed exactly once (the fault-free lines, even when Dagster lets both
    daemons start the same run), and the crash costs one attempt although both daemons'
    failure sensors saw it. Bound as a worker crash: 180 s."""
    stack = make_stack()
    stack.start("code-server")
    stack.start("daemon")
    stack.start("daemon")
    with Watch(stack) as watch:
        enqueue(stack, fault_day)
        _, held, t0 = kill_adopted_run_worker(stack)
        recovery = wait_billed(stack, fault_day, t0, 180)
    check_bill(stack, fault_day, watch)
    assert attempted(watch) == held
    # fee-line ids may have gaps: the worker killed inside a write transaction consumed
    # sequence ids for rows that were rolled back (PostgreSQL sequences are not
    # transactional); the lines themselves are those of the fault-free run (check_bill), and
    # double work would show as a step or a worker started twice (below)
    low, high = stack.fee_line_id_range()
    assert low >= 1 and high >= len(fault_day.lines)
    # both daemons' run queues may launch the same run (a Dagster race, not ours): usually
    # the later worker finds it started and leaves it alone, sometimes both execute it. The
    # bill stays exact either way (check_bill above: the fault-free lines, no flight left,
    # one attempt): a flight's lines are replaced under its lock, never added twice. How
    # often it happened is recorded, not asserted.
    runs = [r.dagster_run.run_id for r in stack.runs()]
    duplicates = sum(stack.worker_starts(r) - 1 for r in runs if stack.worker_starts(r) > 1)
    twice = sum(1 for r in runs if max(stack.step_starts(r).values(), default=0) > 1)
    record_recovery(
        "e_two_daemons_worker_sigkill",
        {
            "runs": len(runs),
            "duplicate_workers": duplicates,
            "runs_executed_twice": twice,
            "recovery_s": round(recovery, 1),
        },
    )


@pytest.fixture
def billing_cluster():
    try:
        cluster = ThrowawayCluster()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"no throwaway PostgreSQL cluster in CI: {exc}", pytrace=False)
        pytest.skip(f"no throwaway PostgreSQL cluster (local PostgreSQL binaries): {exc}")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


@pytest.mark.timeout(600)
def test_billing_postgres_restarted_mid_run(
    billing_cluster: ThrowawayCluster, make_stack, fault_day: FaultDay
) -> None:
    """The billing PostgreSQL (a throwaway cluster of this test) stopped (fast shutdown: the
    connections are cut) while a run holds its flights, started again 5 s later. Whatever
    the run was doing fails at most once per flight; the sensors skip while the database is
    away; everything is billed afterwards. Bound: 180 s."""
    stack = make_stack(billing_server=billing_cluster.url)
    stack.start("code-server")
    stack.start("daemon")
    with Watch(stack) as watch:
        enqueue(stack, fault_day)
        wait_for_adoption(stack)
        billing_cluster.stop()
        t0 = time.monotonic()
        time.sleep(5)
        billing_cluster.start()
        recovery = wait_billed(stack, fault_day, t0, 180)
    check_bill(stack, fault_day, watch)
    failed_runs = [r for r in stack.runs() if r.dagster_run.status.value == "FAILURE"]
    record_recovery(
        "f_billing_postgres_restart",
        {
            "outage_s": 5,
            "runs_failed": len(failed_runs),
            "flights_with_an_attempt": len(attempted(watch)),
            "recovery_s": round(recovery, 1),
        },
    )


@pytest.mark.timeout(600)
def test_sigkill_of_the_code_server_with_a_run_in_progress(make_stack, fault_day: FaultDay) -> None:
    """Run monitoring: the code server's whole process group SIGKILLed (its run workers die
    with it, nobody is left to report the run) and the code server restarted. The run stays
    STARTED until run monitoring's max_runtime_seconds (45 s here, 3000 s in production, under
    the one-hour run lease) fails it; the failure sensor then fails its flights with one
    attempt. Bound: max runtime + failure sensor + back-off + a run = 200 s."""
    stack = make_stack()
    stack.write_instance(max_runtime_s=45)
    code_server = stack.start("code-server")
    stack.start("daemon")
    with Watch(stack) as watch:
        enqueue(stack, fault_day)
        run_id, held = wait_for_adoption(stack)
        code_server.signal_group(signal.SIGKILL)
        t0 = time.monotonic()
        code_server.wait_exit(10)
        stack.start("code-server")  # restarted by its supervisor
        wait_until(lambda: run_status(stack, run_id) == "FAILURE", 120, "run monitoring", every_s=1)
        detected = time.monotonic() - t0
        recovery = wait_billed(stack, fault_day, t0, 200)
    check_bill(stack, fault_day, watch)
    assert held <= attempted(watch)  # its sibling run may have been killed with it
    messages = [e.message or "" for e in stack.instance().all_logs(run_id)]
    assert any("maximum runtime" in m for m in messages)  # failed by run monitoring
    record_recovery(
        "g_code_server_sigkill",
        {"run_failed_after_s": round(detected, 1), "recovery_s": round(recovery, 1)},
    )
