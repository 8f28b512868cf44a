//! RISE (Petsiuk, Das & Saenko 2018, "RISE: Randomized Input Sampling for Explanation of
//! Black-box Models", section 3): random masks, the target's probability on each masked
//! image, and the saliency `S = Σ_i P_i · M_i / (N · p)` (the Monte Carlo estimate of
//! `E[P · M] / p`).
//!
//! The masks follow the paper's code: an `s × s` grid of cells (`cell`, the paper's s) each
//! kept with probability `p`, upsampled bilinearly to `(s + 1) · C` with `C = ⌈H / s⌉` (the
//! cell size in pixels), then cropped to the input at a random shift in `[0, C)` on each axis.
//! Upsampling is PyTorch's `F.interpolate(mode="bilinear", align_corners=False)`
//! ([`upsample_bilinear`]; the paper's Keras code uses scikit-image's `resize(order=1,
//! mode="reflect")`, equal away from the border). A mask multiplies the normalized input, so
//! that a removed pixel becomes 0, the normalization's mean (the paper's PyTorch code does the
//! same). The score is the softmax probability of the target.
//!
//! The masks come from one generator seeded with the seed: for each mask its `s²` cells, then
//! its two shifts. Every image of a call uses the same masks, whatever the batch size or the
//! number of threads, so the same seed gives the same maps byte for byte. Only one batch of
//! masked images exists at a time.

use super::perturbation::{copy_scores, Copies, Score};
use super::{Attribution, Batch, Map, Run};
use crate::error::{Error, Result};
use crate::imaging::resample::upsample_bilinear;
use crate::models::Classifier;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cell::RefCell;
use std::ops::RangeInclusive;

/// RISE's settings; `Default` is the library's (and the CLI's) default.
#[derive(Debug, Clone, PartialEq)]
pub struct RiseConfig {
    /// Number of masks N, in [`RiseConfig::MASKS`].
    pub masks: usize,
    /// Cells per side of a mask's grid (the paper's s), in [`RiseConfig::CELL`].
    pub cell: usize,
    /// Probability that a cell is kept, in (0, 1].
    pub p: f32,
}

impl RiseConfig {
    /// Accepted mask counts.
    pub const MASKS: RangeInclusive<usize> = 1..=100_000;
    /// Accepted grid sizes.
    pub const CELL: RangeInclusive<usize> = 1..=64;
}

impl Default for RiseConfig {
    /// The paper's s = 7 and p = 0.5; 1000 masks (the paper uses 4000 for ResNet-50), about
    /// six seconds an image on Lite0 with two cores.
    fn default() -> Self {
        Self {
            masks: 1000,
            cell: 7,
            p: 0.5,
        }
    }
}

/// A set of masks in their low-resolution form: `grids` `[N, s, s]` (0 or 1), the shift
/// `[dy, dx]` of each, and the cell size `C` in pixels they were drawn for.
#[derive(Debug, Clone, PartialEq)]
pub struct RiseMasks {
    pub grids: Vec<f32>,
    pub cell: usize,
    pub shifts: Vec<[usize; 2]>,
    pub cell_size: [usize; 2],
}

impl RiseMasks {
    /// Number of masks.
    pub fn len(&self) -> usize {
        self.shifts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.shifts.is_empty()
    }

    /// Mask `i` at `h × w`: its grid upsampled to `(s + 1) · C`, cropped at its shift.
    pub fn mask(&self, i: usize, h: usize, w: usize) -> Vec<f32> {
        let s = self.cell;
        let [ch, cw] = self.cell_size;
        let (uh, uw) = ((s + 1) * ch, (s + 1) * cw);
        let up = upsample_bilinear(&self.grids[i * s * s..(i + 1) * s * s], s, s, uh, uw);
        let [dy, dx] = self.shifts[i];
        (0..h)
            .flat_map(|y| {
                up[(y + dy) * uw + dx..(y + dy) * uw + dx + w]
                    .iter()
                    .copied()
            })
            .collect()
    }
}

/// RISE with checked settings and the seed of its masks (or masks given).
#[derive(Debug, Clone)]
pub struct Rise {
    config: RiseConfig,
    seed: u64,
    given: Option<RiseMasks>,
}

