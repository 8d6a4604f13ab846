#!/bin/bash
# Starts chainserve behind the Lambda Web Adapter: the zip package's handler (Handler: run.sh,
# run by the adapter's /opt/bootstrap) and the container image's command.
#
# One uvicorn worker: Lambda sends one request at a time to an execution environment, and
# concurrency comes from more environments. No per-request access log unless
# CHAINSERVE_ACCESS_LOG=true (chainserve logs one line per chain run itself).
set -euo pipefail
cd "$(dirname "$0")"                                 # the task root: service/, chains/, packages
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

access_log=--no-access-log
access_log_setting="${CHAINSERVE_ACCESS_LOG:-false}"
case "${access_log_setting,,}" in # lower-cased, as the app reads booleans
  true | 1 | yes | on) access_log=--access-log ;;
esac

exec python3 -m uvicorn service.app:app \
  --host "${HOST:-127.0.0.1}" \
  --port "${PORT:-8080}" \
  --workers 1 \
  --log-level "${CHAINSERVE_LOG_LEVEL:-info}" \
  "$access_log" \
  --no-server-header \
  --timeout-graceful-shutdown 5
