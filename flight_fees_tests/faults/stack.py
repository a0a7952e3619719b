"""The production topology of README "Production", started for real by the fault suite.

A :class:`Stack` is one scenario's installation: a fresh billing database, a fresh Dagster
instance database (both PostgreSQL), a home whose track store links to the scenario day, an
instance config derived from ``dagster-prod.yaml`` with short intervals, and the services of
``scripts/prod_service.sh`` (standalone code server, one or more ``dagster-daemon``), each in its
own process group, every one of them killed when the stack closes. Every wait is bounded.

A :class:`Watch` polls the queue while a scenario runs and keeps what would otherwise be lost
when a billed flight's queue row is deleted: the highest attempt count and the errors seen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, func, select

from flight_fees.lib.db import make_engine
from flight_fees.lib.db.models import FeeLine, FlightQueueItem

ROOT = Path(__file__).resolve().parents[2]
SERVICE_SCRIPT = ROOT / "scripts" / "prod_service.sh"
PROD_INSTANCE = ROOT / "dagster-prod.yaml"
BIN = Path(sys.executable).parent
#: resets SIGINT to its default before exec: a service started from a shell that ignores SIGINT
#: (a background job) would otherwise inherit that, and the code server maps SIGTERM onto it
_TRAMPOLINE = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)
READY_LINE = "Started Dagster code proxy server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], Any], timeout_s: float, what: str, *, every_s: float = 0.25
) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(every_s)


@dataclasses.dataclass
class Service:
    """One service process (its own session: pid = process group id)."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal_group(self, sig: signal.Signals) -> None:
        """Signal the whole process group, as a supervisor stopping the service does (systemd's
        control-group kill, Ctrl-C in its terminal, a container stop)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def wait_exit(self, timeout_s: float) -> int:
        return self.proc.wait(timeout=timeout_s)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the group, SIGKILL it after ``grace_s``; the process is reaped."""
        if self.alive():
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace_s)
        self.signal_group(signal.SIGKILL)  # whatever is left in the group
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        useful = [t for t in text if "does not match the name" not in t]
        return "\n".join(useful[-lines:])


class Stack:
    """A scenario's installation and its services (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        *,
        billing_url: str,
        instance_url: str,
        tracks: Path,
        cache_dir: Path,
        env: dict[str, str],
    ) -> None:
        self.root = root
        self.billing_url = billing_url
        self.home = root / "home"
        self.home.mkdir(parents=True)
        (self.home / "tracks").symlink_to(tracks, target_is_directory=True)
        self.dagster_home = root / "dagster_home"
        self.dagster_home.mkdir()
        self.port = free_port()
        self.pause_file = root / "pause_after_claim"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PINOT_", "DAGSTER_", "FLIGHT_FEES_", "PYTEST_"))
        }
        self.env.update(
            {
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",
                "DAGSTER_HOME": str(self.dagster_home),
                "DAGSTER_POSTGRES_URL": instance_url,
                "FLIGHT_FEES_HOME": str(self.home),
                "FLIGHT_FEES_DATABASE_URL": billing_url,
                "FLIGHT_FEES_CACHE_DIR": str(cache_dir),
                "FLIGHT_FEES_CODE_SERVER_PORT": str(self.port),
                "FLIGHT_FEES_BIN": str(BIN),
                "FLIGHT_FEES_TEST_PAUSE_AFTER_CLAIM": str(self.pause_file),
                # a crashed run's flights come back after 10 s instead of a minute
                "FLIGHT_FEES_RETRY_BACKOFF_S": "10",
                **env,
            }
        )
        self.services: list[Service] = []
        self.engine: Engine = make_engine(billing_url)
        self._instance: Any = None

    # -- configuration -------------------------------------------------------------------

    def write_instance(self, max_runtime_s: int | None = None, **run_queue: Any) -> None:
        """``dagster-prod.yaml`` with the fault suite's short intervals (``run_queue``
        overrides keys of the run coordinator's config, e.g. ``max_concurrent_runs=0``)."""
        config = yaml.safe_load(PROD_INSTANCE.read_text())
        config["run_monitoring"].update(poll_interval_seconds=2, start_timeout_seconds=60)
        if max_runtime_s is not None:
            config["run_monitoring"]["max_runtime_seconds"] = max_runtime_s
        config["run_coordinator"]["config"].update(
            dequeue_interval_seconds=1,
            max_user_code_failure_retries=1,
            user_code_failure_retry_delay=2,
            **run_queue,
        )
        (self.dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config))

    # -- services ------------------------------------------------------------------------

    def start(self, role: str) -> Service:
        """Start ``scripts/prod_service.sh ROLE`` (``code-server`` waits until it serves)."""
        n = sum(1 for s in self.services if s.name.startswith(role))
        name = role if n == 0 else f"{role}-{n + 1}"
        log = self.root / f"{name}.log"
        with log.open("ab") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-c", _TRAMPOLINE, "sh", str(SERVICE_SCRIPT), role],
                env=self.env,
                cwd=ROOT,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service = Service(name, proc, log)
        self.services.append(service)
        if role == "code-server":
            start = log.stat().st_size if log.exists() else 0

            def ready() -> bool:
                if not service.alive():
                    raise RuntimeError(f"code server exited:\n{service.tail()}")
                with log.open("rb") as f:
                    f.seek(start)
                    return READY_LINE.encode() in f.read()

            wait_until(ready, 120, "code server ready", every_s=0.2)
        return service

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    def logs(self) -> str:
        return "\n".join(f"--- {s.name} ({s.log}) ---\n{s.tail()}" for s in self.services)

    # -- the Dagster instance (read from the test) -----------------------------------------

    def instance(self) -> Any:
        if self._instance is None:
            from dagster import DagsterInstance

            # the instance config reads DAGSTER_POSTGRES_URL: the fixture sets it for the test
            self._instance = DagsterInstance.from_config(str(self.dagster_home))
        return self._instance

    def runs(self) -> list[Any]:
        """Run records of ``process_flights``, oldest first."""
        from dagster import RunsFilter

        records = self.instance().get_run_records(RunsFilter(job_name="process_flights"))
        return sorted(records, key=lambda r: r.create_timestamp)

    def run_worker_pid(self, run_id: str) -> int | None:
        """The pid of a run's worker, from its "Started process for run" engine event."""
        from dagster import DagsterEventType

        for entry in self.instance().all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
            data = entry.dagster_event.engine_event_data if entry.dagster_event else None
            pid = data.metadata.get("pid") if data is not None else None
            if pid is not None:
                return int(getattr(pid, "value", pid))
        return None

    def worker_starts(self, run_id: str) -> int:
        """How many run workers started for the run (engine events)."""
        from dagster import DagsterEventType

        return sum(
            1
            for entry in self.instance().all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
            if "Started process for run" in (entry.message or "")
        )

    def step_starts(self, run_id: str) -> dict[str, int]:
        """How many times each step of the run started."""
        from dagster import DagsterEventType

        counts: dict[str, int] = {}
        for entry in self.instance().all_logs(run_id, of_type=DagsterEventType.STEP_START):
            key = entry.step_key or "?"
            counts[key] = counts.get(key, 0) + 1
        return counts

    # -- the billing database ------------------------------------------------------------

    def queue_rows(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(FlightQueueItem)))

    def fee_line_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(FeeLine)).scalar_one())

    def fee_line_id_range(self) -> tuple[int, int]:
        """Smallest and largest fee-line id: ``(1, n)`` for n lines means none was ever
        deleted and written again (ids come from a sequence)."""
        with self.engine.connect() as conn:
            low, high = conn.execute(select(func.min(FeeLine.id), func.max(FeeLine.id))).one()
        return int(low or 0), int(high or 0)

    def close(self) -> None:
        for service in reversed(self.services):  # no grace: the scenario is over
            service.signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.proc.wait(timeout=10)
        if self._instance is not None:
            with contextlib.suppress(Exception):
                self._instance.dispose()
        self.engine.dispose()


