//! Building the fast path's layer graph: what a model (or the ONNX lowering,
//! `graph/lower.rs`) describes, checked and with the weight layouts the backward kernels
//! need precomputed.

use super::kernels::winograd::{LazyWeights, Pass};
use super::kernels::Act;
use std::collections::HashMap;

/// A value of the graph: `0` is the network input, `i + 1` the output of node `i`.
pub type Value = usize;

/// The padding of a fast-path convolution, in the forms the models and the lowering give
/// it (the lowering maps the graph's [`Pads`](crate::graph::Pads) onto it); the layout turns
/// it into top and left padding ([`ConvGeom`](super::kernels::ConvGeom)`::pt`, `pl`) and an
/// output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pad {
    /// TensorFlow "SAME": output = ceil(input / stride), the extra pixel right/bottom.
    Same,
    /// Symmetric padding.
    Explicit(usize),
    /// `[top, left, bottom, right]` (an ONNX `Pad` before a convolution, TF "SAME" written
    /// out for one input size).
    Asym([usize; 4]),
}

/// A convolution's weights (BatchNorm already folded in) and wiring.
#[derive(Debug, Clone)]
pub struct ConvParams {
    /// `[cout, cin / groups, k, k]`, row-major.
    pub weight: Vec<f32>,
    /// `[cout]` (zeros when the layer has none).
    pub bias: Vec<f32>,
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub groups: usize,
    pub pad: Pad,
}

/// A dense layer's weights and shape.
#[derive(Debug, Clone)]
pub struct LinearParams {
    /// PyTorch's `[outputs, inputs]`, row-major.
    pub weight: Vec<f32>,
    /// `[outputs]`.
    pub bias: Vec<f32>,
    pub inputs: usize,
    pub outputs: usize,
    /// Only inputs of this spatial size `(h, w)` are accepted (other sizes fall back to the
    /// plain path, e.g. where an adaptive pool would not be the identity); `None`: any with
    /// the right element count.
    pub spatial: Option<(usize, usize)>,
}

#[derive(Debug)]
pub(super) enum Node {
    /// Dense convolution; `weight_t` is the flipped, transposed kernel
    /// `[cin, cout·k·k]` that turns the stride-1 backward pass of a k > 1 kernel into a
    /// forward convolution (empty for other convolutions, which do not use it).
    Conv {
        x: Value,
        p: ConvParams,
        act: Act,
        weight_t: Vec<f32>,
        /// `Wᵀ`, `[cin·k·k, cout]` row-major, for the layers whose backward pass is the
        /// product `Wᵀ · dy` (1×1 and strided layers, and those `weight_t` is not made for):
        /// the gemm crate runs that product from a row-major copy 1.2–1.9× faster than from
        /// `W` read transposed (ResNet-50's 1×1 and 7×7-plane layers, 2 threads). Empty where
        /// `weight_t` is used.
        weight_tr: Vec<f32>,
        /// The kernel and `weight_t` transformed for Winograd, on first use (never where
        /// the layer runs as im2col + gemm; see `kernels::winograd::LazyWeights`).
        winograd: LazyWeights,
        winograd_t: LazyWeights,
    },
    /// Depthwise convolution; `flipped` holds every kernel rotated by 180°.
    Depthwise {
        x: Value,
        p: ConvParams,
        act: Act,
        flipped: Vec<f32>,
    },
    /// `act(a + b)`: a residual connection, with the activation ResNet puts after it.
    Add {
        a: Value,
        b: Value,
        act: Act,
    },
    /// `x · s` with `s` of shape `[C, 1, 1]`: one scale per channel and image
    /// (squeeze-excitation's gate).
    Scale {
        x: Value,
        s: Value,
    },
    MaxPool {
        x: Value,
        k: usize,
        stride: usize,
        pad: usize,
        ceil: bool,
    },
    Concat(Vec<Value>),
    GlobalAvg(Value),
    /// `y = x Wᵀ + b` on the flattened per-image value; `weight` is `[out, in]`.
    Linear {
        x: Value,
        weight: Vec<f32>,
        bias: Vec<f32>,
        inputs: usize,
        outputs: usize,
        act: Act,
        /// Required spatial size of the input (`None`: any with the right element count).
        spatial: Option<(usize, usize)>,
    },
}

impl Node {
    pub(super) fn inputs(&self) -> Vec<Value> {
        match self {
            Node::Conv { x, .. }
            | Node::Depthwise { x, .. }
            | Node::MaxPool { x, .. }
            | Node::GlobalAvg(x)
            | Node::Linear { x, .. } => vec![*x],
            Node::Add { a, b, .. } => vec![*a, *b],
            Node::Scale { x, s } => vec![*x, *s],
            Node::Concat(v) => v.clone(),
        }
    }
    pub(super) fn act(&self) -> Act {
        match self {
            Node::Conv { act, .. }
            | Node::Depthwise { act, .. }
            | Node::Linear { act, .. }
            | Node::Add { act, .. } => *act,
            _ => Act::None,
        }
    }
}

/// A network described for the fast path, built layer by layer by a model.
#[derive(Debug, Default)]
pub struct Graph {
    pub(super) nodes: Vec<Node>,
    /// Fast values by the id of the value they compute in the graph this one was lowered
    /// from (`graph::lower`): where a layer tap finds its activation. Values fused away (a
    /// convolution's output before its folded BatchNorm or its fused activation) have none.
    pub(super) sources: HashMap<usize, Value>,
}

