#!/usr/bin/env python3
"""Where a model's forward time goes, Loupe against onnxruntime, by truncated models.

onnxruntime's own profiler inflates its per-node times (about 2.4x on mobilenet_v3_small at
batch 1), so per-node comparisons mislead on small models. This script cuts the model after each
given node-name prefix (the graph output becomes the last output of the last node whose name
starts with it; `onnx.utils.extract_model` keeps only what that output needs), times both
runtimes on every prefix (onnxruntime in this process, Loupe through `loupe-bench`, alternating,
`--reps` times each, medians) and prints the running totals and their differences: the time each
segment adds on each side.

A cut costs onnxruntime a reorder of the cut tensor out of its channel-blocked layout, so a
single segment's difference is noisy; the running totals are not.

    swift build -c release --product loupe-bench
    .venv/bin/python Benchmarks/peers/bench_segments.py .models/bench_mobilenet_v3_small.onnx --batch 1 \\
        --cuts /features/features.0/,/features/features.3/,/features/features.9/,END
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO_ROOT / "tools"))
from loupe_venv import ensure_venv  # noqa: E402

ensure_venv()

import argparse  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnx.utils  # noqa: E402
import onnxruntime as ort  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--cuts", required=True, help="comma-separated node-name prefixes; END for the whole model")
    p.add_argument("--calls", type=int, default=150, help="timed calls per measurement")
    p.add_argument("--reps", type=int, default=3, help="measurements per prefix and side (median taken)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--loupe-bench", default=str(REPO_ROOT / ".build" / "release" / "loupe-bench"))
    a = p.parse_args()

    m = onnx.load(a.model)
    inp = m.graph.input[0].name
    shape = [a.batch] + [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim[1:]]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    tmp = Path(tempfile.mkdtemp(prefix="loupe-segments-"))
    prefixes = []
    for i, cut in enumerate(c for c in a.cuts.split(",") if c):
        if cut == "END":
            value = m.graph.output[0].name
        else:
            matches = [n.output[0] for n in m.graph.node if n.name.startswith(cut)]
            if not matches:
                raise SystemExit(f"no node name starts with {cut!r}")
            value = matches[-1]
        path = tmp / f"prefix{i}.onnx"
        onnx.utils.extract_model(a.model, str(path), [inp], [value])
        prefixes.append((cut, path))

    def ort_ms(path: Path) -> float:
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        for _ in range(20):
            s.run(None, {inp: x})
        ts = []
        for _ in range(a.calls):
            t = time.perf_counter()
            s.run(None, {inp: x})
            ts.append((time.perf_counter() - t) * 1e3)
        return statistics.median(ts)

    def loupe_ms(path: Path) -> float:
        r = subprocess.run([a.loupe_bench, str(path), "--batch", str(a.batch), "--runs", str(a.calls), "--warmup", "20",
                            "--threads", str(a.threads)], capture_output=True, text=True)
        found = re.search(r"median_ms=([0-9.]+)", r.stdout)
        if not found:
            raise SystemExit(f"loupe-bench failed on {path}: {(r.stdout + r.stderr)[-500:]}")
        return float(found.group(1))

    times = {cut: ([], []) for cut, _ in prefixes}
    for _ in range(a.reps):
        for cut, path in prefixes:
            times[cut][0].append(ort_ms(path))
            times[cut][1].append(loupe_ms(path))
    print(f"{Path(a.model).name} batch {a.batch}, {a.threads} threads, medians of {a.reps} x {a.calls} calls (ms)")
    print(f"{'prefix up to':<45} {'ORT':>8} {'Loupe':>8}   {'+ORT':>8} {'+Loupe':>8} {'Loupe-ORT':>9}")
    prev = (0.0, 0.0)
    for cut, _ in prefixes:
        o, lo = statistics.median(times[cut][0]), statistics.median(times[cut][1])
        print(f"{cut:<45} {o:8.3f} {lo:8.3f}   {o - prev[0]:8.3f} {lo - prev[1]:8.3f} {lo - prev[1] - (o - prev[0]):+9.3f}")
        prev = (o, lo)


if __name__ == "__main__":
    main()
