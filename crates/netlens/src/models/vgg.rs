//! VGG (Simonyan & Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale Image
//! Recognition"), configuration "D" (VGG16) as torchvision builds it.
//!
//! Key traits: thirteen 3×3 convolutions (padding 1, with bias, ReLU) in five groups, each
//! group closed by a 2×2 max-pool; no BatchNorm; an adaptive average pool to 7×7 (the
//! identity at 224 px); three fully connected layers (25088 → 4096 → 4096 → 1000) with ReLU,
//! whose dropout is the identity at evaluation. 138 M parameters. Weight and layer names are
//! torchvision's module indices (`features.28.weight`, `classifier.6.bias`, ...).

use super::layers::{fast_features, max_pool, Conv, ConvShape, FastFeature, Linear, Padding};
use crate::error::{Error, Result};
use crate::fast::{self, kernels::Act};
use crate::weights::StateDict;
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::Tensor;

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

/// One module of `features` (indexed as in torchvision).
enum Op {
    Conv(Box<Conv>),
    Relu,
    Pool,
}

/// VGG with torchvision's weights.
pub struct Vgg {
    config: Config,
    features: Vec<Op>,
    fc: [Linear; 3],
}

impl Vgg {
    /// Builds the network from a torchvision state dict; every tensor must fit.
    pub fn from_state_dict(config: Config, mut sd: StateDict) -> Result<Self> {
        let mut features = Vec::new();
        let mut channels = 3;
        for entry in config.features {
            match *entry {
                Some(out) => {
                    let s = ConvShape {
                        in_ch: channels,
                        out_ch: out,
                        kernel: 3,
                        stride: 1,
                        groups: 1,
                        padding: Padding::Explicit(1),
                    };
                    let name = format!("features.{}", features.len());
                    features.push(Op::Conv(Box::new(Conv::take(
                        &mut sd, &name, s, true, None,
                    )?)));
                    features.push(Op::Relu);
                    channels = out;
                }
                None => features.push(Op::Pool),
            }
        }
        let flat = channels * config.pool_size * config.pool_size;
        let fc = [
            Linear::take(&mut sd, "classifier.0", flat, config.hidden)?,
            Linear::take(&mut sd, "classifier.3", config.hidden, config.hidden)?,
            Linear::take(&mut sd, "classifier.6", config.hidden, config.num_classes)?,
        ];
        sd.finish()?;
        Ok(Self {
            config,
            features,
            fc,
        })
    }

    /// The variant's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Tappable layers, input side first: every `features.i` module output (convolutions
    /// before their ReLU), then `avgpool`.
    pub fn layer_names(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.features.len())
            .map(|i| format!("features.{i}"))
            .collect();
        v.push("avgpool".into());
        v
    }

    /// Grad-CAM's default layer: the last convolution's ReLU output, before the final pool
    /// (`features.29` in VGG16).
    pub fn cam_layer(&self) -> String {
        let last = self
            .features
            .iter()
            .rposition(|op| matches!(op, Op::Relu))
            .unwrap_or(0);
        format!("features.{last}")
    }

    fn index(&self, layer: &str) -> Result<usize> {
        self.layer_names()
            .iter()
            .position(|l| l == layer)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "no layer '{layer}' in VGG; layers are features.0..{}, avgpool",
                    self.features.len() - 1
                ))
            })
    }

    fn step(&self, i: usize, x: Tensor<4>) -> Tensor<4> {
        match self.features.get(i) {
            Some(Op::Conv(c)) => c.forward(x),
            Some(Op::Relu) => relu(x),
            Some(Op::Pool) => max_pool(x, 2, 2, 0, false),
            None => adaptive_avg_pool2d(x, [self.config.pool_size; 2]),
        }
    }

    fn classify(&self, pooled: Tensor<4>) -> Tensor<2> {
        let [n, c, h, w] = pooled.dims();
        let x = pooled.reshape([n, c * h * w]);
        let x = relu(self.fc[0].forward(x));
        let x = relu(self.fc[1].forward(x));
        self.fc[2].forward(x)
    }

    /// Logits `[N, classes]` of a normalized batch `[N, 3, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = x;
        for i in 0..=self.features.len() {
            h = self.step(i, h);
        }
        self.classify(h)
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
        for i in start + 1..=self.features.len() {
            h = self.step(i, h);
        }
        Ok(self.classify(h))
    }
}

impl Vgg {
    /// The network as a fast-path graph (the same layers as [`forward`](Self::forward));
    /// the adaptive average pool must be the identity (a 224-pixel input for VGG16), other
    /// sizes run on the plain path.
    pub fn fast_graph(&self) -> std::result::Result<fast::Graph, fast::Unsupported> {
        let mut g = fast::Graph::new();
        let kind = |i: usize| match &self.features[i] {
            Op::Conv(c) => FastFeature::Conv(c),
            Op::Relu => FastFeature::Relu,
            Op::Pool => FastFeature::Other,
        };
        let pool = |g: &mut fast::Graph, h, _| Ok(g.max_pool(h, 2, 2, 0, false));
        let mut h = fast_features(&mut g, 0, self.features.len(), kind, pool)?;
        let p = self.config.pool_size;
        let acts = [Act::Relu, Act::Relu, Act::None];
        for (j, (fc, act)) in self.fc.iter().zip(acts).enumerate() {
            let (w, b) = fc.fast_params();
            let outputs = b.len();
            let inputs = w.len() / outputs.max(1);
            let spatial = (j == 0).then_some((p, p));
            h = g.linear(h, w, b, inputs, outputs, act, spatial)?;
        }
        Ok(g)
    }
}
