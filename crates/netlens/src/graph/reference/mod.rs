//! The reference interpreter: runs a [`Graph`] as burn tensor operations.
//!
//! This is the oracle: every operation is the plain burn (or host) computation of its ONNX
//! definition, under autodiff, in the precision it is made with (float32 or float64), so that input
//! gradients come for free and the PyTorch parity tests check it directly. The fast path is
//! tested against it. Shapes are checked before every burn call ([`float_ops`]): a malformed
//! graph is an error naming the node, never a panic.

pub(crate) mod eval;
pub mod float_ops;
pub mod int_ops;
pub mod value;

pub use value::{Float, Int, Val};

use super::{ConstData, Graph, ValueId};
use crate::engine::Precision;
use crate::error::{Error, Result};
use burn::tensor::Tensor;
use std::sync::{Arc, OnceLock};

/// A graph ready to run on burn.
#[derive(Debug)]
pub struct Reference {
    graph: Arc<Graph>,
    /// Float constants as engine tensors, created on first use.
    consts: Vec<OnceLock<Float>>,
    /// The precision of every tensor the interpreter makes.
    precision: Precision,
}

impl Reference {
    /// Wraps a validated graph, computing in float32.
    pub fn new(graph: Arc<Graph>) -> Result<Self> {
        Self::with_precision(graph, Precision::F32)
    }

    /// Wraps a validated graph, computing in `precision` (its inputs must come in it).
    pub fn with_precision(graph: Arc<Graph>, precision: Precision) -> Result<Self> {
        graph.validate()?;
        let consts = (0..graph.values.len()).map(|_| OnceLock::new()).collect();
        Ok(Self {
            graph,
            consts,
            precision,
        })
    }

    /// The precision the interpreter computes in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Drops the engine copies of the constants (they are made again on first use): after a
    /// check run, a model that then runs on the fast path keeps one copy of its weights less.
    pub fn release_constants(&mut self) {
        self.consts = (0..self.graph.values.len())
            .map(|_| OnceLock::new())
            .collect();
    }

    /// The graph this interpreter runs.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The graph's output for a batch.
    pub fn forward(&self, x: Tensor<4>) -> Result<Float> {
        self.forward_to(x, self.graph.output)
    }

    /// Value `target` for a batch.
    pub fn forward_to(&self, x: Tensor<4>, target: ValueId) -> Result<Float> {
        let seeds = vec![(self.graph.input, Val::F(Float::new(x)))];
        self.float(self.run(seeds, target, None, false)?, target)
    }

    /// The graph's output for a batch, with guided backpropagation's backward at every ReLU
    /// and `Clip(0, ·)` ([`crate::engine::guided_relu`]).
    pub fn forward_guided(&self, x: Tensor<4>) -> Result<Float> {
        let seeds = vec![(self.graph.input, Val::F(Float::new(x)))];
        let out = self.graph.output;
        self.float(self.run(seeds, out, None, true)?, out)
    }

    /// The graph's output computed from value `layer` set to `a`; `input_shape` is the shape
    /// of the image batch that `a` came from (read by exported graphs that take the batch
    /// size from the input). An error when the output depends on the input other than
    /// through `layer` (the layer is not a cut of the graph).
    pub fn forward_from(&self, a: Float, layer: ValueId, input_shape: [usize; 4]) -> Result<Float> {
        let seeds = vec![
            (self.graph.input, Val::ShapeOnly(input_shape.to_vec())),
            (layer, Val::F(a)),
        ];
        let out = self.graph.output;
        match self.run(seeds, out, None, false)? {
            Val::Missing => Err(Error::Invalid(format!(
                "layer '{}' is not on every path from the input to the output, so the output \
                 cannot be computed from it alone; pick one of the listed layers",
                self.graph.values[layer].name
            ))),
            v => self.float(v, out),
        }
    }

    /// The shape of every value for a batch (`None` for values not computed).
    pub fn shapes(&self, x: Tensor<4>) -> Result<Vec<Option<Vec<usize>>>> {
        let mut shapes = vec![None; self.graph.values.len()];
        let seeds = vec![(self.graph.input, Val::F(Float::new(x)))];
        self.run(seeds, self.graph.output, Some(&mut shapes), false)?;
        Ok(shapes)
    }

