#!/bin/bash
# Starts chainserve behind the Lambda Web Adapter: the zip package's handler (Handler: run.sh,
# run by the adapter's /opt/bootstrap) and the container image's command.
#
# One process, one uvicorn worker: Lambda sends one request at a time to an execution
# environment, and concurrency comes from more environments. No per-request access log unless
# CHAINSERVE_ACCESS_LOG=true (chainserve logs one line per chain run itself).
set -euo pipefail
cd "$(dirname "$0")"                                 # the task root: service/, chains/, packages
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# `chainserve serve`: CHAINSERVE_LOG_LEVEL, CHAINSERVE_ACCESS_LOG and the rest come from the
# environment; a bad value or chain file stops start-up with a clear message.
exec python3 -m service serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8080}"
