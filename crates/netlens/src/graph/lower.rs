//! Maps a [`Graph`] onto the fast path's layer graph ([`crate::fast::Graph`]).
//!
//! The fast path has kernels for convolutions (dense and depthwise, with an optional fused
//! activation), residual adds, per-channel scales, max-pooling, channel concatenation,
//! global average pooling and dense layers. Lowering walks the nodes in order and fuses what
//! ONNX writes as separate nodes: a zero `Pad` into the next convolution's padding,
//! `BatchNormalization` into the convolution before it (in float64), a `Relu`, `Clip(0, 6)`,
//! `HardSwish`, `HardSigmoid` or `Sigmoid` into the layer that produces its input when it is
//! that layer's only reader, and SiLU (`Mul(x, Sigmoid(x))`) the same way. A `Mul` by a
//! `[1, C, 1, 1]` value (squeeze-excitation) becomes a per-channel scale. Flatten, Dropout
//! and Identity are free. A graph with any other node (a LayerNorm, an attention block) is
//! not lowered at all: the whole network then runs on the reference
//! interpreter, which is always correct. (Lowering a supported prefix and finishing on the
//! reference would need a second autodiff boundary; the zoo and their exports do not need
//! it.)

use super::{Graph, Node, Op, Pads, ValueId};
use crate::fast::{self, kernels::Act, ConvParams, Pad, Unsupported};
use std::collections::HashMap;

struct Lowering<'a> {
    g: &'a Graph,
    /// Every value's shape at batch 1 (from the model's check run).
    shapes: &'a [Option<Vec<usize>>],
    readers: Vec<usize>,
    /// Which node reads each value (meaningful when it has one reader).
    reader: Vec<Option<usize>>,
    /// Every node reading each value (once per node).
    all_readers: Vec<Vec<usize>>,
    map: HashMap<ValueId, fast::Value>,
    /// Nodes already folded into an earlier one.
    done: Vec<bool>,
    /// Spatial size a dense layer must see (an adaptive pool that is the identity there).
    spatial: HashMap<fast::Value, (usize, usize)>,
    /// Zero padding of a `Pad` node, to add to the convolution that reads its output.
    pending_pad: HashMap<ValueId, [usize; 4]>,
    out: fast::Graph,
}

fn unsupported(n: &Node, why: &str) -> Unsupported {
    Unsupported(format!("node '{}' ({}): {why}", n.name, n.op.name()))
}

impl<'a> Lowering<'a> {
    fn floats(&self, v: Option<ValueId>) -> Option<(&'a [f32], &'a [usize])> {
        let c = self.g.const_of(v?)?;
        Some((c.floats()?, &c.shape))
    }

    fn input(&self, n: &Node, k: usize) -> Result<fast::Value, Unsupported> {
        n.input(k)
            .and_then(|v| self.map.get(&v).copied())
            .ok_or_else(|| unsupported(n, "reads a value the fast path does not have"))
    }

    /// The only reader of `v`, when it has exactly one and is of the given kind.
    fn sole_reader(&self, v: ValueId, want: impl Fn(&Op) -> bool) -> Option<usize> {
        if self.readers[v] != 1 || v == self.g.output {
            return None;
        }
        let r = self.reader[v]?;
        (!self.done[r] && want(&self.g.nodes[r].op)).then_some(r)
    }

