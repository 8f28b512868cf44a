//! The fast path: forward and backward-to-input of a whole CNN over netlens's own kernels.
//!
//! A model that is made only of the layers listed in [`Graph`] (dense, 1×1 and depthwise
//! convolutions with a fused ReLU/ReLU6, residual adds, max-pool, channel concatenation,
//! global average pool, dense layers) describes itself once as a graph; the engine runs
//! that graph as a single burn autodiff operation (see `engine::fast_forward`), so methods
//! keep seeing one [`Classifier`](crate::Classifier) interface and burn's autodiff still
//! differentiates whatever objective they put on the logits.
//!
//! Only input gradients are computed — weights are constants — so the backward pass needs no
//! activations, only each activation's 0/1 gradient mask (one byte per element) and each
//! max-pool's argmax, saved by the forward pass. Activation and gradient buffers come from a
//! pool sized by the first pass at a given input shape and reused afterwards.

pub mod kernels;

use kernels::{Act, ConvGeom, PoolGeom};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A value of the graph: `0` is the network input, `i + 1` the output of node `i`.
pub type Value = usize;

/// Padding of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pad {
    /// TensorFlow "SAME": output = ceil(input / stride), the extra pixel right/bottom.
    Same,
    /// Symmetric padding.
    Explicit(usize),
    /// `[top, left, bottom, right]` (an ONNX `Pad` before a convolution, TF "SAME" written
    /// out for one input size).
    Asym([usize; 4]),
}

/// A convolution's weights (BatchNorm already folded in) and wiring.
#[derive(Debug, Clone)]
pub struct ConvParams {
    /// `[cout, cin / groups, k, k]`, row-major.
    pub weight: Vec<f32>,
    /// `[cout]` (zeros when the layer has none).
    pub bias: Vec<f32>,
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub groups: usize,
    pub pad: Pad,
}

#[derive(Debug)]
enum Node {
    /// Dense convolution; `weight_t` is the flipped, transposed kernel
    /// `[cin, cout·k·k]` that turns the stride-1 backward pass of a k > 1 kernel into a
    /// forward convolution (empty for other convolutions, which do not use it).
    Conv {
        x: Value,
        p: ConvParams,
        act: Act,
        weight_t: Vec<f32>,
    },
    /// Depthwise convolution; `flipped` holds every kernel rotated by 180°.
    Depthwise {
        x: Value,
        p: ConvParams,
        act: Act,
        flipped: Vec<f32>,
    },
    Add(Value, Value),
    MaxPool {
        x: Value,
        k: usize,
        stride: usize,
        pad: usize,
        ceil: bool,
    },
    Concat(Vec<Value>),
    GlobalAvg(Value),
    /// `y = x Wᵀ + b` on the flattened per-image value; `weight` is `[out, in]`.
    Linear {
        x: Value,
        weight: Vec<f32>,
        bias: Vec<f32>,
        inputs: usize,
        outputs: usize,
        act: Act,
        /// Required spatial size of the input (`None`: any with the right element count).
        spatial: Option<(usize, usize)>,
    },
}

impl Node {
    fn inputs(&self) -> Vec<Value> {
        match self {
            Node::Conv { x, .. }
            | Node::Depthwise { x, .. }
            | Node::MaxPool { x, .. }
            | Node::GlobalAvg(x)
            | Node::Linear { x, .. } => vec![*x],
            Node::Add(a, b) => vec![*a, *b],
            Node::Concat(v) => v.clone(),
        }
    }
    fn act(&self) -> Act {
        match self {
            Node::Conv { act, .. } | Node::Depthwise { act, .. } | Node::Linear { act, .. } => *act,
            _ => Act::None,
        }
    }
}

/// A network described for the fast path, built layer by layer by a model.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: Vec<Node>,
}

