#!/usr/bin/env python3
"""Time the peers on resnet18 so Loupe's Swift benchmarks can report ratios.

Measures, at 224x224 with random-init torchvision resnet18 (eval mode, fixed seed):

  torch_forward_b1 / _b16      PyTorch forward, torch.set_num_threads(THREADS), no_grad
  ort_forward_b1 / _b16        onnxruntime CPU forward, intra_op_num_threads=THREADS
  torch_input_grad_b1 / _b16   PyTorch forward + backward to the input (objective: sum over the
                               batch of logits[:, argmax(logits[0])]), parameters frozen
  loupe_*                      optional: an external command (--loupe-cmd) that prints a line
                               `median_ms=<float>`; '{batch}' and '{model}' in it are replaced

Each entry is the median (and min / max) wall time in milliseconds of --runs timed runs after
--warmup untimed ones. A table goes to stdout, and JSON to --json PATH (or, alone, to stdout
with --json -). The ONNX file is exported (TorchScript exporter, opset 17, same seed-0 weights) to
.models/bench_resnet18.onnx, or to --onnx PATH when that does not exist yet.

    .venv/bin/python Benchmarks/peers/bench_resnet18.py --runs 10 --json /tmp/peers.json
    .venv/bin/python Benchmarks/peers/bench_resnet18.py \\
        --loupe-cmd '.build/release/loupe bench {model} --batch {batch}'
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO_ROOT / "tools"))
from loupe_venv import ensure_venv  # noqa: E402

ensure_venv()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

MEDIAN_RE = re.compile(r"median_ms\s*=\s*([0-9.eE+-]+)")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Median timings of PyTorch and onnxruntime on resnet18 (224x224), "
                    "optionally of an external Loupe command, as a table and JSON.",
        epilog="The venv can be chosen with --venv DIR or LOUPE_VENV (default: .venv).",
    )
    p.add_argument("--batches", default="1,16", help="comma-separated batch sizes (default: 1,16)")
    p.add_argument("--threads", type=int, default=2, help="threads for torch and ORT (default: 2)")
    p.add_argument("--runs", type=int, default=10, help="timed runs per entry (default: 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs (default: 3)")
    p.add_argument("--onnx", default=None, help="resnet18 ONNX file: used if it exists, else exported there "
                        "(default: export .models/bench_resnet18.onnx)")
    p.add_argument("--json", default=None, metavar="PATH", help="write JSON here ('-' = stdout)")
    p.add_argument("--no-backward", action="store_true", help="skip the forward+backward timing")
    p.add_argument("--loupe-cmd", default=None,
                   help="external command printing 'median_ms=<float>'; {batch}, {model}, "
                        "{threads} are substituted; run once per batch size")
    p.add_argument("--loupe-backward-cmd", default=None,
                   help="like --loupe-cmd, timing forward + backward to the input "
                        "(compared with torch_input_grad)")
    return p.parse_args()


def summarize(samples_ms: list[float]) -> dict:
    return {"median_ms": statistics.median(samples_ms), "min_ms": min(samples_ms),
            "max_ms": max(samples_ms), "runs": len(samples_ms)}


def time_it(fn, runs: int, warmup: int) -> dict:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return summarize(samples)


def export_resnet18(model, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.zeros(1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def run_external(template: str, batch: int, model_path: Path, threads: int) -> dict:
    cmd = template.format(batch=batch, model=shlex.quote(str(model_path)), threads=threads)
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=REPO_ROOT)
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}", "command": cmd}
    found = MEDIAN_RE.findall(proc.stdout)
    if not found:
        return {"error": "no 'median_ms=<float>' line in its output", "command": cmd}
    return {"median_ms": float(found[-1]), "command": cmd}


def main() -> int:
    args = parse_args()
    import numpy as np
    import onnxruntime as ort
    import torch
    import torchvision

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    onnx_path = Path(args.onnx) if args.onnx else REPO_ROOT / ".models" / "bench_resnet18.onnx"
    if not args.onnx or not onnx_path.exists():
        export_resnet18(model, onnx_path)

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])

    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    results: dict[str, dict] = {}
    for batch in batches:
        x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        x_np = x.numpy()

        def torch_forward():
            with torch.no_grad():
                model(x)

        def ort_forward():
            sess.run(None, {"input": x_np})

        def torch_input_grad():
            xg = x.clone().requires_grad_(True)
            logits = model(xg)
            target = int(logits[0].argmax())
            (g,) = torch.autograd.grad(logits[:, target].sum(), xg)
            return g

        results[f"torch_forward_b{batch}"] = time_it(torch_forward, args.runs, args.warmup)
        results[f"ort_forward_b{batch}"] = time_it(ort_forward, args.runs, args.warmup)
        if not args.no_backward:
            results[f"torch_input_grad_b{batch}"] = time_it(torch_input_grad, args.runs, args.warmup)
        if args.loupe_cmd:
            results[f"loupe_b{batch}"] = run_external(args.loupe_cmd, batch, onnx_path, args.threads)
        if args.loupe_backward_cmd:
            results[f"loupe_input_grad_b{batch}"] = run_external(args.loupe_backward_cmd, batch, onnx_path, args.threads)
        # The ONNX and PyTorch forwards must agree, or the timings compare different work.
        with torch.no_grad():
            diff = float(np.abs(model(x).numpy() - sess.run(None, {"input": x_np})[0]).max())
        results[f"check_b{batch}"] = {"max_abs_diff_torch_vs_ort": diff}

    ratios = {}
    for b in batches:
        torch_fwd = results[f"torch_forward_b{b}"]["median_ms"]
        ratios[f"ort_over_torch_forward_b{b}"] = results[f"ort_forward_b{b}"]["median_ms"] / torch_fwd
        loupe = results.get(f"loupe_b{b}", {})
        if "median_ms" in loupe:
            ratios[f"loupe_over_torch_forward_b{b}"] = loupe["median_ms"] / torch_fwd
            ratios[f"loupe_over_ort_forward_b{b}"] = loupe["median_ms"] / results[f"ort_forward_b{b}"]["median_ms"]
        loupe_grad = results.get(f"loupe_input_grad_b{b}", {})
        if "median_ms" in loupe_grad and f"torch_input_grad_b{b}" in results:
            ratios[f"loupe_over_torch_input_grad_b{b}"] = loupe_grad["median_ms"] / results[f"torch_input_grad_b{b}"]["median_ms"]

    report = {
        "benchmark": "resnet18_224",
        "threads": args.threads, "runs": args.runs, "warmup": args.warmup,
        "onnx": str(onnx_path),
        "results": results,
        "ratios": ratios,
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "onnxruntime": ort.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count()},
    }

    if args.json != "-":
        print(f"resnet18 224x224, {args.threads} threads, median of {args.runs} runs "
              f"after {args.warmup} warm-up")
        print(f"{'entry':<24} {'median ms':>10} {'min ms':>10} {'max ms':>10}")
        for name, r in results.items():
            if "median_ms" in r:
                lo = f"{r['min_ms']:10.2f} {r['max_ms']:10.2f}" if "min_ms" in r else f"{'':>10} {'':>10}"
                print(f"{name:<24} {r['median_ms']:10.2f} {lo}")
            elif "error" in r:
                print(f"{name:<24} error: {r['error']}")
            else:
                print(f"{name:<24} " + ", ".join(f"{k} {v:.2e}" for k, v in r.items()))
        for name, value in ratios.items():
            print(f"{name:<32} {value:6.2f}x")
    text = json.dumps(report, indent=1)
    if args.json == "-":
        print(text)
    elif args.json:
        Path(args.json).write_text(text + "\n")
        print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
