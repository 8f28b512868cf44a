//! Depthwise convolution of small planes (at most [`SMALL_PLANE`] wide), forward and
//! backward-data, with [`LANES`] channels interleaved in each vector: a group of channels
//! is copied into a zero-padded grid of pixels of `LANES` values, correlated a few output
//! pixels at a time in registers, and copied back. Entered through
//! [`depthwise_forward`](super::depthwise_forward) and
//! [`depthwise_backward`](super::depthwise_backward), whose references its tests share.

use super::depthwise::{DepthwiseLayer, MAX_DEPTHWISE_KERNEL};
use super::{
    dispatch, has_avx2_fma, with_scratch, with_scratch2, Act, ConvGeom, Fused, Mac, SendPtr,
    Separate, Simd,
};
use rayon::prelude::*;

/// Channels per vector in the interleaved depthwise kernels.
const LANES: usize = 8;

/// Output planes at most this wide take the channel-interleaved depthwise kernels: there a
/// whole-plane correlation would spend most of its work on padding and short row tails,
/// while one vector of eight channels is always full.
pub(crate) const SMALL_PLANE: usize = 16;

/// Whether a depthwise layer takes the channel-interleaved kernels. (Its padding is within
/// the kernel, as the layout requires of every depthwise layer, so that the stride-1
/// backward is a plain correlation.)
pub(crate) fn interleaved(g: &ConvGeom) -> bool {
    debug_assert!(g.pt < g.k && g.pl < g.k);
    g.ow <= SMALL_PLANE
}

/// `v` where the 0/1 mask value `k` is 1, else 0 — by bits, branch-free.
#[inline(always)]
fn keep(v: f32, k: u8) -> f32 {
    f32::from_bits(v.to_bits() & 0u32.wrapping_sub(u32::from(k)))
}

/// Writes `n ≤ LANES` planes of `h × w` (one after another in `x`) into `xp` as a
/// `ph × pw` grid of pixels of `LANES` channels, each plane placed at row `pt`, column `pl`,
/// zeros elsewhere and in unused lanes. `mask` zeroes the values it marks 0 as they are read.
#[inline(always)]
fn interleave(
    x: &[f32],
    mask: Option<&[u8]>,
    n: usize,
    (h, w): (usize, usize),
    (ph, pw): (usize, usize),
    (pt, pl): (usize, usize),
    xp: &mut [f32],
) {
    let xp = &mut xp[..ph * pw * LANES];
    xp.fill(0.0);
    let rows = h.min(ph.saturating_sub(pt));
    let cols = w.min(pw.saturating_sub(pl));
    for l in 0..n {
        for iy in 0..rows {
            let src = &x[(l * h + iy) * w..][..cols];
            let dst = &mut xp[((iy + pt) * pw + pl) * LANES..][..cols * LANES];
            match mask {
                Some(m) => {
                    let m = &m[(l * h + iy) * w..][..cols];
                    for ((d, &v), &k) in dst.chunks_exact_mut(LANES).zip(src).zip(m) {
                        d[l] = keep(v, k);
                    }
                }
                None => {
                    for (d, &v) in dst.chunks_exact_mut(LANES).zip(src) {
                        d[l] = v;
                    }
                }
            }
        }
    }
}

/// `out[oy][ox] = init + Σ_{ky,kx} w[ky·k + kx] · xp[oy·s + ky][ox·s + kx]`, every term a
/// vector of `LANES` channels; `xp` is `pw` pixels wide, `out` is `oh × ow`.
#[inline(always)]
fn correlate_lanes<M: Mac>(
    xp: &[f32],
    pw: usize,
    (oh, ow): (usize, usize),
    (k, s): (usize, usize),
    w: &[f32],
    init: &[f32; LANES],
    out: &mut [f32],
) {
    for oy in 0..oh {
        let mut ox = 0;
        while ox < ow {
            let at = (oy, ox, ow, pw, k, s);
            ox += match ow - ox {
                1 => lanes_block::<M, 1>(xp, at, w, init, out),
                2 => lanes_block::<M, 2>(xp, at, w, init, out),
                3 => lanes_block::<M, 3>(xp, at, w, init, out),
                4 => lanes_block::<M, 4>(xp, at, w, init, out),
                5 => lanes_block::<M, 5>(xp, at, w, init, out),
                6 => lanes_block::<M, 6>(xp, at, w, init, out),
                7 => lanes_block::<M, 7>(xp, at, w, init, out),
                _ => lanes_block::<M, 8>(xp, at, w, init, out),
            };
        }
    }
}

