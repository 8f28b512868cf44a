//! The operations a [`Graph`](super::Graph) node can hold, with their attributes.
//!
//! The set and the semantics are ONNX's (opsets 13–21), so that an ONNX file maps onto it
//! node for node and the zoo's networks are written the way `torch.onnx.export` would write
//! them. Inputs that ONNX passes as tensors (a Reshape's shape, a Slice's bounds) stay inputs;
//! attributes are parsed once, when the graph is built.

/// Padding of a convolution or pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pads {
    /// `[top, left, bottom, right]` (ONNX's `[x1_begin, x2_begin, x1_end, x2_end]`).
    Explicit([usize; 4]),
    /// Output = ceil(input / stride); an odd total puts the extra pixel at the end
    /// (ONNX `SAME_UPPER`, TensorFlow "SAME").
    SameUpper,
    /// As `SameUpper`, with the extra pixel at the beginning.
    SameLower,
}

impl Pads {
    /// `(output, begin, end)` along one axis of length `len`, or `None` when the window
    /// does not fit.
    pub fn resolve(
        &self,
        axis: usize,
        len: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        ceil: bool,
    ) -> Option<(usize, usize, usize)> {
        let span = dilation
            .checked_mul(kernel.checked_sub(1)?)?
            .checked_add(1)?;
        let stride = stride.max(1);
        match *self {
            Pads::Explicit(p) => {
                let (b, e) = (p[axis], p[axis + 2]);
                let total = len.checked_add(b)?.checked_add(e)?.checked_sub(span)?;
                let mut out = if ceil {
                    total.div_ceil(stride) + 1
                } else {
                    total / stride + 1
                };
                // PyTorch/ONNX: a last window that starts in the end padding is dropped.
                if ceil && (out - 1) * stride >= len + b {
                    out -= 1;
                }
                Some((out, b, e))
            }
            Pads::SameUpper | Pads::SameLower => {
                let out = len.div_ceil(stride);
                let total = ((out.checked_sub(1)?) * stride + span).saturating_sub(len);
                let small = total / 2;
                let (b, e) = if *self == Pads::SameUpper {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                Some((out, b, e))
            }
        }
    }
}

/// A 2-D window: kernel, strides, dilations and padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    pub pads: Pads,
    /// Pooling only: keep a last partial window (`ceil_mode`).
    pub ceil: bool,
}

impl Window {
    /// Output `(h, w)` and pads `[top, left, bottom, right]` on an `h × w` input.
    pub fn resolve(&self, h: usize, w: usize) -> Option<([usize; 2], [usize; 4])> {
        let (oh, t, b) = self.pads.resolve(
            0,
            h,
            self.kernel[0],
            self.strides[0],
            self.dilations[0],
            self.ceil,
        )?;
        let (ow, l, r) = self.pads.resolve(
            1,
            w,
            self.kernel[1],
            self.strides[1],
            self.dilations[1],
            self.ceil,
        )?;
        (oh > 0 && ow > 0).then_some(([oh, ow], [t, l, b, r]))
    }
}

/// Element types of integer and float values (ONNX `Cast`'s `to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemType {
    Float,
    Int,
    Bool,
}

/// One operation. Inputs are listed in ONNX order; optional ones may be absent.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `x, weight [, bias]`.
    Conv {
        window: Window,
        group: usize,
    },
    /// `x, scale, bias, mean, var` (inference form).
    BatchNorm {
        eps: f64,
    },
    /// `a, b [, c]`: `alpha · op(a) · op(b) + beta · c`.
    Gemm {
        alpha: f64,
        beta: f64,
        trans_a: bool,
        trans_b: bool,
    },
    MatMul,
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Relu,
    /// Bounds are constants (the importer reads ONNX's `min`/`max` inputs).
    Clip {
        min: Option<f64>,
        max: Option<f64>,
    },
    LeakyRelu {
        alpha: f64,
    },
    Sigmoid,
    HardSigmoid {
        alpha: f64,
        beta: f64,
    },
    HardSwish,
    Tanh,
    Erf,
    Sqrt,
    Exp,
    Neg,
    Reciprocal,
    /// ONNX `Gelu` (opset 20); `tanh` for the approximate form.
    Gelu {
        tanh: bool,
    },
    Softmax {
        axis: i64,
    },
    LogSoftmax {
        axis: i64,
    },
    MaxPool {
        window: Window,
    },
    AveragePool {
        window: Window,
        count_include_pad: bool,
    },
    GlobalAveragePool,
    GlobalMaxPool,
    /// PyTorch's `AdaptiveAvgPool2d(out)` (the zoo's VGG; ONNX files have none).
    AdaptiveAvgPool {
        out: [usize; 2],
    },
    Concat {
        axis: i64,
    },
    Flatten {
        axis: i64,
    },
    /// `x, shape`.
    Reshape {
        allowzero: bool,
    },
    Transpose {
        perm: Option<Vec<usize>>,
    },
    /// `x [, axes]`.
    Squeeze,
    /// `x, axes`.
    Unsqueeze,
    /// `x, starts, ends [, axes [, steps]]`.
    Slice,
    /// `x, indices`.
    Gather {
        axis: i64,
    },
    Shape {
        start: i64,
        end: Option<i64>,
    },
    /// `x, shape`.
    Expand,
    /// `x [, axes]` (opset 18) or axes as attribute (opset 13).
    ReduceMean {
        axes: Option<Vec<i64>>,
        keepdims: bool,
        noop_with_empty_axes: bool,
    },
    ReduceSum {
        axes: Option<Vec<i64>>,
        keepdims: bool,
        noop_with_empty_axes: bool,
    },
    /// `x, scale [, bias]`, normalized over the axes from `axis` on.
    LayerNorm {
        axis: i64,
        eps: f64,
    },
    Identity,
    Cast {
        to: ElemType,
    },
    /// `shape`; every element `value`.
    ConstantOfShape {
        value: f64,
        int: bool,
    },
    Equal,
    /// `cond, x, y`.
    Where,
    /// `x [, split]`, one output per part; `parts` when no split sizes are given.
    Split {
        axis: i64,
        parts: usize,
    },
    /// `start, limit, delta` (integers).
    Range,
    /// `x, pads [, constant_value [, axes]]`; constant or reflect mode.
    Pad {
        reflect: bool,
    },
    /// Integer remainder (`fmod`: sign of the dividend, else of the divisor).
    Mod {
        fmod: bool,
    },
}

