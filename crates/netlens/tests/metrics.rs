//! Metrics of attribution maps against Quantus and PyTorch, and the sanity check of Adebayo et
//! al. on a real photo.
//!
//! The maps in `fixtures/metrics/` were written by netlens (`write_metric_fixtures`, ignored:
//! run it with `--ignored` to rewrite them) on the Lite0 fixtures' preprocessed photos;
//! `tools/reference/quantus_reference.py` ran Quantus (Sparseness, Complexity, PixelFlipping,
//! the ROAD imputer), Captum (infidelity), scikit-image (SSIM, HOG) and PyTorch loops on the
//! same maps and the same network (the reference EfficientNet-Lite0 in float32) and wrote
//! `expected.json`.

mod common;

use common::*;
use netlens::batch::ImageBatch;
use netlens::imaging::output::save_npy;
use netlens::imaging::tensor::image_to_chw;
use netlens::metrics::deletion_insertion::{curve, Direction, Fill};
use netlens::metrics::infidelity::infidelity_with;
use netlens::metrics::randomization::{open_graph_model, randomized_model, spearman};
use netlens::metrics::road::{removed_image, road_curve, road_order, Road, RoadOrder};
use netlens::metrics::similarity::{hog_similarity, map_ssim};
use netlens::metrics::{complexity, sparseness, CentreMap, RandomMap};
use netlens::models::Preprocessing;
use netlens::saliency::{Attribution, GradCam, GradientXInput, Map, Run, Targets, Vanilla};
use netlens::Classifier;
use rand::rngs::StdRng;
use rand::SeedableRng;
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
    let x = ImageBatch::from_images(std::slice::from_ref(img), &net.spec().normalization).unwrap();
    let mut quiet = |_: usize| {};
    let t = Targets::PerImage(vec![top1(net, img)]);
    m.attribute(net, x.view(), &t, &mut Run::new(8, &mut quiet))
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
    let x = ImageBatch::from_images(std::slice::from_ref(&img), &spec.normalization).unwrap();
    let t = Targets::PerImage(vec![top1(&net, &img)]);
    let mut quiet = |_: usize| {};
    let mut run = Run::new(1, &mut quiet);
    let mut rho = |m: &dyn Attribution, other: &dyn Classifier| {
        let a = m.attribute(&net, x.view(), &t, &mut run).unwrap().remove(0);
        let b = m
            .attribute(other, x.view(), &t, &mut run)
            .unwrap()
            .remove(0);
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

fn net_input(stem: &str) -> (Vec<f32>, usize) {
    let net = model(MODEL);
    let img = fixture_pixels(MODEL, stem);
    (
        image_to_chw(&img, &net.spec().normalization),
        top1(net, &img),
    )
}

/// The noisy linear imputation against Quantus's `noisy_linear_imputation` (the paper's
/// imputer) with the noise off: the same sparse system solved in float64 on both sides
/// (faer's Cholesky here, SciPy's `spsolve` there), so the filled values agree to float32
/// rounding of the output (1e-5 leaves a margin over ~1e-7).
#[test]
fn road_imputation_matches_quantus() {
    let e = expected();
    for stem in STEMS {
        let (x, _) = net_input(stem);
        let mag: Vec<f32> = fixture_map(stem, "vanilla")
            .iter()
            .map(|v| v.abs())
            .collect();
        for (o, p, tag) in [
            (RoadOrder::Morf, 30.0, "morf30"),
            (RoadOrder::Lerf, 90.0, "lerf90"),
        ] {
            let key = format!("{stem}.{tag}");
            let r = &e["road_imputation"][&key];
            let ord = road_order(&mag, o);
            let mut rng = StdRng::seed_from_u64(0);
            let im = removed_image(&x, 224, 224, &ord, p, 0.0, &mut rng).unwrap();
            let k = (224.0 * 224.0 * p / 100.0f64).floor() as usize;
            let filled: Vec<f64> = (0..3)
                .flat_map(|c| ord[..k].iter().map(move |&q| (c, q)))
                .map(|(c, q)| f64::from(im[c * 224 * 224 + q]))
                .collect();
            let mean = filled.iter().sum::<f64>() / filled.len() as f64;
            let q_mean = r["mean"].as_f64().unwrap();
            let worst = f64s(&r["probe_index"])
                .iter()
                .zip(f64s(&r["probe"]))
                .map(|(&i, v)| (filled[i as usize] - v).abs())
                .fold(0.0, f64::max);
            eprintln!("{key}: mean {mean:.7} (Quantus {q_mean:.7}), worst probe {worst:.2e}");
            assert!(
                (mean - q_mean).abs() < 1e-5,
                "{key}: mean {mean} vs {q_mean}"
            );
            assert!(worst < 1e-5, "{key}: probe differs by {worst}");
        }
    }
}

/// ROAD curves (MoRF and LeRF, the paper's 10–90 %) with the noise off against the same
/// protocol on Quantus's imputation and the PyTorch Lite0: the imputed images agree to
/// float32 rounding, so the probabilities differ by the networks' float32 rounding only
/// (deletion's comparison: ≤ 4.5e-5 per point): tolerance 2e-4; the top-1 hits must match.
#[test]
fn road_matches_quantus_imputation() {
    let e = expected();
    let net = model(MODEL);
    let road = Road {
        noise: 0.0,
        ..Road::default()
    };
    let t0 = std::time::Instant::now();
    for stem in STEMS {
        let (x, target) = net_input(stem);
        for m in METHODS {
            let key = format!("{stem}.{m}");
            let mag: Vec<f32> = fixture_map(stem, m).iter().map(|v| v.abs()).collect();
            for (o, name) in [
                (RoadOrder::Morf, "road_morf"),
                (RoadOrder::Lerf, "road_lerf"),
            ] {
                let mut quiet = |_: usize| {};
                let c = road_curve(
                    net,
                    &x,
                    224,
                    224,
                    &mag,
                    target,
                    o,
                    &road,
                    &mut Run::new(8, &mut quiet),
                )
                .unwrap();
                let q = f64s(&e[name][&key]["probabilities"]);
                let hits: Vec<bool> = e[name][&key]["hits"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h.as_bool().unwrap())
                    .collect();
                let worst = q
                    .iter()
                    .zip(&c.probabilities)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                eprintln!(
                    "{key} {name}: score {:.5}, worst point {worst:.2e}",
                    c.score
                );
                assert_eq!(q.len(), c.probabilities.len());
                assert!(worst < 2e-4, "{key} {name}: differs by {worst}");
                assert_eq!(hits, c.hits, "{key} {name}: top-1 hits");
            }
        }
    }
    eprintln!(
        "ROAD: 12 curves of 9 points in {:.1} s (Quantus's imputer + PyTorch: see \
         expected.json meta.extra_seconds)",
        t0.elapsed().as_secs_f64()
    );
}

/// The reference's perturbation `k` of `n` values (integer arithmetic, as the script's).
fn fixed_perturbation(k: usize, n: usize) -> Vec<f32> {
    (0..n)
        .map(|j| (0.2 * (((j * 7919 + (k + 1) * 104_729) % 2003) as f64 / 2002.0 - 0.5)) as f32)
        .collect()
}

/// Infidelity against Captum's `infidelity` (normalize=True) with the same 8 fixed
/// perturbations: both sides compute the same three sums, Captum in float32 (sums of 150 528
/// products), netlens in float64 over float32 logits; relative tolerance 1e-3.
#[test]
fn infidelity_matches_captum() {
    let e = expected();
    let net = model(MODEL);
    let t0 = std::time::Instant::now();
    for stem in STEMS {
        let (x, target) = net_input(stem);
        let ps: Vec<Vec<f32>> = (0..8).map(|k| fixed_perturbation(k, x.len())).collect();
        for m in METHODS {
            let key = format!("{stem}.{m}");
            let a = fixture_map(stem, m);
            let mut quiet = |_: usize| {};
            let v = infidelity_with(
                net,
                &x,
                224,
                224,
                &a,
                target,
                &ps,
                &mut Run::new(8, &mut quiet),
            )
            .unwrap();
            let q = e["infidelity_captum"][&key].as_f64().unwrap();
            eprintln!("{key}: infidelity {v:.6} (Captum {q:.6})");
            assert!((v - q).abs() <= 1e-3 * q.abs(), "{key}: {v} vs {q}");
        }
    }
    eprintln!(
        "infidelity: 6 maps × 8 perturbations in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// SSIM and HOG similarity against scikit-image on |vanilla| and |gradient × input|: the same
/// float64 formulas (SSIM through summed-area tables here, SciPy's uniform filter there), so
/// 1e-6.
#[test]
fn ssim_and_hog_match_scikit_image() {
    let e = expected();
    for stem in STEMS {
        let a: Vec<f32> = fixture_map(stem, "vanilla")
            .iter()
            .map(|v| v.abs())
            .collect();
        let b: Vec<f32> = fixture_map(stem, "gxi").iter().map(|v| v.abs()).collect();
        let (s, h) = (map_ssim(&a, &b, 224, 224), hog_similarity(&a, &b, 224, 224));
        let (qs, qh) = (
            e["ssim"][stem].as_f64().unwrap(),
            e["hog"][stem].as_f64().unwrap(),
        );
        eprintln!("{stem}: SSIM {s:.7} (skimage {qs:.7}), HOG {h:.7} (skimage {qh:.7})");
        assert!((s - qs).abs() < 1e-6, "{stem}: SSIM {s} vs {qs}");
        assert!((h - qh).abs() < 1e-6, "{stem}: HOG {h} vs {qh}");
    }
}
