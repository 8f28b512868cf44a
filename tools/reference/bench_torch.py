#!/usr/bin/env python3
"""Time PyTorch (CPU, float32) on EfficientNet-Lite, for comparison with netlens.

    python3 tools/reference/bench_torch.py [--model efficientnet_lite0] [--batches 1,8]
        [--threads 2] [--repeats 10] [--warmup 3] [--budget-s 0]
        [--classviz-iterations 100] [--classviz-repeats 3]

`netlens bench` runs this script for EfficientNet-Lite models, under its own allocator
settings and thread count.

Variants:
  module  the reference nn.Module (efficientnet-lite-pytorch), eval, frozen parameters;
  folded  BN folded into the conv weights/bias, a plain functional forward (F.pad only where
          TF-SAME padding is asymmetric, conv2d's own padding where it is symmetric, in-place
          hardtanh(0, 6) for ReLU6); checked against `module` to 1e-4 before timing.
Measurements (median ms over --repeats, after --warmup untimed runs; with --budget-s > 0 a
measurement stops early once it has at least 3 timed runs and they took that many seconds, and
warm-up stops once it took a quarter of it):
Inputs: bench_common.bench_inputs / bench_targets, the batch and classes netlens's workers
time too (netlens::bench::inputs, bit for bit).
  forward           logits under torch.inference_mode
  forward_backward  input requires_grad, forward, logits[range(B), target].sum().backward(),
                    read x.grad
  classvizN         (both variants, batch 1) the CS231n create_class_visualization loop with
                    netlens's default recipe (`netlens visualize`'s cs231n: N = 100 iterations,
                    lr 25 on the L2-normalized gradient, L2 1e-3, jitter 0..16 px by roll,
                    clamp to the valid pixel box, Gaussian blur sigma 0.5 every 10 iterations at
                    t % 10 == 0, class 366, input size of the model), timed as one whole run,
                    median of --classviz-repeats runs. Like netlens's
                    `synthesis::cs231n::visualize`, a run also classifies the start noise and the
                    final image (both quantized to 8 bits), one forward pass each.
One JSON line goes to stdout, with peak_rss_mb (this process's ru_maxrss over the whole run,
torch's own libraries included) and setup_rss_mb (the same before the first pass);
human-readable lines go to stderr.
"""

import argparse
import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402  (wheel fetching + reference model)
from bench_common import (  # noqa: E402
    CLASS, bench_inputs, bench_targets, log, median_ms, peak_rss_mb, time_passes)

torch = mf.torch
F = mf.F

TARGET = CLASS  # the class visualized (gorilla), as netlens::bench::inputs::CLASS
LO, HI = (0 - 127) / 128, (255 - 127) / 128  # valid normalized pixel range


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


def saved_prob(model, img, target):
    """Target probability of `img` as an 8-bit image would hold it (quantized, no graph)."""
    with torch.inference_mode():
        q = ((img * 128 + 127).round().clamp(0, 255) - 127) / 128
        return float(torch.softmax(model(q), dim=1)[0, target])


# netlens's default cs231n recipe (crates/netlens/src/synthesis/cs231n.rs, Cs231nRecipe::default()).
CS231N = dict(lr=25.0, l2_reg=1e-3, max_jitter=16, blur_every=10, sigma=0.5)


def class_visualization(model, size, iterations, target=TARGET, lr=CS231N["lr"],
                        l2_reg=CS231N["l2_reg"], max_jitter=CS231N["max_jitter"],
                        blur_every=CS231N["blur_every"], sigma=CS231N["sigma"]):
    """Returns (image, start probability, final probability)."""
    g = torch.Generator().manual_seed(0)
    img = torch.randn(1, 3, size, size, generator=g).requires_grad_(True)
    start_prob = saved_prob(model, img.detach(), target)
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
            if blur_every > 0 and t % blur_every == 0:
                img.copy_(blur(img))
    out = img.detach()
    return out, start_prob, saved_prob(model, out, target)


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------



def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=0.0,
                    help="seconds per measurement after which timing stops early (0: never)")
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
    setup_rss_mb = peak_rss_mb()  # torch imported, model built: before any pass

    # Correctness of the folded baseline.
    xs = {b: bench_inputs(b, size) for b in batches}
    for b, x in xs.items():
        with torch.inference_mode():
            ref, got = net(x), folded(x)
        err = float((ref - got).abs().max())
        log(f"folded vs module, batch {b}: max |dlogit| = {err:.2e}")
        if err > 1e-4:
            sys.exit(f"folded forward differs from the module by {err}")
        xa = x.clone().requires_grad_(True)
        xb = x.clone().requires_grad_(True)
        net(xa)[range(b), bench_targets(b)].sum().backward()
        folded(xb)[range(b), bench_targets(b)].sum().backward()
        gerr = float((xa.grad - xb.grad).norm() / xa.grad.norm())
        log(f"folded vs module, batch {b}: grad rel L2 = {gerr:.2e}")

    results = []
    for b in batches:
        x = xs[b]
        target = bench_targets(b)
        for name, fwd in variants.items():
            results += time_passes(fwd, x, target, name, args)

    if args.classviz_iterations > 0:
        it = args.classviz_iterations
        name = f"classviz{it}"
        for vname, fwd in variants.items():
            out = None

            def run():
                nonlocal out
                out = class_visualization(fwd, size, it)

            med, times = median_ms(run, args.classviz_repeats, 0)
            results.append({"name": name, "variant": vname, "batch": 1,
                            "median_ms": round(med, 3), "min_ms": round(min(times), 3),
                            "runs": len(times)})
            img, p0, p1 = out
            with torch.inference_mode():
                top1 = int(fwd(img).argmax())
            log(f"{name:<17} {vname:<7} b1   median {med:8.2f} ms "
                f"(runs {', '.join(f'{t:.0f}' for t in times)}); "
                f"p[{TARGET}] {p0:.4f} -> {p1:.3f}, top1 = {top1}")

    print(json.dumps({
        "torch_version": torch.__version__,
        "threads": args.threads,
        "model": model,
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "setup_rss_mb": setup_rss_mb,
        "peak_rss_mb": peak_rss_mb(),
        "results": results,
    }))


if __name__ == "__main__":
    main()
