//! The cross-entropy objectives of FGSM and PGD.

use crate::engine::Precision;
use crate::gradients::{one_hot, Objective};
use burn::tensor::activation::log_softmax;
use burn::tensor::Tensor;

/// Cross-entropy of the logits against one class per image, signed for ascent:
/// targeted runs maximize `−CE(target)` (move towards it), untargeted runs maximize
/// `CE(true class)` (move away from it).
#[derive(Debug, Clone)]
pub struct CrossEntropy {
    /// The target (targeted) or the true class (untargeted) of each image.
    pub classes: Vec<usize>,
    /// Push away from `classes` instead of towards them.
    pub untargeted: bool,
}

impl Objective for CrossEntropy {
    fn evaluate(&self, logits: Tensor<2>, _input: &Tensor<4>) -> Tensor<1> {
        let [n, k] = logits.dims();
        let hot = one_hot(&self.classes, k, Precision::of(&logits));
        let log_p = (log_softmax(logits, 1) * hot).sum_dim(1).reshape([n]);
        // log p = −CE
        if self.untargeted {
            -log_p
        } else {
            log_p
        }
    }
}
