//! The [`Builder`]: adds the nodes, in order, to a [`Graph`], wiring each ONNX value name to
//! a graph value. Which [`Op`] a node becomes is [`ops`](super::ops)'s job; this module
//! handles its inputs (weights become constants on first read, omitted optional inputs),
//! its outputs (only those netlens computes may be read), and `Constant` nodes.

use super::attrs::Attrs;
use super::external::External;
use super::import::{input_name, node_name, R};
use super::ops::required_inputs;
use super::proto::{attribute_type as at, NodeProto};
use super::tensor::tensor_const;
use crate::graph::{Const, Graph, Node, Op, ValueId};
use std::collections::{HashMap, HashSet};

/// Builds the graph node by node.
pub(super) struct Builder<'m> {
    graph: Graph,
    /// ONNX value name → graph value.
    names: HashMap<&'m str, ValueId>,
    /// Initializers not yet read by a node (added to the graph on first read).
    inits: HashMap<&'m str, Const>,
    /// Reads the external data of tensors in `Constant` and `ConstantOfShape` nodes.
    pub(super) ext: External,
}

impl<'m> Builder<'m> {
    /// A graph that so far holds only its input, named `input`.
    pub(super) fn new(input: &'m str, inits: HashMap<&'m str, Const>, ext: External) -> Self {
        Self {
            graph: Graph::new(input),
            names: HashMap::from([(input, 0)]),
            inits,
            ext,
        }
    }

    /// The graph, once every node is added, with `output` (a value name) as its output,
    /// which must be computed from the input.
    pub(super) fn finish(self, output: &str) -> R<Graph> {
        let out = match self.names.get(output) {
            Some(&v) => v,
            None if self.inits.contains_key(output) => {
                return Err(format!(
                    "the output '{output}' is a weight, not computed from the input"
                ))
            }
            None => return Err(format!("the output '{output}' is not computed by any node")),
        };
        if out == self.graph.input {
            return Err("the output is the input itself".into());
        }
        if self.graph.const_of(out).is_some() {
            return Err(format!(
                "the output '{output}' is a constant, not computed from the input"
            ));
        }
        let mut graph = self.graph;
        graph.output = out;
        Ok(graph)
    }

    /// The graph value named `name`; `None` for `""` (an omitted optional input).
    fn value(&mut self, name: &'m str) -> R<Option<ValueId>> {
        if name.is_empty() {
            return Ok(None);
        }
        if let Some(&v) = self.names.get(name) {
            return Ok(Some(v));
        }
        if let Some(c) = self.inits.remove(name) {
            let v = self.graph.constant(name, c);
            self.names.insert(name, v);
            return Ok(Some(v));
        }
        Err(format!("'{name}' is read before it is computed"))
    }

    /// The constant named `name`, if it is one.
    pub(super) fn constant(&self, name: &str) -> Option<&Const> {
        match self.names.get(name) {
            Some(&v) => self.graph.const_of(v),
            None => self.inits.get(name),
        }
    }

    /// Converts node `n`, the `i`-th of the file.
    pub(super) fn node(&mut self, n: &'m NodeProto, i: usize, read: &HashSet<&str>) -> R<()> {
        let name = node_name(n, i);
        let a = Attrs {
            node: &name,
            op: &n.op_type,
            list: &n.attribute,
        };
        if let Some(bad) = n
            .attribute
            .iter()
            .find(|x| [at::GRAPH, at::GRAPHS].contains(&x.r#type))
        {
            return Err(format!(
                "{}attribute '{}' is a subgraph; netlens does not support nested graphs",
                a.at(),
                bad.name
            ));
        }

        if n.op_type == "Constant" {
            let c = self.constant_node(&a)?;
            let [out] = n.output.as_slice() else {
                return Err(format!("{}a Constant has one output", a.at()));
            };
            let out = out.as_str();
            if out.is_empty() {
                return Ok(());
            }
            let v = self.graph.constant(out, c);
            self.names.insert(out, v);
            return Ok(());
        }

        let op = self.op(n, &a)?;
        // Inputs netlens's operation reads: Clip's bounds are attributes, a Dropout's ratio
        // and mode do not matter at inference.
        let used = match op {
            Op::Clip { .. } => 1,
            Op::Identity if n.op_type == "Dropout" => 1,
            _ => n.input.len(),
        };
        let required = required_inputs(&op);
        let mut inputs = Vec::with_capacity(used);
        for i in 0..used {
            let v = self
                .value(input_name(n, i))
                .map_err(|e| format!("{}{e}", a.at()))?;
            if v.is_none() && i < required {
                return Err(format!("{}input {i} is missing", a.at()));
            }
            inputs.push(v);
        }
        if inputs.len() < required {
            return Err(format!(
                "{}has {} inputs; {} needs at least {required}",
                a.at(),
                inputs.len(),
                n.op_type
            ));
        }
        if let Op::Split { .. } = op {
            if inputs.get(1).copied().flatten().is_none() {
                if let Some(split) = a.ints("split")? {
                    let c = Const::int(vec![split.len()], split.to_vec());
                    let v = self.graph.constant(&format!("{name}/split"), c);
                    inputs.resize(1, None);
                    inputs.push(Some(v));
                }
            }
        }

        // Outputs: every one for Split, the first for the rest (their other outputs, such as
        // MaxPool's indices, must not be read).
        let keep = if matches!(op, Op::Split { .. }) {
            n.output.len()
        } else {
            1
        };
        let mut outputs = Vec::with_capacity(keep);
        for (j, o) in n.output.iter().enumerate() {
            let o = o.as_str();
            if j >= keep {
                if !o.is_empty() && read.contains(o) {
                    return Err(format!(
                        "{}output {j} ('{o}') is read, but netlens computes only the first \
                         output of {}",
                        a.at(),
                        n.op_type
                    ));
                }
                continue;
            }
            if o.is_empty() {
                outputs.push(self.graph.value(&format!("{name}/output{j}")));
            } else {
                let v = self.graph.value(o);
                self.names.insert(o, v);
                outputs.push(v);
            }
        }
        self.graph.nodes.push(Node {
            name,
            op,
            inputs,
            outputs,
        });
        Ok(())
    }

    /// The value of a `Constant` node.
    fn constant_node(&mut self, a: &Attrs) -> R<Const> {
        let [x] = a.list else {
            return Err(format!(
                "{}a Constant needs exactly one attribute, it has {}",
                a.at(),
                a.list.len()
            ));
        };
        let what = format!("the value of Constant node '{}'", a.node);
        match x.name.as_str() {
            "value" => {
                let t = a
                    .tensor("value")?
                    .ok_or_else(|| format!("{}no tensor", a.at()))?;
                tensor_const(t, &what, &mut self.ext)
            }
            "value_float" => Ok(Const::float(
                vec![],
                vec![a.float("value_float", 0.0)? as f32],
            )),
            "value_floats" => {
                let v = a.floats("value_floats")?.unwrap_or_default();
                Ok(Const::float(vec![v.len()], v.to_vec()))
            }
            "value_int" => Ok(Const::int(vec![], vec![a.int("value_int", 0)?])),
            "value_ints" => {
                let v = a.ints("value_ints")?.unwrap_or_default();
                Ok(Const::int(vec![v.len()], v.to_vec()))
            }
            other => Err(format!(
                "{}a Constant given as '{other}' is not supported (value, value_float(s) and \
                 value_int(s) are)",
                a.at()
            )),
        }
    }
}