@dataclasses.dataclass
class QueueSeen:
    """What a :class:`Watch` saw of the queue."""

    max_attempts: dict[int, int] = dataclasses.field(default_factory=dict)
    errors: dict[int, set[str]] = dataclasses.field(default_factory=dict)
    holders: set[str] = dataclasses.field(default_factory=set)
    polls: int = 0
    failed_polls: int = 0


class Watch:
    """Polls the queue every ``every_s`` in a thread (errors while the database is down are
    counted, not raised)."""

    def __init__(self, stack: Stack, every_s: float = 0.3) -> None:
        self.stack = stack
        self.every_s = every_s
        self.seen = QueueSeen()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.every_s)

    def poll(self) -> None:
        try:
            rows = self.stack.queue_rows()
        except Exception:
            self.seen.failed_polls += 1
            return
        self.seen.polls += 1
        for row in rows:
            fid = int(row.flight_id)
            self.seen.max_attempts[fid] = max(self.seen.max_attempts.get(fid, 0), row.attempts)
            if row.last_error:
                self.seen.errors.setdefault(fid, set()).add(row.last_error[:200])
            if row.claimed_by:
                self.seen.holders.add(row.claimed_by)


class ThrowawayCluster:
    """A PostgreSQL cluster of its own (local binaries, a free port, a temp dir; trust auth),
    which a scenario may stop and start again; never the shared server."""

    def __init__(self) -> None:
        import glob
        import shutil
        import tempfile

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = shutil.which("initdb") or (found[-1] if found else None)
        if initdb is None:
            raise RuntimeError("no PostgreSQL binaries (initdb) on this machine")
        self.bindir = Path(initdb).parent
        # directly under the temp root: the postgres user must reach it (pytest's tmp_path is
        # private to root)
        self.datadir = Path(tempfile.mkdtemp(prefix="ff_faults_pg_"))
        self.port = free_port()
        # initdb refuses to run as root: drop to the postgres user
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.datadir, "postgres")
        self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres")
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bindir / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.datadir} -h 127.0.0.1"
        log = str(self.datadir / "server.log")
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-w", "-t", "60", "-l", log, "-o", opts, "start"
        )

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, running transactions roll back."""
        self._run("pg_ctl", "-D", str(self.datadir), "-w", "-t", "60", "-m", "fast", "stop")

    def close(self) -> None:
        import shutil

        with contextlib.suppress(subprocess.SubprocessError):
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "stop")
        shutil.rmtree(self.datadir, ignore_errors=True)