/// `P` consecutive output pixels of [`correlate_lanes`], kept in registers across all taps;
/// returns `P`.
#[inline(always)]
fn lanes_block<M: Mac, const P: usize>(
    xp: &[f32],
    (oy, ox, ow, pw, k, s): (usize, usize, usize, usize, usize, usize),
    w: &[f32],
    init: &[f32; LANES],
    out: &mut [f32],
) -> usize {
    let first = (oy * s * pw + ox * s) * LANES;
    let last = ((oy * s + k - 1) * pw + ox * s + (P - 1) * s + k) * LANES;
    assert!(last <= xp.len() && k * k * LANES <= w.len());
    let mut a = [*init; P];
    // SAFETY: every vector read lies between `first` and `last` of `xp` (rows oy·s .. oy·s +
    // k − 1, columns ox·s .. ox·s + (P − 1)·s + k − 1) or inside the k² vectors of `w`, both
    // checked above; [f32; LANES] needs only f32 alignment.
    unsafe {
        let x0 = xp.as_ptr().add(first);
        let mut wp = w.as_ptr() as *const [f32; LANES];
        for ky in 0..k {
            let row = x0.add(ky * pw * LANES);
            for kx in 0..k {
                let wv = *wp;
                wp = wp.add(1);
                for (p, ap) in a.iter_mut().enumerate() {
                    let xv = *(row.add((p * s + kx) * LANES) as *const [f32; LANES]);
                    for l in 0..LANES {
                        ap[l] = M::mac(ap[l], wv[l], xv[l]);
                    }
                }
            }
        }
    }
    let dst = &mut out[(oy * ow + ox) * LANES..][..P * LANES];
    for (d, ap) in dst.chunks_exact_mut(LANES).zip(&a) {
        d.copy_from_slice(ap);
    }
    P
}

/// A group's kernels as lanes (see [`kernel_lanes`]); a fixed size, which the compiler
/// knows.
type KernelLanes = [f32; MAX_DEPTHWISE_KERNEL * MAX_DEPTHWISE_KERNEL * LANES];

/// The kernels of channels `c0 .. c0 + n` (`n ≤ LANES`) as one vector per tap (the first
/// `kk` vectors), zeros in unused lanes; `flip` rotates each kernel by 180°.
fn kernel_lanes(weight: &[f32], kk: usize, c0: usize, n: usize, flip: bool) -> KernelLanes {
    let mut w = [0.0; MAX_DEPTHWISE_KERNEL * MAX_DEPTHWISE_KERNEL * LANES];
    for l in 0..n {
        let src = &weight[(c0 + l) * kk..(c0 + l + 1) * kk];
        for (t, &v) in src.iter().enumerate() {
            let t = if flip { kk - 1 - t } else { t };
            w[t * LANES + l] = v;
        }
    }
    w
}

/// Forward of one group of `n ≤ LANES` planes of one image: `x` and `y` hold the group's
/// input and output planes, `mask` (if any) receives the activation's gradient mask.
struct GroupForward<'a> {
    g: &'a ConvGeom,
    x: &'a [f32],
    y: &'a mut [f32],
    mask: Option<&'a mut [u8]>,
    /// Channels in the group.
    n: usize,
    /// The group's kernels as lanes ([`kernel_lanes`]) and biases.
    w: &'a KernelLanes,
    init: &'a [f32; LANES],
    act: Act,
    /// Scratch: the padded input grid and the output pixels.
    xp: &'a mut [f32],
    out: &'a mut [f32],
}

