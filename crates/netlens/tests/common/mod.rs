//! Helpers shared by the integration tests: fixtures written by `tools/reference/`, models
//! loaded once per test binary.

#![allow(dead_code)]

use ndarray::ArrayD;
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

/// Loads (fetching on first use) a zoo model; one instance per name per test binary.
pub fn model(name: &str) -> &'static dyn Classifier {
    type Loaded = Vec<(String, &'static dyn Classifier)>;
    static CACHE: OnceLock<Mutex<Loaded>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    let mut guard = cache.lock().unwrap();
    if let Some((_, m)) = guard.iter().find(|(n, _)| n == name) {
        return *m;
    }
    let spec = models::spec(name).unwrap();
    let m = models::load(spec, None, &mut |s| eprintln!("{name}: {s}"))
        .unwrap_or_else(|e| panic!("cannot load {name}: {e}"));
    let leaked: &'static dyn Classifier = Box::leak(m);
    guard.push((name.to_string(), leaked));
    leaked
}

pub fn photo(name: &str) -> PathBuf {
    repo_root().join("assets/photos").join(name)
}
