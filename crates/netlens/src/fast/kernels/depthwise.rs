//! Depthwise convolution as direct whole-plane correlations, forward and backward-data:
//! each plane is one long vectorizable loop per group of taps, stride 2 split into phases
//! (forward and backward) instead of zero-filling. Planes at most
//! [`SMALL_PLANE`](super::depthwise_lanes::SMALL_PLANE) wide go to the channel-interleaved
//! kernels of [`depthwise_lanes`](super::depthwise_lanes) instead.
//!
//! Its tests, shared with the interleaved kernels, are in `depthwise/tests.rs`.

use super::depthwise_lanes::{self, interleaved};
use super::{dispatch, for_each_plane, with_scratch, with_scratch2, Act, ConvGeom, Mac, Simd};
use rayon::prelude::*;

/// Largest depthwise kernel side the direct kernels take (49 taps).
pub const MAX_DEPTHWISE_KERNEL: usize = 7;

/// `acc[i] = init + Σ_t w_t · src[i + off_t]` for every `i`: the whole plane as one long
/// vectorizable loop per group of three taps, in L1-sized chunks (the first group writes
/// `init +` its taps, so `acc` needs no clearing).
#[inline(always)]
fn taps_1d<M: Mac>(acc: &mut [f32], src: &[f32], taps: &[(usize, f32)], init: f32) {
    const CHUNK: usize = 512;
    let len = acc.len();
    let mut c0 = 0;
    while c0 < len {
        let c1 = (c0 + CHUNK).min(len);
        let a = &mut acc[c0..c1];
        let n = a.len();
        let mut t = taps;
        let mut first = true;
        while t.len() >= 3 {
            let (s0, s1, s2) = (
                &src[c0 + t[0].0..][..n],
                &src[c0 + t[1].0..][..n],
                &src[c0 + t[2].0..][..n],
            );
            let (w0, w1, w2) = (t[0].1, t[1].1, t[2].1);
            if first {
                for i in 0..n {
                    a[i] = M::mac(M::mac(M::mac(init, w0, s0[i]), w1, s1[i]), w2, s2[i]);
                }
                first = false;
            } else {
                for i in 0..n {
                    a[i] = M::mac(M::mac(M::mac(a[i], w0, s0[i]), w1, s1[i]), w2, s2[i]);
                }
            }
            t = &t[3..];
        }
        if first {
            a.fill(init);
        }
        for &(o, w) in t {
            let s0 = &src[c0 + o..][..n];
            for i in 0..n {
                a[i] = M::mac(a[i], w, s0[i]);
            }
        }
        c0 = c1;
    }
}

