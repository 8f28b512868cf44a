//! Infidelity (Yeh, Hsieh, Suggala, Inouye & Ravikumar 2019, "On the (In)fidelity and
//! Sensitivity of Explanations", NeurIPS, definition 2.1): how badly the map, read as a linear
//! model, predicts what perturbations do to the network,
//! `E_I[(Iᵀ Φ(x) − (f(x) − f(x − I)))²]`, with `f` the logit of the explained class and `I`
//! the paper's "noisy baseline" perturbation, Gaussian noise of standard deviation `sigma`
//! in the model's normalized input units. Estimated by Monte Carlo over `samples` draws, as
//! Captum's `infidelity`; with `normalize=True` as here (Captum's option, the paper's
//! section 3 scale invariance), the map is first scaled by the best factor
//! `β = E[IᵀΦ · Δf] / E[(IᵀΦ)²]`, so that maps that differ by a constant factor score alike:
//! the value is `(β²·A − 2β·B + C) / samples` with `A = Σ(IᵀΦ)²`, `B = Σ IᵀΦ·Δf`,
//! `C = Σ Δf²`, Captum's own expression. The map has one value per pixel; `IᵀΦ` sums the
//! perturbation of the three channels of a pixel times its value (the map broadcast over the
//! channels). Lower is better; 0 means the map predicts every perturbation's effect exactly.

use super::deletion_insertion::probabilities_with;
use crate::error::{Error, Result};
use crate::models::Classifier;
use crate::saliency::seeding::image_rng;
use crate::saliency::Run;
use rand_distr::{Distribution, Normal};

/// The estimate's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Infidelity {
    /// Standard deviation of the Gaussian perturbation (normalized input units).
    pub sigma: f32,
    /// Perturbations per image.
    pub samples: usize,
    /// Seeds the perturbations.
    pub seed: u64,
}

impl Default for Infidelity {
    fn default() -> Self {
        Self {
            sigma: 0.1,
            samples: 32,
            seed: 0,
        }
    }
}

/// Forward passes per image.
pub fn passes(s: &Infidelity) -> usize {
    s.samples + 1
}

/// The seeded Gaussian perturbations of one image, drawn from the seed and the image's own
/// values (so that an image gets the same draws alone, in any batch, chunk or shard).
pub fn gaussian_perturbations(s: &Infidelity, image: &[f32]) -> Result<Vec<Vec<f32>>> {
    let normal = Normal::new(0.0f32, s.sigma)
        .map_err(|e| Error::Invalid(format!("infidelity sigma {}: {e}", s.sigma)))?;
    let mut rng = image_rng(s.seed, "infidelity", image);
    Ok((0..s.samples)
        .map(|_| (0..image.len()).map(|_| normal.sample(&mut rng)).collect())
        .collect())
}

/// Infidelity of the per-pixel `map` (`h`·`w` values) of the normalized CHW `image` for
/// class `target`, over the given `perturbations` (each `3·h·w` values; the network sees
/// `image − I`).
#[allow(clippy::too_many_arguments)]
pub fn infidelity_with(
    model: &dyn Classifier,
    image: &[f32],
    h: usize,
    w: usize,
    map: &[f32],
    target: usize,
    perturbations: &[Vec<f32>],
    run: &mut Run,
) -> Result<f64> {
    let plane = h * w;
    if image.len() != 3 * plane || map.len() != plane || perturbations.is_empty() {
        return Err(Error::Invalid(format!(
            "infidelity: image of {} values, map of {}, {} perturbations for {h}×{w}",
            image.len(),
            map.len(),
            perturbations.len()
        )));
    }
    if let Some(p) = perturbations.iter().find(|p| p.len() != image.len()) {
        return Err(Error::Invalid(format!(
            "infidelity: a perturbation of {} values for an image of {}",
            p.len(),
            image.len()
        )));
    }
    let k = model.classes();
    // The unperturbed image first, then x − I for each perturbation.
    let mut x = Vec::with_capacity((perturbations.len() + 1) * image.len());
    x.extend_from_slice(image);
    for p in perturbations {
        x.extend(image.iter().zip(p).map(|(a, b)| a - b));
    }
    let mut f = Vec::with_capacity(perturbations.len() + 1);
    probabilities_with(model, &x, h, w, target, run, &mut |logits| {
        f.extend(logits.chunks(k).map(|row| f64::from(row[target])))
    })?;
    let (mut a, mut b, mut c) = (0.0f64, 0.0f64, 0.0f64);
    for (p, fp) in perturbations.iter().zip(&f[1..]) {
        let dot: f64 = (0..3)
            .map(|ch| {
                p[ch * plane..(ch + 1) * plane]
                    .iter()
                    .zip(map)
                    .map(|(i, m)| f64::from(*i) * f64::from(*m))
                    .sum::<f64>()
            })
            .sum();
        let diff = f[0] - fp;
        a += dot * dot;
        b += dot * diff;
        c += diff * diff;
    }
    let beta = if a != 0.0 { b / a } else { 0.0 };
    Ok((beta * beta * a - 2.0 * beta * b + c) / perturbations.len() as f64)
}

/// Infidelity with seeded Gaussian perturbations ([`gaussian_perturbations`]).
#[allow(clippy::too_many_arguments)]
pub fn infidelity(
    model: &dyn Classifier,
    image: &[f32],
    h: usize,
    w: usize,
    map: &[f32],
    target: usize,
    s: &Infidelity,
    run: &mut Run,
) -> Result<f64> {
    let ps = gaussian_perturbations(s, image)?;
    infidelity_with(model, image, h, w, map, target, &ps, run)
}
