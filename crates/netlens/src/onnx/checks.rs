//! What netlens requires of a model before it converts anything: a default opset it reads,
//! exactly one image input `[N, 3, H, W]` besides the weights, exactly one output, and only
//! operations of the ONNX domain that it supports.

use super::import::{node_name, quoted, R};
use super::proto::{data_type as dt, Dimension, GraphProto, ModelProto, ValueInfoProto};
use crate::graph::{Const, Op};
use std::collections::HashMap;

/// The default ONNX operator sets netlens reads.
const OPSETS: std::ops::RangeInclusive<i64> = 13..=21;

/// The version of the default operator set, checked to be one netlens reads.
pub(super) fn default_opset(model: &ModelProto) -> R<i64> {
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

/// Whether `d` names the default ONNX domain.
fn is_default_domain(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

/// The graph's one input that is not an initializer: the image batch.
pub(super) fn graph_input<'g>(
    g: &'g GraphProto,
    inits: &HashMap<&str, Const>,
) -> R<&'g ValueInfoProto> {
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
    Ok(input)
}

/// The declared `[N, C, H, W]` of the image input, which must be a float tensor of rank 4
/// with 3 channels (when the channel count is declared).
pub(super) fn image_input(v: &ValueInfoProto) -> R<[Option<usize>; 4]> {
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
    let dim = |d: &Dimension| {
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

/// The name of the graph's one output: the logits.
pub(super) fn graph_output(g: &GraphProto) -> R<&str> {
    match g.output.as_slice() {
        [one] => Ok(one.name.as_str()),
        [] => Err("declares no output; netlens needs one, the logits".into()),
        many => Err(format!(
            "has {} outputs ({}); netlens needs exactly one, the logits",
            many.len(),
            quoted(many.iter().map(|v| v.name.as_str()))
        )),
    }
}

/// Every node is in the default domain and an operation netlens supports.
pub(super) fn check_ops(g: &GraphProto) -> R<()> {
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
