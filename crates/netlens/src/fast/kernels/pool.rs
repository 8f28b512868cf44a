//! Max-pooling with a saved argmax, and its backward pass (each window's gradient routed
//! to its argmax). A 2×2, stride-2 pool whose windows lie inside the plane takes a
//! branch-free vectorized kernel; a 3×3 window (SqueezeNet's and ResNet's 3×3 stride-2
//! pools, padded or ceil-mode) the two-pass [`Pool3`]; any other the general row kernel
//! [`PoolRows`]. All give the same bits as the plain window loop [`reference::plane`]
//! (that loop took 28 % of SqueezeNet's pass).

use super::{dispatch_exact, for_each_plane, with_scratch, Mac, Simd};
use rayon::prelude::*;

/// Geometry of a max-pool on one plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeom {
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
}

/// Max-pool of `planes` planes; `argmax` (if given) receives the in-plane index of each
/// window's first maximum, as PyTorch picks it.
pub fn max_pool_forward(
    x: &[f32],
    y: &mut [f32],
    argmax: Option<&mut [u32]>,
    planes: usize,
    g: &PoolGeom,
) {
    let (ip, op) = (g.h * g.w, g.oh * g.ow);
    let pairs = g.k == 2 && g.stride == 2 && g.pad == 0 && 2 * g.oh <= g.h && 2 * g.ow <= g.w;
    let plane = |i: usize, yo: &mut [f32], am: Option<&mut [u32]>| {
        let xi = &x[i * ip..(i + 1) * ip];
        if pairs {
            dispatch_exact(Pool2Plane { g, xi, yo, am })
        } else if g.k == 3 {
            with_scratch(pool3_scratch(g), |scratch| {
                dispatch_exact(Pool3 {
                    g,
                    xi,
                    yo,
                    am,
                    scratch,
                })
            })
        } else {
            let len = 2 * g.stride * phase_len(g);
            with_scratch(len, |phases| {
                dispatch_exact(PoolRows {
                    g,
                    xi,
                    yo,
                    am,
                    phases,
                })
            })
        }
    };
    for_each_plane(y, argmax, op, planes, plane);
}

/// A 2×2, stride-2 max-pool of one plane whose windows all lie inside it: branch-free, so
/// that rows vectorize. Same choice as the general loop (first maximum in row-major order,
/// a NaN wins).
struct Pool2Plane<'a> {
    g: &'a PoolGeom,
    xi: &'a [f32],
    yo: &'a mut [f32],
    am: Option<&'a mut [u32]>,
}

impl Simd for Pool2Plane<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        pool2_plane(self.g, self.xi, self.yo, self.am)
    }
}

/// The body of [`Pool2Plane`] (slices as arguments, so that the compiler knows they do not
/// overlap).
#[inline(always)]
fn pool2_plane(g: &PoolGeom, xi: &[f32], yo: &mut [f32], mut am: Option<&mut [u32]>) {
    {
        for oy in 0..g.oh {
            let (r0, r1) = (2 * oy * g.w, (2 * oy + 1) * g.w);
            let (x0, x1) = (&xi[r0..r0 + 2 * g.ow], &xi[r1..r1 + 2 * g.ow]);
            let y = &mut yo[oy * g.ow..(oy + 1) * g.ow];
            let take = |best: &mut f32, at: &mut u32, v: f32, i: u32| {
                let t = v > *best || v.is_nan();
                *best = if t { v } else { *best };
                *at = if t { i } else { *at };
            };
            match am.as_deref_mut() {
                Some(am) => {
                    let a = &mut am[oy * g.ow..(oy + 1) * g.ow];
                    for (ox, (o, at)) in y.iter_mut().zip(a).enumerate() {
                        let c = 2 * ox;
                        let (mut best, mut i) = (x0[c], (r0 + c) as u32);
                        take(&mut best, &mut i, x0[c + 1], (r0 + c + 1) as u32);
                        take(&mut best, &mut i, x1[c], (r1 + c) as u32);
                        take(&mut best, &mut i, x1[c + 1], (r1 + c + 1) as u32);
                        *o = best;
                        *at = i;
                    }
                }
                None => {
                    for (ox, o) in y.iter_mut().enumerate() {
                        let c = 2 * ox;
                        let (mut best, mut i) = (x0[c], 0);
                        take(&mut best, &mut i, x0[c + 1], 0);
                        take(&mut best, &mut i, x1[c], 0);
                        take(&mut best, &mut i, x1[c + 1], 0);
                        *o = best;
                    }
                }
            }
        }
    }
}

