//! What a graph offers to layer-based methods: its tappable layers and the default CAM layer.
//!
//! A value can be tapped (`forward_to` / `forward_from`, Grad-CAM) when the output depends
//! on the input only through it: every path from the input to the logits passes through
//! it, so the logits can be recomputed from it alone. Reading the input's *shape* (exported
//! graphs take the batch size from it) does not count as depending on the input.

use super::{Graph, Op, ValueId};

/// One tappable layer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Layer {
    pub name: String,
    /// The ONNX name of the operation that computes it.
    pub op: &'static str,
    /// Output shape for one image (batch of 1).
    pub shape: Vec<usize>,
    #[serde(skip)]
    pub value: ValueId,
}

/// For every value: whether it depends on the input's contents.
pub(crate) fn depends_on_input(g: &Graph) -> Vec<bool> {
    let mut dep = vec![false; g.values.len()];
    dep[g.input] = true;
    for n in &g.nodes {
        let d = !matches!(n.op, Op::Shape { .. }) && n.inputs.iter().flatten().any(|&v| dep[v]);
        for &o in &n.outputs {
            dep[o] = d;
        }
    }
    dep
}

/// Whether the output can be computed from `v` alone (with the input's shape).
fn is_cut(g: &Graph, dep: &[bool], v: ValueId) -> bool {
    let mut reach = vec![false; g.values.len()];
    reach[v] = true;
    for n in &g.nodes {
        if n.outputs.contains(&v) {
            continue;
        }
        if n.inputs.iter().flatten().any(|&u| reach[u]) {
            if n.inputs.iter().flatten().any(|&u| dep[u] && !reach[u]) {
                return false;
            }
            for &o in &n.outputs {
                reach[o] = true;
            }
        }
    }
    reach[g.output]
}

/// The tappable 4-D layers, input side first, given every value's shape at batch 1.
pub fn layers(g: &Graph, shapes: &[Option<Vec<usize>>]) -> Vec<Layer> {
    let dep = depends_on_input(g);
    let mut out = Vec::new();
    for n in &g.nodes {
        for &o in &n.outputs {
            let Some(shape) = shapes.get(o).and_then(Option::as_ref) else {
                continue;
            };
            if shape.len() != 4 || !dep[o] || o == g.output || !is_cut(g, &dep, o) {
                continue;
            }
            out.push(Layer {
                name: g.values[o].name.clone(),
                op: n.op.name(),
                shape: shape[1..].to_vec(),
                value: o,
            });
        }
    }
    out
}

/// The default Grad-CAM layer: the last tappable 4-D activation with a spatial size above
/// 1 (the one global pooling reads, in a CNN).
pub fn default_cam_layer(layers: &[Layer]) -> Option<&Layer> {
    layers.iter().rev().find(|l| l.shape[1] * l.shape[2] > 1)
}
