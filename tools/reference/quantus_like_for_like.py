#!/usr/bin/env python3
"""Quantus's MaxSensitivity and MPRT given netlens's perturbations and re-drawn weights, for
`crates/netlens/tests/metrics_quantus.rs`.

    python3 -m pip install quantus torch numpy scipy
    python3 tools/reference/quantus_like_for_like.py [PART...]

PART is max_sensitivity, mprt_cascade, mprt_independent or float64 (default: all four); each
part is merged into the JSON as soon as it is done, so parts can run in separate processes.

Quantus draws its own noise (MaxSensitivity: `batch_uniform_noise`) and re-draws layers with
PyTorch's `reset_parameters` (MPRT), so its numbers could not be netlens's. Here both sides get
the same randomness from one closed form computed in integer and float64 arithmetic (identical
in NumPy and Rust):

  unit(key)     splitmix64(key) >> 11, times 2^-53: uniform in [0, 1);
  noise         max-sensitivity draw k (0-based) of an image's flat CHW value j:
                float32(R * (2 * unit((k + 1) * 2^32 + j) - 1)), R = 0.2 (Quantus's default
                lower_bound), uniform in the L-infinity ball as `batch_uniform_noise`;
  re-draw       the tensor t (0 weight, 1 bias; BatchNorm: scale, shift) of the layer at place
                L counted from the logits (0 = the fc layer): with the trained tensor's mean m
                and population standard deviation s (float64),
                float32(m + s * sqrt(3) * (2 * unit((2L + t + 1) * 2^32 + j) - 1)): uniform
                with the trained tensor's mean and spread (netlens's own re-draw is a ±2σ
                truncated normal from a seeded generator, which NumPy cannot replay).

The network is the reference EfficientNet-Lite0 with its real weights (make_fixtures.py, float32),
the photos the Lite0 fixtures' preprocessed chelsea, coffee and rocket, the class the top-1, the
explanation netlens's `vanilla`: max over channels of |d logit / d x| (CS231n).

  max_sensitivity   quantus.MaxSensitivity(nr_samples=10, lower_bound=0.2, abs=False,
                    normalise=False, perturb_func=the closed-form noise above): per photo, the
                    max over the 10 draws of ||a(x+d) - a(x)||_F / ||a(x)||_F (its defaults:
                    `difference`, `fro_norm` both sides);
  mprt_cascade      quantus.MPRT(layer_order="top_down", its defaults: Spearman of the abs maps
                    normalised by their max) with each module's `reset_parameters` replaced by
                    the closed-form re-draw above (BatchNorm's running statistics stay, as in
                    netlens; PyTorch's would reset them): per layer name, per photo;
  mprt_independent  the same with layer_order="independent";
  float64           Spearman of the same maps (same re-drawn weights) from the network in
                    float64, at the steps netlens reports (top 1, 24, 49, 74, 99; cascade and
                    independent), under "cascade" / "independent" and the layer's name: how far
                    float32 rounding alone moves rho (a re-drawn network's gradient flips ReLU6
                    kinks: PyTorch float32 and float64 differ by up to 5.5e-3 here);
  layers            per place from the logits: the module name and its learned tensors' sizes,
                    so the test checks that netlens counts the same 99 layers in the same order.

Writes crates/netlens/tests/fixtures/metrics/quantus_like_for_like.json (with Quantus's runtimes).
"""

import json
import math
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_fixtures  # noqa: E402

import quantus  # noqa: E402

FIX = make_fixtures.FIXTURES / "metrics"
LITE0 = make_fixtures.FIXTURES / "efficientnet_lite0"
STEMS = ["chelsea", "coffee", "rocket"]
RADIUS = 0.2
SAMPLES = 10
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def unit(keys):
    """splitmix64 of uint64 keys, as uniform float64 in [0, 1) (wrapping uint64 arithmetic)."""
    z = keys.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def noise(k, n):
    j = np.arange(n, dtype=np.uint64)
    u = unit(np.uint64(k + 1) * np.uint64(1 << 32) + j)
    return (RADIUS * (2.0 * u - 1.0)).astype(np.float32)


def redraw(layer, tensor, values):
    v = values.detach().double().cpu().numpy().ravel()
    m, s = v.mean(), v.std()
    if not (s > 0.0 and math.isfinite(s)):
        return values.clone()
    j = np.arange(v.size, dtype=np.uint64)
    u = unit(np.uint64(2 * layer + tensor + 1) * np.uint64(1 << 32) + j)
    new = (m + s * math.sqrt(3.0) * (2.0 * u - 1.0)).astype(np.float32)
    return torch.from_numpy(new.reshape(values.shape)).to(values.dtype)


def closed_form_reset(self):
    """Replaces `reset_parameters`: the closed-form re-draw of weight then bias."""
    with torch.no_grad():
        for t, p in enumerate(q for q in (self.weight, getattr(self, "bias", None))
                              if q is not None):
            p.copy_(redraw(self._netlens_layer, t, p))


