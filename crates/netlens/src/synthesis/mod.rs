//! Class visualization: an image the network finds maximally "gorilla".
//!
//! Every recipe here is one configuration of the shared gradient-ascent loop
//! ([`crate::gradients::ascend`]), in the spirit of Lucid/Lucent: an objective
//! ([`objective`]), a parametrization of the image ([`fourier`] or plain pixels), differentiable
//! transforms applied before the network ([`transforms`]), a step rule and a stop rule.
//!
//! - [`cs231n`] ([`Cs231nRecipe`]): the CS231n `create_class_visualization` loop (noise start,
//!   random roll, normalized L2 step on `score − λ‖x‖²`, clamp, periodic blur). The default
//!   recipe.
//! - [`lucid`]: a decorrelated Fourier parametrization, transformation robustness (pad, jitter,
//!   scale, rotation) and Adam, with Lucid/Lucent's defaults.
//!
//! [`visualize`] runs either; [`sweep`] expands a grid of settings for tuning.

pub mod cs231n;
pub mod fourier;
pub mod lucid;
pub mod objective;
pub mod settings;
pub mod sweep;
pub mod transforms;

use crate::batch::ImageBatch;
use crate::classify::classify;
use crate::classify::softmax_rows;
use crate::error::{Error, Result};
use crate::gradients::{ascend, Ascent};
use crate::models::Classifier;
use image::RgbImage;
use rand::rngs::StdRng;

pub use cs231n::Cs231nRecipe;
pub use lucid::Lucid;
pub use settings::Setting;

/// A class-visualization recipe with its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipe {
    /// CS231n's loop (the default).
    Cs231n(Cs231nRecipe),
    /// Lucid/Lucent's Fourier parametrization with transformation robustness.
    Lucid(Lucid),
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe::Cs231n(Cs231nRecipe::default())
    }
}

impl Recipe {
    /// Names accepted by [`Recipe::by_name`].
    pub const NAMES: [&'static str; 2] = ["cs231n", "lucid"];

    /// The recipe `name` ("cs231n" or "lucid") with its default settings.
    pub fn by_name(name: &str) -> Result<Self> {
        match name.trim().to_lowercase().as_str() {
            "cs231n" => Ok(Recipe::Cs231n(Cs231nRecipe::default())),
            "lucid" | "lucent" => Ok(Recipe::Lucid(Lucid::default())),
            other => Err(Error::Invalid(format!(
                "unknown recipe '{other}'; known recipes: {}",
                Self::NAMES.join(", ")
            ))),
        }
    }

    /// The recipe's name.
    pub fn name(&self) -> &'static str {
        match self {
            Recipe::Cs231n(_) => "cs231n",
            Recipe::Lucid(_) => "lucid",
        }
    }

    /// Number of iterations the recipe runs.
    pub fn iterations(&self) -> usize {
        match self {
            Recipe::Cs231n(c) => c.iterations,
            Recipe::Lucid(l) => l.iterations,
        }
    }

    /// Whether the recipe has setting `s`.
    pub fn takes(&self, s: &Setting) -> bool {
        match self {
            Recipe::Cs231n(_) => Cs231nRecipe::takes(s),
            Recipe::Lucid(_) => Lucid::takes(s),
        }
    }

    /// Command-line names of the recipe's settings.
    pub fn keys(&self) -> Vec<&'static str> {
        Setting::ALL
            .iter()
            .filter(|s| self.takes(s))
            .map(Setting::key)
            .collect()
    }

    /// Applies one typed setting (an error when the recipe has no such setting or the value
    /// is out of range).
    pub fn apply(&mut self, s: Setting) -> Result<()> {
        match self {
            Recipe::Cs231n(c) => c.apply(s),
            Recipe::Lucid(l) => l.apply(s),
        }
    }

    /// Sets one setting from text, by its command-line name (`learning-rate`, `l2-reg`...):
    /// for callers that hold strings (Python keyword pairs); typed callers use
    /// [`Recipe::apply`].
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        if !Setting::ALL.iter().any(|s| s.key() == key && self.takes(s)) {
            let takes = |s: &Setting| self.takes(s);
            return Err(settings::no_setting(self.name(), key, takes));
        }
        self.apply(Setting::parse(key, value)?)
    }
}

/// What a run starts from and what it records, besides the recipe.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Seeds the start noise and every random transform: the same seed gives the same image.
    pub seed: u64,
    /// Start from this image (already at the model's input size) instead of noise. Only the
    /// pixel-space recipe (CS231n) can start from an image.
    pub init: Option<RgbImage>,
    /// Record the image every this many iterations (0: never).
    pub snapshot_every: usize,
}

/// The image at one point of a run.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Iterations done (0: the start).
    pub iteration: usize,
    /// The image as it would be saved (8-bit).
    pub image: RgbImage,
    /// Target probability of `image` (untransformed, as saved).
    pub prob: f64,
}

/// One iteration's news, for progress bars.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    /// Iterations done (1-based).
    pub iteration: usize,
    /// Iterations planned.
    pub total: usize,
    /// Target probability the network gave the (transformed) image at this iteration.
    pub prob: f64,
}

