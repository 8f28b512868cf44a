//! Writing results: PNG or JPEG images and float arrays as `.npy`, each through
//! [`crate::files::write_with`]: whole or not at all, and never over an existing file unless
//! asked to.

use crate::error::{Error, Result};
use crate::files::{self, Existing};
use image::{ImageEncoder, RgbImage};
use std::path::Path;

/// An image file format netlens writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    /// JPEG at quality 95.
    Jpeg,
}

impl Format {
    /// The format a path's extension names (`.png`, `.jpg`, `.jpeg`, any case); any other
    /// extension, or none, is refused with a message that lists the accepted ones.
    pub fn from_path(path: &Path) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(Format::Png),
            Some("jpg" | "jpeg") => Ok(Format::Jpeg),
            _ => Err(Error::Invalid(format!(
                "{}: netlens writes images as .png or .jpg (chosen by the extension); name the \
                 file with one of those",
                path.display()
            ))),
        }
    }
}

/// Saves an 8-bit RGB image as PNG, atomically, replacing an existing file.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    save_image_as(img, path, Format::Png, Existing::Replace)
}

/// Saves an 8-bit RGB image in the format its extension names ([`Format::from_path`]).
pub fn save_image(img: &RgbImage, path: &Path, existing: Existing) -> Result<()> {
    save_image_as(img, path, Format::from_path(path)?, existing)
}

/// Saves an 8-bit RGB image in `format`, whatever the path's extension.
pub fn save_image_as(
    img: &RgbImage,
    path: &Path,
    format: Format,
    existing: Existing,
) -> Result<()> {
    let (w, h) = img.dimensions();
    files::write_with(path, existing, |out| {
        let r = match format {
            Format::Png => image::codecs::png::PngEncoder::new(out).write_image(
                img.as_raw(),
                w,
                h,
                image::ExtendedColorType::Rgb8,
            ),
            Format::Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(out, 95)
                .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8),
        };
        r.map_err(|e| match e {
            image::ImageError::IoError(e) => e,
            e => std::io::Error::other(e.to_string()),
        })
    })
}

/// Saves a row-major float array of shape `shape` as a little-endian `.npy` file, atomically,
/// replacing an existing file.
pub fn save_npy(values: &[f32], shape: &[usize], path: &Path) -> Result<()> {
    save_npy_as(values, shape, path, Existing::Replace)
}

/// [`save_npy`] with the choice of what to do with an existing file.
pub fn save_npy_as(values: &[f32], shape: &[usize], path: &Path, existing: Existing) -> Result<()> {
    use ndarray_npy::WriteNpyExt;
    let arr = ndarray::ArrayViewD::from_shape(ndarray::IxDyn(shape), values)
        .map_err(|e| Error::Invalid(format!("array shape {shape:?}: {e}")))?;
    files::write_with(path, existing, |out| {
        arr.write_npy(out).map_err(|e| match e {
            ndarray_npy::WriteNpyError::Io(e) => e,
            e => std::io::Error::other(e.to_string()),
        })
    })
}
