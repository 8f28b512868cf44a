//! A decoded [`ModelProto`] into a [`Graph`]: checks, tensors, node order, operations.
//!
//! Everything here returns the reason of a failure as a one-line `String`; [`super::import`]
//! puts the file's path in front of it.

use super::proto::{
    attribute_type as at, data_location, data_type as dt, AttributeProto, GraphProto, ModelProto,
    NodeProto, TensorProto, ValueInfoProto,
};
use super::Imported;
use crate::graph::{fold, Const, ElemType, Graph, Node, Op, Pads, ValueId, Window};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

type R<T> = std::result::Result<T, String>;

/// The most elements one tensor may hold.
const MAX_ELEMENTS: u64 = 1 << 31;
/// The largest kernel, stride, dilation or pad a window may have.
const MAX_WINDOW: i64 = 1 << 24;
/// The default ONNX operator sets netlens reads.
const OPSETS: std::ops::RangeInclusive<i64> = 13..=21;

/// Checks and converts a decoded model; `path` locates external data.
pub(super) fn convert(model: &ModelProto, path: &Path) -> R<Imported> {
    let g = model
        .graph
        .as_ref()
        .ok_or("contains no graph (is it an ONNX model?)")?;
    let opset = default_opset(model)?;
    if !g.sparse_initializer.is_empty() {
        return Err("has sparse initializers, which netlens does not support".into());
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut ext = External::new(dir);

    // Weights.
    let mut inits: HashMap<&str, Const> = HashMap::new();
    for t in &g.initializer {
        if t.name.is_empty() {
            return Err("an initializer has no name".into());
        }
        let c = tensor_const(t, &format!("initializer '{}'", t.name), &mut ext)?;
        if inits.insert(t.name.as_str(), c).is_some() {
            return Err(format!("two initializers are named '{}'", t.name));
        }
    }

    // The image input and the logits output.
    let inputs: Vec<&ValueInfoProto> = g
        .input
        .iter()
        .filter(|v| !inits.contains_key(v.name.as_str()))
        .collect();
    let input = match inputs.as_slice() {
        [one] => *one,
        [] => {
            return Err(
                "has no input besides its weights; netlens needs one image input [N, 3, H, W]"
                    .into(),
            )
        }
        many => {
            return Err(format!(
                "has {} inputs besides its weights ({}); netlens needs exactly one, the image \
                 batch [N, 3, H, W]",
                many.len(),
                quoted(many.iter().map(|v| v.name.as_str()))
            ))
        }
    };
    if input.name.is_empty() {
        return Err("the graph input has no name".into());
    }
    let input_dims = image_input(input)?;
    let output = match g.output.as_slice() {
        [one] => one.name.as_str(),
        [] => return Err("declares no output; netlens needs one, the logits".into()),
        many => {
            return Err(format!(
                "has {} outputs ({}); netlens needs exactly one, the logits",
                many.len(),
                quoted(many.iter().map(|v| v.name.as_str()))
            ))
        }
    };

    check_ops(g)?;
    let order = node_order(g, &input.name, &inits)?;
    let mut b = Builder {
        graph: Graph::new(&input.name),
        names: HashMap::from([(input.name.as_str(), 0)]),
        inits,
        ext,
    };
    // Values some node or the graph output reads: the optional outputs netlens does not
    // compute (a Dropout's mask, a MaxPool's indices) must not be among them.
    let mut read: HashSet<&str> = g
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .collect();
    read.insert(output);
    for &i in &order {
        let n = g
            .node
            .get(i)
            .ok_or("internal error: node index out of range")?;
        b.node(n, i, &read)?;
    }

    let out = match b.names.get(output) {
        Some(&v) => v,
        None if b.inits.contains_key(output) => {
            return Err(format!(
                "the output '{output}' is a weight, not computed from the input"
            ))
        }
        None => return Err(format!("the output '{output}' is not computed by any node")),
    };
    if out == b.graph.input {
        return Err("the output is the input itself".into());
    }
    if b.graph.const_of(out).is_some() {
        return Err(format!(
            "the output '{output}' is a constant, not computed from the input"
        ));
    }
    let mut graph = b.graph;
    graph.output = out;
    let ends_in_softmax = fold::strip_softmax(&mut graph);
    graph.validate().map_err(|e| e.to_string())?;
    let producer = format!("{} {}", model.producer_name, model.producer_version)
        .trim()
        .to_string();
    Ok(Imported {
        graph,
        input_dims,
        ends_in_softmax,
        opset,
        producer,
    })
}

/// `'a', 'b', 'c'`.
fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The version of the default operator set, checked to be one netlens reads.
fn default_opset(model: &ModelProto) -> R<i64> {
    let mut opset = None;
    for o in &model.opset_import {
        if is_default_domain(&o.domain) {
            if opset.is_some_and(|v| v != o.version) {
                return Err("imports the ONNX operator set twice, with different versions".into());
            }
            opset = Some(o.version);
        }
    }
    let v = opset.ok_or("imports no version of the ONNX operator set (is it an ONNX model?)")?;
    if !OPSETS.contains(&v) {
        return Err(format!(
            "uses ONNX opset {v}; netlens reads opsets {} to {} (export with \
             torch.onnx.export(..., opset_version=17), or convert the file with \
             onnx.version_converter)",
            OPSETS.start(),
            OPSETS.end()
        ));
    }
    Ok(v)
}

fn is_default_domain(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

/// The declared `[N, C, H, W]` of the image input, which must be a float tensor of rank 4
/// with 3 channels (when the channel count is declared).
fn image_input(v: &ValueInfoProto) -> R<[Option<usize>; 4]> {
    let name = &v.name;
    let t = v
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| format!("the input '{name}' is not a tensor"))?;
    if ![dt::FLOAT, dt::FLOAT16, dt::DOUBLE].contains(&t.elem_type) {
        return Err(format!(
            "the input '{name}' holds {} values; netlens feeds float images",
            dt::name(t.elem_type)
        ));
    }
    let shape = t.shape.as_ref().ok_or_else(|| {
        format!(
            "the input '{name}' has no declared shape; netlens needs an image batch [N, 3, H, W]"
        )
    })?;
    let shown = shape
        .dim
        .iter()
        .map(|d| match (d.dim_value, &d.dim_param) {
            (Some(v), _) => v.to_string(),
            (None, Some(p)) if !p.is_empty() => p.clone(),
            _ => "?".into(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let [n, c, h, w] = shape.dim.as_slice() else {
        return Err(format!(
            "the input '{name}' has rank {} ([{shown}]); netlens needs an image batch [N, 3, H, W]",
            shape.dim.len()
        ));
    };
    let dim = |d: &super::proto::Dimension| {
        d.dim_value
            .filter(|&v| v > 0)
            .and_then(|v| usize::try_from(v).ok())
    };
    let dims = [dim(n), dim(c), dim(h), dim(w)];
    if let Some(ch) = dims[1] {
        if ch != 3 {
            return Err(format!(
                "the input '{name}' is [{shown}]: {ch} channels; netlens needs RGB images [N, 3, H, W]"
            ));
        }
    }
    Ok(dims)
}

/// Every node is in the default domain and an operation netlens supports.
fn check_ops(g: &GraphProto) -> R<()> {
    let supported = Op::SUPPORTED.join(", ");
    for (i, n) in g.node.iter().enumerate() {
        let name = node_name(n, i);
        if !is_default_domain(&n.domain) {
            return Err(format!(
                "operation '{}' of domain '{}' (node '{name}') is not supported; netlens \
                 supports only the ONNX domain: {supported}",
                n.op_type, n.domain
            ));
        }
        if !Op::SUPPORTED.contains(&n.op_type.as_str()) {
            return Err(format!(
                "operation '{}' (node '{name}') is not supported; netlens supports: {supported}",
                n.op_type
            ));
        }
    }
    Ok(())
}

/// A node's name: its own, else its first output's, else its op and position.
fn node_name(n: &NodeProto, i: usize) -> String {
    if !n.name.is_empty() {
        return n.name.clone();
    }
    match n.output.iter().find(|o| !o.is_empty()) {
        Some(o) => o.clone(),
        None => format!("{}_{i}", n.op_type),
    }
}

/// The nodes in an order where every value is written before it is read (Kahn's
/// algorithm, keeping the file's order where it already is one). Checks that every value
/// is written once and that every value read exists.
fn node_order(g: &GraphProto, input: &str, inits: &HashMap<&str, Const>) -> R<Vec<usize>> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        if n.output.is_empty() {
            return Err(format!(
                "node '{}' ({}) has no output",
                node_name(n, i),
                n.op_type
            ));
        }
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            let o = o.as_str();
            let clash = if o == input {
                Some("the graph input".to_string())
            } else if inits.contains_key(o) {
                Some("an initializer".to_string())
            } else {
                producer.get(o).map(|&j| {
                    format!(
                        "node '{}'",
                        g.node.get(j).map_or(String::new(), |m| node_name(m, j))
                    )
                })
            };
            if let Some(other) = clash {
                return Err(format!(
                    "node '{}' writes '{o}', which {other} already defines (every value must \
                     be written once)",
                    node_name(n, i)
                ));
            }
            producer.insert(o, i);
        }
    }
    let count = g.node.len();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut indegree = vec![0usize; count];
    for (i, n) in g.node.iter().enumerate() {
        for v in n.input.iter().filter(|v| !v.is_empty()) {
            match producer.get(v.as_str()) {
                Some(&j) => {
                    if let (Some(p), Some(s), Some(d)) =
                        (preds.get_mut(i), succs.get_mut(j), indegree.get_mut(i))
                    {
                        p.push(j);
                        s.push(i);
                        *d += 1;
                    }
                }
                None if v == input || inits.contains_key(v.as_str()) => {}
                None => {
                    return Err(format!(
                        "node '{}' ({}) reads '{v}', which is neither the input, a weight nor \
                         the output of any node",
                        node_name(n, i),
                        n.op_type
                    ))
                }
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..count)
        .filter(|&i| indegree.get(i) == Some(&0))
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(count);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &k in succs.get(i).map_or(&[][..], Vec::as_slice) {
            if let Some(d) = indegree.get_mut(k) {
                *d = d.saturating_sub(1);
                if *d == 0 {
                    ready.push(Reverse(k));
                }
            }
        }
    }
    if order.len() == count {
        return Ok(order);
    }
    // Every node left waits on another node left: walking back along those finds a cycle.
    let waiting = |i: usize| indegree.get(i).is_some_and(|&d| d > 0);
    let mut path = Vec::new();
    let mut cur = (0..count).find(|&i| waiting(i));
    while let Some(i) = cur {
        if let Some(at) = path.iter().position(|&p| p == i) {
            let cycle: Vec<String> = path[at..]
                .iter()
                .rev()
                .chain(std::iter::once(&i))
                .map(|&j| {
                    g.node
                        .get(j)
                        .map_or_else(String::new, |n| format!("'{}'", node_name(n, j)))
                })
                .collect();
            return Err(format!(
                "the nodes form a cycle ({}); an ONNX graph must be acyclic",
                cycle.join(" → ")
            ));
        }
        path.push(i);
        cur = preds
            .get(i)
            .and_then(|p| p.iter().copied().find(|&j| waiting(j)));
    }
    Err("the nodes cannot be put in order (a cycle)".into())
}

/// Builds the graph node by node.
struct Builder<'m> {
    graph: Graph,
    /// ONNX value name → graph value.
    names: HashMap<&'m str, ValueId>,
    /// Initializers not yet read by a node (added to the graph on first read).
    inits: HashMap<&'m str, Const>,
    ext: External,
}

impl<'m> Builder<'m> {
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
    fn constant(&self, name: &str) -> Option<&Const> {
        match self.names.get(name) {
            Some(&v) => self.graph.const_of(v),
            None => self.inits.get(name),
        }
    }

    /// Converts node `n`, the `i`-th of the file.
    fn node(&mut self, n: &'m NodeProto, i: usize, read: &HashSet<&str>) -> R<()> {
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
        let input = |i: usize| n.input.get(i).map_or("", String::as_str);

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
            let v = self.value(input(i)).map_err(|e| format!("{}{e}", a.at()))?;
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

    /// The operation of a (non-Constant) node, with its attributes.
    fn op(&mut self, n: &NodeProto, a: &Attrs) -> R<Op> {
        Ok(match n.op_type.as_str() {
            "Conv" => {
                let from_weights = match self.constant(n.input.get(1).map_or("", String::as_str)) {
                    Some(w) => match w.shape.as_slice() {
                        [_, _, kh, kw] => Some([*kh, *kw]),
                        s => {
                            return Err(format!(
                                "{}weights of rank {}; netlens supports 2-D convolutions only",
                                a.at(),
                                s.len()
                            ))
                        }
                    },
                    None => None,
                };
                let group = a.int("group", 1)?;
                if !(1..=MAX_WINDOW).contains(&group) {
                    return Err(format!("{}group {group}", a.at()));
                }
                Op::Conv {
                    window: a.window(from_weights, false)?,
                    group: group as usize,
                }
            }
            "MaxPool" => Op::MaxPool {
                window: a.window(None, true)?,
            },
            "AveragePool" => Op::AveragePool {
                window: a.window(None, true)?,
                count_include_pad: a.flag("count_include_pad", false)?,
            },
            "GlobalAveragePool" => Op::GlobalAveragePool,
            "GlobalMaxPool" => Op::GlobalMaxPool,
            "BatchNormalization" => {
                if a.flag("training_mode", false)? {
                    return Err(format!(
                        "{}training_mode=1; netlens runs BatchNormalization in inference form",
                        a.at()
                    ));
                }
                Op::BatchNorm {
                    eps: a.float("epsilon", 1e-5)?,
                }
            }
            "Gemm" => Op::Gemm {
                alpha: a.float("alpha", 1.0)?,
                beta: a.float("beta", 1.0)?,
                trans_a: a.flag("transA", false)?,
                trans_b: a.flag("transB", false)?,
            },
            "MatMul" => Op::MatMul,
            "Add" => Op::Add,
            "Sub" => Op::Sub,
            "Mul" => Op::Mul,
            "Div" => Op::Div,
            "Pow" => Op::Pow,
            "Relu" => Op::Relu,
            "Clip" => {
                let bound = |i: usize, which: &str| -> R<Option<f64>> {
                    let name = n.input.get(i).map_or("", String::as_str);
                    if name.is_empty() {
                        return Ok(None);
                    }
                    let c = self.constant(name).ok_or_else(|| {
                        format!("{}the {which} bound '{name}' is not a constant", a.at())
                    })?;
                    scalar(c).map(Some).ok_or_else(|| {
                        format!("{}the {which} bound '{name}' is not a scalar", a.at())
                    })
                };
                Op::Clip {
                    min: bound(1, "min")?,
                    max: bound(2, "max")?,
                }
            }
            "LeakyRelu" => Op::LeakyRelu {
                alpha: a.float("alpha", 0.01)?,
            },
            "Sigmoid" => Op::Sigmoid,
            "HardSigmoid" => Op::HardSigmoid {
                alpha: a.float("alpha", 0.2)?,
                beta: a.float("beta", 0.5)?,
            },
            "HardSwish" => Op::HardSwish,
            "Tanh" => Op::Tanh,
            "Erf" => Op::Erf,
            "Sqrt" => Op::Sqrt,
            "Exp" => Op::Exp,
            "Neg" => Op::Neg,
            "Reciprocal" => Op::Reciprocal,
            "Gelu" => match a.string("approximate")?.as_deref() {
                None | Some("none") => Op::Gelu { tanh: false },
                Some("tanh") => Op::Gelu { tanh: true },
                Some(other) => {
                    return Err(format!("{}approximate '{other}' (none or tanh)", a.at()))
                }
            },
            "Softmax" => Op::Softmax {
                axis: a.int("axis", -1)?,
            },
            "LogSoftmax" => Op::LogSoftmax {
                axis: a.int("axis", -1)?,
            },
            "Concat" => Op::Concat {
                axis: a
                    .int_opt("axis")?
                    .ok_or_else(|| format!("{}the axis attribute is missing", a.at()))?,
            },
            "Flatten" => Op::Flatten {
                axis: a.int("axis", 1)?,
            },
            "Reshape" => Op::Reshape {
                allowzero: a.flag("allowzero", false)?,
            },
            "Transpose" => Op::Transpose {
                perm: match a.ints("perm")? {
                    None => None,
                    Some(p) => {
                        let mut seen = vec![false; p.len()];
                        let mut perm = Vec::with_capacity(p.len());
                        for &d in p {
                            let slot = usize::try_from(d).ok().and_then(|i| seen.get_mut(i));
                            match slot {
                                Some(s) if !*s => *s = true,
                                _ => {
                                    return Err(format!(
                                        "{}perm {p:?} is not a permutation",
                                        a.at()
                                    ))
                                }
                            }
                            perm.push(d as usize);
                        }
                        Some(perm)
                    }
                },
            },
            "Squeeze" => Op::Squeeze,
            "Unsqueeze" => Op::Unsqueeze,
            "Slice" => Op::Slice,
            "Gather" => Op::Gather {
                axis: a.int("axis", 0)?,
            },
            "Shape" => Op::Shape {
                start: a.int("start", 0)?,
                end: a.int_opt("end")?,
            },
            "Expand" => Op::Expand,
            "ReduceMean" | "ReduceSum" => {
                let axes = a.ints("axes")?.map(<[i64]>::to_vec);
                let keepdims = a.flag("keepdims", true)?;
                let noop_with_empty_axes = a.flag("noop_with_empty_axes", false)?;
                if n.op_type == "ReduceMean" {
                    Op::ReduceMean {
                        axes,
                        keepdims,
                        noop_with_empty_axes,
                    }
                } else {
                    Op::ReduceSum {
                        axes,
                        keepdims,
                        noop_with_empty_axes,
                    }
                }
            }
            "LayerNormalization" => Op::LayerNorm {
                axis: a.int("axis", -1)?,
                eps: a.float("epsilon", 1e-5)?,
            },
            "Identity" => Op::Identity,
            "Dropout" => {
                let mode = n.input.get(2).map_or("", String::as_str);
                if !mode.is_empty() {
                    match self.constant(mode).and_then(scalar) {
                        Some(0.0) => {}
                        Some(_) => {
                            return Err(format!(
                                "{}training_mode is true; netlens runs Dropout in inference form",
                                a.at()
                            ))
                        }
                        None => {
                            return Err(format!(
                                "{}training_mode '{mode}' is not a constant",
                                a.at()
                            ))
                        }
                    }
                }
                Op::Identity
            }
            "Cast" => {
                let to = a
                    .int_opt("to")?
                    .ok_or_else(|| format!("{}the 'to' attribute is missing", a.at()))?;
                let to32 = i32::try_from(to).unwrap_or(-1);
                Op::Cast {
                    to: match to32 {
                        dt::FLOAT | dt::FLOAT16 | dt::DOUBLE | dt::BFLOAT16 => ElemType::Float,
                        dt::BOOL => ElemType::Bool,
                        dt::INT8
                        | dt::UINT8
                        | dt::INT16
                        | dt::UINT16
                        | dt::INT32
                        | dt::UINT32
                        | dt::INT64
                        | dt::UINT64 => ElemType::Int,
                        other => {
                            return Err(format!(
                                "{}cast to {} is not supported",
                                a.at(),
                                dt::name(other)
                            ))
                        }
                    },
                }
            }
            "ConstantOfShape" => match a.tensor("value")? {
                None => Op::ConstantOfShape {
                    value: 0.0,
                    int: false,
                },
                Some(t) => {
                    let what = format!("the value of node '{}'", a.node);
                    let c = tensor_const(t, &what, &mut self.ext)?;
                    if c.len() != 1 {
                        return Err(format!(
                            "{}value has {} elements; it must have one",
                            a.at(),
                            c.len()
                        ));
                    }
                    match (c.floats(), c.ints()) {
                        (Some(f), _) => Op::ConstantOfShape {
                            value: f.first().map_or(0.0, |&v| f64::from(v)),
                            int: false,
                        },
                        (_, Some(i)) => Op::ConstantOfShape {
                            value: i.first().map_or(0.0, |&v| v as f64),
                            int: true,
                        },
                        _ => return Err(format!("{}value of no type", a.at())),
                    }
                }
            },
            "Equal" => Op::Equal,
            "Where" => Op::Where,
            "Split" => {
                let outputs = n.output.len();
                let parts = match a.int_opt("num_outputs")? {
                    None => outputs,
                    Some(k) if usize::try_from(k).ok() == Some(outputs) => outputs,
                    Some(k) => {
                        return Err(format!(
                            "{}num_outputs is {k} but the node has {outputs} outputs",
                            a.at()
                        ))
                    }
                };
                Op::Split {
                    axis: a.int("axis", 0)?,
                    parts,
                }
            }
            "Range" => Op::Range,
            "Mod" => Op::Mod {
                fmod: a.flag("fmod", false)?,
            },
            "Pad" => match a.string("mode")?.as_deref() {
                None | Some("constant") => Op::Pad { reflect: false },
                Some("reflect") => Op::Pad { reflect: true },
                Some(other) => {
                    return Err(format!(
                        "{}Pad mode '{other}' is not supported (constant and reflect are)",
                        a.at()
                    ))
                }
            },
            other => {
                return Err(format!(
                    "operation '{other}' (node '{}') is not supported; netlens supports: {}",
                    a.node,
                    Op::SUPPORTED.join(", ")
                ));
            }
        })
    }
}

/// How many leading inputs an operation cannot do without.
fn required_inputs(op: &Op) -> usize {
    match op {
        Op::BatchNorm { .. } => 5,
        Op::Where | Op::Range | Op::Slice => 3,
        Op::Conv { .. }
        | Op::Gemm { .. }
        | Op::MatMul
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::Pow
        | Op::Equal
        | Op::Mod { .. }
        | Op::Reshape { .. }
        | Op::Unsqueeze
        | Op::Gather { .. }
        | Op::Expand
        | Op::LayerNorm { .. }
        | Op::Pad { .. } => 2,
        _ => 1,
    }
}

/// The one value of a one-element constant, as a float.
fn scalar(c: &Const) -> Option<f64> {
    if c.len() != 1 {
        return None;
    }
    match (c.floats(), c.ints()) {
        (Some(f), _) => f.first().map(|&v| f64::from(v)),
        (_, Some(i)) => i.first().map(|&v| v as f64),
        _ => None,
    }
}

/// A node's attributes, with its name and op for messages.
struct Attrs<'a> {
    node: &'a str,
    op: &'a str,
    list: &'a [AttributeProto],
}

impl<'a> Attrs<'a> {
    /// The start of a message about this node.
    fn at(&self) -> String {
        format!("node '{}' ({}): ", self.node, self.op)
    }

    /// Attribute `name`, checked to be of type `ty` when the file says which it is.
    fn get(&self, name: &str, ty: i32) -> R<Option<&'a AttributeProto>> {
        match self.list.iter().find(|x| x.name == name) {
            None => Ok(None),
            Some(x) if x.r#type == at::UNDEFINED || x.r#type == ty => Ok(Some(x)),
            Some(x) => Err(format!(
                "{}attribute '{name}' has type {}, expected {ty}",
                self.at(),
                x.r#type
            )),
        }
    }

    fn int_opt(&self, name: &str) -> R<Option<i64>> {
        Ok(self.get(name, at::INT)?.map(|x| x.i))
    }

    fn int(&self, name: &str, default: i64) -> R<i64> {
        Ok(self.int_opt(name)?.unwrap_or(default))
    }

    fn flag(&self, name: &str, default: bool) -> R<bool> {
        match self.int_opt(name)? {
            None => Ok(default),
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            Some(v) => Err(format!(
                "{}attribute '{name}' is {v}, expected 0 or 1",
                self.at()
            )),
        }
    }

    /// A float attribute as the decimal it was written from (`0.2f32` reads as `0.2`).
    fn float(&self, name: &str, default: f64) -> R<f64> {
        Ok(self.get(name, at::FLOAT)?.map_or(default, |x| decimal(x.f)))
    }

    fn ints(&self, name: &str) -> R<Option<&'a [i64]>> {
        Ok(self.get(name, at::INTS)?.map(|x| x.ints.as_slice()))
    }

    fn floats(&self, name: &str) -> R<Option<&'a [f32]>> {
        Ok(self.get(name, at::FLOATS)?.map(|x| x.floats.as_slice()))
    }

    fn string(&self, name: &str) -> R<Option<String>> {
        match self.get(name, at::STRING)? {
            None => Ok(None),
            Some(x) => String::from_utf8(x.s.clone())
                .map(Some)
                .map_err(|_| format!("{}attribute '{name}' is not UTF-8 text", self.at())),
        }
    }

    fn tensor(&self, name: &str) -> R<Option<&'a TensorProto>> {
        match self.get(name, at::TENSOR)? {
            None => Ok(None),
            Some(x) => {
                x.t.as_ref()
                    .map(Some)
                    .ok_or_else(|| format!("{}attribute '{name}' holds no tensor", self.at()))
            }
        }
    }

    /// Two window sizes (`kernel_shape`, `strides`, `dilations`), each at least 1.
    fn pair(&self, name: &str, default: Option<[usize; 2]>) -> R<Option<[usize; 2]>> {
        let Some(v) = self.ints(name)? else {
            return Ok(default);
        };
        match v {
            [a, b] => Ok(Some([self.size(name, *a, 1)?, self.size(name, *b, 1)?])),
            _ => Err(format!(
                "{}{name} has {} values; netlens supports 2-D windows only (4-D inputs)",
                self.at(),
                v.len()
            )),
        }
    }

    fn size(&self, name: &str, v: i64, min: i64) -> R<usize> {
        if !(min..=MAX_WINDOW).contains(&v) {
            return Err(format!("{}{name} holds {v}", self.at()));
        }
        usize::try_from(v).map_err(|_| format!("{}{name} holds {v}", self.at()))
    }

    /// The window of a Conv (`kernel` from its weights when the attribute is absent) or a
    /// pooling node (`pool`: reads `ceil_mode`).
    fn window(&self, kernel: Option<[usize; 2]>, pool: bool) -> R<Window> {
        let from_attr = self.pair("kernel_shape", None)?;
        let kernel = match (from_attr, kernel) {
            (Some(k), Some(w)) if k != w => {
                return Err(format!(
                    "{}kernel_shape {k:?} does not match the weights' {w:?}",
                    self.at()
                ))
            }
            (Some(k), _) | (None, Some(k)) => k,
            (None, None) => {
                return Err(format!(
                    "{}the kernel_shape attribute is missing",
                    self.at()
                ))
            }
        };
        let strides = self.pair("strides", Some([1, 1]))?.unwrap_or([1, 1]);
        let dilations = self.pair("dilations", Some([1, 1]))?.unwrap_or([1, 1]);
        let auto_pad = self.string("auto_pad")?;
        let pads = match auto_pad.as_deref() {
            None | Some("NOTSET") | Some("") => match self.ints("pads")? {
                None => Pads::Explicit([0; 4]),
                Some([t, l, b, r]) => Pads::Explicit([
                    self.size("pads", *t, 0)?,
                    self.size("pads", *l, 0)?,
                    self.size("pads", *b, 0)?,
                    self.size("pads", *r, 0)?,
                ]),
                Some(p) => {
                    return Err(format!(
                        "{}pads has {} values; netlens supports 2-D windows only (4-D inputs)",
                        self.at(),
                        p.len()
                    ))
                }
            },
            Some("VALID") => Pads::Explicit([0; 4]),
            Some("SAME_UPPER") => Pads::SameUpper,
            Some("SAME_LOWER") => Pads::SameLower,
            Some(other) => return Err(format!("{}auto_pad '{other}'", self.at())),
        };
        let ceil = pool && self.flag("ceil_mode", false)?;
        Ok(Window {
            kernel,
            strides,
            dilations,
            pads,
            ceil,
        })
    }
}