/// Why a layer cannot be put on the fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl Graph {
    /// An empty graph whose value `0` is the input image batch.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, n: Node) -> Value {
        self.nodes.push(n);
        self.nodes.len()
    }

    /// A convolution followed by `act`: dense (`groups = 1`) or depthwise
    /// (`groups = cin = cout`); other groupings are not supported.
    pub fn conv(&mut self, x: Value, p: ConvParams, act: Act) -> Result<Value, Unsupported> {
        let k = p.k;
        if p.weight.len() != p.cout * (p.cin / p.groups.max(1)) * k * k || p.bias.len() != p.cout {
            return Err(Unsupported("convolution weights of the wrong size".into()));
        }
        if p.groups == 1 {
            // weight_t[ci][co][ky][kx] = weight[co][ci][k-1-ky][k-1-kx]. The backward pass
            // is then a convolution of the gradient (its im2col moves cout·k² values per
            // pixel); with few input channels Wᵀ·dy + col2im moves cin·k² instead (VGG16's
            // first layer, 3 → 64 channels at 224²: 11.6 → 2.9 ms per image, 2 threads).
            let flipped_backward = p.stride == 1 && k > 1 && 4 * p.cin > p.cout;
            let mut wt = vec![0.0; if flipped_backward { p.weight.len() } else { 0 }];
            for co in (0..p.cout).filter(|_| flipped_backward) {
                for ci in 0..p.cin {
                    for t in 0..k * k {
                        wt[(ci * p.cout + co) * k * k + (k * k - 1 - t)] =
                            p.weight[(co * p.cin + ci) * k * k + t];
                    }
                }
            }
            Ok(self.push(Node::Conv {
                x,
                p,
                act,
                weight_t: wt,
            }))
        } else if p.groups == p.cin && p.cin == p.cout {
            let kk = k * k;
            let mut flipped = p.weight.clone();
            for c in 0..p.cout {
                flipped[c * kk..(c + 1) * kk].reverse();
            }
            Ok(self.push(Node::Depthwise { x, p, act, flipped }))
        } else {
            Err(Unsupported(format!(
                "grouped convolution with {} groups of {} channels",
                p.groups,
                p.cin / p.groups.max(1)
            )))
        }
    }

    /// Number of nodes, which is also the last value's index.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Elementwise sum of two values of the same shape.
    pub fn add(&mut self, a: Value, b: Value) -> Value {
        self.push(Node::Add(a, b))
    }

    /// PyTorch's `MaxPool2d(k, stride, pad, ceil_mode)`.
    pub fn max_pool(&mut self, x: Value, k: usize, stride: usize, pad: usize, ceil: bool) -> Value {
        self.push(Node::MaxPool {
            x,
            k,
            stride,
            pad,
            ceil,
        })
    }

    /// Concatenation along channels.
    pub fn concat(&mut self, values: Vec<Value>) -> Value {
        self.push(Node::Concat(values))
    }

    /// Mean over the spatial dimensions: `[C, H, W]` → `[C, 1, 1]`.
    pub fn global_avg(&mut self, x: Value) -> Value {
        self.push(Node::GlobalAvg(x))
    }

    /// A dense layer on the flattened value (`weight` is PyTorch's `[out, in]`); with
    /// `spatial`, only inputs of that `(h, w)` are accepted (other sizes fall back to the
    /// plain path, e.g. where an adaptive pool would not be the identity).
    #[allow(clippy::too_many_arguments)]
    pub fn linear(
        &mut self,
        x: Value,
        weight: Vec<f32>,
        bias: Vec<f32>,
        inputs: usize,
        outputs: usize,
        act: Act,
        spatial: Option<(usize, usize)>,
    ) -> Result<Value, Unsupported> {
        if weight.len() != inputs * outputs || bias.len() != outputs {
            return Err(Unsupported("dense layer weights of the wrong size".into()));
        }
        Ok(self.push(Node::Linear {
            x,
            weight,
            bias,
            inputs,
            outputs,
            act,
            spatial,
        }))
    }
}

/// Per-node geometry at one input shape.
#[derive(Debug, Clone)]
enum Geom {
    Conv(ConvGeom),
    Dw(ConvGeom),
    Pool(PoolGeom),
    None,
}

/// The graph laid out for one input shape `[N, C, H, W]`.
#[derive(Debug)]
struct Layout {
    images: usize,
    /// `(c, h, w)` of every value.
    shapes: Vec<(usize, usize, usize)>,
    geoms: Vec<Geom>,
    /// The last node reading each value (`usize::MAX` for the output, never freed).
    last_use: Vec<usize>,
    /// How many nodes read each value.
    readers: Vec<usize>,
}

impl Layout {
    fn size(&self, v: Value) -> usize {
        let (c, h, w) = self.shapes[v];
        self.images * c * h * w
    }
}

