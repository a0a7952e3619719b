#!/bin/sh
# One service of the production topology (README "Production"), in the foreground, so that a
# supervisor (systemd unit, container) owns it and stops it alone:
#
#   scripts/prod_service.sh code-server   # the code location; run workers are ITS children
#   scripts/prod_service.sh daemon        # sensors, schedules, run queue, run monitoring
#   scripts/prod_service.sh webserver     # the UI
#
# The daemon and the webserver load the code location from the code server (workspace-prod.yaml),
# so restarting either never touches a run in progress. All three need the same environment:
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
*)
    echo "usage: $0 code-server|daemon|webserver" >&2
    exit 2
    ;;
esac
