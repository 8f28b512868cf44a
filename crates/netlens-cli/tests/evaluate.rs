//! `netlens evaluate` end to end on a tiny ONNX model (64 px, random weights): the JSON lines
//! (one per image × method × metric, every metric, then the means with "image": null), the
//! CSV, the curves figure and the randomization tests' figure and CSV, the same numbers for
//! the same --seed, and clean one-line errors.

mod common;

use common::netlens;

use std::path::{Path, PathBuf};

const MODEL: &str = "crates/netlens/tests/fixtures/onnx/resnet18_tiny/model.onnx";
const PHOTOS: [&str; 2] = ["assets/photos/chelsea.png", "assets/photos/coffee.png"];

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "netlens-evaluate-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn evaluate(out: &Path, seed: &str) -> Vec<serde_json::Value> {
    let o = out.to_str().unwrap();
    let mut args = vec![
        "evaluate",
        "--model",
        MODEL,
        "--methods",
        "vanilla,grad-cam,random,centre",
        "--step",
        "256",
        "--seed",
        seed,
        "--json",
        "--out",
        o,
    ];
    args.extend(PHOTOS);
    let r = netlens(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    String::from_utf8_lossy(&r.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        // The run's manifest ends the output on a line of its own.
        .filter(|v: &serde_json::Value| v.get("manifest").is_none())
        .collect()
}

#[test]
fn json_csv_and_figure() {
    let out = scratch("a");
    let lines = evaluate(&out, "3");
    // 2 images × 4 methods × 11 metrics, then 4 × 11 means.
    let k = 11;
    assert_eq!(lines.len(), 2 * 4 * k + 4 * k);
    let names: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| l["metric"].as_str()).collect();
    for m in [
        "deletion",
        "insertion",
        "road-morf",
        "road-lerf",
        "randomization",
        "infidelity",
        "max-sensitivity",
        "sparseness",
        "complexity",
        "pointing-game",
        "iou",
    ] {
        assert!(names.contains(m), "metric {m} missing");
    }
    for l in &lines[..8 * k] {
        assert!(l["image"].is_string() && l["model"] == MODEL, "{l}");
        for k in ["method", "metric", "value"] {
            assert!(l.get(k).is_some(), "{l}");
        }
    }
    let means = &lines[8 * k..];
    assert!(means.iter().all(|l| l["image"].is_null()));
    let get = |method: &str, metric: &str| {
        means
            .iter()
            .find(|l| l["method"] == method && l["metric"] == metric)
            .and_then(|l| l["value"].as_f64())
            .unwrap()
    };
    // Maps that ignore the network survive its randomization unchanged.
    assert_eq!(get("centre", "randomization"), 1.0);
    assert_eq!(get("random", "randomization"), 1.0);
    // The centre map does not move with the input at all.
    assert_eq!(get("centre", "max-sensitivity"), 0.0);
    assert!(get("vanilla", "max-sensitivity") > 0.0);
    for m in ["deletion", "insertion", "road-morf", "road-lerf", "iou"] {
        let v = get("vanilla", m);
        assert!((0.0..=1.0).contains(&v), "{m} = {v}");
    }
    // assets/boxes.json holds the objects: both photos have a pointing-game value,
    // and the centre of chelsea and coffee lies on the cat and the cup.
    assert_eq!(get("centre", "pointing-game"), 1.0);
    assert!(get("vanilla", "infidelity") >= 0.0);
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("image,model,method,metric,value\n"));
    assert_eq!(csv.lines().count(), 1 + 8 * k + 4 * k);
    assert!(out.join("curves.png").is_file() && out.join("curves.csv").is_file());
    // The randomization tests on the first image: 4 methods × its steps, every similarity 1
    // before any re-drawing, then the cascade and the independent test.
    let cascade = std::fs::read_to_string(out.join("randomization.csv")).unwrap();
    assert!(out.join("randomization.png").is_file());
    assert!(
        cascade.starts_with("image,method,mode,layers,of,spearman_abs,spearman_signed,ssim,hog\n")
    );
    for l in cascade.lines().skip(1).take(4) {
        let c: Vec<&str> = l.split(',').collect();
        assert_eq!((c[2], c[3]), ("cascade", "0"), "{l}");
        for v in &c[5..] {
            let v: f64 = v.parse().unwrap();
            assert!((v - 1.0).abs() < 1e-9, "{l}");
        }
    }
    assert!(cascade.contains(",independent,1,"));
    // Same seed, same numbers.
    let again = evaluate(&scratch("b"), "3");
    assert_eq!(lines, again);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn errors_are_one_line() {
    for (args, needle) in [
        (
            vec!["evaluate", "--methods", "lime", PHOTOS[0]],
            "unknown method 'lime'",
        ),
        (
            vec!["evaluate", "--metrics", "road", PHOTOS[0]],
            "unknown metric 'road'",
        ),
        (
            vec!["evaluate", "--road-percentages", "10,100", PHOTOS[0]],
            "--road-percentages",
        ),
        (
            vec!["evaluate", "--boxes", "no-such-boxes.json", PHOTOS[0]],
            "no-such-boxes.json",
        ),
        (
            vec![
                "evaluate",
                "--model",
                "vit_b_16",
                "--metrics",
                "randomization",
                PHOTOS[0],
            ],
            "randomization",
        ),
    ] {
        let r = netlens(&args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{args:?}");
        assert_eq!(
            err.lines().filter(|l| !l.trim().is_empty()).count(),
            1,
            "{err}"
        );
        assert!(err.contains(needle), "{err}");
    }
}
