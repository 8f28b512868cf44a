//! The practical's fooling figure: original, fooling image, difference, difference ×10, one
//! row per image, with the network's label and probability under the two images and the
//! size of the change under the differences.

use super::attack::Fooled;
use crate::imaging::figure::{Cell, Figure};
use crate::imaging::Normalization;
use crate::labels::label;
use image::{Rgb, RgbImage};

/// The difference `changed − original` magnified `gain` times and shown around the model's
/// mean colour, as CS231n's `deprocess(gain · (X_fooling − X))` does.
pub fn difference(
    original: &RgbImage,
    changed: &RgbImage,
    gain: f32,
    norm: &Normalization,
) -> RgbImage {
    RgbImage::from_fn(original.width(), original.height(), |x, y| {
        let (a, b) = (original.get_pixel(x, y), changed.get_pixel(x, y));
        Rgb([0, 1, 2].map(|c| {
            let d = f32::from(b.0[c]) - f32::from(a.0[c]);
            (norm.mean[c] + gain * d).round().clamp(0.0, 255.0) as u8
        }))
    })
}

/// One row per attacked image; `originals[i]` is the model-resolution image `fooled[i]` was
/// made from.
pub fn fooling_figure(
    originals: &[RgbImage],
    fooled: &[Fooled],
    norm: &Normalization,
    title: &str,
) -> RgbImage {
    let mut fig = Figure::new(224).title(title);
    for (orig, f) in originals.iter().zip(fooled) {
        let verdict = if f.success { "" } else { " (not fooled)" };
        let d = &f.distance;
        fig.row(
            None,
            vec![
                Cell::new(
                    orig.clone(),
                    &format!(
                        "original\n{} {:.1}%",
                        label(f.original_class),
                        100.0 * f.original_prob
                    ),
                ),
                Cell::new(
                    f.image.clone(),
                    &format!(
                        "fooling image{verdict}\n{} {:.1}%",
                        label(f.final_class),
                        100.0 * f.final_prob
                    ),
                ),
                Cell::new(
                    difference(orig, &f.image, 1.0, norm),
                    &format!("difference\nL∞ {:.0}, L2 {:.1} (0–255)", d.linf, d.l2),
                ),
                Cell::new(
                    difference(orig, &f.image, 10.0, norm),
                    &format!("difference ×10\n{} steps", f.iterations),
                ),
            ],
        );
    }
    fig.render()
}