/// Writes the polyphase decomposition of a zero-padded plane: phase `(py, px)` (of
/// `s × s`) holds `x[r·s + py − pt][c·s + px − pl]` (masked, zero outside) at `[r][c]`,
/// `rows × pitch` each, one after another in `out`; at stride 2 without a mask, `out` has
/// room for `2 · pitch` more values after the phases (a padded row, scratch).
#[inline(always)]
fn phases(x: &[f32], mask: Option<&[u8]>, grid: &PhaseGrid, out: &mut [f32]) {
    let PhaseGrid {
        h,
        w,
        s,
        pt,
        pl,
        rows,
        pitch,
    } = *grid;
    let size = rows * pitch;
    if s == 2 && mask.is_none() {
        // A row with its padding lives after the phases (see `correlate`).
        let (out, padded) = out.split_at_mut(4 * size);
        let padded = &mut padded[..2 * pitch];
        // Both column phases of a row at once: the row with its left padding, split into
        // even and odd columns (a vectorizable pairs loop).
        let (ph0, rest) = out.split_at_mut(2 * size);
        let (p00, p01) = ph0.split_at_mut(size);
        let (p10, p11) = rest.split_at_mut(size);
        for py in 0..2 {
            let (e_ph, o_ph) = if py == 0 {
                (&mut *p00, &mut *p01)
            } else {
                (&mut *p10, &mut *p11)
            };
            for r in 0..rows {
                let e = &mut e_ph[r * pitch..(r + 1) * pitch];
                let o = &mut o_ph[r * pitch..(r + 1) * pitch];
                let iy = (r * 2 + py) as isize - pt as isize;
                if iy < 0 || iy >= h as isize {
                    e.fill(0.0);
                    o.fill(0.0);
                    continue;
                }
                let src = &x[iy as usize * w..(iy as usize + 1) * w];
                let n = (w + pl).min(2 * pitch);
                padded[..pl.min(n)].fill(0.0);
                if n > pl {
                    padded[pl..n].copy_from_slice(&src[..n - pl]);
                }
                padded[n..].fill(0.0);
                for ((e, o), pair) in e.iter_mut().zip(o.iter_mut()).zip(padded.chunks_exact(2)) {
                    *e = pair[0];
                    *o = pair[1];
                }
            }
        }
        return;
    }
    for py in 0..s {
        for px in 0..s {
            let ph = &mut out[(py * s + px) * size..][..size];
            // Columns c with 0 ≤ c·s + px − pl < w.
            let lo = (pl as isize - px as isize).max(0) as usize;
            let c_lo = lo.div_ceil(s).min(pitch);
            let c_hi = if w + pl > px {
                ((w + pl - px - 1) / s + 1).min(pitch)
            } else {
                0
            }
            .max(c_lo);
            for r in 0..rows {
                let row = &mut ph[r * pitch..(r + 1) * pitch];
                let iy = (r * s + py) as isize - pt as isize;
                if iy < 0 || iy >= h as isize || c_lo == c_hi {
                    row.fill(0.0);
                    continue;
                }
                let iy = iy as usize;
                row[..c_lo].fill(0.0);
                row[c_hi..].fill(0.0);
                let src = &x[iy * w..(iy + 1) * w];
                let dst = &mut row[c_lo..c_hi];
                let x0 = c_lo * s + px - pl;
                match (s, mask) {
                    (1, None) => dst.copy_from_slice(&src[x0..x0 + dst.len()]),
                    (1, Some(m)) => {
                        let m = &m[iy * w + x0..][..dst.len()];
                        for ((d, &v), &k) in dst.iter_mut().zip(&src[x0..]).zip(m) {
                            *d = if k != 0 { v } else { 0.0 };
                        }
                    }
                    (_, m) => {
                        for (j, d) in dst.iter_mut().enumerate() {
                            let ix = x0 + j * s;
                            let keep = m.is_none_or(|m| m[iy * w + ix] != 0);
                            *d = if keep { src[ix] } else { 0.0 };
                        }
                    }
                }
            }
        }
    }
}

/// A plane of `h × w` split into `s × s` phases of `rows × pitch`, the plane placed at row
/// `pt`, column `pl` of the whole grid.
#[derive(Clone, Copy)]
struct PhaseGrid {
    h: usize,
    w: usize,
    s: usize,
    pt: usize,
    pl: usize,
    rows: usize,
    pitch: usize,
}

/// A correlation of one plane: `out[oy][ox] = init + Σ w[ky,kx] · x[oy·s + ky − pt][ox·s + kx − pl]`
/// (zero outside `x`), with the geometry of `g` (its channel counts unused). Each output
/// row, as computed, goes to `emit(oy, row)`.
#[inline(always)]
fn correlate<M: Mac>(
    g: &ConvGeom,
    x: &[f32],
    mask: Option<&[u8]>,
    weight: &[f32],
    init: f32,
    mut emit: impl FnMut(usize, &[f32]),
) {
    let (h, w, oh, ow) = (g.h, g.w, g.oh, g.ow);
    let (k, s, pt, pl) = (g.k, g.stride, g.pt, g.pl);
    let e = (k - 1) / s;
    let (rows, pitch) = (oh + e, ow + e);
    let size = rows * pitch;
    let len = (oh - 1) * pitch + ow;
    // The phases, then room for one padded input row (used at stride 2).
    with_scratch(s * s * size + 2 * pitch, |ph| {
        let grid = PhaseGrid {
            h,
            w,
            s,
            pt,
            pl,
            rows,
            pitch,
        };
        phases(x, mask, &grid, ph);
        let mut taps = [(0usize, 0.0f32); MAX_DEPTHWISE_KERNEL * MAX_DEPTHWISE_KERNEL];
        let mut nt = 0;
        for ky in 0..k {
            for kx in 0..k {
                let base = ((ky % s) * s + kx % s) * size;
                taps[nt] = (base + (ky / s) * pitch + kx / s, weight[ky * k + kx]);
                nt += 1;
            }
        }
        with_scratch2(len, |acc| {
            taps_1d::<M>(acc, ph, &taps[..nt], init);
            for oy in 0..oh {
                emit(oy, &acc[oy * pitch..oy * pitch + ow]);
            }
        });
    });
}

