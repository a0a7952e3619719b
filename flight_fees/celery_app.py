"""The Celery app of the scale-out workers (``celery -A flight_fees.celery_app worker``, see
``make workers``): dagster-celery's step task, on the broker, result backend and settings of
``process_flights_celery``'s executor (one source: ``flight_fees.defs.processing.scaleout``)."""

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from flight_fees.defs.processing.scaleout import celery_config

app = make_app(CeleryExecutor.for_cli(**celery_config()).app_args())
execute_plan = create_task(app)
