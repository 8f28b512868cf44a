//! The `netlens` binary on ONNX files: the committed tiny torchvision exports under
//! `crates/netlens/tests/fixtures/onnx/` (64 px inputs, random weights, 1000 outputs) run
//! through every kind of command, their class names come from `--labels`, their layers from
//! `netlens layers`, and the ONNX-only flags are refused with a zoo model.

mod common;

use common::{fresh_dir, netlens, root};

use std::path::{Path, PathBuf};

/// A fixture's model file, relative to the repository root (netlens runs there).
fn fixture(case: &str) -> String {
    format!("crates/netlens/tests/fixtures/onnx/{case}/model.onnx")
}

const PHOTO: &str = "assets/photos/chelsea.png";

/// stdout of a run that must succeed.
fn ok(args: &[&str]) -> String {
    let out = netlens(args);
    assert!(
        out.status.success(),
        "netlens {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a clean failure: non-zero exit, one line on stderr mentioning every needle.
fn fails_cleanly(args: &[&str], needles: &[&str]) {
    let out = netlens(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "netlens {}: expected failure; stderr: {err}",
        args.join(" ")
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    for n in needles {
        assert!(
            err.to_lowercase().contains(&n.to_lowercase()),
            "stderr lacks '{n}': {err}"
        );
    }
}

fn scratch(name: &str) -> PathBuf {
    fresh_dir("onnx", name)
}

/// The result lines of a `--json` run (the run's manifest, on a line of its own, left out).
fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v: &serde_json::Value| v.get("manifest").is_none())
        .collect()
}

/// A little-endian float64 `.npy` file: its shape and values.
fn read_npy_f64(path: &Path) -> (Vec<usize>, Vec<f64>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + len]).unwrap();
    assert!(header.contains("'<f8'"), "{header}");
    let shape_text = header.split("'shape': (").nth(1).unwrap();
    let shape: Vec<usize> = shape_text[..shape_text.find(')').unwrap()]
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let values = bytes[start + len..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (shape, values)
}