/// Why a layer cannot be put on the fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl Graph {
    /// An empty graph whose value `0` is the input image batch.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, n: Node) -> Value {
        self.nodes.push(n);
        self.nodes.len()
    }

    /// A convolution followed by `act`: dense (`groups = 1`) or depthwise
    /// (`groups = cin = cout`); other groupings are not supported.
    pub fn conv(&mut self, x: Value, p: ConvParams, act: Act) -> Result<Value, Unsupported> {
        let k = p.k;
        if p.weight.len() != p.cout * (p.cin / p.groups.max(1)) * k * k || p.bias.len() != p.cout {
            return Err(Unsupported("convolution weights of the wrong size".into()));
        }
        if p.groups == 1 {
            // weight_t[ci][co][ky][kx] = weight[co][ci][k-1-ky][k-1-kx]. The backward pass
            // is then a convolution of the gradient (its im2col moves cout·k² values per
            // pixel); with few input channels Wᵀ·dy + col2im moves cin·k² instead (VGG16's
            // first layer, 3 → 64 channels at 224²: 11.6 → 2.9 ms per image, 2 threads).
            let flipped_backward = p.stride == 1 && k > 1 && 4 * p.cin > p.cout;
            let mut wt = vec![0.0; if flipped_backward { p.weight.len() } else { 0 }];
            for co in (0..p.cout).filter(|_| flipped_backward) {
                for ci in 0..p.cin {
                    for t in 0..k * k {
                        wt[(ci * p.cout + co) * k * k + (k * k - 1 - t)] =
                            p.weight[(co * p.cin + ci) * k * k + t];
                    }
                }
            }
            let weight_tr = if flipped_backward {
                Vec::new()
            } else {
                super::kernels::transpose(&p.weight, p.cout, p.cin * k * k)
            };
            let winograd = LazyWeights::new(p.cout, p.cin, k, p.stride, Pass::Forward);
            let winograd_t = if wt.is_empty() {
                LazyWeights::default()
            } else {
                LazyWeights::new(p.cin, p.cout, k, 1, Pass::Backward)
            };
            Ok(self.push(Node::Conv {
                x,
                p,
                act,
                weight_t: wt,
                weight_tr,
                winograd,
                winograd_t,
            }))
        } else if p.groups == p.cin && p.cin == p.cout {
            let kk = k * k;
            let mut flipped = p.weight.clone();
            for c in 0..p.cout {
                flipped[c * kk..(c + 1) * kk].reverse();
            }
            Ok(self.push(Node::Depthwise { x, p, act, flipped }))
        } else {
            Err(Unsupported(format!(
                "grouped convolution with {} groups of {} channels",
                p.groups,
                p.cin / p.groups.max(1)
            )))
        }
    }

    /// Records that `v` computes value `source` of the graph this one is lowered from.
    pub fn name_source(&mut self, source: usize, v: Value) {
        self.sources.insert(source, v);
    }

    /// The fast value computing value `source` of the graph this one was lowered from
    /// (`None` when it was fused away or never named).
    pub fn source_value(&self, source: usize) -> Option<Value> {
        self.sources.get(&source).copied()
    }

    /// Number of nodes, which is also the last value's index.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Elementwise sum of two values of the same shape.
    pub fn add(&mut self, a: Value, b: Value) -> Value {
        self.add_act(a, b, Act::None)
    }

    /// `act(a + b)`: a residual add and the activation after it (ResNet's ReLU).
    pub fn add_act(&mut self, a: Value, b: Value, act: Act) -> Value {
        self.push(Node::Add { a, b, act })
    }

    /// `x · s`, `s` holding one value per channel (`[C, 1, 1]`): squeeze-excitation's scale.
    pub fn scale(&mut self, x: Value, s: Value) -> Value {
        self.push(Node::Scale { x, s })
    }

    /// PyTorch's `MaxPool2d(k, stride, pad, ceil_mode)`.
    pub fn max_pool(&mut self, x: Value, k: usize, stride: usize, pad: usize, ceil: bool) -> Value {
        self.push(Node::MaxPool {
            x,
            k,
            stride,
            pad,
            ceil,
        })
    }

    /// Concatenation along channels.
    pub fn concat(&mut self, values: Vec<Value>) -> Value {
        self.push(Node::Concat(values))
    }

    /// Mean over the spatial dimensions: `[C, H, W]` → `[C, 1, 1]`.
    pub fn global_avg(&mut self, x: Value) -> Value {
        self.push(Node::GlobalAvg(x))
    }

    /// A dense layer on the flattened value, followed by `act`.
    pub fn linear(&mut self, x: Value, p: LinearParams, act: Act) -> Result<Value, Unsupported> {
        let LinearParams {
            weight,
            bias,
            inputs,
            outputs,
            spatial,
        } = p;
        if weight.len() != inputs * outputs || bias.len() != outputs {
            return Err(Unsupported("dense layer weights of the wrong size".into()));
        }
        Ok(self.push(Node::Linear {
            x,
            weight,
            bias,
            inputs,
            outputs,
            act,
            spatial,
        }))
    }
}
