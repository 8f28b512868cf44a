//! The files a saliency run writes per image, and how they are drawn: `<stem>.npy` (the raw
//! float32 map at the model's input resolution), `<stem>.png` (the map coloured) and
//! `<stem>.overlay.png` (the map over the photo). One definition for the CLI's `saliency`,
//! the Python package and its Ray runner, so that all of them write the same bytes.

use crate::error::Result;
use crate::files::Existing;
use crate::imaging::colormap::{colorize, overlay, Colormap};
use crate::imaging::output;
use crate::imaging::Placement;
use crate::saliency::Map;
use image::RgbImage;
use std::path::{Path, PathBuf};

/// Share of the highest values saturated in pictures of maps (Captum's outlier percentage).
pub const DISPLAY_CLIP: f32 = 0.01;

/// Opacity of the map drawn over the photo in `<stem>.overlay.png`.
pub const OVERLAY_ALPHA: f32 = 0.8;

/// The three files of one image's map in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaliencyFiles {
    pub npy: PathBuf,
    pub png: PathBuf,
    pub overlay: PathBuf,
}

impl SaliencyFiles {
    /// The files of the image whose output stem is `stem`, in `dir`.
    pub fn new(dir: &Path, stem: &str) -> Self {
        SaliencyFiles {
            npy: dir.join(format!("{stem}.npy")),
            png: dir.join(format!("{stem}.png")),
            overlay: dir.join(format!("{stem}.overlay.png")),
        }
    }

    /// The three paths.
    pub fn all(&self) -> [&Path; 3] {
        [&self.npy, &self.png, &self.overlay]
    }

    /// Whether all three exist (a resumed run skips such an image).
    pub fn done(&self) -> bool {
        self.all().iter().all(|p| p.is_file())
    }
}

/// The map as a colour picture (magnitude, the top [`DISPLAY_CLIP`] saturated).
pub fn map_picture(m: &Map) -> RgbImage {
    colorize(
        &m.display(DISPLAY_CLIP),
        m.width as u32,
        m.height as u32,
        Colormap::Inferno,
    )
}

/// The map over `input` (the image the network saw).
pub fn overlay_picture(input: &RgbImage, m: &Map) -> RgbImage {
    overlay(
        input,
        &m.display(DISPLAY_CLIP),
        Colormap::Inferno,
        OVERLAY_ALPHA,
    )
}

/// Writes the three files of `m` (each atomically, see [`crate::files`]); with
/// `skip_existing`, a file that already exists is left as it is (a resumed run recomputes a
/// whole block of images, whose maps are the same bytes).
pub fn write(
    m: &Map,
    input: &RgbImage,
    files: &SaliencyFiles,
    existing: Existing,
    skip_existing: bool,
) -> Result<()> {
    write_on(m, input, files, existing, skip_existing, None)
}

/// [`write`], with the `.npy` map resampled onto the original photo's pixel grid when
/// `original` gives where the model input sat in it ([`Placement::map_to_original`]: NaN
/// where the crop cut the photo away); the pictures stay at the model's input resolution.
pub fn write_on(
    m: &Map,
    input: &RgbImage,
    files: &SaliencyFiles,
    existing: Existing,
    skip_existing: bool,
    original: Option<&Placement>,
) -> Result<()> {
    let todo = |p: &Path| !(skip_existing && p.is_file());
    if todo(&files.npy) {
        match original {
            Some(pl) => {
                let (w, h) = pl.original;
                let values = pl.map_to_original(&m.values);
                output::save_npy_as(&values, &[h as usize, w as usize], &files.npy, existing)?;
            }
            None => output::save_npy_as(&m.values, &[m.height, m.width], &files.npy, existing)?,
        }
    }
    if todo(&files.png) {
        output::save_image_as(&map_picture(m), &files.png, output::Format::Png, existing)?;
    }
    if todo(&files.overlay) {
        let over = overlay_picture(input, m);
        output::save_image_as(&over, &files.overlay, output::Format::Png, existing)?;
    }
    Ok(())
}
