//! Attribution methods: which input pixels move a class score.
//!
//! One interface, after Captum: every method answers [`Attribution::attribute`] with a model,
//! a normalized batch `[N, 3, H, W]` and [`Targets`] (one class for every image, or one per
//! image), and returns one [`Map`] per image at the model's input resolution. Each method lives
//! in its own file and reaches the network only through [`crate::gradients::input_gradient`]:
//!
//! - [`vanilla`]: CS231n's `compute_saliency_maps` (max over channels of |d score / d x|);
//! - [`gradient_x_input`]: the gradient times the input, summed over channels;
//! - [`smoothgrad`]: [`smoothgrad::NoiseTunnel`] averages any method over noisy copies;
//! - [`integrated_gradients`]: path integral from a baseline (black, blurred or noise);
//! - [`grad_cam`]: Grad-CAM on the model's last convolutional block;
//! - [`attention_rollout`]: attention rollout, for vision transformers only.
//!
//! Gradient-based maps share a template ([`FromGradient`]: a method only says how one gradient
//! reduces to a map), as pytorch-grad-cam's CAMs share a base. Every method sends images,
//! samples and path steps through the network `batch_size` at a time ([`Run`]), so memory is
//! bounded however many samples are asked for. Boxes from maps are in [`locate`], scores of
//! boxes and maxima against a known object in [`metrics`], synthetic scenes with a known
//! object in [`scenes`].

pub mod attention_rollout;
pub mod grad_cam;
pub mod gradient_x_input;
pub mod integrated_gradients;
pub mod locate;
pub mod metrics;
pub mod scenes;
pub mod smoothgrad;
pub mod vanilla;

use crate::engine;
use crate::error::{Error, Result};
use crate::gradients::{input_gradient, ClassScore};
use crate::imaging::tensor::tensor_values;
use crate::models::Classifier;
use burn::tensor::Tensor;

pub use attention_rollout::AttentionRollout;
pub use grad_cam::GradCam;
pub use gradient_x_input::GradientXInput;
pub use integrated_gradients::{Baseline, IntegratedGradients};
pub use smoothgrad::NoiseTunnel;
pub use vanilla::Vanilla;

/// Which class each image's map explains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// The same class for every image.
    All(usize),
    /// One class per image, in batch order.
    PerImage(Vec<usize>),
}

impl Targets {
    /// The class of each of `n` images of a model with `classes` classes; an error if the
    /// count or a class is wrong.
    pub fn resolve(&self, n: usize, classes: usize) -> Result<Vec<usize>> {
        let t = match self {
            Targets::All(c) => vec![*c; n],
            Targets::PerImage(v) if v.len() == n => v.clone(),
            Targets::PerImage(v) => {
                return Err(Error::Invalid(format!(
                    "{} targets given for {n} images; give one class for all or one per image",
                    v.len()
                )))
            }
        };
        if let Some(bad) = t.iter().find(|&&c| c >= classes) {
            return Err(Error::Invalid(format!(
                "target class {bad} is out of range 0..{}",
                classes.saturating_sub(1)
            )));
        }
        Ok(t)
    }
}

/// One image's attribution map, row-major `height` × `width` at the model's input resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
    /// The class it explains.
    pub target: usize,
    /// Whether values carry a sign (gradient × input, Integrated Gradients) or are magnitudes.
    pub signed: bool,
    /// Integrated Gradients' completeness error: Σ attributions − (score(x) − score(baseline)).
    pub delta: Option<f32>,
}

impl Map {
    /// How much each pixel matters, whatever the sign: |v| for signed maps.
    pub fn magnitude(&self) -> Vec<f32> {
        if self.signed {
            self.values.iter().map(|v| v.abs()).collect()
        } else {
            self.values.clone()
        }
    }

    /// `(x, y)` of the largest magnitude (the first one on ties).
    pub fn argmax(&self) -> (usize, usize) {
        let m = self.magnitude();
        let i = m
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                if v > bv {
                    (i, v)
                } else {
                    (bi, bv)
                }
            })
            .0;
        (i % self.width.max(1), i / self.width.max(1))
    }

    /// Magnitudes scaled to [0, 1] for display, the top `clip` fraction saturated (Captum's
    /// `outlier_perc`): one extreme pixel would otherwise leave the rest of the map black.
    pub fn display(&self, clip: f32) -> Vec<f32> {
        let m = self.magnitude();
        let mut sorted: Vec<f32> = m.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return vec![0.0; m.len()];
        }
        sorted.sort_by(f32::total_cmp);
        let k = ((1.0 - clip.clamp(0.0, 1.0)) * (sorted.len() - 1) as f32).round() as usize;
        let top = sorted[k.min(sorted.len() - 1)];
        let top = if top > 0.0 {
            top
        } else {
            sorted[sorted.len() - 1].max(f32::MIN_POSITIVE)
        };
        m.iter()
            .map(|&v| {
                if v.is_finite() {
                    (v / top).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            })
            .collect()
    }
}

