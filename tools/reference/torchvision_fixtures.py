#!/usr/bin/env python3
"""PyTorch/torchvision references for netlens's SqueezeNet 1.1, VGG16 and ViT-B/16.

    python3 tools/reference/torchvision_fixtures.py            # repository fixtures
    python3 tools/reference/torchvision_fixtures.py --full DIR # full-size checks (~1 GB, outside the repo)

Needs torch and torchvision (`pip install --no-deps torchvision==<the release matching the
installed torch>`). Every model is torchvision's own class, built with seeded random weights
(torchvision's initialisation leaves biases, the ViT head and its class token at zero, which
would hide loading mistakes, so every tensor is redrawn: weights ~ N(0, 2 / fan_in), biases
~ N(0, 0.1²), LayerNorm scales ~ 1 + N(0, 0.1²), class token and position embeddings
~ N(0, 0.1²)) and rounded to float16-representable values, so that they can be stored as
float16 without changing the reference. The model then runs in float64, eval mode.

Repository fixtures, in crates/netlens/tests/fixtures/torchvision/<name>/:
    weights.safetensors  float16   torchvision state-dict names
    pixels.npy           uint8     [224,224,3] the photo after Resize(256) + CenterCrop(224)
                                   (normalized as netlens does: see `normalize`)
    logits.npy           float64   [1000] float64 model on the normalized pixels
    grad.npy             float32   [3,224,224] d logits[top1] / d normalized input (float64)
    gradcam.npy          float32   [g,g] Grad-CAM of top1 at the model's CAM layer, before
                                   upsampling: relu(sum_c mean_ij(dy/dA) A), no normalization
    attn_cls.npy         float32   (ViT) [layers, heads, 197] attention probabilities of the
                                   class token's query in every block
    manifest.json
  squeezenet1_1       full size (1.24 M parameters); CAM layer features.12 (13x13)
  vgg16_tiny          VGG "D" layout, channels / 8, classifier 3136 -> 128 -> 128 -> 1000;
                      CAM layer features.29 (14x14)
  vit_b_16_tiny       torchvision VisionTransformer(224, 16, 2 layers, 4 heads, 64 wide, MLP
                      128); CAM layer encoder.layers.encoder_layer_1.ln_1 with pytorch-grad-cam's
                      reshape (class token dropped, 14x14). Block 1's MLP is stored under the
                      legacy names mlp.linear_1 / mlp.linear_2 (as in torchvision's published
                      vit_b_16 file), block 0's under mlp.0 / mlp.3: both must load.

--full DIR writes the same files for full-size squeezenet1_1, vgg16 and vit_b_16 (float32
weights) into DIR/<name>/ for `cargo test --release -p netlens --test parity_torchvision_full
-- --ignored` (NETLENS_TORCHVISION_FULL=DIR) and for `netlens bench --weights`.
"""

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms
from torchvision.models.vision_transformer import VisionTransformer
from torchvision.models.vgg import VGG, make_layers

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = REPO / "crates" / "netlens" / "tests" / "fixtures" / "torchvision"
PHOTOS = REPO / "assets" / "photos"

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

VGG_TINY = [8, 8, "M", 16, 16, "M", 32, 32, 32, "M", 64, 64, 64, "M", 64, 64, 64, "M"]


def vgg_tiny():
    net = VGG(make_layers(VGG_TINY), num_classes=1000, init_weights=False)
    net.classifier = torch.nn.Sequential(
        torch.nn.Linear(64 * 7 * 7, 128), torch.nn.ReLU(True), torch.nn.Dropout(),
        torch.nn.Linear(128, 128), torch.nn.ReLU(True), torch.nn.Dropout(),
        torch.nn.Linear(128, 1000),
    )
    return net


def vit_tiny():
    return VisionTransformer(image_size=224, patch_size=16, num_layers=2, num_heads=4,
                             hidden_dim=64, mlp_dim=128, num_classes=1000)


# name -> (constructor, photo, CAM layer, grid side, float16 weights)
MODELS = {
    "squeezenet1_1": (lambda: torchvision.models.squeezenet1_1(weights=None), "chelsea.png",
                      "features.12", 13),
    "vgg16_tiny": (vgg_tiny, "coffee.png", "features.29", 14),
    "vit_b_16_tiny": (vit_tiny, "grace_hopper.jpg", "encoder.layers.encoder_layer_1.ln_1", 14),
}
FULL = {
    "squeezenet1_1": MODELS["squeezenet1_1"],
    "vgg16": (lambda: torchvision.models.vgg16(weights=None), "coffee.png", "features.29", 14),
    "vit_b_16": (lambda: torchvision.models.vit_b_16(weights=None), "grace_hopper.jpg",
                 "encoder.layers.encoder_layer_11.ln_1", 14),
}


def randomize(net, seed):
    """Redraw every parameter (see the module docstring), float16-representable."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("class_token") or name.endswith("pos_embedding"):
                v = torch.randn(p.shape, generator=g) * 0.1
            elif p.dim() >= 2:
                fan_in = p[0].numel()
                v = torch.randn(p.shape, generator=g) * (2.0 / fan_in) ** 0.5
            elif ".ln" in name and name.endswith("weight"):
                v = 1.0 + 0.1 * torch.randn(p.shape, generator=g)
            else:
                v = 0.1 * torch.randn(p.shape, generator=g)
            p.copy_(v.half().float())
    return net


def state_dict(net):
    return {k: v.detach().float().contiguous() for k, v in net.state_dict().items()}


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------

def save_safetensors(path, tensors, dtype):
    """A minimal safetensors writer (format: u64 header length, JSON header, raw data)."""
    header, blobs, offset = {}, [], 0
    code = {"float16": "F16", "float32": "F32"}[dtype]
    for name in sorted(tensors):
        arr = tensors[name].numpy().astype(dtype)
        data = arr.tobytes(order="C")
        header[name] = {"dtype": code, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def pixels_of(photo):
    """torchvision's classification preprocessing up to the tensor: Resize(256), CenterCrop(224)."""
    img = Image.open(PHOTOS / photo).convert("RGB")
    img = transforms.CenterCrop(224)(transforms.Resize(256)(img))
    return np.asarray(img, dtype=np.uint8).copy()


