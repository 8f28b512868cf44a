"""Images per second of netlens.ray.saliency: this process vs a local Ray cluster.

    python examples/ray_bench.py [--images 40] [--method vanilla] [--workers 2]

Makes N images from the sample photos (crops and mirrors) in a temporary folder, then times
`netlens.ray.saliency` with num_workers=0 (this process, 1 and all threads) and with a local
Ray cluster of `--workers` actors of one thread each (the time includes starting the actors
and loading one model per actor, measured apart), and checks the files are the same bytes.
"""

import argparse
import os
import pathlib
import tempfile
import time

from PIL import Image, ImageOps

import netlens.ray as nray

ROOT = pathlib.Path(__file__).resolve().parents[1]


def make_images(folder: pathlib.Path, n: int) -> None:
    photos = sorted((ROOT / "assets" / "photos").iterdir())
    for i in range(n):
        p = photos[i % len(photos)]
        k = i // len(photos)
        img = Image.open(p).convert("RGB")
        w, h = img.size
        f = 0.6 + 0.4 * ((k * 7) % 9) / 9
        cw, ch = int(w * f), int(h * f)
        x, y = (w - cw) * (k % 3) // 2, (h - ch) * (k % 2)
        c = img.crop((x, y, x + cw, y + ch))
        if k % 2:
            c = ImageOps.mirror(c)
        c.save(folder / f"{p.stem}-{k:03d}.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--method", default="vanilla")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "in").mkdir()
        make_images(tmp / "in", a.images)
        for threads in (1, os.cpu_count()):
            t0 = time.perf_counter()
            nray.saliency(tmp / "in", tmp / f"one-{threads}", method=a.method, num_workers=0,
                          threads_per_worker=threads)
            s = time.perf_counter() - t0
            print(f"one process, {threads} thread(s): {a.images / s:.2f} images/s ({s:.1f} s)")
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=a.workers, include_dashboard=False, log_to_driver=False)
        t_init = time.perf_counter() - t0
        t0 = time.perf_counter()
        nray.saliency(tmp / "in", tmp / "ray", method=a.method, num_workers=a.workers,
                      threads_per_worker=1)
        s = time.perf_counter() - t0
        ray.shutdown()
        print(f"Ray, {a.workers} workers x 1 thread: {a.images / s:.2f} images/s ({s:.1f} s, "
              f"actor start and model loading included; ray.init took {t_init:.1f} s more)")
        same = all((tmp / "one-1" / f.name).read_bytes() == f.read_bytes()
                   for f in (tmp / "ray").iterdir() if f.suffix in (".npy", ".png"))
        print("files equal to the 1-thread single process:", same)


if __name__ == "__main__":
    main()