    /// Folds a following activation into a layer; returns it and the value that carries
    /// the layer's result. ReLU, `Clip(0, 6)`, HardSwish, PyTorch's HardSigmoid and Sigmoid
    /// when they are the layer's only reader; SiLU as exporters write it, `Mul(v, Sigmoid(v))`
    /// with those two nodes the only readers.
    fn activation(&mut self, v: ValueId) -> (Act, ValueId) {
        if let Some((sig, mul)) = self.silu(v) {
            self.done[sig] = true;
            self.done[mul] = true;
            return (Act::Silu, self.g.nodes[mul].outputs[0]);
        }
        let act_of = |op: &Op| match op {
            Op::Relu => Some(Act::Relu),
            Op::Clip {
                min: Some(lo),
                max: Some(hi),
            } if *lo == 0.0 && *hi == 6.0 => Some(Act::Relu6),
            Op::HardSwish => Some(Act::HardSwish),
            // PyTorch's hardsigmoid (alpha 1/6 as a float attribute holds it, beta 1/2).
            Op::HardSigmoid { alpha, beta }
                if *alpha as f32 == (1.0f64 / 6.0) as f32 && *beta == 0.5 =>
            {
                Some(Act::HardSigmoid)
            }
            Op::Sigmoid => Some(Act::Sigmoid),
            _ => None,
        };
        match self.sole_reader(v, |op| act_of(op).is_some()) {
            Some(r) => {
                self.done[r] = true;
                let n = &self.g.nodes[r];
                (act_of(&n.op).unwrap_or(Act::None), n.outputs[0])
            }
            None => (Act::None, v),
        }
    }

    /// `(sigmoid node, mul node)` when `v`'s only readers are `s = Sigmoid(v)` and
    /// `Mul(v, s)` (either order), `s` read by nothing else: SiLU.
    fn silu(&self, v: ValueId) -> Option<(usize, usize)> {
        let rs = &self.all_readers[v];
        if rs.len() != 2 || v == self.g.output || rs.iter().any(|&r| self.done[r]) {
            return None;
        }
        let (sig, mul) = match (&self.g.nodes[rs[0]].op, &self.g.nodes[rs[1]].op) {
            (Op::Sigmoid, Op::Mul) => (rs[0], rs[1]),
            (Op::Mul, Op::Sigmoid) => (rs[1], rs[0]),
            _ => return None,
        };
        let s = self.g.nodes[sig].outputs[0];
        let m = &self.g.nodes[mul];
        let ins = (m.input(0), m.input(1));
        let pair = ins == (Some(v), Some(s)) || ins == (Some(s), Some(v));
        (pair && self.readers[s] == 1 && s != self.g.output).then_some((sig, mul))
    }

    /// `Mul(a, b)` where one side holds one value per channel (`[1, C, 1, 1]`) and the other
    /// is `[1, C, H, W]`: squeeze-excitation's scale.
    fn channel_scale(&mut self, n: &Node) -> Result<(), Unsupported> {
        let shape =
            |v: Option<ValueId>| v.and_then(|v| self.shapes.get(v)).and_then(Option::as_ref);
        let per_channel = |s: &Vec<usize>| s.len() == 4 && s[2] == 1 && s[3] == 1;
        let (sa, sb) = match (shape(n.input(0)), shape(n.input(1))) {
            (Some(a), Some(b)) if a.len() == 4 && b.len() == 4 && a[..2] == b[..2] => (a, b),
            _ => return Err(unsupported(n, "a product other than a per-channel scale")),
        };
        let (x, s) = if per_channel(sa) {
            (1, 0)
        } else if per_channel(sb) {
            (0, 1)
        } else {
            return Err(unsupported(n, "a product other than a per-channel scale"));
        };
        let (x, s) = (self.input(n, x)?, self.input(n, s)?);
        let v = self.out.scale(x, s);
        self.map.insert(n.outputs[0], v);
        Ok(())
    }

