//! VGG (Simonyan & Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale Image
//! Recognition"), configuration "D" (VGG16) as torchvision builds it.
//!
//! Key traits: thirteen 3×3 convolutions (padding 1, with bias, ReLU) in five groups, each
//! group closed by a 2×2 max-pool; no BatchNorm; an adaptive average pool to 7×7 (the
//! identity at 224 px); three fully connected layers (25088 → 4096 → 4096 → 1000) with ReLU,
//! whose dropout is the identity at evaluation. 138 M parameters. Weight and layer names are
//! torchvision's module indices (`features.28.weight`, `classifier.6.bias`, ...), which name the graph's values too: `features.N` (a
//! convolution's output before its ReLU, `features.N+1`), `avgpool`, `classifier.N`.

use super::builder::{Builder, ConvShape};
use crate::error::Result;
use crate::graph::{Graph, Op, Pads};
use crate::weights::StateDict;

/// The layer list and classifier width of one variant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Convolution widths in order; `None` is a 2×2 max-pool (torchvision's `"M"`).
    pub features: &'static [Option<usize>],
    /// Side of the adaptive average pool before the classifier.
    pub pool_size: usize,
    /// Width of the two hidden fully connected layers.
    pub hidden: usize,
    pub num_classes: usize,
}

const M: Option<usize> = None;

impl Config {
    /// torchvision's `vgg16` (configuration "D").
    pub const VGG16: Config = Config {
        features: &[
            Some(64),
            Some(64),
            M,
            Some(128),
            Some(128),
            M,
            Some(256),
            Some(256),
            Some(256),
            M,
            Some(512),
            Some(512),
            Some(512),
            M,
            Some(512),
            Some(512),
            Some(512),
            M,
        ],
        pool_size: 7,
        hidden: 4096,
        num_classes: 1000,
    };

    /// The same thirteen-convolution layout with an eighth of the channels and a 128-wide
    /// classifier (for tests).
    pub const TINY: Config = Config {
        features: &[
            Some(8),
            Some(8),
            M,
            Some(16),
            Some(16),
            M,
            Some(32),
            Some(32),
            Some(32),
            M,
            Some(64),
            Some(64),
            Some(64),
            M,
            Some(64),
            Some(64),
            Some(64),
            M,
        ],
        pool_size: 7,
        hidden: 128,
        num_classes: 1000,
    };
}

/// Builds the network from a torchvision state dict (every tensor must fit), as a graph.
pub fn graph(config: Config, sd: StateDict) -> Result<Graph> {
    let mut b = Builder::new(sd);
    let mut h = b.g.input;
    let mut channels = 3;
    let mut i = 0;
    for entry in config.features {
        match *entry {
            Some(out) => {
                let s = ConvShape {
                    in_ch: channels,
                    out_ch: out,
                    kernel: 3,
                    stride: 1,
                    groups: 1,
                    pads: Pads::Explicit([1; 4]),
                };
                let name = format!("features.{i}");
                h = b.conv(h, &name, s, true, &name)?;
                h = b.op(h, Op::Relu, &format!("features.{}", i + 1));
                i += 2;
                channels = out;
            }
            None => {
                h = b.max_pool(h, 2, 2, 0, false, &format!("features.{i}"));
                i += 1;
            }
        }
    }
    let p = config.pool_size;
    h = b.op(h, Op::AdaptiveAvgPool { out: [p, p] }, "avgpool");
    h = b.op(h, Op::Flatten { axis: 1 }, "flatten");
    let flat = channels * p * p;
    h = b.linear(h, "classifier.0", flat, config.hidden, "classifier.0")?;
    h = b.op(h, Op::Relu, "classifier.1");
    h = b.linear(
        h,
        "classifier.3",
        config.hidden,
        config.hidden,
        "classifier.3",
    )?;
    h = b.op(h, Op::Relu, "classifier.4");
    let y = b.linear(
        h,
        "classifier.6",
        config.hidden,
        config.num_classes,
        "classifier.6",
    )?;
    b.finish(y)
}

/// Grad-CAM's default layer: the last convolution's ReLU output, before the final pool
/// (`features.29` in VGG16).
pub fn cam_layer(config: &Config) -> String {
    let modules: usize = config
        .features
        .iter()
        .map(|e| if e.is_some() { 2 } else { 1 })
        .sum();
    let last_pool = usize::from(config.features.last().is_some_and(Option::is_none));
    format!("features.{}", modules - 1 - last_pool)
}
