//! A decoded [`ModelProto`] into a [`Graph`]: the steps in order, each in its own module.
//!
//! [`checks`](super::checks) vets the opset, the image input, the output and the operations;
//! [`tensor`](super::tensor) turns the weights into constants (reading
//! [`external`](super::external) data files); [`order`](super::order) sorts the nodes; the
//! [`Builder`] ([`build`](super::build), [`ops`](super::ops), [`attrs`](super::attrs)) adds
//! them to the graph one by one. Everything here returns the reason of a failure as a
//! one-line `String`; [`super::import`] puts the file's path in front of it.

use super::build::Builder;
use super::checks::{check_ops, default_opset, graph_input, graph_output, image_input};
use super::external::External;
use super::order::node_order;
use super::proto::{ModelProto, NodeProto};
use super::tensor::tensor_const;
use super::Imported;
use crate::graph::{fold, Const};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// A result whose error is the reason, without the file's path.
pub(super) type R<T> = std::result::Result<T, String>;

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
    let input = graph_input(g, &inits)?;
    let input_dims = image_input(input)?;
    let output = graph_output(g)?;

    check_ops(g)?;
    let order = node_order(g, &input.name, &inits)?;
    let mut b = Builder::new(&input.name, inits, ext);
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

    let mut graph = b.finish(output)?;
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

/// A node's name: its own, else its first output's, else its op and position.
pub(super) fn node_name(n: &NodeProto, i: usize) -> String {
    if !n.name.is_empty() {
        return n.name.clone();
    }
    match n.output.iter().find(|o| !o.is_empty()) {
        Some(o) => o.clone(),
        None => format!("{}_{i}", n.op_type),
    }
}

/// The name of node `n`'s `i`-th input; `""` where it has none (an omitted optional input).
pub(super) fn input_name(n: &NodeProto, i: usize) -> &str {
    n.input.get(i).map_or("", String::as_str)
}

/// `'a', 'b', 'c'`.
pub(super) fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
