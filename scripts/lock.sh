#!/usr/bin/env bash
# Regenerate requirements-lock.txt: every package of medlib and its notebooks/test extras at one version, torch left
# out (it comes first, from PyTorch's CPU index: README, "pip install"). Needs uv (pip install uv).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo torch > "$tmp/torch.txt"
"$UV" pip compile pyproject.toml --extra notebooks --extra test --excludes "$tmp/torch.txt" --universal --no-header \
  -q -o "$tmp/body.txt"
{
  echo "# medlib's locked versions for a reproducible install: every package but torch, which comes first from"
  echo "# PyTorch's CPU index (README, \"pip install\"). Python >= 3.10, any platform. Made by scripts/lock.sh (uv pip"
  echo "# compile); tests/test_packaging.py checks that it covers pyproject.toml's dependencies."
  cat "$tmp/body.txt"
} > requirements-lock.txt
echo "requirements-lock.txt: $(grep -c '==' requirements-lock.txt) packages"
