//! Running one node: the kernel calls of each layer's forward and backward pass.

use super::buffers::Pool;
use super::graph::{Node, Value};
use super::kernels::{self, Act, ConvGeom, ConvLayer, DenseLayer, DepthwiseLayer, Transposed};
use super::layout::{Geom, ShapePlan};

/// Where a node's forward pass writes: its output value, and (when the pass is saved) its
/// ReLU-family activation's gradient mask (allocated only for those), a max-pool's argmax,
/// and float state (a smooth activation's derivative, a per-channel scale's inputs).
pub(super) struct Forward<'a> {
    pub out: &'a mut [f32],
    pub mask: Option<&'a mut [u8]>,
    pub argmax: Option<&'a mut Vec<u32>>,
    pub floats: Option<&'a mut Vec<f32>>,
}

/// What a node's backward pass reads: the gradient of its output, that output's activation
/// mask (not yet applied to `g` only for a depthwise layer, whose kernel applies it), the
/// masks of its inputs that the kernel is to apply as it writes their gradients (one entry
/// per input of a convolution, depthwise layer, max-pool or concatenation whose only reader
/// it is; empty for the other nodes), a max-pool's argmax and a per-channel scale's saved
/// inputs.
pub(super) struct Incoming<'a> {
    pub g: &'a [f32],
    pub mask: Option<&'a [u8]>,
    pub input_masks: Vec<Option<&'a [u8]>>,
    pub argmax: Option<&'a Vec<u32>>,
    pub floats: Option<&'a [f32]>,
}

/// The gradient of every value (`None` until a reader writes one), and the pool that new
/// gradient buffers come from.
pub(super) struct Gradients<'a> {
    pub grads: &'a mut [Option<Vec<f32>>],
    pub pool: &'a mut Pool,
}

impl Gradients<'_> {
    /// Takes the gradient buffer of `u` for writing: `(buffer, accumulate)`.
    fn take(&mut self, l: &ShapePlan, u: Value) -> (Vec<f32>, bool) {
        match self.grads[u].take() {
            Some(b) => (b, true),
            None => (self.pool.get(l.size(u)), false),
        }
    }
}

/// The forward pass of `node` (value `v`, laid out as `geom`), reading its inputs by `get`.
pub(super) fn run_forward<'a>(
    node: &Node,
    geom: &Geom,
    l: &ShapePlan,
    v: Value,
    get: impl Fn(Value) -> &'a [f32],
    to: Forward,
) {
    let Forward {
        out,
        mask,
        argmax,
        mut floats,
    } = to;
    let n = l.images;
    let size = l.size(v);
    match (node, geom) {
        (
            Node::Conv {
                x,
                p,
                act,
                winograd,
                ..
            },
            Geom::Conv(g),
        ) => {
            let layer = ConvLayer {
                g,
                weight: &p.weight,
                bias: Some(&p.bias),
                act: act.masked(),
                winograd: winograd.get(&p.weight, g),
            };
            if act.is_smooth() {
                // The activation and its derivative in the convolution's epilogue.
                let deriv = floats.map(|f| {
                    f.resize(size, 0.0);
                    &mut f[..size]
                });
                kernels::conv_forward_smooth(&layer, *act, get(*x), out, deriv, n);
            } else {
                kernels::conv_forward(&layer, get(*x), out, mask, n, false);
            }
        }
        (Node::Depthwise { x, p, act, flipped }, Geom::Dw(g)) => {
            let layer = DepthwiseLayer {
                g,
                weight: &p.weight,
                weight_flipped: flipped,
                bias: &p.bias,
                act: act.masked(),
            };
            kernels::depthwise_forward(&layer, get(*x), out, mask, n);
            activate_smooth(*act, &mut out[..size], floats);
        }
        (Node::Add { a, b, act }, _) => {
            if act.is_smooth() {
                kernels::add(&get(*a)[..size], &get(*b)[..size], &mut out[..size]);
                activate(*act, &mut out[..size], mask, floats);
            } else {
                // The sum, its ReLU-family activation and mask in one pass.
                kernels::add_act(get(*a), get(*b), &mut out[..size], act.masked(), mask);
            }
        }
        (Node::Scale { x, s }, _) => {
            let (xs, ss) = (&get(*x)[..size], &get(*s)[..l.size(*s)]);
            let hw = size / ss.len().max(1);
            kernels::scale_forward(xs, ss, &mut out[..size], hw);
            if let Some(f) = floats.as_deref_mut() {
                f.clear();
                f.extend_from_slice(xs);
                f.extend_from_slice(ss);
            }
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
            let layer = DenseLayer {
                weight,
                bias,
                inputs: *inputs,
                outputs: *outputs,
            };
            kernels::dense_forward(&layer, get(*x), out, n);
            activate(*act, &mut out[..n * outputs], mask, floats);
        }
        _ => unreachable!("layout geometry always matches its node"),
    }
}

