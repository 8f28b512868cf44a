//! Metrics of attribution maps against Quantus and PyTorch, and the sanity check of Adebayo et
//! al. on a real photo.
//!
//! The maps in `fixtures/metrics/` were written by netlens (`write_metric_fixtures`, ignored:
//! run it with `--ignored` to rewrite them) on the Lite0 fixtures' preprocessed photos;
//! `tools/reference/quantus_reference.py` ran Quantus (Sparseness, Complexity, PixelFlipping)
//! and a PyTorch insertion loop on the same maps and the same network (the reference
//! EfficientNet-Lite0 in float32) and wrote `expected.json`.

mod common;

use common::*;
use netlens::imaging::images_to_tensor;
use netlens::imaging::output::save_npy;
use netlens::imaging::tensor::image_to_chw;
use netlens::metrics::deletion_insertion::{curve, Direction, Fill};
use netlens::metrics::randomization::{open_graph_model, randomized_model, spearman};
use netlens::metrics::{complexity, sparseness, CentreMap, RandomMap};
use netlens::models::Preprocessing;
use netlens::saliency::{Attribution, GradCam, GradientXInput, Map, Run, Targets, Vanilla};
use netlens::Classifier;
use std::path::PathBuf;

const MODEL: &str = "efficientnet_lite0";
const STEMS: [&str; 2] = ["chelsea", "coffee"];
const METHODS: [&str; 3] = ["vanilla", "gxi", "gradcam"];
/// Pixels per deletion / insertion step in the comparison (224·8: 29 points per curve).
const STEP: usize = 1792;

fn dir() -> PathBuf {
    fixture_dir("metrics")
}

