//! The torchvision parity checks of `parity_torchvision.rs` with the engine in float64: free of
//! float32 rounding (which can flip a ReLU or max-pool that sits on a kink), the logits and
//! input gradients of SqueezeNet 1.1 (full size), VGG16 and ViT-B/16 (reduced) must agree with
//! the float64 PyTorch reference to the fixtures' own float32 rounding: logits max |Δ| ≤ 1e-5
//! (relative to max |logit|, the float32 readback), gradients relative L2 ≤ 1e-5 (stored as
//! float32), far inside the 1e-4 / 1e-3. The `#[ignore]`d `full_size_*` tests do the
//! same for full-size VGG16 and ViT-B/16 (see `parity_torchvision.rs`).

mod common;

use common::*;
use netlens::engine::{set_precision, Precision};
use netlens::gradients::{input_gradient, ClassScore};
use netlens::imaging::images_to_tensor;
use netlens::models::{self, vgg, vit, Arch, ModelSpec};
use netlens::weights;
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    fixture_dir("torchvision").join(name)
}

fn check(zoo: &str, name: &'static str, arch: Option<Arch>) {
    check_in(zoo, name, arch, dir(name));
}

fn check_in(zoo: &str, name: &'static str, arch: Option<Arch>, d: PathBuf) {
    set_precision(Precision::F64);
    let mut spec = models::spec(zoo).unwrap().clone();
    spec.name = name;
    if let Some(a) = arch {
        spec.arch = a;
    }
    let spec: &'static ModelSpec = Box::leak(Box::new(spec));
    let sd = weights::read_state_dict(&d.join("weights.safetensors")).unwrap();
    let net = models::build(spec, sd).unwrap();
    let (px, shape) = read_u8(&d.join("pixels.npy"));
    let img = image::RgbImage::from_raw(shape[1] as u32, shape[0] as u32, px).unwrap();
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("manifest.json")).unwrap()).unwrap();
    let top1 = m["top1"].as_u64().unwrap() as usize;
    let x = images_to_tensor(std::slice::from_ref(&img), &spec.normalization);
    let g = input_gradient(
        net.as_ref(),
        x,
        &ClassScore {
            targets: vec![top1],
        },
    )
    .unwrap();
    let want = read_f64(&d.join("logits.npy"));
    let logit_err = rel_max(&g.logits, &want);
    let grad_err = rel_l2(&g.grad, &read_f32(&d.join("grad.npy")));
    eprintln!("{name} f64: logits max err {logit_err:.2e}, gradient rel L2 {grad_err:.2e}");
    assert!(logit_err < 1e-5, "{name}: logits differ by {logit_err}");
    assert!(grad_err < 1e-5, "{name}: gradient rel L2 {grad_err}");
}

#[test]
fn squeezenet1_1_is_exact_in_f64() {
    check("squeezenet1_1", "squeezenet1_1", None);
}

#[test]
fn vgg16_tiny_is_exact_in_f64() {
    check("vgg16", "vgg16_tiny", Some(Arch::Vgg(vgg::Config::TINY)));
}

#[test]
fn vit_b_16_tiny_is_exact_in_f64() {
    check(
        "vit_b_16",
        "vit_b_16_tiny",
        Some(Arch::VisionTransformer(vit::Config::TINY)),
    );
}

fn full(name: &str) -> PathBuf {
    let root = std::env::var_os("NETLENS_TORCHVISION_FULL").expect(
        "set NETLENS_TORCHVISION_FULL to the folder written by torchvision_fixtures.py --full",
    );
    PathBuf::from(root).join(name)
}

#[test]
#[ignore = "needs NETLENS_TORCHVISION_FULL (torchvision_fixtures.py --full DIR, ~1 GB)"]
fn full_size_vgg16_is_exact_in_f64() {
    check_in("vgg16", "vgg16", None, full("vgg16"));
}

#[test]
#[ignore = "needs NETLENS_TORCHVISION_FULL (torchvision_fixtures.py --full DIR, ~1 GB)"]
fn full_size_vit_b_16_is_exact_in_f64() {
    check_in("vit_b_16", "vit_b_16", None, full("vit_b_16"));
}
