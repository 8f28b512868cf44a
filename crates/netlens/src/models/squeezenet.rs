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

use super::builder::{Builder, ConvShape};
use crate::error::Result;
use crate::graph::{Graph, Op, Pads};
use crate::weights::StateDict;

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

fn conv_shape(in_ch: usize, out_ch: usize, kernel: usize, stride: usize, pad: usize) -> ConvShape {
    ConvShape {
        in_ch,
        out_ch,
        kernel,
        stride,
        groups: 1,
        pads: Pads::Explicit([pad; 4]),
    }
}

/// Builds the network from a torchvision state dict (every tensor must fit), as a graph whose
/// values are named after torchvision's modules: `features.N`, `features.N.squeeze`,
/// `classifier.1` (class maps before ReLU), `classifier.2` (after).
pub fn graph(config: Config, sd: StateDict) -> Result<Graph> {
    let mut b = Builder::new(sd);
    let mut h = b.g.input;
    let mut channels = 3;
    let mut i = 0;
    for stage in config.features {
        let p = format!("features.{i}");
        match *stage {
            Stage::Conv {
                out,
                kernel,
                stride,
            } => {
                h = b.conv(
                    h,
                    &p,
                    conv_shape(channels, out, kernel, stride, 0),
                    true,
                    &p,
                )?;
                h = b.op(h, Op::Relu, &format!("features.{}", i + 1));
                i += 2;
                channels = out;
            }
            Stage::Pool => {
                h = b.max_pool(h, 3, 2, 0, true, &p);
                i += 1;
            }
            Stage::Fire { squeeze, expand } => {
                let conv = |b: &mut Builder, x, name: &str, s: ConvShape| -> Result<_> {
                    let c = b.conv(x, &format!("{p}.{name}"), s, true, &format!("{p}.{name}"))?;
                    Ok(b.op(c, Op::Relu, &format!("{p}.{name}_activation")))
                };
                let s = conv(&mut b, h, "squeeze", conv_shape(channels, squeeze, 1, 1, 0))?;
                let e1 = conv(&mut b, s, "expand1x1", conv_shape(squeeze, expand, 1, 1, 0))?;
                let e3 = conv(&mut b, s, "expand3x3", conv_shape(squeeze, expand, 3, 1, 1))?;
                h = b.g.node(Op::Concat { axis: 1 }, &[e1, e3], &p);
                i += 1;
                channels = 2 * expand;
            }
        }
    }
    let c = b.conv(
        h,
        "classifier.1",
        conv_shape(channels, config.num_classes, 1, 1, 0),
        true,
        "classifier.1",
    )?;
    let r = b.op(c, Op::Relu, "classifier.2");
    let y = b.pool_flatten(r, "classifier.3", "flatten");
    b.finish(y)
}

/// Grad-CAM's default layer: the output of the last Fire module.
pub fn cam_layer(config: &Config) -> String {
    let modules: usize = config
        .features
        .iter()
        .map(|s| {
            if matches!(s, Stage::Conv { .. }) {
                2
            } else {
                1
            }
        })
        .sum();
    format!("features.{}", modules - 1)
}
