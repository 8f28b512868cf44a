//! Builds a zoo network's [`Graph`] from its state dict, one PyTorch module at a time.
//!
//! Each helper takes the module's tensors out of the state dict (checking their shapes) and
//! appends the nodes `torch.onnx.export` would write for it, named after the module, so that
//! layer names are the ones PyTorch users know (`features.12`, `blocks.3`).

use crate::error::Result;
use crate::graph::{Const, Graph, Op, Pads, ValueId, Window};
use crate::weights::StateDict;

/// A graph under construction and the weights it takes from.
pub struct Builder {
    pub g: Graph,
    sd: StateDict,
}

/// A convolution's wiring.
#[derive(Debug, Clone, Copy)]
pub struct ConvShape {
    pub in_ch: usize,
    pub out_ch: usize,
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
    /// The graph's own padding ([`Pads::SameUpper`] for TensorFlow "SAME").
    pub pads: Pads,
}

impl Builder {
    /// A graph whose input is the image batch.
    pub fn new(sd: StateDict) -> Self {
        Self {
            g: Graph::new("input"),
            sd,
        }
    }

    /// Takes tensor `name` of `shape` as a float constant.
    pub fn weight(&mut self, name: &str, shape: &[usize]) -> Result<ValueId> {
        let a = self.sd.take(name, shape)?;
        Ok(self.g.constant(name, Const::float(shape.to_vec(), a.data)))
    }

    /// `name.weight` (and `name.bias`) as a convolution of `x`, output named `out`.
    pub fn conv(
        &mut self,
        x: ValueId,
        name: &str,
        s: ConvShape,
        bias: bool,
        out: &str,
    ) -> Result<ValueId> {
        let w = self.weight(
            &format!("{name}.weight"),
            &[s.out_ch, s.in_ch / s.groups.max(1), s.kernel, s.kernel],
        )?;
        let mut inputs = vec![x, w];
        if bias {
            inputs.push(self.weight(&format!("{name}.bias"), &[s.out_ch])?);
        }
        let window = Window {
            kernel: [s.kernel; 2],
            strides: [s.stride; 2],
            dilations: [1, 1],
            pads: s.pads,
            ceil: false,
        };
        Ok(self.g.node(
            Op::Conv {
                window,
                group: s.groups,
            },
            &inputs,
            out,
        ))
    }

    /// BatchNorm `prefix.{weight,bias,running_mean,running_var}` over `channels`.
    pub fn batch_norm(
        &mut self,
        x: ValueId,
        prefix: &str,
        channels: usize,
        eps: f64,
        out: &str,
    ) -> Result<ValueId> {
        let mut inputs = vec![x];
        for t in ["weight", "bias", "running_mean", "running_var"] {
            inputs.push(self.weight(&format!("{prefix}.{t}"), &[channels])?);
        }
        Ok(self.g.node(Op::BatchNorm { eps }, &inputs, out))
    }

    /// A unary operation.
    pub fn op(&mut self, x: ValueId, op: Op, out: &str) -> ValueId {
        self.g.node(op, &[x], out)
    }

    /// ReLU6, as ONNX writes it.
    pub fn relu6(&mut self, x: ValueId, out: &str) -> ValueId {
        self.op(
            x,
            Op::Clip {
                min: Some(0.0),
                max: Some(6.0),
            },
            out,
        )
    }

    /// PyTorch's `nn.Linear` `name` (`[out, in]` weight and bias) on `[N, in]`.
    pub fn linear(
        &mut self,
        x: ValueId,
        name: &str,
        inputs: usize,
        outputs: usize,
        out: &str,
    ) -> Result<ValueId> {
        let w = self.weight(&format!("{name}.weight"), &[outputs, inputs])?;
        let b = self.weight(&format!("{name}.bias"), &[outputs])?;
        Ok(self.g.node(
            Op::Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b: true,
            },
            &[x, w, b],
            out,
        ))
    }

    /// PyTorch's `MaxPool2d(k, stride, pad, ceil_mode)`.
    pub fn max_pool(
        &mut self,
        x: ValueId,
        k: usize,
        stride: usize,
        pad: usize,
        ceil: bool,
        out: &str,
    ) -> ValueId {
        let window = Window {
            kernel: [k; 2],
            strides: [stride; 2],
            dilations: [1, 1],
            pads: Pads::Explicit([pad; 4]),
            ceil,
        };
        self.op(x, Op::MaxPool { window }, out)
    }

    /// Global average pooling and flattening to `[N, C]`.
    pub fn pool_flatten(&mut self, x: ValueId, pool: &str, flat: &str) -> ValueId {
        let p = self.op(x, Op::GlobalAveragePool, pool);
        self.op(p, Op::Flatten { axis: 1 }, flat)
    }

    /// Marks `y` as the output; every tensor of the state dict must have been used.
    pub fn finish(mut self, y: ValueId) -> Result<Graph> {
        self.g.output = y;
        self.sd.finish()?;
        self.g.validate()?;
        Ok(self.g)
    }
}
