#!/usr/bin/env python3
"""Time saliency for a batch of images in PyTorch (CPU, float32), beside `netlens saliency`.

    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 \
        python3 tools/reference/saliency_bench.py [--threads 2] [--repeats 5] [--methods ...]

The reference EfficientNet-Lite0 (make_fixtures.build_model, eval, frozen) on the five sample
photos (the preprocessing contract of make_fixtures.py), each explained for its top-1 class:

  vanilla               batch of 5, logits[i, t_i].sum().backward(), |grad|.amax(channels)
  gradient-x-input      the same gradient times the input, summed over channels
  grad-cam              head activation as a leaf, backward from it, mean-weighted ReLU sum,
                        F.interpolate(bilinear, align_corners=False) to 224
  smoothgrad            vanilla on 25 noisy copies per image (sigma 0.15 x range), batches of 8
  integrated-gradients  64 gradient evaluations per image from a black baseline, batches of 8
                        (uniform points: the same number of passes as netlens' adaptive rule)

Median wall time over --repeats runs after one warm-up. One JSON line to stdout.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402

torch, np, F = mf.torch, mf.np, mf.F
STEMS = ["chelsea", "coffee", "rocket", "grace_hopper", "motorcycle_left"]


def grads(net, x, targets):
    x = x.detach().requires_grad_(True)
    out = net(x)
    out[torch.arange(len(targets)), targets].sum().backward()
    return x.grad


def vanilla(net, x, t):
    return grads(net, x, t).abs().amax(1)


def gxi(net, x, t):
    return (grads(net, x, t) * x).sum(1)


def gradcam(net, x, t):
    a = net.extract_features(x).detach().requires_grad_(True)
    out = net._fc(net._dropout(net._avg_pooling(a).flatten(1)))
    out[torch.arange(len(t)), t].sum().backward()
    w = a.grad.mean(dim=(2, 3))
    cam = torch.relu((w[:, :, None, None] * a).sum(1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


def batched(net, pts, t, batch):
    return torch.cat([grads(net, pts[i:i + batch], t[i:i + batch])
                      for i in range(0, len(pts), batch)])


def smoothgrad(net, x, t, samples=25, noise=0.15, batch=8):
    gen = torch.Generator().manual_seed(0)
    out = []
    for i in range(len(x)):
        sigma = noise * float(x[i].max() - x[i].min())
        pts = x[i:i + 1] + sigma * torch.randn((samples,) + x.shape[1:], generator=gen)
        g = batched(net, pts, t[i:i + 1].repeat(samples), batch)
        out.append(g.abs().amax(1).mean(0))
    return torch.stack(out)


def integrated_gradients(net, x, t, steps=64, batch=8):
    base = torch.full_like(x[:1], -127.0 / 128.0)
    alphas = torch.linspace(0, 1, steps)
    out = []
    for i in range(len(x)):
        pts = base + alphas[:, None, None, None] * (x[i:i + 1] - base)
        g = batched(net, pts, t[i:i + 1].repeat(steps), batch)
        w = torch.full((steps,), 1.0 / (steps - 1))
        w[0] = w[-1] = 0.5 / (steps - 1)
        out.append(((g * w[:, None, None, None]).sum(0) * (x[i] - base[0])).sum(0))
    return torch.stack(out)


METHODS = {
    "vanilla": vanilla,
    "gradient-x-input": gxi,
    "grad-cam": gradcam,
    "smoothgrad": smoothgrad,
    "integrated-gradients": integrated_gradients,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    net, _ = mf.build_model("efficientnet_lite0", torch.float32)
    x = torch.cat([mf.normalize(mf.preprocess(mf.REPO / "assets" / "photos" / mf.PHOTO_FILES[s], 224),
                                torch.float32) for s in STEMS])
    with torch.no_grad():
        t = net(x).argmax(1)
    result = {"torch": torch.__version__, "threads": args.threads, "images": len(STEMS), "ms": {}}
    for name in args.methods.split(","):
        fn = METHODS[name]
        fn(net, x, t)  # warm-up
        times = []
        for _ in range(args.repeats if name in ("vanilla", "gradient-x-input", "grad-cam")
                       else max(1, args.repeats // 2)):
            t0 = time.perf_counter()
            fn(net, x, t)
            times.append(1000 * (time.perf_counter() - t0))
        result["ms"][name] = statistics.median(times)
        print(f"{name}: median {statistics.median(times):.0f} ms over {len(times)} runs "
              f"({', '.join(f'{v:.0f}' for v in times)})", file=sys.stderr, flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
