#!/usr/bin/env bash
# The main job: train Report 1's ResNet-18 on BreastMNIST and print its train/val/test AUC and ACC.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m medlib train --dataset breastmnist --model resnet18 --preset report1 --epochs 50 "$@"