/// Forward of one plane: `y = act(b + w ⋆ x)`, and the activation's gradient mask.
struct PlaneForward<'a> {
    g: &'a ConvGeom,
    x: &'a [f32],
    y: &'a mut [f32],
    mask: Option<&'a mut [u8]>,
    w: &'a [f32],
    b: f32,
    act: Act,
}

impl Simd for PlaneForward<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        let Self {
            g,
            x,
            y,
            mut mask,
            w,
            b,
            act,
        } = self;
        let ow = g.ow;
        correlate::<M>(g, x, None, w, b, |oy, row| {
            let yo = &mut y[oy * ow..(oy + 1) * ow];
            let mo = mask.as_deref_mut().map(|m| &mut m[oy * ow..(oy + 1) * ow]);
            activate(row, yo, mo, act);
        });
    }
}

/// `y`, `mask` = the activation of `row` and its gradient mask. (Slices passed as
/// arguments, so that the compiler knows they do not overlap: the kernels' argument structs
/// do not tell it that.)
#[inline(always)]
fn activate(row: &[f32], y: &mut [f32], mask: Option<&mut [u8]>, act: Act) {
    match mask {
        Some(m) => {
            for ((o, mm), &a) in y.iter_mut().zip(m).zip(row) {
                let (v, k) = act.apply(a);
                *o = v;
                *mm = k;
            }
        }
        None => {
            for (o, &a) in y.iter_mut().zip(row) {
                *o = act.apply(a).0;
            }
        }
    }
}

/// `dst (+)= src`, or `dst = src · mask` (the gradient's own activation mask, applied
/// here when this is the only consumer of the value).
#[inline(always)]
fn store_grad(dst: &mut [f32], src: &[f32], accumulate: bool, mask: Option<&[u8]>) {
    match (accumulate, mask) {
        (true, _) => {
            for (d, &v) in dst.iter_mut().zip(src) {
                *d += v;
            }
        }
        (false, Some(m)) => {
            for ((d, &v), &k) in dst.iter_mut().zip(src).zip(m) {
                *d = if k != 0 { v } else { 0.0 };
            }
        }
        (false, None) => dst.copy_from_slice(src),
    }
}

/// Backward-data of one plane. At stride 1 it is a correlation of the (masked) gradient
/// with the kernel rotated by 180°; at stride `s` the input pixels of each of the `s × s`
/// row/column phases receive exactly the kernel taps of the matching phase, so each phase
/// is a small dense correlation of the gradient — no zero-filled upsampling.
struct PlaneBackward<'a> {
    g: &'a ConvGeom,
    dy: &'a [f32],
    mask: Option<&'a [u8]>,
    dx: &'a mut [f32],
    dx_mask: Option<&'a [u8]>,
    /// The plane's kernel, and rotated by 180°.
    w: &'a [f32],
    wf: &'a [f32],
    accumulate: bool,
}

impl Simd for PlaneBackward<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        plane_backward::<M>(self)
    }
}

#[inline(always)]
fn plane_backward<M: Mac>(p: PlaneBackward) {
    let PlaneBackward {
        g,
        dy,
        mask,
        dx,
        dx_mask,
        w,
        wf,
        accumulate,
    } = p;
    let (k, s) = (g.k, g.stride);
    if s == 1 {
        let width = g.w;
        // The gradient, padded by k − 1 − padding, correlated with the rotated kernel.
        let back = ConvGeom {
            h: g.oh,
            w: g.ow,
            oh: g.h,
            ow: g.w,
            stride: 1,
            pt: k - 1 - g.pt,
            pl: k - 1 - g.pl,
            ..*g
        };
        correlate::<M>(&back, dy, mask, wf, 0.0, |iy, row| {
            let m = dx_mask.map(|m| &m[iy * width..(iy + 1) * width]);
            store_grad(&mut dx[iy * width..(iy + 1) * width], row, accumulate, m);
        });
    } else {
        strided_backward::<M>(g, dy, mask, dx, dx_mask, w, accumulate);
    }
}

