//! CS231n's `make_fooling_image`: on the normalized input, step `lr · g / ‖g‖₂` up the target
//! class's raw score until the network's argmax is the target (at most `max_iterations`).
//!
//! The assignment checks the float image; here the stop rule checks the image as it would be
//! saved (clamped, 8-bit), so the loop keeps going where rounding undoes the last step.

use super::attack::{Crafted, Tick};
use super::objective::CrossEntropy;
use crate::batch::ImageBatch;
use crate::error::Result;
use crate::gradients::{ascend, Ascent, ClassScore, Constraint, Objective, PixelParam, Step, Stop};
use crate::models::Classifier;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Settings of the CS231n fooling loop (the assignment's: learning rate 1, at most 100
/// iterations).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cs231nFooling {
    pub learning_rate: f32,
    pub max_iterations: usize,
}

impl Default for Cs231nFooling {
    fn default() -> Self {
        Self {
            learning_rate: 1.0,
            max_iterations: 100,
        }
    }
}

/// Runs the loop on normalized images `x0`. Targeted runs ascend the
/// target's score exactly as the assignment does; untargeted runs ascend CE(true class).
pub fn run(
    model: &dyn Classifier,
    x0: ImageBatch,
    classes: &[usize],
    untargeted: bool,
    cfg: &Cs231nFooling,
    tick: &mut dyn FnMut(Tick),
) -> Result<Crafted> {
    let norm = model.spec().normalization;
    let score = ClassScore {
        targets: classes.to_vec(),
    };
    let ce = CrossEntropy {
        classes: classes.to_vec(),
        untargeted: true,
    };
    let objective: &dyn Objective = if untargeted { &ce } else { &score };
    let ascent = Ascent {
        objective,
        param: &PixelParam,
        transforms: Vec::new(),
        step: Step::NormalizedL2 {
            lr: cfg.learning_rate,
        },
        constraint: Constraint::default(),
        post: None,
        stop: Stop::Classified {
            targets: classes.to_vec(),
            untargeted,
            max: cfg.max_iterations,
            norm,
        },
    };
    let mut rng = StdRng::seed_from_u64(0);
    let n = x0.len();
    let r = ascend(model, &ascent, x0, &mut rng, &mut |p| {
        tick(Tick {
            iteration: p.iteration,
            max_iterations: cfg.max_iterations,
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
