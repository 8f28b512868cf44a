#!/usr/bin/env python3
"""Quantus (and plain PyTorch) on the maps netlens wrote, for `crates/netlens/tests/metrics.rs`.

    python3 -m pip install quantus torch numpy scipy captum scikit-image
    cargo test --release -p netlens --test metrics -- --ignored write_metric_fixtures
    python3 tools/reference/quantus_reference.py [--extra-only]

Reads the maps in crates/netlens/tests/fixtures/metrics/<stem>.<method>.npy (float32 [224,224],
written by netlens on the Lite0 fixtures' preprocessed photos <stem>.pixels.npy) and writes
expected.json beside them:

  sparseness, complexity   quantus.Sparseness / quantus.Complexity with their defaults
                           (abs, normalise by max), float64 maps;
  pixel_flipping           quantus.PixelFlipping on the reference EfficientNet-Lite0 (float32,
                           the code and weights of make_fixtures.py), softmax of the top-1
                           class, perturb_baseline = normalized black (-127/128),
                           features_in_step = 3 * STEP channel values (STEP pixels; its
                           check that this divides H*W is skipped, see PixelFlipping below);
  deletion_auc_torch       the area of netlens's protocol (Petsiuk et al. 2018: the
                           unperturbed point first, trapezoid on a uniform grid) over the
                           curve computed here with PyTorch;
  insertion_torch          insertion onto a blurred canvas (scipy.ndimage.gaussian_filter,
                           sigma 5, truncate 4, reflect) in PyTorch, the same order and steps.

  road_imputation          Quantus's `noisy_linear_imputation` (the paper's imputer) with noise
                           0 on chelsea's vanilla map, MoRF 30 % and LeRF 90 %: the mean of the
                           filled values and 64 probed values;
  road_morf / road_lerf    ROAD curves with noise 0 at the paper's 10, 20, ..., 90 %: pixels
                           ordered by |map| (ties by index), imputed by Quantus's function, the
                           softmax probability of the class and whether it is still top-1, per
                           percentage (quantus.ROAD itself cannot run on RGB images: it orders
                           the 3*H*W channel values but imputes H*W pixels; see road_quantus);
  infidelity_captum        captum.metrics.infidelity (normalize=True, logits of the class) with
                           8 fixed perturbations I_k[j] = 0.2 * (((j*7919 + (k+1)*104729) % 2003)
                           / 2002 - 0.5) (integer arithmetic, reproducible in Rust), the map
                           broadcast over the channels;
  ssim / hog               skimage.metrics.structural_similarity(data_range=1) and the Pearson
                           correlation of skimage.feature.hog (9 orientations, 8x8 cells, 3x3
                           blocks, L2-Hys) of |vanilla| and |gxi| scaled to [0, 1], as Adebayo et
                           al. compare maps.

Max-sensitivity and the randomization test draw their own randomness (Quantus's uniform noise,
PyTorch's `reset_parameters`): quantus_like_for_like.py runs Quantus's MaxSensitivity and MPRT
with the same closed-form noise and re-drawn weights netlens is given in
crates/netlens/tests/metrics_quantus.rs.
"""

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import scipy.ndimage
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_fixtures  # noqa: E402

import quantus  # noqa: E402

FIX = make_fixtures.FIXTURES / "metrics"
LITE0 = make_fixtures.FIXTURES / "efficientnet_lite0"
STEMS = ["chelsea", "coffee"]
METHODS = ["vanilla", "gxi", "gradcam"]
STEP = 1792
BLACK = -127.0 / 128.0


class PixelFlipping(quantus.PixelFlipping):
    """Quantus's PixelFlipping with one assertion skipped: it checks that features_in_step
    divides H*W, while the metric perturbs the 3*H*W channel values of the map broadcast over
    the channels. Whole pixels (3*STEP values a step) need the check off: 3 never divides
    224*224."""

    def custom_preprocess(self, **kwargs):
        return None


def order(mag):
    """Pixel indices by magnitude descending, ties by index (as netlens)."""
    return np.lexsort((np.arange(mag.size), -mag.ravel().astype(np.float64)))


def probs(net, xs, target):
    with torch.no_grad():
        out = []
        for i in range(0, len(xs), 8):
            logits = net(torch.from_numpy(np.stack(xs[i:i + 8])).float())
            out.extend(torch.softmax(logits.double(), 1)[:, target].tolist())
        return out


def curve(net, x, mag, target, start, finish):
    plane = mag.size
    ordr = order(mag)
    n_steps = math.ceil(plane / STEP)
    cur = start.copy().reshape(3, -1)
    fin = finish.reshape(3, -1)
    xs = [cur.reshape(x.shape).copy()]
    for k in range(1, n_steps + 1):
        idx = ordr[(k - 1) * STEP:min(k * STEP, plane)]
        cur[:, idx] = fin[:, idx]
        xs.append(cur.reshape(x.shape).copy())
    return probs(net, xs, target)


