//! netlens against PyTorch: preprocessing, logits and input gradients of EfficientNet-Lite0/1/2
//! on real photos, compared with the fixtures `tools/reference/make_fixtures.py` wrote from a
//! float64 PyTorch run of the reference implementation.
//!
//! Tolerances, float32 engine: logits within 1e-3 and the same top-5; input gradients within
//! 1e-2 relative L2. Float32 rounding flips ReLU6 masks whose inputs sit within ~1e-6 of a
//! kink, and each flip moves the gradient: PyTorch's own float32 gradient is 6.1e-3 away from
//! its float64 one on `rocket` (recorded per photo in the manifests). Exactness itself is
//! checked in float64 by the `float64` module below, to 1e-6.

mod common;

use common::*;
use netlens::gradients::{input_gradient, softmax_rows, top_k, ClassScore};
use netlens::imaging::{self, images_to_tensor};

struct Photo {
    stem: String,
    file: String,
    has_grad: bool,
}

fn manifest(model: &str) -> (u32, Vec<Photo>) {
    let text = std::fs::read_to_string(fixture_dir(model).join("manifest.json")).expect("manifest");
    let v: serde_json::Value = serde_json::from_str(&text).expect("manifest json");
    let photos = v["photos"]
        .as_array()
        .expect("photos")
        .iter()
        .map(|p| Photo {
            stem: p["stem"].as_str().unwrap().to_string(),
            file: p["file"].as_str().unwrap().to_string(),
            has_grad: p["has_grad"].as_bool().unwrap_or(false),
        })
        .collect();
    (v["input_size"].as_u64().unwrap() as u32, photos)
}

/// Decoding + Pillow-exact resize + centre crop give PyTorch's pixels bit for bit.
fn check_preprocessing(model: &str) {
    let (size, photos) = manifest(model);
    for p in &photos {
        let img = imaging::load_rgb(&repo_root().join(&p.file)).unwrap();
        let (fitted, _) = imaging::fit(&img, size);
        let want = fixture_pixels(model, &p.stem);
        let diffs: Vec<i32> = fitted
            .as_raw()
            .iter()
            .zip(want.as_raw())
            .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
        eprintln!("{model}/{}: max pixel diff {max}, mean {mean:.4}", p.stem);
        if p.file.ends_with(".png") {
            // Lossless input: Pillow's resize is reproduced bit for bit.
            assert_eq!(max, 0, "{model}/{}: pixels differ from Pillow", p.stem);
        } else {
            // JPEG: libjpeg-turbo (Pillow) and zune-jpeg round the IDCT and chroma upsampling
            // differently, by a level or two on a few pixels.
            assert!(
                max <= 3 && mean < 0.05,
                "{model}/{}: max diff {max}, mean {mean}",
                p.stem
            );
        }
    }
}

/// Logits within 1e-3 and the same top-5; input gradient of the top class within 1e-2
/// relative L2 (see the module comment).
fn check_model(model: &str) {
    let net = common::model(model);
    let (_, photos) = manifest(model);
    let norm = net.spec().normalization;
    for p in &photos {
        let dir = fixture_dir(model);
        let img = fixture_pixels(model, &p.stem);
        let want = read_f64(&dir.join(format!("{}.logits.npy", p.stem)));
        let top1 = top_k(&want, 1)[0];
        let x = images_to_tensor(std::slice::from_ref(&img), &norm);
        let g = input_gradient(
            net,
            x,
            &ClassScore {
                targets: vec![top1],
            },
        )
        .unwrap();
        let max_err = g
            .logits
            .iter()
            .zip(&want)
            .map(|(a, b)| (f64::from(*a) - b).abs())
            .fold(0.0, f64::max);
        assert!(
            max_err < 1e-3,
            "{model}/{}: logits differ by {max_err}",
            p.stem
        );
        let ours = top_k(&softmax_rows(&g.logits, 1000)[0], 5);
        let theirs = top_k(&want, 5);
        assert_eq!(ours, theirs, "{model}/{}: top-5 differs", p.stem);
        if p.has_grad {
            let want_g = read_f32(&dir.join(format!("{}.grad.npy", p.stem)));
            let err = rel_l2(&g.grad, &want_g);
            eprintln!(
                "{model}/{}: logits max err {max_err:.2e}, gradient rel L2 {err:.2e}",
                p.stem
            );
            assert!(
                err < 1e-2,
                "{model}/{}: gradient rel L2 error {err}",
                p.stem
            );
        }
    }
}

#[test]
fn preprocessing_matches_pillow() {
    for m in [
        "efficientnet_lite0",
        "efficientnet_lite1",
        "efficientnet_lite2",
    ] {
        check_preprocessing(m);
    }
}

#[test]
fn lite0_matches_pytorch() {
    check_model("efficientnet_lite0");
}

#[test]
fn lite1_matches_pytorch() {
    check_model("efficientnet_lite1");
}

#[test]
fn lite2_matches_pytorch() {
    check_model("efficientnet_lite2");
}