/// [`PlaneBackward`] at stride `s` > 1 (see there).
#[inline(always)]
fn strided_backward<M: Mac>(
    g: &ConvGeom,
    dy: &[f32],
    mask: Option<&[u8]>,
    dx: &mut [f32],
    dx_mask: Option<&[u8]>,
    w: &[f32],
    accumulate: bool,
) {
    let (k, s) = (g.k, g.stride);
    // G[r][c] = dy[r − k][c − k] (masked, zero outside), then per output phase (qy, qx):
    // dx[s·a + qy][s·b + qx] = Σ w[ky][kx] · G[a + (qy + pt − ky)/s + k][b + (qx + pl − kx)/s + k]
    // over the taps whose offsets divide exactly.
    let (t0, l0) = (k, k);
    let max_rows = g.h.div_ceil(s);
    let max_cols = g.w.div_ceil(s);
    let reach = |p: usize| p.div_ceil(s) + 1;
    let pitch = (max_cols + l0 + reach(g.pl)).max(l0 + g.ow);
    let prows = (max_rows + t0 + reach(g.pt)).max(t0 + g.oh);
    let size = prows * pitch;
    with_scratch(size, |gp| {
        let grid = PhaseGrid {
            h: g.oh,
            w: g.ow,
            s: 1,
            pt: t0,
            pl: l0,
            rows: prows,
            pitch,
        };
        phases(dy, mask, &grid, gp);
        let stride_q = max_rows * pitch;
        with_scratch2(s * s * stride_q, |acc| {
            let mut taps = [(0usize, 0.0f32); MAX_DEPTHWISE_KERNEL * MAX_DEPTHWISE_KERNEL];
            for qy in 0..s.min(g.h) {
                let rows = (g.h - qy).div_ceil(s);
                for qx in 0..s.min(g.w) {
                    let cols = (g.w - qx).div_ceil(s);
                    let mut nt = 0;
                    for ky in 0..k {
                        let ny = (qy + g.pt) as isize - ky as isize;
                        if ny.rem_euclid(s as isize) != 0 {
                            continue;
                        }
                        let r = (ny.div_euclid(s as isize) + t0 as isize) as usize;
                        for kx in 0..k {
                            let nx = (qx + g.pl) as isize - kx as isize;
                            if nx.rem_euclid(s as isize) != 0 {
                                continue;
                            }
                            let c = (nx.div_euclid(s as isize) + l0 as isize) as usize;
                            taps[nt] = (r * pitch + c, w[ky * k + kx]);
                            nt += 1;
                        }
                    }
                    let len = (rows - 1) * pitch + cols;
                    let a = &mut acc[(qy * s + qx) * stride_q..][..len];
                    taps_1d::<M>(a, gp, &taps[..nt], 0.0);
                }
            }
            // Interleave the column phases of each row into dx, then mask it.
            for iy in 0..g.h {
                let (qy, ar) = (iy % s, iy / s);
                let drow = &mut dx[iy * g.w..(iy + 1) * g.w];
                let base = qy * s * stride_q + ar * pitch;
                if s == 2 && g.w.is_multiple_of(2) {
                    let a0 = &acc[base..base + g.w / 2];
                    let a1 = &acc[base + stride_q..base + stride_q + g.w / 2];
                    for ((pair, &v0), &v1) in drow.chunks_exact_mut(2).zip(a0).zip(a1) {
                        if accumulate {
                            pair[0] += v0;
                            pair[1] += v1;
                        } else {
                            pair[0] = v0;
                            pair[1] = v1;
                        }
                    }
                } else {
                    for (ix, d) in drow.iter_mut().enumerate() {
                        let v = acc[base + (ix % s) * stride_q + ix / s];
                        if accumulate {
                            *d += v;
                        } else {
                            *d = v;
                        }
                    }
                }
                if let (false, Some(m)) = (accumulate, dx_mask) {
                    // Masks are 0/1: a multiply (a conditional store would compile to slow
                    // masked stores).
                    for (d, &k) in drow.iter_mut().zip(&m[iy * g.w..(iy + 1) * g.w]) {
                        *d *= f32::from(k);
                    }
                }
            }
        });
    });
}

/// A depthwise convolution as [`depthwise_forward`] and [`depthwise_backward`] run it.
#[derive(Debug, Clone, Copy)]
pub struct DepthwiseLayer<'a> {
    /// The geometry of each plane; `cin = cout =` the channel count.
    pub g: &'a ConvGeom,
    /// `[channels, k·k]`.
    pub weight: &'a [f32],
    /// Each channel's kernel rotated by 180° (used by the backward pass at stride 1).
    pub weight_flipped: &'a [f32],
    /// `[channels]`.
    pub bias: &'a [f32],
    pub act: Act,
}

