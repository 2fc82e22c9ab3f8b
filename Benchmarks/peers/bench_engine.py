#!/usr/bin/env python3
"""Loupe's engine against PyTorch and onnxruntime, on the same inputs, in one run (issue 5).

One command times, section by section, PyTorch (torch.set_num_threads(T)), onnxruntime (CPU,
intra_op_num_threads=T, sequential) in this process and Loupe through the release
`loupe-bench` binary (a subprocess per side and round), and prints medians and the ratios
Loupe / PyTorch and Loupe / onnxruntime, with issue 5's targets where one applies:

  peak     the machine's measured fp32 peak: Benchmarks/peers/fma_peak.c (16 independent FMA
           chains, no memory traffic) compiled with the system C compiler and run on 1..T
           threads; the "100 %" of the GEMM section. The nominal figure from /proc/cpuinfo
           (2 FMA units x 16 lanes x 2 flops x MHz) is printed beside it but not used: a VM's
           cpuinfo shows the base clock, not the boost clock the cores run at.
  gemm     C = A.B (row-major fp32, beta 0): torch.mm, an onnxruntime MatMul with both operands
           as inputs (no pre-packing), Loupe Kernels.gemm; square 256..2048 and conv/ViT-shaped
           sizes, on 1 and 2 threads; GFLOP/s and % of the measured peak.
           Target: >= 85 % of peak on 1 thread and >= 80 % on 2, square sizes >= 512.
  conv     every distinct convolution of resnet18 (found with forward hooks, with how often it
           occurs), batches 1 and 16: forward (torch conv2d, an onnxruntime Conv whose weight is
           an initializer, Loupe Kernels.conv2d with the weight packed once, as each engine
           does for a loaded model) and backward to the input (aten.convolution_backward with
           only the input gradient, Loupe Kernels.conv2dBackwardInput).
  models   resnet18, mobilenet_v3_small, efficientnet_b0, ViT-tiny (12 layers) forward at batch
           1 and 16 (torch no_grad, onnxruntime, Loupe Model.run) and forward + backward to the
           input (torch autograd with frozen parameters vs Loupe's recorded forward + backward),
           the models of tools/models/export_bench_models.py (exported when missing; torch and
           onnxruntime are checked to agree before timing). The input is the same tensor for all
           three (handed to Loupe as a raw float32 file).
           Targets: resnet18 forward Loupe/ORT <= 1.0; resnet18 forward+backward Loupe/torch
           <= 0.6; the others' forward Loupe/ORT <= 1.2.
  memory   peak resident memory (VmHWM, see peak_rss_mb) of resnet18 batch-16 forward+backward,
           each side in a fresh process, next to its baseline (resident after the model is
           loaded and the input made, before the first pass) and the difference.
           Target: Loupe's peak <= PyTorch's.
  explain  Benchmarks/peers/bench_explainers.py (issue 4's explainers end to end) run as is;
           its table is printed and its JSON nested in this one. Not in the default sections
           (it takes several minutes); --sections all or --sections explain.

Fairness: within each round every side runs its entry back to back, and the order rotates
between rounds (round r starts with side r mod sides), so drifting machine load hits all sides
alike; medians are over all rounds' timed calls. Kernels under ~1 ms are timed as --reps
back-to-back calls per sample on all sides alike. Everything Loupe runs is a release build:
`swift build -c release --product loupe-bench` runs first (seconds when up to date), unless
--no-build or --loupe-bench PATH (e.g. an A/B build) is given.

    .venv/bin/python Benchmarks/peers/bench_engine.py                       # default sections, ~8 min
    .venv/bin/python Benchmarks/peers/bench_engine.py --sections gemm --gemm-threads 1 --json /tmp/gemm.json
    .venv/bin/python Benchmarks/peers/bench_engine.py --sections models --models resnet18 --batches 16

torch keeps its default OpenMP wait policy (spinning, its fastest on a quiet machine) unless
--omp-passive is given; on a machine other processes are loading, pass it and say so next to
the numbers (see bench_explainers.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO_ROOT / "tools"))
sys.path.insert(0, str(REPO_ROOT / "tools" / "models"))
from loupe_venv import ensure_venv  # noqa: E402

ensure_venv()

import os  # noqa: E402

if "--omp-passive" in sys.argv:
    sys.argv.remove("--omp-passive")
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import export_bench_models  # noqa: E402
from paired_stats import ci_text, median_ci  # noqa: E402

SECTIONS = ["peak", "gemm", "conv", "models", "memory", "explain"]
DEFAULT_SECTIONS = "peak,gemm,conv,models,memory"
MODELS = ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "vit_tiny"]
SQUARE = [256, 512, 1024, 1536, 2048]
# (M, N, K, what): resnet18's 3x3 convolutions as im2col GEMMs at batch 1 (M = out channels,
# N = output pixels, K = in channels x 9) and ViT-tiny's MLP at batch 16 (16 x 197 tokens).
SHAPED = [(64, 3136, 576, "resnet18 layer1 3x3"), (128, 784, 1152, "resnet18 layer2 3x3"),
          (256, 196, 2304, "resnet18 layer3 3x3"), (512, 49, 4608, "resnet18 layer4 3x3"),
          (3152, 768, 192, "vit_tiny b16 fc1"), (3152, 192, 768, "vit_tiny b16 fc2")]
GEMM_TARGETS = {1: 0.85, 2: 0.80}  # fraction of measured peak, square sizes >= 512
FWD_ORT_TARGET = {"resnet18": 1.0, "mobilenet_v3_small": 1.2, "efficientnet_b0": 1.2, "vit_tiny": 1.2}
FWDBWD_TORCH_TARGET = {"resnet18": 0.6}

KV_RE = re.compile(r"([A-Za-z_]+)=([^\s]+)")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Loupe vs PyTorch vs onnxruntime: GEMM, resnet18's convolutions, four models' forward "
                    "and forward+backward, peak memory (issue 5), optionally the explainers (issue 4).",
        epilog="The venv can be chosen with --venv DIR or LOUPE_VENV (default: .venv).")
    p.add_argument("--sections", default=DEFAULT_SECTIONS,
                   help=f"comma-separated subset of {','.join(SECTIONS)}, or 'all' (default: {DEFAULT_SECTIONS}); "
                        "gemm adds peak")
    p.add_argument("--threads", type=int, default=2, help="threads of every side for conv, models, memory, explain (default 2)")
    p.add_argument("--gemm-threads", default="1,2", help="thread counts of the gemm section (default 1,2)")
    p.add_argument("--runs", type=int, default=5, help="timed calls per side, entry and round (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per side, entry and round (default 1)")
    p.add_argument("--rounds", type=int, default=2, help="rounds; the side that goes first rotates (default 2)")
    p.add_argument("--settle", type=float, default=0.3,
                   help="seconds of idle before each side's turn, so the previous side's spinning threads stop (default 0.3)")
    p.add_argument("--gemm-sizes", default=",".join(map(str, SQUARE)), help="square GEMM sizes (default %(default)s)")
    p.add_argument("--no-shaped", action="store_true", help="skip the conv/ViT-shaped GEMMs")
    p.add_argument("--conv-batches", default="1,16", help="batches of the conv section (default 1,16)")
    p.add_argument("--models", default=",".join(MODELS), help=f"subset of {','.join(MODELS)}")
    p.add_argument("--batches", default="1,16", help="batches of the models section (default 1,16)")
    p.add_argument("--no-backward", action="store_true", help="models: forward only")
    p.add_argument("--pairs", type=int, default=12,
                   help="models: pairs of interleaved onnxruntime / Loupe blocks (one loupe-bench --serve process); "
                        "their median ratio is the forward verdict; 0: rounds only (default %(default)s)")
    p.add_argument("--memory-batch", type=int, default=16, help="batch of the memory section (default 16)")
    p.add_argument("--explain-args", default="--runs 5 --rounds 2",
                   help="extra arguments for bench_explainers.py (default: %(default)s)")
    p.add_argument("--loupe-bench", default=None, metavar="PATH",
                   help="loupe-bench binary (default .build/release/loupe-bench, rebuilt first unless --no-build; a PATH is used as is)")
    p.add_argument("--no-build", action="store_true", help="do not run swift build first (explain: nor for loupe-explain-bench)")
    p.add_argument("--omp-passive", action="store_true",
                   help="OMP_WAIT_POLICY=PASSIVE for torch (handled before argparse; for a busy machine)")
    p.add_argument("--json", default=None, metavar="PATH", help="write all results as JSON here")
    # Internal: the memory section's fresh PyTorch process.
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    return p.parse_args()


# ---------------------------------------------------------------------------------------------
# Timing helpers


def summarize(samples: list[float]) -> dict:
    return {"median_ms": statistics.median(samples), "min_ms": min(samples), "max_ms": max(samples),
            "n": len(samples), "times_ms": [round(t, 4) for t in samples]}


def time_calls(fn, runs: int, warmup: int, reps: int = 1) -> list[float]:
    """Per-call milliseconds of `runs` samples, each `reps` back-to-back calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        out.append((time.perf_counter() - t0) * 1e3 / reps)
    return out


