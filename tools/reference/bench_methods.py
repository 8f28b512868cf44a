#!/usr/bin/env python3
"""Time one whole method with the library a user would otherwise run (netlens bench's method table).

    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 \
        python3 tools/reference/bench_methods.py --method smoothgrad50 [--threads 2] [--repeats 1]

The reference EfficientNet-Lite0 (make_fixtures.build_model: the published weights, eval,
frozen, float32) on the five sample photos (assets/photos, make_fixtures.preprocess and
normalize), each explained for its top-1 class; `netlens bench` runs the same method with the
same settings in a netlens process (netlens::bench::methods):

  smoothgrad50   Captum NoiseTunnel(Saliency), nt_type smoothgrad, 50 samples, sigma 0.15 x
                 the batch's value range, 2 samples x 5 images = 10 images per pass
  ig64           Captum IntegratedGradients, 64 steps from the black image (Gauss-Legendre,
                 Captum's default), internal_batch_size 10
  gradcam        pytorch-grad-cam GradCAM on the head activation (conv_head + BN + ReLU6),
                 batch of 5
  pgd20          torchattacks PGD, L-inf eps 8/255, alpha 2/255, 20 steps, random start, on
                 [0, 1] images through the model's normalization, batch of 5, untargeted
  classviz200    the practical's class-visualization loop (bench_torch.class_visualization),
                 200 iterations, class 366

One untimed warm-up pass (a forward + backward of the batch), then the median of --repeats
whole runs. One JSON line to stdout in netlens bench's record format.
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402
from bench_common import log, median_ms, peak_rss_mb  # noqa: E402
from attribution_fixtures import Wrapped  # noqa: E402  (Lite0 with its head tapped)

torch, np, F = mf.torch, mf.np, mf.F
from torch import nn  # noqa: E402

MODEL = "efficientnet_lite0"
SIZE = 224
STEMS = ["chelsea", "coffee", "grace_hopper", "motorcycle_left", "rocket"]
METHODS = ["smoothgrad50", "ig64", "gradcam", "pgd20", "classviz200"]


class FromUnit(nn.Module):
    """The model on [0, 1] images, as torchattacks expects: x = (255 u - 127) / 128."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, u):
        return self.net((u * 255.0 - 127.0) / 128.0)


def photos():
    files = {p.stem: p for p in mf.PHOTOS.iterdir()}
    pixels = [mf.preprocess(files[s], SIZE) for s in STEMS]
    return torch.cat([mf.normalize(p, torch.float32) for p in pixels])


def runner(method, w, x, cls):
    if method == "smoothgrad50":
        from captum.attr import NoiseTunnel, Saliency
        nt = NoiseTunnel(Saliency(w))
        sigma = 0.15 * float(x.max() - x.min())
        return "captum NoiseTunnel(Saliency)", lambda: nt.attribute(
            x, nt_type="smoothgrad", nt_samples=50, nt_samples_batch_size=2, stdevs=sigma,
            target=cls)
    if method == "ig64":
        from captum.attr import IntegratedGradients
        ig = IntegratedGradients(w)
        black = torch.full_like(x, -127.0 / 128.0)
        return "captum IntegratedGradients", lambda: ig.attribute(
            x, baselines=black, target=cls, n_steps=64, internal_batch_size=10)
    if method == "gradcam":
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
        cam = GradCAM(model=w, target_layers=[w.head])
        targets = [ClassifierOutputTarget(c) for c in cls]
        # The weights are frozen: the input must require grad for the head to get one.
        xg = x.clone().requires_grad_(True)
        return "pytorch-grad-cam GradCAM", lambda: cam(input_tensor=xg, targets=targets)
    if method == "pgd20":
        import torchattacks
        unit = FromUnit(w).eval()
        atk = torchattacks.PGD(unit, eps=8 / 255, alpha=2 / 255, steps=20, random_start=True)
        u = ((x * 128.0 + 127.0) / 255.0).clamp(0, 1)
        labels = torch.tensor(cls)
        return "torchattacks PGD", lambda: atk(u, labels)
    if method == "classviz200":
        import bench_torch
        return "the practical's loop", lambda: bench_torch.class_visualization(w, SIZE, 200)
    sys.exit(f"unknown method {method!r}; one of {', '.join(METHODS)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", required=True, choices=METHODS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--find-links", action="append", default=[])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    net, _ = mf.build_model(MODEL, torch.float32, args.find_links)
    w = Wrapped(net).eval()
    x = photos()
    with torch.inference_mode():
        cls = [int(c) for c in w(x).argmax(1)]
    setup_rss_mb = peak_rss_mb()
    anchor, run = runner(args.method, w, x, cls)
    # Warm-up: one forward + backward of the batch (as netlens's worker does).
    xg = x.clone().requires_grad_(True)
    w(xg)[range(len(cls)), cls].sum().backward()
    med, times = median_ms(run, args.repeats, 0)
    batch = 1 if args.method == "classviz200" else len(STEMS)
    log(f"{args.method:<13} {anchor}: median {med:.0f} ms "
        f"(runs {', '.join(f'{t:.0f}' for t in times)}), classes {cls}")
    print(json.dumps({
        "torch_version": torch.__version__,
        "threads": args.threads,
        "model": MODEL,
        "anchor": anchor,
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "setup_rss_mb": setup_rss_mb,
        "peak_rss_mb": peak_rss_mb(),
        "results": [{"name": args.method, "variant": "anchor", "batch": batch,
                     "median_ms": round(med, 3), "min_ms": round(min(times), 3),
                     "max_ms": round(max(times), 3), "runs": len(times)}],
    }))


if __name__ == "__main__":
    main()