/// Depthwise convolution of a batch (`images × channels` planes), bias, activation and
/// mask fused into each output row.
pub fn depthwise_forward(
    layer: &DepthwiseLayer,
    x: &[f32],
    y: &mut [f32],
    mask: Option<&mut [u8]>,
    images: usize,
) {
    let g = layer.g;
    if interleaved(g) {
        return depthwise_lanes::forward(layer, x, y, mask, images);
    }
    let channels = g.cout;
    let (ip, op) = (g.h * g.w, g.oh * g.ow);
    let kk = g.k * g.k;
    let planes = images * channels;
    let run = |i: usize, yo: &mut [f32], m: Option<&mut [u8]>| {
        let c = i % channels;
        dispatch(PlaneForward {
            g,
            x: &x[i * ip..(i + 1) * ip],
            y: yo,
            mask: m,
            w: &layer.weight[c * kk..(c + 1) * kk],
            b: layer.bias[c],
            act: layer.act,
        });
    };
    for_each_plane(y, mask, op, planes, run);
}

/// Backward-data of a depthwise convolution; the gradient `dy` is multiplied by the
/// layer's activation `mask` as it is read, and the result by `dx_mask` (the activation
/// mask of the input, when this layer is its only consumer) as it is written.
pub fn depthwise_backward(
    layer: &DepthwiseLayer,
    dy: &[f32],
    mask: Option<&[u8]>,
    dx: &mut [f32],
    dx_mask: Option<&[u8]>,
    images: usize,
    accumulate: bool,
) {
    let g = layer.g;
    if interleaved(g) {
        return depthwise_lanes::backward(layer, dy, mask, dx, dx_mask, images, accumulate);
    }
    let channels = g.cout;
    let (ip, op) = (g.h * g.w, g.oh * g.ow);
    let kk = g.k * g.k;
    let planes = images * channels;
    dx[..planes * ip]
        .par_chunks_mut(ip)
        .enumerate()
        .for_each(|(i, dxi)| {
            let c = i % channels;
            dispatch(PlaneBackward {
                g,
                dy: &dy[i * op..(i + 1) * op],
                mask: mask.map(|m| &m[i * op..(i + 1) * op]),
                dx: dxi,
                dx_mask: dx_mask.map(|m| &m[i * ip..(i + 1) * ip]),
                w: &layer.weight[c * kk..(c + 1) * kk],
                wf: &layer.weight_flipped[c * kk..(c + 1) * kk],
                accumulate,
            })
        });
}

/// Plain references for the unit tests (of this file's kernels and of the interleaved
/// ones): direct loops over every tap.
pub mod reference {
    use super::super::gemm_conv::reference::tap;
    use super::DepthwiseLayer;

    /// [`depthwise_forward`](super::depthwise_forward) of one image.
    pub fn forward(layer: &DepthwiseLayer, x: &[f32], y: &mut [f32], mask: &mut [u8]) {
        let g = layer.g;
        let (k, ip, op) = (g.k, g.h * g.w, g.oh * g.ow);
        for c in 0..g.cout {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut s = layer.bias[c];
                    for ky in 0..k {
                        for kx in 0..k {
                            if let Some(i) = tap(g, oy, ox, ky, kx) {
                                s += layer.weight[(c * k + ky) * k + kx] * x[c * ip + i];
                            }
                        }
                    }
                    let o = c * op + oy * g.ow + ox;
                    (y[o], mask[o]) = layer.act.apply(s);
                }
            }
        }
    }

    /// [`depthwise_backward`](super::depthwise_backward) of one image: every (masked) output
    /// gradient scattered back through every tap, then the input's mask.
    pub fn backward(
        layer: &DepthwiseLayer,
        (dy, mask): (&[f32], Option<&[u8]>),
        (dx, dx_mask): (&mut [f32], Option<&[u8]>),
        acc: bool,
    ) {
        let g = layer.g;
        let (k, ip, op) = (g.k, g.h * g.w, g.oh * g.ow);
        let mut sum = vec![0.0f32; dx.len()];
        for c in 0..g.cout {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let o = c * op + oy * g.ow + ox;
                    let d = if mask.is_none_or(|m| m[o] != 0) {
                        dy[o]
                    } else {
                        0.0
                    };
                    for ky in 0..k {
                        for kx in 0..k {
                            if let Some(i) = tap(g, oy, ox, ky, kx) {
                                sum[c * ip + i] += layer.weight[(c * k + ky) * k + kx] * d;
                            }
                        }
                    }
                }
            }
        }
        for (i, (d, s)) in dx.iter_mut().zip(sum).enumerate() {
            if acc {
                *d += s;
            } else {
                *d = if dx_mask.is_none_or(|m| m[i] != 0) {
                    s
                } else {
                    0.0
                };
            }
        }
    }
}

/// Tests shared with the interleaved kernels (`depthwise/tests.rs`).
#[cfg(test)]
pub(crate) mod tests;