    fn conv(&mut self, i: usize, n: &Node) -> Result<(), Unsupported> {
        let Op::Conv { window, group } = &n.op else {
            return Ok(());
        };
        let x = self.input(n, 0)?;
        let (w, ws) = self
            .floats(n.input(1))
            .ok_or_else(|| unsupported(n, "weights that are not constants"))?;
        let [cout, per, kh, kw] = ws[..] else {
            return Err(unsupported(n, "weights that are not 4-D"));
        };
        if kh != kw || window.strides[0] != window.strides[1] || window.dilations != [1, 1] {
            return Err(unsupported(n, "a non-square kernel, stride or a dilation"));
        }
        let mut weight: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
        let mut bias: Vec<f64> = match n.input(2) {
            None => vec![0.0; cout],
            Some(b) => match self.floats(Some(b)) {
                Some((b, _)) if b.len() == cout => b.iter().map(|&v| f64::from(v)).collect(),
                _ => return Err(unsupported(n, "a bias that is not a constant")),
            },
        };
        let mut pads = match window.pads {
            Pads::SameUpper => None,
            Pads::Explicit(p) => Some(p),
            Pads::SameLower => return Err(unsupported(n, "SAME_LOWER padding")),
        };
        // A zero Pad node right before (the TF "SAME" of exported EfficientNet-Lite).
        if let Some(extra) = self.pending_pad.remove(&n.input(0).unwrap_or(usize::MAX)) {
            match &mut pads {
                Some(p) => (0..4).for_each(|k| p[k] += extra[k]),
                None => return Err(unsupported(n, "a Pad before a SAME convolution")),
            }
        }
        let mut y = n.outputs[0];
        let bn = |op: &Op| matches!(op, Op::BatchNorm { .. });
        if let Some(r) = self.sole_reader(y, bn) {
            let b = &self.g.nodes[r];
            let Op::BatchNorm { eps } = b.op else {
                unreachable!("checked by sole_reader")
            };
            let stats: Option<Vec<&[f32]>> = (1..5)
                .map(|k| {
                    self.floats(b.input(k))
                        .map(|(v, _)| v)
                        .filter(|v| v.len() == cout)
                })
                .collect();
            if let Some(s) = stats {
                let per_out = weight.len() / cout.max(1);
                for o in 0..cout {
                    let scale = f64::from(s[0][o]) / (f64::from(s[3][o]) + eps).sqrt();
                    weight[o * per_out..(o + 1) * per_out]
                        .iter_mut()
                        .for_each(|v| *v *= scale);
                    bias[o] = (bias[o] - f64::from(s[2][o])) * scale + f64::from(s[1][o]);
                }
                self.done[r] = true;
                y = b.outputs[0];
            }
        }
        let (act, y) = self.activation(y);
        let pad = match pads {
            None => Pad::Same,
            Some([t, l, b, r]) if t == l && l == b && b == r => Pad::Explicit(t),
            Some(p) => Pad::Asym(p),
        };
        let p = ConvParams {
            weight: weight.iter().map(|&v| v as f32).collect(),
            bias: bias.iter().map(|&v| v as f32).collect(),
            cin: per * group,
            cout,
            k: kh,
            stride: window.strides[0],
            groups: *group,
            pad,
        };
        let v = self.out.conv(x, p, act).map_err(|u| unsupported(n, &u.0))?;
        let _ = i;
        self.map.insert(y, v);
        Ok(())
    }

    fn dense(
        &mut self,
        n: &Node,
        weight_t: bool,
        bias: Option<ValueId>,
        scale: (f64, f64),
    ) -> Result<(), Unsupported> {
        let x = self.input(n, 0)?;
        let (w, ws) = self
            .floats(n.input(1))
            .ok_or_else(|| unsupported(n, "weights that are not constants"))?;
        let [a, b] = ws[..] else {
            return Err(unsupported(n, "weights that are not 2-D"));
        };
        // PyTorch layout [out, in].
        let (outputs, inputs) = if weight_t { (a, b) } else { (b, a) };
        let mut weight = vec![0.0f32; w.len()];
        for o in 0..outputs {
            for k in 0..inputs {
                let v = if weight_t {
                    w[o * inputs + k]
                } else {
                    w[k * outputs + o]
                };
                weight[o * inputs + k] = (f64::from(v) * scale.0) as f32;
            }
        }
        let bias = match bias {
            None => vec![0.0; outputs],
            Some(c) => match self.floats(Some(c)) {
                Some((v, _)) if v.len() == outputs => {
                    v.iter().map(|&b| (f64::from(b) * scale.1) as f32).collect()
                }
                _ => return Err(unsupported(n, "a bias that is not a constant vector")),
            },
        };
        let (act, y) = self.activation(n.outputs[0]);
        let spatial = self.spatial.get(&x).copied();
        let v = self
            .out
            .linear(
                x,
                fast::LinearParams {
                    weight,
                    bias,
                    inputs,
                    outputs,
                    spatial,
                },
                act,
            )
            .map_err(|u| unsupported(n, &u.0))?;
        self.map.insert(y, v);
        Ok(())
    }
}

