//! Gradient × input (Shrikumar et al. 2016): each normalized input value times the gradient of
//! the target score with respect to it, summed over the colour channels. Signed: positive where
//! the pixel's value pushes the score up (relative to a zero, i.e. mid-grey, input).

use super::FromGradient;

/// `Σ_c x_c · d score / d x_c`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GradientXInput;

impl FromGradient for GradientXInput {
    fn name(&self) -> String {
        "gradient-x-input".into()
    }
    fn signed(&self) -> bool {
        true
    }
    fn reduce(&self, grad: &[f32], input: &[f32], plane: usize) -> Vec<f32> {
        (0..plane)
            .map(|i| {
                (0..3)
                    .map(|c| grad[c * plane + i] * input[c * plane + i])
                    .sum()
            })
            .collect()
    }
}