class LoupeBench:
    """The release loupe-bench binary, run once per side and round."""

    def __init__(self, path: Path):
        self.path = path

    def run(self, *argv, timeout: float = 900) -> dict:
        cmd = [str(self.path), *map(str, argv)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
        fields: dict = {}
        for line in proc.stdout.splitlines():
            for k, v in KV_RE.findall(line):
                fields[k] = v
        if "median_ms" not in fields:
            raise RuntimeError(f"{' '.join(cmd)}: no median_ms= line in its output")
        times = [float(t) for t in fields.get("times_ms", "").split(",") if t]
        return {"times_ms": times or [float(fields["median_ms"])], "fields": fields, "command": " ".join(cmd)}


SETTLE_S = 0.3  # --settle
PAIR_SETTLE_S = 0.05  # between the blocks of a paired measurement: both sides' spinning workers stop


class LoupeServer:
    """One loupe-bench process in --serve mode: the model stays loaded and times blocks of calls
    on request, so that they can alternate with onnxruntime's in-process calls milliseconds
    apart."""

    def __init__(self, lb: LoupeBench, *argv):
        self.cmd = [str(lb.path), *map(str, argv), "--serve"]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=REPO_ROOT)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{' '.join(self.cmd)}: did not start: {self.proc.stderr.read()[-400:]}")

    def block(self, warmup: int, n: int) -> list[float]:
        self.proc.stdin.write(f"{warmup} {n}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        fields = dict(KV_RE.findall(line))
        if "times_ms" not in fields:
            raise RuntimeError(f"{' '.join(self.cmd)}: no times_ms= answer: {self.proc.stderr.read()[-400:]}")
        return [float(t) for t in fields["times_ms"].split(",") if t]

    def close(self) -> None:
        try:
            self.proc.stdin.write("q\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except Exception:
            self.proc.kill()


def paired_with(lb: LoupeBench, serve_args: list, peer, pairs: int, label: str, settle: float = PAIR_SETTLE_S) -> dict:
    """paired_blocks against one `loupe-bench ... --serve` process started for it."""
    server = LoupeServer(lb, *serve_args)
    try:
        res = paired_blocks(peer, server, pairs, settle=settle)
    finally:
        server.close()
    far = [r for r, rt in zip(res["ratios"], res["roundtrip_ns"]) if rt is not None and rt > FAR_ROUNDTRIP_NS]
    near = [r for r, rt in zip(res["ratios"], res["roundtrip_ns"]) if rt is not None and rt <= FAR_ROUNDTRIP_NS]
    split = ""
    if far:
        split = f"; vCPUs far apart in {len(far)} pairs (median {statistics.median(far):.3f})"
        if near:
            split += f", near in {len(near)} (median {statistics.median(near):.3f})"
    print(f"  {label}: {res['ratio_median']:.3f} (median of {res['pairs']} block ratios{ci_text(res.get('ratio_ci95'))}{split})",
          file=sys.stderr, flush=True)
    return res


def paired_blocks(peer, server: LoupeServer, pairs: int, calls: int = 3, settle: float = PAIR_SETTLE_S) -> dict:
    """`pairs` pairs of blocks, the peer's (`peer(n)` -> per-call ms of n timed calls after one
    untimed) and Loupe's alternating, the order flipping every pair; each block is one warm-up
    call and `calls` timed ones. The ratio is the median over pairs of Loupe's block median over
    the peer's: blocks tens of milliseconds apart see the same host speed, where whole rounds a
    process start apart do not."""
    ratios, peer_ms, loupe_ms, roundtrips = [], [], [], []
    for p in range(pairs):
        # Which placement the pair ran in (one run of core_roundtrip.c, ~5-35 ms, during the settle).
        roundtrips.append(core_roundtrip_ns(1))
        order = ("peer", "loupe") if p % 2 == 0 else ("loupe", "peer")
        got = {}
        for side in order:
            time.sleep(settle)
            got[side] = peer(calls) if side == "peer" else server.block(1, calls)
        a, b = statistics.median(got["loupe"]), statistics.median(got["peer"])
        ratios.append(a / b)
        loupe_ms += got["loupe"]
        peer_ms += got["peer"]
    return {"pairs": pairs, "calls_per_block": calls, "ratio_median": statistics.median(ratios),
            "ratio_ci95": median_ci(ratios), "ratios": ratios, "roundtrip_ns": roundtrips,
            "loupe": summarize(loupe_ms), "peer": summarize(peer_ms)}


def rounds(sides: dict, n_rounds: int, progress: str | None = None) -> dict:
    """Runs every side (name -> callable returning per-call ms) once per round, rotating which
    goes first; returns name -> summary over all rounds, or {"error": ...}."""
    names = list(sides)
    samples: dict[str, list[float]] = {n: [] for n in names}
    errors: dict[str, str] = {}
    for r in range(n_rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            if name in errors:
                continue
            # Let the previous side's worker threads stop spinning (torch's OpenMP pool and
            # onnxruntime's spin-wait after each call for a while) before this side starts: a
            # short-lived loupe-bench child started right after torch otherwise shares its two
            # cores with a spinning thread (a 0.30 ms convolution read as 0.48-0.95 ms).
            time.sleep(SETTLE_S)
            try:
                samples[name].extend(sides[name]())
            except Exception as e:  # one side failing must not lose the others' numbers
                errors[name] = str(e)[-400:]
    if progress:
        parts = [f"{n} {statistics.median(samples[n]):.3f}" for n in names if samples[n]]
        print(f"  {progress}: " + ", ".join(parts) + " ms", file=sys.stderr, flush=True)
    return {n: ({"error": errors[n]} if n in errors else summarize(samples[n])) for n in names}


def med(entry: dict, side: str) -> float | None:
    return entry.get(side, {}).get("median_ms")


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def fmt(v, spec=".2f", width=8) -> str:
    return f"{v:{width}{spec}}" if isinstance(v, (int, float)) else f"{'-':>{width}}"


def verdict(value: float | None, limit: float | None, higher_is_better: bool = False) -> str:
    if limit is None or value is None:
        return ""
    ok = value >= limit if higher_is_better else value <= limit
    return "met" if ok else "MISSED"


# ---------------------------------------------------------------------------------------------
# Sections


def ensure_loupe_bench(args) -> LoupeBench:
    """The release loupe-bench. The default binary is (re)built first, a few seconds when it is up
    to date, so a stale build never gets timed; --loupe-bench PATH and --no-build use it as is."""
    path = Path(args.loupe_bench) if args.loupe_bench else REPO_ROOT / ".build" / "release" / "loupe-bench"
    if not args.no_build and not args.loupe_bench:
        print("swift build -c release --product loupe-bench ...", file=sys.stderr, flush=True)
        proc = subprocess.run(["swift", "build", "-c", "release", "--product", "loupe-bench"], cwd=REPO_ROOT,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"release build failed:\n{(proc.stdout + proc.stderr)[-2000:]}")
    if not path.exists():
        raise SystemExit(f"{path} does not exist; build it: swift build -c release --product loupe-bench")
    return LoupeBench(path)


# A vCPU round trip above this is the far placement (~325 ns; ~55 ns near).
FAR_ROUNDTRIP_NS = 200.0


def build_tool(name: str) -> tuple[Path | None, str]:
    """Benchmarks/peers/NAME.c compiled into .build/bench-tools (again when the source is newer)."""
    out_dir = REPO_ROOT / ".build" / "bench-tools"
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / name
    src = REPO_ROOT / "Benchmarks" / "peers" / f"{name}.c"
    cc = os.environ.get("CC", "cc")
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        proc = subprocess.run([cc, "-O2", "-o", str(exe), str(src), "-lpthread"], capture_output=True, text=True)
        if proc.returncode != 0:
            return None, f"{cc} failed: {proc.stderr.strip()[-300:]}"
    return exe, ""


def core_roundtrip_ns(runs: int = 9) -> float | None:
    """A cache line's round trip between CPUs 0 and 1 (core_roundtrip.c): ~55 ns when this VM's
    two vCPUs share an L3, ~325 ns when they are placed far apart, which slows every two-thread
    Loupe pass that reads what the other thread wrote (docs/kernels.md, "Threads")."""
    exe, _ = build_tool("core_roundtrip")
    if exe is None:
        return None
    proc = subprocess.run([str(exe), str(runs)], capture_output=True, text=True)
    kv = dict(KV_RE.findall(proc.stdout))
    try:
        v = float(kv.get("roundtrip_ns", "nan"))
    except ValueError:
        return None
    return None if v != v else v


def section_peak(max_threads: int) -> dict:
    """Measured FMA peak per thread count (GFLOP/s), and the nominal cpuinfo figure."""
    info: dict = {"method": "Benchmarks/peers/fma_peak.c: 16 independent FMA chains per thread, best of 20 x ~0.05 s, "
                            "measured before and after the gemm section, the better kept"}
    mhz, flags = None, ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        if m := re.search(r"cpu MHz\s*:\s*([0-9.]+)", text):
            mhz = float(m.group(1))
        if m := re.search(r"flags\s*:(.*)", text):
            flags = m.group(1)
    except OSError:
        pass
    lanes = 16 if " avx512f" in flags else 8
    if mhz:
        info["nominal_gflops_per_core"] = 2 * lanes * 2 * mhz / 1e3
        info["nominal_note"] = f"2 FMA units x {lanes} lanes x 2 flops x {mhz:.0f} MHz (cpuinfo; not used)"
    exe, error = build_tool("fma_peak")
    if exe is None:
        info["error"] = error
        return info
    proc = subprocess.run([str(exe), str(max_threads)], capture_output=True, text=True)
    measured = {}
    for line in proc.stdout.splitlines():
        kv = dict(KV_RE.findall(line))
        if "gflops" in kv:
            measured[int(kv["threads"])] = float(kv["gflops"])
            info["isa"] = kv.get("isa")
    info["measured_gflops"] = measured
    return info


def peak_warning(measured: dict) -> str | None:
    """A busy machine can starve the multi-thread peak run, which would overstate '% of peak'
    (and could pass a target falsely): flag thread counts reaching under 0.75 x T x the 1-thread peak."""
    one = measured.get(1)
    low = [t for t, g in measured.items() if one and t > 1 and g < 0.75 * t * one]
    if not low:
        return None
    return (f"measured peak on {','.join(map(str, low))} threads is under 0.75 x threads x the 1-thread peak: other "
            f"processes held cores; '% of peak' on those thread counts is overstated")


def section_gemm(args, lb: LoupeBench, peak: dict) -> dict:
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper

    # One MatMul with both operands as (dynamic-shape) inputs: onnxruntime packs B per call, as
    # Loupe and torch do.
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "B"], ["C"])], "gemm",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["M", "K"]),
         helper.make_tensor_value_info("B", TensorProto.FLOAT, ["K", "N"])],
        [helper.make_tensor_value_info("C", TensorProto.FLOAT, ["M", "N"])])
    model_bytes = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    onnx.checker.check_model(model_bytes)

    sizes = [(s, s, s, "square") for s in (int(v) for v in args.gemm_sizes.split(",") if v)]
    if not args.no_shaped:
        sizes += SHAPED
    thread_counts = [int(t) for t in args.gemm_threads.split(",") if t]
    measured = peak.get("measured_gflops", {})
    rows = []
    for t in thread_counts:
        torch.set_num_threads(t)
        so = ort.SessionOptions()
        so.intra_op_num_threads = t
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
        for m, n, k, what in sizes:
            flops = 2.0 * m * n * k
            reps = max(1, round(2e9 / flops))
            g = torch.Generator().manual_seed(0)
            a = torch.rand(m, k, generator=g) * 2 - 1
            b = torch.rand(k, n, generator=g) * 2 - 1
            c = torch.empty(m, n)
            a_np, b_np = a.numpy(), b.numpy()
            sides = {
                "torch": lambda: time_calls(lambda: torch.mm(a, b, out=c), args.runs, args.warmup, reps),
                "ort": lambda: time_calls(lambda: sess.run(None, {"A": a_np, "B": b_np}), args.runs, args.warmup, reps),
                "loupe": lambda: lb.run("gemm", m, n, k, "--threads", t, "--reps", reps, "--runs", args.runs,
                                        "--warmup", args.warmup)["times_ms"],
            }
            entry = rounds(sides, args.rounds, progress=f"gemm {m}x{n}x{k} T{t}")
            entry.update({"m": m, "n": n, "k": k, "what": what, "threads": t, "reps": reps})
            for side in ("torch", "ort", "loupe"):
                if (ms := med(entry, side)):
                    entry[side]["gflops"] = flops / ms / 1e6
                    entry[side]["gflops_best"] = flops / entry[side]["min_ms"] / 1e6
            pk = measured.get(t)
            lg = entry["loupe"].get("gflops")
            if pk and lg:
                entry["loupe_pct_peak"] = 100 * lg / pk
                entry["loupe_pct_peak_best"] = 100 * entry["loupe"]["gflops_best"] / pk
                if what == "square" and m >= 512 and t in GEMM_TARGETS:
                    entry["target"] = f">= {int(GEMM_TARGETS[t] * 100)} % of peak"
                    entry["met"] = lg / pk >= GEMM_TARGETS[t]
            entry["loupe_over_torch"] = ratio(med(entry, "loupe"), med(entry, "torch"))
            entry["loupe_over_ort"] = ratio(med(entry, "loupe"), med(entry, "ort"))
            rows.append(entry)
        del sess
    return {"rows": rows, "peak": peak}


