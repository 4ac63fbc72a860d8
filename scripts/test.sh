#!/usr/bin/env bash
# The test command: unit and real-data tests, then every notebook re-executed under nbval (quick profile).
set -euo pipefail
# notebooks run with notebooks/ as their folder: relative data / runs paths must become absolute (before the cd)
[ -n "${MEDLIB_DATA:-}" ] && MEDLIB_DATA=$(realpath "$MEDLIB_DATA") && export MEDLIB_DATA
[ -n "${MEDLIB_RUNS:-}" ] && MEDLIB_RUNS=$(realpath -m "$MEDLIB_RUNS") && export MEDLIB_RUNS
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export MEDLIB_PROFILE=${MEDLIB_PROFILE:-quick} MPLBACKEND=Agg
exec .venv/bin/python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider "$@"
