//! Writing results: PNG images and float arrays as `.npy`, never over a file silently.

use crate::error::{Error, Result};
use image::RgbImage;
use std::path::Path;

/// Saves an 8-bit RGB image as PNG.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    ensure_parent(path)?;
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| Error::write(path, std::io::Error::other(e.to_string())))
}

/// Saves a row-major float array of shape `shape` as a little-endian `.npy` file.
pub fn save_npy(values: &[f32], shape: &[usize], path: &Path) -> Result<()> {
    ensure_parent(path)?;
    let arr = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), values.to_vec())
        .map_err(|e| Error::Invalid(format!("array shape {shape:?}: {e}")))?;
    ndarray_npy::write_npy(path, &arr)
        .map_err(|e| Error::write(path, std::io::Error::other(e.to_string())))
}

fn ensure_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))
        }
        _ => Ok(()),
    }
}