def print_gemm(res: dict) -> None:
    peak = res["peak"]
    pk = ", ".join(f"{t} thread{'s' if t > 1 else ''} {g:.0f}" for t, g in peak.get("measured_gflops", {}).items())
    print(f"\nGEMM C = A.B (fp32 row-major), per-call median; GFLOP/s from the median; peak measured (FMA loop): {pk} GFLOP/s"
          + (f"; nominal {peak['nominal_gflops_per_core']:.0f}/core from cpuinfo MHz" if "nominal_gflops_per_core" in peak else ""))
    print(f"{'M x N x K':<16} {'what':<20} {'T':>2} {'torch ms':>9} {'ORT ms':>9} {'Loupe ms':>9} {'torch GF':>8} "
          f"{'ORT GF':>8} {'Loupe GF':>8} {'%peak':>6} {'(best)':>6} {'L/torch':>7} {'L/ORT':>6}  target")
    if "warning" in peak:
        print(f"WARNING: {peak['warning']}")
    for e in res["rows"]:
        g = {s: e[s].get("gflops") for s in ("torch", "ort", "loupe")}
        tgt = f"{e['target']} {'met' if e['met'] else 'MISSED'}" if "target" in e else ""
        size = f"{e['m']}x{e['n']}x{e['k']}"
        print(f"{size:<16} {e['what']:<20} {e['threads']:>2} {fmt(med(e, 'torch'), '.3f', 9)} "
              f"{fmt(med(e, 'ort'), '.3f', 9)} {fmt(med(e, 'loupe'), '.3f', 9)} {fmt(g['torch'], '.0f')} {fmt(g['ort'], '.0f')} "
              f"{fmt(g['loupe'], '.0f')} {fmt(e.get('loupe_pct_peak'), '.0f', 6)} {fmt(e.get('loupe_pct_peak_best'), '.0f', 6)} "
              f"{fmt(e['loupe_over_torch'], '.2f', 7)} "
              f"{fmt(e['loupe_over_ort'], '.2f', 6)}  {tgt}")
        for s in ("torch", "ort", "loupe"):
            if "error" in e[s]:
                print(f"    {s}: error: {e[s]['error']}")


