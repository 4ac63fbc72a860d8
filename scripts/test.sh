#!/usr/bin/env bash
# The test command: unit and real-data tests, then every notebook re-executed under nbval (quick profile).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export MEDLIB_PROFILE=${MEDLIB_PROFILE:-quick} MPLBACKEND=Agg
exec .venv/bin/python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider "$@"
