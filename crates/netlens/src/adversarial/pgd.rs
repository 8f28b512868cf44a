//! PGD (Madry et al. 2018): a random start inside the ε-ball, then `steps` ascent steps on
//! the cross-entropy — signed steps for L∞, normalized-gradient steps for L2 — each projected
//! back into the ball and the valid pixel box. ε and the step size are in 0–255 pixel units.
//!
//! By default the run stops early for an image as soon as its saved (8-bit, in-ball) version
//! succeeds (`full_steps` takes every step); the verdict is always made on the saved image,
//! which never leaves the ball (see [`crate::imaging::quantize_in_ball`]).

use super::attack::{Crafted, Tick};
use super::objective::CrossEntropy;
use crate::batch::ImageBatch;
use crate::error::{Error, Result};
use crate::gradients::{ascend, Ascent, Constraint, PixelParam, Step, Stop};
use crate::models::Classifier;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Which ball the perturbation lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    Linf,
    L2,
}

/// PGD settings (pixel units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pgd {
    pub epsilon: f32,
    pub steps: usize,
    /// Step size; `None` is Madry et al.'s `2.5 · ε / steps`.
    pub step_size: Option<f32>,
    pub norm: Norm,
    pub random_start: bool,
    pub seed: u64,
    /// Take every step even after the saved image succeeds (the textbook PGD: a deeper,
    /// more transferable perturbation); otherwise an image stops at its first success.
    pub full_steps: bool,
}

impl Pgd {
    /// L∞ PGD with the usual defaults: 10 steps of 2.5·ε/10, random start, seed 0.
    pub fn linf(epsilon: f32) -> Self {
        Self {
            epsilon,
            steps: 10,
            step_size: None,
            norm: Norm::Linf,
            random_start: true,
            seed: 0,
            full_steps: false,
        }
    }

    /// The step size actually used.
    pub fn step(&self) -> f32 {
        self.step_size
            .unwrap_or(2.5 * self.epsilon / self.steps.max(1) as f32)
    }
}

/// Runs PGD on normalized images `x0`.
pub fn run(
    model: &dyn Classifier,
    x0: ImageBatch,
    classes: &[usize],
    untargeted: bool,
    cfg: &Pgd,
    tick: &mut dyn FnMut(Tick),
) -> Result<Crafted> {
    if !(cfg.epsilon.is_finite() && cfg.epsilon >= 0.0 && cfg.step().is_finite()) {
        return Err(Error::Invalid(format!(
            "PGD needs a finite epsilon ≥ 0 and step size (got {} and {})",
            cfg.epsilon,
            cfg.step()
        )));
    }
    let norm = model.spec().normalization;
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let constraint = Constraint {
        pixel_box: Some(norm),
        linf: (cfg.norm == Norm::Linf).then_some(cfg.epsilon),
        l2: (cfg.norm == Norm::L2).then_some(cfg.epsilon),
        center: Some(x0.clone()),
        norm: Some(norm),
    };
    // Random start, drawn in pixel units and clamped to the pixel box.
    let mut theta = x0.clone();
    if cfg.random_start && cfg.epsilon > 0.0 {
        let per = theta.per_image();
        for i in 0..theta.len() {
            let delta: Vec<f32> = match cfg.norm {
                Norm::Linf => (0..per)
                    .map(|_| rng.random_range(-cfg.epsilon..=cfg.epsilon))
                    .collect(),
                Norm::L2 => {
                    let d: Vec<f32> = (0..per).map(|_| rng.sample(StandardNormal)).collect();
                    let len = d.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                    let r = cfg.epsilon * rng.random_range(0f32..1.0);
                    d.into_iter().map(|v| v * r / len).collect()
                }
            };
            let mut delta = delta.into_iter();
            for (c, plane) in theta.channels_mut(i) {
                let ((lo, hi), unit) = (norm.range(c), norm.pixel_unit(c));
                for (p, dv) in plane.iter_mut().zip(delta.by_ref()) {
                    *p = (*p + dv * unit).clamp(lo, hi);
                }
            }
        }
    }
    let objective = CrossEntropy {
        classes: classes.to_vec(),
        untargeted,
    };
    let step = match cfg.norm {
        Norm::Linf => Step::Sign {
            size: [0, 1, 2].map(|c| cfg.step() * norm.pixel_unit(c)),
        },
        Norm::L2 => Step::PixelL2 {
            size: cfg.step(),
            scale: [0, 1, 2].map(|c| norm.pixel_unit(c)),
        },
    };
    let ascent = Ascent {
        objective: &objective,
        param: &PixelParam,
        transforms: Vec::new(),
        step,
        constraint,
        post: None,
        stop: if cfg.full_steps {
            Stop::Iterations(cfg.steps)
        } else {
            Stop::Classified {
                targets: classes.to_vec(),
                untargeted,
                max: cfg.steps,
                norm,
            }
        },
    };
    let n = x0.len();
    let r = ascend(model, &ascent, theta, &mut rng, &mut |p| {
        tick(Tick {
            iteration: p.iteration,
            max_iterations: cfg.steps,
            done: p.done.iter().filter(|&&d| d).count(),
            images: n,
        });
        true
    })?;
    Ok(Crafted {
        saved: ascent.saved(&r.theta, &norm),
        iterations: r.iterations,
    })
}
