//! Input gradients: the primitive under every saliency map, fooling image and visualization.
//!
//! An [`Objective`] turns a batch's logits (and, for regularizers, the input itself) into one
//! scalar per image; [`input_gradient`] returns d objective / d input for each image, with the
//! weights frozen. Images in a batch are independent (inference-mode networks), so the
//! gradient of the summed objective is each image's own gradient.

use crate::engine;
use crate::error::{Error, Result};
use crate::imaging::tensor::tensor_values;
use crate::models::Classifier;
use burn::tensor::Tensor;

/// One scalar per image, to be differentiated with respect to the input.
pub trait Objective {
    /// Per-image objective `[N]` from logits `[N, K]` and the input `[N, 3, H, W]`.
    fn evaluate(&self, logits: Tensor<2>, input: &Tensor<4>) -> Tensor<1>;
}

/// The unnormalized score of one target class per image (CS231n's saliency objective).
#[derive(Debug, Clone)]
pub struct ClassScore {
    pub targets: Vec<usize>,
}

/// A constant `[N, K]` one-hot matrix selecting `targets[i]` in row `i`.
pub fn one_hot(targets: &[usize], classes: usize) -> Tensor<2> {
    let mut m = vec![0f32; targets.len() * classes];
    for (i, &t) in targets.iter().enumerate() {
        m[i * classes + t] = 1.0;
    }
    engine::tensor(m, [targets.len(), classes])
}

impl Objective for ClassScore {
    fn evaluate(&self, logits: Tensor<2>, _input: &Tensor<4>) -> Tensor<1> {
        let [n, k] = logits.dims();
        (logits * one_hot(&self.targets, k)).sum_dim(1).reshape([n])
    }
}

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
    let shape = x.dims();
    let x = x.detach().require_grad();
    let logits = model.forward(x.clone());
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

/// Logits `[N, K]` (flat) of a normalized batch, without recording a graph.
pub fn logits(model: &dyn Classifier, x: Tensor<4>) -> Vec<f32> {
    tensor_values(model.forward(x.detach()))
}

/// Softmax of each row of flat `[N, K]` logits, in f64 for accuracy.
pub fn softmax_rows(logits: &[f32], k: usize) -> Vec<Vec<f64>> {
    logits
        .chunks(k)
        .map(|row| {
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|v| v / s).collect()
        })
        .collect()
}

/// Indices of the `k` largest values, largest first.
pub fn top_k(values: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    idx.truncate(k);
    idx
}
