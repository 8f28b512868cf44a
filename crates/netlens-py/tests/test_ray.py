"""netlens.ray: a local Ray cluster with two worker processes writes, over 40 images, the
very files (and table) of the single-process run, and of the CLI; a resumed run redoes only
the blocks whose files are missing."""

import json
import os
import pathlib
import time

import numpy as np
import pyarrow.parquet as pq
import ray

import netlens.ray as nray
from conftest import run_cli

SAME = ["image", "stem", "block", "model", "method", "target", "label", "prob", "top1",
        "peak_x", "peak_y", "delta", "max_abs"]


def files(d):
    return sorted(f.name for f in pathlib.Path(d).iterdir() if not f.name.startswith("."))


def test_two_ray_workers_write_the_single_process_bytes(forty, tmp_path):
    t0 = time.perf_counter()
    single = nray.saliency(forty, tmp_path / "single", num_workers=0, threads_per_worker=1)
    t_single = time.perf_counter() - t0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 1024 * 1024)
    try:
        t0 = time.perf_counter()
        # Two threads per worker: the bytes do not follow the thread count either.
        multi = nray.saliency(forty, tmp_path / "multi", num_workers=2, threads_per_worker=2)
        t_multi = time.perf_counter() - t0
        # A Ray Dataset with a "path" column (as ray.data.read_images(include_paths=True)
        # gives) is the same run.
        listed = [{"path": str(p)} for p in sorted(pathlib.Path(forty).iterdir())]
        from_ds = nray.saliency(ray.data.from_items(listed[::-1]), tmp_path / "ds", num_workers=2)
        classes = nray.classify(forty, tmp_path / "cls", num_workers=2, top=3)
    finally:
        ray.shutdown()
    print(f"\n40 images, vanilla, Lite0: one process {40 / t_single:.2f} images/s, "
          f"2 Ray workers {40 / t_multi:.2f} images/s (incl. actor start)")
    assert single.num_rows == multi.num_rows == 40
    assert single.select(SAME).to_pylist() == multi.select(SAME).to_pylist()
    assert single.select(SAME).to_pylist() == from_ds.select(SAME).to_pylist()
    assert files(tmp_path / "single") == files(tmp_path / "multi")
    assert len(files(tmp_path / "single")) == 3 * 40 + 1  # three files per image + the table
    for name in files(tmp_path / "single"):
        if name.endswith(".parquet"):
            continue
        a = (tmp_path / "single" / name).read_bytes()
        b = (tmp_path / "multi" / name).read_bytes()
        assert a == b, f"{name} differs between 1 process and 2 Ray workers"

    # The CLI over the same images, on as many threads, writes the same maps (vanilla
    # batches images).
    images = sorted(str(p) for p in pathlib.Path(forty).iterdir())
    run_cli("--threads", "1", "saliency", "-o", tmp_path / "cli", *images)
    for p in images:
        s = pathlib.Path(p).stem
        for suffix in (".npy", ".png", ".overlay.png"):
            assert (tmp_path / "cli" / f"{s}{suffix}").read_bytes() == \
                (tmp_path / "single" / f"{s}{suffix}").read_bytes(), f"{s}{suffix}"

    # Classification over the workers: the single process's and the CLI's numbers.
    assert classes.num_rows == 40 and files(tmp_path / "cls") == [nray.CLASSIFY_TABLE]
    local = nray.classify(forty, tmp_path / "cls0", num_workers=0, top=3)
    assert local.to_pylist() == classes.to_pylist()
    cli = [json.loads(l) for l in run_cli("--threads", "1", "classify", "--json", "--top", "3",
                                          *images).stdout.splitlines()]
    assert [c["top"][0]["prob"] for c in cli] == classes.column("prob").to_pylist()
    assert [[t["class"] for t in c["top"]] for c in cli] == \
        classes.column("top_classes").to_pylist()


def test_a_resumed_run_redoes_only_what_is_missing(forty, tmp_path):
    out = tmp_path / "out"
    first = nray.saliency(forty, out, num_workers=0)
    stems = first.column("stem").to_pylist()
    before = {n: os.stat(out / n).st_mtime_ns for n in files(out)}
    saved = (out / f"{stems[20]}.npy").read_bytes()
    (out / f"{stems[20]}.npy").unlink()  # block 1 (images 16-31) lost one file
    again = nray.saliency(forty, out, num_workers=0)
    assert again.select(SAME).to_pylist() == first.select(SAME).to_pylist()
    assert (out / f"{stems[20]}.npy").read_bytes() == saved
    after = {n: os.stat(out / n).st_mtime_ns for n in files(out)}
    changed = {n for n in before if n in after and after[n] != before[n]}
    # The lost file was written again, the table updated; every other file kept as it was.
    assert changed == {nray.TABLE, f"{stems[20]}.npy"}, changed
    # Nothing left: nothing recomputed, no file touched but the table.
    nray.saliency(forty, out, num_workers=0)
    last = {n: os.stat(out / n).st_mtime_ns for n in files(out)}
    assert {n for n in after if n != nray.TABLE and last[n] != after[n]} == set()
    assert pq.read_table(out / nray.TABLE).num_rows == 40
    assert np.load(out / f"{stems[0]}.npy").shape == (224, 224)

