//! [`FastNet`]: a graph ready to run, its forward and backward passes over a batch (split
//! into one group per image on the rayon pool), and the [`Saved`] state between them.
//!
//! A pass runs a [`Span`] of the network: the whole of it (input to logits), or a cut of it
//! for a layer tap (`forward_to` / `forward_from`, Grad-CAM): from the input to a tapped
//! value, or from that value (the caller's activation) to the logits, whose backward pass
//! then stops at the tapped value instead of going on to the input.

use super::buffers::{Pool, SavedData};
use super::graph::{Graph, Node, Unsupported, Value};
use super::kernels;
use super::layout::{lay_out, ShapePlan};
use super::profile;
use super::run::{run_backward, run_forward, Forward, Gradients, Incoming};
use super::warm::on_warm_pool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A network ready to run on the fast path.
#[derive(Debug)]
pub struct FastNet {
    graph: Graph,
    layouts: Mutex<HashMap<[usize; 4], Arc<ShapePlan>>>,
    /// Buffer pools, one per pass running at the same time.
    pools: Mutex<Vec<Pool>>,
    saved_pool: Arc<Mutex<Vec<SavedData>>>,
}

/// A stretch of the network, from value `from` (the tensor a pass is given: `0` for the
/// input batch) to value `to` (what it returns: the logits for [`FastNet::whole`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    pub from: Value,
    pub to: Value,
}

/// The values of one group of images at `to`, and what it keeps for the backward pass.
type GroupOutput = (Vec<f32>, Option<Part>);

/// What one group of images of a tracked forward pass keeps.
#[derive(Debug)]
struct Part {
    layout: Arc<ShapePlan>,
    data: Option<SavedData>,
}

/// The state a tracked forward pass leaves for the backward pass. Dropping it returns its
/// buffers to the network's pool.
#[derive(Debug)]
pub struct Saved {
    parts: Vec<Part>,
    /// The image batch's shape.
    shape: [usize; 4],
    span: Span,
    /// The shape of the batch's value at `span.from` (what the backward pass returns).
    from_shape: [usize; 4],
    home: Arc<Mutex<Vec<SavedData>>>,
}

impl Drop for Saved {
    fn drop(&mut self) {
        if let Ok(mut h) = self.home.lock() {
            h.extend(self.parts.iter_mut().filter_map(|p| p.data.take()));
        }
    }
}