def resnet18_convs() -> list[dict]:
    """Distinct Conv2d geometries of resnet18 on a 224x224 input, in network order, with counts."""
    import torch

    model = export_bench_models.build("bench_resnet18")
    seen: dict[tuple, dict] = {}

    def hook(mod, inputs, _out):
        x = inputs[0]
        key = (x.shape[1], x.shape[2], x.shape[3], mod.out_channels, mod.kernel_size[0], mod.kernel_size[1],
               mod.stride[0], mod.padding[0], mod.groups)
        if key in seen:
            seen[key]["count"] += 1
        else:
            seen[key] = {"c": key[0], "h": key[1], "w": key[2], "m": key[3], "kh": key[4], "kw": key[5],
                         "stride": key[6], "pad": key[7], "groups": key[8], "count": 1, "first": name_of[mod]}

    name_of = {m: n for n, m in model.named_modules()}
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    for h in handles:
        h.remove()
    return list(seen.values())


def conv_onnx(c: dict, weight) -> bytes:
    """A one-Conv model with the weight as an initializer (as in an exported network)."""
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("Conv", ["X", "W"], ["Y"], kernel_shape=[c["kh"], c["kw"]], strides=[c["stride"]] * 2,
                            pads=[c["pad"]] * 4, group=c["groups"])
    graph = helper.make_graph([node], "conv",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", c["c"], c["h"], c["w"]])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(weight, "W")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def section_conv(args, lb: LoupeBench) -> dict:
    import onnxruntime as ort
    import torch
    import torch.nn.functional as F

    t = args.threads
    torch.set_num_threads(t)
    convs = resnet18_convs()
    rows = []
    for batch in (int(b) for b in args.conv_batches.split(",") if b):
        for c in convs:
            g = torch.Generator().manual_seed(0)
            x = torch.rand(batch, c["c"], c["h"], c["w"], generator=g) * 2 - 1
            w = (torch.rand(c["m"], c["c"] // c["groups"], c["kh"], c["kw"], generator=g) * 2 - 1) * 0.1
            with torch.no_grad():
                y = F.conv2d(x, w, None, c["stride"], c["pad"], 1, c["groups"])
            gy = torch.rand(y.shape, generator=g) * 2 - 1
            oh, ow = y.shape[2], y.shape[3]
            flops = 2.0 * batch * c["m"] * oh * ow * (c["c"] // c["groups"]) * c["kh"] * c["kw"]
            reps = max(1, round(1e9 / flops))
            so = ort.SessionOptions()
            so.intra_op_num_threads = t
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            sess = ort.InferenceSession(conv_onnx(c, w.numpy()), so, providers=["CPUExecutionProvider"])
            x_np = x.numpy()
            geo = [batch, c["c"], c["h"], c["w"], c["m"], c["kh"], c["kw"], c["stride"], c["pad"], "--groups", c["groups"]]
            common = ["--threads", t, "--reps", reps, "--runs", args.runs, "--warmup", args.warmup]

            def torch_fwd():
                with torch.no_grad():
                    F.conv2d(x, w, None, c["stride"], c["pad"], 1, c["groups"])

            def torch_bwd():
                torch.ops.aten.convolution_backward(gy, x, w, None, [c["stride"]] * 2, [c["pad"]] * 2, [1, 1], False,
                                                    [0, 0], c["groups"], [True, False, False])

            label = f"{c['c']}x{c['h']}x{c['w']}->{c['m']} {c['kh']}x{c['kw']}/{c['stride']} b{batch}"
            fwd = rounds({
                "torch": lambda: time_calls(torch_fwd, args.runs, args.warmup, reps),
                "ort": lambda: time_calls(lambda: sess.run(None, {"X": x_np}), args.runs, args.warmup, reps),
                "loupe": lambda: lb.run("conv", *geo, *common)["times_ms"],
            }, args.rounds, progress=f"conv {label} forward")
            bwd = rounds({
                "torch": lambda: time_calls(torch_bwd, args.runs, args.warmup, reps),
                "loupe": lambda: lb.run("conv", *geo, "--backward", *common)["times_ms"],
            }, args.rounds, progress=f"conv {label} backward-input")
            del sess
            rows.append(dict(c, batch=batch, threads=t, reps=reps, gflop=flops / 1e9, forward=fwd, backward_input=bwd,
                             label=label,
                             fwd_loupe_over_torch=ratio(med(fwd, "loupe"), med(fwd, "torch")),
                             fwd_loupe_over_ort=ratio(med(fwd, "loupe"), med(fwd, "ort")),
                             bwd_loupe_over_torch=ratio(med(bwd, "loupe"), med(bwd, "torch"))))
    return {"rows": rows, "threads": t}


def print_conv(res: dict) -> None:
    print(f"\nresnet18 convolutions, {res['threads']} threads, per-call median ms (x n: occurrences in the network)")
    print(f"{'conv (C x H x W -> M kxk/stride)':<32} {'x n':>3} {'GFLOP':>6} | {'torch':>8} {'ORT':>8} {'Loupe':>8} "
          f"{'L/torch':>7} {'L/ORT':>6} | {'bwd-in torch':>12} {'Loupe':>8} {'L/torch':>7}")
    totals: dict[int, dict] = {}
    for e in res["rows"]:
        f, b = e["forward"], e["backward_input"]
        print(f"{e['label']:<32} {e['count']:>3} {e['gflop']:6.2f} | {fmt(med(f, 'torch'), '.3f')} {fmt(med(f, 'ort'), '.3f')} "
              f"{fmt(med(f, 'loupe'), '.3f')} {fmt(e['fwd_loupe_over_torch'], '.2f', 7)} {fmt(e['fwd_loupe_over_ort'], '.2f', 6)} | "
              f"{fmt(med(b, 'torch'), '.3f', 12)} {fmt(med(b, 'loupe'), '.3f')} {fmt(e['bwd_loupe_over_torch'], '.2f', 7)}")
        tot = totals.setdefault(e["batch"], {})
        for key, entry in (("f", f), ("b", b)):
            for s in ("torch", "ort", "loupe"):
                if (ms := med(entry, s)) is not None:
                    tot[key + s] = tot.get(key + s, 0.0) + ms * e["count"]
    for batch, tot in totals.items():
        print(f"{'sum over resnet18, b' + str(batch):<32} {'':>3} {'':>6} | {fmt(tot.get('ftorch'), '.3f')} "
              f"{fmt(tot.get('fort'), '.3f')} {fmt(tot.get('floupe'), '.3f')} "
              f"{fmt(ratio(tot.get('floupe'), tot.get('ftorch')), '.2f', 7)} {fmt(ratio(tot.get('floupe'), tot.get('fort')), '.2f', 6)} | "
              f"{fmt(tot.get('btorch'), '.3f', 12)} {fmt(tot.get('bloupe'), '.3f')} "
              f"{fmt(ratio(tot.get('bloupe'), tot.get('btorch')), '.2f', 7)}")
    for e in res["rows"]:
        for what in ("forward", "backward_input"):
            for s, v in e[what].items():
                if isinstance(v, dict) and "error" in v:
                    print(f"    {e['label']} {what} {s}: error: {v['error']}")


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def torch_input_grad(model, x):
    """bench_resnet18.py's objective: d/dx of sum over the batch of logits[:, argmax(logits[0])]."""
    import torch

    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    target = int(logits[0].argmax())
    (g,) = torch.autograd.grad(logits[:, target].sum(), xg)
    return g


def section_models(args, lb: LoupeBench, tmp: Path) -> dict:
    import numpy as np
    import torch

    t = args.threads
    torch.set_num_threads(t)
    names = [m for m in args.models.split(",") if m]
    paths = export_bench_models.ensure(["bench_" + n for n in names])
    rows = []
    roundtrips = []
    for name in names:
        rt = core_roundtrip_ns()
        roundtrips.append({"before": name, "roundtrip_ns": rt})
        if rt is not None:
            print(f"  vCPU round trip before {name}: {rt:.0f} ns (about 55 near, 325 far apart)", flush=True)
        path = paths["bench_" + name]
        model = export_bench_models.build("bench_" + name)
        sess = ort_session(path, t)
        x1 = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            ref = model(x1).numpy()
        got = sess.run(None, {"input": x1.numpy()})[0]
        rel = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))
        if rel > 1e-3:
            raise SystemExit(f"{path} does not hold the module export_bench_models.build makes (relative logit "
                             f"difference {rel:.1e}); re-export: tools/models/export_bench_models.py --force")
        for batch in (int(b) for b in args.batches.split(",") if b):
            x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
            x_np = x.numpy()
            xfile = tmp / f"{name}_b{batch}.f32"
            xfile.write_bytes(x_np.astype("<f4").tobytes())
            common = [path, "--batch", batch, "--threads", t, "--input", xfile, "--runs", args.runs, "--warmup", args.warmup]

            def torch_fwd():
                with torch.no_grad():
                    model(x)

            fwd = rounds({
                "torch": lambda: time_calls(torch_fwd, args.runs, args.warmup),
                "ort": lambda: time_calls(lambda: sess.run(None, {"input": x_np}), args.runs, args.warmup),
                "loupe": lambda: lb.run(*common)["times_ms"],
            }, args.rounds, progress=f"{name} b{batch} forward")
            row = {"model": name, "batch": batch, "threads": t, "onnx": str(path), "torch_vs_ort_rel": rel,
                   "forward": fwd,
                   "fwd_loupe_over_torch": ratio(med(fwd, "loupe"), med(fwd, "torch")),
                   "fwd_loupe_over_ort": ratio(med(fwd, "loupe"), med(fwd, "ort"))}
            serve = [path, "--batch", batch, "--threads", t, "--input", xfile]
            if args.pairs > 0:
                pf = paired_with(lb, serve, lambda n: time_calls(lambda: sess.run(None, {"input": x_np}), n, 1),
                                 args.pairs, f"{name} b{batch} forward paired with onnxruntime")
                row["forward_paired_ort"] = pf
                row["fwd_loupe_over_ort_paired"] = pf["ratio_median"]
            # The verdict takes the paired ratio when it was measured (see paired_blocks).
            verdict_ratio = row.get("fwd_loupe_over_ort_paired", row["fwd_loupe_over_ort"])
            if name in FWD_ORT_TARGET:
                row["fwd_target"] = f"Loupe/ORT <= {FWD_ORT_TARGET[name]}"
                row["fwd_met"] = verdict_ratio is not None and verdict_ratio <= FWD_ORT_TARGET[name]
            if not args.no_backward:
                fb = rounds({
                    "torch": lambda: time_calls(lambda: torch_input_grad(model, x), args.runs, args.warmup),
                    "loupe": lambda: lb.run(*common, "--backward")["times_ms"],
                }, args.rounds, progress=f"{name} b{batch} forward+backward")
                row["forward_backward"] = fb
                row["fb_loupe_over_torch"] = ratio(med(fb, "loupe"), med(fb, "torch"))
                if args.pairs > 0 and name in FWDBWD_TORCH_TARGET:
                    # torch's OpenMP workers spin for a while after each call: the full settle.
                    pb = paired_with(lb, serve + ["--backward"],
                                     lambda n: time_calls(lambda: torch_input_grad(model, x), n, 1), args.pairs,
                                     f"{name} b{batch} forward+backward paired with torch", settle=SETTLE_S)
                    row["forward_backward_paired_torch"] = pb
                    row["fb_loupe_over_torch_paired"] = pb["ratio_median"]
                if name in FWDBWD_TORCH_TARGET:
                    fb_ratio = row.get("fb_loupe_over_torch_paired", row["fb_loupe_over_torch"])
                    row["fb_target"] = f"Loupe/torch <= {FWDBWD_TORCH_TARGET[name]}"
                    row["fb_met"] = fb_ratio is not None and fb_ratio <= FWDBWD_TORCH_TARGET[name]
            rows.append(row)
        del sess, model
    rt = core_roundtrip_ns()
    roundtrips.append({"before": "end", "roundtrip_ns": rt})
    if rt is not None:
        print(f"  vCPU round trip at the end: {rt:.0f} ns", flush=True)
    return {"rows": rows, "threads": t, "vcpu_roundtrip_ns": roundtrips}


def print_models(res: dict) -> None:
    print(f"\nmodels 224x224, {res['threads']} threads, median ms")
    print(f"{'model':<19} {'b':>2} | {'torch':>8} {'ORT':>8} {'Loupe':>8} {'L/torch':>7} {'L/ORT':>6} {'paired':>6} {'target':<16} | "
          f"{'fwd+bwd torch':>13} {'Loupe':>8} {'L/torch':>7} {'target':<18}")
    for e in res["rows"]:
        f, fb = e["forward"], e.get("forward_backward", {})
        ft = f"{e['fwd_target'].split()[-1]} {'met' if e['fwd_met'] else 'MISSED'}" if "fwd_target" in e else ""
        bt = f"{e['fb_target'].split()[-1]} {'met' if e['fb_met'] else 'MISSED'}" if "fb_target" in e else ""
        print(f"{e['model']:<19} {e['batch']:>2} | {fmt(med(f, 'torch'), '.1f')} {fmt(med(f, 'ort'), '.1f')} {fmt(med(f, 'loupe'), '.1f')} "
              f"{fmt(e['fwd_loupe_over_torch'], '.2f', 7)} {fmt(e['fwd_loupe_over_ort'], '.2f', 6)} "
              f"{fmt(e.get('fwd_loupe_over_ort_paired'), '.2f', 6)} {'<=' + ft if ft else '':<16} | "
              f"{fmt(med(fb, 'torch'), '.1f', 13)} {fmt(med(fb, 'loupe'), '.1f')} {fmt(e.get('fb_loupe_over_torch'), '.2f', 7)} "
              f"{'<=' + bt if bt else '':<18}")
        for what in ("forward", "forward_backward"):
            for s, v in e.get(what, {}).items():
                if isinstance(v, dict) and "error" in v:
                    print(f"    {e['model']} b{e['batch']} {what} {s}: error: {v['error']}")


def paired_text(paired: float | None, by_rounds: float | None, ci: tuple[float, float] | None = None) -> str:
    """A verdict's ratio: the paired one (with its bootstrap interval) and the rounds' beside it,
    or the rounds' alone."""
    if paired is None:
        return fmt(by_rounds, '.2f', 0)
    return f"{paired:.2f} paired{ci_text(ci, 2)} ({fmt(by_rounds, '.2f', 0)} by rounds)"


def rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1048576


def peak_rss_mb() -> float:
    """High-water resident set of this address space (VmHWM). Not ru_maxrss: on Linux that
    survives fork and exec, so a child of this (large) harness would report the harness's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(args) -> int:
    """Fresh process: PyTorch forward+backward to the input; prints baseline and peak RSS."""
    import torch

    torch.set_num_threads(args.threads)
    name = args.memory_child
    model = export_bench_models.build("bench_" + name)
    x = torch.randn(args.memory_batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    baseline = rss_now_mb()
    for _ in range(max(1, args.runs)):
        torch_input_grad(model, x)
    peak = peak_rss_mb()
    print(json.dumps({"baseline_rss_mb": baseline, "peak_rss_mb": peak}))
    return 0


def section_memory(args, lb: LoupeBench) -> dict:
    name, batch, t = "resnet18", args.memory_batch, args.threads
    path = export_bench_models.ensure(["bench_" + name])["bench_" + name]
    runs = 2
    out: dict = {"model": name, "batch": batch, "threads": t, "runs": runs,
                 "what": "forward + backward to the input, each side in a fresh process; peak = VmHWM"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", name, "--memory-batch", str(batch),
           "--threads", str(t), "--runs", str(runs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    if proc.returncode == 0:
        out["torch"] = json.loads(proc.stdout.strip().splitlines()[-1])
    else:
        out["torch"] = {"error": proc.stderr.strip()[-400:]}
    try:
        f = lb.run(path, "--batch", batch, "--threads", t, "--backward", "--runs", runs, "--warmup", 0)["fields"]
        out["loupe"] = {"baseline_rss_mb": float(f["baseline_rss_mb"]), "peak_rss_mb": float(f["peak_rss_mb"])}
    except Exception as e:
        out["loupe"] = {"error": str(e)[-400:]}
    for s in ("torch", "loupe"):
        if "peak_rss_mb" in out[s]:
            out[s]["peak_minus_baseline_mb"] = out[s]["peak_rss_mb"] - out[s]["baseline_rss_mb"]
    lp, tp = out["loupe"].get("peak_rss_mb"), out["torch"].get("peak_rss_mb")
    out["loupe_over_torch_peak"] = ratio(lp, tp)
    out["loupe_over_torch_working"] = ratio(out["loupe"].get("peak_minus_baseline_mb"),
                                            out["torch"].get("peak_minus_baseline_mb"))
    out["target"] = "Loupe peak RSS <= PyTorch peak RSS"
    out["met"] = lp is not None and tp is not None and lp <= tp
    return out


def print_memory(res: dict) -> None:
    print(f"\npeak memory, {res['model']} batch {res['batch']} forward+backward to the input, {res['threads']} threads, "
          f"fresh process per side (MiB)")
    print(f"{'side':<8} {'peak RSS':>9} {'baseline':>9} {'peak-baseline':>14}")
    for s in ("torch", "loupe"):
        r = res[s]
        if "error" in r:
            print(f"{s:<8} error: {r['error']}")
        else:
            print(f"{s:<8} {r['peak_rss_mb']:9.0f} {r['baseline_rss_mb']:9.0f} {r['peak_minus_baseline_mb']:14.0f}")
    print(f"Loupe/torch: peak {fmt(res['loupe_over_torch_peak'], '.2f', 0)}, peak-baseline "
          f"{fmt(res['loupe_over_torch_working'], '.2f', 0)}; target {res['target']}: {'met' if res['met'] else 'MISSED'}")


def section_explain(args) -> dict:
    if not args.no_build:  # bench_explainers.py runs .build/release/loupe-explain-bench
        print("swift build -c release --product loupe-explain-bench ...", file=sys.stderr, flush=True)
        subprocess.run(["swift", "build", "-c", "release", "--product", "loupe-explain-bench"], cwd=REPO_ROOT,
                       check=True, capture_output=True)
    out = Path(tempfile.mkdtemp(prefix="loupe-bench-engine-")) / "explain.json"
    cmd = [sys.executable, str(REPO_ROOT / "Benchmarks" / "peers" / "bench_explainers.py"), "--threads", str(args.threads),
           *args.explain_args.split(), "--json", str(out)]
    if os.environ.get("OMP_WAIT_POLICY") == "PASSIVE":
        cmd.append("--omp-passive")
    print("\nexplainers (bench_explainers.py):", " ".join(cmd[1:]), flush=True)
    proc = subprocess.run(cmd, cwd=REPO_ROOT)  # its table goes straight to our stdout
    if proc.returncode != 0 or not out.exists():
        return {"error": f"bench_explainers.py exit {proc.returncode}", "command": " ".join(cmd)}
    return json.loads(out.read_text())


# ---------------------------------------------------------------------------------------------


def versions() -> dict:
    import numpy as np
    import onnxruntime as ort
    import torch
    import torchvision

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                           cwd=REPO_ROOT)
    return {"loupe_commit": commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else ""),
            "torch": torch.__version__, "torchvision": torchvision.__version__, "onnxruntime": ort.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> int:
    args = parse_args()
    global SETTLE_S
    SETTLE_S = max(0.0, args.settle)
    if args.memory_child:
        return memory_child(args)
    sections = SECTIONS if args.sections == "all" else [s for s in args.sections.split(",") if s]
    for s in sections:
        if s not in SECTIONS:
            raise SystemExit(f"unknown section {s!r}; choose from {SECTIONS} or 'all'")
    if "gemm" in sections and "peak" not in sections:
        sections.insert(0, "peak")
    warnings.simplefilter("ignore")
    needs_loupe = any(s in sections for s in ("gemm", "conv", "models", "memory"))
    lb = ensure_loupe_bench(args) if needs_loupe else None
    tmp = Path(tempfile.mkdtemp(prefix="loupe-bench-engine-"))

    report: dict = {"benchmark": "engine", "sections": sections, "threads": args.threads, "runs": args.runs,
                    "warmup": args.warmup, "rounds": args.rounds, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                    "loupe_bench": str(lb.path) if lb else None, "versions": versions(),
                    "machine": {"cpu": cpu_model(), "platform": platform.platform(), "cpu_count": os.cpu_count()},
                    "load_avg_before": os.getloadavg(), "seconds": {}}
    print(f"Loupe {report['versions']['loupe_commit']} vs torch {report['versions']['torch']}, onnxruntime "
          f"{report['versions']['onnxruntime']}; {cpu_model()}, {os.cpu_count()} CPUs; median of {args.rounds} rounds x "
          f"{args.runs} calls ({args.warmup} warm-up per round), side order rotating; load {os.getloadavg()[0]:.2f}"
          + ("; OMP_WAIT_POLICY=PASSIVE" if os.environ.get("OMP_WAIT_POLICY") == "PASSIVE" else ""), flush=True)
    gemm_threads = [int(t) for t in args.gemm_threads.split(",") if t]
    for s in sections:
        t0 = time.perf_counter()
        if s == "peak":
            report["peak"] = section_peak(max(gemm_threads + [args.threads]))
            p = report["peak"]
            print("\npeak: " + (p.get("error") or ", ".join(f"{t} thread(s) {g:.1f} GFLOP/s" for t, g in
                                                            p.get("measured_gflops", {}).items()))
                  + f" ({p.get('isa', '?')} FMA loop)"
                  + (f"; nominal {p['nominal_gflops_per_core']:.0f} GFLOP/s/core = {p['nominal_note']}"
                     if "nominal_gflops_per_core" in p else ""), flush=True)
        elif s == "gemm":
            report["gemm"] = section_gemm(args, lb, report.get("peak", {}))
            # The peak again after the section, keeping the better of the two: a busy moment
            # during one measurement must not inflate "% of peak".
            again = section_peak(max(gemm_threads + [args.threads])).get("measured_gflops", {})
            best = report["peak"].setdefault("measured_gflops", {})
            for t, g in again.items():
                best[t] = max(best.get(t, 0.0), g)
            if (w := peak_warning(best)):
                report["peak"]["warning"] = w
            for e in report["gemm"]["rows"]:
                pk, lg = best.get(e["threads"]), e["loupe"].get("gflops")
                if pk and lg:
                    e["loupe_pct_peak"] = 100 * lg / pk
                    e["loupe_pct_peak_best"] = 100 * e["loupe"]["gflops_best"] / pk
                    if "target" in e:
                        e["met"] = lg / pk >= GEMM_TARGETS[e["threads"]]
            print_gemm(report["gemm"])
        elif s == "conv":
            report["conv"] = section_conv(args, lb)
            print_conv(report["conv"])
        elif s == "models":
            report["models"] = section_models(args, lb, tmp)
            print_models(report["models"])
        elif s == "memory":
            report["memory"] = section_memory(args, lb)
            print_memory(report["memory"])
        elif s == "explain":
            report["explain"] = section_explain(args)
        report["seconds"][s] = round(time.perf_counter() - t0, 1)
        sys.stdout.flush()
    report["load_avg_after"] = os.getloadavg()
    shutil.rmtree(tmp, ignore_errors=True)  # the models' raw input files

    targets = []
    for e in report.get("gemm", {}).get("rows", []):
        if "target" in e:
            suspect = e["threads"] > 1 and "warning" in report.get("peak", {})
            targets.append((f"gemm {e['m']} T{e['threads']} {e['loupe_pct_peak']:.0f} % of peak"
                            + (" (peak starved, see WARNING)" if suspect else ""), e["target"], e["met"]))
    for e in report.get("models", {}).get("rows", []):
        if "fwd_target" in e:
            targets.append((f"{e['model']} b{e['batch']} forward Loupe/ORT "
                            + paired_text(e.get("fwd_loupe_over_ort_paired"), e["fwd_loupe_over_ort"],
                                          e.get("forward_paired_ort", {}).get("ratio_ci95")),
                            e["fwd_target"], e["fwd_met"]))
        if "fb_target" in e:
            targets.append((f"{e['model']} b{e['batch']} forward+backward Loupe/torch "
                            + paired_text(e.get("fb_loupe_over_torch_paired"), e["fb_loupe_over_torch"],
                                          e.get("forward_backward_paired_torch", {}).get("ratio_ci95")),
                            e["fb_target"], e["fb_met"]))
    if "memory" in report:
        m = report["memory"]
        targets.append((f"memory {m['model']} b{m['batch']} peak Loupe/torch {fmt(m['loupe_over_torch_peak'], '.2f', 0)}",
                        m["target"], m["met"]))
    for m, v in report.get("explain", {}).get("targets", {}).items():  # issue 4's, as bench_explainers.py judged
        if "pairs" in v:  # Eigen-CAM / Loupe's forward, paired calls
            what = (f"explain {m} / Loupe forward {fmt(v.get('ratio'), '.4f', 0)} paired median of {v['pairs']}"
                    f"{ci_text(v.get('ratio_ci95'), 4)} (medians {fmt(v.get('ratio_of_medians'), '.3f', 0)}, minima {fmt(v.get('ratio_min'), '.3f', 0)})")
        else:
            what = f"explain {m} Loupe/peer {fmt(v.get('ratio'), '.2f', 0)} (minima {fmt(v.get('ratio_min'), '.2f', 0)})"
        targets.append((what, v.get("target", "?"), v.get("met")))
    report["targets"] = [{"what": w, "target": t, "met": bool(ok)} for w, t, ok in targets]
    if targets:
        met = sum(1 for _, _, ok in targets if ok)
        print(f"\nissue 5 (and 4) targets: {met} of {len(targets)} met")
        for w, t, ok in targets:
            print(f"  {'met   ' if ok else 'MISSED'}  {w:<52} ({t})")
    print(f"load avg {report['load_avg_before'][0]:.2f} -> {report['load_avg_after'][0]:.2f}; seconds per section: "
          + ", ".join(f"{k} {v}" for k, v in report["seconds"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