    fn float(&self, v: Val, id: ValueId) -> Result<Float> {
        match v {
            Val::F(f) => Ok(f),
            _ => Err(Error::Graph(format!(
                "value '{}' is not a float tensor",
                self.graph.values[id].name
            ))),
        }
    }

    /// Constant `id` as a value (`None` when it is not a constant).
    pub(crate) fn constant_val(&self, id: ValueId) -> Option<Val> {
        self.constant(id).and_then(Result::ok)
    }

    fn constant(&self, id: ValueId) -> Option<Result<Val>> {
        let c = self.graph.values[id].constant.as_ref()?;
        Some(match &c.data {
            ConstData::Int(d) => Ok(Val::I(Int {
                data: d.to_vec(),
                shape: c.shape.clone(),
            })),
            ConstData::Float(d) => {
                let f = self.consts[id].get_or_init(|| {
                    let t: Tensor<1> = self.precision.tensor(d.to_vec(), [d.len()]);
                    Float::with_shape(t.reshape([1, 1, 1, 1, 1, d.len()]), c.shape.clone())
                        .unwrap_or_else(|_| Float::new(self.precision.tensor(vec![0.0], [1])))
                });
                if f.shape == c.shape {
                    Ok(Val::F(f.clone()))
                } else {
                    Err(Error::Graph(format!(
                        "constant '{}' has rank above {}",
                        self.graph.values[id].name,
                        value::MAX_RANK
                    )))
                }
            }
        })
    }

    /// Runs the nodes `target` needs, starting from `seeds`; values are dropped after their
    /// last reader. A seeded value's producer is not run; `guided` as [`eval::node`].
    fn run(
        &self,
        seeds: Vec<(ValueId, Val)>,
        target: ValueId,
        mut record: Option<&mut Vec<Option<Vec<usize>>>>,
        guided: bool,
    ) -> Result<Val> {
        let g = &*self.graph;
        let nv = g.values.len();
        let mut seeded = vec![false; nv];
        let mut env: Vec<Option<Val>> = vec![None; nv];
        for (id, v) in seeds {
            seeded[id] = true;
            env[id] = Some(v);
        }
        // Nodes `target` depends on (not looking past seeded values).
        let mut needed = vec![false; g.nodes.len()];
        let mut want = vec![false; nv];
        want[target] = true;
        let mut remaining_reads = vec![0usize; nv];
        for i in (0..g.nodes.len()).rev() {
            let n = &g.nodes[i];
            if n.outputs.iter().any(|&o| want[o] && !seeded[o]) {
                needed[i] = true;
                for v in n.inputs.iter().flatten() {
                    want[*v] = true;
                    remaining_reads[*v] += 1;
                }
            }
        }
        for (i, n) in g.nodes.iter().enumerate() {
            if !needed[i] {
                continue;
            }
            let mut ins = Vec::with_capacity(n.inputs.len());
            for v in &n.inputs {
                ins.push(match v {
                    None => None,
                    Some(v) => Some(match &env[*v] {
                        Some(x) => x.clone(),
                        None => match self.constant(*v) {
                            Some(c) => c?,
                            None => Val::Missing,
                        },
                    }),
                });
            }
            let outs = eval::node(self, n, &ins, guided)?;
            for v in n.inputs.iter().flatten() {
                remaining_reads[*v] -= 1;
                if remaining_reads[*v] == 0 && *v != target {
                    env[*v] = None;
                }
            }
            for (&o, val) in n.outputs.iter().zip(outs) {
                if let Some(r) = record.as_deref_mut() {
                    r[o] = val.shape().map(<[usize]>::to_vec);
                }
                env[o] = Some(val);
            }
        }
        match env[target].take() {
            Some(v) => Ok(v),
            None => match self.constant(target) {
                Some(c) => c,
                None => Ok(Val::Missing),
            },
        }
    }
}
