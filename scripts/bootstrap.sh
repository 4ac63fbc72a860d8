#!/usr/bin/env bash
# Create .venv (once) with a CPU-only PyTorch, medlib in editable mode, and the test/notebook tools.
# Override the torch requirement with MEDLIB_TORCH (e.g. MEDLIB_TORCH="torch==2.13.0" or a CUDA build) and
# its index with MEDLIB_TORCH_INDEX (default: PyTorch's CPU index when no NVIDIA GPU is present).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MEDLIB_VENV:-.venv}
PY=${PYTHON:-python3}
stamp="$VENV/.medlib-bootstrap"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then exit 0; fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip -q --disable-pip-version-check "$@"; }
# torch first and pinned: an unpinned torch would pull the CUDA wheels and several GB.
torch_req=${MEDLIB_TORCH:-torch==2.13.0}
# Without an NVIDIA GPU, PyPI's Linux torch still drags in ~3 GB of CUDA libraries: take the CPU build from
# PyTorch's own index instead. MEDLIB_TORCH_INDEX overrides the choice (empty: the default index).
if command -v nvidia-smi >/dev/null 2>&1 || [ -e /proc/driver/nvidia ]; then default_index=""
else default_index="https://download.pytorch.org/whl/cpu"; fi
torch_index=${MEDLIB_TORCH_INDEX-$default_index}
# Is the index answering? At most ~8 s, DNS included (a thread, since urlopen's timeout skips name lookup).
reachable() {
  "$VENV/bin/python" - "$1" 2>/dev/null <<'PY'
import sys, threading, urllib.request
ok = []
t = threading.Thread(target=lambda: ok.append(urllib.request.urlopen(sys.argv[1], timeout=5).status), daemon=True)
t.start(); t.join(8)
sys.exit(0 if ok else 1)
PY
}
if [ -n "$torch_index" ] && reachable "$torch_index/"; then
  echo "bootstrap: torch ($torch_req) from $torch_index"
  pip install --timeout 20 --retries 1 --index-url "$torch_index" "$torch_req" \
    || { echo "bootstrap: $torch_index failed; using the default index" >&2; pip install "$torch_req"; }
else
  [ -n "$torch_index" ] && echo "bootstrap: $torch_index is unreachable; torch ($torch_req) from the default index" >&2
  pip install "$torch_req"
fi
# the test extra brings pytest, nbval and ruff (pinned there; scripts/test.sh lints with it before the tests)
pip install -e ".[test,notebooks]"
# medmnist only as the tests' metric oracle; --no-deps keeps torchvision and CUDA out.
pip install --no-deps "medmnist==3.0.2"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
if "$VENV/bin/python" -c "import torchvision" 2>/dev/null; then echo "bootstrap: torchvision got installed; it must not be" >&2; exit 1; fi
touch "$stamp"
