"""Scale-out mode: the steps of ``process_flights_celery`` run on Celery workers (dagster-celery).

In-process (``process_flights``, one process per run) stays the single-machine default; the
Celery variant is for more machines: the run worker only orchestrates, each step is a Celery
task (RabbitMQ broker, Redis result backend) that any worker runs. Workers load the code
location themselves and need the environment of the code server (DAGSTER_HOME with a
PostgreSQL instance, DAGSTER_POSTGRES_URL, FLIGHT_FEES_*), see docs/DEPLOYMENT.md.

Settings come from the environment when the code location loads, so the executor of the runs
and the workers (``flight_fees.celery_app``) always agree:

- ``FLIGHT_FEES_CELERY_BROKER``: default ``pyamqp://guest:guest@127.0.0.1:5672//``
- ``FLIGHT_FEES_CELERY_BACKEND``: default ``redis://127.0.0.1:6379/0``
- ``FLIGHT_FEES_CELERY_QUEUE``: the broker queue of the steps, default ``dagster`` (one per
  installation sharing a broker: a worker runs any step of its queue with ITS environment)
- ``FLIGHT_FEES_EXECUTOR``: ``in_process`` (default) or ``celery``: which job the queue sensor
  requests.
"""

import os
from typing import Any

DEFAULT_BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"
DEFAULT_BACKEND = "redis://127.0.0.1:6379/0"
#: the Celery queue of the steps (dagster-celery's default queue)
DEFAULT_QUEUE = "dagster"
IN_PROCESS_JOB = "process_flights"
CELERY_JOB = "process_flights_celery"
PROCESSING_JOBS = (IN_PROCESS_JOB, CELERY_JOB)


def celery_config() -> dict[str, Any]:
    """Config of dagster-celery's executor (and of the workers' Celery app).

    A step is acknowledged to the broker only when it has finished (``task_acks_late``), and
    given back when its worker dies (``task_reject_on_worker_lost``): a killed worker's step is
    redelivered to another worker instead of being lost with its run waiting forever. Steps are
    therefore at-least-once; they are idempotent (run-scoped work-store frames written whole;
    fee lines of a flight replaced in the transaction that deletes its queue row). One task at
    a time per worker process (prefetch 1): a long step never holds another back.
    """
    return {
        "broker": os.environ.get("FLIGHT_FEES_CELERY_BROKER") or DEFAULT_BROKER,
        "backend": os.environ.get("FLIGHT_FEES_CELERY_BACKEND") or DEFAULT_BACKEND,
        "config_source": {
            "task_default_queue": celery_queue(),
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "result_expires": 86_400,
            "broker_connection_retry_on_startup": True,
        },
    }


def celery_queue() -> str:
    return os.environ.get("FLIGHT_FEES_CELERY_QUEUE") or DEFAULT_QUEUE


def processing_job_name() -> str:
    """The job the queue sensor requests: ``FLIGHT_FEES_EXECUTOR=celery`` selects the Celery
    variant, anything else (default) the in-process job."""
    mode = (os.environ.get("FLIGHT_FEES_EXECUTOR") or "in_process").strip().lower()
    return CELERY_JOB if mode == "celery" else IN_PROCESS_JOB