/// Applies a smooth `act` to a layer's output in place (nothing for the others, which the
/// kernels' epilogues applied), saving its derivative when the pass is saved.
fn activate_smooth(act: Act, out: &mut [f32], floats: Option<&mut Vec<f32>>) {
    if !act.is_smooth() {
        return;
    }
    let deriv = floats.map(|f| {
        f.resize(out.len(), 0.0);
        &mut f[..out.len()]
    });
    kernels::smooth::activate(act, out, deriv);
}

/// Applies `act` to `out` in place, writing its 0/1 gradient mask (ReLU family) or its
/// derivative (smooth activations) when the pass is saved.
fn activate(act: Act, out: &mut [f32], mask: Option<&mut [u8]>, floats: Option<&mut Vec<f32>>) {
    if act.is_smooth() {
        return activate_smooth(act, out, floats);
    }
    if act == Act::None {
        return;
    }
    match mask {
        Some(m) => {
            for (o, mm) in out.iter_mut().zip(&mut m[..]) {
                (*o, *mm) = act.apply(*o);
            }
        }
        None => {
            for o in out {
                *o = act.apply(*o).0;
            }
        }
    }
}

/// The backward pass of `node` (laid out as `geom`): adds the gradient of each of its
/// inputs into `slots`.
pub(super) fn run_backward(
    node: &Node,
    geom: &Geom,
    l: &ShapePlan,
    incoming: Incoming,
    slots: &mut Gradients,
) {
    let Incoming {
        g,
        mask,
        input_masks,
        argmax,
        floats,
    } = incoming;
    let input_mask = input_masks.first().copied().flatten();
    let n = l.images;
    match (node, geom) {
        (
            Node::Conv {
                x,
                p,
                weight_t,
                weight_tr,
                winograd_t,
                ..
            },
            Geom::Conv(cg),
        ) => {
            let (mut dx, acc) = slots.take(l, *x);
            // Wᵀ for the product backward passes: the row-major copy where lowering made one
            // (every layer but those with a flipped kernel, which use that one unless their
            // padding is as large as the kernel).
            let wt = if weight_tr.is_empty() {
                Transposed::Strided(&p.weight)
            } else {
                Transposed::Copy(weight_tr)
            };
            if cg.k == 1 && cg.stride == 1 && cg.pt == 0 && cg.pl == 0 {
                kernels::pointwise_backward(g, &mut dx, n, cg, wt, acc, input_mask);
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
                let layer = ConvLayer {
                    g: &bg,
                    weight: weight_t,
                    bias: None,
                    act: Act::None,
                    winograd: winograd_t.get(weight_t, &bg),
                };
                match input_mask {
                    Some(keep) => kernels::conv_forward_keep(&layer, g, &mut dx, keep, n),
                    None => kernels::conv_forward(&layer, g, &mut dx, None, n, acc),
                }
            } else {
                kernels::conv_backward_col2im(g, &mut dx, n, cg, wt, acc, input_mask);
            }
            slots.grads[*x] = Some(dx);
        }
        (Node::Depthwise { x, p, act, flipped }, Geom::Dw(dg)) => {
            let (mut dx, acc) = slots.take(l, *x);
            let layer = DepthwiseLayer {
                g: dg,
                weight: &p.weight,
                weight_flipped: flipped,
                bias: &p.bias,
                act: act.masked(),
            };
            kernels::depthwise_backward(&layer, g, mask, &mut dx, input_mask, n, acc);
            slots.grads[*x] = Some(dx);
        }
        // The activation's mask was applied to `g` before (as for every non-depthwise layer).
        (Node::Add { a, b, .. }, _) => {
            for u in [*a, *b] {
                let (mut dx, acc) = slots.take(l, u);
                let size = l.size(u);
                kernels::add_into(&mut dx[..size], &g[..size], acc);
                slots.grads[u] = Some(dx);
            }
        }
        (Node::Scale { x, s }, _) => {
            let (xsize, ssize) = (l.size(*x), l.size(*s));
            let saved = floats.filter(|f| f.len() == xsize + ssize);
            let (xs, ss) = saved.map_or((&[][..], &[][..]), |f| f.split_at(xsize));
            let (mut dx, acc_dx) = slots.take(l, *x);
            let (mut ds, acc_ds) = slots.take(l, *s);
            if ss.is_empty() {
                // An unsaved pass has nothing to differentiate (never run that way).
                if !acc_dx {
                    dx[..xsize].fill(0.0);
                }
                if !acc_ds {
                    ds[..ssize].fill(0.0);
                }
            } else {
                let hw = xsize / ssize.max(1);
                kernels::scale_backward(&g[..xsize], xs, ss, &mut dx, acc_dx, &mut ds, acc_ds, hw);
            }
            slots.grads[*x] = Some(dx);
            slots.grads[*s] = Some(ds);
        }
        (Node::MaxPool { x, .. }, Geom::Pool(pg)) => {
            let (mut dx, acc) = slots.take(l, *x);
            let planes = n * l.shapes[*x].0;
            if let Some(am) = argmax {
                kernels::max_pool_backward(g, am, &mut dx, planes, pg, acc, input_mask);
            } else if !acc {
                dx.fill(0.0);
            }
            slots.grads[*x] = Some(dx);
        }
        (Node::Concat(vs), _) => {
            let v_size: usize = vs.iter().map(|&u| l.size(u) / n).sum();
            let mut off = 0;
            for (j, &u) in vs.iter().enumerate() {
                let sz = l.size(u) / n;
                let (mut dx, acc) = slots.take(l, u);
                // The input's activation mask, where this is its only reader.
                let keep = input_masks.get(j).copied().flatten();
                for img in 0..n {
                    let src = &g[img * v_size + off..img * v_size + off + sz];
                    let dst = &mut dx[img * sz..(img + 1) * sz];
                    if let Some(k) = keep {
                        kernels::masked_copy(dst, src, &k[img * sz..(img + 1) * sz]);
                    } else if acc {
                        for (d, s) in dst.iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        dst.copy_from_slice(src);
                    }
                }
                off += sz;
                slots.grads[u] = Some(dx);
            }
        }
        (Node::GlobalAvg(x), _) => {
            let (c, h, w) = l.shapes[*x];
            let hw = h * w;
            let (mut dx, acc) = slots.take(l, *x);
            for (plane, &gv) in dx.chunks_mut(hw).zip(&g[..n * c]) {
                let s = gv / hw as f32;
                if acc {
                    plane.iter_mut().for_each(|d| *d += s);
                } else {
                    plane.fill(s);
                }
            }
            slots.grads[*x] = Some(dx);
        }
        (
            Node::Linear {
                x,
                weight,
                bias,
                inputs,
                outputs,
                ..
            },
            _,
        ) => {
            let (mut dx, acc) = slots.take(l, *x);
            let layer = DenseLayer {
                weight,
                bias,
                inputs: *inputs,
                outputs: *outputs,
            };
            kernels::dense_backward(&layer, g, &mut dx, n, acc);
            slots.grads[*x] = Some(dx);
        }
        _ => unreachable!("layout geometry always matches its node"),
    }
}