/// `f` as the shortest decimal that reads back as it, in double precision.
fn decimal(f: f32) -> f64 {
    f.to_string().parse().unwrap_or(f64::from(f))
}

/// How a tensor's elements are stored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Elem {
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    U16,
    U32,
    U64,
    Bool,
}

impl Elem {
    fn of(t: i32) -> Option<Self> {
        Some(match t {
            dt::FLOAT => Elem::F32,
            dt::FLOAT16 => Elem::F16,
            dt::BFLOAT16 => Elem::BF16,
            dt::DOUBLE => Elem::F64,
            dt::INT64 => Elem::I64,
            dt::INT32 => Elem::I32,
            dt::INT16 => Elem::I16,
            dt::INT8 => Elem::I8,
            dt::UINT8 => Elem::U8,
            dt::UINT16 => Elem::U16,
            dt::UINT32 => Elem::U32,
            dt::UINT64 => Elem::U64,
            dt::BOOL => Elem::Bool,
            _ => return None,
        })
    }

    fn bytes(self) -> usize {
        match self {
            Elem::I8 | Elem::U8 | Elem::Bool => 1,
            Elem::F16 | Elem::BF16 | Elem::I16 | Elem::U16 => 2,
            Elem::F32 | Elem::I32 | Elem::U32 => 4,
            Elem::F64 | Elem::I64 | Elem::U64 => 8,
        }
    }
}

