//! Helpers shared by the integration tests: fixtures written by `tools/reference/`, models
//! loaded once per test binary.

#![allow(dead_code)]

pub mod graph_builder;
pub mod seeded_vit;

use ndarray::ArrayD;
use netlens::engine::{LoadOptions, Precision};
use netlens::models::{self, Classifier};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture_dir(model: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(model)
}

pub fn read_f64(path: &Path) -> Vec<f64> {
    let a: ArrayD<f64> =
        ndarray_npy::read_npy(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    a.iter().copied().collect()
}

pub fn read_f32(path: &Path) -> Vec<f32> {
    let a: ArrayD<f32> =
        ndarray_npy::read_npy(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    a.iter().copied().collect()
}

pub fn read_u8(path: &Path) -> (Vec<u8>, Vec<usize>) {
    let a: ArrayD<u8> =
        ndarray_npy::read_npy(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (a.iter().copied().collect(), a.shape().to_vec())
}

/// The fixture's preprocessed photo as an RGB image.
pub fn fixture_pixels(model: &str, stem: &str) -> image::RgbImage {
    let (px, shape) = read_u8(&fixture_dir(model).join(format!("{stem}.pixels.npy")));
    image::RgbImage::from_raw(shape[1] as u32, shape[0] as u32, px).expect("pixels shape")
}

/// Largest |got − want| over the largest |want| (logits against a float64 reference).
pub fn rel_max(got: &[f32], want: &[f64]) -> f64 {
    let err = got
        .iter()
        .zip(want)
        .map(|(a, b)| (f64::from(*a) - b).abs())
        .fold(0.0, f64::max);
    err / want.iter().map(|v| v.abs()).fold(0.0, f64::max)
}

/// Relative L2 error ‖a − b‖ / ‖b‖.
pub fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den).sqrt()
}

/// Loads (fetching on first use) a zoo model in float32 with the default options (the fast
/// path unless `NETLENS_FAST_PATH=0`); one instance per name per test binary.
pub fn model(name: &str) -> &'static dyn Classifier {
    model_in(name, Precision::F32)
}

/// The float64 twin of [`model`] (same weights; reference interpreter, no fast path).
pub fn model_f64(name: &str) -> &'static dyn Classifier {
    model_in(name, Precision::F64)
}

/// Loads a zoo model in precision `p`; one instance per (name, precision) per test binary,
/// so a binary can hold a float32 and a float64 copy side by side.
pub fn model_in(name: &str, p: Precision) -> &'static dyn Classifier {
    type Loaded = Vec<(String, Precision, &'static dyn Classifier)>;
    static CACHE: OnceLock<Mutex<Loaded>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    let mut guard = cache.lock().unwrap();
    if let Some((_, _, m)) = guard.iter().find(|(n, q, _)| n == name && *q == p) {
        return *m;
    }
    let spec = models::spec(name).unwrap();
    let options = LoadOptions::in_precision(p);
    let m = models::load_with(spec, None, options, &mut |s| eprintln!("{name}: {s}"))
        .unwrap_or_else(|e| panic!("cannot load {name}: {e}"));
    assert_eq!(m.precision(), p);
    let leaked: &'static dyn Classifier = Box::leak(m);
    guard.push((name.to_string(), p, leaked));
    leaked
}

pub fn photo(name: &str) -> PathBuf {
    repo_root().join("assets/photos").join(name)
}

/// One ONNX fixture of `tools/reference/onnx_fixtures.py`, run through netlens: logits and
/// input gradients of `sum_i logits[i, targets[i]]` against the float64 PyTorch reference.
pub struct OnnxCheck {
    /// max |Δlogit| / max |logit|.
    pub logit_err: f64,
    /// Relative L2 of the input gradient against PyTorch's float64 gradient.
    pub grad_err: f64,
    /// PyTorch's own float32 gradient against its float64 one (its float32 noise).
    pub torch_f32_err: f64,
    pub model: netlens::models::GraphModel,
}

