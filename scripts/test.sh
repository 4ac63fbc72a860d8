#!/usr/bin/env bash
# The test command: ruff, unit and real-data tests, then every notebook re-executed under nbval (quick profile).
set -euo pipefail
# notebooks run with notebooks/ as their folder: relative data / runs paths must become absolute (before the cd)
[ -n "${MEDLIB_DATA:-}" ] && MEDLIB_DATA=$(realpath "$MEDLIB_DATA") && export MEDLIB_DATA
[ -n "${MEDLIB_RUNS:-}" ] && MEDLIB_RUNS=$(realpath -m "$MEDLIB_RUNS") && export MEDLIB_RUNS
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff format --check . >/dev/null && .venv/bin/ruff check .  # format and lint first (pyproject's [tool.ruff]): a style error fails in a second, not after the tests
export MEDLIB_PROFILE=${MEDLIB_PROFILE:-quick} MPLBACKEND=Agg
.venv/bin/python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider "$@"
# Report 2's notebooks again on a data root without the course data: generated NoduleMNIST3D files (official keys
# and shapes) stand in for M3DV, as they would for anyone without it. Generated files cannot match the official
# MD5, hence MEDLIB_VERIFY_MD5=0 for this run only.
nodata=$(mktemp -d)
trap 'rm -rf "$nodata"' EXIT
.venv/bin/python tests/synth_nodules.py "$nodata" >/dev/null
MEDLIB_DATA="$nodata" MEDLIB_RUNS="$nodata/runs" MEDLIB_CACHE="$nodata/cache" MEDLIB_VERIFY_MD5=0 HOME="$nodata" \
  MEDMNIST_ROOT= .venv/bin/python -m pytest notebooks/00_data_tour.ipynb notebooks/03_nodules_in_3d.ipynb \
  notebooks/04_densenet_mixup.ipynb --nbval-lax --nbval-current-env -p no:cacheprovider -q