/// The elements of a tensor, before they become `f32` or `i64`.
enum Data {
    F(Vec<f32>),
    I(Vec<i64>),
}

/// A tensor (an initializer, a Constant's value) as a graph constant. `what` names it in
/// messages.
fn tensor_const(t: &TensorProto, what: &str, ext: &mut External) -> R<Const> {
    if t.segment.is_some() {
        return Err(format!(
            "{what} is segmented, which netlens does not support"
        ));
    }
    let mut shape = Vec::with_capacity(t.dims.len());
    let mut count: u64 = 1;
    for &d in &t.dims {
        let Ok(d) = u64::try_from(d) else {
            return Err(format!(
                "{what} has a negative dimension ({d} in {:?})",
                t.dims
            ));
        };
        count = count
            .checked_mul(d)
            .filter(|&c| c <= MAX_ELEMENTS)
            .ok_or_else(|| format!("{what} declares dims {:?}, more than 2^31 elements", t.dims))?;
        shape.push(usize::try_from(d).map_err(|_| format!("{what}: dimension {d} too large"))?);
    }
    let elem = Elem::of(t.data_type).ok_or_else(|| {
        format!(
            "{what} has data type {}; netlens reads float (32, 16, bfloat16, 64-bit), integer \
             and bool tensors",
            dt::name(t.data_type)
        )
    })?;
    let count = usize::try_from(count).map_err(|_| format!("{what} is too large"))?;
    let nbytes = count
        .checked_mul(elem.bytes())
        .ok_or_else(|| format!("{what} is too large"))?;
    let data = match t.data_location {
        data_location::EXTERNAL => {
            let raw = ext.read(t, what, nbytes)?;
            from_raw(&raw, elem)
        }
        data_location::DEFAULT => {
            let typed = typed_len(t);
            if !t.raw_data.is_empty() || typed == 0 {
                if t.raw_data.len() != nbytes {
                    return Err(format!(
                        "{what} declares dims {:?} ({count} × {} bytes = {nbytes} bytes) but \
                         holds {} bytes of data",
                        t.dims,
                        elem.bytes(),
                        t.raw_data.len()
                    ));
                }
                from_raw(&t.raw_data, elem)
            } else {
                from_typed(t, elem, count, what)?
            }
        }
        other => return Err(format!("{what} has an unknown data location ({other})")),
    };
    Ok(match data {
        Data::F(v) => Const::float(shape, v),
        Data::I(v) => Const::int(shape, v),
    })
}

