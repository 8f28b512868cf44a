//! 8-bit RGB images to normalized NCHW tensors and back.
//!
//! A [`Normalization`] is the per-channel affine map a model expects on 0–255 pixel values:
//! `x = (p − mean) / std`. EfficientNet-Lite uses mean 127, std 128; torchvision's models use
//! the ImageNet mean/std scaled to 0–255. Going back, values are denormalized, rounded and
//! clamped to 0–255, which is exactly "the image as saved".

use crate::engine::{tensor_values, Precision};
use burn::tensor::Tensor;
use image::RgbImage;

/// Per-channel affine normalization on 0–255 pixel values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// EfficientNet-Lite's `(p − 127) / 128`.
    pub const LITE: Normalization = Normalization {
        mean: [127.0; 3],
        std: [128.0; 3],
    };
    /// torchvision's ImageNet mean/std, on 0–255 values.
    pub const IMAGENET: Normalization = Normalization {
        mean: [0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0],
        std: [0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0],
    };

    /// The normalized value of pixel value `p` in channel `c`.
    pub fn apply(&self, c: usize, p: f32) -> f32 {
        (p - self.mean[c]) / self.std[c]
    }

    /// The pixel value (unrounded) of normalized value `x` in channel `c`.
    pub fn invert(&self, c: usize, x: f32) -> f32 {
        x * self.std[c] + self.mean[c]
    }

    /// The valid normalized range `[low, high]` of channel `c` (pixels 0 and 255).
    pub fn range(&self, c: usize) -> (f32, f32) {
        (self.apply(c, 0.0), self.apply(c, 255.0))
    }

    /// One pixel unit (1/255 of the range) in normalized units, per channel.
    pub fn pixel_unit(&self, c: usize) -> f32 {
        1.0 / self.std[c]
    }
}

/// Normalized CHW values of one image, as a flat vector.
pub fn image_to_chw(img: &RgbImage, norm: &Normalization) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = norm.apply(c, f32::from(p.0[c]));
        }
    }
    out
}

/// A batch of same-size images as a normalized float32 `[N, 3, H, W]` tensor on the engine
/// device (a float64 model casts it on entry; [`images_to_tensor_as`] makes it in the
/// model's precision, `model.precision()`, from the start).
pub fn images_to_tensor(images: &[RgbImage], norm: &Normalization) -> Tensor<4> {
    images_to_tensor_as(Precision::F32, images, norm)
}

/// [`images_to_tensor`] in precision `p`.
pub fn images_to_tensor_as(p: Precision, images: &[RgbImage], norm: &Normalization) -> Tensor<4> {
    let (data, shape) = images_to_chw(images, norm);
    p.tensor(data, shape)
}

/// Normalized CHW values of same-size images, image after image, and their shape
/// `[N, 3, H, W]` (the size of the first image; callers check the others).
pub(crate) fn images_to_chw(images: &[RgbImage], norm: &Normalization) -> (Vec<f32>, [usize; 4]) {
    let (w, h) = images.first().map(|i| i.dimensions()).unwrap_or((0, 0));
    let mut data = Vec::with_capacity(images.len() * 3 * (w * h) as usize);
    for img in images {
        data.extend(image_to_chw(img, norm));
    }
    (data, [images.len(), 3, h as usize, w as usize])
}

/// A `[N, 3, H, W]` tensor (or its flat values) back to 8-bit images: denormalize, round,
/// clamp to 0–255.
pub fn chw_to_images(
    values: &[f32],
    n: usize,
    h: usize,
    w: usize,
    norm: &Normalization,
) -> Vec<RgbImage> {
    let plane = h * w;
    (0..n)
        .map(|b| {
            let base = &values[b * 3 * plane..(b + 1) * 3 * plane];
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let i = y as usize * w + x as usize;
                let px = |c: usize| {
                    norm.invert(c, base[c * plane + i])
                        .round()
                        .clamp(0.0, 255.0) as u8
                };
                image::Rgb([px(0), px(1), px(2)])
            })
        })
        .collect()
}

/// A `[N, 3, H, W]` tensor back to 8-bit images.
pub fn tensor_to_images(t: Tensor<4>, norm: &Normalization) -> Vec<RgbImage> {
    let [n, _, h, w] = t.dims();
    chw_to_images(&tensor_values(t), n, h, w, norm)
}