impl<'a> Lowering<'a> {
    fn node(&mut self, i: usize) -> Result<(), Unsupported> {
        let g = self.g;
        let n = &g.nodes[i];
        let alias = |s: &mut Self| -> Result<(), Unsupported> {
            let x = s.input(n, 0)?;
            s.map.insert(n.outputs[0], x);
            Ok(())
        };
        match &n.op {
            Op::Conv { .. } => self.conv(i, n),
            Op::Gemm {
                alpha,
                beta,
                trans_a: false,
                trans_b,
            } => self.dense(n, *trans_b, n.input(2), (*alpha, *beta)),
            Op::MatMul => {
                // x · W + b, the bias in the single Add that reads the product.
                let add = self.sole_reader(n.outputs[0], |op| matches!(op, Op::Add));
                let bias = add.and_then(|r| {
                    let a = &g.nodes[r];
                    let other = if a.input(0) == Some(n.outputs[0]) {
                        a.input(1)
                    } else {
                        a.input(0)
                    };
                    self.floats(other).map(|_| (r, other))
                });
                match bias {
                    Some((r, b)) => {
                        self.done[r] = true;
                        let mut m = n.clone();
                        m.outputs = g.nodes[r].outputs.clone();
                        self.dense(&m, false, b, (1.0, 1.0))
                    }
                    None => self.dense(n, false, None, (1.0, 1.0)),
                }
            }
            Op::Add => {
                let (a, b) = (self.input(n, 0)?, self.input(n, 1)?);
                // ResNet's ReLU after the residual add goes into the add.
                let (act, out) = self.activation(n.outputs[0]);
                let v = self.out.add_act(a, b, act);
                self.map.insert(out, v);
                Ok(())
            }
            Op::Mul => self.channel_scale(n),
            Op::MaxPool { window } => {
                let x = self.input(n, 0)?;
                let Pads::Explicit([t, l, b, r]) = window.pads else {
                    return Err(unsupported(n, "SAME padding"));
                };
                let square = window.kernel[0] == window.kernel[1]
                    && window.strides[0] == window.strides[1]
                    && [l, b, r].iter().all(|&p| p == t)
                    && window.dilations == [1, 1];
                if !square {
                    return Err(unsupported(n, "a non-square or asymmetric window"));
                }
                let v = self
                    .out
                    .max_pool(x, window.kernel[0], window.strides[0], t, window.ceil);
                self.map.insert(n.outputs[0], v);
                Ok(())
            }
            Op::Concat { axis: 1 } => {
                let xs = (0..n.inputs.len())
                    .map(|k| self.input(n, k))
                    .collect::<Result<Vec<_>, _>>()?;
                let v = self.out.concat(xs);
                self.map.insert(n.outputs[0], v);
                Ok(())
            }
            Op::GlobalAveragePool => {
                let x = self.input(n, 0)?;
                let v = self.out.global_avg(x);
                self.map.insert(n.outputs[0], v);
                Ok(())
            }
            Op::ReduceMean {
                axes: Some(axes), ..
            } if {
                let mut a = axes.clone();
                a.sort_unstable();
                a == [2, 3] || a == [-2, -1]
            } =>
            {
                let x = self.input(n, 0)?;
                let v = self.out.global_avg(x);
                self.map.insert(n.outputs[0], v);
                Ok(())
            }
            Op::AdaptiveAvgPool { out } => {
                let x = self.input(n, 0)?;
                let v = if *out == [1, 1] {
                    self.out.global_avg(x)
                } else {
                    // The identity where the input already has that size; dense layers
                    // after it demand that size (other sizes run on the reference).
                    self.spatial.insert(x, (out[0], out[1]));
                    x
                };
                self.map.insert(n.outputs[0], v);
                Ok(())
            }
            Op::Flatten { axis: 1 } | Op::Identity => alias(self),
            // A 1×1 average pool (PyTorch's adaptive pool where it is the identity).
            Op::AveragePool { window, .. }
                if window.kernel == [1, 1]
                    && window.strides == [1, 1]
                    && matches!(window.pads, Pads::Explicit([0, 0, 0, 0])) =>
            {
                alias(self)
            }
            // A reshape to [N, features] (exporters write flatten with Shape arithmetic).
            Op::Reshape { .. } | Op::Flatten { .. } | Op::Squeeze | Op::Unsqueeze => {
                let shape = |v: Option<ValueId>| {
                    v.and_then(|v| self.shapes.get(v)).and_then(Option::as_ref)
                };
                match (shape(n.input(0)), shape(Some(n.outputs[0]))) {
                    (Some(a), Some(b)) if a.first() == Some(&1) && b.len() == 2 && b[0] == 1 => {
                        alias(self)
                    }
                    _ => Err(unsupported(n, "a reshape other than flattening each image")),
                }
            }
            Op::Pad { reflect: false } => {
                let conv = self.sole_reader(n.outputs[0], |op| matches!(op, Op::Conv { .. }));
                let pads = n
                    .input(1)
                    .and_then(|v| g.const_of(v))
                    .and_then(|c| c.ints());
                let value_zero = match n.input(2) {
                    None => true,
                    Some(v) => self
                        .floats(Some(v))
                        .is_some_and(|(c, _)| c.iter().all(|&x| x == 0.0)),
                };
                match (conv, pads) {
                    (Some(_), Some([0, 0, t, l, 0, 0, b, r]))
                        if value_zero && n.input(3).is_none() =>
                    {
                        let x = self.input(n, 0)?;
                        self.map.insert(n.outputs[0], x);
                        let p = [*t, *l, *b, *r].map(|v| v.max(0) as usize);
                        self.pending_pad.insert(n.outputs[0], p);
                        Ok(())
                    }
                    _ => Err(unsupported(
                        n,
                        "a Pad that is not zero spatial padding before a convolution",
                    )),
                }
            }
            _ => Err(unsupported(n, "no fast kernel")),
        }
    }
}