fn layers_json(model: &str) -> Vec<serde_json::Value> {
    let out = ok(&["layers", "--json", model]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON array");
    v.as_array().expect("an array").clone()
}

#[test]
fn classify_onnx_gives_pytorchs_logits() {
    let model = fixture("resnet18_tiny");
    let out = ok(&["classify", "--json", "--logits", "--model", &model, PHOTO]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line["model"], model.as_str());
    let logits: Vec<f64> = line["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(logits.len(), 1000);
    // The fixture's first row is PyTorch's float64 logits on this photo, preprocessed by the
    // sidecar model.json (resize 73, crop 64): netlens reads the sidecar and agrees.
    let (shape, want) =
        read_npy_f64(&root().join("crates/netlens/tests/fixtures/onnx/resnet18_tiny/logits.npy"));
    assert_eq!(shape, [2, 1000]);
    let diff = logits
        .iter()
        .zip(&want[..1000])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff < 1e-3, "logits differ from PyTorch's by {diff}");
    // A 1000-class model without --labels is named by ImageNet's labels.
    let top = line["top"].as_array().unwrap();
    assert_eq!(top.len(), 5);
    assert!(top
        .iter()
        .all(|t| t["label"].as_str().unwrap() != "class 0"));
}

#[test]
fn softmax_note_is_printed_once() {
    let out = netlens(&[
        "classify",
        "--model",
        &fixture("resnet18_tiny_softmax"),
        PHOTO,
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("differentiates the logits before it").count(),
        1,
        "{err}"
    );
    let plain = netlens(&["classify", "--model", &fixture("resnet18_tiny"), PHOTO]);
    assert!(!String::from_utf8_lossy(&plain.stderr).contains("Softmax"));
}

#[test]
fn layers_of_an_onnx_model_and_of_the_zoo() {
    let layers = layers_json(&fixture("resnet18_tiny"));
    assert!(layers.len() > 3, "{layers:?}");
    for l in &layers {
        assert!(l["name"].is_string() && l["op"].is_string(), "{l}");
        assert_eq!(l["shape"].as_array().unwrap().len(), 3, "{l}");
        assert!(l["cam_default"].is_boolean());
    }
    let cams: Vec<_> = layers.iter().filter(|l| l["cam_default"] == true).collect();
    assert_eq!(cams.len(), 1, "{layers:?}");
    // --model and the positional MODEL are the same.
    let via_flag = ok(&["layers", "--json", "--model", &fixture("resnet18_tiny")]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(via_flag.trim()).unwrap(),
        serde_json::Value::Array(layers.clone())
    );
    let table = ok(&["layers", &fixture("resnet18_tiny")]);
    assert!(
        table.contains(layers[0]["name"].as_str().unwrap()),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with('*')), "{table}");

    // The zoo's Lite0 (its weights fetched on first use): Grad-CAM's layer is its head.
    let zoo = layers_json("efficientnet_lite0");
    let cam: Vec<&str> = zoo
        .iter()
        .filter(|l| l["cam_default"] == true)
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(cam, ["head"], "{zoo:?}");
    // Its head is tapped on the fast path; the head convolution's raw output is fused with
    // its BatchNorm and ReLU6 there, so a tap on it runs on the plain path.
    let tap = |name: &str| {
        zoo.iter()
            .find(|l| l["name"] == name)
            .map(|l| l["tap_fast_path"].clone())
    };
    assert_eq!(tap("head"), Some(serde_json::Value::Bool(true)), "{zoo:?}");
    assert_eq!(
        tap("head.conv"),
        Some(serde_json::Value::Bool(false)),
        "{zoo:?}"
    );
}

#[test]
fn grad_cam_on_a_listed_layer() {
    let model = fixture("resnet18_tiny");
    let layers = layers_json(&model);
    // The spatial layer before the default one: a layer the user picks from the list.
    let cam = layers
        .iter()
        .position(|l| l["cam_default"] == true)
        .unwrap();
    let layer = layers[..cam]
        .iter()
        .rev()
        .find(|l| l["shape"][1].as_u64().unwrap() > 2)
        .and_then(|l| l["name"].as_str())
        .unwrap()
        .to_string();
    let dir = scratch("gradcam");
    let out = ok(&[
        "saliency",
        "--model",
        &model,
        "--method",
        "grad-cam",
        "--layer",
        &layer,
        "--out",
        dir.to_str().unwrap(),
        "--json",
        PHOTO,
        "assets/photos/coffee.png",
    ]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    for (line, stem) in lines.iter().zip(["chelsea", "coffee"]) {
        assert_eq!(line["layer"], layer.as_str());
        assert_eq!(line["method"], "grad-cam");
        for ext in ["npy", "png", "overlay.png"] {
            let p = dir.join(format!("{stem}.{ext}"));
            assert!(p.is_file(), "{} missing", p.display());
        }
        let png = image::open(dir.join(format!("{stem}.png"))).unwrap();
        assert_eq!((png.width(), png.height()), (64, 64));
    }
    assert!(dir.join("figure.png").is_file());

    // locate takes the same layer; a name not in the list points at `netlens layers`.
    let boxes = ok(&[
        "locate",
        "--model",
        &model,
        "--method",
        "grad-cam",
        "--layer",
        &layer,
        "--out",
        dir.join("boxes").to_str().unwrap(),
        PHOTO,
    ]);
    assert!(json_lines(&boxes)[0]["boxes"].is_array());
    fails_cleanly(
        &[
            "saliency",
            "--model",
            &model,
            "--method",
            "grad-cam",
            "--layer",
            "no_such_layer",
            "--out",
            dir.join("bad").to_str().unwrap(),
            PHOTO,
        ],
        &["no_such_layer", "netlens layers"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn several_onnx_models_in_one_saliency_figure() {
    let dir = scratch("multi");
    let models = format!(
        "{},{}",
        fixture("resnet18_tiny"),
        fixture("squeezenet1_1_tiny")
    );
    ok(&[
        "saliency",
        "--model",
        &models,
        "--out",
        dir.to_str().unwrap(),
        PHOTO,
    ]);
    for sub in ["resnet18_tiny", "squeezenet1_1_tiny"] {
        assert!(dir.join(sub).join("chelsea.npy").is_file(), "{sub}");
    }
    assert!(dir.join("figure.png").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn visualize_and_fool_run_on_an_onnx_model() {
    let model = fixture("resnet18_tiny");
    let dir = scratch("synth");
    let viz = dir.join("gorilla.png");
    let out = ok(&[
        "visualize",
        "--model",
        &model,
        "--class",
        "gorilla",
        "--iterations",
        "3",
        "--out",
        viz.to_str().unwrap(),
        "--json",
    ]);
    let v = &json_lines(&out)[0];
    assert_eq!(v["class"], 366);
    assert_eq!(v["iterations"], 3);
    let img = image::open(&viz).unwrap();
    assert_eq!((img.width(), img.height()), (64, 64));

    let fooled = dir.join("fooled.png");
    let out = ok(&[
        "fool",
        "--model",
        &model,
        "--target",
        "stingray",
        "--max-iterations",
        "5",
        "--out",
        fooled.to_str().unwrap(),
        "--json",
        PHOTO,
    ]);
    let f = &json_lines(&out)[0];
    assert_eq!(f["target"], 6);
    assert_eq!(f["target_label"], "stingray");
    assert!(f["iterations"].as_u64().unwrap() <= 5);
    assert!(fooled.is_file());

    // Class indices are checked against the model's classes.
    fails_cleanly(
        &[
            "visualize",
            "--model",
            &model,
            "--class",
            "1000",
            "--iterations",
            "1",
            "--out",
            dir.join("x.png").to_str().unwrap(),
        ],
        &["out of range", "0..999"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn labels_name_the_classes() {
    let model = fixture("resnet18_tiny");
    let dir = scratch("labels");
    let labels = dir.join("labels.txt");
    let names: Vec<String> = (0..1000).map(|i| format!("thing {i}")).collect();
    std::fs::write(&labels, names.join("\n") + "\n").unwrap();
    let out = ok(&[
        "classify",
        "--json",
        "--model",
        &model,
        "--labels",
        labels.to_str().unwrap(),
        PHOTO,
    ]);
    let top = json_lines(&out)[0]["top"].as_array().unwrap().clone();
    for t in &top {
        let c = t["class"].as_u64().unwrap();
        assert_eq!(t["label"], format!("thing {c}"));
    }
    // A name from the file is a target; ImageNet's synonyms are not this model's names.
    let out = ok(&[
        "fool",
        "--model",
        &model,
        "--labels",
        labels.to_str().unwrap(),
        "--target",
        "Thing 42",
        "--max-iterations",
        "1",
        "--json",
        PHOTO,
    ]);
    assert_eq!(json_lines(&out)[0]["target"], 42);
    assert_eq!(json_lines(&out)[0]["target_label"], "thing 42");
    fails_cleanly(
        &[
            "fool",
            "--model",
            &model,
            "--labels",
            labels.to_str().unwrap(),
            "--target",
            "stingray",
            "--json",
            PHOTO,
        ],
        &["unknown class 'stingray'"],
    );

    // locate-bench pastes ImageNet objects: a model named by --labels is not ImageNet's.
    fails_cleanly(
        &[
            "locate-bench",
            "--model",
            &model,
            "--labels",
            labels.to_str().unwrap(),
        ],
        &["ImageNet-1k", "--labels"],
    );

    let short = dir.join("short.txt");
    std::fs::write(&short, "cat\ndog\nbird\n").unwrap();
    fails_cleanly(
        &[
            "classify",
            "--model",
            &model,
            "--labels",
            short.to_str().unwrap(),
            PHOTO,
        ],
        &["3 class names", "1000 classes"],
    );
    fails_cleanly(
        &[
            "classify",
            "--model",
            &model,
            "--labels",
            dir.to_str().unwrap(),
            PHOTO,
        ],
        &["not a regular file"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn onnx_flags_are_refused_with_a_zoo_model() {
    // Refused before anything is loaded, so no weights are needed.
    fails_cleanly(
        &["classify", "--input-size", "64", PHOTO],
        &["efficientnet_lite0", "zoo model", "--input-size", "ONNX"],
    );
    fails_cleanly(
        &[
            "saliency",
            "--model",
            "squeezenet1_1",
            "--mean",
            "0.5,0.5,0.5",
            "--std",
            "0.5,0.5,0.5",
            PHOTO,
        ],
        &["squeezenet1_1", "--mean, --std", "ONNX"],
    );
    fails_cleanly(
        &["layers", "efficientnet_lite0", "--labels", "labels.txt"],
        &["--labels", "ONNX"],
    );
    fails_cleanly(
        &[
            "classify",
            "--model",
            &fixture("resnet18_tiny"),
            "--weights",
            "w.pth",
            PHOTO,
        ],
        &["holds its own weights"],
    );
    fails_cleanly(
        &["classify", "--model", "./no/such/model.onnx", PHOTO],
        &["no such ONNX file"],
    );
    // An input size the file does not fix is a clean error too.
    fails_cleanly(
        &[
            "classify",
            "--model",
            &fixture("resnet18_tiny"),
            "--input-size",
            "96",
            PHOTO,
        ],
        &["64", "96"],
    );
}

#[test]
fn transfer_mixes_zoo_and_onnx_models() {
    let dir = scratch("transfer");
    let heat = dir.join("transfer.png");
    let models = format!("efficientnet_lite0,{}", fixture("resnet18_tiny"));
    let out = ok(&[
        "transfer",
        "--models",
        &models,
        "--untargeted",
        "--method",
        "fgsm",
        "--heatmap",
        heat.to_str().unwrap(),
        "--json",
        PHOTO,
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        v["models"],
        serde_json::json!(["efficientnet_lite0", fixture("resnet18_tiny")])
    );
    assert_eq!(v["rate"].as_array().unwrap().len(), 2);
    assert!(heat.is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_times_an_onnx_file_without_pytorch() {
    let out = ok(&[
        "bench",
        "--models",
        &fixture("resnet18_tiny"),
        "--batches",
        "1",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--budget",
        "0",
        "--no-plain",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let m = &v["models"][0];
    assert_eq!(m["weights"], "onnx");
    assert!(m["torch"].is_null(), "{m}");
    for r in m["results"].as_array().unwrap() {
        assert!(r["netlens_fast_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["torch_module_ms"].is_null(), "{r}");
    }
}

#[test]
fn quick_report_on_onnx_models() {
    // The report runs its commands inside the output folder: relative ONNX paths must reach
    // them, and file names use the models' short names.
    let dir = scratch("report");
    let models = format!(
        "{},{}",
        fixture("resnet18_tiny"),
        fixture("squeezenet1_1_tiny")
    );
    ok(&[
        "report",
        "--quick",
        "--models",
        &models,
        "--out",
        dir.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(
        !html.contains("class=fail"),
        "an experiment failed:\n{html}"
    );
    for part in html.split("<img src=\"").skip(1) {
        let src = part.split('"').next().unwrap_or_default();
        assert!(dir.join(src).is_file(), "the page references {src}");
    }
    assert!(dir.join("q11/squeezenet1_1_tiny-gorilla.png").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}
