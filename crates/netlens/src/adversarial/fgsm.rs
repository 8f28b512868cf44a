//! FGSM (Goodfellow, Shlens & Szegedy 2015): one signed gradient step of size ε.
//!
//! Targeted: `x' = x − ε · sign(∇ₓ CE(f(x), target))`; untargeted: `x' = x + ε · sign(∇ₓ
//! CE(f(x), true))`; then clamped to the valid pixel range. ε is in 0–255 pixel units and is
//! converted to normalized units per channel.

use super::attack::{Crafted, Tick};
use super::objective::CrossEntropy;
use crate::batch::ImageBatch;
use crate::error::Result;
use crate::gradients::{ascend, Ascent, Constraint, PixelParam, Step, Stop};
use crate::models::Classifier;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// One FGSM step of `epsilon` pixel units on normalized images `x0`.
/// An image already classified as its target (or, untargeted, already misclassified) is left
/// alone.
pub fn run(
    model: &dyn Classifier,
    x0: ImageBatch,
    classes: &[usize],
    untargeted: bool,
    epsilon: f32,
    tick: &mut dyn FnMut(Tick),
) -> Result<Crafted> {
    let norm = model.spec().normalization;
    let objective = CrossEntropy {
        classes: classes.to_vec(),
        untargeted,
    };
    let size = [0, 1, 2].map(|c| epsilon * norm.pixel_unit(c));
    let ascent = Ascent {
        objective: &objective,
        param: &PixelParam,
        transforms: Vec::new(),
        step: Step::Sign { size },
        constraint: Constraint {
            pixel_box: Some(norm),
            linf: Some(epsilon),
            l2: None,
            center: Some(x0.clone()),
            norm: Some(norm),
        },
        post: None,
        stop: Stop::Classified {
            targets: classes.to_vec(),
            untargeted,
            max: 1,
            norm,
        },
    };
    let mut rng = StdRng::seed_from_u64(0);
    let n = x0.len();
    let r = ascend(model, &ascent, x0, &mut rng, &mut |p| {
        tick(Tick {
            iteration: p.iteration,
            max_iterations: 1,
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
