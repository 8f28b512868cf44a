//! The one network representation: a graph of named values and ONNX operations.
//!
//! Every CNN netlens runs is a [`Graph`]: the zoo's networks are built as graphs from their
//! weight files (`models/`), an ONNX file is imported into one (`onnx/`). Two interpreters
//! run it: [`reference`] over burn tensor operations with autodiff (float32 or float64; the
//! oracle every test checks), and the fast path (`fast/`), onto which [`lower`] maps a graph
//! made of the layers it has kernels for. Layer listings, Grad-CAM taps and
//! `forward_to` / `forward_from` come from the graph's named values ([`analysis`]).
//!
//! Values are numbered; value `input` is the image batch `[N, C, H, W]`, constants (weights,
//! shapes) are values too, and nodes are kept in an order where every input is computed
//! before it is read (checked by [`Graph::validate`]).

pub mod analysis;
pub mod flops;
pub mod fold;
pub mod lower;
pub mod ops;
pub mod reference;

pub use ops::{ElemType, Op, Pads, Window};

use crate::error::{Error, Result};
use std::sync::Arc;

/// A value of the graph, by index.
pub type ValueId = usize;

/// The contents of a constant value, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum ConstData {
    Float(Arc<Vec<f32>>),
    Int(Arc<Vec<i64>>),
}

/// A constant: a weight, a bias, a shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    pub shape: Vec<usize>,
    pub data: ConstData,
}

impl Const {
    /// A float constant; `None` when the shape does not match the data.
    pub fn float(shape: Vec<usize>, data: Vec<f32>) -> Self {
        Self {
            shape,
            data: ConstData::Float(Arc::new(data)),
        }
    }
    /// An integer constant.
    pub fn int(shape: Vec<usize>, data: Vec<i64>) -> Self {
        Self {
            shape,
            data: ConstData::Int(Arc::new(data)),
        }
    }
    /// The float values, if this is a float constant.
    pub fn floats(&self) -> Option<&[f32]> {
        match &self.data {
            ConstData::Float(v) => Some(v),
            ConstData::Int(_) => None,
        }
    }
    /// The integer values, if this is an integer constant.
    pub fn ints(&self) -> Option<&[i64]> {
        match &self.data {
            ConstData::Int(v) => Some(v),
            ConstData::Float(_) => None,
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.data {
            ConstData::Float(v) => v.len(),
            ConstData::Int(v) => v.len(),
        }
    }
    /// Whether the constant holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A named value.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueInfo {
    pub name: String,
    /// Set for weights and other constants.
    pub constant: Option<Const>,
}

/// One operation: reads `inputs` (`None` for an omitted optional input), writes `outputs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<Option<ValueId>>,
    pub outputs: Vec<ValueId>,
}

impl Node {
    /// The value of input `i`, if present.
    pub fn input(&self, i: usize) -> Option<ValueId> {
        self.inputs.get(i).copied().flatten()
    }
}

/// A network: values, nodes in execution order, one image input and one logits output.
#[derive(Debug, Clone)]
pub struct Graph {
    pub values: Vec<ValueInfo>,
    pub nodes: Vec<Node>,
    pub input: ValueId,
    pub output: ValueId,
}

impl Default for Graph {
    fn default() -> Self {
        Self::new("input")
    }
}

impl Graph {
    /// An empty graph whose value 0, named `input_name`, is the image batch.
    pub fn new(input_name: &str) -> Self {
        Self {
            values: vec![ValueInfo {
                name: input_name.to_string(),
                constant: None,
            }],
            nodes: Vec::new(),
            input: 0,
            output: 0,
        }
    }

    /// Adds a value named `name` (made unique with a suffix when taken).
    pub fn value(&mut self, name: &str) -> ValueId {
        self.values.push(ValueInfo {
            name: name.to_string(),
            constant: None,
        });
        self.values.len() - 1
    }

    /// Adds a constant value.
    pub fn constant(&mut self, name: &str, c: Const) -> ValueId {
        self.values.push(ValueInfo {
            name: name.to_string(),
            constant: Some(c),
        });
        self.values.len() - 1
    }

    /// Appends a node with one output named `out`; returns the output.
    pub fn node(&mut self, op: Op, inputs: &[ValueId], out: &str) -> ValueId {
        let y = self.value(out);
        self.nodes.push(Node {
            name: out.to_string(),
            op,
            inputs: inputs.iter().map(|&v| Some(v)).collect(),
            outputs: vec![y],
        });
        y
    }

    /// The constant behind value `v`, if it is one.
    pub fn const_of(&self, v: ValueId) -> Option<&Const> {
        self.values.get(v).and_then(|i| i.constant.as_ref())
    }

    /// The value named `name` (a value's name, or a node's name for its first output).
    pub fn find(&self, name: &str) -> Option<ValueId> {
        self.values
            .iter()
            .position(|v| v.name == name && v.constant.is_none())
            .or_else(|| {
                self.nodes
                    .iter()
                    .find(|n| n.name == name)
                    .and_then(|n| n.outputs.first().copied())
            })
    }

    /// For every value, the index of the node that computes it (`None` for the input and
    /// constants).
    pub fn producers(&self) -> Vec<Option<usize>> {
        let mut p = vec![None; self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &o in &n.outputs {
                p[o] = Some(i);
            }
        }
        p
    }

    /// Checks the structure: every index in range, every value written once, every input
    /// computed before it is read (so no cycle), the output computed.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Graph(m));
        let nv = self.values.len();
        if self.input >= nv || self.output >= nv {
            return bad("the graph's input or output is not one of its values".into());
        }
        let mut ready = vec![false; nv];
        for (v, info) in self.values.iter().enumerate() {
            ready[v] = info.constant.is_some();
        }
        ready[self.input] = true;
        for n in &self.nodes {
            for v in n.inputs.iter().flatten() {
                if *v >= nv {
                    return bad(format!(
                        "node '{}' reads a value that does not exist",
                        n.name
                    ));
                }
                if !ready[*v] {
                    return bad(format!(
                        "node '{}' ({}) reads '{}' before it is computed (the nodes are not in \
                         order, or the graph has a cycle)",
                        n.name,
                        n.op.name(),
                        self.values[*v].name
                    ));
                }
            }
            if n.outputs.is_empty() {
                return bad(format!("node '{}' has no output", n.name));
            }
            for &o in &n.outputs {
                if o >= nv || ready[o] {
                    return bad(format!(
                        "node '{}' writes a value that is already defined",
                        n.name
                    ));
                }
                ready[o] = true;
            }
        }
        if !ready[self.output] {
            return bad("the graph's output is never computed".into());
        }
        Ok(())
    }

    /// Number of weights (elements of float constants).
    pub fn parameters(&self) -> usize {
        self.values
            .iter()
            .filter_map(|v| v.constant.as_ref())
            .filter(|c| c.floats().is_some())
            .map(Const::len)
            .sum()
    }
}
