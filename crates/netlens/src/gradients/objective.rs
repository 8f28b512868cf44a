//! Objectives: one scalar per image, computed from a batch's logits (and, for regularizers,
//! the image itself), to be differentiated with respect to the input or maximized by the
//! ascent loop. The class score lives here; method-specific objectives (cross-entropy,
//! score − L2) live with their methods.

use crate::engine::Precision;
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

/// A constant `[N, K]` one-hot matrix selecting `targets[i]` in row `i`, in precision `p`
/// (that of the logits it multiplies: `Precision::of(&logits)`).
pub fn one_hot(targets: &[usize], classes: usize, p: Precision) -> Tensor<2> {
    let mut m = vec![0f32; targets.len() * classes];
    for (i, &t) in targets.iter().enumerate() {
        m[i * classes + t] = 1.0;
    }
    p.tensor(m, [targets.len(), classes])
}

impl Objective for ClassScore {
    fn evaluate(&self, logits: Tensor<2>, _input: &Tensor<4>) -> Tensor<1> {
        let [n, k] = logits.dims();
        let hot = one_hot(&self.targets, k, Precision::of(&logits));
        (logits * hot).sum_dim(1).reshape([n])
    }
}
