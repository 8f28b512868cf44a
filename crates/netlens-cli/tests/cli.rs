//! The `netlens` binary as a user meets it: real photos in, PyTorch's answers out, and one
//! clear line (never a panic) for every kind of bad input.

mod common;

use common::{netlens, root};

use std::path::PathBuf;
use std::process::Output;

/// Asserts a clean failure: non-zero exit, one line on stderr mentioning `needle`, no panic.
fn fails_cleanly(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("internal error") && !err.contains("backtrace"),
        "{err}"
    );
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "stderr lacks '{needle}': {err}"
    );
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("netlens-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn classify_json_matches_pytorch() {
    let fixtures = root().join("crates/netlens/tests/fixtures/efficientnet_lite0");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("manifest.json")).unwrap())
            .unwrap();
    let photos: Vec<&serde_json::Value> = manifest["photos"].as_array().unwrap().iter().collect();
    let files: Vec<String> = photos
        .iter()
        .map(|p| p["file"].as_str().unwrap().to_string())
        .collect();
    let mut args = vec!["classify", "--json"];
    args.extend(files.iter().map(String::as_str));
    let out = netlens(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), photos.len());
    for (line, want) in lines.iter().zip(&photos) {
        assert_eq!(line["model"], "efficientnet_lite0");
        let ours = line["top"].as_array().unwrap();
        let theirs = want["top5"].as_array().unwrap();
        assert_eq!(ours.len(), 5);
        for (o, t) in ours.iter().zip(theirs) {
            assert_eq!(o["class"], t["class"], "{}: top-5 differs", want["stem"]);
            let d = (o["prob"].as_f64().unwrap() - t["prob"].as_f64().unwrap()).abs();
            assert!(d < 1e-3, "{}: probability differs by {d}", want["stem"]);
            assert!(o["label"].is_string());
        }
    }
}

#[test]
fn classify_table_and_logits() {
    let out = netlens(&["classify", "--top", "3", "assets/photos/coffee.png"]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("espresso"), "{s}");
    let out = netlens(&["classify", "--json", "--logits", "assets/photos/coffee.png"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["logits"].as_array().unwrap().len(), 1000);
}

#[test]
fn bad_images_fail_cleanly() {
    fails_cleanly(
        &netlens(&["classify", "no/such/file.png"]),
        "no/such/file.png",
    );

    let text = scratch("notes.png");
    std::fs::write(&text, "this is not an image\n").unwrap();
    fails_cleanly(
        &netlens(&["classify", text.to_str().unwrap()]),
        "not a readable image",
    );

    let png = std::fs::read(root().join("assets/photos/chelsea.png")).unwrap();
    let truncated = scratch("truncated.png");
    std::fs::write(&truncated, &png[..png.len() / 3]).unwrap();
    fails_cleanly(
        &netlens(&["classify", truncated.to_str().unwrap()]),
        "truncated.png",
    );

    let jpg = std::fs::read(root().join("assets/photos/rocket.jpg")).unwrap();
    let truncated_jpg = scratch("truncated.jpg");
    std::fs::write(&truncated_jpg, &jpg[..jpg.len() / 2]).unwrap();
    fails_cleanly(
        &netlens(&["classify", truncated_jpg.to_str().unwrap()]),
        "truncated",
    );

    let tiny = scratch("tiny.png");
    image::RgbImage::new(1, 1).save(&tiny).unwrap();
    fails_cleanly(&netlens(&["classify", tiny.to_str().unwrap()]), "1x1");
}

#[test]
fn bad_weights_fail_cleanly() {
    let corrupt = scratch("corrupt.pth");
    std::fs::write(&corrupt, b"PK\x03\x04 definitely not a checkpoint").unwrap();
    fails_cleanly(
        &netlens(&[
            "classify",
            "--weights",
            corrupt.to_str().unwrap(),
            "assets/photos/coffee.png",
        ]),
        "corrupt.pth",
    );
    let garbage = scratch("garbage.safetensors");
    std::fs::write(&garbage, vec![7u8; 4096]).unwrap();
    fails_cleanly(
        &netlens(&[
            "classify",
            "--weights",
            garbage.to_str().unwrap(),
            "assets/photos/coffee.png",
        ]),
        "garbage.safetensors",
    );
    // Lite2's weights do not fit Lite0's architecture (wider channels).
    let fetch = netlens(&["models", "fetch", "efficientnet_lite2"]);
    assert!(
        fetch.status.success(),
        "{}",
        String::from_utf8_lossy(&fetch.stderr)
    );
    let lite2 = String::from_utf8_lossy(&fetch.stdout)
        .lines()
        .last()
        .and_then(|l| l.split_once(": ").map(|(_, p)| p.trim().to_string()))
        .or_else(|| {
            // already cached: ask where
            let list = netlens(&["models"]);
            String::from_utf8_lossy(&list.stdout).lines().find_map(|l| {
                l.strip_prefix("weights cache: ")
                    .map(|d| format!("{d}/efficientnet_lite2.safetensors"))
            })
        })
        .unwrap();
    fails_cleanly(
        &netlens(&[
            "classify",
            "--model",
            "efficientnet_lite0",
            "--weights",
            &lite2,
            "assets/photos/coffee.png",
        ]),
        "shape",
    );
}

#[test]
fn bad_names_fail_cleanly() {
    fails_cleanly(&netlens(&["labels", "crane"]), "ambiguous");
    fails_cleanly(&netlens(&["labels", "gorila"]), "gorilla");
    fails_cleanly(
        &netlens(&[
            "classify",
            "--model",
            "resnet9000",
            "assets/photos/coffee.png",
        ]),
        "unknown model",
    );
    let ok = netlens(&["labels", "--json", "Tinca tinca"]);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("\"class\":0"));
}

