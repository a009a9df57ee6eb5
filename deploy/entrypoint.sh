#!/bin/sh
# The container's entrypoint: check the config, wait for the database and bring its tables up to
# date, then become `llmgw serve` (exec: the server replaces this shell as PID 1 and gets
# SIGTERM directly, so a stop drains requests and flushes the storage writer).
#
#   LLMGW_CONFIG        config file (default: the embedded defaults)
#   LLMGW_WORKERS       processes serving the port (`llmgw serve --workers`; unset: one)
#   LLMGW_DB_WAIT_S     seconds to wait for the database (default 60; 0: try once)
#   LLMGW_SKIP_MIGRATE  1: do not touch the database here (each replica still creates missing tables)
#   LLMGW_DRY_RUN       1: print the serve command instead of running it (tests, debugging)
#
# Arguments are passed to `llmgw serve`; a first argument that is not an option runs that command
# instead (e.g. `llmgw audit verify`), after the same checks.
set -eu

LLMGW=${LLMGW_BIN:-llmgw}

if [ -n "${LLMGW_CONFIG:-}" ]; then
  "$LLMGW" config check "$LLMGW_CONFIG"
fi

if [ "${LLMGW_SKIP_MIGRATE:-0}" != "1" ]; then
  "$LLMGW" storage migrate --wait "${LLMGW_DB_WAIT_S:-60}"
fi

case "${1:-}" in
  ""|-*)
    set -- "$LLMGW" serve ${LLMGW_WORKERS:+--workers "$LLMGW_WORKERS"} "$@"
    ;;
esac

if [ "${LLMGW_DRY_RUN:-0}" = "1" ]; then
  echo "exec $*"
  exit 0
fi
exec "$@"