def auc(s):
    s = np.asarray(s)
    return float((s.sum() - s[0] / 2 - s[-1] / 2) / (len(s) - 1))


PERCENTAGES = [10, 20, 30, 40, 50, 60, 70, 80, 90]


def road_order(mag, morf):
    """Pixel indices, most (MoRF) or least (LeRF) relevant first, ties by index (as netlens)."""
    key = -mag.ravel().astype(np.float64) if morf else mag.ravel().astype(np.float64)
    return np.lexsort((np.arange(mag.size), key))


def imputed(x, ordr, p):
    from quantus.functions.perturb_func import noisy_linear_imputation
    k = int(np.floor(ordr.size * p / 100))
    return noisy_linear_imputation(arr=x.astype(np.float64), indices=ordr[:k], noise=0.0)


def road_curve(net, x, mag, target, morf):
    ordr = road_order(mag, morf)
    xs = [imputed(x, ordr, p).astype(np.float32) for p in PERCENTAGES]
    with torch.no_grad():
        logits = net(torch.from_numpy(np.stack(xs)).float())
    prob = torch.softmax(logits.double(), 1)[:, target].tolist()
    hits = (logits.argmax(1) == target).tolist()
    return prob, hits


def perturbations(k_count, n):
    j = np.arange(n, dtype=np.int64)
    return np.stack([(0.2 * (((j * 7919 + (k + 1) * 104729) % 2003) / 2002.0 - 0.5))
                     .astype(np.float32) for k in range(k_count)])


def unit(v):
    v = np.abs(v).astype(np.float64)
    return (v - v.min()) / (v.max() - v.min())


