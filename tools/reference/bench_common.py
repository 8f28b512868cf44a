"""Timing helpers shared by bench_torch.py and torchvision_bench.py (netlens bench's protocol)."""

import resource
import statistics
import sys
import time

MIN_REPEATS = 3


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