/// How many elements the typed fields hold in all.
fn typed_len(t: &TensorProto) -> usize {
    t.float_data.len()
        + t.int32_data.len()
        + t.int64_data.len()
        + t.double_data.len()
        + t.uint64_data.len()
        + t.string_data.len()
}

/// `N` bytes from the front of `c` (zeros where it is shorter).
fn le<const N: usize>(c: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    for (d, s) in a.iter_mut().zip(c) {
        *d = *s;
    }
    a
}

/// Little-endian elements (the length was checked).
fn from_raw(raw: &[u8], elem: Elem) -> Data {
    let ch = raw.chunks_exact(elem.bytes());
    match elem {
        Elem::F32 => Data::F(ch.map(|c| f32::from_le_bytes(le(c))).collect()),
        Elem::F64 => Data::F(ch.map(|c| f64::from_le_bytes(le(c)) as f32).collect()),
        Elem::F16 => Data::F(ch.map(|c| f16_to_f32(u16::from_le_bytes(le(c)))).collect()),
        Elem::BF16 => Data::F(ch.map(|c| bf16_to_f32(u16::from_le_bytes(le(c)))).collect()),
        Elem::I64 => Data::I(ch.map(|c| i64::from_le_bytes(le(c))).collect()),
        Elem::I32 => Data::I(ch.map(|c| i64::from(i32::from_le_bytes(le(c)))).collect()),
        Elem::I16 => Data::I(ch.map(|c| i64::from(i16::from_le_bytes(le(c)))).collect()),
        Elem::U16 => Data::I(ch.map(|c| i64::from(u16::from_le_bytes(le(c)))).collect()),
        Elem::U32 => Data::I(ch.map(|c| i64::from(u32::from_le_bytes(le(c)))).collect()),
        // Beyond i64: saturate (such values are never shapes or indices netlens can use).
        Elem::U64 => Data::I(
            ch.map(|c| i64::try_from(u64::from_le_bytes(le(c))).unwrap_or(i64::MAX))
                .collect(),
        ),
        Elem::I8 => Data::I(ch.map(|c| i64::from(i8::from_le_bytes(le(c)))).collect()),
        Elem::U8 => Data::I(
            ch.map(|c| i64::from(c.first().copied().unwrap_or(0)))
                .collect(),
        ),
        Elem::Bool => Data::I(
            ch.map(|c| i64::from(c.first().is_some_and(|&b| b != 0)))
                .collect(),
        ),
    }
}

