#!/usr/bin/env python3
"""Time torchvision's SqueezeNet 1.1, VGG16 and ViT-B/16 (CPU, float32), for comparison with netlens.

    python3 tools/reference/torchvision_bench.py [--model vgg16] [--batches 1,8]
        [--threads 2] [--repeats 10] [--warmup 3] [--budget-s 0]
    python3 tools/reference/torchvision_bench.py --model vgg16 --save-weights FILE.pth

Speaks `netlens bench`'s protocol: `netlens bench --models squeezenet1_1,vgg16` runs it for
torchvision models under netlens's own allocator settings and thread count, and prints the
ratio table. The model is torchvision's own module with its default random initialisation
(torch.manual_seed(0); timing does not depend on the weights), eval mode, parameters frozen.
Measurements (median ms over --repeats, after --warmup untimed runs; with --budget-s > 0 a
measurement stops early once it has at least 3 timed runs and they took that many seconds, and
warm-up stops once it took a quarter of it), variant "module":
Inputs: bench_common.bench_inputs / bench_targets, the batch and classes netlens's workers
time too (netlens::bench::inputs, bit for bit).
  forward           logits under torch.inference_mode
  forward_backward  input requires_grad, forward, logits[range(B), target].sum().backward(),
                    read x.grad
One JSON line goes to stdout, with peak_rss_mb (this process's ru_maxrss over the whole run,
torch's own libraries included) and setup_rss_mb (the same before the first pass);
human-readable lines go to stderr. --classviz-iterations and
--classviz-repeats are accepted for compatibility with bench_torch.py and ignored.

--save-weights FILE writes that same random initialisation as a state dict
(torch.save, zip format; netlens reads it with --weights) and exits without timing: netlens
bench uses it when the real weights are not in netlens's cache (they cannot be downloaded
offline), so that both engines time the same network.
"""

import argparse
import json
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import bench_inputs, bench_targets, log, peak_rss_mb, time_passes  # noqa: E402

SIZE = 224


def build(model):
    """torchvision's module with its default random initialisation (seed 0), eval, frozen:
    the zoo's squeezenet1_1, vgg16 and vit_b_16, or any torchvision classifier by name
    (resnet50, mobilenet_v3_large, efficientnet_b0, ... — to time beside the ONNX file
    exported from the same class)."""
    torch.manual_seed(0)
    net = torchvision.models.get_model(model, weights=None).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="squeezenet1_1")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=0.0,
                    help="seconds per measurement after which timing stops early (0: never)")
    ap.add_argument("--classviz-iterations", type=int, default=0, help="ignored")
    ap.add_argument("--classviz-repeats", type=int, default=0, help="ignored")
    ap.add_argument("--save-weights", metavar="FILE",
                    help="write the random initialisation as a state dict to FILE and exit")
    args = ap.parse_args()

    model = args.model.replace("-", "_")
    if model not in torchvision.models.list_models(torchvision.models):
        sys.exit(f"unknown model {args.model!r}; one of torchvision's classifiers, e.g. "
                 "squeezenet1_1, vgg16, vit_b_16, resnet50")
    torch.set_num_threads(args.threads)
    net = build(model)
    if args.save_weights:
        state = {k: v.contiguous() for k, v in net.state_dict().items()}
        torch.save(state, args.save_weights)
        log(f"{model}: random initialisation (seed 0, {len(state)} tensors) -> "
            f"{args.save_weights}")
        return
    setup_rss_mb = peak_rss_mb()  # torch imported, model built: before any pass

    results = []
    for b in (int(v) for v in args.batches.split(",")):
        x = bench_inputs(b, SIZE)
        target = bench_targets(b)

        results += time_passes(net, x, target, "module", args)

    print(json.dumps({
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "threads": args.threads,
        "model": model,
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "setup_rss_mb": setup_rss_mb,
        "peak_rss_mb": peak_rss_mb(),
        "results": results,
    }))


if __name__ == "__main__":
    main()
