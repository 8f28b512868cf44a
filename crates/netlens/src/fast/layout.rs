//! Laying the graph out for one input shape: every value's shape, every layer's geometry,
//! and when each value is last read (so that its buffer can be reused).

use super::graph::{Node, Pad, Value};
use super::kernels::{ConvGeom, PoolGeom, MAX_DEPTHWISE_KERNEL};
use super::Unsupported;

/// Per-node geometry at one input shape.
#[derive(Debug, Clone)]
pub(super) enum Geom {
    Conv(ConvGeom),
    Dw(ConvGeom),
    Pool(PoolGeom),
    None,
}

/// The graph laid out for one input shape `[N, C, H, W]`.
#[derive(Debug)]
pub(super) struct ShapePlan {
    pub images: usize,
    /// `(c, h, w)` of every value.
    pub shapes: Vec<(usize, usize, usize)>,
    pub geoms: Vec<Geom>,
    /// The last node reading each value (`usize::MAX` for the output, never freed).
    pub last_use: Vec<usize>,
    /// How many nodes read each value.
    pub readers: Vec<usize>,
    /// Values a convolution writes straight into its place in a concatenation (see
    /// [`InPlace`]); `None` for the others.
    pub in_place: Vec<Option<InPlace>>,
}

/// Where a value lives inside the concatenation that is its only reader: SqueezeNet's
/// fires concatenate two convolutions of the same input, and with one image per group each
/// input is one contiguous stretch of the concatenation, so the convolutions can write
/// their outputs there (and their backward passes read their gradients from there) with no
/// copy either way. Every input of such a concatenation is a convolution's output read by
/// nothing else; the concatenation of a batch of several images interleaves them, so only
/// one-image layouts have any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InPlace {
    /// The concatenation's value.
    pub concat: Value,
    /// Where this value starts in it (elements).
    pub offset: usize,
    /// Its first input value: a pass that starts at or after it runs the concatenation
    /// from values it was given, so it copies as before.
    pub first: Value,
}

impl ShapePlan {
    /// Where value `v` is written in place, for a pass from value `from` to value `to`:
    /// only when the pass computes every input of the concatenation and the concatenation
    /// itself.
    pub fn in_place(&self, v: Value, from: Value, to: Value) -> Option<InPlace> {
        self.in_place
            .get(v)
            .copied()
            .flatten()
            .filter(|p| p.first > from && p.concat <= to)
    }
}

impl ShapePlan {
    /// Elements of value `v` over the whole batch.
    pub fn size(&self, v: Value) -> usize {
        let (c, h, w) = self.shapes[v];
        self.images * c * h * w
    }
}

/// TensorFlow "SAME" padding along one axis: (output size, padding before).
fn same_pad(len: usize, k: usize, s: usize) -> (usize, usize) {
    let out = len.div_ceil(s);
    let total = ((out - 1) * s + k).saturating_sub(len);
    (out, total / 2)
}

/// Lays `nodes` out for an input batch of `shape` `[N, C, H, W]`, or says why the fast path
/// cannot run it.
pub(super) fn lay_out(nodes: &[Node], shape: [usize; 4]) -> Result<ShapePlan, Unsupported> {
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
                    if p.k > MAX_DEPTHWISE_KERNEL {
                        return bad(format!("node {i}: depthwise kernel of {} pixels", p.k));
                    }
                    Geom::Dw(g)
                };
                ((p.cout, oh, ow), g)
            }
            Node::Add { a, b, .. } => {
                if shapes[*a] != shapes[*b] {
                    return bad(format!("node {i}: adding values of different shapes"));
                }
                (shapes[*a], Geom::None)
            }
            Node::Scale { x, s } => {
                let (c, _, _) = shapes[*x];
                if shapes[*s] != (c, 1, 1) {
                    return bad(format!("node {i}: a channel scale of the wrong shape"));
                }
                (shapes[*x], Geom::None)
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
    let mut in_place = vec![None; nodes.len() + 1];
    for (i, n) in nodes.iter().enumerate() {
        let Node::Concat(vs) = n else { continue };
        let qualifies =
            |u: Value| u > 0 && readers[u] == 1 && matches!(nodes[u - 1], Node::Conv { .. });
        if images != 1 || !vs.iter().all(|&u| qualifies(u)) {
            continue;
        }
        let first = vs.iter().copied().min().unwrap_or(0);
        let mut offset = 0;
        for &u in vs {
            let (c, h, w) = shapes[u];
            in_place[u] = Some(InPlace {
                concat: i + 1,
                offset,
                first,
            });
            offset += c * h * w;
        }
    }
    Ok(ShapePlan {
        images,
        shapes,
        geoms,
        last_use,
        readers,
        in_place,
    })
}

#[cfg(test)]
mod tests {
    use super::super::graph::{ConvParams, Graph, Pad};
    use super::super::kernels::Act;
    use super::*;

    fn conv(g: &mut Graph, x: Value, cin: usize, cout: usize, k: usize) -> Value {
        let p = ConvParams {
            weight: vec![0.5; cout * cin * k * k],
            bias: vec![0.0; cout],
            cin,
            cout,
            k,
            stride: 1,
            groups: 1,
            pad: Pad::Explicit(k / 2),
        };
        g.conv(x, p, Act::Relu).expect("valid convolution")
    }

    /// A fire's two expand convolutions are written into their concatenation in place at
    /// one image per layout (how every pass runs), one after the other; not at two images
    /// (interleaved), and not where another node also reads an input.
    #[test]
    fn fire_expands_are_written_into_their_concatenation() {
        let mut g = Graph::new();
        let s = conv(&mut g, 0, 3, 4, 1);
        let a = conv(&mut g, s, 4, 5, 1);
        let b = conv(&mut g, s, 4, 6, 3);
        let c = g.concat(vec![a, b]);
        let shared = conv(&mut g, c, 11, 2, 1);
        let d = conv(&mut g, shared, 2, 3, 3);
        let e = g.concat(vec![shared, d]);
        let l = lay_out(&g.nodes, [1, 3, 7, 9]).expect("lays out");
        let at = |offset| {
            Some(InPlace {
                concat: c,
                offset,
                first: a,
            })
        };
        assert_eq!((l.in_place[a], l.in_place[b]), (at(0), at(5 * 63)));
        assert_eq!(l.in_place(b, 0, e), at(5 * 63));
        // A pass that starts at the first input, or ends before the concatenation, copies.
        assert_eq!(l.in_place(b, a, e), None);
        assert_eq!(l.in_place(a, 0, b), None);
        // `shared` is read by `d` too, so `e` copies; `s` is no concatenation's input.
        assert_eq!(
            (l.in_place[shared], l.in_place[d], l.in_place[s]),
            (None, None, None)
        );
        let two = lay_out(&g.nodes, [2, 3, 7, 9]).expect("lays out");
        assert!(two.in_place.iter().all(Option::is_none));
    }
}
