//! Boxes from a saliency map (the practical's Q3): smooth the map's magnitude, keep the pixels
//! above a threshold (a fraction of the maximum or a percentile), and box each 8-connected
//! component. A box's score is the share of the map's total magnitude that its component
//! holds, so scores of one map sum to at most 1 and rank boxes by how much of the evidence
//! they contain. Boxes are in map pixels; [`BoundingBox::to_original`] maps them back into
//! the photo through the model-input [`Placement`].

use super::Map;
use crate::error::{Error, Result};
use crate::imaging::filters::gaussian_blur;
use crate::imaging::Placement;
use image::{GrayImage, Luma};
use imageproc::region_labelling::{connected_components, Connectivity};

/// Which pixels are "on".
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// At least this fraction (0–1) of the map's maximum.
    Fraction(f32),
    /// At least the map's value at this percentile (0–100).
    Percentile(f32),
}

/// How boxes are made; `Default` is the library's (and the CLI's) default.
#[derive(Debug, Clone, PartialEq)]
pub struct LocateOptions {
    pub threshold: Threshold,
    /// σ in map pixels of the Gaussian that smooths the map first (0: none). Gradient maps are
    /// speckled; without smoothing every speck is its own component.
    pub smooth: f32,
    /// Keep at most this many boxes, best first.
    pub max_boxes: usize,
}

impl LocateOptions {
    /// The default threshold's fraction of the smoothed map's maximum.
    pub const DEFAULT_FRACTION: f32 = 0.5;

    /// The options in words, for pages: "threshold 0.5 of the smoothed map's maximum (σ 4
    /// px), at most 3 boxes".
    pub fn describe(&self) -> String {
        let t = match self.threshold {
            Threshold::Fraction(f) => format!("threshold {f} of the smoothed map's maximum"),
            Threshold::Percentile(p) => format!("threshold at the smoothed map's {p}th percentile"),
        };
        format!(
            "{t} (σ {} px), at most {} boxes",
            self.smooth, self.max_boxes
        )
    }
}

impl Default for LocateOptions {
    fn default() -> Self {
        Self {
            threshold: Threshold::Fraction(Self::DEFAULT_FRACTION),
            smooth: 8.0,
            max_boxes: 3,
        }
    }
}

/// An axis-aligned box `[x0, x1) × [y0, y1)` in pixels, with a score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
    pub score: f64,
}

impl BoundingBox {
    /// Width × height (0 for an empty box).
    pub fn area(&self) -> f64 {
        (self.x1 - self.x0).max(0.0) * (self.y1 - self.y0).max(0.0)
    }

    /// Whether the point lies inside the box grown by `tolerance` pixels on every side.
    pub fn contains(&self, x: f64, y: f64, tolerance: f64) -> bool {
        x >= self.x0 - tolerance
            && x <= self.x1 + tolerance
            && y >= self.y0 - tolerance
            && y <= self.y1 + tolerance
    }

    /// The same box in the original photo's pixels, clamped to the photo.
    pub fn to_original(&self, p: &Placement) -> BoundingBox {
        let (x0, y0) = p.to_original(self.x0, self.y0);
        let (x1, y1) = p.to_original(self.x1, self.y1);
        let (w, h) = (f64::from(p.original.0), f64::from(p.original.1));
        BoundingBox {
            x0: x0.clamp(0.0, w),
            y0: y0.clamp(0.0, h),
            x1: x1.clamp(0.0, w),
            y1: y1.clamp(0.0, h),
            score: self.score,
        }
    }
}

/// The map's magnitude smoothed with a Gaussian of `sigma` pixels.
pub fn smoothed(map: &Map, sigma: f32) -> Vec<f32> {
    let mut m = map.magnitude();
    if sigma > 0.0 {
        gaussian_blur(&mut m, map.height, map.width, sigma);
    }
    m
}

/// A component's bounds `(x0, y0, x1, y1)` (exclusive ends) and mass.
type Region = (usize, usize, usize, usize, f64);