/// The fast path's graph for `g`, or why it has none.
/// `shapes` are every value's shape for a batch of one (`None` where unknown).
pub fn lower(g: &Graph, shapes: &[Option<Vec<usize>>]) -> Result<fast::Graph, Unsupported> {
    let nv = g.values.len();
    let mut readers = vec![0; nv];
    let mut reader = vec![None; nv];
    let mut all_readers = vec![Vec::new(); nv];
    for (i, n) in g.nodes.iter().enumerate() {
        for &v in n.inputs.iter().flatten() {
            readers[v] += 1;
            reader[v] = Some(i);
            if all_readers[v].last() != Some(&i) {
                all_readers[v].push(i);
            }
        }
    }
    readers[g.output] += 1;
    let mut l = Lowering {
        g,
        shapes,
        readers,
        reader,
        all_readers,
        map: HashMap::from([(g.input, 0)]),
        done: vec![false; g.nodes.len()],
        spatial: HashMap::new(),
        pending_pad: HashMap::new(),
        out: fast::Graph::new(),
    };
    // Shape arithmetic (what does not depend on the input's contents) only feeds reshapes,
    // which the fast path does not need.
    let data = super::analysis::depends_on_input(g);
    for i in 0..g.nodes.len() {
        if !l.done[i] && g.nodes[i].outputs.iter().any(|&o| data[o]) {
            l.node(i)?;
        }
    }
    if !l.map.contains_key(&g.output) {
        return Err(Unsupported(
            "the output is not computed by the fast graph".into(),
        ));
    }
    if l.map[&g.output] != l.out.len() {
        return Err(Unsupported(
            "the fast graph's last layer is not the output".into(),
        ));
    }
    // Where layer taps (Grad-CAM) find each value that was not fused away.
    for (&source, &v) in &l.map {
        l.out.name_source(source, v);
    }
    Ok(l.out)
}
