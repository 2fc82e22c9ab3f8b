"""Reference numbers for Tests/LoupeCLITests/ExplainCommandTests.swift.

Rebuilds the demo CNN in PyTorch from demo/model.onnx's initializers, prepares an example
image as torchvision does (Grayscale, ToTensor, Normalize with the sidecar's mean/std), and
prints the logits and Captum's LayerGradCam (relu_attributions=True) at block4's ReLU for the
predicted class. Run from the repository root:
    python tools/demo/reference_maps.py demo/images/dress.png
"""

import json
import sys

import numpy as np
import onnx
import torch
from captum.attr import LayerGradCam
from onnx import numpy_helper
from PIL import Image
from torchvision import transforms

sys.path.insert(0, "tools/demo")
from train_demo_model import DemoNet  # noqa: E402


def load_model(path="demo/model.onnx"):
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(path).graph.initializer}
    model = DemoNet()
    state = model.state_dict()
    missing = [k for k in state if k not in weights and not k.endswith("num_batches_tracked")]
    if missing:
        raise SystemExit(f"initializers missing from the ONNX file: {missing}")
    model.load_state_dict({k: weights.get(k, state[k]) for k in state})
    return model.eval()


def main():
    image_path = sys.argv[1] if len(sys.argv) > 1 else "demo/images/dress.png"
    side = json.load(open("demo/model.preprocess.json"))
    tf = transforms.Compose([transforms.Grayscale(1), transforms.Resize(side["resize"]), transforms.CenterCrop(side["crop"]),
                             transforms.ToTensor(), transforms.Normalize(side["mean"], side["std"])])
    x = tf(Image.open(image_path).convert("RGB")).unsqueeze(0)
    model = load_model()
    logits = model(x)
    target = int(logits.argmax())
    cam = LayerGradCam(model, model.block4[2]).attribute(x, target=target, relu_attributions=True)
    np.set_printoptions(precision=8, suppress=True, linewidth=160)
    print("logits", logits.detach().numpy().ravel().tolist())
    print("target", target)
    print("gradcam shape", tuple(cam.shape))
    print("gradcam", [float(v) for v in cam.detach().numpy().ravel()])


if __name__ == "__main__":
    main()