def normalize(px):
    """ToTensor + Normalize(ImageNet) as netlens computes it, float32 (p - 255 mean) / (255 std),
    then widened to float64. It differs from torchvision's float64 (p / 255 - mean) / std by an
    ulp or so, but gives the reference exactly the input netlens feeds its own model, so that a
    ReLU or max-pool sitting on a kink cannot flip between the two on input rounding alone."""
    p = np.asarray(px, dtype=np.float32).transpose(2, 0, 1)
    mean = (np.array(MEAN, dtype=np.float32) * np.float32(255.0)).reshape(3, 1, 1)
    std = (np.array(STD, dtype=np.float32) * np.float32(255.0)).reshape(3, 1, 1)
    x = ((p - mean) / std).astype(np.float32)
    return torch.from_numpy(x.astype(np.float64)).unsqueeze(0)


def module(net, dotted):
    for part in dotted.split("."):
        net = getattr(net, part) if not part.isdigit() else net[int(part)]
    return net


def grad_cam(net, x, layer, target, vit):
    """pytorch-grad-cam's GradCAM at `layer` (ViT: reshape_transform drops the class token)."""
    store = {}

    def hook(_m, _i, out):
        out.retain_grad()
        store["a"] = out

    h = module(net, layer).register_forward_hook(hook)
    logits = net(x)
    h.remove()
    logits[0, target].backward()
    a, g = store["a"], store["a"].grad
    if vit:
        n, t, c = a.shape
        s = int(round((t - 1) ** 0.5))
        a = a[:, 1:, :].reshape(n, s, s, c).permute(0, 3, 1, 2)
        g = g[:, 1:, :].reshape(n, s, s, c).permute(0, 3, 1, 2)
    w = g.mean(dim=(2, 3), keepdim=True)
    return torch.relu((w * a).sum(dim=1))[0]


def class_attention(net, x):
    """Each block's attention probabilities of the class token's query, [layers, heads, T]."""
    inputs = []
    hooks = [blk.ln_1.register_forward_hook(lambda _m, _i, out: inputs.append(out))
             for blk in net.encoder.layers]
    with torch.no_grad():
        net(x)
        rows = [blk.self_attention(h, h, h, need_weights=True, average_attn_weights=False)[1][0, :, 0, :]
                for blk, h in zip(net.encoder.layers, inputs)]
    for h in hooks:
        h.remove()
    return torch.stack(rows).float().numpy()


def write(name, spec, out_dir, seed, dtype):
    build, photo, cam_layer, grid = spec
    torch.manual_seed(seed)
    net = randomize(build(), seed).eval()
    sd = state_dict(net)
    vit = name.startswith("vit")
    if name == "vit_b_16_tiny":  # block 1 under the legacy MLP names
        for kind in ("weight", "bias"):
            p = "encoder.layers.encoder_layer_1.mlp"
            sd[f"{p}.linear_1.{kind}"] = sd.pop(f"{p}.0.{kind}")
            sd[f"{p}.linear_2.{kind}"] = sd.pop(f"{p}.3.{kind}")
    d = out_dir / name
    d.mkdir(parents=True, exist_ok=True)
    save_safetensors(d / "weights.safetensors", sd, dtype)

    net = net.double()
    for p in net.parameters():
        p.requires_grad_(False)
    px = pixels_of(photo)
    x = normalize(px).requires_grad_(True)
    logits = net(x)
    top1 = int(logits[0].argmax())
    logits[0, top1].backward()
    grad = x.grad[0].float().numpy()
    cam = grad_cam(net, x.detach().requires_grad_(True), cam_layer, top1, vit).detach().float().numpy()
    assert cam.shape == (grid, grid), cam.shape
    np.save(d / "pixels.npy", px)
    np.save(d / "logits.npy", logits[0].detach().numpy())
    np.save(d / "grad.npy", grad)
    np.save(d / "gradcam.npy", cam)
    manifest = {
        "model": name, "photo": photo, "seed": seed, "top1": top1,
        "cam_layer": cam_layer, "weights_dtype": dtype,
        "parameters": sum(v.numel() for v in sd.values()),
        "torch": torch.__version__, "torchvision": torchvision.__version__,
        "preprocess": "PIL RGB -> Resize(256) -> CenterCrop(224) -> float32 (p - 255 mean) / (255 std)",
    }
    (d / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if vit:
        np.save(d / "attn_cls.npy", class_attention(net, x.detach()))
    log(f"{name}: top1 {top1} logit {float(logits[0, top1].detach()):.4f}, "
        f"{manifest['parameters'] / 1e6:.2f}M parameters -> {d}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", type=Path, help="write full-size references into this folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", help="comma-separated model names")
    args = ap.parse_args()
    specs, out, dtype = (FULL, args.full, "float32") if args.full else (MODELS, FIXTURES, "float16")
    names = args.only.split(",") if args.only else list(specs)
    for name in names:
        write(name, specs[name], out, args.seed, dtype)


if __name__ == "__main__":
    main()