fn same_pad(len: usize, k: usize, s: usize) -> (usize, usize) {
    let out = len.div_ceil(s);
    let total = ((out - 1) * s + k).saturating_sub(len);
    (out, total / 2)
}

fn lay_out(nodes: &[Node], shape: [usize; 4]) -> Result<Layout, Unsupported> {
    let [images, c0, h0, w0] = shape;
    let mut shapes = vec![(c0, h0, w0)];
    let mut geoms = Vec::with_capacity(nodes.len());
    let bad = |m: String| Err(Unsupported(m));
    for (i, n) in nodes.iter().enumerate() {
        let (shape, geom) = match n {
            Node::Conv { x, p, .. } | Node::Depthwise { x, p, .. } => {
                let (c, h, w) = shapes[*x];
                if c != p.cin {
                    return bad(format!(
                        "node {i}: {c} channels into a {}-channel conv",
                        p.cin
                    ));
                }
                let (oh, ow, pt, pl) = match p.pad {
                    Pad::Same => {
                        let (oh, pt) = same_pad(h, p.k, p.stride);
                        let (ow, pl) = same_pad(w, p.k, p.stride);
                        (oh, ow, pt, pl)
                    }
                    Pad::Explicit(q) | Pad::Asym([q, _, _, _]) => {
                        let [t, l, b, r] = match p.pad {
                            Pad::Asym(a) => a,
                            _ => [q; 4],
                        };
                        if matches!(p.pad, Pad::Asym(_)) && [t, l, b, r].iter().any(|&x| x >= p.k) {
                            return bad(format!("node {i}: padding as large as the kernel"));
                        }
                        if h + t + b < p.k || w + l + r < p.k {
                            return bad(format!("node {i}: input smaller than the kernel"));
                        }
                        (
                            (h + t + b - p.k) / p.stride + 1,
                            (w + l + r - p.k) / p.stride + 1,
                            t,
                            l,
                        )
                    }
                };
                let g = ConvGeom {
                    cin: c,
                    cout: p.cout,
                    k: p.k,
                    stride: p.stride,
                    pt,
                    pl,
                    h,
                    w,
                    oh,
                    ow,
                };
                let g = if matches!(n, Node::Conv { .. }) {
                    Geom::Conv(g)
                } else {
                    if p.pad != Pad::Same && pt >= p.k {
                        return bad(format!("node {i}: padding as large as the kernel"));
                    }
                    if p.k > kernels::MAX_DEPTHWISE_KERNEL {
                        return bad(format!("node {i}: depthwise kernel of {} pixels", p.k));
                    }
                    Geom::Dw(g)
                };
                ((p.cout, oh, ow), g)
            }
            Node::Add(a, b) => {
                if shapes[*a] != shapes[*b] {
                    return bad(format!("node {i}: adding values of different shapes"));
                }
                (shapes[*a], Geom::None)
            }
            Node::MaxPool {
                x,
                k,
                stride,
                pad,
                ceil,
            } => {
                let (c, h, w) = shapes[*x];
                let out = |len: usize| -> Option<usize> {
                    let span = (len + 2 * pad).checked_sub(*k)?;
                    let mut o = if *ceil {
                        span.div_ceil(*stride) + 1
                    } else {
                        span / stride + 1
                    };
                    if *ceil && (o - 1) * stride >= len + pad {
                        o -= 1;
                    }
                    Some(o)
                };
                let (Some(oh), Some(ow)) = (out(h), out(w)) else {
                    return bad(format!("node {i}: input smaller than the pooling window"));
                };
                (
                    (c, oh, ow),
                    Geom::Pool(PoolGeom {
                        k: *k,
                        stride: *stride,
                        pad: *pad,
                        h,
                        w,
                        oh,
                        ow,
                    }),
                )
            }
            Node::Concat(vs) => {
                let (_, h, w) = shapes[vs[0]];
                if vs.iter().any(|v| (shapes[*v].1, shapes[*v].2) != (h, w)) {
                    return bad(format!("node {i}: concatenating different sizes"));
                }
                ((vs.iter().map(|v| shapes[*v].0).sum(), h, w), Geom::None)
            }
            Node::GlobalAvg(x) => ((shapes[*x].0, 1, 1), Geom::None),
            Node::Linear {
                x,
                inputs,
                outputs,
                spatial,
                ..
            } => {
                let (c, h, w) = shapes[*x];
                if spatial.is_some_and(|s| s != (h, w)) {
                    return bad(format!("node {i}: dense layer on a {h}x{w} map"));
                }
                if c * h * w != *inputs {
                    return bad(format!(
                        "node {i}: {} features into a {inputs}-input dense layer",
                        c * h * w
                    ));
                }
                ((*outputs, 1, 1), Geom::None)
            }
        };
        shapes.push(shape);
        geoms.push(geom);
    }
    let mut last_use = vec![0; nodes.len() + 1];
    let mut readers = vec![0; nodes.len() + 1];
    for (i, n) in nodes.iter().enumerate() {
        for v in n.inputs() {
            last_use[v] = last_use[v].max(i);
            readers[v] += 1;
        }
    }
    last_use[nodes.len()] = usize::MAX;
    Ok(Layout {
        images,
        shapes,
        geoms,
        last_use,
        readers,
    })
}