/// An ONNX file loaded twice, with the fast path on and off (the pair the fast-path tests
/// compare).
pub fn onnx_fast_and_plain(path: &Path) -> (models::GraphModel, models::GraphModel) {
    let load = |fast: bool| {
        models::onnx_model::load_onnx_with(
            path,
            &Default::default(),
            LoadOptions::with_fast_path(fast),
        )
        .unwrap()
    };
    (load(true), load(false))
}

/// The input batch and target classes of an `onnx_fixtures.py` case, in float32.
pub fn fixture_input(dir: &Path) -> (burn::tensor::Tensor<4>, Vec<usize>) {
    fixture_input_in(dir, Precision::F32)
}

/// [`fixture_input`] in precision `p`.
pub fn fixture_input_in(dir: &Path, p: Precision) -> (burn::tensor::Tensor<4>, Vec<usize>) {
    let x: ArrayD<f32> = ndarray_npy::read_npy(dir.join("input.npy")).unwrap();
    let s = x.shape().to_vec();
    let input = p.tensor(x.iter().copied().collect(), [s[0], s[1], s[2], s[3]]);
    let t: ArrayD<i64> = ndarray_npy::read_npy(dir.join("targets.npy")).unwrap();
    (input, t.iter().map(|&v| v as usize).collect())
}

/// In float32 with the default options: [`onnx_check_in`].
pub fn onnx_check(dir: &Path) -> OnnxCheck {
    onnx_check_in(dir, Precision::F32)
}

/// [`onnx_check`] with the model loaded in precision `p`.
pub fn onnx_check_in(dir: &Path, p: Precision) -> OnnxCheck {
    use netlens::gradients::{input_gradient, ClassScore};
    let options = LoadOptions::in_precision(p);
    let path = dir.join("model.onnx");
    let model = netlens::models::onnx_model::load_onnx_with(&path, &Default::default(), options)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let (input, targets) = fixture_input_in(dir, p);
    let g = input_gradient(&model, input, &ClassScore { targets }).unwrap();
    let want = read_f64(&dir.join("logits.npy"));
    let logit_err = rel_max(&g.logits, &want);
    let grad = read_f32(&dir.join("grad.npy"));
    OnnxCheck {
        logit_err,
        grad_err: rel_l2(&g.grad, &grad),
        torch_f32_err: rel_l2(&read_f32(&dir.join("grad32.npy")), &grad),
        model,
    }
}

/// The committed ONNX fixture cases.
pub const ONNX_CASES: &[&str] = &[
    "resnet18_tiny",
    "resnet50_tiny",
    "mobilenet_v3_small_tiny",
    "efficientnet_b0_tiny",
    "densenet121_tiny",
    "convnext_tiny_tiny",
    "squeezenet1_1_tiny",
    "vgg16_tiny",
    "vit_b_16_tiny",
    "resnet18_tiny_softmax",
    "resnet18_tiny_external",
    "resnet18_tiny_fixed",
];

/// A map of `tools/reference/attribution_fixtures.py` (`tests/fixtures/attribution/`).
pub fn attribution_fixture(stem: &str, kind: &str) -> Vec<f32> {
    read_f32(&fixture_dir("attribution").join(format!("{stem}.{kind}.npy")))
}

/// The photo's top-1 class as the attribution fixtures' manifest records it.
pub fn attribution_class(stem: &str) -> usize {
    let path = fixture_dir("attribution").join("manifest.json");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["photos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["stem"] == stem)
        .and_then(|p| p["class"].as_u64())
        .unwrap_or_else(|| panic!("{}: no class for {stem}", path.display())) as usize
}

/// `max_c |g_c|` of a `[3, H, W]` gradient with `plane` = H·W (vanilla's reduction).
pub fn channel_max_abs(g: &[f32], plane: usize) -> Vec<f32> {
    (0..plane)
        .map(|i| (0..3).map(|c| g[c * plane + i].abs()).fold(0.0, f32::max))
        .collect()
}

/// The numbers of a JSON array (a reference script's output).
pub fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}