/// Length of one phase of a padded input row in [`PoolRows`]: the `ow` windows' starts plus
/// the taps past the last start.
fn phase_len(g: &PoolGeom) -> usize {
    g.ow + (g.k - 1) / g.stride + 1
}

/// `row` padded with −∞ into `padded` (`s·len` entries from column −`p`: left padding, the
/// ceil-mode overhang and the lanes past the last window), then split into its `s` phases
/// in `split` (`phase q [t] = padded[s·t + q]`, each `len` long; for stride 1 a copy).
/// Stride 2 by pairs, so that it vectorizes.
#[inline(always)]
fn pad_and_split(
    row: &[f32],
    p: usize,
    s: usize,
    len: usize,
    padded: &mut [f32],
    split: &mut [f32],
) {
    let lo = p.min(s * len);
    let hi = (p + row.len()).min(s * len);
    padded[..lo].fill(f32::NEG_INFINITY);
    padded[hi..].fill(f32::NEG_INFINITY);
    padded[lo..hi].copy_from_slice(&row[..hi - lo]);
    if s == 2 {
        let (even, odd) = split.split_at_mut(len);
        for ((e, o), pair) in even.iter_mut().zip(odd).zip(padded.chunks_exact(2)) {
            *e = pair[0];
            *o = pair[1];
        }
    } else {
        for (t, chunk) in padded.chunks_exact(s).enumerate() {
            for (q, &v) in chunk.iter().enumerate() {
                split[q * len + t] = v;
            }
        }
    }
}

/// A max-pool of one plane with any window, stride and padding, output row by output row.
///
/// Each input row of a window is padded with −∞ (left padding, and the ceil-mode overhang on
/// the right) and split into its `stride` phases (`phase q [t] = row[stride·t + q]`), so
/// that tap `j` of every window in the row is one contiguous slice and the comparison runs in
/// vectors across the row's windows. Taps are visited row by row, column by column — each
/// window's row-major order — with the reference loop's rule (a larger value or a NaN
/// wins; −∞ padding never does, and the argmax starts at the window's first element inside
/// the plane), so the result and argmax are the reference's bits.
struct PoolRows<'a> {
    g: &'a PoolGeom,
    xi: &'a [f32],
    yo: &'a mut [f32],
    am: Option<&'a mut [u32]>,
    /// Scratch, `2 × stride × phase_len` floats: a padded row, then its phases.
    phases: &'a mut [f32],
}

