//! Model-input geometry: torchvision's `Resize(short side)` then `CenterCrop`, and the way back.
//!
//! [`fit`] turns a photo of any size into the square model input exactly as the PyTorch
//! reference does (Pillow bilinear resize of the short side, long side truncated, then a
//! centre crop with Python's rounding); an image already at the input size is untouched.
//! The returned [`Placement`] maps input-resolution coordinates (a saliency box) back into
//! the original photo's pixels.

use super::resample::resize_bilinear;
use image::RgbImage;

/// Where the model input sits in the original image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Original width and height.
    pub original: (u32, u32),
    /// Size after resizing, before cropping.
    pub resized: (u32, u32),
    /// Top-left corner of the crop in the resized image.
    pub crop: (u32, u32),
    /// Side of the square model input.
    pub size: u32,
}

impl Placement {
    /// Maps a point in model-input pixels to original-image pixels.
    pub fn to_original(&self, x: f64, y: f64) -> (f64, f64) {
        let sx = f64::from(self.original.0) / f64::from(self.resized.0);
        let sy = f64::from(self.original.1) / f64::from(self.resized.1);
        (
            (x + f64::from(self.crop.0)) * sx,
            (y + f64::from(self.crop.1)) * sy,
        )
    }
}

/// Python 3's `round` (half to even), as torchvision's `CenterCrop` uses it.
fn round_half_even(v: f64) -> i64 {
    let r = v.round();
    if (v - v.trunc()).abs() == 0.5 && (r as i64) % 2 != 0 {
        (r - v.signum()) as i64
    } else {
        r as i64
    }
}

/// How a photo becomes a square model input: the short side resized to `resize`, then a
/// centre crop of `crop`×`crop` (`resize == crop` for EfficientNet-Lite; torchvision's models
/// use 256 and 224).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub resize: u32,
    pub crop: u32,
}

impl From<u32> for Geometry {
    /// Resize the short side to `size` and crop `size`×`size`.
    fn from(size: u32) -> Self {
        Geometry {
            resize: size,
            crop: size,
        }
    }
}

/// The short side of `img` resized to `size`, then a centre crop of `size`×`size`.
pub fn fit(img: &RgbImage, size: u32) -> (RgbImage, Placement) {
    fit_with(img, size, size)
}

/// The short side of `img` resized to `resize`, then a centre crop of `crop`×`crop`
/// (torchvision's `Resize(resize)` + `CenterCrop(crop)` on a PIL image). An image that is
/// already `crop`×`crop` is returned untouched.
pub fn fit_with(img: &RgbImage, resize: u32, crop: u32) -> (RgbImage, Placement) {
    let (w, h) = img.dimensions();
    let size = crop;
    if (w, h) == (size, size) {
        let p = Placement {
            original: (w, h),
            resized: (w, h),
            crop: (0, 0),
            size,
        };
        return (img.clone(), p);
    }
    let resize = resize.max(crop);
    let (rw, rh) = if w <= h {
        (
            resize,
            (f64::from(resize) * f64::from(h) / f64::from(w)) as u32,
        )
    } else {
        (
            (f64::from(resize) * f64::from(w) / f64::from(h)) as u32,
            resize,
        )
    };
    let resized = resize_bilinear(img, rw, rh);
    let top = round_half_even(f64::from(rh - size) / 2.0).max(0) as u32;
    let left = round_half_even(f64::from(rw - size) / 2.0).max(0) as u32;
    let crop = image::imageops::crop_imm(&resized, left, top, size, size).to_image();
    let p = Placement {
        original: (w, h),
        resized: (rw, rh),
        crop: (left, top),
        size,
    };
    (crop, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_rounding() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(2.4), 2);
    }

    #[test]
    fn fit_geometry() {
        let img = RgbImage::new(451, 300);
        let (c, p) = fit(&img, 224);
        assert_eq!(c.dimensions(), (224, 224));
        assert_eq!(p.resized, (336, 224));
        assert_eq!(p.crop, (56, 0));
        let (x, y) = p.to_original(0.0, 224.0);
        assert!((x - 56.0 * 451.0 / 336.0).abs() < 1e-9 && (y - 300.0).abs() < 1e-9);
    }

    #[test]
    fn fit_with_torchvision_geometry() {
        let img = RgbImage::new(451, 300);
        let (c, p) = fit_with(&img, 256, 224);
        assert_eq!(c.dimensions(), (224, 224));
        assert_eq!(p.resized, (384, 256));
        assert_eq!(p.crop, (80, 16));
        let square = RgbImage::new(224, 224);
        assert_eq!(fit_with(&square, 256, 224).1.resized, (224, 224));
    }
}
