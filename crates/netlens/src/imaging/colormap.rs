//! Maps to colour: a perceptual colormap (inferno by default), heatmap overlays on photos.

use image::{Rgb, RgbImage};

/// Perceptually uniform colormaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Colormap {
    #[default]
    Inferno,
    Viridis,
    Magma,
    /// Blue–white–red, for signed maps (differences, signed attributions).
    Diverging,
}

impl Colormap {
    /// Colour of `t` in [0, 1] (clamped).
    pub fn color(&self, t: f32) -> Rgb<u8> {
        let t = f64::from(t.clamp(0.0, 1.0));
        let c = match self {
            Colormap::Inferno => colorous::INFERNO.eval_continuous(t),
            Colormap::Viridis => colorous::VIRIDIS.eval_continuous(t),
            Colormap::Magma => colorous::MAGMA.eval_continuous(t),
            Colormap::Diverging => colorous::RED_BLUE.eval_continuous(1.0 - t),
        };
        Rgb([c.r, c.g, c.b])
    }
}

/// Min and max of finite values (0, 1 when there are none).
pub fn finite_range(map: &[f32]) -> (f32, f32) {
    let (lo, hi) = map
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    if lo.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

/// A `w`×`h` row-major map as a colour image, scaled from its min (dark) to its max (bright).
pub fn colorize(map: &[f32], w: u32, h: u32, cmap: Colormap) -> RgbImage {
    let (lo, hi) = finite_range(map);
    let span = if hi > lo { hi - lo } else { 1.0 };
    RgbImage::from_fn(w, h, |x, y| {
        let v = map[(y * w + x) as usize];
        cmap.color(if v.is_finite() { (v - lo) / span } else { 0.0 })
    })
}

/// A signed map centred on zero (white), red positive, blue negative, scaled by max |v|.
pub fn colorize_signed(map: &[f32], w: u32, h: u32) -> RgbImage {
    let m = map
        .iter()
        .filter(|v| v.is_finite())
        .fold(0f32, |a, &v| a.max(v.abs()));
    let m = if m > 0.0 { m } else { 1.0 };
    RgbImage::from_fn(w, h, |x, y| {
        let v = map[(y * w + x) as usize];
        Colormap::Diverging.color(0.5 + 0.5 * v / m)
    })
}

/// The map blended over the photo: `alpha` of the heatmap where the map is high, fading to
/// the photo where it is low.
pub fn overlay(photo: &RgbImage, map: &[f32], cmap: Colormap, alpha: f32) -> RgbImage {
    let (w, h) = photo.dimensions();
    let (lo, hi) = finite_range(map);
    let span = if hi > lo { hi - lo } else { 1.0 };
    RgbImage::from_fn(w, h, |x, y| {
        let v = map[(y * w + x) as usize];
        let t = if v.is_finite() {
            ((v - lo) / span).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let c = cmap.color(t);
        let a = alpha * t.sqrt();
        let p = photo.get_pixel(x, y);
        Rgb(std::array::from_fn(|k| {
            (f32::from(p[k]) * (1.0 - a) + f32::from(c[k]) * a).round() as u8
        }))
    })
}
