#!/usr/bin/env bash
# Create .venv (once) with a CPU-only PyTorch, medlib in editable mode, and the test/notebook tools.
# Override the torch requirement with MEDLIB_TORCH (e.g. MEDLIB_TORCH="torch==2.13.0" or a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MEDLIB_VENV:-.venv}
PY=${PYTHON:-python3}
stamp="$VENV/.medlib-bootstrap"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then exit 0; fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip -q --disable-pip-version-check "$@"; }
# torch first and pinned: an unpinned torch would pull the CUDA wheels and several GB.
pip install "${MEDLIB_TORCH:-torch==2.13.0}"
pip install -e ".[test,notebooks]"
# medmnist only as the tests' metric oracle; --no-deps keeps torchvision and CUDA out.
pip install --no-deps "medmnist==3.0.2"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
if "$VENV/bin/python" -c "import torchvision" 2>/dev/null; then echo "bootstrap: torchvision got installed; it must not be" >&2; exit 1; fi
touch "$stamp"
