#!/usr/bin/env python3
"""Time PyTorch (CPU, float32) on EfficientNet-Lite, for comparison with netlens.

    python3 tools/reference/bench_torch.py [--model efficientnet_lite0] [--batches 1,8]
        [--threads 2] [--repeats 10] [--warmup 3] [--classviz-iterations 100]

Variants:
  module  the reference nn.Module (efficientnet-lite-pytorch), eval, frozen parameters;
  folded  BN folded into the conv weights/bias, a plain functional forward (F.pad only where
          TF-SAME padding is asymmetric, conv2d's own padding where it is symmetric, in-place
          hardtanh(0, 6) for ReLU6); checked against `module` to 1e-4 before timing.
Measurements (median ms over --repeats, after --warmup untimed runs):
  forward           logits under torch.inference_mode
  forward_backward  input requires_grad, forward, logits[range(B), target].sum().backward(),
                    read x.grad
  classviz100       (folded, batch 1) the CS231n create_class_visualization loop, timed as one
                    run of --classviz-iterations iterations (3 runs, median)
One JSON line goes to stdout; human-readable lines go to stderr.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402  (wheel fetching + reference model)

torch = mf.torch
F = mf.F

TARGET = 366  # class used for forward_backward and classviz (gorilla)
LO, HI = (0 - 127) / 128, (255 - 127) / 128  # valid normalized pixel range


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Folded functional model
# ---------------------------------------------------------------------------------------------

def fold(conv, bn):
    """Conv (no bias) followed by eval BatchNorm -> (weight, bias)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = conv.weight * scale.reshape(-1, 1, 1, 1)
    b = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        b = b + conv.bias * scale
    return w.detach().contiguous(), b.detach().contiguous()


class FoldedConv:
    """One conv + folded BN with TF-SAME padding (static, from the reference module)."""

    def __init__(self, conv, bn):
        self.weight, self.bias = fold(conv, bn)
        pad = getattr(conv.static_padding, "padding", (0, 0, 0, 0))  # (l, r, t, b)
        l, r, t, b = pad
        if l == r and t == b:
            self.pre_pad, self.conv_pad = None, (t, l)
        else:
            self.pre_pad, self.conv_pad = (l, r, t, b), (0, 0)
        self.stride = tuple(conv.stride)
        self.groups = conv.groups

    def __call__(self, x, relu6):
        if self.pre_pad is not None:
            x = F.pad(x, self.pre_pad)
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.conv_pad, 1, self.groups)
        return F.hardtanh_(y, 0.0, 6.0) if relu6 else y


class FoldedNet:
    def __init__(self, net):
        self.stem = FoldedConv(net._conv_stem, net._bn0)
        self.blocks = []
        for blk in net._blocks:
            a = blk._block_args
            expand = FoldedConv(blk._expand_conv, blk._bn0) if a.expand_ratio != 1 else None
            dw = FoldedConv(blk._depthwise_conv, blk._bn1)
            proj = FoldedConv(blk._project_conv, blk._bn2)
            skip = a.id_skip and a.stride == 1 and a.input_filters == a.output_filters
            self.blocks.append((expand, dw, proj, skip))
        self.head = FoldedConv(net._conv_head, net._bn1)
        self.fc_w = net._fc.weight.detach().contiguous()
        self.fc_b = net._fc.bias.detach().contiguous()

    def __call__(self, x):
        x = self.stem(x, True)
        for expand, dw, proj, skip in self.blocks:
            h = expand(x, True) if expand is not None else x
            h = dw(h, True)
            h = proj(h, False)
            x = h.add_(x) if skip else h
        x = self.head(x, True)
        return F.linear(x.mean(dim=(2, 3)), self.fc_w, self.fc_b)


# ---------------------------------------------------------------------------------------------
# CS231n class visualization
# ---------------------------------------------------------------------------------------------

