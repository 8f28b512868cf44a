//! The burn layers of the zoo's Vision Transformer (the one model with a forward of its own):
//! its patch convolution, linear layers and layer normalization. CNNs are graphs
//! (`builder.rs`, `crate::graph`).
//!
//! Weights are created on the engine device with `from_data`, in the model's precision, so
//! they are constants for autodiff: backward passes compute input gradients only.

use crate::engine::tensor_values;
use crate::engine::Precision;
use crate::error::Result;
use crate::weights::StateDict;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

/// A non-overlapping patch convolution (kernel = stride, no padding), with bias: the ViT's
/// `conv_proj`, which cuts the image into patch embeddings.
#[derive(Debug, Clone)]
pub struct PatchConv {
    weight: Tensor<4>,
    bias: Tensor<1>,
    patch: usize,
}

impl PatchConv {
    /// Reads `name.weight` `[out, in, patch, patch]` and `name.bias` `[out]`.
    pub fn take(
        sd: &mut StateDict,
        name: &str,
        in_ch: usize,
        out_ch: usize,
        patch: usize,
        p: Precision,
    ) -> Result<Self> {
        let w = sd.take(&format!("{name}.weight"), &[out_ch, in_ch, patch, patch])?;
        let b = sd.take(&format!("{name}.bias"), &[out_ch])?;
        Ok(Self {
            weight: p.tensor(w.data, [out_ch, in_ch, patch, patch]),
            bias: p.tensor(b.data, [out_ch]),
            patch,
        })
    }

    /// Applies the convolution to `[N, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let opts = ConvOptions::new([self.patch; 2], [0, 0], [1, 1], 1);
        conv2d(x, self.weight.clone(), Some(self.bias.clone()), opts)
    }

    /// The weight `[out, in, patch, patch]` and bias as float32 values (the fast path's copy).
    pub(crate) fn values(&self) -> (Vec<f32>, Vec<f32>) {
        (
            tensor_values(self.weight.clone()),
            tensor_values(self.bias.clone()),
        )
    }
}

/// A fully connected layer `y = x Wᵀ + b`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight_t: Tensor<2>,
    bias: Tensor<1>,
}

impl Linear {
    /// Reads PyTorch's `name.weight` `[out, in]` and `name.bias` `[out]`.
    pub fn take(
        sd: &mut StateDict,
        name: &str,
        inputs: usize,
        outputs: usize,
        p: Precision,
    ) -> Result<Self> {
        let w = sd.take(&format!("{name}.weight"), &[outputs, inputs])?;
        let b = sd.take(&format!("{name}.bias"), &[outputs])?;
        let weight: Tensor<2> = p.tensor(w.data, [outputs, inputs]);
        Ok(Self {
            weight_t: weight.transpose(),
            bias: p.tensor(b.data, [outputs]),
        })
    }

    /// Applies the layer to `[N, in]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.weight_t.clone()) + self.bias.clone().unsqueeze::<2>()
    }
}

impl Linear {
    /// Applies the layer to every row of `[N, T, in]` (a sequence of tokens).
    pub fn forward_tokens(&self, x: Tensor<3>) -> Tensor<3> {
        let [n, t, d] = x.dims();
        let y = self.forward(x.reshape([n * t, d]));
        let out = y.dims()[1];
        y.reshape([n, t, out])
    }

    /// Builds the layer from a row-major `[out, in]` weight and its bias (for weights that
    /// a checkpoint stores packed, such as an attention's `in_proj_weight`).
    pub fn from_parts(
        weight: Vec<f32>,
        bias: Vec<f32>,
        inputs: usize,
        outputs: usize,
        p: Precision,
    ) -> Self {
        let w: Tensor<2> = p.tensor(weight, [outputs, inputs]);
        Self {
            weight_t: w.transpose(),
            bias: p.tensor(bias, [outputs]),
        }
    }

    /// The weight as `[in, out]` (transposed from PyTorch's) and the bias, as float32 values
    /// (the fast path's copy).
    pub(crate) fn values(&self) -> (Vec<f32>, Vec<f32>) {
        (
            tensor_values(self.weight_t.clone()),
            tensor_values(self.bias.clone()),
        )
    }
}

/// Layer normalization over the last dimension (PyTorch's `nn.LayerNorm(dim, eps)`: biased
/// variance, `eps` inside the square root).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f64,
}

impl LayerNorm {
    /// Reads `name.weight` and `name.bias`, both `[dim]`.
    pub fn take(
        sd: &mut StateDict,
        name: &str,
        dim: usize,
        eps: f64,
        p: Precision,
    ) -> Result<Self> {
        let g = sd.take(&format!("{name}.weight"), &[dim])?;
        let b = sd.take(&format!("{name}.bias"), &[dim])?;
        Ok(Self {
            gamma: p.tensor(g.data, [dim]),
            beta: p.tensor(b.data, [dim]),
            eps,
        })
    }

    /// Normalizes the last dimension of `x`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        burn::tensor::module::layer_norm(x, self.gamma.clone(), Some(self.beta.clone()), self.eps)
    }

    /// γ, β and ε as float32 values (the fast path's copy).
    pub(crate) fn values(&self) -> (Vec<f32>, Vec<f32>, f32) {
        (
            tensor_values(self.gamma.clone()),
            tensor_values(self.beta.clone()),
            self.eps as f32,
        )
    }
}
