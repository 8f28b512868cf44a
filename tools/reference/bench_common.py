"""Timing helpers shared by bench_torch.py and torchvision_bench.py (netlens bench's protocol)."""

import resource
import statistics
import sys
import time

MIN_REPEATS = 3
CLASS = 366  # gorilla: the first image's target, and the class visualized


def bench_inputs(batch, size):
    """The batch every engine times (netlens::bench::inputs, bit for bit): value j of the flat
    [B, 3, S, S] batch is h / 2**32 * 2 - 1, h = (2654435761 j + 12345) mod 2**32, computed in
    integers and rounded once from float64 to float32."""
    import numpy as np
    import torch

    j = np.arange(batch * 3 * size * size, dtype=np.uint64)
    h = (j * np.uint64(2654435761) + np.uint64(12345)) & np.uint64(0xFFFFFFFF)
    x = (h.astype(np.float64) / 4294967296.0 * 2.0 - 1.0).astype(np.float32)
    return torch.from_numpy(x.reshape(batch, 3, size, size))


def bench_targets(batch, classes=1000):
    """The class of each image (netlens::bench::inputs::targets): (366 + 97 i) mod classes."""
    import torch

    return torch.tensor([(CLASS + 97 * i) % classes for i in range(batch)], dtype=torch.long)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def median_ms(fn, repeats, warmup, budget_s=0.0):
    """Median of up to `repeats` timed runs after up to `warmup` untimed ones. With a budget,
    warm-up stops once it took budget/4 and timing once it has MIN_REPEATS runs (or all of
    `repeats`, if fewer) that took `budget_s` (netlens bench uses the same rule)."""
    spent = 0.0
    for _ in range(warmup):
        t0 = time.perf_counter()
        fn()
        spent += time.perf_counter() - t0
        if budget_s > 0 and spent >= budget_s / 4:
            break
    times = []
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if budget_s > 0 and len(times) >= MIN_REPEATS and sum(times) >= budget_s * 1e3:
            break
    return statistics.median(times), times


def peak_rss_mb():
    """This process's peak resident set size so far (ru_maxrss is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def time_passes(net, x, target, variant, args):
    """netlens bench's two passes of `net` on the batch `x` — forward (inference mode) and
    forward + backward-to-input of the `target` logits — timed with `median_ms` under
    args.repeats / warmup / budget_s; one result row each, as netlens bench reads them."""
    import torch

    b = x.shape[0]

    def forward():
        with torch.inference_mode():
            net(x)

    def forward_backward():
        xg = x.detach().requires_grad_(True)
        net(xg)[torch.arange(b), target].sum().backward()
        return xg.grad

    rows = []
    for kind, fn in (("forward", forward), ("forward_backward", forward_backward)):
        med, times = median_ms(fn, args.repeats, args.warmup, args.budget_s)
        rows.append({"name": kind, "variant": variant, "batch": b,
                     "median_ms": round(med, 3), "min_ms": round(min(times), 3),
                     "max_ms": round(max(times), 3), "runs": len(times)})
        log(f"{kind:<17} {variant:<7} b{b:<3} median {med:8.2f} ms "
            f"(min {min(times):.2f}, max {max(times):.2f})")
    return rows