def gaussian_kernel1d(sigma, truncate=4.0):
    """scipy.ndimage.gaussian_filter1d's kernel (order 0)."""
    radius = int(truncate * float(sigma) + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    phi = torch.exp(-0.5 / (sigma * sigma) * x * x)
    return phi / phi.sum()


class Blur:
    """Gaussian blur along H then W, scipy mode='reflect' (half-sample symmetric) padding."""

    def __init__(self, channels, sigma, dtype):
        k = gaussian_kernel1d(sigma).to(dtype)
        self.r = (k.numel() - 1) // 2
        self.kh = k.reshape(1, 1, -1, 1).repeat(channels, 1, 1, 1)
        self.kw = k.reshape(1, 1, 1, -1).repeat(channels, 1, 1, 1)
        self.c = channels

    def _pad(self, x, dim):
        r = self.r
        n = x.shape[dim]
        head = x.narrow(dim, 0, r).flip(dim)
        tail = x.narrow(dim, n - r, r).flip(dim)
        return torch.cat([head, x, tail], dim=dim)

    def __call__(self, x):
        x = F.conv2d(self._pad(x, 2), self.kh, groups=self.c)
        return F.conv2d(self._pad(x, 3), self.kw, groups=self.c)


def class_visualization(model, size, iterations, target=TARGET, lr=25.0, l2_reg=1e-3,
                        max_jitter=16, blur_every=10, sigma=0.5):
    g = torch.Generator().manual_seed(0)
    img = torch.randn(1, 3, size, size, generator=g).requires_grad_(True)
    rng = random.Random(0)
    blur = Blur(3, sigma, img.dtype)
    for t in range(iterations):
        ox, oy = rng.randint(0, max_jitter), rng.randint(0, max_jitter)
        with torch.no_grad():
            img.copy_(torch.roll(img, shifts=(ox, oy), dims=(3, 2)))
        score = model(img)[0, target] - l2_reg * (img * img).sum()
        score.backward()
        with torch.no_grad():
            grad = img.grad
            img.add_(grad, alpha=lr / float(grad.norm()))
            img.grad = None
            img.copy_(torch.roll(img, shifts=(-ox, -oy), dims=(3, 2)))
            img.clamp_(LO, HI)
            if t % blur_every == 0:
                img.copy_(blur(img))
    return img.detach()


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------

def median_ms(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--classviz-iterations", type=int, default=100)
    ap.add_argument("--classviz-repeats", type=int, default=3)
    ap.add_argument("--find-links", action="append", default=[])
    args = ap.parse_args()

    model = args.model.replace("-", "_")
    if model not in mf.MODELS:
        model = {"lite0": "efficientnet_lite0", "lite1": "efficientnet_lite1",
                 "lite2": "efficientnet_lite2"}.get(model, model)
    if model not in mf.MODELS:
        sys.exit(f"unknown model {args.model!r}; one of {', '.join(mf.MODELS)}")
    size = mf.MODELS[model][0]
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)

    net, _ = mf.build_model(model, torch.float32, args.find_links)
    folded = FoldedNet(net)
    variants = {"module": net, "folded": folded}

    # Correctness of the folded baseline.
    g = torch.Generator().manual_seed(0)
    xs = {b: torch.randn(b, 3, size, size, generator=g) for b in batches}
    for b, x in xs.items():
        with torch.inference_mode():
            ref, got = net(x), folded(x)
        err = float((ref - got).abs().max())
        log(f"folded vs module, batch {b}: max |dlogit| = {err:.2e}")
        if err > 1e-4:
            sys.exit(f"folded forward differs from the module by {err}")
        xa = x.clone().requires_grad_(True)
        xb = x.clone().requires_grad_(True)
        net(xa)[range(b), TARGET].sum().backward()
        folded(xb)[range(b), TARGET].sum().backward()
        gerr = float((xa.grad - xb.grad).norm() / xa.grad.norm())
        log(f"folded vs module, batch {b}: grad rel L2 = {gerr:.2e}")

    results = []
    for b in batches:
        x = xs[b]
        target = torch.full((b,), TARGET, dtype=torch.long)
        for name, fwd in variants.items():
            def forward():
                with torch.inference_mode():
                    fwd(x)

            def forward_backward():
                xg = x.detach().requires_grad_(True)
                fwd(xg)[torch.arange(b), target].sum().backward()
                return xg.grad

            for kind, fn in (("forward", forward), ("forward_backward", forward_backward)):
                med, times = median_ms(fn, args.repeats, args.warmup)
                results.append({"name": kind, "variant": name, "batch": b,
                                "median_ms": round(med, 3)})
                log(f"{kind:<17} {name:<7} b{b:<3} median {med:8.2f} ms "
                    f"(min {min(times):.2f}, max {max(times):.2f})")

    if args.classviz_iterations > 0:
        it = args.classviz_iterations
        out = None

        def run():
            nonlocal out
            out = class_visualization(folded, size, it)

        med, times = median_ms(run, args.classviz_repeats, 0)
        name = f"classviz{it}"
        results.append({"name": name, "variant": "folded", "batch": 1, "median_ms": round(med, 3)})
        with torch.inference_mode():
            probs = torch.softmax(folded(out), dim=1)[0]
        log(f"{name:<17} folded  b1   median {med:8.2f} ms "
            f"(runs {', '.join(f'{t:.0f}' for t in times)}); "
            f"p[{TARGET}] = {float(probs[TARGET]):.3f}, top1 = {int(probs.argmax())}")

    print(json.dumps({
        "torch_version": torch.__version__,
        "threads": args.threads,
        "model": model,
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "results": results,
    }))


if __name__ == "__main__":
    main()
