//! SqueezeNet 1.1 (Iandola et al. 2016, "SqueezeNet: AlexNet-level accuracy with 50x fewer
//! parameters and <0.5MB model size"; version 1.1 from the authors' repository), as
//! torchvision builds it.
//!
//! Key traits: "Fire" modules (a 1×1 squeeze convolution, then parallel 1×1 and 3×3 expand
//! convolutions whose ReLU outputs are concatenated), max-pools with `ceil_mode`, no
//! BatchNorm, no fully connected layer: a final 1×1 convolution to 1000 channels, ReLU and
//! global average pooling produce the logits (so they are never negative). Dropout is the
//! identity at evaluation. Weight and layer names are torchvision's module indices
//! (`features.3.squeeze.weight`, `classifier.1.bias`, ...).

use super::layers::{fast_features, max_pool, Conv, ConvShape, FastFeature, Padding};
use crate::error::{Error, Result};
use crate::fast::{self, kernels::Act};
use crate::weights::StateDict;
use burn::tensor::activation::relu;
use burn::tensor::Tensor;

/// One entry of `features`, in torchvision's order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stage {
    /// A convolution (no padding) followed by ReLU: two module indices.
    Conv {
        out: usize,
        kernel: usize,
        stride: usize,
    },
    /// `MaxPool2d(3, 2, ceil_mode=True)`.
    Pool,
    /// A Fire module: `squeeze` channels, then `expand` 1×1 and `expand` 3×3 channels.
    Fire { squeeze: usize, expand: usize },
}

/// The layer list of one variant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    pub features: &'static [Stage],
    pub num_classes: usize,
}

const fn fire(squeeze: usize, expand: usize) -> Stage {
    Stage::Fire { squeeze, expand }
}

impl Config {
    /// torchvision's `squeezenet1_1`: 1.24 M parameters, final 13×13 maps at 224 px.
    pub const SQUEEZENET1_1: Config = Config {
        features: &[
            Stage::Conv {
                out: 64,
                kernel: 3,
                stride: 2,
            },
            Stage::Pool,
            fire(16, 64),
            fire(16, 64),
            Stage::Pool,
            fire(32, 128),
            fire(32, 128),
            Stage::Pool,
            fire(48, 192),
            fire(48, 192),
            fire(64, 256),
            fire(64, 256),
        ],
        num_classes: 1000,
    };

    /// The same layout with a quarter of the channels (for tests).
    pub const TINY: Config = Config {
        features: &[
            Stage::Conv {
                out: 16,
                kernel: 3,
                stride: 2,
            },
            Stage::Pool,
            fire(4, 16),
            fire(4, 16),
            Stage::Pool,
            fire(8, 32),
            fire(8, 32),
            Stage::Pool,
            fire(12, 48),
            fire(12, 48),
            fire(16, 64),
            fire(16, 64),
        ],
        num_classes: 1000,
    };
}

struct Fire {
    squeeze: Conv,
    expand1x1: Conv,
    expand3x3: Conv,
}

impl Fire {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = relu(self.squeeze.forward(x));
        let a = relu(self.expand1x1.forward(s.clone()));
        let b = relu(self.expand3x3.forward(s));
        Tensor::cat(vec![a, b], 1)
    }
}

/// One module of `features` (indexed as in torchvision).
enum Op {
    Conv(Box<Conv>),
    Relu,
    Pool,
    Fire(Box<Fire>),
}

impl Op {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Op::Conv(c) => c.forward(x),
            Op::Relu => relu(x),
            Op::Pool => max_pool(x, 3, 2, 0, true),
            Op::Fire(f) => f.forward(x),
        }
    }
}

/// SqueezeNet with torchvision's weights.
pub struct SqueezeNet {
    config: Config,
    features: Vec<Op>,
    /// `classifier.1`: 1×1 convolution to the classes.
    final_conv: Conv,
}

fn conv_shape(in_ch: usize, out_ch: usize, kernel: usize, stride: usize, pad: usize) -> ConvShape {
    ConvShape {
        in_ch,
        out_ch,
        kernel,
        stride,
        groups: 1,
        padding: Padding::Explicit(pad),
    }
}

