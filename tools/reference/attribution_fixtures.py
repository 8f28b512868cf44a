#!/usr/bin/env python3
"""Fixtures for netlens' Guided Backprop, Guided Grad-CAM, Occlusion and RISE (issue 16).

    /work/venv-ref/bin/python tools/reference/attribution_fixtures.py [--time]

Reuses make_fixtures.py (reference EfficientNet-Lite0 with its real weights, the
preprocessing contract) and writes into crates/netlens/tests/fixtures/attribution/, every
map for the photo's top-1 class, computed in float64 (float32 .npy files):

    <stem>.gbp.npy              Captum GuidedBackprop, [3,224,224]. Lite0's activations are
                                nn.ReLU6, which Captum does not hook (it overrides nn.ReLU
                                only): each ReLU6 module is replaced by ReLU6AsReLU, an nn.ReLU
                                subclass computing relu6, so Captum's hook (relu of the
                                gradient ReLU6 passed back, i.e. grad * [0<x<6] * [grad>0])
                                applies to it. This is the rule netlens implements.
    <stem>.guided_gradcam.npy   Captum GuidedGradCam on the head activation (conv_head + BN +
                                ReLU6, tapped by an nn.Identity), interpolate_mode="bilinear"
                                (Captum's default is "nearest"; netlens upsamples bilinearly,
                                align_corners=False), reduced to max_c |.|, [224,224].
    <stem>.occlusion.npy        Captum Occlusion, window (3,32,32), stride (3,16,16), baseline
                                0 (netlens' defaults), channel 0 of the (channel-equal) result.
    chelsea.rise_grids.npy      RISE masks drawn here with NumPy (seed 0): 64 grids 7x7 of 0/1
    chelsea.rise_shifts.npy     (p = 0.5) and their [dy, dx] shifts in [0, 32); netlens reads
                                them, so the test checks everything but netlens' own generator.
    chelsea.rise.npy            RISE on those masks: grid upsampled to 256 with F.interpolate
                                (bilinear, align_corners=False), cropped at the shift, times the
                                normalized input, softmax probability of the class,
                                sum_i P_i M_i / (N p).
    manifest.json               classes, and how far PyTorch's own float32 Guided Backprop and
                                Guided Grad-CAM are from its float64 ones (the float32 noise
                                floor the tests allow for).

With --time, writes nothing and times each method per image instead, in float32 with two
threads (Captum, netlens' default settings; RISE with 1000 masks, batches of 8), for
notes/issue-16-methods.md.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402

torch, np, F = mf.torch, mf.np, mf.F
from torch import nn  # noqa: E402

OUT = mf.FIXTURES / "attribution"
MODEL = "efficientnet_lite0"
SIZE = 224
STEMS = ["chelsea", "coffee"]
WINDOW, STRIDE = 32, 16
RISE_N, RISE_S, RISE_P = 64, 7, 0.5


class ReLU6AsReLU(nn.ReLU):
    """ReLU6, but an nn.ReLU as far as Captum's isinstance check is concerned."""

    def forward(self, x):
        return F.relu6(x)


