#!/usr/bin/env python3
"""Classify PNGs (e.g. netlens fooling images) with the PyTorch reference EfficientNet-Lite.

    python3 tools/reference/adversarial_check.py [--model efficientnet_lite0] [--target 6]
        [--dtype float32|float64] IMAGE...

Each image goes through make_fixtures.preprocess (an S x S image is left alone), normalize,
and the reference nn.Module. Prints one line per image (top-1 label and probability, and the
target's probability when --target is given) and one JSON line with everything to stdout.
Exit status 1 when --target is given and some image is not classified as it.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402

torch = mf.torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("images", nargs="+")
    ap.add_argument("--model", default="efficientnet_lite0", choices=list(mf.MODELS))
    ap.add_argument("--target", type=int, default=None, help="class index every image should be")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--find-links", action="append", default=[])
    args = ap.parse_args()

    dtype = getattr(torch, args.dtype)
    net, _ = mf.build_model(args.model, dtype, args.find_links)
    size = mf.MODELS[args.model][0]
    labels = mf.load_labels()
    rows = []
    for path in args.images:
        pixels = mf.preprocess(path, size)
        with torch.no_grad():
            probs = torch.softmax(net(mf.normalize(pixels, dtype)).double(), dim=1)[0]
        top1 = int(torch.argmax(probs))
        row = {"image": path, "top1": top1, "label": labels[top1] if labels else None,
               "prob": float(probs[top1])}
        if args.target is not None:
            row["target_prob"] = float(probs[args.target])
            row["is_target"] = top1 == args.target
        rows.append(row)
        extra = f"  target {args.target}: {row['target_prob']:.4f}" if args.target is not None else ""
        print(f"{path}: {top1} {row['label']} {row['prob']:.4f}{extra}", file=sys.stderr)
    print(json.dumps({"model": args.model, "dtype": args.dtype,
                      "torch_version": torch.__version__, "results": rows}))
    if args.target is not None and not all(r["is_target"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