impl Simd for PoolRows<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        let Self {
            g,
            xi,
            yo,
            mut am,
            phases,
        } = self;
        let (k, s, p) = (g.k, g.stride, g.pad);
        let len = phase_len(g);
        for oy in 0..g.oh {
            let y0 = (oy * s) as isize - p as isize;
            let ya = y0.max(0) as usize;
            let yb = ((y0 + k as isize).max(0) as usize).min(g.h);
            let y = &mut yo[oy * g.ow..(oy + 1) * g.ow];
            y.fill(f32::NEG_INFINITY);
            if let Some(am) = am.as_deref_mut() {
                // The window's first element inside the plane.
                for (ox, a) in am[oy * g.ow..(oy + 1) * g.ow].iter_mut().enumerate() {
                    let xa = (ox * s).saturating_sub(p);
                    *a = (ya * g.w + xa) as u32;
                }
            }
            for iy in ya..yb {
                let row = &xi[iy * g.w..(iy + 1) * g.w];
                // The row padded with −∞ (`s·len` entries from column −p), then split into
                // its phases.
                let (padded, split) = phases.split_at_mut(s * len);
                pad_and_split(row, p, s, len, padded, split);
                let phases = &*split;
                for j in 0..k {
                    let tap = &phases[(j % s) * len + j / s..][..g.ow];
                    // In-plane index of tap j of window 0 (wrapping below zero: padding,
                    // never taken).
                    let base = (iy * g.w + j).wrapping_sub(p) as u32;
                    match am.as_deref_mut() {
                        Some(am) => {
                            let a = &mut am[oy * g.ow..(oy + 1) * g.ow];
                            for (ox, ((b, at), &v)) in y.iter_mut().zip(a).zip(tap).enumerate() {
                                let t = v > *b || v.is_nan();
                                *b = if t { v } else { *b };
                                let i = base.wrapping_add((s * ox) as u32);
                                *at = if t { i } else { *at };
                            }
                        }
                        None => {
                            for (b, &v) in y.iter_mut().zip(tap) {
                                let t = v > *b || v.is_nan();
                                *b = if t { v } else { *b };
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Scratch floats [`Pool3`] needs: a padded row, its phases, every input row's window
/// maxima and their columns (as `u32` bits), and a row of −∞.
fn pool3_scratch(g: &PoolGeom) -> usize {
    let wd = g.ow.next_multiple_of(8);
    2 * g.stride * (wd + 2 / g.stride + 1) + 2 * g.h * wd + wd
}

/// A 3×3 max-pool (any stride and padding: SqueezeNet's and ResNet's 3×3 stride-2 pools) in
/// two passes with no loop-carried state, so that both vectorize across a row's windows:
/// across, every input row's three taps per window (phases as in [`PoolRows`]), once per
/// row; then down, each output row's three window rows (a row outside the plane reads a row
/// of −∞). Same rule and bits as [`reference::plane`]: within a row the first maximum, or
/// the last NaN, wins; down the rows the same, so a window's first maximum in row-major
/// order (its last NaN) wins; −∞ never does, and the argmax starts at the window's first
/// element inside the plane. [`PoolRows`] updated each output row in memory once per tap
/// (nine conditional stores per window) and split each input row once per window row.
struct Pool3<'a> {
    g: &'a PoolGeom,
    xi: &'a [f32],
    yo: &'a mut [f32],
    am: Option<&'a mut [u32]>,
    /// Scratch, [`pool3_scratch`] floats.
    scratch: &'a mut [f32],
}

/// `(b, a)` after tap `(v, i)`: the tap wins if larger, or a NaN.
#[inline(always)]
fn take(b: f32, a: u32, v: f32, i: u32) -> (f32, u32) {
    let t = (v > b) | v.is_nan();
    (if t { v } else { b }, if t { i } else { a })
}

impl Simd for Pool3<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        let Self {
            g,
            xi,
            yo,
            mut am,
            scratch,
        } = self;
        let (s, p) = (g.stride, g.pad);
        let wd = g.ow.next_multiple_of(8);
        let len = wd + 2 / s + 1;
        let (rowbuf, rest) = scratch.split_at_mut(2 * s * len);
        let (maxima, rest) = rest.split_at_mut(g.h * wd);
        let (cols, ninf) = rest.split_at_mut(g.h * wd);
        ninf.fill(f32::NEG_INFINITY);
        let (padded, split) = rowbuf.split_at_mut(s * len);
        for iy in 0..g.h {
            let row = &xi[iy * g.w..(iy + 1) * g.w];
            pad_and_split(row, p, s, len, padded, split);
            let tap = |j: usize| &split[(j % s) * len + j / s..][..wd];
            let (t0, t1, t2) = (tap(0), tap(1), tap(2));
            let m = &mut maxima[iy * wd..(iy + 1) * wd];
            let c = &mut cols[iy * wd..(iy + 1) * wd];
            for (ox, (((m, c), (&v0, &v1)), &v2)) in m
                .iter_mut()
                .zip(c)
                .zip(t0.iter().zip(t1))
                .zip(t2)
                .enumerate()
            {
                // Columns of the taps (wrapping below zero: padding, never taken) and of
                // the window's first element inside the plane.
                let x0 = (s * ox) as u32;
                let first = x0.saturating_sub(p as u32);
                let (b, a) = take(f32::NEG_INFINITY, first, v0, x0.wrapping_sub(p as u32));
                let (b, a) = take(b, a, v1, x0.wrapping_add(1).wrapping_sub(p as u32));
                let (b, a) = take(b, a, v2, x0.wrapping_add(2).wrapping_sub(p as u32));
                *m = b;
                *c = f32::from_bits(a);
            }
        }
        let (maxima, cols, ninf) = (&*maxima, &*cols, &*ninf);
        for oy in 0..g.oh {
            let y0 = (oy * s) as isize - p as isize;
            let ya = y0.max(0) as usize;
            // The window's three rows: a row outside the plane is −∞ (never taken).
            let rows: [(&[f32], &[f32], u32); 3] = std::array::from_fn(|d| {
                let iy = y0 + d as isize;
                if iy >= 0 && (iy as usize) < g.h {
                    let iy = iy as usize;
                    (
                        &maxima[iy * wd..][..g.ow],
                        &cols[iy * wd..][..g.ow],
                        (iy * g.w) as u32,
                    )
                } else {
                    (&ninf[..g.ow], &ninf[..g.ow], 0)
                }
            });
            let y = &mut yo[oy * g.ow..(oy + 1) * g.ow];
            let top = (ya * g.w) as u32;
            let (r0, r1, r2) = (rows[0], rows[1], rows[2]);
            match am.as_deref_mut() {
                Some(am) => {
                    let a = &mut am[oy * g.ow..(oy + 1) * g.ow];
                    for (ox, (y, a)) in y.iter_mut().zip(a).enumerate() {
                        // The window's first element inside the plane: its first row's
                        // first column (the column is the same in every row).
                        let x0 = (s * ox) as u32;
                        let f = top + x0.saturating_sub(p as u32);
                        let (b, i) = take(
                            f32::NEG_INFINITY,
                            f,
                            r0.0[ox],
                            r0.2.wrapping_add(r0.1[ox].to_bits()),
                        );
                        let (b, i) = take(b, i, r1.0[ox], r1.2.wrapping_add(r1.1[ox].to_bits()));
                        let (b, i) = take(b, i, r2.0[ox], r2.2.wrapping_add(r2.1[ox].to_bits()));
                        *y = b;
                        *a = i;
                    }
                }
                None => {
                    for (ox, y) in y.iter_mut().enumerate() {
                        let b = f32::NEG_INFINITY;
                        let b = take(b, 0, r0.0[ox], 0).0;
                        let b = take(b, 0, r1.0[ox], 0).0;
                        *y = take(b, 0, r2.0[ox], 0).0;
                    }
                }
            }
        }
    }
}

/// Routes each window's gradient to its saved argmax, then multiplies each plane by `keep`
/// when given (the input's activation mask, applied as the gradient is written; only
/// without `accumulate`).
pub fn max_pool_backward(
    dy: &[f32],
    argmax: &[u32],
    dx: &mut [f32],
    planes: usize,
    g: &PoolGeom,
    accumulate: bool,
    keep: Option<&[u8]>,
) {
    let (ip, op) = (g.h * g.w, g.oh * g.ow);
    assert!(keep.is_none_or(|k| !accumulate && k.len() >= planes * ip));
    dx[..planes * ip]
        .par_chunks_mut(ip)
        .enumerate()
        .for_each(|(i, dxi)| {
            if !accumulate {
                dxi.fill(0.0);
            }
            for (&a, &v) in argmax[i * op..(i + 1) * op]
                .iter()
                .zip(&dy[i * op..(i + 1) * op])
            {
                dxi[a as usize] += v;
            }
            if let Some(k) = keep {
                super::elementwise::mask_slice(dxi, &k[i * ip..(i + 1) * ip]);
            }
        });
}

/// Plain references; [`plane`] is also the kernel for windows other than 2×2, stride 2.
pub mod reference {
    use super::PoolGeom;

    /// Max-pool of one plane, window by window: each output the first maximum of its
    /// window in row-major order (a NaN wins), `am` its in-plane index.
    pub fn plane(g: &PoolGeom, xi: &[f32], yo: &mut [f32], mut am: Option<&mut [u32]>) {
        for oy in 0..g.oh {
            let y0 = (oy * g.stride) as isize - g.pad as isize;
            let (ya, yb) = (y0.max(0) as usize, ((y0 + g.k as isize) as usize).min(g.h));
            for ox in 0..g.ow {
                let x0 = (ox * g.stride) as isize - g.pad as isize;
                let (xa, xb) = (x0.max(0) as usize, ((x0 + g.k as isize) as usize).min(g.w));
                let mut best = f32::NEG_INFINITY;
                let mut at = ya * g.w + xa;
                for iy in ya..yb {
                    for ix in xa..xb {
                        let v = xi[iy * g.w + ix];
                        if v > best || v.is_nan() {
                            best = v;
                            at = iy * g.w + ix;
                        }
                    }
                }
                yo[oy * g.ow + ox] = best;
                if let Some(am) = am.as_deref_mut() {
                    am[oy * g.ow + ox] = at as u32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::random;
    use super::*;

    #[test]
    fn matches_reference() {
        // 2×2 stride 2 (even, odd, ceil-mode sizes), SqueezeNet's 3×3 stride 2, padded.
        for (i, &(k, stride, pad, h, w, ceil)) in [
            (2, 2, 0, 8, 10, false),
            (2, 2, 0, 9, 7, false),
            (2, 2, 0, 9, 7, true),
            (3, 2, 0, 13, 13, true),
            (3, 2, 0, 111, 111, true),
            (3, 2, 1, 112, 112, false),
            (3, 2, 1, 9, 10, true),
            (3, 1, 1, 6, 5, false),
            (3, 3, 1, 14, 16, false),
            (5, 3, 2, 17, 11, true),
            (4, 1, 0, 4, 7, false),
        ]
        .iter()
        .enumerate()
        {
            let out = |n: usize| {
                let span = n + 2 * pad - k;
                if ceil {
                    span.div_ceil(stride) + 1
                } else {
                    span / stride + 1
                }
            };
            let g = PoolGeom {
                k,
                stride,
                pad,
                h,
                w,
                oh: out(h),
                ow: out(w),
            };
            let planes = 3;
            let (ip, op) = (h * w, g.oh * g.ow);
            let mut x = random(planes * ip, i as u64);
            // Ties, NaNs, −∞ (a window of −∞ only at the plane's corner), and a plane of
            // few distinct values (ties everywhere).
            x[1] = x[0];
            x[ip + 3] = f32::NAN;
            x[ip + 4] = f32::NAN;
            x[..2].fill(f32::NEG_INFINITY);
            x[w] = f32::NEG_INFINITY;
            if w > 1 && h > 1 {
                x[w + 1] = f32::NEG_INFINITY;
            }
            for v in &mut x[2 * ip..3 * ip] {
                *v = (*v * 2.0).round();
            }
            let (mut y, mut am) = (vec![0.0; planes * op], vec![0u32; planes * op]);
            max_pool_forward(&x, &mut y, Some(&mut am), planes, &g);
            let (mut yr, mut ar) = (vec![0.0; planes * op], vec![0u32; planes * op]);
            for p in 0..planes {
                let o = p * op..(p + 1) * op;
                reference::plane(
                    &g,
                    &x[p * ip..(p + 1) * ip],
                    &mut yr[o.clone()],
                    Some(&mut ar[o]),
                );
            }
            let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&y), bits(&yr));
            assert_eq!(am, ar);
            let dy = random(planes * op, 50 + i as u64);
            let mut dx = vec![1.0; planes * ip];
            max_pool_backward(&dy, &am, &mut dx, planes, &g, false, None);
            let mut want = vec![0.0; planes * ip];
            for p in 0..planes {
                for o in 0..op {
                    want[p * ip + ar[p * op + o] as usize] += dy[p * op + o];
                }
            }
            assert_eq!(dx, want);
            // The input's activation mask applied as the gradient is written: the bytes of
            // `apply_mask` after it.
            let keep = super::super::testing::random_mask(planes * ip, 60 + i as u64);
            super::super::apply_mask(&mut want, &keep);
            max_pool_backward(&dy, &am, &mut dx, planes, &g, false, Some(&keep));
            assert_eq!(bits(&dx), bits(&want));
        }
    }
}
