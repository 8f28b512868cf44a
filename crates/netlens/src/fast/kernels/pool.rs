//! Max-pooling with a saved argmax, and its backward pass (each window's gradient routed
//! to its argmax). A 2×2, stride-2 pool whose windows lie inside the plane takes a
//! branch-free vectorized kernel; any other takes the plain window loop, [`reference::plane`].

use super::{dispatch, for_each_plane, Mac, Simd};
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
            dispatch(Pool2Plane { g, xi, yo, am })
        } else {
            reference::plane(g, xi, yo, am)
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

/// Routes each window's gradient to its saved argmax.
pub fn max_pool_backward(
    dy: &[f32],
    argmax: &[u32],
    dx: &mut [f32],
    planes: usize,
    g: &PoolGeom,
    accumulate: bool,
) {
    let (ip, op) = (g.h * g.w, g.oh * g.ow);
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
            (3, 1, 1, 6, 5, false),
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
            // Ties and a NaN.
            x[1] = x[0];
            x[ip + 3] = f32::NAN;
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
            max_pool_backward(&dy, &am, &mut dx, planes, &g, false);
            let mut want = vec![0.0; planes * ip];
            for p in 0..planes {
                for o in 0..op {
                    want[p * ip + ar[p * op + o] as usize] += dy[p * op + o];
                }
            }
            assert_eq!(dx, want);
        }
    }
}
