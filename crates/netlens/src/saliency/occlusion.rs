//! Occlusion (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks",
//! section 4.2), as Captum's `Occlusion`: a square window slides over the image with a stride,
//! covering all three channels; each position replaces the window by a fill value, and the
//! drop of the target's logit, `score(x) − score(occluded)`, is added to every pixel the
//! window covers. A pixel's attribution is the mean drop over the windows that cover it.
//!
//! Window positions along a side of `n` pixels are `0, s, 2s, …` while the window fits,
//! `⌊(n − w) / s⌋ + 1` of them (Captum's); pixels no window reaches (when `(n − w)` is not a
//! multiple of the stride) get 0 where Captum divides 0 by 0. The fill value is in the
//! network's normalized input, 0 (the normalization's mean: grey for EfficientNet-Lite, the
//! ImageNet mean colour for torchvision models) being Captum's default baseline. No gradient
//! is taken: the occluded copies go through the network [`Run::batch_size`] at a time.

use super::perturbation::{copy_scores, target_score, Copies, Score, Ticker};
use super::{Attribution, Batch, Map, Run};
use crate::classify::logits;
use crate::error::{Error, Result};
use crate::models::Classifier;
use std::ops::RangeInclusive;

/// Occlusion's settings; `Default` is the library's (and the CLI's) default.
#[derive(Debug, Clone, PartialEq)]
pub struct OcclusionConfig {
    /// Side of the square window in pixels, in [`OcclusionConfig::WINDOW`] (at most the
    /// input's side).
    pub window: usize,
    /// Step between window positions in pixels, in [`OcclusionConfig::STRIDE`].
    pub stride: usize,
    /// Value of occluded pixels in the normalized input, in [`OcclusionConfig::FILL`].
    pub fill: f32,
}

impl OcclusionConfig {
    /// Accepted window sides.
    pub const WINDOW: RangeInclusive<usize> = 1..=1024;
    /// Accepted strides.
    pub const STRIDE: RangeInclusive<usize> = 1..=1024;
    /// Accepted fill values (normalized inputs lie within about ±3).
    pub const FILL: RangeInclusive<f32> = -10.0..=10.0;
}

impl Default for OcclusionConfig {
    /// A 32-pixel window every 16 pixels: 169 positions on a 224-pixel input, each pixel
    /// covered by one to four windows, about a second an image on Lite0 (Captum's tutorials
    /// use 15 every 8, about four times the passes).
    fn default() -> Self {
        Self {
            window: 32,
            stride: 16,
            fill: 0.0,
        }
    }
}

/// Occlusion with a checked configuration.
#[derive(Debug, Clone)]
pub struct Occlusion {
    config: OcclusionConfig,
}

/// Progress units reported per image (the number of windows depends on the image size).
const UNITS: usize = 100;

impl Occlusion {
    /// Occlusion with `config`, its ranges checked.
    pub fn new(config: OcclusionConfig) -> Result<Self> {
        let c = &config;
        if !OcclusionConfig::WINDOW.contains(&c.window) {
            return Err(Error::Invalid(format!(
                "occlusion window {} must be {:?} pixels",
                c.window,
                OcclusionConfig::WINDOW
            )));
        }
        if !OcclusionConfig::STRIDE.contains(&c.stride) {
            return Err(Error::Invalid(format!(
                "occlusion stride {} must be {:?} pixels",
                c.stride,
                OcclusionConfig::STRIDE
            )));
        }
        if !c.fill.is_finite() || !OcclusionConfig::FILL.contains(&c.fill) {
            return Err(Error::Invalid(format!(
                "occlusion fill {} must be a normalized value in {:?}",
                c.fill,
                OcclusionConfig::FILL
            )));
        }
        Ok(Self { config })
    }

    /// Window positions (top-left offsets) along a side of `n` pixels.
    fn positions(&self, n: usize) -> Result<Vec<usize>> {
        let (w, s) = (self.config.window, self.config.stride);
        if w > n {
            return Err(Error::Invalid(format!(
                "the occlusion window ({w} pixels) is larger than the {n}-pixel input; pick a \
                 smaller --window"
            )));
        }
        Ok((0..=(n - w) / s).map(|k| k * s).collect())
    }
}

impl Attribution for Occlusion {
    fn name(&self) -> String {
        "occlusion".into()
    }

    /// Progress units: 100 per image (one forward pass per window position, plus one).
    fn passes(&self, n: usize) -> usize {
        n * UNITS
    }

    fn step(&self, model: &dyn Classifier, batch: &Batch, run: &mut Run) -> Result<Vec<Map>> {
        let [b, c, h, w] = batch.inputs.shape();
        let (ys, xs) = (self.positions(h)?, self.positions(w)?);
        let windows: Vec<(usize, usize)> = ys
            .iter()
            .flat_map(|&y| xs.iter().map(move |&x| (y, x)))
            .collect();
        let (win, fill) = (self.config.window, self.config.fill);
        let plane = h * w;
        // How many windows cover each pixel.
        let mut count = vec![0u32; plane];
        for &(y0, x0) in &windows {
            for y in y0..y0 + win {
                count[y * w + x0..y * w + x0 + win]
                    .iter_mut()
                    .for_each(|k| *k += 1);
            }
        }
        let whole = logits(model, batch.tensor());
        let classes = model.classes();
        let mut maps = Vec::with_capacity(b);
        for i in 0..b {
            let target = batch.targets[i];
            let base = target_score(&whole[i * classes..(i + 1) * classes], target, Score::Logit);
            let mut ticker = Ticker::new(windows.len() + 1, UNITS);
            ticker.advance(1, run);
            let mut drop = vec![0f64; plane];
            let mut make = |j: usize, copy: &mut [f32]| {
                let (y0, x0) = windows[j];
                for ch in 0..c {
                    for y in y0..y0 + win {
                        let row = ch * plane + y * w + x0;
                        copy[row..row + win].fill(fill);
                    }
                }
            };
            let mut done = |r: std::ops::Range<usize>, scores: &[f64], run: &mut Run| {
                for (j, s) in r.clone().zip(scores) {
                    let (y0, x0) = windows[j];
                    for y in y0..y0 + win {
                        drop[y * w + x0..y * w + x0 + win]
                            .iter_mut()
                            .for_each(|d| *d += base - s);
                    }
                }
                ticker.advance(r.len(), run);
            };
            let copies = Copies {
                image: batch.inputs.image(i),
                shape: [c, h, w],
                target,
                score: Score::Logit,
                count: windows.len(),
            };
            copy_scores(model, &copies, run, &mut make, &mut done)?;
            let values = drop
                .iter()
                .zip(&count)
                .map(|(&d, &k)| {
                    if k == 0 {
                        0.0
                    } else {
                        (d / f64::from(k)) as f32
                    }
                })
                .collect();
            maps.push(batch.map(i, values, true));
        }
        Ok(maps)
    }
}
