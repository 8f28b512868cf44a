//! Per-node timing of the fast path, for `netlens bench --profile`: while switched on,
//! every CNN node's forward and backward kernel calls are timed (wall clock on the thread
//! that runs the node; the pool's other threads help inside it) and summed by node, and the
//! ViT's passes by stage (`fast::vit::stages`: its LayerNorms, each kind of product,
//! attention, GELU, summed over the blocks). Off by default: then a pass pays one relaxed
//! atomic load per node or stage and nothing else. Rows are kept by node or stage position,
//! process-wide: profile one network at a time (as `bench --profile` does).

use super::graph::Node;
use super::layout::{Geom, ShapePlan};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

static ON: AtomicBool = AtomicBool::new(false);
static TABLE: Mutex<Vec<NodeTime>> = Mutex::new(Vec::new());

/// What one node of the graph took, summed over every pass since [`start`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeTime {
    /// Position of the node in the graph.
    pub node: usize,
    /// Its kind and shape, e.g. `conv 64→128 3×3/1 112×112`.
    pub label: String,
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub forward_calls: u64,
    pub backward_calls: u64,
    /// Multiply-add FLOPs (2 per multiply-add) of the products, summed over the forward
    /// calls and over the backward calls (a convolution's or dense layer's backward-to-input
    /// has as many as its forward). 0 for the nodes that do no products.
    pub forward_flops: u64,
    pub backward_flops: u64,
}

/// Clears the table and starts timing every pass of every fast network in this process.
pub fn start() {
    if let Ok(mut t) = TABLE.lock() {
        t.clear();
    }
    ON.store(true, Ordering::Relaxed);
}

/// Stops timing and returns the table, by node.
pub fn stop() -> Vec<NodeTime> {
    ON.store(false, Ordering::Relaxed);
    TABLE
        .lock()
        .map(|mut t| std::mem::take(&mut *t))
        .unwrap_or_default()
}

/// The time a node's kernel call starts, when timing is on.
pub(crate) fn begin() -> Option<Instant> {
    ON.load(Ordering::Relaxed).then(Instant::now)
}

/// Adds the call that started at `since` to node `i`'s row (forward or backward).
pub(super) fn end(since: Option<Instant>, i: usize, node: &Node, l: &ShapePlan, backward: bool) {
    if since.is_none() {
        return;
    }
    let flops = flops(node, &l.geoms[i]) * l.images as u64;
    end_stage(
        since,
        i,
        || label(node, &l.geoms[i], l.shapes[i + 1]),
        flops,
        backward,
    );
}

/// Adds the call that started at `since` to row `i` (labelled by `label` when new), with
/// the `flops` of its products: a node's, or one of the ViT's stages.
pub(crate) fn end_stage(
    since: Option<Instant>,
    i: usize,
    label: impl FnOnce() -> String,
    flops: u64,
    backward: bool,
) {
    let Some(t0) = since else { return };
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let Ok(mut t) = TABLE.lock() else { return };
    if t.len() <= i {
        t.resize_with(i + 1, NodeTime::default);
    }
    let row = &mut t[i];
    if row.label.is_empty() {
        row.node = i;
        row.label = label();
    }
    if backward {
        row.backward_ms += ms;
        row.backward_calls += 1;
        row.backward_flops += flops;
    } else {
        row.forward_ms += ms;
        row.forward_calls += 1;
        row.forward_flops += flops;
    }
}

fn label(node: &Node, geom: &Geom, (c, h, w): (usize, usize, usize)) -> String {
    match (node, geom) {
        (Node::Conv { .. }, Geom::Conv(g)) => format!(
            "conv {}→{} {}×{}/{} {}×{}",
            g.cin, g.cout, g.k, g.k, g.stride, g.oh, g.ow
        ),
        (Node::Depthwise { .. }, Geom::Dw(g)) => format!(
            "depthwise {} {}×{}/{} {}×{}",
            g.cout, g.k, g.k, g.stride, g.oh, g.ow
        ),
        (Node::MaxPool { k, stride, .. }, _) => format!("max-pool {c} {k}×{k}/{stride} {h}×{w}"),
        (
            Node::Linear {
                inputs, outputs, ..
            },
            _,
        ) => format!("dense {inputs}→{outputs}"),
        (Node::Add { .. }, _) => format!("add {c} {h}×{w}"),
        (Node::Scale { .. }, _) => format!("scale {c} {h}×{w}"),
        (Node::Concat(vs), _) => format!("concat {} → {c} {h}×{w}", vs.len()),
        (Node::GlobalAvg(_), _) => format!("global-avg {c}"),
        _ => "node".to_string(),
    }
}

fn flops(node: &Node, geom: &Geom) -> u64 {
    let macs = match (node, geom) {
        (Node::Conv { .. }, Geom::Conv(g)) => g.cout * g.oh * g.ow * g.cin * g.k * g.k,
        (Node::Depthwise { .. }, Geom::Dw(g)) => g.cout * g.oh * g.ow * g.k * g.k,
        (
            Node::Linear {
                inputs, outputs, ..
            },
            _,
        ) => inputs * outputs,
        _ => 0,
    };
    2 * macs as u64
}
