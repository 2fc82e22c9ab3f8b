#!/usr/bin/env python3
"""Time Loupe's explainers against Captum and pytorch-grad-cam on resnet18, in one run.

Model: torchvision resnet18, random init with torch.manual_seed(0), eval mode, 224x224, batch 1,
the input torch.randn with generator seed 1, the target class the model's argmax on it. Loupe
runs the ONNX export of the same weights (.models/bench_resnet18.onnx, written by
bench_resnet18.py's exporter when missing); the script checks that the ONNX logits equal torch's.

Per method, the peer is timed in this process and Loupe through an external command
(--loupe-cmd) that prints `median_ms=<float> min_ms=<float>`, right after each other so both see
the same machine load; over --rounds rounds the order alternates (peer first, then Loupe first)
and medians / minima are taken over all rounds' runs:

  forward     torch forward (no_grad)              loupe-explain-bench --method forward
  saliency    captum Saliency (abs=True)            Saliency()
  ig          captum IntegratedGradients, 50 steps, gausslegendre, internal_batch_size=IG_BATCH,
              return_convergence_delta=True         IntegratedGradients(steps: 50) batchSize IG_BATCH
  smoothgrad  captum NoiseTunnel(Saliency), smoothgrad, 25 samples, stdevs=1.0,
              nt_samples_batch_size=SG_BATCH        NoiseTunnel(Saliency(), samples: 25, stdev: 1)
  gradcam     pytorch_grad_cam GradCAM              CAM.explain(.gradCAM) + scaledLikePytorchGradCAM
  gradcampp   GradCAMPlusPlus                       .gradCAMPlusPlus
  scorecam    ScoreCAM, batch_size SCORECAM_BATCH   .scoreCAM(batchSize: SCORECAM_BATCH)
  eigencam    EigenCAM                              .eigenCAM, with --interleave forward

Eigen-CAM's target is a ratio to Loupe's own forward: loupe-explain-bench times the two call for
call in one process (--interleave forward), since forwards timed in separate processes drift apart
by more than the difference measured. The two differ by well under 1 % (Eigen-CAM skips the
classifier head and adds its eigen-decomposition and resize, ~0.1 ms each on a ~15 ms pass), so
that pair runs --eigencam-pairs times per round (default 41) and the verdict uses the median of
the per-pair ratios, which cancels the host's drift between pairs; the ratio of medians and of
minima are reported beside it.

CAMs use layer4[-1] (its ONNX value /layer4/layer4.1/relu_1/Relu_output_0); a pytorch-grad-cam
call returns the final 224x224 image, so Loupe's timed call computes that image too. The model's
parameters keep requires_grad=True (how users load a model; pytorch-grad-cam needs gradients to
reach the layer and then also backpropagates into layers below it).

After timing, the outputs of the last runs are compared (max |Loupe - peer| / max |peer|) for
saliency, ig, gradcam, gradcampp (raw map and final image), scorecam (image) and eigencam (raw
map, up to sign), so the timings compare equal work. A target of issue 4 counts as met when both
the ratio of medians and the ratio of minima are within it. A table goes to stdout, JSON to
--json PATH. torch keeps its default OpenMP wait policy unless --omp-passive is given (see the
comment below and docs/benchmarks-explainers.md).

    swift build -c release --product loupe-explain-bench
    .venv/bin/python Benchmarks/peers/bench_explainers.py --runs 5 --rounds 2 --json /tmp/explain.json
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO_ROOT / "tools"))
from loupe_venv import ensure_venv  # noqa: E402

ensure_venv()

import argparse  # noqa: E402
import importlib.metadata  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from paired_stats import ci_text, median_ci  # noqa: E402

# OpenMP wait policy: torch's default (spinning) is the fastest on a quiet machine (resnet18's
# forward at 2 threads: ~15 ms, against ~24 ms with PASSIVE), but it slows down 20-30x as soon as
# another process holds one of the 2 cores (~940 ms: each parallel region waits for a
# descheduled spinner). The default is left alone; on a busy shared machine pass --omp-passive
# (or set OMP_WAIT_POLICY yourself) and say so next to the numbers.
if "--omp-passive" in sys.argv:
    sys.argv.remove("--omp-passive")
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
# Score-CAM's tqdm bar costs the peer a little per batch; switch it off (peer-favourable).
os.environ.setdefault("TQDM_DISABLE", "1")

MEDIAN_RE = re.compile(r"(?<!\w)median_ms\s*=\s*([0-9.eE+-]+)")
MIN_RE = re.compile(r"(?<!\w)min_ms\s*=\s*([0-9.eE+-]+)")
TIMES_RE = re.compile(r"(?<!\w)times_ms\s*=\s*([0-9.,eE+-]+)")
# Times of the method run call for call with the main one (loupe-explain-bench --interleave).
INTERLEAVED_RE = re.compile(r"interleaved_times_ms\s*=\s*([0-9.,eE+-]+)")
LAYER = "/layer4/layer4.1/relu_1/Relu_output_0"
# forward next to eigencam: the Eigen-CAM target is relative to Loupe's own forward.
METHODS = ["forward", "eigencam", "saliency", "gradcam", "gradcampp", "ig", "smoothgrad", "scorecam"]
DEFAULT_CMD = (".build/release/loupe-explain-bench {model} --method {method} --layer {layer} --class {cls} "
               "--input {input} --runs {runs} --warmup {warmup} --threads {threads} {extra} --dump {dump}")

# Issue 4's targets: Loupe time / peer time at most this (eigencam: / Loupe's own forward).
TARGETS = {"gradcam": 0.33, "gradcampp": 0.33, "ig": 0.7, "smoothgrad": 0.7, "scorecam": 0.8}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Loupe explainers vs Captum / pytorch-grad-cam on resnet18 224x224.",
                                epilog="The venv can be chosen with --venv DIR or LOUPE_VENV (default: .venv).")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {METHODS}")
    p.add_argument("--threads", type=int, default=2, help="torch and Loupe threads (default 2)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per entry (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs per round (default 1)")
    p.add_argument("--rounds", type=int, default=2,
                   help="rounds over all methods (default 2); the peer goes first in odd rounds, Loupe in even "
                        "ones, so drifting machine load hits both sides alike; medians are over all rounds' runs")
    p.add_argument("--ig-batch", type=int, default=50,
                   help="rows per forward/backward for IG, both sides (Captum internal_batch_size; default 50 = "
                        "all 50 steps at once, Captum's default of None)")
    p.add_argument("--sg-batch", type=int, default=25,
                   help="rows per pass for SmoothGrad, both sides (Captum nt_samples_batch_size; default 25 = all)")
    p.add_argument("--scorecam-batch", type=int, default=32, help="Score-CAM masked images per forward, both sides")
    p.add_argument("--eigencam-pairs", type=int, default=41,
                   help="Eigen-CAM / forward pairs Loupe times per round (default 41; its ratio is within 1 %% of 1)")
    p.add_argument("--onnx", default=None, help="resnet18 ONNX (default .models/bench_resnet18.onnx, exported if missing)")
    p.add_argument("--loupe-cmd", default=DEFAULT_CMD,
                   help="command printing 'median_ms=<float>'; {model} {method} {layer} {cls} {input} {runs} "
                        "{warmup} {threads} {extra} {dump} are substituted")
    p.add_argument("--no-loupe", action="store_true", help="time the peers only")
    p.add_argument("--omp-passive", action="store_true",
                   help="OMP_WAIT_POLICY=PASSIVE for torch (handled before argparse; for a busy shared machine)")
    p.add_argument("--json", default=None, metavar="PATH", help="write JSON here")
    return p.parse_args()


def summarize(samples_ms: list[float]) -> dict:
    return {"median_ms": statistics.median(samples_ms), "min_ms": min(samples_ms),
            "max_ms": max(samples_ms), "runs": len(samples_ms), "times_ms": [round(t, 3) for t in samples_ms]}


def time_it(fn, runs: int, warmup: int):
    out = None
    for _ in range(max(1, warmup)):
        out = fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return summarize(samples), out


def run_loupe(template: str, fields: dict) -> dict:
    cmd = template.format(**{k: (shlex.quote(str(v)) if k in ("model", "layer", "input", "dump") else v)
                             for k, v in fields.items()})
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=REPO_ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}", "command": cmd}
    found = MEDIAN_RE.findall(proc.stdout)
    if not found:
        return {"error": "no 'median_ms=<float>' line in its output", "command": cmd}
    r = {"median_ms": float(found[-1]), "command": cmd, "process_wall_s": round(wall, 2)}
    if m := MIN_RE.findall(proc.stdout):
        r["min_ms"] = float(m[-1])
    if t := TIMES_RE.findall(proc.stdout):
        r["times_ms"] = [float(v) for v in t[-1].split(",") if v]
    if t := INTERLEAVED_RE.findall(proc.stdout):
        r["interleaved_times_ms"] = [float(v) for v in t[-1].split(",") if v]
    return r


def rel_diff(loupe, peer, up_to_sign: bool = False) -> float:
    import numpy as np
    a = np.asarray(loupe, dtype=np.float64).ravel()
    b = np.asarray(peer, dtype=np.float64).ravel()
    if a.shape != b.shape:
        return float("nan")
    scale = max(float(np.abs(b).max()), 1e-30)
    d = float(np.abs(a - b).max()) / scale
    if up_to_sign:
        d = min(d, float(np.abs(a + b).max()) / scale)
    return d


def main() -> int:
    args = parse_args()
    import numpy as np
    import onnxruntime as ort
    import torch
    import torchvision
    import captum
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
    from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from bench_resnet18 import export_resnet18

    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            raise SystemExit(f"unknown method {m!r}; choose from {METHODS}")

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    onnx_path = Path(args.onnx) if args.onnx else REPO_ROOT / ".models" / "bench_resnet18.onnx"
    if not onnx_path.exists():
        export_resnet18(model, onnx_path)

    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)
    cls = int(logits[0].argmax())
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    ort_logits = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    onnx_check = float(np.abs(ort_logits - logits.numpy()).max() / np.abs(logits.numpy()).max())
    del sess
    if onnx_check > 1e-4:
        raise SystemExit(f"{onnx_path} does not hold the seed-0 resnet18 (relative logit difference {onnx_check:.2e})")

    tmp = Path(tempfile.mkdtemp(prefix="loupe-explain-bench-"))
    input_file = tmp / "input.f32"
    input_file.write_bytes(x.numpy().astype("<f4").tobytes())
    target_layer = model.layer4[-1]
    targets = [ClassifierOutputTarget(cls)]

    cams = []  # constructed once, like a user would, and released after the method's check

    def grad_cam_call(cls_, batch_size=None):
        state = {}

        def run():
            if "cam" not in state:  # first (untimed warm-up) call
                state["cam"] = cls_(model=model, target_layers=[target_layer])
                cams.append(state)
                if batch_size is not None:
                    state["cam"].batch_size = batch_size
            cam = state["cam"]
            return cam(input_tensor=x, targets=targets), cam
        return run

    def forward():
        with torch.no_grad():
            return model(x)

    peers = {
        "forward": ("torch forward (no_grad)", forward, ""),
        "saliency": ("captum Saliency", lambda: Saliency(model).attribute(x, target=cls), ""),
        "ig": (f"captum IntegratedGradients (50, internal_batch_size={args.ig_batch})",
               lambda: IntegratedGradients(model).attribute(
                   x, target=cls, n_steps=50, method="gausslegendre", internal_batch_size=args.ig_batch,
                   return_convergence_delta=True),
               f"--steps 50 --batch-size {args.ig_batch}"),
        "smoothgrad": (f"captum NoiseTunnel(Saliency) 25 (batch {args.sg_batch})",
                       lambda: NoiseTunnel(Saliency(model)).attribute(
                           x, nt_type="smoothgrad", nt_samples=25, stdevs=1.0, target=cls,
                           nt_samples_batch_size=args.sg_batch),
                       f"--samples 25 --stdev 1 --batch-size {args.sg_batch}"),
        "gradcam": ("pytorch-grad-cam GradCAM", grad_cam_call(GradCAM), ""),
        "gradcampp": ("pytorch-grad-cam GradCAMPlusPlus", grad_cam_call(GradCAMPlusPlus), ""),
        "scorecam": (f"pytorch-grad-cam ScoreCAM (batch {args.scorecam_batch})",
                     grad_cam_call(ScoreCAM, args.scorecam_batch), f"--batch-size {args.scorecam_batch}"),
        "eigencam": ("pytorch-grad-cam EigenCAM", grad_cam_call(EigenCAM), "--interleave forward"),
    }

    load_before = os.getloadavg()
    peer_times: dict[str, list] = {m: [] for m in methods}
    loupe_times: dict[str, list] = {m: [] for m in methods}
    interleaved: dict[str, list] = {m: [] for m in methods}
    loupe_info: dict[str, dict] = {}
    loads: dict[str, list] = {m: [] for m in methods}
    checks: dict[str, dict] = {}
    for rnd in range(args.rounds):
        for m in methods:
            label, fn, extra = peers[m]
            dump = tmp / f"{m}.f32"

            def loupe_side():
                if args.no_loupe:
                    return
                r = run_loupe(args.loupe_cmd, {
                    "model": onnx_path, "method": m, "layer": LAYER, "cls": cls, "input": input_file,
                    "runs": max(args.runs, args.eigencam_pairs) if m == "eigencam" else args.runs,
                    "warmup": args.warmup, "threads": args.threads, "extra": extra, "dump": dump})
                if "error" in r:
                    loupe_info[m] = r
                else:
                    loupe_times[m].extend(r.get("times_ms") or [r["median_ms"]])
                    interleaved[m].extend(r.get("interleaved_times_ms", []))
                    loupe_info[m] = {"command": r["command"]}

            if rnd % 2 == 1:
                loupe_side()
            peer, out = time_it(fn, args.runs, args.warmup)
            peer_times[m].extend(peer["times_ms"])
            if rnd % 2 == 0:
                loupe_side()
            loads[m].append(round(os.getloadavg()[0], 2))
            if rnd == args.rounds - 1 and loupe_times[m] and dump.exists():
                checks[m] = compare(m, out, dump, np)
            while cams:  # drop the hooks so later methods run on the bare model
                cams.pop().pop("cam").activations_and_grads.release()
            lt = statistics.median(loupe_times[m]) if loupe_times[m] else float("nan")
            print(f"  round {rnd + 1} {m:<11} peer {statistics.median(peer_times[m]):9.1f} ms   loupe {lt:9.1f} ms"
                  f"   (load {loads[m][-1]})", file=sys.stderr, flush=True)

    results: dict[str, dict] = {}
    for m in methods:
        entry = {"peer": dict(summarize(peer_times[m]), what=peers[m][0]), "load_avg_1min": loads[m]}
        if loupe_times[m]:
            entry["loupe"] = dict(summarize(loupe_times[m]), **loupe_info.get(m, {}))
        elif m in loupe_info:
            entry["loupe"] = loupe_info[m]
        results[m] = entry
    load_after = os.getloadavg()

    ratios, verdicts = {}, {}
    for m, e in results.items():
        lo = e.get("loupe", {})
        if "median_ms" in lo:
            ratios[m] = lo["median_ms"] / e["peer"]["median_ms"]
            if "min_ms" in lo:
                ratios[m + "_min"] = lo["min_ms"] / e["peer"]["min_ms"]
            if m in TARGETS:
                # Met only when the ratio of medians and the ratio of minima both are within.
                worst = max(ratios[m], ratios.get(m + "_min", ratios[m]))
                verdicts[m] = {"target": f"<= {TARGETS[m]}", "ratio": ratios[m],
                               "ratio_min": ratios.get(m + "_min"), "met": worst <= TARGETS[m]}
    # Eigen-CAM against Loupe's forward timed call for call in the same process (--interleave
    # forward): forwards in separate processes minutes apart drift by more than the difference.
    # The pairs line up call for call (loupe-explain-bench appends one time of each per run).
    eig = results.get("eigencam", {}).get("loupe", {})
    fwd = summarize(interleaved["eigencam"]) if interleaved.get("eigencam") else {}
    if "median_ms" in fwd and "median_ms" in eig:
        results["eigencam"]["loupe_forward_interleaved"] = fwd
        pairs = [a / b for a, b in zip(loupe_times["eigencam"], interleaved["eigencam"]) if b > 0]
        r_paired = statistics.median(pairs)
        r = eig["median_ms"] / fwd["median_ms"]
        r_min = eig["min_ms"] / fwd["min_ms"]
        ratios["eigencam_over_loupe_forward"] = r_paired
        ratios["eigencam_over_loupe_forward_of_medians"] = r
        ratios["eigencam_over_loupe_forward_min"] = r_min
        ci = median_ci(pairs)
        ratios["eigencam_over_loupe_forward_ci95"] = ci
        verdicts["eigencam"] = {"target": "<= 1.0 x Loupe forward (median of per-pair ratios)", "ratio": r_paired,
                                "pairs": len(pairs), "ratio_ci95": ci, "ratio_of_medians": r, "ratio_min": r_min,
                                "met": r_paired <= 1.0}

    print(f"resnet18 224x224 batch 1, class {cls}, {args.threads} threads, median (min) of {args.rounds} x {args.runs} "
          f"runs ({args.warmup} warm-up per round); load avg {load_before[0]:.2f} -> {load_after[0]:.2f}")
    print(f"{'method':<11} {'peer':<52} {'peer ms':>17} {'Loupe ms':>17} {'ratio':>5} {'(min)':>6} "
          f"{'target':>7} {'':>6} {'check':>8}")
    for m, e in results.items():
        p, lo = e["peer"], e.get("loupe", {})
        ps = f"{p['median_ms']:.1f} ({p['min_ms']:.1f})"
        ls = f"{lo['median_ms']:.1f} ({lo.get('min_ms', float('nan')):.1f})" if "median_ms" in lo else lo.get("error", "-")[:40]
        ratio = f"{ratios[m]:.2f}" if m in ratios else "-"
        rmin = f"({ratios[m + '_min']:.2f})" if m + "_min" in ratios else ""
        v = verdicts.get(m)
        tgt = "" if not v else ("<=1 fwd" if m == "eigencam" else f"<={TARGETS[m]}")
        met = "" if not v else ("met" if v["met"] else "MISSED")
        c = checks.get(m, {})
        cs = f"{max(c.values()):.1e}" if c else "-"
        print(f"{m:<11} {p['what']:<52} {ps:>17} {ls:>17} {ratio:>5} {rmin:>6} {tgt:>7} {met:>6} {cs:>8}")
    if "eigencam_over_loupe_forward" in ratios:
        print(f"eigencam / Loupe forward: {ratios['eigencam_over_loupe_forward']:.4f} paired median of "
              f"{verdicts['eigencam']['pairs']} pairs{ci_text(verdicts['eigencam']['ratio_ci95'], 4)} (ratio of medians "
              f"{ratios['eigencam_over_loupe_forward_of_medians']:.3f}, of minima "
              f"{ratios['eigencam_over_loupe_forward_min']:.3f}) "
              f"({'met' if verdicts['eigencam']['met'] else 'MISSED'}: target <= 1.0)")
    for m, c in checks.items():
        print(f"check {m}: " + ", ".join(f"{k} {v:.2e}" for k, v in c.items()))

    report = {
        "benchmark": "explainers_resnet18_224", "class": cls, "layer": LAYER,
        "threads": args.threads, "runs": args.runs, "warmup": args.warmup, "rounds": args.rounds,
        "ig_batch": args.ig_batch, "sg_batch": args.sg_batch, "scorecam_batch": args.scorecam_batch,
        "eigencam_pairs": args.eigencam_pairs,
        "onnx": str(onnx_path), "onnx_vs_torch_logits_rel": onnx_check,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "results": results, "ratios": ratios, "targets": verdicts, "checks_max_rel_diff": checks,
        "load_avg": {"before": load_before, "after": load_after},
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "captum": captum.__version__, "grad_cam": importlib.metadata.version("grad-cam"),
                     "onnxruntime": ort.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "machine": {"platform": platform.platform(), "processor": cpu_model(), "cpu_count": os.cpu_count()},
    }
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"JSON written to {args.json}")
    return 0


def compare(method: str, peer_out, dump: Path, np) -> dict:
    """Max |Loupe − peer| / max |peer| of the outputs of the last timed runs."""
    loupe = np.fromfile(dump, dtype="<f4")
    if method in ("saliency", "smoothgrad"):
        if method == "smoothgrad":
            return {}  # different noise draws: not comparable element-wise
        return {"attribution": rel_diff(loupe, peer_out.detach().numpy())}
    if method == "ig":
        attr, _delta = peer_out
        return {"attribution": rel_diff(loupe, attr.detach().numpy())}
    if method == "forward":
        return {"logits": rel_diff(loupe, peer_out.numpy())}
    image, cam = peer_out
    image_file = Path(str(dump) + ".image")
    out = {}
    if method != "scorecam":  # its get_cam_image would rerun the 512 masked forwards
        acts = cam.activations_and_grads.activations[0].cpu().numpy()
        grads = (cam.activations_and_grads.gradients[0].cpu().numpy()
                 if cam.activations_and_grads.gradients else None)
        # The library's own raw map (before ReLU) from the tensors its hooks captured.
        raw = cam.get_cam_image(None, None, None, acts, grads, False)
        if method == "eigencam":
            out["raw_map_up_to_sign"] = rel_diff(loupe, raw, up_to_sign=True)
            if rel_diff(loupe, raw) > 1e-3:
                return out  # opposite SVD sign: the images differ by design (docs/cams.md)
        else:
            out["raw_map"] = rel_diff(loupe, raw)
    if image_file.exists():
        out["image"] = rel_diff(np.fromfile(image_file, dtype="<f4"), image)
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
