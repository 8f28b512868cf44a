"""Writes the seed corpus of netlens's fuzz tests (crates/netlens/tests/fuzz.rs).

Small, valid files of every kind netlens reads from a user, which the tests mutate:
images in each format netlens decodes (Pillow), weights files in each format it reads
(torch.save zip and legacy pickle, safetensors), and a small ONNX export. Run once and commit
the result; it needs torch, torchvision, pillow, numpy, safetensors and onnx from PyPI.

    python tools/reference/fuzz_corpus.py crates/netlens/tests/fuzz/corpus
"""

import io
import pathlib
import sys

import numpy as np
import torch
from PIL import Image


def images(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (12, 16, 4), dtype=np.uint8))
    gray = Image.fromarray(rng.integers(0, 256, (12, 16), dtype=np.uint8))
    rgb.save(out / "rgb.png")
    rgba.save(out / "rgba.png")
    gray.save(out / "gray.png")
    rgb.save(out / "rgb.jpg", quality=90)
    rgb.save(out / "progressive.jpg", quality=80, progressive=True)
    rgb.save(out / "rgb.bmp")
    rgb.save(out / "rgb.gif")
    rgb.save(out / "rgb.webp", lossless=True)
    rgb.save(out / "rgb.tiff")
    # 16-bit grayscale PNG
    g16 = Image.fromarray(rng.integers(0, 65536, (12, 16), dtype=np.uint16))
    g16.save(out / "gray16.png")


def weights(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    sd = {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=g),
        "conv.bias": torch.randn(4, generator=g),
        "bn.running_mean": torch.randn(4, generator=g),
        "bn.num_batches_tracked": torch.tensor(7),
        "fc.weight": torch.randn(5, 4, generator=g).half(),
    }
    torch.save(sd, out / "state_dict.pth")
    torch.save(sd, out / "legacy.pth", _use_new_zipfile_serialization=False)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, str(out / "state_dict.safetensors"))


def onnx_model(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 4, 1),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 5),
        torch.nn.Softmax(dim=1),
    ).eval()
    buf = io.BytesIO()
    torch.onnx.export(net, torch.randn(1, 3, 16, 16), buf, input_names=["input"],
                      output_names=["probs"], opset_version=17, dynamo=False)
    (out / "tiny_cnn.onnx").write_bytes(buf.getvalue())


def main() -> None:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "crates/netlens/tests/fuzz/corpus")
    images(root / "images")
    weights(root / "weights")
    onnx_model(root / "onnx")
    for p in sorted(root.rglob("*")):
        if p.is_file():
            print(f"{p}  {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