impl FastNet {
    /// Wraps a finished graph (its last value is the logits).
    pub fn new(graph: Graph) -> Self {
        Self {
            graph,
            layouts: Mutex::new(HashMap::new()),
            pools: Mutex::new(Vec::new()),
            saved_pool: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn layout(&self, shape: [usize; 4]) -> Result<Arc<ShapePlan>, Unsupported> {
        let mut m = self
            .layouts
            .lock()
            .map_err(|_| Unsupported("poisoned layout cache".into()))?;
        if let Some(l) = m.get(&shape) {
            return Ok(l.clone());
        }
        let l = Arc::new(lay_out(&self.graph.nodes, shape)?);
        m.insert(shape, l.clone());
        Ok(l)
    }

    /// Whether the network can run on a batch of this shape, and if not, why.
    pub fn check(&self, shape: [usize; 4]) -> Result<(), Unsupported> {
        if self.graph.nodes.is_empty() {
            return Err(Unsupported("empty graph".into()));
        }
        self.layout(shape).map(|_| ())
    }

    /// The fast value computing value `source` of the graph the network was lowered from
    /// (see [`Graph::source_value`]).
    pub fn source_value(&self, source: usize) -> Option<Value> {
        self.graph.source_value(source)
    }

    /// The whole network: input to logits.
    pub fn whole(&self) -> Span {
        Span {
            from: 0,
            to: self.graph.nodes.len(),
        }
    }

    /// Whether `span` can run on a batch of images of `shape`, and if not, why: the layout
    /// must exist, `from < to`, and no layer of the span may read a value before `from`
    /// (`from` must be a cut of the network, so that the span is computed from it alone).
    pub fn check_span(&self, span: Span, shape: [usize; 4]) -> Result<(), Unsupported> {
        self.check(shape)?;
        let nodes = &self.graph.nodes;
        if span.from >= span.to || span.to > nodes.len() {
            return Err(Unsupported(format!(
                "no span from value {} to value {} in a graph of {} layers",
                span.from,
                span.to,
                nodes.len()
            )));
        }
        let reads_before = nodes[span.from..span.to]
            .iter()
            .any(|n| n.inputs().iter().any(|&u| u < span.from));
        if reads_before {
            return Err(Unsupported(format!(
                "value {} is not a cut of the fast graph (a later layer reads an earlier value)",
                span.from
            )));
        }
        Ok(())
    }

    /// The shape `[N, C, H, W]` of value `v` for a batch of images of `shape` (a dense
    /// layer's output is `[N, outputs, 1, 1]`).
    pub fn value_shape(&self, shape: [usize; 4], v: Value) -> Result<[usize; 4], Unsupported> {
        let [n, c, h, w] = shape;
        let l = self.layout([1, c, h, w])?;
        let &(vc, vh, vw) = l
            .shapes
            .get(v)
            .ok_or_else(|| Unsupported(format!("no value {v} in the fast graph")))?;
        Ok([n, vc, vh, vw])
    }

    /// Output width (classes) for an input shape.
    pub fn output_size(&self, shape: [usize; 4]) -> Result<usize, Unsupported> {
        let l = self.layout(shape)?;
        let (c, h, w) = l.shapes[self.graph.nodes.len()];
        Ok(c * h * w)
    }

    /// Forward pass of a contiguous `[N, C, H, W]` batch; the logits `[N, classes]`, and
    /// with `save` what the backward pass needs.
    pub fn forward(
        &self,
        x: &[f32],
        shape: [usize; 4],
        save: bool,
    ) -> Result<(Vec<f32>, Option<Saved>), Unsupported> {
        self.forward_span(x, shape, self.whole(), save)
    }

    /// Forward pass of `span` for a batch of images of `shape`: `x` is the batch's value at
    /// `span.from` (contiguous, [`FastNet::value_shape`]), the result its value at
    /// `span.to`, and with `save` what the backward pass needs to go back to `span.from`.
    pub fn forward_span(
        &self,
        x: &[f32],
        shape: [usize; 4],
        span: Span,
        save: bool,
    ) -> Result<(Vec<f32>, Option<Saved>), Unsupported> {
        // The whole pass runs on pool threads, so that each layer's parallel loop is shared
        // out by work stealing rather than injected from outside the pool (one sleeping
        // caller and two wake-ups per layer), with the other threads kept awake on it
        // (`fast/warm.rs`). A batch is split into groups of one image,
        // each run through the whole network: the threads then meet only when a group runs
        // out of work, not at every layer. A group's activations then stay in the shared
        // cache (Lite0's largest is 4.8 MB per image; a group of four images per thread
        // would not fit two threads' worth in 32 MB), and idle threads steal whole images.
        // Measured on Lite0 at batch 8, 2 threads: forward 55 → 52 ms, forward + backward
        // 121 → 115 ms (best of 20) against one group per thread.
        self.check_span(span, shape)?;
        let [n, c, h, w] = shape;
        let ranges: Vec<(usize, usize)> = (0..n).map(|a| (a, a + 1)).collect();
        // Lay out every group's shape first (the cache is shared).
        for &(a, b) in &ranges {
            self.layout([b - a, c, h, w])?;
        }
        let from_shape = self.value_shape(shape, span.from)?;
        let img: usize = from_shape[1..].iter().product();
        if x.len() != n * img {
            return Err(Unsupported(format!(
                "a value of {} floats where the batch's value {} has {}",
                x.len(),
                span.from,
                n * img
            )));
        }
        let results: Vec<Result<GroupOutput, Unsupported>> = on_warm_pool(|| {
            use rayon::prelude::*;
            ranges
                .par_iter()
                .map(|&(a, b)| {
                    self.forward_group(&x[a * img..b * img], [b - a, c, h, w], span, save)
                })
                .collect()
        });
        let mut out = Vec::new();
        let mut parts = Vec::new();
        for r in results {
            let (lg, part) = r?;
            out.extend(lg);
            parts.extend(part);
        }
        let saved = save.then(|| Saved {
            parts,
            shape,
            span,
            from_shape,
            home: self.saved_pool.clone(),
        });
        Ok((out, saved))
    }

    fn take_pool(&self) -> Pool {
        self.pools
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_default()
    }

    fn return_pool(&self, pool: Pool) {
        if let Ok(mut p) = self.pools.lock() {
            p.push(pool);
        }
    }

    fn forward_group(
        &self,
        x: &[f32],
        shape: [usize; 4],
        span: Span,
        save: bool,
    ) -> Result<GroupOutput, Unsupported> {
        let layout = self.layout(shape)?;
        let l = &*layout;
        let nodes = &self.graph.nodes;
        if x.len() != l.size(span.from) {
            return Err(Unsupported("input size does not match its shape".into()));
        }
        let mut saved = if save {
            let mut d = self
                .saved_pool
                .lock()
                .ok()
                .and_then(|mut p| p.pop())
                .unwrap_or_default();
            d.masks.resize_with(nodes.len(), Vec::new);
            d.argmax.resize_with(nodes.len(), Vec::new);
            d.floats.resize_with(nodes.len(), Vec::new);
            Some(d)
        } else {
            None
        };
        let mut pool = self.take_pool();
        let mut vals: Vec<Option<Vec<f32>>> = (0..=nodes.len()).map(|_| None).collect();
        let (mut masks, mut argmaxes, mut floats) = match saved.as_mut() {
            Some(s) => (Some(&mut s.masks), Some(&mut s.argmax), Some(&mut s.floats)),
            None => (None, None, None),
        };
        let Span { from, to } = span;
        for (i, node) in nodes.iter().enumerate().take(to).skip(from) {
            let v = i + 1;
            // A concatenation whose inputs were written into it in place has nothing left
            // to do; such an input is written into the concatenation's buffer.
            if matches!(node, Node::Concat(_)) && vals[v].is_some() {
                continue;
            }
            let place = l.in_place(v, from, to);
            let mut out = match place {
                Some(p) => vals[p.concat]
                    .take()
                    .unwrap_or_else(|| pool.get(l.size(p.concat))),
                None => pool.get(l.size(v)),
            };
            let window = match place {
                Some(p) => p.offset..p.offset + l.size(v),
                None => 0..out.len(),
            };
            let mask = match masks.as_deref_mut() {
                Some(ms) if node.act().has_mask() => {
                    let m = &mut ms[i];
                    m.resize(l.size(v), 0);
                    Some(&mut m[..])
                }
                _ => None,
            };
            let argmax = argmaxes.as_deref_mut().map(|a| &mut a[i]);
            let saved_floats = floats.as_deref_mut().map(|f| &mut f[i]);
            {
                let get = |u: Value| -> &[f32] {
                    if u == from {
                        x
                    } else {
                        vals[u].as_deref().unwrap_or(&[])
                    }
                };
                let to = Forward {
                    out: &mut out[window],
                    mask,
                    argmax,
                    floats: saved_floats,
                };
                let t0 = profile::begin();
                run_forward(node, &l.geoms[i], l, v, get, to);
                profile::end(t0, i, node, l, false);
            }
            match place {
                Some(p) => vals[p.concat] = Some(out),
                None => vals[v] = Some(out),
            }
            for u in node.inputs() {
                if u != from && l.last_use[u] == i {
                    if let Some(b) = vals[u].take() {
                        pool.put(b);
                    }
                }
            }
        }
        let out = vals[to].take().unwrap_or_default();
        let result = out[..l.size(to)].to_vec();
        pool.put(out);
        for b in vals.into_iter().flatten() {
            pool.put(b);
        }
        self.return_pool(pool);
        let part = saved.map(|d| Part {
            layout,
            data: Some(d),
        });
        Ok((result, part))
    }

    /// Backward pass: the gradient of the batch's value at the span's `from` (the input
    /// batch for [`FastNet::forward`]) given the gradient of its value at `to` (the logits).
    /// With `guided`, every ReLU / ReLU6 passes back only the positive part of its masked
    /// gradient (guided backpropagation, Springenberg et al. 2015): `g · [0 < x ≤ 6] · [g > 0]`.
    pub fn backward(&self, saved: &Saved, dlogits: &[f32], guided: bool) -> Vec<f32> {
        let [n, c, h, w] = saved.from_shape;
        let img = c * h * w;
        let classes = dlogits.len() / n.max(1);
        let mut dx = vec![0.0; n * img];
        on_warm_pool(|| {
            use rayon::prelude::*;
            let mut rest = &mut dx[..];
            let mut first = 0;
            let mut jobs = Vec::new();
            for part in &saved.parts {
                let k = part.layout.images;
                let (mine, tail) = rest.split_at_mut(k * img);
                jobs.push((part, mine, &dlogits[first * classes..(first + k) * classes]));
                rest = tail;
                first += k;
            }
            jobs.into_par_iter()
                .for_each(|(part, out, dl)| self.backward_group(part, saved.span, dl, out, guided));
        });
        dx
    }

    fn backward_group(
        &self,
        part: &Part,
        span: Span,
        dlogits: &[f32],
        out: &mut [f32],
        guided: bool,
    ) {
        let l = &*part.layout;
        let nodes = &self.graph.nodes;
        let empty = SavedData::default();
        let data = part.data.as_ref().unwrap_or(&empty);
        let mut pool = self.take_pool();
        let mut grads: Vec<Option<Vec<f32>>> = (0..=nodes.len()).map(|_| None).collect();
        let Span { from, to } = span;
        let m = l.size(to);
        let mut top = pool.get(m);
        top[..m].copy_from_slice(&dlogits[..m]);
        grads[to] = Some(top);
        // Values whose gradient already had its activation mask applied by their only reader.
        let mut premasked = vec![false; nodes.len() + 1];
        let mask_of = |v: Value| -> Option<&[u8]> {
            let i = v.checked_sub(1)?;
            if !nodes[i].act().has_mask() {
                return None;
            }
            data.masks.get(i).map(|m| &m[..]).filter(|m| !m.is_empty())
        };
        // The gradient of a concatenation whose inputs were written into it in place, kept
        // whole while its inputs' backward passes read their parts of it, and how many of
        // them have yet to.
        let mut held: Vec<Option<Vec<f32>>> = (0..=nodes.len()).map(|_| None).collect();
        let mut pending = vec![0usize; nodes.len() + 1];
        for (i, node) in nodes.iter().enumerate().take(to).skip(from).rev() {
            let v = i + 1;
            let place = l.in_place(v, from, to);
            // `window`: where this value's gradient is in `g`; `shared`: the concatenation
            // whose gradient `g` is, when this value was written into it in place.
            let (mut g, window, shared) = match (grads[v].take(), place) {
                (Some(g), _) => {
                    let n = g.len();
                    (g, 0..n, None)
                }
                (None, Some(p)) => match held[p.concat].take() {
                    Some(g) => (g, p.offset..p.offset + l.size(v), Some(p.concat)),
                    None => continue,
                },
                (None, None) => continue,
            };
            if let Node::Concat(vs) = node {
                if vs
                    .first()
                    .is_some_and(|&u| l.in_place(u, from, to).is_some())
                {
                    pending[v] = vs.len();
                    held[v] = Some(g);
                    continue;
                }
            }
            let mut mask = mask_of(v);
            // A smooth activation's derivative is applied first, guided or not (guided
            // backpropagation's rule is for the ReLU family, as on the plain path).
            if node.act().is_smooth() {
                if let Some(d) = data.floats.get(i).filter(|d| !d.is_empty()) {
                    kernels::smooth::apply_derivative(&mut g[window.clone()][..l.size(v)], d);
                }
            }
            // Depthwise reads its mask inside the kernel; everything else masks first. The
            // guided rule is applied here, never inside a kernel.
            let depthwise = matches!(node, Node::Depthwise { .. }) && !guided;
            if let (Some(m), false, false) = (mask, depthwise, premasked[v]) {
                if guided {
                    kernels::apply_guided_mask(&mut g[window.clone()], m);
                    mask = None;
                } else {
                    kernels::apply_mask(&mut g[window.clone()], m);
                }
            }
            // A layer that is the only reader of a masked value applies that value's mask as
            // it writes the gradient, in the same pass (not at `from`, whose gradient is
            // returned as it is: the gradient of the activation's output). The guided rule
            // is applied at the value instead, never inside a kernel.
            let premask = |u: Value, grads: &[Option<Vec<f32>>]| {
                !guided && u != from && l.readers[u] == 1 && grads[u].is_none()
            };
            let input_masks: Vec<Option<&[u8]>> = match node {
                Node::Depthwise { .. }
                | Node::Conv { .. }
                | Node::MaxPool { .. }
                | Node::Concat(_) => node
                    .inputs()
                    .into_iter()
                    .map(|u| {
                        if premask(u, &grads) {
                            mask_of(u).inspect(|_| premasked[u] = true)
                        } else {
                            None
                        }
                    })
                    .collect(),
                _ => Vec::new(),
            };
            // A sum passes its gradient on unchanged: the first input with no gradient yet
            // takes the buffer itself, the other a copy (or a sum into its own).
            if let Node::Add { a, b, .. } = *node {
                if a != b && (grads[a].is_none() || grads[b].is_none()) {
                    let (own, other) = if grads[a].is_none() { (a, b) } else { (b, a) };
                    let size = l.size(v);
                    let (mut dx, acc) = match grads[other].take() {
                        Some(d) => (d, true),
                        None => (pool.get(l.size(other)), false),
                    };
                    kernels::add_into(&mut dx[..size], &g[..size], acc);
                    grads[other] = Some(dx);
                    grads[own] = Some(g);
                    continue;
                }
            }
            let incoming = Incoming {
                g: &g[window],
                mask,
                input_masks,
                argmax: data.argmax.get(i),
                floats: data.floats.get(i).map(|f| &f[..]),
            };
            let mut slots = Gradients {
                grads: &mut grads,
                pool: &mut pool,
            };
            let t0 = profile::begin();
            run_backward(node, &l.geoms[i], l, incoming, &mut slots);
            profile::end(t0, i, node, l, true);
            match shared {
                Some(c) if pending[c] > 1 => {
                    pending[c] -= 1;
                    held[c] = Some(g);
                }
                _ => pool.put(g),
            }
        }
        match grads[from].take() {
            Some(dx) => {
                out.copy_from_slice(&dx[..out.len()]);
                pool.put(dx);
            }
            // Nothing in the span read `from` (a tap the output does not depend on).
            None => out.fill(0.0),
        }
        for b in grads.into_iter().chain(held).flatten() {
            pool.put(b);
        }
        self.return_pool(pool);
    }
}

impl Saved {
    /// Shape of the input batch of the forward pass that saved this.
    pub fn input_shape(&self) -> [usize; 4] {
        self.shape
    }

    /// Shape of the value the backward pass returns the gradient of (the batch's value at
    /// the span's `from`; the input batch for a whole-network pass).
    pub fn grad_shape(&self) -> [usize; 4] {
        self.from_shape
    }
}
