"""Saliency over a whole data set, on one machine or a Ray cluster.

`netlens.ray.saliency(images, out, ...)` takes a folder, a list of image files or a Ray
Dataset with a "path" column, and writes, as `netlens saliency` does, one `<stem>.npy` (raw
float32 map), `<stem>.png` and `<stem>.overlay.png` per image into `out`, plus
`out/results.parquet`: one row per image with its target, label, probability, top-1 class,
peak and the paths of its files.

How it scales out: the images, sorted, are cut into fixed blocks of whole batches (the CLI's
chunks: `lcm(batch_size, 16)` images by default); Ray's `map_batches` hands blocks to
`num_workers` actors, each of which loads the model once and runs the blocks it gets. A
block's maps depend only on its images (seeded noise is drawn per image, and no sum's order
follows the number of compute threads), so the files are the same bytes whatever the number
of workers, machines or `threads_per_worker`, equal to `num_workers=0` (this process, no Ray)
and to the CLI's `netlens saliency` on the same images.

Resumable: a block whose images all have their three files and a row in the table is
skipped, so an interrupted run (or one over a grown folder) does only what is left. Files
are written atomically, so a killed worker never leaves a truncated map.

`netlens.ray.classify(images, out, top=5, ...)` runs the classification the same way into
`out/classify.parquet` (blocks of one batch).

Needs `ray[data]` and `pyarrow` (`pip install "netlens[ray]"`).
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

import netlens

__all__ = ["saliency", "classify", "list_images", "IMAGE_EXTENSIONS", "TABLE", "CLASSIFY_TABLE"]

#: File extensions taken from a folder.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")

#: The per-image table's name in the output folder.
TABLE = "results.parquet"

#: The table `classify` writes (one row per image, no other file).
CLASSIFY_TABLE = "classify.parquet"


def list_images(folder: Union[str, os.PathLike]) -> List[str]:
    """The image files directly in `folder` (by extension), sorted by name."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such folder")
    return sorted(
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f))
    )


def _paths(images: Any) -> List[str]:
    if isinstance(images, (str, os.PathLike)):
        return list_images(images)
    if hasattr(images, "select_columns") and hasattr(images, "take_all"):  # a Ray Dataset
        if "path" not in images.columns():
            raise ValueError(
                "a Ray Dataset of images needs a 'path' column "
                "(ray.data.read_images(..., include_paths=True))"
            )
        return sorted({r["path"] for r in images.select_columns(["path"]).take_all()})
    return sorted(os.fspath(p) for p in images)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _files(out: str, stem: str, method: str = "") -> List[str]:
    if method == "classify":
        return []
    return [os.path.join(out, stem + e) for e in (".npy", ".png", ".overlay.png")]


class _Worker:
    """One model per actor; runs whole blocks and writes their files."""

    def __init__(self, spec: Dict[str, Any]):
        self.spec = spec
        self.model = netlens.load(spec["model"], threads=spec["threads"], **spec["load"])

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, list]:
        if self.spec["method"] == "classify":
            return self._classify(batch)
        s = self.spec
        rows: Dict[str, list] = {k: [] for k in _COLUMNS}
        for block, paths in zip(batch["block"], batch["paths"]):
            paths = json.loads(str(paths))
            r = self.model.saliency(
                paths, s["method"], s["target"], s["batch_size"], **s["options"]
            )
            stems = [_stem(p) for p in paths]
            self.model.save_saliency(r, s["out"], stems, skip_existing=True)
            for i, p in enumerate(paths):
                npy, png, over = _files(s["out"], stems[i])
                m = r["maps"][i]
                for k, v in zip(
                    _COLUMNS,
                    [p, stems[i], int(block), self.model.name, r["method"], r["targets"][i],
                     r["labels"][i], float(r["probs"][i]), r["top1"][i],
                     float(r["peaks"][i][0]), float(r["peaks"][i][1]),
                     None if r["deltas"][i] is None else float(r["deltas"][i]),
                     float(np.abs(m).max()), npy, png, over],
                ):
                    rows[k].append(v)
        return rows

    def _classify(self, batch: Dict[str, np.ndarray]) -> Dict[str, list]:
        s = self.spec
        rows: Dict[str, list] = {k: [] for k in _CLASSIFY_COLUMNS}
        for block, paths in zip(batch["block"], batch["paths"]):
            paths = json.loads(str(paths))
            preds = self.model.classify(paths, s["options"]["top"], s["batch_size"])
            for p, r in zip(paths, preds):
                top = r["top"]
                for k, v in zip(
                    _CLASSIFY_COLUMNS,
                    [p, _stem(p), int(block), self.model.name, top[0]["class"], top[0]["label"],
                     float(top[0]["prob"]), [t["class"] for t in top],
                     [float(t["prob"]) for t in top]],
                ):
                    rows[k].append(v)
        return rows


_CLASSIFY_COLUMNS = [
    "image", "stem", "block", "model", "top1", "label", "prob", "top_classes", "top_probs",
]

_COLUMNS = [
    "image", "stem", "block", "model", "method", "target", "label", "prob", "top1",
    "peak_x", "peak_y", "delta", "max_abs", "npy", "png", "overlay",
]


def _read_table(path: str):
    import pyarrow.parquet as pq

    return pq.read_table(path) if os.path.isfile(path) else None


def _write_table(rows: List[Dict[str, Any]], path: str, columns: List[str]):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows) if rows else pa.table({c: [] for c in columns})
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return table


