//! One entry point for every attack: model-resolution 8-bit images in, saved 8-bit fooling
//! images and honest figures out.

use super::cs231n::{self, Cs231nFooling};
use super::fgsm;
use super::measure::{distance, Distance};
use super::pgd::{self, Pgd};
use crate::batch::ImageBatch;
use crate::classify::{classify, Prediction};
use crate::error::{Error, Result};
use crate::models::Classifier;
use image::RgbImage;

/// Which attack, with its settings (pixel units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttackMethod {
    Cs231n(Cs231nFooling),
    Fgsm { epsilon: f32 },
    Pgd(Pgd),
}

impl AttackMethod {
    /// The method's name as the CLI spells it.
    pub fn name(&self) -> &'static str {
        match self {
            AttackMethod::Cs231n(_) => "cs231n",
            AttackMethod::Fgsm { .. } => "fgsm",
            AttackMethod::Pgd(_) => "pgd",
        }
    }

    /// The method with its settings, for titles: "pgd L∞ ε=8/255, 10 steps of 2/255".
    pub fn describe(&self) -> String {
        let px = |v: f32| format!("{}/255", (v * 1000.0).round() / 1000.0);
        match self {
            AttackMethod::Cs231n(c) => format!(
                "cs231n (lr {}, ≤{} steps)",
                c.learning_rate, c.max_iterations
            ),
            AttackMethod::Fgsm { epsilon } => format!("fgsm ε={}", px(*epsilon)),
            AttackMethod::Pgd(p) => format!(
                "pgd {} ε={}, {} steps of {}{}",
                match p.norm {
                    super::pgd::Norm::Linf => "L∞",
                    super::pgd::Norm::L2 => "L2",
                },
                px(p.epsilon),
                p.steps,
                px(p.step()),
                if p.full_steps { ", all steps" } else { "" }
            ),
        }
    }

    /// The most gradient steps one image can take.
    pub fn max_iterations(&self) -> usize {
        match self {
            AttackMethod::Cs231n(c) => c.max_iterations,
            AttackMethod::Fgsm { .. } => 1,
            AttackMethod::Pgd(p) => p.steps,
        }
    }
}

/// What the attack aims for.
#[derive(Debug, Clone, PartialEq)]
pub enum Goal {
    /// Make image `i` classified as `targets[i]`.
    Targets(Vec<usize>),
    /// Make each image classified as anything but its clean top-1 class.
    Untargeted,
}

/// An attack configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Attack {
    pub method: AttackMethod,
    pub goal: Goal,
    /// Images per forward/backward batch.
    pub batch: usize,
}

/// Progress of the running batch.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    /// Iterations done in this batch.
    pub iteration: usize,
    pub max_iterations: usize,
    /// Images of this batch that already succeeded.
    pub done: usize,
    /// Images in this batch.
    pub images: usize,
}

/// What a method hands back: the saved images (normalized values of the 8-bit images) and
/// the steps each took.
#[derive(Debug, Clone)]
pub struct Crafted {
    pub saved: ImageBatch,
    pub iterations: Vec<usize>,
}

/// One attacked image.
#[derive(Debug, Clone)]
pub struct Fooled {
    /// The fooling image exactly as it is to be saved (8-bit, model resolution).
    pub image: RgbImage,
    /// Clean top-1 class and probability.
    pub original_class: usize,
    pub original_prob: f64,
    /// The target (targeted) or the class pushed away from (untargeted).
    pub class: usize,
    pub untargeted: bool,
    /// Top-1 class of the saved image and its probability.
    pub final_class: usize,
    pub final_prob: f64,
    /// Probability of `class` on the saved image.
    pub class_prob: f64,
    /// Gradient steps taken.
    pub iterations: usize,
    /// Saved image classified as the target (or, untargeted, not as the true class).
    pub success: bool,
    /// Saved image vs. the original, 0–255 units.
    pub distance: Distance,
}

/// Attacks `images` (8-bit, already at the model's input size), `a.batch` at a time, and
/// classifies the saved results. `tick` reports progress as `(batch index, tick)`.
pub fn attack(
    model: &dyn Classifier,
    images: &[RgbImage],
    a: &Attack,
    tick: &mut dyn FnMut(usize, Tick),
) -> Result<Vec<Fooled>> {
    let size = model.spec().input_size;
    if let Some(bad) = images.iter().find(|i| i.dimensions() != (size, size)) {
        return Err(Error::Invalid(format!(
            "attack needs {size}×{size} images for {}, got {}×{}",
            model.spec().name,
            bad.width(),
            bad.height()
        )));
    }
    let clean = classify(model, images, 1, a.batch.max(1));
    let (classes, untargeted) = match &a.goal {
        Goal::Targets(t) => {
            if t.len() != images.len() {
                return Err(Error::Invalid(format!(
                    "{} targets for {} images",
                    t.len(),
                    images.len()
                )));
            }
            if let Some(&bad) = t.iter().find(|&&c| c >= model.classes()) {
                return Err(Error::Invalid(format!("no class {bad}")));
            }
            (t.clone(), false)
        }
        Goal::Untargeted => (clean.iter().map(Prediction::class).collect(), true),
    };
    let norm = model.spec().normalization;
    let mut out = Vec::with_capacity(images.len());
    for (b, (chunk, cls)) in images
        .chunks(a.batch.max(1))
        .zip(classes.chunks(a.batch.max(1)))
        .enumerate()
    {
        let x0 = ImageBatch::from_images(chunk, &norm)?;
        let mut t = |k: Tick| tick(b, k);
        let crafted = match &a.method {
            AttackMethod::Cs231n(c) => cs231n::run(model, x0, cls, untargeted, c, &mut t)?,
            AttackMethod::Fgsm { epsilon } => {
                fgsm::run(model, x0, cls, untargeted, *epsilon, &mut t)?
            }
            AttackMethod::Pgd(p) => pgd::run(model, x0, cls, untargeted, p, &mut t)?,
        };
        let saved = crafted.saved.to_images(&norm);
        let preds = classify(model, &saved, 1, a.batch.max(1));
        for (i, img) in saved.into_iter().enumerate() {
            let k = out.len();
            let (orig, p) = (&clean[k], &preds[i]);
            let class = cls[i];
            let final_class = p.class();
            out.push(Fooled {
                distance: distance(&chunk[i], &img),
                image: img,
                original_class: orig.class(),
                original_prob: orig.probs[orig.class()],
                class,
                untargeted,
                final_class,
                final_prob: p.probs[final_class],
                class_prob: p.probs[class],
                iterations: crafted.iterations[i],
                success: (final_class == class) != untargeted,
            });
        }
    }
    Ok(out)
}