class Wrapped(nn.Module):
    """Lite0 with its head activation tapped by a module of its own (Captum's layer)."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.head = nn.Identity()

    def forward(self, x):
        a = self.head(self.net.extract_features(x))
        return self.net._fc(self.net._dropout(self.net._avg_pooling(a).flatten(1)))


def model(dtype):
    net, digest = mf.build_model(MODEL, dtype)
    swapped = 0
    for m in net.modules():
        if isinstance(getattr(m, "_swish", None), nn.ReLU6):
            m._swish = ReLU6AsReLU()
            swapped += 1
    assert swapped > 1, swapped
    return Wrapped(net).eval(), digest


def gbp(w, x, cls):
    from captum.attr import GuidedBackprop
    return GuidedBackprop(w).attribute(x, target=cls)[0].detach()


def guided_gradcam(w, x, cls):
    from captum.attr import GuidedGradCam
    a = GuidedGradCam(w, w.head).attribute(x, target=cls, interpolate_mode="bilinear")
    return a[0].detach().abs().amax(0)


def occlusion(w, x, cls):
    from captum.attr import Occlusion
    a = Occlusion(w).attribute(x, target=cls, sliding_window_shapes=(3, WINDOW, WINDOW),
                               strides=(3, STRIDE, STRIDE), baselines=0.0,
                               perturbations_per_eval=16)
    return a[0, 0].detach()


def rise_masks(n, s, p, size, seed=0):
    rng = np.random.default_rng(seed)
    cell = -(-size // s)
    grids = (rng.random((n, s, s)) < p).astype(np.float32)
    shifts = rng.integers(0, cell, size=(n, 2)).astype(np.int64)
    return grids, shifts, cell


def rise(w, x, cls, grids, shifts, cell, p, batch=16):
    s = grids.shape[1]
    up = F.interpolate(torch.from_numpy(grids)[:, None].to(x.dtype), size=((s + 1) * cell,) * 2,
                       mode="bilinear", align_corners=False)[:, 0]
    masks = torch.stack([up[i, dy:dy + SIZE, dx:dx + SIZE] for i, (dy, dx) in enumerate(shifts)])
    sal = torch.zeros(SIZE, SIZE, dtype=x.dtype)
    with torch.no_grad():
        for k in range(0, len(masks), batch):
            m = masks[k:k + batch]
            probs = torch.softmax(w(x * m[:, None]), dim=1)[:, cls]
            sal += (probs[:, None, None] * m).sum(0)
    return sal / (len(masks) * p)


def rel_l2(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time", action="store_true", help="only time each method per image")
    args = ap.parse_args()
    torch.set_num_threads(2)
    w32, digest = model(torch.float32)
    if args.time:
        return timing(w32)
    w64, _ = model(torch.float64)
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {"model": MODEL, "torch_version": torch.__version__, "weights_sha256": digest,
                "window": WINDOW, "stride": STRIDE, "rise": {"n": RISE_N, "s": RISE_S,
                                                             "p": RISE_P}, "photos": []}
    grids, shifts, cell = rise_masks(RISE_N, RISE_S, RISE_P, SIZE)
    for stem in STEMS:
        pixels = mf.preprocess(mf.REPO / "assets" / "photos" / mf.PHOTO_FILES[stem], SIZE)
        x = mf.normalize(pixels)
        x32 = x.float()
        with torch.no_grad():
            cls = int(torch.argmax(w64(x)[0]))
        entry = {"stem": stem, "class": cls, "torch_f32_rel_l2": {}}
        kinds = {"gbp": gbp, "guided_gradcam": guided_gradcam, "occlusion": occlusion}
        if stem == "chelsea":
            mf.save(OUT / f"{stem}.rise_grids.npy", grids)
            mf.save(OUT / f"{stem}.rise_shifts.npy", shifts)
            kinds["rise"] = lambda w, x, c: rise(w, x, c, grids, shifts, cell, RISE_P)
        for kind, fn in kinds.items():
            want = fn(w64, x, cls)
            mf.save(OUT / f"{stem}.{kind}.npy", want.numpy().astype(np.float32))
            if kind in ("gbp", "guided_gradcam"):
                err = rel_l2(fn(w32, x32, cls), want)
                entry["torch_f32_rel_l2"][kind] = err
                mf.log(f"{stem} {kind}: PyTorch float32 vs float64 rel L2 {err:.2e}")
        manifest["photos"].append(entry)
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(mf.REPO)}")


def timing(w32):
    g, sh, c = rise_masks(1000, RISE_S, RISE_P, SIZE)
    for stem in STEMS:
        pixels = mf.preprocess(mf.REPO / "assets" / "photos" / mf.PHOTO_FILES[stem], SIZE)
        x32 = mf.normalize(pixels).float()
        with torch.no_grad():
            cls = int(torch.argmax(w32(x32)[0]))
        for kind, fn in [("gbp", gbp), ("guided_gradcam", guided_gradcam),
                         ("occlusion", occlusion),
                         ("rise1000", lambda w, x, k: rise(w, x, k, g, sh, c, RISE_P, 8))]:
            t0 = time.perf_counter()
            fn(w32, x32, cls)
            print(f"time {stem} {kind}: {time.perf_counter() - t0:.2f} s (2 threads)")


if __name__ == "__main__":
    main()