/// A finished class visualization.
#[derive(Debug, Clone)]
pub struct Visualization {
    /// Target class.
    pub class: usize,
    /// The image as saved (8-bit, model input size).
    pub image: RgbImage,
    /// Target probability of `image`, classified as saved.
    pub prob: f64,
    /// Target probability of the starting image, as saved (noise or `--init`).
    pub start_prob: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Snapshots at iteration 0, every `snapshot_every` iterations and at the end (empty when
    /// `snapshot_every` is 0).
    pub snapshots: Vec<Snapshot>,
    /// Wall-clock time of the run, in milliseconds (snapshot classification included).
    pub ms: f64,
}

/// Runs `recipe` for `class` on `model`, reporting every iteration to `progress`.
pub fn visualize(
    model: &dyn Classifier,
    class: usize,
    recipe: &Recipe,
    options: &Options,
    progress: &mut dyn FnMut(&Tick),
) -> Result<Visualization> {
    match recipe {
        Recipe::Cs231n(c) => cs231n::run(model, class, c, options, progress),
        Recipe::Lucid(l) => lucid::run(model, class, l, options, progress),
    }
}

/// Target probability of an 8-bit image at the model's input size.
pub fn class_prob(model: &dyn Classifier, image: &RgbImage, class: usize) -> f64 {
    classify(model, std::slice::from_ref(image), 1, 1)
        .first()
        .and_then(|p| p.probs.get(class).copied())
        .unwrap_or(0.0)
}

pub(crate) fn check_class(model: &dyn Classifier, class: usize) -> Result<()> {
    let classes = model.classes();
    if class >= classes {
        return Err(Error::Invalid(format!(
            "class index {class} is out of range: {} has classes 0..{}",
            model.spec().name,
            classes.saturating_sub(1)
        )));
    }
    Ok(())
}

/// Runs a configured ascent for one image and turns it into a [`Visualization`]; the
/// ascent's parametrization turns the variable into the image that is saved. Shared by the
/// recipes; the loop itself is [`ascend`].
pub(crate) fn drive(
    model: &dyn Classifier,
    class: usize,
    ascent: &Ascent,
    theta0: ImageBatch,
    rng: &mut StdRng,
    options: &Options,
    progress: &mut dyn FnMut(&Tick),
) -> Result<Visualization> {
    let clock = std::time::Instant::now();
    let spec = model.spec();
    let norm = spec.normalization;
    let save = |theta: &ImageBatch| -> RgbImage {
        ascent
            .param
            .pixels(theta)
            .to_images(&norm)
            .pop()
            .unwrap_or_default()
    };
    let start = save(&theta0);
    let start_prob = class_prob(model, &start, class);
    let every = options.snapshot_every;
    let mut snapshots = Vec::new();
    if every > 0 {
        snapshots.push(Snapshot {
            iteration: 0,
            image: start,
            prob: start_prob,
        });
    }
    let total = ascent.stop.max_iterations();
    let mut done = 0usize;
    let result = ascend(model, ascent, theta0, rng, &mut |p| {
        done = p.iteration;
        let k = p.logits.len();
        let prob = softmax_rows(p.logits, k)
            .first()
            .and_then(|r| r.get(class).copied())
            .unwrap_or(0.0);
        progress(&Tick {
            iteration: p.iteration,
            total,
            prob,
        });
        if every > 0 && p.iteration % every == 0 {
            let image = save(p.theta);
            let prob = class_prob(model, &image, class);
            snapshots.push(Snapshot {
                iteration: p.iteration,
                image,
                prob,
            });
        }
        true
    })?;
    let image = save(&result.theta);
    let prob = class_prob(model, &image, class);
    if every > 0 && snapshots.last().map(|s| s.iteration) != Some(done) {
        snapshots.push(Snapshot {
            iteration: done,
            image: image.clone(),
            prob,
        });
    }
    Ok(Visualization {
        class,
        image,
        prob,
        start_prob,
        iterations: done,
        snapshots,
        ms: clock.elapsed().as_secs_f64() * 1e3,
    })
}

impl Recipe {
    /// The recipe with its settings, in words, for pages: "CS231n recipe (learning-rate 25,
    /// l2-reg 0.001, blur σ 0.5 every 10, max-jitter 16), 100 iterations".
    pub fn describe(&self) -> String {
        match self {
            Recipe::Cs231n(c) => format!(
                "CS231n recipe (learning-rate {}, l2-reg {}, blur σ {} every {}, max-jitter {}), \
                 {} iterations",
                c.learning_rate, c.l2_reg, c.blur_sigma, c.blur_every, c.max_jitter, c.iterations
            ),
            Recipe::Lucid(l) => format!(
                "Lucid recipe ({}Fourier image, sd {}, decay-power {}, {}, Adam learning-rate \
                 {}), {} iterations",
                if l.decorrelate { "decorrelated " } else { "" },
                l.sd,
                l.decay_power,
                if l.transforms {
                    let span = |v: &[f32]| {
                        let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
                        let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        format!("{lo}…{hi}")
                    };
                    format!(
                        "pad {}, jitter {} and {}, scale {}, rotation {}°",
                        l.pad,
                        l.jitter,
                        l.jitter2,
                        span(&l.scales),
                        span(&l.degrees)
                    )
                } else {
                    "no transformations".to_string()
                },
                l.learning_rate,
                l.iterations
            ),
        }
    }
}
