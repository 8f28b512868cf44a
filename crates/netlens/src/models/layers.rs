//! The burn layers of the zoo's Vision Transformer (the one model with a forward of its own):
//! its patch convolution, linear layers and layer normalization. CNNs are graphs
//! (`builder.rs`, `crate::graph`).
//!
//! Weights are created on the engine device with `from_data`, so they are constants for
//! autodiff: backward passes compute input gradients only.

use crate::engine;
use crate::error::Result;
use crate::weights::StateDict;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

/// How a convolution pads its input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Padding {
    /// TensorFlow "SAME": output = ceil(input / stride); the extra pixel goes right/bottom.
    Same,
    /// PyTorch-style symmetric padding.
    Explicit(usize),
}

/// A 2-D convolution with optional bias (BatchNorm folded into it when loading).
#[derive(Debug, Clone)]
pub struct Conv {
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    kernel: usize,
    stride: usize,
    groups: usize,
    padding: Padding,
}

/// BatchNorm statistics as stored in a checkpoint.
pub struct BatchNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub eps: f32,
}

impl BatchNorm {
    /// Takes `prefix.{weight,bias,running_mean,running_var}` for `channels` channels.
    pub fn take(sd: &mut StateDict, prefix: &str, channels: usize, eps: f32) -> Result<Self> {
        Ok(Self {
            gamma: sd.take(&format!("{prefix}.weight"), &[channels])?.data,
            beta: sd.take(&format!("{prefix}.bias"), &[channels])?.data,
            mean: sd
                .take(&format!("{prefix}.running_mean"), &[channels])?
                .data,
            var: sd.take(&format!("{prefix}.running_var"), &[channels])?.data,
            eps,
        })
    }
}

fn shape4(s: &[usize]) -> [usize; 4] {
    [s[0], s[1], s[2], s[3]]
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// Shape and wiring of one convolution, for reading its weights.
#[derive(Debug, Clone, Copy)]
pub struct ConvShape {
    pub in_ch: usize,
    pub out_ch: usize,
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
    pub padding: Padding,
}

impl Conv {
    /// Reads `name.weight` (and `name.bias` when `bias`), then folds the BatchNorm at
    /// `bn = (prefix, eps)` if given.
    pub fn take(
        sd: &mut StateDict,
        name: &str,
        s: ConvShape,
        bias: bool,
        bn: Option<(&str, f32)>,
    ) -> Result<Self> {
        let w = sd.take(
            &format!("{name}.weight"),
            &[s.out_ch, s.in_ch / s.groups, s.kernel, s.kernel],
        )?;
        let wshape = shape4(&w.shape);
        let mut w = widen(&w.data);
        let mut b = if bias {
            Some(widen(&sd.take(&format!("{name}.bias"), &[s.out_ch])?.data))
        } else {
            None
        };
        if let Some((prefix, eps)) = bn {
            let bn = BatchNorm::take(sd, prefix, s.out_ch, eps)?;
            let per_out = w.len() / s.out_ch;
            let mut fb = b.take().unwrap_or_else(|| vec![0.0; s.out_ch]);
            for o in 0..s.out_ch {
                // Fold in f64: exact for a float64 engine, correctly rounded for float32.
                let scale =
                    f64::from(bn.gamma[o]) / (f64::from(bn.var[o]) + f64::from(bn.eps)).sqrt();
                for v in &mut w[o * per_out..(o + 1) * per_out] {
                    *v *= scale;
                }
                fb[o] = (fb[o] - f64::from(bn.mean[o])) * scale + f64::from(bn.beta[o]);
            }
            b = Some(fb);
        }
        Ok(Self {
            weight: engine::tensor_f64(w, wshape),
            bias: b.map(|b| {
                let n = b.len();
                engine::tensor_f64(b, [n])
            }),
            kernel: s.kernel,
            stride: s.stride,
            groups: s.groups,
            padding: s.padding,
        })
    }

    /// Applies the convolution to `[N, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let pad = |len: usize| match self.padding {
            Padding::Explicit(p) => (p, p),
            Padding::Same => {
                let out = len.div_ceil(self.stride);
                let total = ((out - 1) * self.stride + self.kernel).saturating_sub(len);
                (total / 2, total - total / 2)
            }
        };
        let opts =
            ConvOptions::new_with_padding([self.stride; 2], [pad(h), pad(w)], [1, 1], self.groups);
        conv2d(x, self.weight.clone(), self.bias.clone(), opts)
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
    pub fn take(sd: &mut StateDict, name: &str, inputs: usize, outputs: usize) -> Result<Self> {
        let w = sd.take(&format!("{name}.weight"), &[outputs, inputs])?;
        let b = sd.take(&format!("{name}.bias"), &[outputs])?;
        let weight: Tensor<2> = engine::tensor(w.data, [outputs, inputs]);
        Ok(Self {
            weight_t: weight.transpose(),
            bias: engine::tensor(b.data, [outputs]),
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
    pub fn from_parts(weight: Vec<f32>, bias: Vec<f32>, inputs: usize, outputs: usize) -> Self {
        let w: Tensor<2> = engine::tensor(weight, [outputs, inputs]);
        Self {
            weight_t: w.transpose(),
            bias: engine::tensor(bias, [outputs]),
        }
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
    pub fn take(sd: &mut StateDict, name: &str, dim: usize, eps: f64) -> Result<Self> {
        let g = sd.take(&format!("{name}.weight"), &[dim])?;
        let b = sd.take(&format!("{name}.bias"), &[dim])?;
        Ok(Self {
            gamma: engine::tensor(g.data, [dim]),
            beta: engine::tensor(b.data, [dim]),
            eps,
        })
    }

    /// Normalizes the last dimension of `x`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        burn::tensor::module::layer_norm(x, self.gamma.clone(), Some(self.beta.clone()), self.eps)
    }
}