/// Reusable float buffers; a deterministic sequence of requests reuses the same buffers
/// every pass, so loops do not allocate after their first iteration.
#[derive(Debug, Default)]
struct Pool {
    free: Vec<Vec<f32>>,
}

impl Pool {
    /// A buffer of at least `n` floats with arbitrary contents (callers use `[..n]`).
    /// Buffers are never shortened, so reusing one costs no zero-filling.
    fn get(&mut self, n: usize) -> Vec<f32> {
        let pick = self
            .free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() >= n)
            .min_by_key(|(_, b)| b.len())
            .map(|(i, _)| i)
            .or_else(|| {
                self.free
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, b)| b.len())
                    .map(|(i, _)| i)
            });
        let mut b = match pick {
            Some(i) => self.free.swap_remove(i),
            None => Vec::new(),
        };
        if b.len() < n {
            b.resize(n, 0.0);
        }
        b
    }
    fn put(&mut self, b: Vec<f32>) {
        self.free.push(b);
    }
}

/// What a forward pass keeps for its backward pass: activation masks and pooling argmaxes.
#[derive(Debug, Default)]
struct SavedData {
    masks: Vec<Vec<u8>>,
    argmax: Vec<Vec<u32>>,
}

/// A network ready to run on the fast path.
#[derive(Debug)]
pub struct FastNet {
    graph: Graph,
    layouts: Mutex<HashMap<[usize; 4], Arc<Layout>>>,
    /// Buffer pools, one per pass running at the same time.
    pools: Mutex<Vec<Pool>>,
    saved_pool: Arc<Mutex<Vec<SavedData>>>,
}

/// The logits of one group of images, and what it keeps for the backward pass.
type GroupOutput = (Vec<f32>, Option<Part>);

/// What one group of images of a tracked forward pass keeps.
#[derive(Debug)]
struct Part {
    layout: Arc<Layout>,
    data: Option<SavedData>,
}

/// The state a tracked forward pass leaves for the backward pass. Dropping it returns its
/// buffers to the network's pool.
#[derive(Debug)]
pub struct Saved {
    parts: Vec<Part>,
    shape: [usize; 4],
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

    fn layout(&self, shape: [usize; 4]) -> Result<Arc<Layout>, Unsupported> {
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
        // The whole pass runs on pool threads, so that each layer's parallel loop is shared
        // out by work stealing rather than injected from outside the pool (one sleeping
        // caller and two wake-ups per layer). A batch is split into groups (see `groups`),
        // each run through the whole network: the threads then meet only when a group runs
        // out of work, not at every layer.
        let [n, c, h, w] = shape;
        let groups = self.groups(n);
        let per = n.div_ceil(groups);
        let ranges: Vec<(usize, usize)> = (0..n)
            .step_by(per.max(1))
            .map(|a| (a, (a + per).min(n)))
            .collect();
        // Lay out every group's shape first (the cache is shared).
        for &(a, b) in &ranges {
            self.layout([b - a, c, h, w])?;
        }
        let img = c * h * w;
        let results: Vec<Result<GroupOutput, Unsupported>> = rayon::join(
            || {
                use rayon::prelude::*;
                ranges
                    .par_iter()
                    .map(|&(a, b)| self.forward_group(&x[a * img..b * img], [b - a, c, h, w], save))
                    .collect()
            },
            || (),
        )
        .0;
        let mut logits = Vec::new();
        let mut parts = Vec::new();
        for r in results {
            let (lg, part) = r?;
            logits.extend(lg);
            parts.extend(part);
        }
        let saved = save.then(|| Saved {
            parts,
            shape,
            home: self.saved_pool.clone(),
        });
        Ok((logits, saved))
    }