// The float64 checks, once `parity_f64.rs`: a binary of its own while precision was
// process-wide, now the same weights loaded a second time, in float64.
mod float64 {
    //! The same comparisons as above with the model loaded in float64: free of float32
    //! rounding, netlens must agree with the float64 PyTorch reference to near machine
    //! precision, which proves the architecture, the padding and every backward rule exact.

    use crate::common::*;
    use netlens::engine::Precision;
    use netlens::gradients::{input_gradient, logits, top_k, ClassScore};
    use netlens::imaging::{images_to_tensor, images_to_tensor_as};

    fn check(model: &str, stem: &str) {
        let net = crate::common::model_f64(model);
        let dir = fixture_dir(model);
        let img = fixture_pixels(model, stem);
        let want = read_f64(&dir.join(format!("{stem}.logits.npy")));
        let top1 = top_k(&want, 1)[0];
        let x = images_to_tensor_as(
            net.precision(),
            std::slice::from_ref(&img),
            &net.spec().normalization,
        );
        let g = input_gradient(
            net,
            x,
            &ClassScore {
                targets: vec![top1],
            },
        )
        .unwrap();
        let max_err = g
            .logits
            .iter()
            .zip(&want)
            .map(|(a, b)| (f64::from(*a) - b).abs())
            .fold(0.0, f64::max);
        let want_g = read_f32(&dir.join(format!("{stem}.grad.npy")));
        let err = rel_l2(&g.grad, &want_g);
        eprintln!("{model}/{stem} f64: logits max err {max_err:.2e}, gradient rel L2 {err:.2e}");
        // Logits come back as float32 (values ~10): 1e-5 is that readback's rounding.
        assert!(max_err < 1e-5, "{model}/{stem}: logits differ by {max_err}");
        // The fixture gradient is stored as float32: 1e-6 is its own rounding, not ours.
        assert!(err < 1e-6, "{model}/{stem}: gradient rel L2 error {err}");
    }

    #[test]
    fn lite0_is_exact_in_f64() {
        for stem in ["chelsea", "coffee", "rocket"] {
            check("efficientnet_lite0", stem);
        }
    }

    #[test]
    fn lite1_is_exact_in_f64() {
        for stem in ["chelsea", "coffee", "rocket"] {
            check("efficientnet_lite1", stem);
        }
    }

    #[test]
    fn lite2_is_exact_in_f64() {
        for stem in ["chelsea", "coffee", "rocket"] {
            check("efficientnet_lite2", stem);
        }
    }

    /// A float32 and a float64 model of the same weights in one process (precision is a load
    /// option, not a process setting): each computes in its own precision, on one float32
    /// input tensor (the float64 model casts it on entry), alternately. Their logits agree to
    /// float32 noise (measured 3.5e-7 of the largest logit on coffee; bound 1e-5, the
    /// fast-path-vs-plain bound of `fast_path.rs`), the float32 model gives the same bytes
    /// before and after the float64 one runs, and the float64 one meets `check`'s float64
    /// tolerances (logits 1e-5, gradient 1e-6 relative L2).
    #[test]
    fn float32_and_float64_models_live_side_by_side() {
        let name = "efficientnet_lite0";
        let (single, double) = (model(name), model_f64(name));
        assert_eq!(single.precision(), Precision::F32);
        assert_eq!(double.precision(), Precision::F64);
        assert!(
            !double.fast_path_on(),
            "float64 never runs on the fast path"
        );
        let dir = fixture_dir(name);
        let img = fixture_pixels(name, "coffee");
        let want = read_f64(&dir.join("coffee.logits.npy"));
        let top1 = top_k(&want, 1)[0];
        let x = images_to_tensor(std::slice::from_ref(&img), &single.spec().normalization);
        let before = logits(single, x.clone());
        let objective = ClassScore {
            targets: vec![top1],
        };
        let g = input_gradient(double, x.clone(), &objective).unwrap();
        let after = logits(single, x);
        assert_eq!(
            before, after,
            "the float32 model changed after the float64 one ran"
        );
        let agree = rel_max(
            &before,
            &g.logits.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
        );
        let exact = rel_max(&g.logits, &want);
        let grad = rel_l2(&g.grad, &read_f32(&dir.join("coffee.grad.npy")));
        eprintln!(
            "coffee: float32 vs float64 logits {agree:.2e} of the largest; float64 vs PyTorch \
             logits {exact:.2e}, gradient rel L2 {grad:.2e}"
        );
        assert!(
            agree < 1e-5,
            "float32 and float64 logits differ by {agree:.2e}"
        );
        let max_err = g
            .logits
            .iter()
            .zip(&want)
            .map(|(a, b)| (f64::from(*a) - b).abs())
            .fold(0.0, f64::max);
        assert!(max_err < 1e-5, "float64 logits differ by {max_err}");
        assert!(grad < 1e-6, "float64 gradient rel L2 error {grad}");
    }
}