#[test]
fn models_lists_the_zoo() {
    let out = netlens(&["models"]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    for m in [
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
    ] {
        assert!(s.contains(m), "{s}");
    }
}

/// Every file under `dir`, as paths joined to `dir`, sorted.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out.sort();
    out
}

/// The manifest on the last line of a `--json` run.
fn manifest_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("some output");
    let v: serde_json::Value = serde_json::from_str(last).expect("a JSON line");
    v["manifest"].clone()
}

#[test]
fn json_manifest_lists_exactly_the_files_written() {
    // Saliency (maps, overlays, arrays, the figure) and visualize with snapshots (frames, the
    // strip, the image): each manifest names every file the run left, and nothing else.
    let dir = common::fresh_dir("cli", "manifest");
    let sal = dir.join("saliency");
    let viz = dir.join("viz");
    let (sal_s, viz_s) = (
        sal.display().to_string(),
        viz.join("g.png").display().to_string(),
    );
    let runs = [
        netlens(&[
            "saliency",
            "--json",
            "--method",
            "grad-cam",
            "--out",
            &sal_s,
            "assets/photos/coffee.png",
            "assets/photos/chelsea.png",
        ]),
        netlens(&[
            "visualize",
            "--json",
            "--class",
            "gorilla",
            "--iterations",
            "4",
            "--snapshot-every",
            "2",
            "--out",
            &viz_s,
        ]),
    ];
    for (run, folder, figures) in [(&runs[0], &sal, 1), (&runs[1], &viz, 1)] {
        let m = manifest_of(run);
        let mut listed: Vec<String> = m["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| f["path"].as_str().unwrap_or_default().to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, files_under(folder), "{m}");
        let shown = m["files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["kind"] == "figure")
            .count();
        assert_eq!(shown, figures, "{m}");
        assert!(m["seconds"].as_f64().is_some_and(|s| s > 0.0), "{m}");
        assert!(!m["summary"].as_str().unwrap_or_default().is_empty(), "{m}");
    }
    let m = manifest_of(&runs[0]);
    assert_eq!(m["command"], "saliency");
    assert_eq!(m["parameters"]["method"], "grad-cam");
    assert_eq!(files_under(&sal).len(), 2 * 3 + 1);
    let _ = std::fs::remove_dir_all(&dir);
}
