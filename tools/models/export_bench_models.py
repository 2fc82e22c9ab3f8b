#!/usr/bin/env python3
"""Export the engine benchmark's models (random init, seed 0) to .models/bench_NAME.onnx.

Benchmarks/peers/bench_engine.py times PyTorch, onnxruntime and Loupe on these, so PyTorch must
be able to rebuild exactly the module each file holds: `build(name)` below is that single
recipe, and the benchmark imports it (and checks torch against onnxruntime before timing).

    bench_resnet18            torchvision resnet18, seed 0, eval; the recipe of
                              Benchmarks/peers/bench_resnet18.py (no calibration), so the file
                              is interchangeable with the one that script and
                              bench_explainers.py write
    bench_mobilenet_v3_small  torchvision mobilenet_v3_small
    bench_efficientnet_b0     torchvision efficientnet_b0
    bench_vit_tiny            torchvision VisionTransformer 224/16, 12 layers, 3 heads, width 192,
                              MLP 768 (DeiT-tiny's shape; the conformance export has 4 layers)

All but resnet18 are calibrated like tools/models/export_models.py does (all-zero Linear layers
re-initialised, BatchNorm statistics re-estimated on seeded random batches): with torchvision's
raw init, deep nets shrink activations towards 1e-15 and below, and subnormal floats would time
the CPU's slow path rather than the engines. Every file: eval mode, TorchScript exporter
(dynamo=False), opset 17, constant folding (BatchNorm folded into Conv), input "input"
(N, 3, 224, 224) and output "logits" with a dynamic batch axis. Versions: tools/requirements.txt.

    .venv/bin/python tools/models/export_bench_models.py            # missing files only
    .venv/bin/python tools/models/export_bench_models.py --force --only bench_vit_tiny
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from loupe_venv import REPO_ROOT, ensure_venv  # noqa: E402

if __name__ == "__main__":
    ensure_venv()

import argparse  # noqa: E402
import warnings  # noqa: E402

SEED = 0
NAMES = ["bench_resnet18", "bench_mobilenet_v3_small", "bench_efficientnet_b0", "bench_vit_tiny"]
# The short names bench_engine.py prints.
SHORT = {n: n.removeprefix("bench_") for n in NAMES}


def build(name: str):
    """The seed-0, eval-mode torch module that `.models/<name>.onnx` holds (parameters frozen)."""
    import torch
    import torchvision

    if name not in NAMES:
        raise ValueError(f"unknown benchmark model {name!r}; choose from {NAMES}")
    torch.manual_seed(SEED)
    if name == "bench_resnet18":
        # Exactly bench_resnet18.py's recipe: seed 0, constructor, eval, nothing else.
        model = torchvision.models.resnet18(weights=None)
    elif name == "bench_mobilenet_v3_small":
        model = torchvision.models.mobilenet_v3_small(weights=None)
    elif name == "bench_efficientnet_b0":
        model = torchvision.models.efficientnet_b0(weights=None)
    else:
        model = torchvision.models.VisionTransformer(image_size=224, patch_size=16, num_layers=12, num_heads=3,
                                                     hidden_dim=192, mlp_dim=768, num_classes=1000)
    if name != "bench_resnet18":
        _calibrate(model)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _calibrate(model) -> None:
    """export_models.py's calibration: healthy activation magnitudes, deterministic."""
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(SEED + 2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear) and not m.weight.any():
                m.weight.normal_(0.0, 0.02, generator=g)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, 224, 224, generator=g))
    for bn in bns:
        bn.momentum = 0.1
    model.eval()


def onnx_path(name: str, folder: Path | None = None) -> Path:
    return (folder or REPO_ROOT / ".models") / f"{name}.onnx"


def export(name: str, path: Path) -> None:
    """TorchScript export, opset 17, dynamic batch: the same call as bench_resnet18.py's."""
    import torch

    model = build(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".onnx.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, 224, 224),), str(tmp), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    tmp.replace(path)  # never leave a half-written file where the benchmark looks


def ensure(names: list[str], folder: Path | None = None, force: bool = False) -> dict[str, Path]:
    """Exports the missing (or, with force, all) files; returns {name: path}."""
    paths = {}
    for name in names:
        path = onnx_path(name, folder)
        if force or not path.exists():
            print(f"exporting {path}", file=sys.stderr, flush=True)
            export(name, path)
        paths[name] = path
    return paths


def main() -> int:
    p = argparse.ArgumentParser(description="Export the engine benchmark's seed-0 models to ONNX.",
                                epilog="The venv can be chosen with --venv DIR or LOUPE_VENV (default: .venv).")
    p.add_argument("--only", default=",".join(NAMES), help="comma-separated subset of " + ",".join(NAMES))
    p.add_argument("--out", default=str(REPO_ROOT / ".models"), help="output folder (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="re-export files that already exist")
    args = p.parse_args()
    names = [n if n.startswith("bench_") else "bench_" + n for n in args.only.split(",") if n]
    for n in names:
        if n not in NAMES:
            raise SystemExit(f"unknown model {n!r}; choose from {NAMES}")
    for name, path in ensure(names, Path(args.out), args.force).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