    /// How many groups a batch of `n` images is split into: one per image. A group's
    /// activations then stay in the shared cache (Lite0's largest is 4.8 MB per image; a
    /// group of four images per thread would not fit two threads' worth in 32 MB), and
    /// idle threads steal whole images. Measured on Lite0 at batch 8, 2 threads: forward
    /// 55 → 52 ms, forward + backward 121 → 115 ms (best of 20) against one group per thread.
    fn groups(&self, n: usize) -> usize {
        n.max(1)
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
        save: bool,
    ) -> Result<GroupOutput, Unsupported> {
        let layout = self.layout(shape)?;
        let l = &*layout;
        let nodes = &self.graph.nodes;
        if x.len() != l.size(0) {
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
            Some(d)
        } else {
            None
        };
        let mut pool = self.take_pool();
        let mut vals: Vec<Option<Vec<f32>>> = (0..=nodes.len()).map(|_| None).collect();
        let (mut masks, mut argmaxes) = match saved.as_mut() {
            Some(s) => (Some(&mut s.masks), Some(&mut s.argmax)),
            None => (None, None),
        };
        for (i, node) in nodes.iter().enumerate() {
            let v = i + 1;
            let mut out = pool.get(l.size(v));
            let mask = match masks.as_deref_mut() {
                Some(ms) if node.act() != Act::None => {
                    let m = &mut ms[i];
                    m.resize(l.size(v), 0);
                    Some(&mut m[..])
                }
                _ => None,
            };
            let argmax = argmaxes.as_deref_mut().map(|a| &mut a[i]);
            {
                let get = |u: Value| -> &[f32] {
                    if u == 0 {
                        x
                    } else {
                        vals[u].as_deref().unwrap_or(&[])
                    }
                };
                run_forward(node, &l.geoms[i], l, v, get, &mut out, mask, argmax);
            }
            vals[v] = Some(out);
            for u in node.inputs() {
                if u != 0 && l.last_use[u] == i {
                    if let Some(b) = vals[u].take() {
                        pool.put(b);
                    }
                }
            }
        }
        let out = vals[nodes.len()].take().unwrap_or_default();
        let logits = out[..l.size(nodes.len())].to_vec();
        pool.put(out);
        for b in vals.into_iter().flatten() {
            pool.put(b);
        }
        self.return_pool(pool);
        let part = saved.map(|d| Part {
            layout,
            data: Some(d),
        });
        Ok((logits, part))
    }

    /// Backward pass: the gradient of the input batch given the gradient of the logits.
    pub fn backward(&self, saved: &Saved, dlogits: &[f32]) -> Vec<f32> {
        let [n, c, h, w] = saved.shape;
        let img = c * h * w;
        let classes = dlogits.len() / n.max(1);
        let mut dx = vec![0.0; n * img];
        rayon::join(
            || {
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
                    .for_each(|(part, out, dl)| self.backward_group(part, dl, out));
            },
            || (),
        );
        dx
    }

    fn backward_group(&self, part: &Part, dlogits: &[f32], out: &mut [f32]) {
        let l = &*part.layout;
        let nodes = &self.graph.nodes;
        let empty = SavedData::default();
        let data = part.data.as_ref().unwrap_or(&empty);
        let mut pool = self.take_pool();
        let mut grads: Vec<Option<Vec<f32>>> = (0..=nodes.len()).map(|_| None).collect();
        let m = l.size(nodes.len());
        let mut top = pool.get(m);
        top[..m].copy_from_slice(&dlogits[..m]);
        grads[nodes.len()] = Some(top);
        // Values whose gradient already had its activation mask applied by their only reader.
        let mut premasked = vec![false; nodes.len() + 1];
        let mask_of = |v: Value| -> Option<&[u8]> {
            let i = v.checked_sub(1)?;
            if nodes[i].act() == Act::None {
                return None;
            }
            data.masks.get(i).map(|m| &m[..]).filter(|m| !m.is_empty())
        };
        for (i, node) in nodes.iter().enumerate().rev() {
            let v = i + 1;
            let Some(mut g) = grads[v].take() else {
                continue;
            };
            let mask = mask_of(v);
            // Depthwise reads its mask inside the kernel; everything else masks first.
            let depthwise = matches!(node, Node::Depthwise { .. });
            if let (Some(m), false, false) = (mask, depthwise, premasked[v]) {
                kernels::apply_mask(&mut g, m);
            }
            // A depthwise layer that is the only reader of a masked value applies that
            // value's mask as it writes the gradient.
            let input_mask = match node {
                Node::Depthwise { x, .. } if l.readers[*x] == 1 && grads[*x].is_none() => {
                    mask_of(*x).inspect(|_| premasked[*x] = true)
                }
                _ => None,
            };
            run_backward(
                node,
                &l.geoms[i],
                l,
                &g,
                mask,
                input_mask,
                data.argmax.get(i),
                &mut grads,
                &mut pool,
            );
            pool.put(g);
        }
        if let Some(dx) = grads[0].take() {
            out.copy_from_slice(&dx[..out.len()]);
            pool.put(dx);
        }
        for b in grads.into_iter().flatten() {
            pool.put(b);
        }
        self.return_pool(pool);
    }
}