fn expected() -> serde_json::Value {
    let p = dir().join("expected.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn method(name: &str) -> Box<dyn Attribution> {
    match name {
        "vanilla" => Box::new(Vanilla),
        "gxi" => Box::new(GradientXInput),
        _ => Box::new(GradCam::default()),
    }
}

fn maps(net: &dyn Classifier, m: &dyn Attribution, img: &image::RgbImage) -> Map {
    let x = images_to_tensor(std::slice::from_ref(img), &net.spec().normalization);
    let mut quiet = |_: usize| {};
    let t = Targets::PerImage(vec![top1(net, img)]);
    m.attribute(net, &x, &t, &mut Run::new(8, &mut quiet))
        .unwrap()
        .remove(0)
}

fn top1(net: &dyn Classifier, img: &image::RgbImage) -> usize {
    netlens::classify::classify(net, std::slice::from_ref(img), 1, 1)[0].class()
}

fn fixture_map(stem: &str, m: &str) -> Vec<f32> {
    read_f32(&dir().join(format!("{stem}.{m}.npy")))
}

#[test]
#[ignore = "rewrites fixtures/metrics/*.npy; run tools/reference/quantus_reference.py after"]
fn write_metric_fixtures() {
    let net = model(MODEL);
    for stem in STEMS {
        let img = fixture_pixels(MODEL, stem);
        for m in METHODS {
            let map = maps(net, method(m).as_ref(), &img);
            save_npy(
                &map.values,
                &[map.height, map.width],
                &dir().join(format!("{stem}.{m}.npy")),
            )
            .unwrap();
        }
    }
}

/// Sparseness and complexity equal Quantus's on the same maps: both sides are float64 sums
/// over 50 176 values of the same formulas, so sparseness agrees to rounding (1e-9 leaves
/// room for summation order). Quantus's complexity adds 1e-12 inside the logarithm, which
/// lowers it by about Σ p · 1e-12 / p = n · 1e-12 = 5.0e-8 for n = 224²: the tolerance is
/// 1e-7.
#[test]
fn sparseness_and_complexity_match_quantus() {
    let e = expected();
    for stem in STEMS {
        for m in METHODS {
            let a = fixture_map(stem, m);
            let key = format!("{stem}.{m}");
            let qs = e["sparseness"][&key].as_f64().unwrap();
            let qc = e["complexity"][&key].as_f64().unwrap();
            let (s, c) = (sparseness(&a), complexity(&a));
            eprintln!(
                "{key}: sparseness {s:.9} (Quantus {qs:.9}), complexity {c:.9} (Quantus {qc:.9})"
            );
            assert!((s - qs).abs() < 1e-9, "{key}: sparseness {s} vs {qs}");
            assert!((c - qc).abs() < 1e-7, "{key}: complexity {c} vs {qc}");
        }
    }
}

/// netlens's curve for `stem`'s fixture map `m`.
fn net_curve(stem: &str, m: &str, dir: Direction, fill: Fill) -> netlens::metrics::Curve {
    let net = model(MODEL);
    let img = fixture_pixels(MODEL, stem);
    let x = image_to_chw(&img, &net.spec().normalization);
    let a = fixture_map(stem, m);
    let mag: Vec<f32> = a.iter().map(|v| v.abs()).collect();
    let mut quiet = |_: usize| {};
    curve(
        net,
        &x,
        224,
        224,
        &mag,
        top1(net, &img),
        dir,
        fill,
        STEP,
        &mut Run::new(8, &mut quiet),
    )
    .unwrap()
}

/// Deletion with the black baseline against Quantus's `PixelFlipping` (perturb_baseline =
/// normalized black, −127/128, features_in_step = 3·STEP channel values; Quantus's curve has
/// no unperturbed point, so it is compared with netlens's points 1..). The networks differ in
/// float32 rounding only (netlens's fast path vs PyTorch, logits within ~1e-5), so the
/// probabilities agree to 1e-4 (a value barely moves a softmax probability below 1e-5);
/// the tolerance is 2e-3 because Quantus orders the three channels of a pixel separately and
/// NumPy's unstable argsort may split a pixel's channels across a step boundary where the map
/// has ties (Grad-CAM's upsampled map has some).
#[test]
fn deletion_matches_quantus_pixel_flipping() {
    let e = expected();
    for stem in STEMS {
        for m in METHODS {
            let key = format!("{stem}.{m}");
            let c = net_curve(stem, m, Direction::Deletion, Fill::Black);
            let q: Vec<f64> = e["pixel_flipping"][&key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(q.len() + 1, c.scores.len(), "{key}: curve lengths");
            let worst = q
                .iter()
                .zip(&c.scores[1..])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            let auc_q = e["deletion_auc_torch"][&key].as_f64().unwrap();
            eprintln!(
                "{key}: deletion AUC {:.5} (PyTorch {auc_q:.5}), worst point {worst:.2e}",
                c.auc
            );
            assert!(worst < 2e-3, "{key}: deletion curve differs by {worst}");
            assert!(
                (c.auc - auc_q).abs() < 1e-3,
                "{key}: AUC {} vs {auc_q}",
                c.auc
            );
        }
    }
}

/// Insertion on the blurred canvas (SciPy's `gaussian_filter`, σ = 5, truncate 4, reflect)
/// against a PyTorch loop of the same protocol: float32 rounding only, 1e-3.
#[test]
fn insertion_matches_pytorch() {
    let e = expected();
    for stem in STEMS {
        for m in METHODS {
            let key = format!("{stem}.{m}");
            let c = net_curve(stem, m, Direction::Insertion, Fill::PAPER_BLUR);
            let q: Vec<f64> = e["insertion_torch"][&key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(q.len(), c.scores.len(), "{key}: curve lengths");
            let worst = q
                .iter()
                .zip(&c.scores)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            eprintln!("{key}: insertion AUC {:.5}, worst point {worst:.2e}", c.auc);
            assert!(worst < 1e-3, "{key}: insertion curve differs by {worst}");
        }
    }
}

/// Adebayo et al.'s sanity check on a real photo: after re-drawing every learned layer, the
/// vanilla gradient's rank correlation with the trained network's map falls to near zero
/// (the PyTorch run on Lite0: −0.22 to 0.03 over four photos), while a map that
/// ignores the network (centre, random with the same seed) keeps ρ = 1.
#[test]
fn vanilla_gradient_fails_to_survive_full_cascade() {
    let net = open_graph_model(MODEL, None, &Preprocessing::default(), &mut |_| {}).unwrap();
    let spec = net.spec().clone();
    let img = fixture_pixels(MODEL, "chelsea");
    let full = randomized_model(&net, &spec, usize::MAX, 0).unwrap();
    let half_layers = netlens::metrics::randomization::layers(net.graph()).len() / 2;
    let half = randomized_model(&net, &spec, half_layers, 0).unwrap();
    let x = images_to_tensor(std::slice::from_ref(&img), &spec.normalization);
    let t = Targets::PerImage(vec![top1(&net, &img)]);
    let mut quiet = |_: usize| {};
    let mut run = Run::new(1, &mut quiet);
    let mut rho = |m: &dyn Attribution, other: &dyn Classifier| {
        let a = m.attribute(&net, &x, &t, &mut run).unwrap().remove(0);
        let b = m.attribute(other, &x, &t, &mut run).unwrap().remove(0);
        spearman(&a.magnitude(), &b.magnitude()).unwrap()
    };
    let r_full = rho(&Vanilla, &full);
    let r_half = rho(&Vanilla, &half);
    eprintln!(
        "vanilla: ρ = {r_half:.3} with the top half re-drawn, {r_full:.3} after the full cascade"
    );
    assert!(r_full.abs() < 0.25, "full cascade: ρ = {r_full}");
    assert!(r_half > r_full, "ρ should fall as the cascade goes down");
    assert!((rho(&CentreMap, &full) - 1.0).abs() < 1e-12);
    assert!((rho(&RandomMap { seed: 3 }, &full) - 1.0).abs() < 1e-12);
}

/// The metrics on a map and its negation, and on a sharper map.
#[test]
fn sparseness_and_complexity_order_maps() {
    let a = fixture_map("chelsea", "vanilla");
    let neg: Vec<f32> = a.iter().map(|v| -v).collect();
    assert_eq!(sparseness(&a), sparseness(&neg));
    let sharp: Vec<f32> = a.iter().map(|v| v.powi(4)).collect();
    assert!(sparseness(&sharp) > sparseness(&a));
    assert!(complexity(&sharp) < complexity(&a));
}
