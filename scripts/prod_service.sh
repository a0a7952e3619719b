#!/bin/sh
# One service of the production topology (README "Production"), in the foreground, so that a
# supervisor (systemd unit, container) owns it and stops it alone:
#
#   scripts/prod_service.sh code-server   # the code location; run workers are ITS children
#   scripts/prod_service.sh daemon        # sensors, schedules, run queue, run monitoring
#   scripts/prod_service.sh webserver     # the UI
#   scripts/prod_service.sh worker        # a Celery worker (scale-out mode, docs/DEPLOYMENT.md)
#
# The daemon and the webserver load the code location from the code server (workspace-prod.yaml),
# so restarting either never touches a run in progress. All of them need the same environment:
# DAGSTER_HOME (holding dagster-prod.yaml as dagster.yaml), DAGSTER_POSTGRES_URL,
# FLIGHT_FEES_DATABASE_URL and the other FLIGHT_FEES_* settings. The fault suite
# (flight_fees_tests/faults) starts its services through this script.
set -eu
: "${DAGSTER_HOME:?set DAGSTER_HOME (a directory holding dagster-prod.yaml as dagster.yaml)}"
: "${DAGSTER_POSTGRES_URL:?set DAGSTER_POSTGRES_URL (the Dagster instance database)}"
FLIGHT_FEES_CODE_SERVER_PORT="${FLIGHT_FEES_CODE_SERVER_PORT:-4266}"
export FLIGHT_FEES_CODE_SERVER_PORT
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${FLIGHT_FEES_BIN:-$root/.venv/bin}"
cd "$root"
case "${1:-}" in
code-server)
    exec "$bin/dagster" code-server start -h 127.0.0.1 -p "$FLIGHT_FEES_CODE_SERVER_PORT" \
        -m flight_fees.definitions --location-name flight_fees
    ;;
daemon)
    exec "$bin/dagster-daemon" run -w "$root/workspace-prod.yaml"
    ;;
webserver)
    exec "$bin/dagster-webserver" -w "$root/workspace-prod.yaml" \
        -h "${FLIGHT_FEES_WEBSERVER_HOST:-127.0.0.1}" -p "${FLIGHT_FEES_WEBSERVER_PORT:-3000}"
    ;;
worker)
    # runs the steps of process_flights_celery (FLIGHT_FEES_EXECUTOR=celery) taken from the
    # broker FLIGHT_FEES_CELERY_BROKER, queue FLIGHT_FEES_CELERY_QUEUE; one task per pool
    # process, FLIGHT_FEES_WORKER_CONCURRENCY processes (default: the machine's cores); the
    # name carries this process's pid (exec keeps it), so workers on one host stay apart
    queue="${FLIGHT_FEES_CELERY_QUEUE:-dagster}"
    concurrency="${FLIGHT_FEES_WORKER_CONCURRENCY:-$(nproc 2>/dev/null || echo 1)}"
    exec "$bin/celery" -A flight_fees.celery_app worker -Q "$queue" --prefetch-multiplier=1 \
        -c "$concurrency" -n "${FLIGHT_FEES_WORKER_NAME:-flight_fees-$$}@%h" \
        -l "${FLIGHT_FEES_WORKER_LOGLEVEL:-INFO}"
    ;;
*)
    echo "usage: $0 code-server|daemon|webserver|worker" >&2
    exit 2
    ;;
esac
