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

    /// A map at model-input resolution (`size`×`size`, row-major) resampled onto the original
    /// image's pixel grid (`original.1` rows of `original.0`), bilinear between pixel centres
    /// and clamped at the crop's edges. Pixels the model never saw (outside the centre crop)
    /// are NaN: there is no attribution there, and 0 would claim one.
    pub fn map_to_original(&self, map: &[f32]) -> Vec<f32> {
        let n = self.size as usize;
        let (ow, oh) = (self.original.0 as usize, self.original.1 as usize);
        if map.len() != n * n {
            return vec![f32::NAN; ow * oh];
        }
        let sx = f64::from(self.resized.0) / f64::from(self.original.0.max(1));
        let sy = f64::from(self.resized.1) / f64::from(self.original.1.max(1));
        let last = n as f64 - 1.0;
        // Input-pixel coordinate of an original pixel's centre along one axis, or None
        // outside the crop.
        let coord = |p: usize, s: f64, crop: u32| {
            let c = (p as f64 + 0.5) * s - f64::from(crop) - 0.5;
            (c >= -0.5 && c <= last + 0.5).then(|| c.clamp(0.0, last))
        };
        let xs: Vec<Option<f64>> = (0..ow).map(|x| coord(x, sx, self.crop.0)).collect();
        let mut out = Vec::with_capacity(ow * oh);
        for y in 0..oh {
            let Some(cy) = coord(y, sy, self.crop.1) else {
                out.extend(std::iter::repeat_n(f32::NAN, ow));
                continue;
            };
            let (y0, fy) = (cy.floor() as usize, cy - cy.floor());
            let y1 = (y0 + 1).min(n - 1);
            for cx in &xs {
                let Some(cx) = *cx else {
                    out.push(f32::NAN);
                    continue;
                };
                let (x0, fx) = (cx.floor() as usize, cx - cx.floor());
                let x1 = (x0 + 1).min(n - 1);
                let at = |yy: usize, xx: usize| f64::from(map[yy * n + xx]);
                let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
                let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
                out.push((top * (1.0 - fy) + bottom * fy) as f32);
            }
        }
        out
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
    fn map_back_onto_the_photo() {
        // 451×300 photo: resized to 336×224, crop starts at x = 56 of the resized image.
        let (_, p) = fit(&RgbImage::new(451, 300), 224);
        let map: Vec<f32> = (0..224 * 224).map(|i| (i % 224) as f32).collect();
        let back = p.map_to_original(&map);
        assert_eq!(back.len(), 451 * 300);
        // Left and right margins were cropped away: no attribution there.
        assert!(back[0].is_nan() && back[450].is_nan());
        // The map's columns grow left to right across the kept part of every row.
        let row = &back[150 * 451..151 * 451];
        let kept: Vec<f32> = row.iter().copied().filter(|v| !v.is_nan()).collect();
        assert!(kept.len() > 290 && kept.len() < 310, "{}", kept.len());
        assert!(kept.windows(2).all(|w| w[1] >= w[0]));
        assert!(kept[0] < 1.0 && *kept.last().unwrap() > 222.0);
        // A photo already at the input size comes back unchanged.
        let (_, same) = fit(&RgbImage::new(224, 224), 224);
        assert_eq!(same.map_to_original(&map), map);
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
