//! How far a saved image is from its original, in 0–255 pixel units.

use image::RgbImage;

/// L∞ and L2 distances between two 8-bit images of the same size (all channels), plus the
/// root-mean-square change per value.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Distance {
    pub linf: f64,
    pub l2: f64,
    pub rms: f64,
}

/// The distance from `original` to `changed` (same dimensions).
pub fn distance(original: &RgbImage, changed: &RgbImage) -> Distance {
    let (mut linf, mut sq, mut n) = (0f64, 0f64, 0usize);
    for (a, b) in original.as_raw().iter().zip(changed.as_raw()) {
        let d = (f64::from(*b) - f64::from(*a)).abs();
        linf = linf.max(d);
        sq += d * d;
        n += 1;
    }
    Distance {
        linf,
        l2: sq.sqrt(),
        rms: if n > 0 { (sq / n as f64).sqrt() } else { 0.0 },
    }
}
