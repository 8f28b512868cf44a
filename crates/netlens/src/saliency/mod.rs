//! Attribution methods: which input pixels move a class score.
//!
//! One interface, after Captum: every method answers [`Attribution::attribute`] with a model,
//! a normalized batch `[N, 3, H, W]` and [`Targets`] (one class for every image, or one per
//! image), and returns one [`Map`] per image at the model's input resolution. `attribute` is
//! provided: it checks the batch, resolves the targets and hands the method's
//! [`Attribution::step`] a [`Batch`] at a time from the one batch iterator, [`batches`]. Each
//! method lives in its own file and reaches the network only through
//! [`crate::gradients::input_gradient`] or the model's layer taps:
//!
//! - [`vanilla`]: CS231n's `compute_saliency_maps` (max over channels of |d score / d x|);
//! - [`gradient_x_input`]: the gradient times the input, summed over channels;
//! - [`smoothgrad`]: [`smoothgrad::NoiseTunnel`] averages any method over noisy copies;
//! - [`integrated_gradients`]: path integral from a baseline (black, blurred or noise);
//! - [`grad_cam`]: Grad-CAM on the model's last convolutional block, or on a named layer;
//! - [`guided_backprop`]: Guided Backpropagation (positive gradients through every ReLU);
//! - [`guided_grad_cam`]: Guided Backprop times the upsampled Grad-CAM;
//! - [`occlusion`]: the score drop under a sliding grey window, no gradient;
//! - [`rise`]: RISE, the score under random masks, no gradient;
//! - [`attention_rollout`]: attention rollout, for vision transformers only.
//!
//! Methods share templates, as pytorch-grad-cam's CAMs share `BaseCAM`: maps made from one
//! input gradient per image implement [`FromGradient`] (how a gradient reduces to a map), CAM
//! methods implement [`CamWeights`] (pytorch-grad-cam's `get_cam_weights`) inside
//! [`grad_cam::Cam`]; perturbation methods send copies of an image through the template in
//! `perturbation`. Every method sends images, samples and path steps through the network
//! [`Run::batch_size`] at a time, so memory is bounded however many samples are asked for.
//! Names, settings and [`build`] are in [`methods`]; boxes from maps in [`locate`], scores of
//! boxes and maxima against a known object in [`metrics`], synthetic scenes with a known object
//! in [`scenes`].

pub mod attention_rollout;
pub mod grad_cam;
pub mod gradient_x_input;
pub mod guided_backprop;
pub mod guided_grad_cam;
pub mod integrated_gradients;
pub mod localization;
pub mod locate;
mod map;
pub mod methods;
pub mod metrics;
pub mod occlusion;
mod perturbation;
pub mod rise;
pub mod scenes;
pub mod seeding;
pub mod smoothgrad;
pub mod vanilla;

use crate::batch::{ImageBatch, ImageBatchRef};
use crate::engine::Precision;
use crate::error::{Error, Result};
use crate::gradients::{
    guided_input_gradient, input_gradient, ClassScore, InputGradient, Objective,
};
use crate::models::Classifier;
use burn::tensor::Tensor;
use std::ops::Range;

pub use attention_rollout::AttentionRollout;
pub use grad_cam::{Cam, CamWeights, GradCam, GradCamConfig, GradCamWeights};
pub use gradient_x_input::GradientXInput;
pub use guided_backprop::GuidedBackprop;
pub use guided_grad_cam::GuidedGradCam;
pub use integrated_gradients::{Baseline, IntegratedGradients, IntegratedGradientsConfig};
pub use map::Map;
pub use methods::{build, Method, Settings};
pub use occlusion::{Occlusion, OcclusionConfig};
pub use rise::{Rise, RiseConfig, RiseMasks};
pub use smoothgrad::{NoiseTunnel, SmoothGradConfig};
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

/// How a call runs: images (and samples, and path steps) per forward pass, and a progress
/// callback told how many image passes (forward + backward of one image) were just done.
pub struct Run<'a> {
    pub batch_size: usize,
    pub progress: &'a mut dyn FnMut(usize),
}

impl<'a> Run<'a> {
    /// Images per pass when nothing else is asked (the CLI's `--batch-size` default).
    pub const DEFAULT_BATCH_SIZE: usize = 8;

    /// `batch_size` images at a time, reporting to `progress`.
    pub fn new(batch_size: usize, progress: &'a mut dyn FnMut(usize)) -> Self {
        Self {
            batch_size: batch_size.max(1),
            progress,
        }
    }
}

/// The one batch iterator: `0..n` in consecutive ranges of at most `size` (at least 1).
pub fn batches(n: usize, size: usize) -> impl Iterator<Item = Range<usize>> {
    let size = size.max(1);
    (0..n).step_by(size).map(move |s| s..(s + size).min(n))
}

/// What a method sends through the network `batch_size` at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// The images themselves: [`Attribution::step`] gets at most `batch_size` images a call.
    Images,
    /// Inputs made from each image (noisy copies, path points), which the method batches
    /// itself with [`batches`]: `step` gets every image of the call at once, so that batches
    /// of derived inputs are full whatever the number of images. Seeded draws come from each
    /// image's own stream ([`seeding::image_rng`]), so maps do not depend on the batching.
    Derived,
}

/// A checked slice of the input handed to [`Attribution::step`]: images `[B, 3, H, W]`
/// (B ≥ 1) and the class each one's map explains.
pub struct Batch<'a> {
    /// The images' normalized values.
    pub inputs: ImageBatchRef<'a>,
    /// One class per image.
    pub targets: &'a [usize],
    /// The model's precision, in which [`Batch::tensor`] makes the batch.
    pub precision: Precision,
}

