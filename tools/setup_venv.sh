#!/usr/bin/env bash
# Create the Python virtual environment used by Loupe's reference tools (never by `swift test`).
#
#   tools/setup_venv.sh [--cpu] [--python PYTHON] [VENV_DIR]
#
# VENV_DIR defaults to $LOUPE_VENV, else .venv in the repository root. Packages come from
# tools/requirements.txt (pinned torch / torchvision / onnx / onnxruntime / onnxscript).
# --cpu installs torch and torchvision from the PyTorch CPU wheel index (much smaller download;
# versions stay the same, the local tag becomes +cpu). --python picks the interpreter that
# creates the venv (default: python3; the reference venv uses CPython 3.11).
# An existing venv is reused: pip only installs what is missing or differs from the pins.
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python_bin="python3"
cpu_index=""
venv_dir=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --cpu) cpu_index="https://download.pytorch.org/whl/cpu"; shift ;;
        --python) python_bin="${2:?--python needs a value}"; shift 2 ;;
        -*) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
        *) venv_dir="$1"; shift ;;
    esac
done
venv_dir="${venv_dir:-${LOUPE_VENV:-$repo_root/.venv}}"
requirements="$repo_root/tools/requirements.txt"

if [[ ! -x "$venv_dir/bin/python" ]]; then
    echo "creating venv $venv_dir with $("$python_bin" --version 2>&1)"
    "$python_bin" -m venv "$venv_dir"
fi
"$venv_dir/bin/python" -m pip install --quiet --upgrade pip

if [[ -n "$cpu_index" ]]; then
    # torch/torchvision from the CPU index first (same versions as pinned), the rest from PyPI.
    grep -E '^(torch|torchvision)==' "$requirements" \
        | xargs "$venv_dir/bin/python" -m pip install --index-url "$cpu_index"
fi
"$venv_dir/bin/python" -m pip install -r "$requirements"

"$venv_dir/bin/python" - <<'EOF'
import onnx, onnxruntime, torch, torchvision, numpy
print(f"ok: torch {torch.__version__}, torchvision {torchvision.__version__}, onnx {onnx.__version__}, "
      f"onnxruntime {onnxruntime.__version__}, numpy {numpy.__version__}")
EOF
echo "venv ready: $venv_dir  (use: LOUPE_VENV=$venv_dir or $venv_dir/bin/python tools/...)"
