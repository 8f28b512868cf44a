//! Scenes with a known object, for a localization benchmark that needs no dataset: a photo of
//! an object of known class is pasted, at a known place and scale, onto another photo or a
//! texture. The pasted rectangle is the ground-truth box.

use super::locate::BoundingBox;
use crate::error::{Error, Result};
use crate::imaging::fit;
use crate::imaging::resample::resize_bilinear;
use image::{imageops, RgbImage};

/// An object to paste: a photo crop and its ImageNet class.
#[derive(Debug, Clone)]
pub struct Object {
    pub name: String,
    pub image: RgbImage,
    pub class: usize,
}

/// A background: a photo or a texture.
#[derive(Debug, Clone)]
pub struct Background {
    pub name: String,
    pub image: RgbImage,
}

/// Where objects go.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Side of the square scene, in pixels.
    pub size: u32,
    /// The object's longer side as a fraction of the scene side.
    pub scales: Vec<f32>,
    /// The object's top-left corner as a fraction (0–1) of the free space on each axis: (0, 0)
    /// puts it in the top-left corner, (1, 1) in the bottom-right, (0.5, 0.5) in the centre.
    pub positions: Vec<(f32, f32)>,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            size: 320,
            scales: vec![0.45, 0.65],
            positions: vec![(0.05, 0.1), (0.95, 0.9)],
        }
    }
}

/// One benchmark image.
#[derive(Debug, Clone)]
pub struct Scene {
    /// "object on background, scale, position".
    pub name: String,
    pub image: RgbImage,
    pub class: usize,
    /// Where the object is, in scene pixels.
    pub truth: BoundingBox,
}

/// `object` scaled so that its longer side is `scale` × `size`, pasted at `at` (fractions of
/// the free space) on `background` fitted (resized and centre-cropped) to `size`×`size`.
pub fn compose(
    background: &RgbImage,
    object: &RgbImage,
    size: u32,
    scale: f32,
    at: (f32, f32),
) -> Result<(RgbImage, BoundingBox)> {
    if !(0.05..=1.0).contains(&scale) {
        return Err(Error::Invalid(format!(
            "object scale {scale} must be between 0.05 and 1"
        )));
    }
    if !(0.0..=1.0).contains(&at.0) || !(0.0..=1.0).contains(&at.1) {
        return Err(Error::Invalid(format!(
            "object position {at:?} must be fractions between 0 and 1"
        )));
    }
    let (mut scene, _) = fit(background, size);
    let (w, h) = object.dimensions();
    let long = f64::from(scale) * f64::from(size);
    let s = long / f64::from(w.max(h).max(1));
    let (ow, oh) = (
        ((f64::from(w) * s).round() as u32).clamp(1, size),
        ((f64::from(h) * s).round() as u32).clamp(1, size),
    );
    let obj = resize_bilinear(object, ow, oh);
    let x0 = (at.0 * (size - ow) as f32).round() as u32;
    let y0 = (at.1 * (size - oh) as f32).round() as u32;
    imageops::replace(&mut scene, &obj, i64::from(x0), i64::from(y0));
    let truth = BoundingBox {
        x0: f64::from(x0),
        y0: f64::from(y0),
        x1: f64::from(x0 + ow),
        y1: f64::from(y0 + oh),
        score: 1.0,
    };
    Ok((scene, truth))
}

/// Every object on every background at every scale and position.
pub fn scenes(
    objects: &[Object],
    backgrounds: &[Background],
    layout: &Layout,
) -> Result<Vec<Scene>> {
    let mut out = Vec::new();
    for o in objects {
        for b in backgrounds {
            for &scale in &layout.scales {
                for &at in &layout.positions {
                    let (image, truth) = compose(&b.image, &o.image, layout.size, scale, at)?;
                    out.push(Scene {
                        name: format!(
                            "{} on {}, scale {scale}, at ({}, {})",
                            o.name, b.name, at.0, at.1
                        ),
                        image,
                        class: o.class,
                        truth,
                    });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn pasted_object_is_where_the_truth_says() {
        let bg = RgbImage::from_pixel(400, 300, Rgb([0, 0, 0]));
        let obj = RgbImage::from_pixel(100, 50, Rgb([255, 0, 0]));
        let (scene, t) = compose(&bg, &obj, 200, 0.5, (1.0, 0.0)).unwrap();
        assert_eq!(scene.dimensions(), (200, 200));
        assert_eq!((t.x0, t.y0, t.x1, t.y1), (100.0, 0.0, 200.0, 50.0));
        assert_eq!(scene.get_pixel(150, 25), &Rgb([255, 0, 0]));
        assert_eq!(scene.get_pixel(50, 25), &Rgb([0, 0, 0]));
        assert_eq!(scene.get_pixel(150, 60), &Rgb([0, 0, 0]));
        assert!(compose(&bg, &obj, 200, 2.0, (0.0, 0.0)).is_err());
    }
}
