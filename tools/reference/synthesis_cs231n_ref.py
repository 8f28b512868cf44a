#!/usr/bin/env python3
"""PyTorch reference run of the CS231n class-visualization loop, for netlens' parity test.

    python3 tools/reference/synthesis_cs231n_ref.py [--iterations 6]

Runs `create_class_visualization` exactly as the assignment writes it (roll the image data,
forward, backward of score - l2_reg * ||img||^2, step lr * g / ||g||, roll back, clamp to the
valid pixel range, blur every 10 iterations with SciPy's gaussian_filter1d kernel) on
EfficientNet-Lite0 in float64, from a deterministic start (x0[i] = float32(1.8 sin(0.618034 i))
over the flat [1,3,224,224] image) with fixed jitter offsets, so that netlens can replay the
same run. The image is kept in float32 between steps (see below). Writes into crates/netlens/tests/fixtures/synthesis/:
  cs231n_lite0.offsets.npy  int64   [T,2]        (ox, oy) per iteration
  cs231n_lite0.final.npy    float32 [3,224,224]  the image after T iterations (normalized)
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402
from bench_torch import Blur, LO, HI  # noqa: E402

torch = mf.torch
OUT = mf.FIXTURES / "synthesis"
TARGET = 366  # gorilla


def start(size):
    i = np.arange(3 * size * size, dtype=np.float64)
    x0 = (1.8 * np.sin(0.618034 * i)).astype(np.float32).astype(np.float64)
    return torch.tensor(x0.reshape(1, 3, size, size))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(1)
    net, _ = mf.build_model("efficientnet_lite0", torch.float64)
    size = 224
    rng = np.random.default_rng(5)
    offsets = rng.integers(0, 17, size=(args.iterations, 2))
    # The image lives in float32 between steps, as in netlens' loop (and PyTorch's float32
    # loop); the network and its gradient run in float64. The loop amplifies rounding: a 1e-7
    # difference flips a ReLU6 mask sooner or later and grows ~10x per step from there
    # (PyTorch's own float32 loop leaves its float64 loop by 1e-5 at step 4, 0.2 at step 12;
    # netlens leaves this reference after step 7). Hence 6 iterations: blur at t=0, then five
    # plain steps.
    img = start(size).float()
    blur = Blur(3, 0.5, torch.float32)
    lr, l2_reg, blur_every = 25.0, 1e-3, 10
    for t in range(args.iterations):
        ox, oy = int(offsets[t, 0]), int(offsets[t, 1])
        x = torch.roll(img.double(), shifts=(ox, oy), dims=(3, 2)).requires_grad_(True)
        score = net(x)[0, TARGET] - l2_reg * (x * x).sum()
        score.backward()
        with torch.no_grad():
            g = x.grad.float()
            img = torch.roll(img, shifts=(ox, oy), dims=(3, 2))
            img = img + g * (lr / g.norm())
            img = torch.roll(img, shifts=(-ox, -oy), dims=(3, 2))
            img = img.clamp(LO, HI)
            if t % blur_every == 0:
                img = blur(img)
        print(f"t={t} score={float(score.detach()):.4f}", file=sys.stderr)
    img = img.double()
    with torch.no_grad():
        p = torch.softmax(net(img), dim=1)[0, TARGET]
    print(f"p[{TARGET}] after {args.iterations} iterations: {float(p):.4f}")
    OUT.mkdir(parents=True, exist_ok=True)
    np.save(OUT / "cs231n_lite0.offsets.npy", offsets.astype(np.int64))
    np.save(OUT / "cs231n_lite0.final.npy", img.detach()[0].numpy().astype(np.float32))


if __name__ == "__main__":
    main()
