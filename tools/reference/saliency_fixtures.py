#!/usr/bin/env python3
"""Write the PyTorch saliency fixtures netlens' saliency tests compare against.

    python3 tools/reference/saliency_fixtures.py

Reuses make_fixtures.py (wheels, reference EfficientNet-Lite0 in float64, the preprocessing
contract) and writes into crates/netlens/tests/fixtures/saliency/ (float32 [224,224] maps,
all for the model's top-1 class on the photo, everything computed in float64):

    <stem>.gxi.npy       gradient x input: (grad * x).sum(channels), x the normalized input
                         (chelsea, coffee, motorcycle_left)
    <stem>.saliency.npy  CS231n compute_saliency_maps: grad.abs().amax(channels) (motorcycle_left)
    <stem>.gradcam.npy   Grad-CAM on the head activation (conv_head+BN+ReLU6): weights = spatial
                         mean of d score / d A, relu(sum_k w_k A_k), F.interpolate bilinear,
                         align_corners=False, to 224 (motorcycle_left)
    <stem>.ig16.npy      Integrated Gradients, black baseline (pixel 0 -> -127/128), summed over
                         channels, 16 gradients placed by netlens' adaptive trapezoid rule (9
                         uniform points, then rounds bisecting the 4 intervals with the largest
                         trapezoid error |(s_p + s_q)(q - p)/2 - (F_q - F_p)|, s = g.(x - x'))
                         (coffee)
    manifest.json        classes and the IG completeness gap

chelsea/coffee vanilla and Grad-CAM maps are in ../efficientnet_lite0/ (make_fixtures.py).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402

torch, np, F = mf.torch, mf.np, mf.F
OUT = mf.FIXTURES / "saliency"
MODEL = "efficientnet_lite0"
SIZE = 224


def grad_of_score(net, x, cls):
    xg = x.clone().requires_grad_(True)
    net(xg)[0, cls].backward()
    return xg.grad[0]


def gradcam(net, x, cls):
    a = net.extract_features(x).detach().requires_grad_(True)
    logits = net._fc(net._dropout(net._avg_pooling(a).flatten(1)))
    logits[0, cls].backward()
    w = a.grad.mean(dim=(2, 3))
    cam = torch.relu((w[:, :, None, None] * a).sum(dim=1))[0]
    return F.interpolate(cam[None, None], size=(SIZE, SIZE), mode="bilinear",
                         align_corners=False)[0, 0].detach()


def integrated_gradients(net, x, cls, steps, initial=9, round_size=4):
    """netlens' adaptive-trapezoid IG (see integrated_gradients.rs), in float64."""
    base = torch.full_like(x, (0.0 - 127.0) / 128.0)
    d = x - base

    def evaluate(alphas):
        pts = torch.cat([base + float(a) * d for a in alphas]).requires_grad_(True)
        scores = net(pts)[:, cls]
        scores.sum().backward()
        g = pts.grad
        return [(float(a), float(f), float((gk * d[0]).sum()), gk)
                for a, f, gk in zip(alphas, scores.detach(), g)]

    n0 = min(initial, steps)
    pts = evaluate([k / (n0 - 1) for k in range(n0)])
    used = n0
    while used < steps:
        errs = [(abs(0.5 * (p[2] + q[2]) * (q[0] - p[0]) - (q[1] - p[1])), k)
                for k, (p, q) in enumerate(zip(pts[:-1], pts[1:]))]
        errs.sort(key=lambda e: (-e[0], e[1]))
        take = min(round_size, steps - used)
        mids = [0.5 * (pts[k][0] + pts[k + 1][0]) for _, k in errs[:take]]
        pts = sorted(pts + evaluate(mids), key=lambda p: p[0])
        used += take
    total = torch.zeros_like(x[0])
    for p, q in zip(pts[:-1], pts[1:]):
        total += 0.5 * (q[0] - p[0]) * (p[3] + q[3])
    attr = d[0] * total
    gap = pts[-1][1] - pts[0][1]
    return attr.sum(0), float(attr.sum()) - gap, gap


def main():
    torch.set_num_threads(1)
    net, digest = mf.build_model(MODEL, torch.float64)
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {"model": MODEL, "torch_version": torch.__version__, "weights_sha256": digest,
                "maps": []}

    def save(stem, kind, arr, cls, **extra):
        mf.save(OUT / f"{stem}.{kind}.npy", arr.numpy().astype(np.float32))
        manifest["maps"].append({"stem": stem, "kind": kind, "class": cls, **extra})

    for stem in ["chelsea", "coffee", "motorcycle_left"]:
        pixels = mf.preprocess(mf.REPO / "assets" / "photos" / mf.PHOTO_FILES[stem], SIZE)
        x = mf.normalize(pixels)
        with torch.no_grad():
            cls = int(torch.argmax(net(x)[0]))
        g = grad_of_score(net, x, cls)
        save(stem, "gxi", (g * x[0]).sum(0), cls)
        if stem == "motorcycle_left":
            save(stem, "saliency", g.abs().amax(0), cls)
            save(stem, "gradcam", gradcam(net, x, cls), cls)
        if stem == "coffee":
            ig, delta, gap = integrated_gradients(net, x, cls, 16)
            save(stem, "ig16", ig, cls, steps=16, baseline="black", delta=delta, gap=gap)
            mf.log(f"{stem}: IG16 completeness delta {delta:.4g} of gap {gap:.4g}")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {len(manifest['maps'])} maps to {OUT.relative_to(mf.REPO)}")


if __name__ == "__main__":
    main()