/// Elements from the typed field that holds `elem` (the schema's choice per type).
fn from_typed(t: &TensorProto, elem: Elem, count: usize, what: &str) -> R<Data> {
    let (field, len) = match elem {
        Elem::F32 => ("float_data", t.float_data.len()),
        Elem::F64 => ("double_data", t.double_data.len()),
        Elem::I64 => ("int64_data", t.int64_data.len()),
        Elem::U32 | Elem::U64 => ("uint64_data", t.uint64_data.len()),
        _ => ("int32_data", t.int32_data.len()),
    };
    if len != count || typed_len(t) != count {
        return Err(format!(
            "{what} declares dims {:?} ({count} elements) but its {field} holds {len} (and its \
             typed fields {} in all)",
            t.dims,
            typed_len(t)
        ));
    }
    let i32s = || t.int32_data.iter().copied();
    Ok(match elem {
        Elem::F32 => Data::F(t.float_data.clone()),
        Elem::F64 => Data::F(t.double_data.iter().map(|&v| v as f32).collect()),
        Elem::F16 => Data::F(i32s().map(|v| f16_to_f32(v as u16)).collect()),
        Elem::BF16 => Data::F(i32s().map(|v| bf16_to_f32(v as u16)).collect()),
        Elem::I64 => Data::I(t.int64_data.clone()),
        Elem::U32 | Elem::U64 => Data::I(
            t.uint64_data
                .iter()
                .map(|&v| i64::try_from(v).unwrap_or(i64::MAX))
                .collect(),
        ),
        Elem::Bool => Data::I(i32s().map(|v| i64::from(v != 0)).collect()),
        Elem::I32 | Elem::I16 | Elem::I8 | Elem::U8 | Elem::U16 => {
            Data::I(i32s().map(i64::from).collect())
        }
    })
}