impl SqueezeNet {
    /// Builds the network from a torchvision state dict; every tensor must fit.
    pub fn from_state_dict(config: Config, mut sd: StateDict) -> Result<Self> {
        let mut features = Vec::new();
        let mut channels = 3;
        for stage in config.features {
            let p = format!("features.{}", features.len());
            match *stage {
                Stage::Conv {
                    out,
                    kernel,
                    stride,
                } => {
                    let s = conv_shape(channels, out, kernel, stride, 0);
                    features.push(Op::Conv(Box::new(Conv::take(&mut sd, &p, s, true, None)?)));
                    features.push(Op::Relu);
                    channels = out;
                }
                Stage::Pool => features.push(Op::Pool),
                Stage::Fire { squeeze, expand } => {
                    let mut take = |name: &str, s: ConvShape| {
                        Conv::take(&mut sd, &format!("{p}.{name}"), s, true, None)
                    };
                    let f = Fire {
                        squeeze: take("squeeze", conv_shape(channels, squeeze, 1, 1, 0))?,
                        expand1x1: take("expand1x1", conv_shape(squeeze, expand, 1, 1, 0))?,
                        expand3x3: take("expand3x3", conv_shape(squeeze, expand, 3, 1, 1))?,
                    };
                    features.push(Op::Fire(Box::new(f)));
                    channels = 2 * expand;
                }
            }
        }
        let final_conv = Conv::take(
            &mut sd,
            "classifier.1",
            conv_shape(channels, config.num_classes, 1, 1, 0),
            true,
            None,
        )?;
        sd.finish()?;
        Ok(Self {
            config,
            features,
            final_conv,
        })
    }

    /// The variant's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Tappable layers, input side first: every `features.i` module output, then
    /// `classifier.1` (class maps before ReLU) and `classifier.2` (after ReLU).
    pub fn layer_names(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.features.len())
            .map(|i| format!("features.{i}"))
            .collect();
        v.push("classifier.1".into());
        v.push("classifier.2".into());
        v
    }

    /// Grad-CAM's default layer: the output of the last Fire module.
    pub fn cam_layer(&self) -> String {
        format!("features.{}", self.features.len() - 1)
    }

    fn index(&self, layer: &str) -> Result<usize> {
        self.layer_names()
            .iter()
            .position(|l| l == layer)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "no layer '{layer}' in SqueezeNet; layers are features.0..{}, classifier.1, classifier.2",
                    self.features.len() - 1
                ))
            })
    }

    /// Applies module `i` of the tappable sequence.
    fn step(&self, i: usize, x: Tensor<4>) -> Tensor<4> {
        let n = self.features.len();
        match i {
            i if i < n => self.features[i].forward(x),
            i if i == n => self.final_conv.forward(x),
            _ => relu(x),
        }
    }

    fn pool(&self, maps: Tensor<4>) -> Tensor<2> {
        let [n, c, _, _] = maps.dims();
        maps.mean_dim(3).mean_dim(2).reshape([n, c])
    }

    /// Logits `[N, classes]` of a normalized batch `[N, 3, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = x;
        for i in 0..self.features.len() + 2 {
            h = self.step(i, h);
        }
        self.pool(h)
    }

    /// The activation of `layer`.
    pub fn forward_to(&self, x: Tensor<4>, layer: &str) -> Result<Tensor<4>> {
        let end = self.index(layer)?;
        let mut h = x;
        for i in 0..=end {
            h = self.step(i, h);
        }
        Ok(h)
    }

    /// Logits from the activation of `layer`.
    pub fn forward_from(&self, a: Tensor<4>, layer: &str) -> Result<Tensor<2>> {
        let start = self.index(layer)?;
        let mut h = a;
        for i in start + 1..self.features.len() + 2 {
            h = self.step(i, h);
        }
        Ok(self.pool(h))
    }
}

impl SqueezeNet {
    /// The network as a fast-path graph (the same layers as [`forward`](Self::forward)).
    pub fn fast_graph(&self) -> std::result::Result<fast::Graph, fast::Unsupported> {
        let mut g = fast::Graph::new();
        let kind = |i: usize| match &self.features[i] {
            Op::Conv(c) => FastFeature::Conv(c),
            Op::Relu => FastFeature::Relu,
            Op::Pool | Op::Fire(_) => FastFeature::Other,
        };
        let other = |g: &mut fast::Graph, h, i: usize| match &self.features[i] {
            Op::Fire(f) => {
                let s = g.conv(h, f.squeeze.fast_params(), Act::Relu)?;
                let a = g.conv(s, f.expand1x1.fast_params(), Act::Relu)?;
                let b = g.conv(s, f.expand3x3.fast_params(), Act::Relu)?;
                Ok(g.concat(vec![a, b]))
            }
            _ => Ok(g.max_pool(h, 3, 2, 0, true)),
        };
        let h = fast_features(&mut g, 0, self.features.len(), kind, other)?;
        let h = g.conv(h, self.final_conv.fast_params(), Act::Relu)?;
        g.global_avg(h);
        Ok(g)
    }
}