impl Op {
    /// The ONNX name of the operation.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv { .. } => "Conv",
            Op::BatchNorm { .. } => "BatchNormalization",
            Op::Gemm { .. } => "Gemm",
            Op::MatMul => "MatMul",
            Op::Add => "Add",
            Op::Sub => "Sub",
            Op::Mul => "Mul",
            Op::Div => "Div",
            Op::Pow => "Pow",
            Op::Relu => "Relu",
            Op::Clip { .. } => "Clip",
            Op::LeakyRelu { .. } => "LeakyRelu",
            Op::Sigmoid => "Sigmoid",
            Op::HardSigmoid { .. } => "HardSigmoid",
            Op::HardSwish => "HardSwish",
            Op::Tanh => "Tanh",
            Op::Erf => "Erf",
            Op::Sqrt => "Sqrt",
            Op::Exp => "Exp",
            Op::Neg => "Neg",
            Op::Reciprocal => "Reciprocal",
            Op::Gelu { .. } => "Gelu",
            Op::Softmax { .. } => "Softmax",
            Op::LogSoftmax { .. } => "LogSoftmax",
            Op::MaxPool { .. } => "MaxPool",
            Op::AveragePool { .. } => "AveragePool",
            Op::GlobalAveragePool => "GlobalAveragePool",
            Op::GlobalMaxPool => "GlobalMaxPool",
            Op::AdaptiveAvgPool { .. } => "AdaptiveAvgPool",
            Op::Concat { .. } => "Concat",
            Op::Flatten { .. } => "Flatten",
            Op::Reshape { .. } => "Reshape",
            Op::Transpose { .. } => "Transpose",
            Op::Squeeze => "Squeeze",
            Op::Unsqueeze => "Unsqueeze",
            Op::Slice => "Slice",
            Op::Gather { .. } => "Gather",
            Op::Shape { .. } => "Shape",
            Op::Expand => "Expand",
            Op::ReduceMean { .. } => "ReduceMean",
            Op::ReduceSum { .. } => "ReduceSum",
            Op::LayerNorm { .. } => "LayerNormalization",
            Op::Identity => "Identity",
            Op::Cast { .. } => "Cast",
            Op::ConstantOfShape { .. } => "ConstantOfShape",
            Op::Equal => "Equal",
            Op::Where => "Where",
            Op::Split { .. } => "Split",
            Op::Range => "Range",
            Op::Pad { .. } => "Pad",
            Op::Mod { .. } => "Mod",
        }
    }

    /// Every ONNX operation the graph supports (besides `Constant`, which the importer
    /// turns into a constant value, and `Dropout`, an identity at inference).
    pub const SUPPORTED: &'static [&'static str] = &[
        "Add",
        "AveragePool",
        "BatchNormalization",
        "Cast",
        "Clip",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "Conv",
        "Div",
        "Dropout",
        "Equal",
        "Erf",
        "Exp",
        "Expand",
        "Flatten",
        "Gather",
        "Gelu",
        "Gemm",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "HardSigmoid",
        "HardSwish",
        "Identity",
        "LayerNormalization",
        "LeakyRelu",
        "LogSoftmax",
        "MatMul",
        "MaxPool",
        "Mod",
        "Mul",
        "Neg",
        "Pad",
        "Pow",
        "Range",
        "Reciprocal",
        "ReduceMean",
        "ReduceSum",
        "Relu",
        "Reshape",
        "Shape",
        "Sigmoid",
        "Slice",
        "Softmax",
        "Split",
        "Sqrt",
        "Squeeze",
        "Sub",
        "Tanh",
        "Transpose",
        "Unsqueeze",
        "Where",
    ];
}
