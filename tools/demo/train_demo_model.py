"""Train Loupe's demo classifier: a small CNN on Fashion-MNIST.

Data: Debian's `dataset-fashion-mnist` package (Zalando SE, MIT/Expat licence), read from
/usr/share/datasets/fashion-mnist/*.gz (IDX format). Install it with
    apt-get install -y dataset-fashion-mnist

Writes into demo/ (repo root):
    model.onnx              ONNX opset 17, legacy exporter, BatchNormalization kept, batch axis dynamic
    model.preprocess.json   Loupe preprocess sidecar (grayscale, 28x28, mean/std as trained)
    labels.txt              the 10 class names, one per line, in class-index order
    images/<class>.png      one TEST-split image per chosen class (see pick_examples)
    metrics.json            test accuracy, per-class accuracy, training settings

Pinned: torch==2.15.0, CPU, 2 threads, seed 0. Takes a few minutes on 2 cores.
Run from the repository root:  python tools/demo/train_demo_model.py
"""

import gzip
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"
OUT = "demo"
SEED = 0
EPOCHS = 6
BATCH = 128
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# Classes that get an example image (8 of 10), file names derived from the label.
EXAMPLE_CLASSES = [0, 1, 3, 4, 5, 6, 8, 9]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


class DemoNet(nn.Module):
    """Conv+BN+ReLU blocks; the last spatial layer (block4, 7x7x64) is the CAM layer."""

    def __init__(self):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU())

        self.block1 = block(1, 16)    # 28x28
        self.block2 = block(16, 32)   # 28x28 -> pool 14x14
        self.block3 = block(32, 64)   # 14x14 -> pool 7x7
        self.block4 = block(64, 64)   # 7x7, last spatial layer
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.block1(x)
        x = F.max_pool2d(self.block2(x), 2)
        x = F.max_pool2d(self.block3(x), 2)
        x = self.block4(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def evaluate(model, x, y):
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            preds.append(model(x[i:i + 1000]).argmax(1))
    return torch.cat(preds)


def main():
    if torch.__version__.split("+")[0] != "2.15.0":
        print(f"warning: pinned torch==2.15.0, running {torch.__version__}", file=sys.stderr)
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    random.seed(SEED)
    np.random.seed(SEED)

    xtr = read_idx(f"{DATA}/train-images-idx3-ubyte.gz")
    ytr = read_idx(f"{DATA}/train-labels-idx1-ubyte.gz")
    xte = read_idx(f"{DATA}/t10k-images-idx3-ubyte.gz")
    yte = read_idx(f"{DATA}/t10k-labels-idx1-ubyte.gz")

    # ToTensor (x/255) then Normalize with the training split's statistics, rounded to the
    # 4 digits written into the sidecar so that training and Loupe use the same numbers.
    mean = round(float((xtr / 255.0).mean()), 4)
    std = round(float((xtr / 255.0).std()), 4)

    def to_input(a):
        t = torch.from_numpy(a.astype(np.float32) / 255.0).unsqueeze(1)
        return (t - mean) / std

    xtr_t, xte_t = to_input(xtr), to_input(xte)
    ytr_t, yte_t = torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(yte.astype(np.int64))

    model = DemoNet()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = EPOCHS * ((len(xtr_t) + BATCH - 1) // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    gen = torch.Generator().manual_seed(SEED)
    t0 = time.time()
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xtr_t), generator=gen)
        total = 0.0
        for i in range(0, len(perm), BATCH):
            idx = perm[i:i + BATCH]
            xb = xtr_t[idx]
            # Random horizontal flip: clothes are left/right symmetric classes.
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = F.cross_entropy(model(xb), ytr_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        acc = (evaluate(model, xte_t, yte_t) == yte_t).float().mean().item()
        print(f"epoch {epoch + 1}/{EPOCHS} loss {total / len(xtr_t):.4f} test acc {acc:.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)

    model.eval()
    pred = evaluate(model, xte_t, yte_t)
    acc = (pred == yte_t).float().mean().item()
    per_class = {LABELS[c]: round((pred[yte_t == c] == c).float().mean().item(), 4) for c in range(10)}

    os.makedirs(f"{OUT}/images", exist_ok=True)
    dummy = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(model, (dummy,), f"{OUT}/model.onnx", dynamo=False, opset_version=17,
                      do_constant_folding=False, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    with open(f"{OUT}/labels.txt", "w") as f:
        f.write("\n".join(LABELS) + "\n")
    sidecar = {"channels": 1, "grayscale": True, "resize": 28, "crop": [28],
               "mean": [mean], "std": [std], "inputSize": [1, 28, 28], "labels": "labels.txt"}
    with open(f"{OUT}/model.preprocess.json", "w") as f:
        json.dump(sidecar, f, indent=2, sort_keys=True)
        f.write("\n")

    # Example images: for each chosen class, the first TEST image of that class that the
    # model classifies correctly (the demo should show explanations of right answers; the
    # indices are recorded in metrics.json).
    from PIL import Image
    examples = {}
    for c in EXAMPLE_CLASSES:
        idx = next(i for i in range(len(yte)) if yte[i] == c and pred[i] == c)
        name = LABELS[c].lower().replace("/", "-").replace(" ", "-")
        Image.fromarray(xte[idx], mode="L").save(f"{OUT}/images/{name}.png")
        examples[f"images/{name}.png"] = {"test_index": int(idx), "label": LABELS[c]}

    params = sum(p.numel() for p in model.parameters())
    metrics = {"test_accuracy": round(acc, 4), "per_class_accuracy": per_class,
               "epochs": EPOCHS, "batch": BATCH, "seed": SEED, "parameters": params,
               "train_seconds": round(time.time() - t0, 1), "torch": torch.__version__,
               "mean": mean, "std": std, "examples": examples}
    with open(f"{OUT}/metrics.json", "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    print(json.dumps(metrics, indent=2))

    # Cross-check the exported file against PyTorch with onnxruntime when it is installed.
    try:
        import onnxruntime as ort
        sess = ort.InferenceSession(f"{OUT}/model.onnx", providers=["CPUExecutionProvider"])
        ref = model(xte_t[:64]).detach().numpy()
        got = sess.run(None, {"input": xte_t[:64].numpy()})[0]
        print(f"onnxruntime vs torch: max |diff| {np.abs(ref - got).max():.2e}")
    except ImportError:
        pass


if __name__ == "__main__":
    main()
