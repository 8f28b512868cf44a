#!/usr/bin/env python3
"""Time the CS231n fooling loop in PyTorch (CPU), for comparison with netlens.

    python3 tools/reference/adversarial_bench.py [--model efficientnet_lite0] [--target 6]
        [--threads 2] [--max-iterations 100] [--repeats 3] [--dtype float32] IMAGE...

For each image: make_fixtures.preprocess + normalize (--dtype, float32 by default), then the assignment's
make_fooling_image on the reference nn.Module (eval, frozen):

    for it in range(max_iterations):
        scores = model(X); if scores.argmax() == target: break
        scores[0, target].backward(); X += lr * g / g.norm()

As in netlens, the stop test is made on the image as saved (clamped to [0,255] and rounded
to 8 bits) once the float image reaches the target, so iteration counts are comparable.
Reports iterations and ms per iteration (one iteration = forward + backward + update, plus
the quantized check when it happens), median over --repeats runs. One JSON line to stdout.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402

torch = mf.torch


def quantize(x):
    """The normalized image as an 8-bit image would hold it."""
    return (torch.round(x * 128.0 + 127.0).clamp(0, 255) - 127.0) / 128.0


def fool(model, x0, target, lr, max_iterations):
    x = x0.clone()
    iterations = 0
    for _ in range(max_iterations):
        x.requires_grad_(True)
        scores = model(x)
        if int(scores.argmax()) == target:
            with torch.no_grad():
                if int(model(quantize(x)).argmax()) == target:
                    break
        scores[0, target].backward()
        with torch.no_grad():
            g = x.grad
            x = x + lr * g / g.norm()
        iterations += 1
    with torch.no_grad():
        success = int(model(quantize(x)).argmax()) == target
    return x.detach(), iterations, success


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("images", nargs="+")
    ap.add_argument("--model", default="efficientnet_lite0", choices=list(mf.MODELS))
    ap.add_argument("--target", type=int, default=6)
    ap.add_argument("--lr", type=float, default=1.0)
    ap.add_argument("--max-iterations", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                    help="float64 gives the trajectory free of float32 rounding")
    ap.add_argument("--find-links", action="append", default=[])
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    net, _ = mf.build_model(args.model, dtype, args.find_links)
    size = mf.MODELS[args.model][0]
    rows = []
    for path in args.images:
        x0 = mf.normalize(mf.preprocess(path, size), dtype)
        fool(net, x0, args.target, args.lr, 2)  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            _, its, ok = fool(net, x0, args.target, args.lr, args.max_iterations)
            times.append((time.perf_counter() - t0) * 1e3)
        ms = statistics.median(times)
        rows.append({"image": path, "iterations": its, "success": ok, "total_ms": ms,
                     "ms_per_iteration": ms / max(its, 1)})
        print(f"{path}: {its} iterations, success {ok}, {ms:.0f} ms, "
              f"{ms / max(its, 1):.1f} ms/iteration", file=sys.stderr)
    print(json.dumps({"model": args.model, "dtype": args.dtype, "threads": args.threads,
                      "target": args.target,
                      "torch_version": torch.__version__, "results": rows}))


if __name__ == "__main__":
    main()