/// How a call runs: images (and samples, and path steps) per forward pass, and a progress
/// callback told how many image passes (forward + backward of one image) were just done.
pub struct Run<'a> {
    pub batch_size: usize,
    pub progress: &'a mut dyn FnMut(usize),
}

impl<'a> Run<'a> {
    /// `batch_size` images at a time, reporting to `progress`.
    pub fn new(batch_size: usize, progress: &'a mut dyn FnMut(usize)) -> Self {
        Self {
            batch_size: batch_size.max(1),
            progress,
        }
    }
}

/// An attribution method (Captum's `attribute`).
pub trait Attribution {
    /// The method's name as the CLI spells it ("vanilla", "smoothgrad(vanilla)", ...).
    fn name(&self) -> String;
    /// Image passes needed for `n` images (for progress bars).
    fn passes(&self, n: usize) -> usize;
    /// One map per image of the normalized batch `inputs` `[N, 3, H, W]`, explaining `targets`.
    fn attribute(
        &self,
        model: &dyn Classifier,
        inputs: &Tensor<4>,
        targets: &Targets,
        run: &mut Run,
    ) -> Result<Vec<Map>>;
}

/// The template for maps made from one input gradient per image (vanilla, gradient × input):
/// a method only says how the gradient, and the input, reduce to a map.
pub trait FromGradient {
    /// The method's name.
    fn name(&self) -> String;
    /// Whether the map is signed.
    fn signed(&self) -> bool;
    /// One image's map (`plane` = H·W values) from its gradient and input (both `[3, H, W]`).
    fn reduce(&self, grad: &[f32], input: &[f32], plane: usize) -> Vec<f32>;
}

impl<T: FromGradient> Attribution for T {
    fn name(&self) -> String {
        FromGradient::name(self)
    }
    fn passes(&self, n: usize) -> usize {
        n
    }
    fn attribute(
        &self,
        model: &dyn Classifier,
        inputs: &Tensor<4>,
        targets: &Targets,
        run: &mut Run,
    ) -> Result<Vec<Map>> {
        let (x, shape) = flat(inputs);
        let t = targets.resolve(shape[0], model.classes())?;
        let (grads, _) = class_gradients(model, &x, shape, &t, run)?;
        let [_, _, h, w] = shape;
        let per = 3 * h * w;
        Ok(t.iter()
            .enumerate()
            .map(|(i, &target)| Map {
                width: w,
                height: h,
                values: self.reduce(
                    &grads[i * per..(i + 1) * per],
                    &x[i * per..(i + 1) * per],
                    h * w,
                ),
                target,
                signed: self.signed(),
                delta: None,
            })
            .collect())
    }
}

/// Flat values and shape of a `[N, 3, H, W]` batch; an error for anything but 3 channels.
pub(crate) fn flat(inputs: &Tensor<4>) -> (Vec<f32>, [usize; 4]) {
    let shape = inputs.dims();
    (tensor_values(inputs.clone().detach()), shape)
}

/// Checks the batch is `[N, 3, H, W]` with N ≥ 1.
pub(crate) fn check_shape(shape: [usize; 4]) -> Result<()> {
    if shape[0] == 0 || shape[1] != 3 || shape[2] == 0 || shape[3] == 0 {
        return Err(Error::Invalid(format!(
            "expected a batch [N, 3, H, W] of images, got {shape:?}"
        )));
    }
    Ok(())
}

/// Input gradients of each image's target score, and the scores, for the flat images `x`
/// (`shape` = `[N, 3, H, W]`), `run.batch_size` images per pass.
pub(crate) fn class_gradients(
    model: &dyn Classifier,
    x: &[f32],
    shape: [usize; 4],
    targets: &[usize],
    run: &mut Run,
) -> Result<(Vec<f32>, Vec<f32>)> {
    check_shape(shape)?;
    let [n, c, h, w] = shape;
    let per = c * h * w;
    let mut grads = Vec::with_capacity(x.len());
    let mut scores = Vec::with_capacity(n);
    for start in (0..n).step_by(run.batch_size) {
        let end = (start + run.batch_size).min(n);
        let b = end - start;
        let xb = engine::tensor(x[start * per..end * per].to_vec(), [b, c, h, w]);
        let g = input_gradient(
            model,
            xb,
            &ClassScore {
                targets: targets[start..end].to_vec(),
            },
        )?;
        grads.extend(g.grad);
        scores.extend(g.objective);
        (run.progress)(b);
    }
    Ok((grads, scores))
}