/// Takes the gradient buffer of `u` for writing: `(buffer, accumulate)`.
fn grad_slot(
    grads: &mut [Option<Vec<f32>>],
    pool: &mut Pool,
    l: &Layout,
    u: Value,
) -> (Vec<f32>, bool) {
    match grads[u].take() {
        Some(b) => (b, true),
        None => (pool.get(l.size(u)), false),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_forward<'a>(
    node: &Node,
    geom: &Geom,
    l: &Layout,
    v: Value,
    get: impl Fn(Value) -> &'a [f32],
    out: &mut [f32],
    mask: Option<&mut [u8]>,
    argmax: Option<&mut Vec<u32>>,
) {
    let n = l.images;
    match (node, geom) {
        (Node::Conv { x, p, act, .. }, Geom::Conv(g)) => kernels::conv_forward(
            get(*x),
            out,
            n,
            g,
            &p.weight,
            Some(&p.bias),
            false,
            *act,
            mask,
        ),
        (Node::Depthwise { x, p, act, .. }, Geom::Dw(g)) => {
            kernels::depthwise_forward(get(*x), out, mask, n, p.cout, g, &p.weight, &p.bias, *act)
        }
        (Node::Add(a, b), _) => {
            let size = l.size(v);
            kernels::add(&get(*a)[..size], &get(*b)[..size], &mut out[..size])
        }
        (Node::MaxPool { x, .. }, Geom::Pool(g)) => {
            let planes = n * l.shapes[v].0;
            let am = argmax.map(|a| {
                a.resize(planes * g.oh * g.ow, 0);
                &mut a[..]
            });
            kernels::max_pool_forward(get(*x), out, am, planes, g)
        }
        (Node::Concat(vs), _) => {
            let (_, h, w) = l.shapes[v];
            let per = l.size(v) / n;
            for img in 0..n {
                let mut off = img * per;
                for &u in vs {
                    let sz = l.shapes[u].0 * h * w;
                    out[off..off + sz].copy_from_slice(&get(u)[img * sz..(img + 1) * sz]);
                    off += sz;
                }
            }
        }
        (Node::GlobalAvg(x), _) => {
            let (c, h, w) = l.shapes[*x];
            let hw = h * w;
            let xs = get(*x);
            for (o, plane) in out[..n * c].iter_mut().zip(xs.chunks(hw)) {
                *o = plane.iter().sum::<f32>() / hw as f32;
            }
        }
        (
            Node::Linear {
                x,
                weight,
                bias,
                inputs,
                outputs,
                act,
                ..
            },
            _,
        ) => {
            let xs = get(*x);
            kernels::dense_forward(xs, weight, bias, n, (*inputs, *outputs), out);
            let size = n * outputs;
            match mask {
                Some(m) => {
                    for (o, mm) in out[..size].iter_mut().zip(&mut m[..size]) {
                        (*o, *mm) = act.apply(*o);
                    }
                }
                None => {
                    for o in &mut out[..size] {
                        *o = act.apply(*o).0;
                    }
                }
            }
        }
        _ => unreachable!("layout geometry always matches its node"),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_backward(
    node: &Node,
    geom: &Geom,
    l: &Layout,
    g: &[f32],
    mask: Option<&[u8]>,
    input_mask: Option<&[u8]>,
    argmax: Option<&Vec<u32>>,
    grads: &mut [Option<Vec<f32>>],
    pool: &mut Pool,
) {
    let n = l.images;
    match (node, geom) {
        (Node::Conv { x, p, weight_t, .. }, Geom::Conv(cg)) => {
            let (mut dx, acc) = grad_slot(grads, pool, l, *x);
            if cg.k == 1 && cg.stride == 1 && cg.pt == 0 && cg.pl == 0 {
                kernels::pointwise_backward(
                    g,
                    &mut dx,
                    n,
                    p.cin,
                    p.cout,
                    cg.oh * cg.ow,
                    &p.weight,
                    acc,
                );
            } else if !weight_t.is_empty() && cg.pt < cg.k && cg.pl < cg.k {
                // dx = conv(g, flipped Wᵀ) with padding k-1-p, back to the input size.
                let bg = ConvGeom {
                    cin: cg.cout,
                    cout: cg.cin,
                    k: cg.k,
                    stride: 1,
                    pt: cg.k - 1 - cg.pt,
                    pl: cg.k - 1 - cg.pl,
                    h: cg.oh,
                    w: cg.ow,
                    oh: cg.h,
                    ow: cg.w,
                };
                kernels::conv_forward(g, &mut dx, n, &bg, weight_t, None, acc, Act::None, None);
            } else {
                kernels::conv_backward_col2im(g, &mut dx, n, cg, &p.weight, acc);
            }
            grads[*x] = Some(dx);
        }
        (Node::Depthwise { x, p, flipped, .. }, Geom::Dw(dg)) => {
            let (mut dx, acc) = grad_slot(grads, pool, l, *x);
            kernels::depthwise_backward(
                g, mask, &mut dx, input_mask, n, p.cout, dg, &p.weight, flipped, acc,
            );
            grads[*x] = Some(dx);
        }
        (Node::Add(a, b), _) => {
            for u in [*a, *b] {
                let (mut dx, acc) = grad_slot(grads, pool, l, u);
                let size = l.size(u);
                kernels::add_into(&mut dx[..size], &g[..size], acc);
                grads[u] = Some(dx);
            }
        }
        (Node::MaxPool { x, .. }, Geom::Pool(pg)) => {
            let (mut dx, acc) = grad_slot(grads, pool, l, *x);
            let planes = n * l.shapes[*x].0;
            if let Some(am) = argmax {
                kernels::max_pool_backward(g, am, &mut dx, planes, pg, acc);
            } else if !acc {
                dx.fill(0.0);
            }
            grads[*x] = Some(dx);
        }
        (Node::Concat(vs), _) => {
            let v_size: usize = vs.iter().map(|&u| l.size(u) / n).sum();
            let mut off = 0;
            for &u in vs {
                let sz = l.size(u) / n;
                let (mut dx, acc) = grad_slot(grads, pool, l, u);
                for img in 0..n {
                    let src = &g[img * v_size + off..img * v_size + off + sz];
                    let dst = &mut dx[img * sz..(img + 1) * sz];
                    if acc {
                        for (d, s) in dst.iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        dst.copy_from_slice(src);
                    }
                }
                off += sz;
                grads[u] = Some(dx);
            }
        }
        (Node::GlobalAvg(x), _) => {
            let (c, h, w) = l.shapes[*x];
            let hw = h * w;
            let (mut dx, acc) = grad_slot(grads, pool, l, *x);
            for (plane, &gv) in dx.chunks_mut(hw).zip(&g[..n * c]) {
                let s = gv / hw as f32;
                if acc {
                    plane.iter_mut().for_each(|d| *d += s);
                } else {
                    plane.fill(s);
                }
            }
            grads[*x] = Some(dx);
        }
        (
            Node::Linear {
                x,
                weight,
                inputs,
                outputs,
                ..
            },
            _,
        ) => {
            let (mut dx, acc) = grad_slot(grads, pool, l, *x);
            kernels::dense_backward(g, weight, n, (*inputs, *outputs), &mut dx, acc);
            grads[*x] = Some(dx);
        }
        _ => unreachable!("layout geometry always matches its node"),
    }
}

impl Saved {
    /// Shape of the input batch of the forward pass that saved this.
    pub fn input_shape(&self) -> [usize; 4] {
        self.shape
    }
}