impl Simd for GroupForward<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        group_forward::<M>(self)
    }
}

#[inline(always)]
fn group_forward<M: Mac>(p: GroupForward) {
    let GroupForward {
        g,
        x,
        y,
        mask,
        n,
        w,
        init,
        act,
        xp,
        out,
    } = p;
    let (ph, pw) = ((g.oh - 1) * g.stride + g.k, (g.ow - 1) * g.stride + g.k);
    interleave(x, None, n, (g.h, g.w), (ph, pw), (g.pt, g.pl), xp);
    correlate_lanes::<M>(xp, pw, (g.oh, g.ow), (g.k, g.stride), w, init, out);
    activate_lanes(out, n, g.oh * g.ow, y, mask, act);
}

/// `y`, `mask` = the activation of lane `l` of `out` (`op` pixels) into plane `l`, for each
/// of the `n` planes. (Slices passed as arguments, so that the compiler knows they do not
/// overlap: the kernels' argument structs do not tell it that.)
#[inline(always)]
fn activate_lanes(
    out: &[f32],
    n: usize,
    op: usize,
    y: &mut [f32],
    mask: Option<&mut [u8]>,
    act: Act,
) {
    let out = &out[..op * LANES];
    match mask {
        Some(m) => {
            for l in 0..n {
                let (yl, ml) = (&mut y[l * op..][..op], &mut m[l * op..][..op]);
                for ((o, mm), v) in yl.iter_mut().zip(ml).zip(out.chunks_exact(LANES)) {
                    (*o, *mm) = act.apply(v[l]);
                }
            }
        }
        None => {
            for l in 0..n {
                for (o, v) in y[l * op..][..op].iter_mut().zip(out.chunks_exact(LANES)) {
                    *o = act.apply(v[l]).0;
                }
            }
        }
    }
}

/// Backward-data of one group of `n ≤ LANES` planes of one image (see
/// [`depthwise_backward`](super::depthwise_backward)); `w` is the group's kernels as lanes,
/// rotated by 180° at stride 1; `gp` and `out` are scratch.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn group_backward<M: Mac>(
    dy: &[f32],
    mask: Option<&[u8]>,
    dx: &mut [f32],
    dx_mask: Option<&[u8]>,
    n: usize,
    g: &ConvGeom,
    w: &[f32],
    accumulate: bool,
    gp: &mut [f32],
    out: &mut [f32],
) {
    let (k, s) = (g.k, g.stride);
    let ip = g.h * g.w;
    // `out` receives dx as a grid of pixels `cols` wide, the image at (top, left).
    let (cols, top, left);
    if s == 1 {
        // A correlation of the gradient, padded by k − 1 − padding, with the rotated kernel.
        let (ph, pw) = (g.h + k - 1, g.w + k - 1);
        interleave(
            dy,
            mask,
            n,
            (g.oh, g.ow),
            (ph, pw),
            (k - 1 - g.pt, k - 1 - g.pl),
            gp,
        );
        correlate_lanes::<M>(gp, pw, (g.h, g.w), (k, 1), w, &[0.0; LANES], out);
        (cols, top, left) = (g.w, 0, 0);
    } else {
        // Each gradient pixel adds its kernel, scaled, into the padded input grid.
        interleave(dy, mask, n, (g.oh, g.ow), (g.oh, g.ow), (0, 0), gp);
        let rows = ((g.oh - 1) * s + k).max(g.pt + g.h);
        cols = ((g.ow - 1) * s + k).max(g.pl + g.w);
        (top, left) = (g.pt, g.pl);
        let out = &mut out[..rows * cols * LANES];
        out.fill(0.0);
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let gv = &gp[(oy * g.ow + ox) * LANES..][..LANES];
                for ky in 0..k {
                    let row = &mut out[((oy * s + ky) * cols + ox * s) * LANES..][..k * LANES];
                    for (d, wv) in row
                        .chunks_exact_mut(LANES)
                        .zip(w[ky * k * LANES..][..k * LANES].chunks_exact(LANES))
                    {
                        for l in 0..LANES {
                            d[l] = M::mac(d[l], wv[l], gv[l]);
                        }
                    }
                }
            }
        }
    }
    for l in 0..n {
        let dxl = &mut dx[l * ip..][..ip];
        let ml = dx_mask.map(|m| &m[l * ip..][..ip]);
        for iy in 0..g.h {
            let src = &out[((iy + top) * cols + left) * LANES..][..g.w * LANES];
            let drow = &mut dxl[iy * g.w..][..g.w];
            match (accumulate, ml) {
                (true, _) => {
                    for (d, v) in drow.iter_mut().zip(src.chunks_exact(LANES)) {
                        *d += v[l];
                    }
                }
                (false, Some(m)) => {
                    let m = &m[iy * g.w..][..g.w];
                    for ((d, v), &k) in drow.iter_mut().zip(src.chunks_exact(LANES)).zip(m) {
                        *d = keep(v[l], k);
                    }
                }
                (false, None) => {
                    for (d, v) in drow.iter_mut().zip(src.chunks_exact(LANES)) {
                        *d = v[l];
                    }
                }
            }
        }
    }
}