def saliency(
    images: Any,
    out: Union[str, os.PathLike],
    model: str = netlens.DEFAULT_MODEL,
    method: str = "vanilla",
    target: Union[None, int, str] = None,
    batch_size: int = 8,
    num_workers: int = 2,
    block_size: Optional[int] = None,
    resume: bool = True,
    threads_per_worker: int = 1,
    load: Optional[Dict[str, Any]] = None,
    progress: bool = False,
    **options: Any,
):
    """Saliency maps of every image, written as files plus a Parquet table (see the module
    documentation); returns the table (a `pyarrow.Table`, one row per image, sorted by path)
    and prints nothing.

    images: a folder, a list of files, or a Ray Dataset with a "path" column. num_workers:
    Ray actors (each loads the model once); 0 runs in this process without Ray. A Ray
    cluster is used as `ray.init()` found it (call `ray.init(address=...)` first for a
    cluster; a local one is started otherwise). block_size: images per block (a multiple of
    lcm(batch_size, 16) keeps the bytes of the CLI's run). threads_per_worker: compute
    threads of each actor (and the CPUs Ray reserves for it); the maps are the bytes of the
    CLI run with `--threads` equal to it, whatever the number of workers. load: keywords for
    `netlens.load` (weights, labels, ONNX preprocessing). options: the method's options, as
    `Model.saliency` takes them."""
    if method == "classify":
        raise ValueError("method='classify' is netlens.ray.classify")
    return _run(images, out, model, method, target, batch_size, num_workers, block_size,
                resume, threads_per_worker, load, progress, options)


def classify(
    images: Any,
    out: Union[str, os.PathLike],
    model: str = netlens.DEFAULT_MODEL,
    top: int = 5,
    batch_size: int = 8,
    num_workers: int = 2,
    block_size: Optional[int] = None,
    resume: bool = True,
    threads_per_worker: int = 1,
    load: Optional[Dict[str, Any]] = None,
    progress: bool = False,
):
    """Top-`top` classes of every image into `out/classify.parquet` (image, stem, block,
    model, top1, label, prob, top_classes, top_probs), like `saliency` (blocks over Ray
    actors, resumable, the same numbers whatever the number of workers: those of
    `netlens --threads T classify` with T = threads_per_worker); returns the table."""
    return _run(images, out, model, "classify", None, batch_size, num_workers, block_size,
                resume, threads_per_worker, load, progress, {"top": int(top)})


def _run(images, out, model, method, target, batch_size, num_workers, block_size, resume,
         threads_per_worker, load, progress, options):
    """The block runner behind `saliency` and `classify`."""
    columns = _CLASSIFY_COLUMNS if method == "classify" else _COLUMNS
    out = os.fspath(out)
    paths = _paths(images)
    if not paths:
        raise ValueError("no image given")
    stems = [_stem(p) for p in paths]
    if len(set(stems)) != len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        raise ValueError(
            f"two inputs are named '{dup}'; outputs are named after the file stem, so rename one"
        )
    unit = batch_size if method == "classify" else batch_size * 16 // math.gcd(batch_size, 16)
    block = block_size or unit
    if block <= 0:
        raise ValueError("block_size must be at least 1")
    os.makedirs(out, exist_ok=True)
    table_path = os.path.join(out, CLASSIFY_TABLE if method == "classify" else TABLE)
    old = _read_table(table_path) if resume else None
    old_rows = {r["image"]: r for r in old.to_pylist()} if old is not None else {}
    # Keep only rows of images of this run whose files still exist.
    wanted = set(paths)
    old_rows = {
        p: r for p, r in old_rows.items()
        if p in wanted and all(os.path.isfile(f) for f in _files(out, _stem(p), method))
    }
    blocks = [paths[i:i + block] for i in range(0, len(paths), block)]
    todo = [k for k, b in enumerate(blocks) if not (resume and all(p in old_rows for p in b))]
    if not resume:
        for p in paths:
            for f in _files(out, _stem(p), method):
                if os.path.exists(f):
                    raise FileExistsError(f"{f} already exists; pass resume=True to keep it")
    spec = {
        "model": model, "load": dict(load or {}), "method": method, "target": target,
        "batch_size": int(batch_size), "options": dict(options), "out": out,
        "threads": threads_per_worker,
    }
    items = [{"block": k, "paths": json.dumps(blocks[k])} for k in todo]
    new_rows: List[Dict[str, Any]] = []
    t0 = time.perf_counter()
    if items and num_workers == 0:
        worker = _Worker(spec)
        for it in items:
            cols = worker({"block": [it["block"]], "paths": [it["paths"]]})
            new_rows.extend(dict(zip(cols, v)) for v in zip(*cols.values()))
    elif items:
        import ray

        if not ray.is_initialized():
            ray.init()
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        res = ds.map_batches(
            _Worker,
            batch_size=1,
            concurrency=int(num_workers),
            fn_constructor_kwargs={"spec": spec},
            num_cpus=int(threads_per_worker),
        )
        new_rows = res.take_all()
    seconds = time.perf_counter() - t0
    done = {r["image"]: r for r in new_rows}
    rows = [done.get(p) or old_rows[p] for p in paths if p in done or p in old_rows]
    table = _write_table([{c: r[c] for c in columns} for r in rows], table_path, columns)
    if progress:
        n = sum(len(blocks[k]) for k in todo)
        print(f"netlens.ray: {n} images in {seconds:.1f} s "
              f"({n / seconds if seconds > 0 else 0:.2f} images/s), {len(paths) - n} skipped")
    return table