def extra(net, out, timing):
    """ROAD, infidelity, SSIM and HOG (see the module docstring)."""
    import captum.metrics
    import skimage.feature
    import skimage.metrics
    for k in ["road_imputation", "road_morf", "road_lerf", "infidelity_captum", "ssim", "hog"]:
        out[k] = {}
    for stem in STEMS:
        pixels = np.load(LITE0 / f"{stem}.pixels.npy")
        x = ((pixels.astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1).copy()
        with torch.no_grad():
            target = int(net(torch.from_numpy(x[None])).argmax())
        for m in METHODS:
            key = f"{stem}.{m}"
            a = np.load(FIX / f"{key}.npy")
            mag = np.abs(a)
            t = time.time()
            for morf, name in [(True, "road_morf"), (False, "road_lerf")]:
                prob, hits = road_curve(net, x, mag, target, morf)
                out[name][key] = {"probabilities": prob, "hits": hits}
            timing["road (imputation + 18 forward passes)"] = timing.get(
                "road (imputation + 18 forward passes)", 0.0) + time.time() - t
            t = time.time()
            pert = perturbations(8, x.size).reshape(8, *x.shape)

            def perturb(inputs):
                p = torch.from_numpy(pert[:inputs.shape[0]])
                return p, inputs - p
            attr = torch.from_numpy(np.broadcast_to(a, x.shape).copy()[None])
            v = captum.metrics.infidelity(lambda z: net(z), perturb, torch.from_numpy(x[None]),
                                          attr, target=target, n_perturb_samples=8,
                                          normalize=True)
            out["infidelity_captum"][key] = float(v[0])
            timing["infidelity (captum, 8 samples)"] = timing.get(
                "infidelity (captum, 8 samples)", 0.0) + time.time() - t
            print(f"{key}: ROAD MoRF {np.mean(out['road_morf'][key]['probabilities']):.5f}, "
                  f"LeRF {np.mean(out['road_lerf'][key]['probabilities']):.5f}, "
                  f"infidelity {float(v[0]):.6g}")
        mag = np.abs(np.load(FIX / f"{stem}.vanilla.npy"))
        for morf, p in [(True, 30), (False, 90)]:
            ordr = road_order(mag, morf)
            t = time.time()
            im = imputed(x, ordr, p)
            timing["one imputation"] = time.time() - t
            k = int(np.floor(ordr.size * p / 100))
            filled = np.concatenate([im.reshape(3, -1)[c, ordr[:k]] for c in range(3)])
            probe = np.linspace(0, filled.size - 1, 64).astype(int)
            out["road_imputation"][f"{stem}.{'morf' if morf else 'lerf'}{p}"] = {
                "mean": float(filled.mean()), "probe_index": probe.tolist(),
                "probe": filled[probe].tolist()}
        a, b = unit(np.load(FIX / f"{stem}.vanilla.npy")), unit(np.load(FIX / f"{stem}.gxi.npy"))
        out["ssim"][stem] = float(skimage.metrics.structural_similarity(a, b, data_range=1.0))
        hog = lambda z: skimage.feature.hog(z, orientations=9, pixels_per_cell=(8, 8),
                                            cells_per_block=(3, 3), block_norm="L2-Hys")
        out["hog"][stem] = float(np.corrcoef(hog(a), hog(b))[0, 1])
        print(f"{stem}: SSIM {out['ssim'][stem]:.6f}, HOG {out['hog'][stem]:.6f}")
    # quantus.ROAD on an RGB image, to record why it is not called.
    try:
        quantus.ROAD(noise=0.0, percentages=[10], disable_warnings=True)(
            model=net, x_batch=x[None], y_batch=np.array([target]),
            a_batch=mag[None, None].astype(np.float32), device="cpu")
        out["road_quantus"] = "ran"
    except Exception as e:  # noqa: BLE001
        out["road_quantus"] = f"{type(e).__name__}: {e}"


def main():
    t0 = time.time()
    net, _ = make_fixtures.build_model("efficientnet_lite0", dtype=torch.float32)
    if "--extra-only" in sys.argv:
        # Keep the first pass's values; (re)compute ROAD, infidelity, SSIM and HOG.
        out = json.loads((FIX / "expected.json").read_text())
        timing = {}
        extra(net, out, timing)
        out["meta"]["extra_seconds"] = {k: round(v, 2) for k, v in timing.items()}
        (FIX / "expected.json").write_text(json.dumps(out, indent=1) + "\n")
        print("wrote", FIX / "expected.json", out["meta"])
        return
    out = {k: {} for k in ["sparseness", "complexity", "pixel_flipping", "deletion_auc_torch",
                           "insertion_torch", "insertion_auc_torch"]}
    timing = {}
    for stem in STEMS:
        pixels = np.load(LITE0 / f"{stem}.pixels.npy")
        x = ((pixels.astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1).copy()
        with torch.no_grad():
            target = int(net(torch.from_numpy(x[None])).argmax())
        blurred = scipy.ndimage.gaussian_filter(x.astype(np.float64), sigma=(0, 5, 5),
                                                truncate=4.0, mode="reflect").astype(np.float32)
        for m in METHODS:
            key = f"{stem}.{m}"
            a = np.load(FIX / f"{key}.npy")
            a64 = a.astype(np.float64)[None, None]
            x64 = x.astype(np.float64)[None]
            t = time.time()
            out["sparseness"][key] = float(quantus.Sparseness(disable_warnings=True)(
                model=None, x_batch=x64, y_batch=np.array([target]), a_batch=a64.copy(),
                device="cpu")[0])
            out["complexity"][key] = float(quantus.Complexity(disable_warnings=True)(
                model=None, x_batch=x64, y_batch=np.array([target]), a_batch=a64.copy(),
                device="cpu")[0])
            timing.setdefault("sparseness+complexity", 0.0)
            timing["sparseness+complexity"] += time.time() - t
            t = time.time()
            pf = PixelFlipping(features_in_step=3 * STEP, perturb_baseline=BLACK,
                                       abs=True, normalise=False, disable_warnings=True,
                                       return_auc_per_sample=False)
            res = pf(model=net, x_batch=x[None], y_batch=np.array([target]),
                     a_batch=np.abs(a)[None, None].astype(np.float32), device="cpu",
                     softmax=True)
            out["pixel_flipping"][key] = [float(v) for v in res[0]]
            timing.setdefault("pixel_flipping", 0.0)
            timing["pixel_flipping"] += time.time() - t
            mag = np.abs(a)
            black = np.full_like(x, BLACK)
            dele = curve(net, x, mag, target, x, black)
            out["deletion_auc_torch"][key] = auc(dele)
            ins = curve(net, x, mag, target, blurred, x)
            out["insertion_torch"][key] = ins
            out["insertion_auc_torch"][key] = auc(ins)
            print(f"{key}: target {target}, sparseness {out['sparseness'][key]:.6f}, "
                  f"complexity {out['complexity'][key]:.6f}, deletion AUC {auc(dele):.5f} "
                  f"(Quantus curve max |diff| vs torch "
                  f"{max(abs(p - q) for p, q in zip(res[0], dele[1:])):.2e}), "
                  f"insertion AUC {auc(ins):.5f}")
    extra(net, out, timing)
    out["meta"] = {"step_pixels": STEP, "quantus": quantus.__version__,
                   "torch": torch.__version__, "seconds": {k: round(v, 2) for k, v in timing.items()},
                   "total_seconds": round(time.time() - t0, 1)}
    (FIX / "expected.json").write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", FIX / "expected.json", out["meta"])


if __name__ == "__main__":
    main()
