//! The CS231n class visualization (`create_class_visualization`; Simonyan et al. 2014 with
//! Yosinski et al.'s jitter and blur), as one configuration of [`crate::gradients::ascend`].
//!
//! Start from standard normal noise in the normalized space (or from a photo); each iteration
//! rolls the image by random offsets in `[0, max_jitter]`, steps by `learning_rate` along the
//! L2-normalized gradient of `score − l2_reg·‖x‖²`, rolls back, clamps every channel to the
//! valid pixel range, and every `blur_every` iterations (at `t % blur_every == 0`) blurs with a
//! Gaussian of `blur_sigma`.
//!
//! The roll is a differentiable [`Roll`] transform in front of the network rather than an edit
//! of the image: rolling, stepping and rolling back is identical to stepping with the gradient
//! taken through the roll, because the roll is a permutation (its adjoint is the roll back),
//! and both the L2 term and the step's norm `‖g‖` are invariant under permutations.

use super::objective::ScoreMinusL2;
use super::settings::{no_setting, Setting};
use super::transforms::Roll;
use super::{check_class, drive, Options, Tick, Visualization};
use crate::batch::ImageBatch;
use crate::error::{Error, Result};
use crate::gradients::{Ascent, Constraint, PixelParam, PostStep, Step, Stop, Transform};
use crate::imaging::Normalization;
use crate::models::Classifier;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Settings of the CS231n class-visualization recipe (defaults as in
/// `create_class_visualization`).
#[derive(Debug, Clone, PartialEq)]
pub struct Cs231nRecipe {
    pub iterations: usize,
    pub learning_rate: f32,
    pub l2_reg: f32,
    pub blur_every: usize,
    pub blur_sigma: f32,
    pub max_jitter: usize,
}

impl Default for Cs231nRecipe {
    fn default() -> Self {
        Self {
            iterations: 100,
            learning_rate: 25.0,
            l2_reg: 1e-3,
            blur_every: 10,
            blur_sigma: 0.5,
            max_jitter: 16,
        }
    }
}

impl Cs231nRecipe {
    /// Whether the recipe has setting `s` (exhaustive: a new [`Setting`] must be placed).
    pub fn takes(s: &Setting) -> bool {
        match s {
            Setting::Iterations(_)
            | Setting::LearningRate(_)
            | Setting::L2Reg(_)
            | Setting::BlurEvery(_)
            | Setting::BlurSigma(_)
            | Setting::MaxJitter(_) => true,
            Setting::Sd(_)
            | Setting::DecayPower(_)
            | Setting::Decorrelate(_)
            | Setting::Transforms(_)
            | Setting::Pad(_)
            | Setting::Jitter(_) => false,
        }
    }

    /// Applies one setting and checks the result ([`Cs231nRecipe::validate`]).
    pub fn apply(&mut self, s: Setting) -> Result<()> {
        match s {
            Setting::Iterations(v) => self.iterations = v,
            Setting::LearningRate(v) => self.learning_rate = v,
            Setting::L2Reg(v) => self.l2_reg = v,
            Setting::BlurEvery(v) => self.blur_every = v,
            Setting::BlurSigma(v) => self.blur_sigma = v,
            Setting::MaxJitter(v) => self.max_jitter = v,
            other => return Err(no_setting("cs231n", other.key(), Self::takes)),
        }
        self.validate()
    }

    /// Checks the settings are usable.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Invalid(m.to_string()));
        if self.iterations == 0 {
            return bad("iterations must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning-rate must be a positive number");
        }
        if !(self.l2_reg.is_finite() && self.l2_reg >= 0.0) {
            return bad("l2-reg must be zero or positive");
        }
        if !(self.blur_sigma.is_finite() && self.blur_sigma >= 0.0 && self.blur_sigma <= 50.0) {
            return bad("blur-sigma must be between 0 and 50");
        }
        Ok(())
    }
}

/// Runs the recipe from seeded noise for `class`: the simple entry point (used by
/// `netlens bench` to time the loop).
pub fn visualize(
    model: &dyn Classifier,
    class: usize,
    recipe: &Cs231nRecipe,
    seed: u64,
    progress: &mut dyn FnMut(&Tick),
) -> Result<Visualization> {
    let options = Options {
        seed,
        ..Options::default()
    };
    run(model, class, recipe, &options, progress)
}

/// The recipe as an [`Ascent`] of `objective` with `jitter` in front of the network (a
/// [`Roll`] in [`run`]; tests substitute fixed offsets).
pub fn configure<'a>(
    recipe: &Cs231nRecipe,
    norm: &Normalization,
    objective: &'a ScoreMinusL2,
    jitter: &'a dyn Transform,
) -> Ascent<'a> {
    Ascent {
        objective,
        param: &PixelParam,
        transforms: vec![jitter],
        step: Step::NormalizedL2 {
            lr: recipe.learning_rate,
        },
        constraint: Constraint {
            pixel_box: Some(*norm),
            ..Constraint::default()
        },
        post: (recipe.blur_every > 0 && recipe.blur_sigma > 0.0).then_some(PostStep::Blur {
            every: recipe.blur_every,
            sigma: recipe.blur_sigma,
        }),
        stop: Stop::Iterations(recipe.iterations),
    }
}

/// Runs the recipe with all options (a start image, snapshots).
pub fn run(
    model: &dyn Classifier,
    class: usize,
    recipe: &Cs231nRecipe,
    options: &Options,
    progress: &mut dyn FnMut(&Tick),
) -> Result<Visualization> {
    check_class(model, class)?;
    recipe.validate()?;
    let spec = model.spec();
    let s = spec.input_size as usize;
    let norm = spec.normalization;
    let mut rng = StdRng::seed_from_u64(options.seed);
    let theta0 = match &options.init {
        Some(img) => {
            if img.dimensions() != (s as u32, s as u32) {
                return Err(Error::Invalid(format!(
                    "the start image is {}x{}; {} needs {s}x{s}",
                    img.width(),
                    img.height(),
                    spec.name
                )));
            }
            ImageBatch::from_images(std::slice::from_ref(img), &norm)?
        }
        // torch.randn(1, 3, S, S): standard normal noise in the normalized space.
        None => ImageBatch::from_fn([1, 3, s, s], |_| rng.sample::<f32, _>(StandardNormal)),
    };
    let objective = ScoreMinusL2 {
        targets: vec![class],
        l2_reg: recipe.l2_reg,
    };
    let roll = Roll {
        max: recipe.max_jitter,
    };
    let ascent = configure(recipe, &norm, &objective, &roll);
    drive(model, class, &ascent, theta0, &mut rng, options, progress)
}
