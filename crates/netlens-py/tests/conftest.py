"""Shared fixtures of the Python package's tests: the repository, the CLI binary the parity
tests compare against, the sample photos and one loaded EfficientNet-Lite0 (real weights)."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
PHOTOS = sorted((ROOT / "assets" / "photos").iterdir())


def cli_path() -> pathlib.Path:
    """The `netlens` binary of this checkout (NETLENS_BIN, else CARGO_TARGET_DIR or
    target/, release build)."""
    if os.environ.get("NETLENS_BIN"):
        return pathlib.Path(os.environ["NETLENS_BIN"])
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release" / "netlens"


def run_cli(*args, check=True):
    """Runs the CLI; returns the completed process (stdout and stderr as text)."""
    exe = cli_path()
    if not exe.is_file():
        pytest.fail(f"{exe} is missing: build it with cargo build --release -p netlens-cli")
    p = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        pytest.fail(f"netlens {' '.join(map(str, args))} failed: {p.stderr}")
    return p


@pytest.fixture(scope="session")
def lite0():
    import netlens

    return netlens.load("efficientnet_lite0")


@pytest.fixture(scope="session")
def photos():
    assert len(PHOTOS) >= 5, "assets/photos holds the sample photos"
    return [str(p) for p in PHOTOS]


@pytest.fixture(scope="session")
def forty(tmp_path_factory, photos):
    """40 distinct PNG images made from the 5 sample photos (crops at 8 offsets and scales,
    half of them mirrored), in one folder; the same pixels on every run."""
    from PIL import Image, ImageOps

    d = tmp_path_factory.mktemp("forty")
    for p in photos:
        img = Image.open(p).convert("RGB")
        w, h = img.size
        for k in range(8):
            f = 0.6 + 0.05 * k
            cw, ch = int(w * f), int(h * f)
            x, y = (w - cw) * (k % 3) // 2, (h - ch) * (k % 2)
            c = img.crop((x, y, x + cw, y + ch))
            if k % 2:
                c = ImageOps.mirror(c)
            c.save(d / f"{pathlib.Path(p).stem}-{k}.png")
    files = sorted(str(f) for f in d.iterdir())
    assert len(files) == 40
    return d
