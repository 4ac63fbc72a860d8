#!/usr/bin/env bash
# The main job: Report 1's ResNet-18 on BreastMNIST (its train/val/test AUC/ACC table), then every
# notebook executed into an offline HTML report under reports/ (quick profile; MEDLIB_PROFILE=full on a GPU).
set -euo pipefail
# notebooks run with notebooks/ as their folder: relative data / runs paths must become absolute (before the cd)
[ -n "${MEDLIB_DATA:-}" ] && MEDLIB_DATA=$(realpath "$MEDLIB_DATA") && export MEDLIB_DATA
[ -n "${MEDLIB_RUNS:-}" ] && MEDLIB_RUNS=$(realpath -m "$MEDLIB_RUNS") && export MEDLIB_RUNS
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export MPLBACKEND=Agg
.venv/bin/python -m medlib train --dataset breastmnist --model resnet18 --preset report1 --epochs 50
exec .venv/bin/python -m medlib report --profile "${MEDLIB_PROFILE:-quick}" --out reports "$@"