/// The boxes of `map`'s strongest regions, best first.
pub fn boxes(map: &Map, o: &LocateOptions) -> Result<Vec<BoundingBox>> {
    let (w, h) = (map.width, map.height);
    if map.values.len() != w * h || w == 0 || h == 0 {
        return Err(Error::Invalid(format!(
            "a {w}×{h} map needs {} values, has {}",
            w * h,
            map.values.len()
        )));
    }
    if !(o.smooth >= 0.0 && o.smooth.is_finite()) {
        return Err(Error::Invalid(format!(
            "smoothing sigma must be ≥ 0, got {}",
            o.smooth
        )));
    }
    let m = smoothed(map, o.smooth);
    let max = m
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0f32, f32::max);
    let total: f64 = m
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| f64::from(v))
        .sum();
    if max <= 0.0 || total <= 0.0 {
        return Ok(Vec::new());
    }
    let cutoff = match o.threshold {
        Threshold::Fraction(f) if (0.0..=1.0).contains(&f) => f * max,
        Threshold::Percentile(p) if (0.0..=100.0).contains(&p) => percentile(&m, p),
        Threshold::Fraction(f) => {
            return Err(Error::Invalid(format!(
                "threshold {f} must be a fraction of the maximum, 0 to 1"
            )))
        }
        Threshold::Percentile(p) => {
            return Err(Error::Invalid(format!(
                "percentile {p} must be between 0 and 100"
            )))
        }
    };
    let mask = GrayImage::from_fn(w as u32, h as u32, |x, y| {
        let v = m[y as usize * w + x as usize];
        Luma([if v > 0.0 && v >= cutoff { 255 } else { 0 }])
    });
    let labels = connected_components(&mask, Connectivity::Eight, Luma([0u8]));
    // Per label: x0, y0, x1, y1 (exclusive), mass.
    let mut regions: Vec<Option<Region>> = Vec::new();
    for (x, y, l) in labels.enumerate_pixels() {
        let l = l[0] as usize;
        if l == 0 {
            continue;
        }
        if regions.len() <= l {
            regions.resize(l + 1, None);
        }
        let (x, y) = (x as usize, y as usize);
        let v = f64::from(m[y * w + x]);
        let r = regions[l].get_or_insert((x, y, x + 1, y + 1, 0.0));
        r.0 = r.0.min(x);
        r.1 = r.1.min(y);
        r.2 = r.2.max(x + 1);
        r.3 = r.3.max(y + 1);
        r.4 += v;
    }
    let mut out: Vec<BoundingBox> = regions
        .into_iter()
        .flatten()
        .map(|(x0, y0, x1, y1, mass)| BoundingBox {
            x0: x0 as f64,
            y0: y0 as f64,
            x1: x1 as f64,
            y1: y1 as f64,
            score: mass / total,
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score));
    out.truncate(o.max_boxes.max(1));
    Ok(out)
}

/// The `p`-th percentile (0–100) of the finite values, by linear interpolation (NumPy's
/// default).
pub fn percentile(values: &[f32], p: f32) -> f32 {
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f32::total_cmp);
    let pos = f64::from(p.clamp(0.0, 100.0)) / 100.0 * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let t = (pos - lo as f64) as f32;
    v[lo] * (1.0 - t) + v[hi] * t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(w: usize, h: usize, on: &[(usize, usize, f32)]) -> Map {
        let mut values = vec![0f32; w * h];
        for &(x, y, v) in on {
            values[y * w + x] = v;
        }
        Map {
            width: w,
            height: h,
            values,
            target: 0,
            signed: false,
            delta: None,
        }
    }

    #[test]
    fn two_blobs_two_boxes_ranked_by_mass() {
        let mut on = Vec::new();
        for y in 2..5 {
            for x in 1..4 {
                on.push((x, y, 1.0)); // 9 pixels
            }
        }
        for y in 7..9 {
            for x in 7..10 {
                on.push((x, y, 1.0)); // 6 pixels
            }
        }
        let m = map(12, 10, &on);
        let o = LocateOptions {
            threshold: Threshold::Fraction(0.5),
            smooth: 0.0,
            max_boxes: 5,
        };
        let b = boxes(&m, &o).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].x0, b[0].y0, b[0].x1, b[0].y1), (1.0, 2.0, 4.0, 5.0));
        assert_eq!((b[1].x0, b[1].y0, b[1].x1, b[1].y1), (7.0, 7.0, 10.0, 9.0));
        assert!((b[0].score - 0.6).abs() < 1e-9 && (b[1].score - 0.4).abs() < 1e-9);
    }

    #[test]
    fn percentile_like_numpy() {
        let v: Vec<f32> = (0..11).map(|i| i as f32).collect();
        assert_eq!(percentile(&v, 50.0), 5.0);
        assert_eq!(percentile(&v, 95.0), 9.5);
        assert_eq!(percentile(&v, 100.0), 10.0);
    }

    #[test]
    fn empty_map_has_no_boxes_and_bad_thresholds_fail() {
        let m = map(4, 4, &[]);
        assert!(boxes(&m, &LocateOptions::default()).unwrap().is_empty());
        let m = map(4, 4, &[(1, 1, 1.0)]);
        let bad = LocateOptions {
            threshold: Threshold::Fraction(1.5),
            ..LocateOptions::default()
        };
        assert!(boxes(&m, &bad).is_err());
    }

    #[test]
    fn boxes_map_back_to_the_photo() {
        let p = Placement {
            original: (451, 300),
            resized: (336, 224),
            crop: (56, 0),
            size: 224,
        };
        let b = BoundingBox {
            x0: 0.0,
            y0: 0.0,
            x1: 224.0,
            y1: 224.0,
            score: 1.0,
        }
        .to_original(&p);
        assert!((b.x0 - 56.0 * 451.0 / 336.0).abs() < 1e-9);
        assert!((b.x1 - 280.0 * 451.0 / 336.0).abs() < 1e-9);
        assert!((b.y1 - 300.0).abs() < 1e-9);
    }
}
