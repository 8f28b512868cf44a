#!/usr/bin/env python3
"""Time torchvision's SqueezeNet 1.1, VGG16 and ViT-B/16 (CPU, float32), for comparison with netlens.

    python3 tools/reference/torchvision_bench.py [--model vgg16] [--batches 1,8]
        [--threads 2] [--repeats 10] [--warmup 3]

Speaks `netlens bench`'s protocol, so that

    netlens bench --model vgg16 --weights FILE --torch-script tools/reference/torchvision_bench.py

prints the ratio table directly (run both under the same allocator settings: `netlens bench`
passes its own to this script). The model is torchvision's own module with its default random
initialisation (timing does not depend on the weights), eval mode, parameters frozen.
Measurements (median ms over --repeats, after --warmup untimed runs), variant "module":
  forward           logits under torch.inference_mode
  forward_backward  input requires_grad, forward, logits[range(B), target].sum().backward(),
                    read x.grad
One JSON line goes to stdout; human-readable lines go to stderr. --classviz-iterations is
accepted for compatibility with bench_torch.py and ignored.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torchvision

MODELS = {
    "squeezenet1_1": torchvision.models.squeezenet1_1,
    "vgg16": torchvision.models.vgg16,
    "vit_b_16": torchvision.models.vit_b_16,
}
SIZE = 224


def log(*args):
    print(*args, file=sys.stderr, flush=True)


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
    ap.add_argument("--model", default="squeezenet1_1")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--classviz-iterations", type=int, default=0)
    args = ap.parse_args()

    model = args.model.replace("-", "_")
    if model not in MODELS:
        sys.exit(f"unknown model {args.model!r}; one of {', '.join(MODELS)}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = MODELS[model](weights=None).eval()
    for p in net.parameters():
        p.requires_grad_(False)

    g = torch.Generator().manual_seed(0)
    results = []
    for b in (int(v) for v in args.batches.split(",")):
        x = torch.randn(b, 3, SIZE, SIZE, generator=g)
        target = torch.tensor([(i * 97) % 1000 for i in range(b)])

        def forward():
            with torch.inference_mode():
                net(x)

        def forward_backward():
            xg = x.detach().requires_grad_(True)
            net(xg)[torch.arange(b), target].sum().backward()
            return xg.grad

        for kind, fn in (("forward", forward), ("forward_backward", forward_backward)):
            med, times = median_ms(fn, args.repeats, args.warmup)
            results.append({"name": kind, "variant": "module", "batch": b,
                            "median_ms": round(med, 3)})
            log(f"{kind:<17} module  b{b:<3} median {med:8.2f} ms "
                f"(min {min(times):.2f}, max {max(times):.2f})")

    print(json.dumps({
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "threads": args.threads,
        "model": model,
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "results": results,
    }))


if __name__ == "__main__":
    main()
