//! Objectives for class visualization: a class score, optionally minus an L2 penalty on the
//! image (CS231n's `score − λ‖x‖²`).

use crate::gradients::{ClassScore, Objective};
use burn::tensor::Tensor;

/// `logit[target] − l2_reg · ‖x‖²` per image, where `x` is the (untransformed) normalized
/// image the parametrization produced.
#[derive(Debug, Clone)]
pub struct ScoreMinusL2 {
    pub targets: Vec<usize>,
    pub l2_reg: f32,
}

impl Objective for ScoreMinusL2 {
    fn evaluate(&self, logits: Tensor<2>, input: &Tensor<4>) -> Tensor<1> {
        let score = ClassScore {
            targets: self.targets.clone(),
        }
        .evaluate(logits, input);
        if self.l2_reg == 0.0 {
            return score;
        }
        let [n, c, h, w] = input.dims();
        let sq = input
            .clone()
            .square()
            .reshape([n, c * h * w])
            .sum_dim(1)
            .reshape([n]);
        score - sq * self.l2_reg
    }
}
