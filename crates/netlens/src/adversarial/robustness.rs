//! Random noise vs. adversarial change (CS231n Q6): top-1 agreement with the clean prediction
//! as Gaussian noise grows, beside the same as the PGD ε grows. Every perturbed image is
//! judged as saved (rounded to 8 bits, clamped to 0–255).

use super::attack::{attack, Attack, AttackMethod, Goal};
use super::measure::distance;
use super::pgd::Pgd;
use crate::classify::classify;
use crate::error::Result;
use crate::models::Classifier;
use image::RgbImage;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// What to sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// Noise standard deviations, 0–255 units.
    pub sigmas: Vec<f32>,
    /// Noisy copies per image and σ.
    pub draws: usize,
    /// PGD L∞ radii, 0–255 units.
    pub epsilons: Vec<f32>,
    /// PGD steps (untargeted, step 2.5·ε/steps, random start).
    pub steps: usize,
    pub seed: u64,
    pub batch: usize,
}

impl Default for Sweep {
    fn default() -> Self {
        Self {
            sigmas: vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0],
            draws: 4,
            epsilons: vec![1.0, 2.0, 4.0, 8.0, 16.0],
            steps: 10,
            seed: 0,
            batch: 8,
        }
    }
}

/// One point of a curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// σ (noise) or ε (PGD), 0–255 units.
    pub value: f32,
    /// Fraction of perturbed images whose top-1 class is the clean one.
    pub agreement: f64,
    /// Mean root-mean-square change per value of the saved images, 0–255 units.
    pub rms: f64,
    /// Mean L∞ change of the saved images, 0–255 units.
    pub linf: f64,
    /// Perturbed images judged.
    pub count: usize,
}

/// Both curves.
#[derive(Debug, Clone)]
pub struct Curves {
    pub model: String,
    pub images: usize,
    pub noise: Vec<Level>,
    pub pgd: Vec<Level>,
}

/// The same image plus Gaussian noise of `sigma` (0–255 units), rounded and clamped.
pub fn add_noise(img: &RgbImage, sigma: f32, rng: &mut StdRng) -> RgbImage {
    let mut out = img.clone();
    for v in out.iter_mut() {
        let z: f32 = rng.sample(StandardNormal);
        *v = (f32::from(*v) + sigma * z).round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// Sweeps noise and PGD on `images` (already at the model's input size). `tick` gets
/// `(levels done, levels in all)`.
pub fn robustness(
    model: &dyn Classifier,
    images: &[RgbImage],
    sweep: &Sweep,
    tick: &mut dyn FnMut(usize, usize),
) -> Result<Curves> {
    let batch = sweep.batch.max(1);
    let clean: Vec<usize> = classify(model, images, 1, batch)
        .iter()
        .map(|p| p.class())
        .collect();
    let total = sweep.sigmas.len() + sweep.epsilons.len();
    let mut rng = StdRng::seed_from_u64(sweep.seed);
    let mut noise = Vec::new();
    for (li, &sigma) in sweep.sigmas.iter().enumerate() {
        let (mut agree, mut rms, mut linf, mut count) = (0usize, 0f64, 0f64, 0usize);
        for _ in 0..sweep.draws.max(1) {
            let noisy: Vec<RgbImage> = images
                .iter()
                .map(|i| add_noise(i, sigma, &mut rng))
                .collect();
            let preds = classify(model, &noisy, 1, batch);
            for ((orig, n), (p, &c)) in images.iter().zip(&noisy).zip(preds.iter().zip(&clean)) {
                let d = distance(orig, n);
                agree += usize::from(p.class() == c);
                rms += d.rms;
                linf += d.linf;
                count += 1;
            }
        }
        noise.push(level(sigma, agree, rms, linf, count));
        tick(li + 1, total);
    }
    let mut pgd = Vec::new();
    for (li, &eps) in sweep.epsilons.iter().enumerate() {
        let a = Attack {
            method: AttackMethod::Pgd(Pgd {
                steps: sweep.steps,
                seed: sweep.seed,
                ..Pgd::linf(eps)
            }),
            goal: Goal::Untargeted,
            batch,
        };
        let fooled = attack(model, images, &a, &mut |_, _| {})?;
        let agree = fooled.iter().filter(|f| !f.success).count();
        let rms = fooled.iter().map(|f| f.distance.rms).sum();
        let linf = fooled.iter().map(|f| f.distance.linf).sum();
        pgd.push(level(eps, agree, rms, linf, fooled.len()));
        tick(sweep.sigmas.len() + li + 1, total);
    }
    Ok(Curves {
        model: model.spec().name.to_string(),
        images: images.len(),
        noise,
        pgd,
    })
}

fn level(value: f32, agree: usize, rms: f64, linf: f64, count: usize) -> Level {
    let n = count.max(1) as f64;
    Level {
        value,
        agreement: agree as f64 / n,
        rms: rms / n,
        linf: linf / n,
        count,
    }
}