/// Runs [`group_backward`] compiled for AVX2 + FMA where the CPU has them, like
/// [`dispatch`] but with every buffer an argument of the compiled function itself. (Passed
/// inside a kernel struct to [`dispatch`], or even with only the buffers written as
/// arguments, this kernel takes twice its time at stride 2: the compiler then vectorizes the
/// scatter of each gradient pixel across taps, with a scalar tail, instead of across
/// channels. Measured on Lite0's 672-channel 14² k5 s2 layer, 1 thread: backward 0.5 →
/// 1.2 ms.)
#[allow(clippy::too_many_arguments)]
fn group_backward_any(
    dy: &[f32],
    mask: Option<&[u8]>,
    dx: &mut [f32],
    dx_mask: Option<&[u8]>,
    n: usize,
    g: &ConvGeom,
    w: &[f32],
    accumulate: bool,
    gp: &mut [f32],
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn wide(
            dy: &[f32],
            mask: Option<&[u8]>,
            dx: &mut [f32],
            dx_mask: Option<&[u8]>,
            n: usize,
            g: &ConvGeom,
            w: &[f32],
            accumulate: bool,
            gp: &mut [f32],
            out: &mut [f32],
        ) {
            group_backward::<Fused>(dy, mask, dx, dx_mask, n, g, w, accumulate, gp, out)
        }
        if has_avx2_fma() {
            // SAFETY: the CPU features were just detected.
            return unsafe { wide(dy, mask, dx, dx_mask, n, g, w, accumulate, gp, out) };
        }
    }
    group_backward::<Separate>(dy, mask, dx, dx_mask, n, g, w, accumulate, gp, out)
}

/// Runs `f(image, c0, n)` for every group of up to [`LANES`] channels of every image, in
/// parallel.
fn for_each_group(images: usize, channels: usize, f: impl Fn(usize, usize, usize) + Sync + Send) {
    let groups = channels.div_ceil(LANES);
    (0..images * groups).into_par_iter().for_each(|t| {
        let (img, c0) = (t / groups, (t % groups) * LANES);
        f(img, c0, LANES.min(channels - c0));
    });
}

