"""netlens: what a pretrained image classifier looks at and what it has learned.

Saliency maps, fooling images and class visualizations on real ImageNet networks (the zoo's,
with their real weights) or any ONNX classifier, on a plain CPU, from Python::

    import netlens
    m = netlens.load("efficientnet_lite0")          # or "path/model.onnx"
    m.classify(["cat.jpg"], top=5)
    r = m.saliency(["cat.jpg"], method="smoothgrad", samples=25, seed=0)
    r["maps"]                                       # float32 [N, H, W]

The computation is the `netlens` CLI's own Rust code (same defaults, same seeds, the same
bytes); the GIL is released while it runs. Images go in as file paths, numpy arrays (uint8
0-255 or float 0-1, H x W x 3, H x W or N x H x W x 3) or PIL images; results come out as
numpy arrays and plain dicts. Errors are Python exceptions carrying the library's message:
`FileNotFoundError` for a missing file, `ValueError` for an unknown class, model, method or
option, or a value out of range.

`netlens.evaluate(model, images, methods=[...], metrics=[...])` is `netlens evaluate`: how
faithful, concentrated and network-dependent each method's maps are, as rows of numbers.

`netlens.plot` draws the practical's figures with matplotlib; `netlens.ray` runs any method
over a folder or a Ray Dataset on a cluster, resumably.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _core

__all__ = [
    "DEFAULT_MODEL",
    "Model",
    "load",
    "zoo",
    "methods",
    "imagenet_class",
    "imagenet_label",
    "as_rgb",
    "evaluate",
    "evaluate_methods",
    "evaluate_metrics",
]

#: The model `load()` opens when given no name (the CLI's default).
DEFAULT_MODEL: str = _core.DEFAULT_MODEL

ImageLike = Any
"""A path (str or os.PathLike), a numpy array or a PIL image."""

Progress = Union[None, bool, Callable[[int], Any], Any]
"""None (silent), True (a tqdm bar if tqdm is installed), a callable given the number of
steps just done, or any tqdm-compatible object (its `update(n)` is called)."""


def zoo() -> List[str]:
    """Names of the zoo's models (`netlens models` lists them with their sizes)."""
    return list(_core.zoo())


def methods() -> List[str]:
    """Names of the saliency methods (`method=` of `Model.saliency`)."""
    return list(_core.methods())


def imagenet_class(query: Union[int, str]) -> int:
    """The index of the ImageNet class `query` names: an index, a name ("tabby cat"), a
    synonym or a WordNet id. Raises ValueError (with close matches) when it names none or
    several."""
    return int(_core.imagenet_class(str(query)))


def imagenet_label(index: int) -> str:
    """The name of ImageNet class `index` (0-999)."""
    return str(_core.imagenet_label(int(index)))


