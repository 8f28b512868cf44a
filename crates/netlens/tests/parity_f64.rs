//! The same comparisons as `parity.rs` with the engine in float64: free of float32 rounding,
//! netlens must agree with the float64 PyTorch reference to near machine precision, which
//! proves the architecture, the padding and every backward rule exact.

mod common;

use common::*;
use netlens::engine::{set_precision, Precision};
use netlens::gradients::{input_gradient, top_k, ClassScore};
use netlens::imaging::images_to_tensor;

fn check(model: &str, stem: &str) {
    set_precision(Precision::F64);
    let net = common::model(model);
    let dir = fixture_dir(model);
    let img = fixture_pixels(model, stem);
    let want = read_f64(&dir.join(format!("{stem}.logits.npy")));
    let top1 = top_k(&want, 1)[0];
    let x = images_to_tensor(std::slice::from_ref(&img), &net.spec().normalization);
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
