//! Input gradients and the one gradient-ascent loop built on them.
//!
//! [`input_gradient`] is the primitive under every saliency map: d objective / d input for
//! each image, with the weights frozen. Images in a batch are independent (inference-mode
//! networks), so the gradient of the summed objective is each image's own gradient.
//!
//! Fooling images and class visualizations climb the same gradient in [`ascend`], configured
//! by an [`Ascent`]. The pieces, one file each:
//!
//! - [`objective`]: what is maximized ([`Objective`], [`ClassScore`]);
//! - [`parametrization`]: what is optimized and how it becomes pixels ([`Parametrization`],
//!   [`PixelParam`]), and the random [`Transform`]s in front of the network;
//! - [`optimizer`]: the step rules ([`Step`]) and each image's state ([`Optimizer`]);
//! - [`constraint`]: the pixel box and ε-balls, as a projection and as 8-bit rounding;
//! - [`ascent`]: the loop and its stop rule, which judges the saved image.
//!
//! Softmax, top-k and plain logits are in [`crate::classify`]; rounding to 8 bits is in
//! [`crate::imaging::quantize`](mod@crate::imaging::quantize). Both are re-exported here
//! under their former paths.

pub mod ascent;
pub mod constraint;
pub mod objective;
pub mod optimizer;
pub mod parametrization;

pub use crate::classify::{logits, softmax_rows, top_k};
pub use crate::imaging::quantize::quantize;
pub use ascent::{ascend, Ascent, AscentResult, PostStep, Progress, Stop};
pub use constraint::{quantize_within, Constraint};
pub use objective::{one_hot, ClassScore, Objective};
pub use optimizer::{l2_norm, Optimizer, Step};
pub use parametrization::{Parametrization, PixelParam, Transform};

use crate::engine::tensor_values;
use crate::error::{Error, Result};
use crate::models::Classifier;
use burn::tensor::Tensor;

/// What one forward + backward pass returns.
#[derive(Debug, Clone)]
pub struct InputGradient {
    /// d objective / d input, flat `[N, 3, H, W]`.
    pub grad: Vec<f32>,
    /// The objective per image.
    pub objective: Vec<f32>,
    /// The logits, flat `[N, K]`.
    pub logits: Vec<f32>,
    /// `[N, 3, H, W]`.
    pub shape: [usize; 4],
}

/// The gradient of `objective` with respect to the normalized input batch `x`.
pub fn input_gradient(
    model: &dyn Classifier,
    x: Tensor<4>,
    objective: &dyn Objective,
) -> Result<InputGradient> {
    gradient_through(x, objective, |x| Ok(model.forward(x)))
}

/// [`input_gradient`] with guided backpropagation's rule at every ReLU-family activation
/// ([`Classifier::forward_guided`]); an error on models where the rule cannot apply.
pub fn guided_input_gradient(
    model: &dyn Classifier,
    x: Tensor<4>,
    objective: &dyn Objective,
) -> Result<InputGradient> {
    gradient_through(x, objective, |x| model.forward_guided(x))
}

fn gradient_through(
    x: Tensor<4>,
    objective: &dyn Objective,
    forward: impl FnOnce(Tensor<4>) -> Result<Tensor<2>>,
) -> Result<InputGradient> {
    let shape = x.dims();
    let x = x.detach().require_grad();
    let logits = forward(x.clone())?;
    let obj = objective.evaluate(logits.clone(), &x);
    let grads = obj.clone().sum().backward();
    let g = x
        .grad(&grads)
        .ok_or_else(|| Error::Invalid("the objective does not depend on the input".into()))?;
    Ok(InputGradient {
        grad: tensor_values(g),
        objective: tensor_values(obj.detach()),
        logits: tensor_values(logits.detach()),
        shape,
    })
}
