//! The Lucid/Lucent recipe (Olah, Mordvintsev & Schubert, "Feature Visualization", Distill
//! 2017): the image lives in a decorrelated, frequency-scaled Fourier space
//! ([`FourierImage`]), every step sees a randomly padded, jittered, scaled and rotated copy
//! (Lucid's `standard_transforms`), and Adam climbs the class logit. One configuration of
//! [`crate::gradients::ascend`].
//!
//! Defaults are Lucent's `render_vis`: `param.image(fft=True, decorrelate=True)` with spectrum
//! noise sd 0.01 and decay power 1, transforms `pad(12, constant 0.5)`, `jitter(8)`,
//! `random_scale(1 + (i − 5)/50, i = 0..10)`, `random_rotate(−10..10° plus five 0°)`,
//! `jitter(4)`, then a resize to the model's input size; Adam with lr 0.05; 512 iterations.

use super::fourier::FourierImage;
use super::settings::{no_setting, Setting};
use super::transforms::{Crop, Pad, RandomRotate, RandomScale, Resize};
use super::{check_class, drive, Options, Tick, Visualization};
use crate::error::{Error, Result};
use crate::gradients::{Ascent, ClassScore, Constraint, Step, Stop, Transform};
use crate::models::Classifier;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Lucid's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Lucid {
    pub iterations: usize,
    /// Adam step size.
    pub learning_rate: f32,
    /// Standard deviation of the initial spectrum noise.
    pub sd: f32,
    /// Spectrum scale `1 / f^decay_power`.
    pub decay_power: f32,
    /// Colour decorrelation on (Lucid) or off.
    pub decorrelate: bool,
    /// Transformation robustness on (Lucid) or off (the plain Fourier image).
    pub transforms: bool,
    /// Padding (pixels of value 127.5) before the first jitter.
    pub pad: usize,
    /// First and second jitter (random crop) sizes.
    pub jitter: usize,
    pub jitter2: usize,
    /// Scale factors to draw from.
    pub scales: Vec<f32>,
    /// Rotation angles (degrees) to draw from.
    pub degrees: Vec<f32>,
}

impl Default for Lucid {
    fn default() -> Self {
        let mut degrees: Vec<f32> = (-10..=10).map(|d| d as f32).collect();
        degrees.extend([0.0; 5]);
        Self {
            iterations: 512,
            learning_rate: 0.05,
            sd: 0.01,
            decay_power: 1.0,
            decorrelate: true,
            transforms: true,
            pad: 12,
            jitter: 8,
            jitter2: 4,
            scales: (0..11).map(|i| 1.0 + (i as f32 - 5.0) / 50.0).collect(),
            degrees,
        }
    }
}

impl Lucid {
    /// Whether the recipe has setting `s` (exhaustive: a new [`Setting`] must be placed).
    pub fn takes(s: &Setting) -> bool {
        match s {
            Setting::Iterations(_)
            | Setting::LearningRate(_)
            | Setting::Sd(_)
            | Setting::DecayPower(_)
            | Setting::Decorrelate(_)
            | Setting::Transforms(_)
            | Setting::Pad(_)
            | Setting::Jitter(_) => true,
            Setting::L2Reg(_)
            | Setting::BlurEvery(_)
            | Setting::BlurSigma(_)
            | Setting::MaxJitter(_) => false,
        }
    }

    /// Applies one setting and checks the result ([`Lucid::validate`]).
    pub fn apply(&mut self, s: Setting) -> Result<()> {
        match s {
            Setting::Iterations(v) => self.iterations = v,
            Setting::LearningRate(v) => self.learning_rate = v,
            Setting::Sd(v) => self.sd = v,
            Setting::DecayPower(v) => self.decay_power = v,
            Setting::Decorrelate(v) => self.decorrelate = v,
            Setting::Transforms(v) => self.transforms = v,
            Setting::Pad(v) => self.pad = v,
            Setting::Jitter(v) => self.jitter = v,
            other => return Err(no_setting("lucid", other.key(), Self::takes)),
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
        if !(self.sd.is_finite() && self.sd >= 0.0) {
            return bad("sd must be zero or positive");
        }
        if !(self.decay_power.is_finite() && (0.0..=4.0).contains(&self.decay_power)) {
            return bad("decay-power must be between 0 and 4");
        }
        if self.pad > 256 || self.jitter > 64 || self.jitter2 > 64 {
            return bad("pad must be at most 256 and jitter at most 64 pixels");
        }
        Ok(())
    }
}

/// Runs the recipe for `class` (a start image is not supported: the variable is a spectrum).
pub fn run(
    model: &dyn Classifier,
    class: usize,
    recipe: &Lucid,
    options: &Options,
    progress: &mut dyn FnMut(&Tick),
) -> Result<Visualization> {
    check_class(model, class)?;
    recipe.validate()?;
    if options.init.is_some() {
        return Err(Error::Invalid(
            "the lucid recipe optimizes a Fourier spectrum and cannot start from an image; \
             use the cs231n recipe with a start image"
                .into(),
        ));
    }
    let spec = model.spec();
    let s = spec.input_size as usize;
    let norm = spec.normalization;
    let param = FourierImage::new(
        1,
        s,
        s,
        recipe.decay_power,
        recipe.decorrelate,
        &norm,
        model.precision(),
    );
    let mut rng = StdRng::seed_from_u64(options.seed);
    let theta0 = param.init(recipe.sd, &mut rng);
    let pad = Pad {
        px: recipe.pad,
        pixel: 127.5,
        norm,
    };
    let crop = Crop { d: recipe.jitter };
    let scale = RandomScale {
        scales: recipe.scales.clone(),
    };
    let rotate = RandomRotate {
        degrees: recipe.degrees.clone(),
    };
    let crop2 = Crop { d: recipe.jitter2 };
    let resize = Resize { size: s };
    let transforms: Vec<&dyn Transform> = if recipe.transforms {
        vec![&pad, &crop, &scale, &rotate, &crop2, &resize]
    } else {
        Vec::new()
    };
    let objective = ClassScore {
        targets: vec![class],
    };
    let ascent = Ascent {
        objective: &objective,
        param: &param,
        transforms,
        step: Step::Adam {
            lr: recipe.learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        constraint: Constraint::default(),
        post: None,
        stop: Stop::Iterations(recipe.iterations),
    };
    drive(model, class, &ascent, theta0, &mut rng, options, progress)
}
