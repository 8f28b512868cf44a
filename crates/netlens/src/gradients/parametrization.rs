//! What the ascent loop optimizes and how it becomes an image: a [`Parametrization`] maps the
//! variable θ to the normalized image (differentiably, for the gradient, and as plain values,
//! for the stop rule, snapshots and the saved result), and [`Transform`]s are the random,
//! differentiable augmentations applied to that image before the network.

use crate::batch::ImageBatch;
use crate::engine::Precision;
use burn::tensor::Tensor;
use rand::rngs::StdRng;

/// How the optimized variable becomes the image the objective sees. The identity
/// ([`PixelParam`]) optimizes normalized pixels directly.
pub trait Parametrization {
    /// The normalized image `[N, 3, H, W]` from the variable (differentiable).
    fn image(&self, theta: Tensor<4>) -> Tensor<4>;

    /// The normalized images `[N, 3, H, W]` of the variable θ, without recording a graph:
    /// what the stop rule judges and what is saved. θ enters as float32 (its values are); a
    /// parametrization that computes in float64 casts it in `image`.
    fn pixels(&self, theta: &ImageBatch) -> ImageBatch {
        ImageBatch::from_tensor(self.image(theta.to_tensor(Precision::F32)).detach())
    }
}

/// Optimize normalized pixels directly.
pub struct PixelParam;

impl Parametrization for PixelParam {
    fn image(&self, theta: Tensor<4>) -> Tensor<4> {
        theta
    }

    fn pixels(&self, theta: &ImageBatch) -> ImageBatch {
        theta.clone()
    }
}

/// A differentiable transform applied to the image before the network (jitter, scale...).
/// It draws its randomness from `rng`, so a seed fixes the whole run.
pub trait Transform {
    fn apply(&self, x: Tensor<4>, rng: &mut StdRng) -> Tensor<4>;
}