/// [`depthwise_forward`](super::depthwise_forward) on small planes.
pub(crate) fn forward(
    layer: &DepthwiseLayer,
    x: &[f32],
    y: &mut [f32],
    mask: Option<&mut [u8]>,
    images: usize,
) {
    let &DepthwiseLayer {
        g,
        weight,
        bias,
        act,
        ..
    } = layer;
    let channels = g.cout;
    let (ip, op, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    let total = images * channels * op;
    assert!(y.len() >= total && mask.as_ref().is_none_or(|m| m.len() >= total));
    let yp = SendPtr(y.as_mut_ptr());
    let mp = mask.map(|m| SendPtr(m.as_mut_ptr()));
    let (ph, pw) = ((g.oh - 1) * g.stride + g.k, (g.ow - 1) * g.stride + g.k);
    for_each_group(images, channels, |img, c0, n| {
        let w = kernel_lanes(weight, kk, c0, n, false);
        let mut init = [0.0; LANES];
        init[..n].copy_from_slice(&bias[c0..c0 + n]);
        let off = img * channels + c0;
        // SAFETY: this task alone writes planes c0 .. c0 + n of this image (checked above to
        // lie inside `y` and `mask`).
        let yt = unsafe { std::slice::from_raw_parts_mut(yp.at(off * op), n * op) };
        let mt = mp.map(|m| unsafe { std::slice::from_raw_parts_mut(m.at(off * op), n * op) });
        with_scratch(ph * pw * LANES, |xp| {
            with_scratch2(op * LANES, |out| {
                let xt = &x[off * ip..(off + n) * ip];
                dispatch(GroupForward {
                    g,
                    x: xt,
                    y: yt,
                    mask: mt,
                    n,
                    w: &w,
                    init: &init,
                    act,
                    xp,
                    out,
                });
            })
        });
    });
}

/// [`depthwise_backward`](super::depthwise_backward) on small planes.
pub(crate) fn backward(
    layer: &DepthwiseLayer,
    dy: &[f32],
    mask: Option<&[u8]>,
    dx: &mut [f32],
    dx_mask: Option<&[u8]>,
    images: usize,
    accumulate: bool,
) {
    let (g, weight) = (layer.g, layer.weight);
    let channels = g.cout;
    let (ip, op, k) = (g.h * g.w, g.oh * g.ow, g.k);
    let total = images * channels * ip;
    assert!(dx.len() >= total);
    let dxp = SendPtr(dx.as_mut_ptr());
    let grid = if g.stride == 1 {
        (g.h + k - 1) * (g.w + k - 1)
    } else {
        op
    };
    let out =
        ((g.oh - 1) * g.stride + k).max(g.pt + g.h) * ((g.ow - 1) * g.stride + k).max(g.pl + g.w);
    for_each_group(images, channels, |img, c0, n| {
        let w = kernel_lanes(weight, k * k, c0, n, g.stride == 1);
        let off = img * channels + c0;
        // SAFETY: this task alone writes planes c0 .. c0 + n of this image of `dx`.
        let dxt = unsafe { std::slice::from_raw_parts_mut(dxp.at(off * ip), n * ip) };
        let dyt = &dy[off * op..(off + n) * op];
        let mt = mask.map(|m| &m[off * op..(off + n) * op]);
        let dmt = dx_mask.map(|m| &m[off * ip..(off + n) * ip]);
        with_scratch(grid * LANES, |gp| {
            with_scratch2(out.max(ip) * LANES, |o| {
                group_backward_any(dyt, mt, dxt, dmt, n, g, &w, accumulate, gp, o);
            })
        });
    });
}

#[cfg(test)]
mod tests {
    use super::super::depthwise::tests::{check, geom};
    use super::*;

    #[test]
    fn small_planes_match_reference() {
        let mut seed = 100;
        // Channel counts below, at and above a multiple of LANES; EfficientNet's late
        // layers (7×7, 14×14 at 5×5 and 3×3, stride 2 into 7×7) and odd sizes.
        for (c, k, s, h) in [
            (5, 3, 1, 7),
            (8, 5, 1, 7),
            (13, 5, 1, 14),
            (17, 3, 1, 14),
            (9, 5, 2, 14),
            (11, 3, 2, 15),
            (3, 7, 1, 9),
            (16, 3, 1, 1),
            (6, 3, 2, 2),
        ] {
            for pads in [((k - 1) / 2, (k - 1) / 2), (0, 0), (k - 1, 0)] {
                let g = geom(c, k, s, pads, h, h);
                assert!(interleaved(&g));
                check(&g, seed);
                seed += 10;
            }
        }
    }
}