/// IEEE half precision to single.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    if exp == 0 {
        // Zero or subnormal: man · 2^-24.
        let v = man as f32 / 16_777_216.0;
        return if sign != 0 { -v } else { v };
    }
    let bits = if exp == 31 {
        sign | 0x7f80_0000 | (man << 13)
    } else {
        sign | ((exp + 112) << 23) | (man << 13)
    };
    f32::from_bits(bits)
}

/// bfloat16 (the top half of a float32) to single.
fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// Reads external tensor data from files in the model's folder.
struct External {
    dir: PathBuf,
    /// The folder, canonicalized on first use.
    root: Option<PathBuf>,
    /// location → (canonical path, size in bytes).
    files: HashMap<String, (PathBuf, u64)>,
}

impl External {
    fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            root: None,
            files: HashMap::new(),
        }
    }

    /// The `nbytes` bytes of tensor `t`'s external data.
    fn read(&mut self, t: &TensorProto, what: &str, nbytes: usize) -> R<Vec<u8>> {
        let key = |k: &str| {
            t.external_data
                .iter()
                .rev()
                .find(|e| e.key == k)
                .map(|e| e.value.as_str())
        };
        let location = key("location")
            .filter(|l| !l.is_empty())
            .ok_or_else(|| format!("{what} is stored externally but names no location"))?;
        let number = |k: &str| -> R<Option<u64>> {
            key(k)
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|_| {
                        format!("{what}: external data {k} '{v}' is not a non-negative integer")
                    })
                })
                .transpose()
        };
        let offset = number("offset")?.unwrap_or(0);
        let want = nbytes as u64;
        if let Some(len) = number("length")? {
            if len != want {
                return Err(format!(
                    "{what} declares dims {:?} ({nbytes} bytes) but its external data length \
                     is {len}",
                    t.dims
                ));
            }
        }
        let (file, size) = self.open(location, what)?;
        let end = offset
            .checked_add(want)
            .ok_or_else(|| format!("{what}: external data offset {offset} is too large"))?;
        if end > size {
            return Err(format!(
                "{what}: external data at offset {offset}, length {want} runs past the end of \
                 '{location}' ({size} bytes)"
            ));
        }
        let io = |e: std::io::Error| format!("{what}: cannot read external data '{location}': {e}");
        let mut f = std::fs::File::open(&file).map_err(io)?;
        f.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(nbytes)
            .map_err(|_| format!("{what}: cannot allocate {nbytes} bytes"))?;
        f.take(want).read_to_end(&mut buf).map_err(io)?;
        if buf.len() != nbytes {
            return Err(format!(
                "{what}: external data '{location}' ended after {} of {nbytes} bytes",
                buf.len()
            ));
        }
        Ok(buf)
    }

    /// The canonical path and size of external data file `location`, which must be a
    /// regular file inside the model's folder.
    fn open(&mut self, location: &str, what: &str) -> R<(PathBuf, u64)> {
        if let Some(f) = self.files.get(location) {
            return Ok(f.clone());
        }
        let rel = Path::new(location);
        let outside = || {
            format!(
                "{what}: external data location '{location}' is outside the model's folder \
                 (it must be a relative path without '..')"
            )
        };
        if location.contains('\0') || rel.is_absolute() || rel.has_root() {
            return Err(outside());
        }
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(outside());
        }
        let root = match &self.root {
            Some(r) => r.clone(),
            None => {
                let r = self.dir.canonicalize().map_err(|e| {
                    format!(
                        "cannot resolve the model's folder {}: {e}",
                        self.dir.display()
                    )
                })?;
                self.root = Some(r.clone());
                r
            }
        };
        let file = self
            .dir
            .join(rel)
            .canonicalize()
            .map_err(|e| format!("{what}: cannot open external data file '{location}': {e}"))?;
        if !file.starts_with(&root) {
            return Err(format!(
                "{what}: external data file '{location}' resolves outside the model's folder \
                 (a symbolic link?)"
            ));
        }
        let meta = std::fs::metadata(&file)
            .map_err(|e| format!("{what}: cannot open external data file '{location}': {e}"))?;
        if !meta.is_file() {
            return Err(format!(
                "{what}: external data '{location}' is not a regular file"
            ));
        }
        let entry = (file, meta.len());
        self.files.insert(location.to_string(), entry.clone());
        Ok(entry)
    }
}
