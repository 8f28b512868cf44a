#!/usr/bin/env python3
"""Classify netlens' class visualizations with PyTorch: the "read back by PyTorch" check.

    python3 tools/reference/synthesis_check.py IMAGE.png:CLASS [IMAGE.png:CLASS ...]
        [--model efficientnet_lite0] [--float64]

Each PNG is preprocessed by make_fixtures.py's contract (an S x S PNG is left alone), run
through the reference EfficientNet-Lite (make_fixtures.build_model, float32 unless --float64),
and reported as its top-1 class and the probability of CLASS. One JSON object per image goes
to stdout; the exit status is 1 if any image has p(CLASS) <= --threshold (0.9).
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
    ap.add_argument("images", nargs="+", metavar="IMAGE:CLASS")
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--float64", action="store_true")
    ap.add_argument("--threshold", type=float, default=0.9)
    args = ap.parse_args()
    dtype = torch.float64 if args.float64 else torch.float32
    net, _ = mf.build_model(args.model, dtype)
    size = mf.MODELS[args.model][0]
    ok = True
    for item in args.images:
        path, _, cls = item.rpartition(":")
        cls = int(cls)
        x = mf.normalize(mf.preprocess(path, size), dtype)
        with torch.inference_mode():
            p = torch.softmax(net(x), dim=1)[0]
        top1 = int(p.argmax())
        prob = float(p[cls])
        ok &= prob > args.threshold
        print(json.dumps({"image": path, "class": cls, "prob": round(prob, 6), "top1": top1,
                          "model": args.model, "dtype": str(dtype).replace("torch.", "")}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
