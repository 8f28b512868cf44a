"""`netlens.evaluate` against `netlens evaluate`: both run the library's `netlens::evaluate`,
so every value, mean, curve point and CSV text must be the CLI's exactly (tolerance zero:
serde_json and Rust's float formatting write the shortest text that round-trips, so a parsed
number is the same float). Errors carry the CLI's messages."""

import csv
import io
import json

import numpy as np
import pytest

import netlens
from conftest import run_cli

# Cheap settings (seconds on two cores) that still run every kind of metric: curves,
# randomization (with its cascade on the first image), max-sensitivity (recomputed maps),
# the map statistics and the box metrics (assets/boxes.json holds the photos' boxes).
METHODS = ["vanilla", "grad-cam", "random", "centre"]
METRICS = ["deletion", "insertion", "road-morf", "randomization", "max-sensitivity",
           "sparseness", "complexity", "pointing-game", "iou"]
OPTIONS = {"step": 2048, "road_percentages": [20, 60], "sensitivity_samples": 2}


def two(photos):
    return [p for p in photos if p.endswith(("chelsea.png", "coffee.png"))]


def cli_flags(options):
    flags = []
    for k, v in options.items():
        v = ",".join(map(str, v)) if isinstance(v, list) else v
        flags.append(f"--{k.replace('_', '-')}={v}")
    return flags


def test_evaluate_is_the_cli_json_value_for_value(lite0, photos, tmp_path):
    imgs = two(photos)
    out = tmp_path / "cli"
    p = run_cli("evaluate", "--methods", ",".join(METHODS), "--metrics", ",".join(METRICS),
                *cli_flags(OPTIONS), "--seed", "3", "--json", "-o", out, *imgs)
    cli = [json.loads(line) for line in p.stdout.splitlines()]
    assert "manifest" in cli.pop()  # the run's manifest ends the output
    ticks = []
    r = netlens.evaluate(lite0, imgs, methods=METHODS, metrics=",".join(METRICS), seed=3,
                         progress=ticks.append, **OPTIONS)
    py = r["rows"] + r["means"]
    assert len(py) == len(cli) == len(METHODS) * len(METRICS) * (len(imgs) + 1)
    assert py == cli  # same rows, same order, same floats (None for the CLI's null)
    assert r["csv"] == (out / "metrics.csv").read_text()
    assert r["randomization"]["csv"] == (out / "randomization.csv").read_text()
    shape = r["randomization"]["cascade_maps"].shape
    assert shape[0] == len(METHODS) and shape[2:] == (224, 224)
    assert r["table"]["vanilla"]["deletion"] == cli[-len(METRICS) * len(METHODS)]["value"]
    assert sum(ticks) > 0
    # Every curve point of curves.csv.
    points = {}
    for row in csv.DictReader(io.StringIO((out / "curves.csv").read_text())):
        key = (row["method"], row["curve"], row["image"])
        points.setdefault(key, []).append((float(row["fraction"]), float(row["probability"])))
    for c in r["curves"]:
        for img, ys in zip(imgs, c["ys"]):
            got = list(zip(c["x"].tolist(), ys.tolist()))
            assert got == points[(c["method"], c["metric"], img)]


def test_model_method_and_image_types(lite0, photos):
    imgs = two(photos)
    args = dict(methods="vanilla,centre", metrics=["sparseness", "complexity"])
    by_path = lite0.evaluate(imgs, **args)
    arrays = [np.asarray(__import__("PIL.Image").Image.open(p).convert("RGB")) for p in imgs]
    by_array = netlens.evaluate("efficientnet_lite0", arrays, **args)
    assert by_array["images"] == ["image 0", "image 1"]
    assert [x["value"] for x in by_path["rows"]] == [x["value"] for x in by_array["rows"]]
    assert by_path["model"] == "efficientnet_lite0"


def test_unknown_names_are_value_errors_with_the_cli_message(lite0, photos):
    img = two(photos)[:1]
    for flag, kw in [("--methods", {"methods": ["gradcam"]}),
                     ("--metrics", {"metrics": ["faithfulness"]})]:
        cli = run_cli("evaluate", flag, next(iter(kw.values()))[0], *img, check=False)
        assert cli.returncode != 0
        with pytest.raises(ValueError) as e:
            netlens.evaluate(lite0, img, **kw)
        assert str(e.value) in cli.stderr, (str(e.value), cli.stderr)
        assert f"{flag}: {e.value}" in cli.stderr
    with pytest.raises(ValueError, match="unknown evaluate option 'steps'"):
        netlens.evaluate(lite0, img, steps=3)
    with pytest.raises(ValueError, match="batch_size 0 is out of range"):
        netlens.evaluate(lite0, img, batch_size=0)
