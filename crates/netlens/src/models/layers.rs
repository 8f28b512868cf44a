//! The building blocks every architecture shares: convolution (with BatchNorm folded in and
//! TensorFlow "SAME" or explicit padding), linear layers, and ReLU6.
//!
//! Weights are created on the engine device with `from_data`, so they are constants for
//! autodiff: backward passes compute input gradients only.

use crate::engine;
use crate::error::Result;
use crate::fast::kernels::Act;
use crate::fast::{Graph, Unsupported, Value};
use crate::imaging::tensor::tensor_values;
use crate::weights::StateDict;
use burn::tensor::activation::relu;
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

/// ReLU6, written as `relu(x) − relu(x − 6)`: the same values and gradient as PyTorch's
/// `hardtanh(0, 6)` away from the kinks, and faster than `clamp` under autodiff.
pub fn relu6<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    relu(x.clone()) - relu(x - 6.0)
}

// ---------------------------------------------------------------------------------------------
// Blocks for torchvision's SqueezeNet, VGG and Vision Transformer.
// ---------------------------------------------------------------------------------------------

/// PyTorch's `MaxPool2d(kernel, stride, padding, ceil_mode)` on `[N, C, H, W]`. With
/// `ceil_mode` a last, partial window is kept when it starts inside the input, as in PyTorch.
pub fn max_pool(
    x: Tensor<4>,
    kernel: usize,
    stride: usize,
    padding: usize,
    ceil_mode: bool,
) -> Tensor<4> {
    use burn::tensor::module::max_pool2d;
    use burn::tensor::ops::MaxPoolOptions;
    let opts = MaxPoolOptions::new([kernel; 2])
        .with_stride([stride; 2])
        .with_padding([padding; 2])
        .with_ceil_mode(ceil_mode);
    max_pool2d(x, opts)
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

// ---------------------------------------------------------------------------------------------
// The same layers described for the fast path.
// ---------------------------------------------------------------------------------------------

impl Conv {
    /// This convolution's weights and wiring for a [`fast::Graph`](crate::fast::Graph).
    pub fn fast_params(&self) -> crate::fast::ConvParams {
        let [cout, per_group, k, _] = self.weight.dims();
        crate::fast::ConvParams {
            weight: tensor_values(self.weight.clone()),
            bias: self
                .bias
                .clone()
                .map(tensor_values)
                .unwrap_or_else(|| vec![0.0; cout]),
            cin: per_group * self.groups,
            cout,
            k,
            stride: self.stride,
            groups: self.groups,
            pad: match self.padding {
                Padding::Same => crate::fast::Pad::Same,
                Padding::Explicit(p) => crate::fast::Pad::Explicit(p),
            },
        }
    }
}

impl Linear {
    /// PyTorch-layout `[out, in]` weight and bias, for a [`fast::Graph`](crate::fast::Graph).
    pub fn fast_params(&self) -> (Vec<f32>, Vec<f32>) {
        (
            tensor_values(self.weight_t.clone().transpose()),
            tensor_values(self.bias.clone()),
        )
    }
}

/// What one module of a torchvision `features` sequence is to [`fast_features`].
pub enum FastFeature<'a> {
    Conv(&'a Conv),
    Relu,
    /// Anything else (a pool, a Fire module): the caller adds it.
    Other,
}

/// Adds the `n` modules of a torchvision `features` sequence to a fast graph, after value
/// `h`: each convolution with the ReLU that follows it fused in, every other module through
/// `other(graph, value, index)`. Returns the last value.
pub fn fast_features<'a>(
    g: &mut Graph,
    mut h: Value,
    n: usize,
    kind: impl Fn(usize) -> FastFeature<'a>,
    mut other: impl FnMut(&mut Graph, Value, usize) -> std::result::Result<Value, Unsupported>,
) -> std::result::Result<Value, Unsupported> {
    let mut i = 0;
    while i < n {
        match kind(i) {
            FastFeature::Conv(c) => {
                let relu = i + 1 < n && matches!(kind(i + 1), FastFeature::Relu);
                let act = if relu { Act::Relu } else { Act::None };
                h = g.conv(h, c.fast_params(), act)?;
                i += 1 + usize::from(relu);
            }
            FastFeature::Relu => return Err(Unsupported("a ReLU without its convolution".into())),
            FastFeature::Other => {
                h = other(g, h, i)?;
                i += 1;
            }
        }
    }
    Ok(h)
}
