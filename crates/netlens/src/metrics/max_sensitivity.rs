//! Max-sensitivity (Yeh, Hsieh, Suggala, Inouye & Ravikumar 2019, "On the (In)fidelity and
//! Sensitivity of Explanations", NeurIPS, definition 3.1): the largest relative change of the
//! map when the input moves by a little noise,
//! `max_{‖δ‖∞ ≤ r} ‖Φ(x + δ) − Φ(x)‖ / ‖Φ(x)‖`, estimated as the paper and Quantus's
//! `MaxSensitivity` do by Monte Carlo: `samples` draws of δ uniform in [−r, r] per input value
//! (normalized units; Quantus's default r = 0.2), the same class explained, Frobenius norms of
//! the raw (signed) maps, the maximum over the draws. Lower is more robust. Quantus's default
//! is 200 draws; netlens's CLI takes fewer by default because each draw recomputes every map.

use crate::batch::{ImageBatch, ImageBatchRef};
use crate::error::{Error, Result};
use crate::models::Classifier;
use crate::saliency::seeding::image_rng;
use crate::saliency::{Attribution, Map, Run, Targets};
use rand::Rng;

/// The estimate's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sensitivity {
    /// Half-width of the uniform noise, in normalized input units.
    pub radius: f32,
    /// Noise draws per image.
    pub samples: usize,
    /// Seeds the draws (draw `s` of an image from `seed`, `s` and the image's pixels).
    pub seed: u64,
}

impl Default for Sensitivity {
    fn default() -> Self {
        Self {
            radius: 0.2,
            samples: 10,
            seed: 0,
        }
    }
}

/// Image passes the estimate takes for `n` images.
pub fn passes(method: &dyn Attribution, n: usize, s: &Sensitivity) -> usize {
    s.samples * method.passes(n)
}

/// `‖a − b‖ / ‖a‖` (Frobenius norms, float64).
pub fn relative_change(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum();
    let den: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum();
    (num / den).sqrt()
}

/// The noise of one draw: `noise(draw)` returns δ for the whole flat batch (as long as `x`),
/// draw `0` first. [`max_sensitivity`] draws it uniform in [−r, r]; a reference comparison
/// passes the perturbations the other side uses.
pub type Noise<'a> = dyn FnMut(usize) -> Vec<f32> + 'a;

/// Max-sensitivity of `method`'s `maps` of the normalized images `x`, one value per image.
pub fn max_sensitivity(
    model: &dyn Classifier,
    method: &dyn Attribution,
    x: ImageBatchRef,
    maps: &[Map],
    s: &Sensitivity,
    run: &mut Run,
) -> Result<Vec<f64>> {
    // Each image's noise is drawn from its own pixels, the seed and the draw
    // ([`image_rng`]), so that its value is the same alone, in any batch or chunk.
    let mut uniform = |draw: usize| {
        x.images()
            .flat_map(|img| {
                let mut rng = image_rng(s.seed, &format!("max-sensitivity draw {draw}"), img);
                (0..img.len())
                    .map(|_| rng.random_range(-s.radius..=s.radius))
                    .collect::<Vec<f32>>()
            })
            .collect()
    };
    max_sensitivity_with(model, method, x, maps, s.samples, &mut uniform, run)
}

/// [`max_sensitivity`] with the perturbations given: `samples` draws of `noise` (each δ as
/// long as `x`, added to it in float32 as Quantus's `perturb_func` output is), the maximum of
/// `‖Φ(x + δ) − Φ(x)‖ / ‖Φ(x)‖` over the draws per image (NaN wins, as a failure should).
pub fn max_sensitivity_with(
    model: &dyn Classifier,
    method: &dyn Attribution,
    x: ImageBatchRef,
    maps: &[Map],
    samples: usize,
    noise: &mut Noise<'_>,
    run: &mut Run,
) -> Result<Vec<f64>> {
    let targets = Targets::PerImage(maps.iter().map(|m| m.target).collect());
    let mut worst = vec![f64::NEG_INFINITY; maps.len()];
    for draw in 0..samples {
        let delta = noise(draw);
        if delta.len() != x.values().len() {
            return Err(Error::Invalid(format!(
                "max-sensitivity: draw {draw} has {} noise values for {} input values",
                delta.len(),
                x.values().len()
            )));
        }
        let noisy: Vec<f32> = x
            .values()
            .iter()
            .zip(&delta)
            .map(|(&v, &d)| v + d)
            .collect();
        let noisy = ImageBatch::new(noisy, x.shape())?;
        let moved = method.attribute(model, noisy.view(), &targets, run)?;
        for ((w, a), b) in worst.iter_mut().zip(maps).zip(&moved) {
            let r = relative_change(&a.values, &b.values);
            if r > *w || r.is_nan() {
                *w = r;
            }
        }
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_change_cases() {
        assert_eq!(relative_change(&[3.0, 4.0], &[3.0, 4.0]), 0.0);
        assert!((relative_change(&[3.0, 4.0], &[0.0, 0.0]) - 1.0).abs() < 1e-12);
        assert!(relative_change(&[0.0], &[1.0]).is_infinite());
    }
}