def vanilla(model, inputs, targets, **_):
    """netlens's `vanilla`: max over channels of |d logit[target] / d x|."""
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32).clone().requires_grad_(True)
    logits = model(x)
    logits[torch.arange(len(x)), torch.as_tensor(np.asarray(targets))].sum().backward()
    return x.grad.abs().amax(1).detach().numpy()


class Noise:
    """Quantus's perturb_func: call k returns arr + the closed-form draw k of every image."""

    def __init__(self):
        self.k = 0

    def __call__(self, arr, indices, **_):
        assert indices.shape == arr.shape, "MaxSensitivity perturbs every value"
        d = noise(self.k, arr.shape[1])
        self.k += 1
        return (arr + d[None, :]).astype(arr.dtype)


def write(key, value, seconds, meta):
    """Merge one part into the JSON (re-read first: other processes may have written)."""
    path = FIX / "quantus_like_for_like.json"
    out = json.loads(path.read_text()) if path.exists() else {"seconds": {}}
    out.update(meta)
    out[key] = value
    out["seconds"][key] = round(seconds, 2)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", key, "to", path)


def spearman_float64(net, modules, x, y):
    """rho of the float64 network's maps at netlens's steps, both randomization orders."""
    import copy
    import scipy.stats

    def maps(model):
        xt = torch.from_numpy(x).double().requires_grad_(True)
        model(xt)[torch.arange(len(x)), torch.from_numpy(y)].sum().backward()
        return xt.grad.abs().amax(1).detach().numpy().reshape(len(x), -1)

    n = len(modules)
    steps = sorted({1, n // 4, n // 2, 3 * n // 4, n})
    base = copy.deepcopy(net).double()
    original = maps(base)
    out = {"cascade": {}, "independent": {}}
    for mode in out:
        for k in steps:
            r = copy.deepcopy(base)
            rm = [m for _, m in r.named_modules() if hasattr(m, "reset_parameters")][::-1]
            for m in (rm[:k] if mode == "cascade" else [rm[k - 1]]):
                m.reset_parameters()
            a = maps(r)
            name = modules[::-1][k - 1][0]
            out[mode][name] = [float(scipy.stats.spearmanr(o, b)[0])
                               for o, b in zip(original, a)]
            print("float64", mode, k, name, out[mode][name], flush=True)
    return out


def main():
    parts = sys.argv[1:] or ["max_sensitivity", "mprt_cascade", "mprt_independent", "float64"]
    torch.set_num_threads(1 if len(parts) == 1 else 2)
    net, _ = make_fixtures.build_model("efficientnet_lite0", dtype=torch.float32)
    xs = []
    for stem in STEMS:
        pixels = np.load(LITE0 / f"{stem}.pixels.npy")
        xs.append(((pixels.astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1).copy())
    x = np.stack(xs)
    with torch.no_grad():
        y = net(torch.from_numpy(x)).argmax(1).numpy()
    modules = [(n, m) for n, m in net.named_modules() if hasattr(m, "reset_parameters")]
    layers = [{"name": n, "sizes": [p.numel() for p in (m.weight, getattr(m, "bias", None))
                                    if p is not None]} for n, m in modules[::-1]]
    meta = {"stems": STEMS, "targets": y.tolist(), "radius": RADIUS, "samples": SAMPLES,
            "quantus": quantus.__version__, "torch": torch.__version__, "layers": layers}

    if "max_sensitivity" in parts:
        t = time.time()
        ms = quantus.MaxSensitivity(nr_samples=SAMPLES, lower_bound=RADIUS, abs=False,
                                    normalise=False, perturb_func=Noise(), disable_warnings=True)
        v = ms(model=net, x_batch=x, y_batch=y, a_batch=None, explain_func=vanilla,
               device="cpu")
        print("max-sensitivity", [float(s) for s in v])
        write("max_sensitivity", [float(s) for s in v], time.time() - t, meta)

    for i, (name, m) in enumerate(modules):
        m._netlens_layer = len(modules) - 1 - i
        m.reset_parameters = types.MethodType(closed_form_reset, m)
    for order, key in [("top_down", "mprt_cascade"), ("independent", "mprt_independent")]:
        if key not in parts:
            continue
        t = time.time()
        mprt = quantus.MPRT(layer_order=order, disable_warnings=True)
        res = mprt(model=net, x_batch=x, y_batch=y, a_batch=None, explain_func=vanilla,
                   device="cpu", batch_size=len(STEMS))
        # top_down: from the logits; independent: Quantus walks the modules input first.
        if sorted(list(res)[1:]) != sorted(n for n, _ in modules):
            print("warning: Quantus's layers differ:", list(res)[:5])
        value = {k: [float(s) for s in v] for k, v in res.items()}
        print(key, len(res) - 1, "layers; first", list(res)[1], value[list(res)[1]])
        write(key, value, time.time() - t, meta)
    if "float64" in parts:
        t = time.time()
        write("float64", spearman_float64(net, modules, x, y), time.time() - t, meta)
    # The trained weights are untouched (the generator re-draws a deep copy).
    with torch.no_grad():
        assert (net(torch.from_numpy(x)).argmax(1).numpy() == y).all()


if __name__ == "__main__":
    main()
