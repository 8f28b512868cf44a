//! The same seed gives the same bytes whatever the thread count (issue 15, item 8): a user
//! with two cores and one with sixteen get the same pictures from the same command. Each
//! command runs on EfficientNet-Lite0 (real weights, the fast path) with `--threads` 1, 2 and
//! 3 and its outputs are compared byte for byte. Before the fix, the fast path's convolution
//! split its products by the thread count and `visualize --seed 3` differed between
//! `--threads 1` and `--threads 2` (the gemm crate's reduction blocking follows the product's
//! shape). SmoothGrad's map of an image is also the same whatever other images share the run.

mod common;

use common::{fresh_dir, netlens};
use std::path::Path;

const CHELSEA: &str = "assets/photos/chelsea.png";
const COFFEE: &str = "assets/photos/coffee.png";

fn run_ok(args: &[&str]) {
    let o = netlens(args);
    assert!(
        o.status.success(),
        "netlens {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runs `args` under 1, 2 and 3 threads, `{out}` standing for a fresh output path (named `out`
/// inside a folder per thread count), and returns the bytes of `read` (a path relative to
/// that folder) for each.
fn outputs_by_threads(what: &str, out: &str, read: &str, args: &[&str]) -> Vec<Vec<u8>> {
    let dir = fresh_dir("threads", what);
    let outputs = ["1", "2", "3"]
        .iter()
        .map(|t| {
            let folder = dir.join(format!("t{t}"));
            std::fs::create_dir_all(&folder).unwrap();
            let out_s = folder.join(out).display().to_string();
            let mut full = vec!["--threads", t];
            full.extend(
                args.iter()
                    .map(|a| if *a == "{out}" { out_s.as_str() } else { a }),
            );
            run_ok(&full);
            bytes(&folder.join(read))
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    outputs
}

/// [`outputs_by_threads`] of a one-file output, asserted to be the same bytes.
fn same_bytes_for_any_thread_count(what: &str, file: &str, args: &[&str]) {
    let outputs = outputs_by_threads(what, file, file, args);
    assert!(
        outputs[0] == outputs[1] && outputs[1] == outputs[2],
        "{what}: outputs differ between --threads 1, 2 and 3"
    );
}

#[test]
fn class_visualization_is_the_same_for_any_thread_count() {
    same_bytes_for_any_thread_count(
        "visualize",
        "gorilla.png",
        &[
            "visualize",
            "--class",
            "gorilla",
            "--iterations",
            "12",
            "--seed",
            "3",
            "--out",
            "{out}",
        ],
    );
    same_bytes_for_any_thread_count(
        "lucid",
        "gorilla.png",
        &[
            "visualize",
            "--recipe",
            "lucid",
            "--class",
            "gorilla",
            "--iterations",
            "6",
            "--seed",
            "3",
            "--out",
            "{out}",
        ],
    );
}

#[test]
fn fooling_images_are_the_same_for_any_thread_count() {
    same_bytes_for_any_thread_count(
        "fool",
        "fool.png",
        &[
            "fool",
            "--method",
            "pgd",
            "--untargeted",
            "--out",
            "{out}",
            CHELSEA,
        ],
    );
}

/// `saliency --method smoothgrad --samples 3 --out OUT IMAGES...`.
fn smoothgrad<'a>(out: &'a str, images: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "saliency",
        "--method",
        "smoothgrad",
        "--samples",
        "3",
        "--out",
        out,
    ];
    v.extend_from_slice(images);
    v
}

#[test]
fn smoothgrad_is_the_same_for_any_thread_count_and_company() {
    // `{out}` is the saliency folder here; compare chelsea's map.
    let args = smoothgrad("{out}", &[COFFEE, CHELSEA]);
    let maps = outputs_by_threads("smoothgrad", "maps", "maps/chelsea.npy", &args);
    assert!(
        maps[0] == maps[1] && maps[1] == maps[2],
        "smoothgrad maps differ by threads"
    );
    // Alone, chelsea gets the same noise and so the same map as beside coffee.
    let dir = fresh_dir("threads", "smoothgrad-alone");
    let alone = dir.join("alone");
    let alone_s = alone.display().to_string();
    run_ok(&smoothgrad(&alone_s, &[CHELSEA]));
    assert_eq!(
        bytes(&alone.join("chelsea.npy")),
        maps[0],
        "map depends on the other images"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