impl Rise {
    /// RISE with `config` (ranges checked), masks drawn from `seed`.
    pub fn new(config: RiseConfig, seed: u64) -> Result<Self> {
        let c = &config;
        if !RiseConfig::MASKS.contains(&c.masks) {
            return Err(Error::Invalid(format!(
                "RISE needs {:?} masks, got {}",
                RiseConfig::MASKS,
                c.masks
            )));
        }
        if !RiseConfig::CELL.contains(&c.cell) {
            return Err(Error::Invalid(format!(
                "RISE's grid must have {:?} cells per side, got {}",
                RiseConfig::CELL,
                c.cell
            )));
        }
        if !(c.p > 0.0 && c.p <= 1.0) {
            return Err(Error::Invalid(format!(
                "RISE's keep probability p must be in (0, 1], got {}",
                c.p
            )));
        }
        Ok(Self {
            config,
            seed,
            given: None,
        })
    }

    /// RISE on these masks (a reference's), with keep probability `p` for the normalization.
    pub fn with_masks(masks: RiseMasks, p: f32) -> Result<Self> {
        let config = RiseConfig {
            masks: masks.len(),
            cell: masks.cell,
            p,
        };
        let mut r = Rise::new(config, 0)?;
        if masks.grids.len() != masks.len() * masks.cell * masks.cell {
            return Err(Error::Invalid(
                "RISE grids do not match the mask count".into(),
            ));
        }
        r.given = Some(masks);
        Ok(r)
    }

    /// The masks for an `h × w` input, drawn from the seed (or the masks given).
    pub fn masks(&self, h: usize, w: usize) -> RiseMasks {
        if let Some(m) = &self.given {
            return m.clone();
        }
        let s = self.config.cell;
        let cell_size = [h.div_ceil(s), w.div_ceil(s)];
        let mut rng = StdRng::seed_from_u64(self.seed);
        let n = self.config.masks;
        let p = f64::from(self.config.p);
        let mut grids = Vec::with_capacity(n * s * s);
        let mut shifts = Vec::with_capacity(n);
        for _ in 0..n {
            grids.extend((0..s * s).map(|_| f32::from(u8::from(rng.random::<f64>() < p))));
            shifts.push([
                rng.random_range(0..cell_size[0]),
                rng.random_range(0..cell_size[1]),
            ]);
        }
        RiseMasks {
            grids,
            cell: s,
            shifts,
            cell_size,
        }
    }
}

impl Attribution for Rise {
    fn name(&self) -> String {
        "rise".into()
    }

    /// One forward pass per mask and image.
    fn passes(&self, n: usize) -> usize {
        n * self.config.masks
    }

    fn step(&self, model: &dyn Classifier, batch: &Batch, run: &mut Run) -> Result<Vec<Map>> {
        let [b, c, h, w] = batch.inputs.shape();
        let masks = self.masks(h, w);
        let [ch, cw] = masks.cell_size;
        let (uh, uw) = ((masks.cell + 1) * ch, (masks.cell + 1) * cw);
        if masks
            .shifts
            .iter()
            .any(|&[dy, dx]| dy + h > uh || dx + w > uw)
        {
            return Err(Error::Invalid(format!(
                "RISE masks with {ch}×{cw}-pixel cells do not cover a {h}×{w} input"
            )));
        }
        let plane = h * w;
        let norm = masks.len() as f64 * f64::from(self.config.p);
        let mut maps = Vec::with_capacity(b);
        for i in 0..b {
            let mut sal = vec![0f64; plane];
            // Each mask is made once per batch of copies and kept for the sum.
            let current: RefCell<Vec<Vec<f32>>> = RefCell::new(Vec::new());
            let mut make = |j: usize, copy: &mut [f32]| {
                let m = masks.mask(j, h, w);
                for ch in 0..c {
                    copy[ch * plane..(ch + 1) * plane]
                        .iter_mut()
                        .zip(&m)
                        .for_each(|(v, k)| *v *= k);
                }
                current.borrow_mut().push(m);
            };
            let mut done = |_: std::ops::Range<usize>, scores: &[f64], run: &mut Run| {
                for (m, &s) in current.borrow_mut().drain(..).zip(scores) {
                    sal.iter_mut()
                        .zip(&m)
                        .for_each(|(a, &k)| *a += s * f64::from(k));
                }
                (run.progress)(scores.len());
            };
            let copies = Copies {
                image: batch.inputs.image(i),
                shape: [c, h, w],
                target: batch.targets[i],
                score: Score::Probability,
                count: masks.len(),
            };
            copy_scores(model, &copies, run, &mut make, &mut done)?;
            let values = sal.into_iter().map(|v| (v / norm) as f32).collect();
            maps.push(batch.map(i, values, false));
        }
        Ok(maps)
    }
}
