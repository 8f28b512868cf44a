//! Vanilla gradient saliency (Simonyan, Vedaldi & Zisserman 2014), exactly as CS231n's
//! `compute_saliency_maps`: the gradient of the unnormalized target score with respect to the
//! normalized input, absolute value, maximum over the three colour channels.

use super::FromGradient;

/// `max_c |d score / d x_c|`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vanilla;

impl FromGradient for Vanilla {
    fn name(&self) -> String {
        "vanilla".into()
    }
    fn signed(&self) -> bool {
        false
    }
    fn reduce(&self, grad: &[f32], _input: &[f32], plane: usize) -> Vec<f32> {
        (0..plane)
            .map(|i| {
                grad[i]
                    .abs()
                    .max(grad[plane + i].abs())
                    .max(grad[2 * plane + i].abs())
            })
            .collect()
    }
}