def as_rgb(image: ImageLike) -> np.ndarray:
    """An in-memory image as a uint8 H x W x 3 array. uint8 arrays are taken as they are;
    float arrays must hold values in 0-1 (torchvision's convention) and are rounded to 0-255;
    H x W arrays are grey; a fourth (alpha) channel is composited on white, as netlens does
    when it decodes a file; PIL images are converted to RGB (RGBA, on white)."""
    if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image
        has_alpha = "A" in image.mode or "transparency" in getattr(image, "info", {})
        image = np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(
            f"an image array must be H x W x 3 (RGB), H x W x 4 (RGBA) or H x W (grey); "
            f"got shape {a.shape}"
        )
    if np.issubdtype(a.dtype, np.floating):
        if a.size and not (np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0):
            raise ValueError(
                "a float image array must hold values in 0-1 (pass uint8 for 0-255 pixels)"
            )
        a = np.rint(a * 255.0).astype(np.uint8)
    if a.dtype != np.uint8:
        raise ValueError(f"an image array must be uint8 (0-255) or float (0-1), not {a.dtype}")
    if a.shape[2] == 4:
        # The library's compositing on white, to the same integer rounding.
        c = a[:, :, :3].astype(np.uint32)
        alpha = a[:, :, 3:].astype(np.uint32)
        a = ((c * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    return np.ascontiguousarray(a)


def _image_list(images: Union[ImageLike, Sequence[ImageLike]]) -> List[ImageLike]:
    """One image or a sequence of them (a 4-D array is a batch) as a list."""
    if isinstance(images, (str, os.PathLike)) or hasattr(images, "convert"):
        return [images]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    return list(images)


def _core_images(images: Union[ImageLike, Sequence[ImageLike]]) -> list:
    """Images as `_core` takes them: file paths as str, pixels as (bytes, width, height)."""
    out: list = []
    for img in _image_list(images):
        if isinstance(img, (str, os.PathLike)):
            out.append(os.fspath(img))
        elif isinstance(img, tuple) and len(img) == 3 and isinstance(img[0], bytes):
            out.append(img)  # already converted
        else:
            a = as_rgb(img)
            out.append((a.tobytes(), int(a.shape[1]), int(a.shape[0])))
    if not out:
        raise ValueError("no image given")
    return out


class _Ticker:
    """Adapts `progress=` to the callable `_core` calls with the number of steps done."""

    def __init__(self, progress: Progress, total: int, what: str):
        self.bar = None
        self.call: Optional[Callable[[int], Any]] = None
        if progress is True:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # no tqdm: silent
                return
            self.bar = tqdm(total=total or None, desc=what)
            self.call = self.bar.update
        elif progress is None or progress is False:
            return
        elif hasattr(progress, "update"):
            if total and getattr(progress, "total", 0) in (None, 0):
                try:
                    progress.total = total
                except AttributeError:
                    pass
            self.call = progress.update
        elif callable(progress):
            self.call = progress
        else:
            raise ValueError("progress must be None, True, a callable or a tqdm-like object")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _f32(b: bytes, shape) -> np.ndarray:
    return np.frombuffer(b, dtype="<f4").reshape(shape).astype(np.float32)


def _u8(b: bytes, w: int, h: int) -> np.ndarray:
    return np.frombuffer(b, dtype=np.uint8).reshape(h, w, 3).copy()


class Model:
    """A loaded classifier (see `load`). Methods take one image or a list of them and return
    batched results (lists, or arrays with a leading image axis)."""

    def __init__(self, core: "_core.Model", labels: Optional[Sequence[str]] = None):
        self._core = core
        if labels is not None:
            labels = [str(x) for x in labels]
            if len(labels) != core.classes:
                raise ValueError(
                    f"labels: {len(labels)} class names given, but {core.name} has "
                    f"{core.classes} classes (one name per class, in the order of the outputs)"
                )
        self._labels = labels

    def __repr__(self) -> str:
        return f"netlens.Model({self.name!r}, input_size={self.input_size}, classes={self.classes})"

    @property
    def name(self) -> str:
        """The model's name (zoo name or ONNX file)."""
        return self._core.name

    @property
    def input_size(self) -> int:
        """Side of the square image the network sees."""
        return self._core.input_size

    @property
    def classes(self) -> int:
        """Number of classes."""
        return self._core.classes

    def layers(self) -> List[str]:
        """Layers Grad-CAM can explain from (`layer=`), in network order."""
        return list(self._core.layers())

    def cam_layer(self) -> str:
        """The layer Grad-CAM uses by default: the last convolutional block."""
        return self._core.cam_layer()

    def label(self, index: int) -> str:
        """The name of class `index`: from `labels=`, ImageNet's, or "class N"."""
        if not 0 <= int(index) < self.classes:
            raise ValueError(
                f"class index {index} is out of range: {self.name} has classes "
                f"0..{self.classes - 1}"
            )
        if self._labels is not None:
            return self._labels[int(index)]
        if self.classes == 1000:
            return imagenet_label(int(index))
        return f"class {int(index)}"

    def resolve(self, query: Union[int, str]) -> int:
        """The class index `query` names: an index, a name from `labels=`, or for ImageNet
        models any name, synonym or WordNet id (as the CLI's --target). ValueError if it
        names none."""
        q = str(query).strip()
        if q.lstrip("-").isdigit():
            i = int(q)
            if not 0 <= i < self.classes:
                raise ValueError(
                    f"class index {q} is out of range: {self.name} has classes "
                    f"0..{self.classes - 1}"
                )
            return i
        if self._labels is not None:
            hits = [i for i, n in enumerate(self._labels) if n.strip().lower() == q.lower()]
            if len(hits) != 1:
                raise ValueError(f"'{q}' names {len(hits)} of {self.name}'s labels, not one")
            return hits[0]
        if self.classes != 1000:
            raise ValueError(
                f"'{q}': {self.name} has {self.classes} unnamed classes; give an index or "
                f"load it with labels="
            )
        return imagenet_class(q)

    def preprocess(self, images: Union[ImageLike, Sequence[ImageLike]]) -> np.ndarray:
        """The images as the network sees them (short side resized, centre crop):
        uint8 [N, S, S, 3]."""
        fitted = self._core.fit_images(_core_images(images))
        return np.stack([_u8(b, w, h) for b, w, h in fitted])

    def classify(
        self,
        images: Union[ImageLike, Sequence[ImageLike]],
        top: int = 5,
        batch_size: int = 8,
        progress: Progress = None,
    ) -> List[Dict[str, Any]]:
        """Top-`top` classes of each image: one dict per image, {"top": [{"class", "label",
        "prob"}...], "logits": float32 array}, the fields of `netlens classify --json
        --logits`."""
        imgs = _core_images(images)
        t = _Ticker(progress, len(imgs), f"classify on {self.name}")
        try:
            raw = self._core.classify(imgs, int(top), int(batch_size), t.call)
        finally:
            t.close()
        return [
            {
                "top": [{"class": c, "label": self.label(c), "prob": p} for c, p in r["top"]],
                "logits": _f32(r["logits"], (-1,)),
            }
            for r in raw
        ]

    def saliency(
        self,
        images: Union[ImageLike, Sequence[ImageLike]],
        method: str = "vanilla",
        target: Union[None, int, str] = None,
        batch_size: int = 8,
        progress: Progress = None,
        **options: Any,
    ) -> Dict[str, Any]:
        """Attribution maps, as `netlens saliency` computes them (same defaults and seeds,
        the same float32 bytes as its `.npy` files).

        method: one of `netlens.methods()`. target: the class to explain for every image
        (index or name); default each image's top-1 class. options: the CLI's method flags
        with `_` for `-`: samples, noise, inner (smoothgrad); steps, baseline, blur_sigma
        (integrated-gradients); layer (grad-cam, guided-grad-cam); window, stride, fill
        (occlusion); masks, cell, p (rise); seed.

        Returns {"maps": float32 [N, H, W], "inputs": uint8 [N, H, W, 3] (what the network
        saw), "targets", "labels", "probs" (of the target), "top1", "peaks" ((x, y) in the
        original image), "deltas" (Integrated Gradients' completeness error, else None),
        "method", "signed" (whether the maps carry a sign, drawn as magnitudes)}."""
        imgs = _core_images(images)
        tgt = None if target is None else self.resolve(target)
        total = _core.saliency_passes(method, len(imgs), options)
        t = _Ticker(progress, total, f"{method} on {self.name}")
        try:
            raw = self._core.saliency(imgs, method, tgt, int(batch_size), options, t.call)
        finally:
            t.close()
        return {
            "maps": np.stack([_f32(r["map"], (r["height"], r["width"])) for r in raw]),
            "inputs": np.stack([_u8(r["input"], r["width"], r["height"]) for r in raw]),
            "targets": [r["target"] for r in raw],
            "labels": [self.label(r["target"]) for r in raw],
            "probs": [r["prob"] for r in raw],
            "top1": [r["top1"] for r in raw],
            "peaks": [tuple(r["peak"]) for r in raw],
            "deltas": [r["delta"] for r in raw],
            "method": raw[0]["method"],
            "signed": bool(raw[0]["signed"]),
        }

    def save_saliency(
        self,
        result: Dict[str, Any],
        out: Union[str, os.PathLike],
        stems: Sequence[str],
        overwrite: bool = False,
        skip_existing: bool = False,
    ) -> List[str]:
        """Writes each map of a `saliency()` result as `netlens saliency` does:
        out/<stem>.npy, <stem>.png and <stem>.overlay.png (the same bytes). Existing files
        are refused unless `overwrite` (or kept, with `skip_existing`). Returns the paths."""
        maps, inputs = result["maps"], result["inputs"]
        if len(stems) != len(maps):
            raise ValueError(f"{len(stems)} stems given for {len(maps)} maps")
        written: List[str] = []
        for m, x, s in zip(maps, inputs, stems):
            h, w = m.shape
            paths = self._core.write_saliency(
                np.ascontiguousarray(m, dtype="<f4").tobytes(),
                w,
                h,
                np.ascontiguousarray(x, dtype=np.uint8).tobytes(),
                os.fspath(out),
                str(s),
                overwrite,
                skip_existing,
                bool(result.get("signed", False)),
            )
            written.extend(os.fspath(p) for p in paths)
        return written

    def fool(
        self,
        images: Union[ImageLike, Sequence[ImageLike]],
        target: Union[None, int, str] = None,
        method: str = "cs231n",
        epsilon: Optional[float] = None,
        steps: Optional[int] = None,
        step_size: Optional[float] = None,
        norm: str = "linf",
        random_start: bool = True,
        full_steps: bool = False,
        learning_rate: Optional[float] = None,
        max_iterations: Optional[int] = None,
        seed: int = 0,
        batch_size: int = 8,
        progress: Progress = None,
    ) -> List[Dict[str, Any]]:
        """Fooling images, as `netlens fool` makes them: towards `target` (index or name), or
        away from each image's top-1 class when `target` is None. method: "cs231n"
        (normalized gradient ascent; learning_rate, max_iterations), "fgsm" (epsilon, in 0-255
        pixel units) or "pgd" (epsilon, steps, step_size, norm "linf"/"l2", random_start,
        full_steps, seed). One dict per image: "image" (uint8 [S, S, 3]), "original" (the
        image the network saw), and the fields of `netlens fool --json`."""
        imgs = _core_images(images)
        tgt = None if target is None else self.resolve(target)
        t = _Ticker(progress, 0, f"{method} on {self.name}")
        try:
            raw = self._core.fool(
                imgs, tgt, method, epsilon, steps, step_size, norm, random_start,
                full_steps, learning_rate, max_iterations, int(seed), int(batch_size), t.call,
            )
        finally:
            t.close()
        originals = self.preprocess(imgs)
        out = []
        for r, o in zip(raw, originals):
            d = {k: v for k, v in r.items() if k not in ("image", "width", "height")}
            d["image"] = _u8(r["image"], r["width"], r["height"])
            d["original"] = o
            d["original_label"] = self.label(r["original_class"])
            d["final_label"] = self.label(r["final_class"])
            d["target_label"] = None if r["target"] is None else self.label(r["target"])
            out.append(d)
        return out

    def visualize(
        self,
        target: Union[int, str],
        recipe: str = "cs231n",
        seed: int = 0,
        init: Optional[ImageLike] = None,
        progress: Progress = None,
        **settings: Any,
    ) -> Dict[str, Any]:
        """A class visualization, as `netlens visualize` makes it: an image that the model
        scores as `target`, by gradient ascent with `recipe` ("cs231n" or "lucid") from
        noise (seeded) or from `init`. settings: the recipe's keys (the CLI's --set
        KEY=VALUE with `_` for `-`, e.g. iterations=200, learning_rate=25, l2_reg=1e-3). Returns {"image": uint8 [S, S, 3],
        "class", "label", "prob", "start_prob", "iterations", "recipe"}."""
        cls = self.resolve(target)
        pairs = [(str(k).replace("_", "-"), str(v)) for k, v in settings.items()]
        init_img = None if init is None else _core_images(init)[0]
        t = _Ticker(progress, int(settings.get("iterations", 0)), f"visualizing on {self.name}")
        try:
            r = self._core.visualize(cls, recipe, int(seed), pairs, init_img, t.call)
        finally:
            t.close()
        d = {k: v for k, v in r.items() if k not in ("image", "width", "height")}
        d["image"] = _u8(r["image"], r["width"], r["height"])
        d["label"] = self.label(r["class"])
        return d

    def evaluate(
        self,
        images: Union[ImageLike, Sequence[ImageLike]],
        methods: Union[None, str, Sequence[str]] = None,
        metrics: Union[None, str, Sequence[str]] = None,
        seed: int = 0,
        batch_size: int = 8,
        progress: Progress = None,
        boxes: Union[None, str, os.PathLike, Dict[str, Any]] = None,
        **options: Any,
    ) -> Dict[str, Any]:
        """`netlens evaluate` on this model: see `netlens.evaluate`."""
        return evaluate(
            self, images, methods, metrics, seed, batch_size, progress, boxes, **options
        )


def load(
    name: Union[str, os.PathLike] = DEFAULT_MODEL,
    weights: Union[None, str, os.PathLike] = None,
    labels: Union[None, str, os.PathLike, Sequence[str]] = None,
    input_size: Optional[int] = None,
    resize: Optional[int] = None,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    pixel_scale: Optional[float] = None,
    threads: Optional[int] = None,
) -> Model:
    """Loads a model: a zoo name (`netlens.zoo()`; its real weights are fetched into the cache
    the first time) or an ONNX file (a path ending in .onnx or containing a /).

    weights: a weights file for a zoo model (.pth or .safetensors). labels: class names (a
    list, or a file with one per line) for an ONNX model. input_size, resize, mean, std,
    pixel_scale: an ONNX model's preprocessing (the CLI's flags; a sidecar model.json beside
    the file sets them too). threads: compute threads of this model, 1-256 (default: all
    cores, as the CLI without --threads); results are the same bytes for the same number of
    threads (the CLI's `--threads N` gives the bytes of `threads=N`)."""
    n = os.fspath(name)
    if isinstance(labels, (str, os.PathLike)):
        with open(labels, encoding="utf-8") as f:
            labels = [line.rstrip("\n") for line in f if line.strip()]
    core = _core.Model(
        n,
        None if weights is None else os.fspath(weights),
        input_size,
        resize,
        None if mean is None else [float(x) for x in mean],
        None if std is None else [float(x) for x in std],
        pixel_scale,
        threads,
    )
    return Model(core, labels)


def evaluate_methods() -> List[str]:
    """Names `evaluate(methods=...)` takes: every saliency method for CNNs, then the chance
    baselines "random" and "centre" (the default list)."""
    return list(_core.evaluate_names()[0])


def evaluate_metrics() -> List[str]:
    """Names `evaluate(metrics=...)` takes (the default list: all of them)."""
    return list(_core.evaluate_names()[1])


class _EvalProgress:
    """`progress=` of `evaluate`, told of each stage (a bar per stage)."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.bar = None
        if progress is None or progress is False:
            self.kind = None
        elif progress is True:
            try:
                from tqdm.auto import tqdm

                self.kind, self.tqdm = "tqdm", tqdm
            except ImportError:  # no tqdm: silent
                self.kind = None
        elif hasattr(progress, "update"):
            self.kind = "object"
        elif callable(progress):
            self.kind = "callable"
        else:
            raise ValueError("progress must be None, True, a callable or a tqdm-like object")

    def stage(self, what: str, total: int) -> None:
        if self.kind == "tqdm":
            self.done()
            self.bar = self.tqdm(total=total or None, desc=what)
        elif self.kind == "object":
            if hasattr(self.progress, "reset"):
                self.progress.reset(total=total or None)
            if hasattr(self.progress, "set_description"):
                self.progress.set_description(what)

    def message(self, what: str) -> None:
        target = self.bar if self.kind == "tqdm" else self.progress
        if self.kind in ("tqdm", "object") and hasattr(target, "set_postfix_str"):
            target.set_postfix_str(what)

    def update(self, k: int) -> None:
        if self.kind == "tqdm" and self.bar is not None:
            self.bar.update(k)
        elif self.kind == "object":
            self.progress.update(k)
        elif self.kind == "callable":
            self.progress(k)

    def done(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _names(value: Union[None, str, Sequence[str]]) -> Optional[List[str]]:
    if value is None:
        return None
    if isinstance(value, str):
        return value.split(",")
    return [str(v) for v in value]


def evaluate(
    model: Union[str, os.PathLike, Model],
    images: Union[ImageLike, Sequence[ImageLike]],
    methods: Union[None, str, Sequence[str]] = None,
    metrics: Union[None, str, Sequence[str]] = None,
    seed: int = 0,
    batch_size: int = 8,
    progress: Progress = None,
    boxes: Union[None, str, os.PathLike, Dict[str, Any]] = None,
    **options: Any,
) -> Dict[str, Any]:
    """`netlens evaluate` from Python: the same code, defaults, seeds and numbers. For each
    image's top-1 class, every method's map is scored by every metric.

    model: a `Model` or a name for `load`. methods: names (a list or a comma string) from
    `evaluate_methods()`: saliency methods and the chance baselines "random" and "centre";
    default all. metrics: from `evaluate_metrics()` (deletion, insertion, road-morf,
    road-lerf, randomization, infidelity, max-sensitivity, sparseness, complexity,
    pointing-game, iou); default all. randomization re-opens the model as a graph network
    (zoo CNNs and ONNX files). boxes: object boxes for pointing-game and iou, a JSON file or
    a dict {image name: [[x0, y0, x1, y1], ...]}; default the boxes.json beside the images
    given as paths (images without boxes get None there). options: the CLI's flags with `_`
    for `-`: step (deletion/insertion pixels per step, 224), deletion_baseline ("black"),
    insertion_baseline ("blur"), road_percentages ([10, ..., 90]), road_noise (0.01),
    infidelity_samples (32), infidelity_sigma (0.1), sensitivity_samples (10),
    sensitivity_radius (0.2), pointing_tolerance (15), samples (SmoothGrad, 25), ig_steps
    (64), rise_masks (250), occlusion_stride (16). Unknown names raise ValueError with the
    CLI's message.

    Returns a dict: "rows" (one dict per image x method x metric, {"image", "model",
    "method", "metric", "value"}, None where there is no value) and "means" (one per method x
    metric, "image": None): together the lines of `netlens evaluate --json`, in order;
    "table" ({method: {metric: mean}}); "curves" (a list of {"method", "metric", "x": float64
    [K], "ys": float64 [N, K]}: deletion, insertion, ROAD); "randomization" (None, or the
    tests on the first image: "results" (a dict per step and method with spearman_abs,
    spearman_signed, ssim, hog), "cascade_maps" float32 [methods, steps, H, W], "steps",
    "csv"); "csv" (metrics.csv's text); "notes"; "model", "images", "methods", "metrics"."""
    m = model if isinstance(model, Model) else load(model)
    imgs = _core_images(images)
    names = [
        img if isinstance(img, str) else f"image {i}" for i, img in enumerate(imgs)
    ]
    opts = dict(options)
    opts["seed"] = int(seed)
    opts["batch_size"] = int(batch_size)
    if "road_percentages" in opts:
        opts["road_percentages"] = [float(p) for p in opts["road_percentages"]]
    boxes_file = boxes_json = None
    if isinstance(boxes, dict):
        import json

        boxes_json = json.dumps(boxes)
    elif boxes is not None:
        boxes_file = os.fspath(boxes)
        if not os.path.isfile(boxes_file):
            raise FileNotFoundError(f"boxes: no such file {boxes_file}")
    p = _EvalProgress(progress)
    try:
        raw = _core.evaluate(
            m._core, imgs, names, _names(methods), _names(metrics), opts, boxes_file,
            boxes_json, p,
        )
    finally:
        p.done()
    if raw["notes"]:
        import warnings

        for n in raw["notes"]:
            warnings.warn(n, stacklevel=2)
    table: Dict[str, Dict[str, Any]] = {}
    for r in raw["means"]:
        table.setdefault(r["method"], {})[r["metric"]] = r["value"]
    curves = []
    for c in raw["curves"]:
        x = np.frombuffer(c["x"], dtype="<f8").copy()
        ys = np.frombuffer(c["ys"], dtype="<f8").reshape(c["images"], len(x)).copy()
        curves.append({"method": c["method"], "metric": c["metric"], "x": x, "ys": ys})
    rnd = raw["randomization"]
    if rnd is not None:
        rnd = dict(rnd)
        rnd["cascade_maps"] = _f32(rnd["cascade_maps"], tuple(rnd.pop("cascade_shape")))
    out = dict(raw)
    out["table"] = table
    out["curves"] = curves
    out["randomization"] = rnd
    return out