/// The methods netlens offers, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Vanilla,
    GradientXInput,
    SmoothGrad,
    IntegratedGradients,
    GradCam,
    AttentionRollout,
}

impl Method {
    /// Methods that need attention layers (vision transformers).
    pub const TRANSFORMER_ONLY: [Method; 1] = [Method::AttentionRollout];

    /// Every method, in the order tables list them.
    pub const ALL: [Method; 5] = [
        Method::Vanilla,
        Method::GradientXInput,
        Method::SmoothGrad,
        Method::IntegratedGradients,
        Method::GradCam,
    ];

    /// The name the CLI uses.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Vanilla => "vanilla",
            Method::GradientXInput => "gradient-x-input",
            Method::SmoothGrad => "smoothgrad",
            Method::IntegratedGradients => "integrated-gradients",
            Method::GradCam => "grad-cam",
            Method::AttentionRollout => "attention-rollout",
        }
    }

    /// Looks a method up by name (`_` and `-` alike, case-insensitive).
    pub fn parse(name: &str) -> Result<Method> {
        let n = name.trim().to_lowercase().replace('_', "-");
        Method::ALL
            .into_iter()
            .chain(Method::TRANSFORMER_ONLY)
            .find(|m| m.name() == n)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown method '{name}'; methods: {}, {}",
                    Method::ALL.map(|m| m.name()).join(", "),
                    Method::TRANSFORMER_ONLY.map(|m| m.name()).join(", ")
                ))
            })
    }
}

/// Settings of every method, with the defaults the CLI shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// SmoothGrad: noisy copies averaged per image.
    pub samples: usize,
    /// SmoothGrad: noise σ as a fraction of each image's value range (max − min).
    pub noise: f32,
    /// SmoothGrad: the method averaged (anything but smoothgrad itself).
    pub inner: Method,
    /// Integrated Gradients: points on the path.
    pub steps: usize,
    /// Integrated Gradients: where the path starts.
    pub baseline: Baseline,
    /// Seeds the noise of SmoothGrad and of the noise baseline.
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            samples: 25,
            noise: 0.15,
            inner: Method::Vanilla,
            steps: 64,
            baseline: Baseline::Black,
            seed: 0,
        }
    }
}

/// The configured method.
pub fn build(method: Method, s: &Settings) -> Result<Box<dyn Attribution>> {
    Ok(match method {
        Method::Vanilla => Box::new(Vanilla),
        Method::GradientXInput => Box::new(GradientXInput),
        Method::IntegratedGradients => Box::new(IntegratedGradients::new(
            s.steps,
            s.baseline.clone(),
            s.seed,
        )?),
        Method::GradCam => Box::new(GradCam::default()),
        Method::AttentionRollout => Box::new(AttentionRollout),
        Method::SmoothGrad => {
            if s.inner == Method::SmoothGrad {
                return Err(Error::Invalid(
                    "smoothgrad cannot wrap itself; pick vanilla, gradient-x-input, \
                     integrated-gradients or grad-cam"
                        .into(),
                ));
            }
            let inner = build(s.inner, s)?;
            Box::new(NoiseTunnel::new(inner, s.samples, s.noise, s.seed)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(values: Vec<f32>, signed: bool) -> Map {
        Map {
            width: 2,
            height: 2,
            values,
            target: 0,
            signed,
            delta: None,
        }
    }

    #[test]
    fn targets_resolve() {
        assert_eq!(Targets::All(3).resolve(2, 1000).unwrap(), vec![3, 3]);
        assert_eq!(
            Targets::PerImage(vec![1, 2]).resolve(2, 1000).unwrap(),
            vec![1, 2]
        );
        assert!(Targets::PerImage(vec![1]).resolve(2, 1000).is_err());
        assert!(Targets::All(1000).resolve(1, 1000).is_err());
    }

    #[test]
    fn argmax_and_display() {
        let m = map(vec![0.5, -3.0, 1.0, 2.0], true);
        assert_eq!(m.argmax(), (1, 0));
        assert_eq!(m.display(0.0), vec![0.5 / 3.0, 1.0, 1.0 / 3.0, 2.0 / 3.0]);
        let u = map(vec![0.0, 0.0, 0.0, 0.0], false);
        assert_eq!(u.display(0.01), vec![0.0; 4]);
    }

    #[test]
    fn method_names_roundtrip() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.name()).unwrap(), m);
        }
        assert_eq!(Method::parse("Grad_CAM").unwrap(), Method::GradCam);
        assert!(Method::parse("lime").is_err());
    }
}
