#!/usr/bin/env bash
# Smoke test of the Python reference tooling (about a minute): runs every script once on a
# small selection into a temporary folder and checks that the committed fixtures reproduce.
#
#   tools/selftest.sh            # venv from $LOUPE_VENV or .venv
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
py="${LOUPE_VENV:-$repo_root/.venv}/bin/python"
[[ -x "$py" ]] || { echo "error: no venv python at $py (run tools/setup_venv.sh)" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

step() { echo "== $*"; }
step "prepare conformance subset"
"$py" tools/onnx_conformance/prepare.py --out "$tmp/conf" --suites node,simple --filter '^test_(relu|conv|gemm)'
step "onnxruntime baseline"
"$py" tools/onnx_conformance/ort_baseline.py --root "$tmp/conf"
step "export models"
"$py" tools/models/export_models.py --list >/dev/null
"$py" tools/models/export_models.py --out "$tmp/models" --only gpt2_mini,bert_mini
step "op histogram"
"$py" tools/models/op_histogram.py "$tmp"/models/*.onnx | tail -1
step "fixtures reproduce"
"$py" tools/fixtures/make_model_fixtures.py --check
step "peer benchmark"
"$py" Benchmarks/peers/bench_resnet18.py --runs 1 --warmup 0 --batches 1 --no-backward \
    --onnx "$tmp/models/bench_resnet18.onnx" --json "$tmp/bench.json" --loupe-cmd 'echo median_ms=1.0' \
    2>&1 | tail -3 || true
test -s "$tmp/bench.json"
echo "selftest ok"