impl Batch<'_> {
    /// The batch as a tensor for the network, in its precision.
    pub fn tensor(&self) -> Tensor<4> {
        self.inputs.to_tensor(self.precision)
    }

    /// Image `i`'s map from its `H·W` values.
    pub fn map(&self, i: usize, values: Vec<f32>, signed: bool) -> Map {
        let [_, _, height, width] = self.inputs.shape();
        Map {
            width,
            height,
            values,
            target: self.targets[i],
            signed,
            delta: None,
        }
    }
}

/// An attribution method (Captum's `attribute`): a method implements [`Attribution::step`],
/// callers use the provided [`Attribution::attribute`].
pub trait Attribution {
    /// The method's name as the CLI spells it ("vanilla", "smoothgrad(vanilla)", ...).
    fn name(&self) -> String;

    /// Image passes needed for `n` images (for progress bars).
    fn passes(&self, n: usize) -> usize {
        n
    }

    /// What the method batches ([`Batching::Images`] unless it says otherwise).
    fn batching(&self) -> Batching {
        Batching::Images
    }

    /// The method proper: one map per image of `batch`, reporting its image passes to
    /// `run.progress`.
    fn step(&self, model: &dyn Classifier, batch: &Batch, run: &mut Run) -> Result<Vec<Map>>;

    /// One map per image of the normalized batch `inputs` `[N, 3, H, W]`, explaining `targets`:
    /// the batch and the targets are checked, then [`Attribution::step`] runs on [`batches`]
    /// of the images as [`Attribution::batching`] says.
    fn attribute(
        &self,
        model: &dyn Classifier,
        inputs: ImageBatchRef,
        targets: &Targets,
        run: &mut Run,
    ) -> Result<Vec<Map>> {
        let shape = inputs.shape();
        check_shape(shape)?;
        let n = shape[0];
        let t = targets.resolve(n, model.classes())?;
        let size = match self.batching() {
            Batching::Images => run.batch_size,
            Batching::Derived => n,
        };
        let mut maps = Vec::with_capacity(n);
        for r in batches(n, size) {
            let batch = Batch {
                inputs: inputs.slice(r.clone()),
                targets: &t[r],
                precision: model.precision(),
            };
            maps.extend(self.step(model, &batch, run)?);
        }
        Ok(maps)
    }
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
    /// Whether the gradient is guided backpropagation's ([`guided_class_gradients`]) rather
    /// than the plain one.
    fn guided(&self) -> bool {
        false
    }
}

impl<T: FromGradient> Attribution for T {
    fn name(&self) -> String {
        FromGradient::name(self)
    }

    fn step(&self, model: &dyn Classifier, batch: &Batch, run: &mut Run) -> Result<Vec<Map>> {
        let gradients = if self.guided() {
            guided_class_gradients
        } else {
            class_gradients
        };
        let (grads, _) = gradients(model, batch.inputs, batch.targets, run)?;
        let plane = batch.inputs.plane();
        Ok((0..batch.inputs.len())
            .map(|i| {
                let values = self.reduce(grads.image(i), batch.inputs.image(i), plane);
                batch.map(i, values, self.signed())
            })
            .collect())
    }
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

/// Input gradients of each image's target score, and the scores, for the images `x`
/// (`[N, 3, H, W]`), `run.batch_size` images per pass.
pub(crate) fn class_gradients(
    model: &dyn Classifier,
    x: ImageBatchRef,
    targets: &[usize],
    run: &mut Run,
) -> Result<(ImageBatch, Vec<f32>)> {
    gradients_with(input_gradient, model, x, targets, run)
}

/// [`class_gradients`] with guided backpropagation's rule at every ReLU / ReLU6
/// ([`Classifier::forward_guided`]): the gradients Guided Backprop maps are made from.
pub fn guided_class_gradients(
    model: &dyn Classifier,
    x: ImageBatchRef,
    targets: &[usize],
    run: &mut Run,
) -> Result<(ImageBatch, Vec<f32>)> {
    gradients_with(guided_input_gradient, model, x, targets, run)
}

type GradientFn = fn(&dyn Classifier, Tensor<4>, &dyn Objective) -> Result<InputGradient>;

fn gradients_with(
    gradient: GradientFn,
    model: &dyn Classifier,
    x: ImageBatchRef,
    targets: &[usize],
    run: &mut Run,
) -> Result<(ImageBatch, Vec<f32>)> {
    let shape = x.shape();
    check_shape(shape)?;
    let mut grads = Vec::with_capacity(x.values().len());
    let mut scores = Vec::with_capacity(shape[0]);
    for r in batches(shape[0], run.batch_size) {
        let b = r.len();
        let xb = x.slice(r.clone()).to_tensor(model.precision());
        let g = gradient(
            model,
            xb,
            &ClassScore {
                targets: targets[r].to_vec(),
            },
        )?;
        grads.extend(g.grad);
        scores.extend(g.objective);
        (run.progress)(b);
    }
    Ok((ImageBatch::new(grads, shape)?, scores))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn batches_cover_in_order() {
        let r: Vec<_> = batches(5, 2).collect();
        assert_eq!(r, vec![0..2, 2..4, 4..5]);
        assert_eq!(batches(3, 0).count(), 3);
        assert_eq!(batches(0, 4).count(), 0);
    }
}
