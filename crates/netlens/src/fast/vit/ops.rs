//! The ViT fast path's kernels: matrix products through the `gemm` crate (in fixed column
//! blocks, one thread each; backward from a `Wᵀ` copy where that pays), and the per-token
//! row kernels — LayerNorm forward and backward, bias + exact (erf) GELU with its saved
//! derivative, bias adds, softmax forward and backward — each one pass over its rows,
//! compiled in the AVX2 + FMA copy of `fast::kernels` ([`dispatch`]) and shared out over
//! the threads in blocks of rows.

use crate::fast::kernels::dense::dot;
use crate::fast::kernels::{dispatch, exp, flush, Mac, Simd};
use gemm::Parallelism;
use rayon::prelude::*;
use std::ops::Range;

/// A strided read-only matrix view: first element, row stride, column stride (elements).
#[derive(Clone, Copy)]
pub(super) struct View {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

// SAFETY: a view only reads; the functions taking one require its buffer to be live and
// unwritten for the whole call, whichever thread reads it.
unsafe impl Send for View {}
unsafe impl Sync for View {}

impl View {
    /// A row-major matrix whose rows are `rs` apart.
    pub(super) fn rows(s: &[f32], rs: usize) -> Self {
        Self {
            ptr: s.as_ptr(),
            rs: rs as isize,
            cs: 1,
        }
    }

    /// The same matrix from column `c0` on.
    fn skip_cols(self, c0: usize) -> Self {
        Self {
            ptr: self.ptr.wrapping_offset(c0 as isize * self.cs),
            ..self
        }
    }

    /// The same matrix from row `r0` on.
    fn skip_rows(self, r0: usize) -> Self {
        Self {
            ptr: self.ptr.wrapping_offset(r0 as isize * self.rs),
            ..self
        }
    }

    /// The transpose of a row-major matrix whose rows are `rs` apart.
    pub(super) fn cols(s: &[f32], rs: usize) -> Self {
        Self {
            ptr: s.as_ptr(),
            rs: 1,
            cs: rs as isize,
        }
    }
}

/// `dst[m×n] = (dst if accumulate) + scale · lhs[m×k] · rhs[k×n]`, `dst` row-major with
/// rows `dst_rs` apart.
///
/// # Safety
/// Every view must lie inside a live buffer for the shape given, and `dst` must not overlap
/// the inputs nor be written by another task at the same time.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: View,
    rhs: View,
    scale: f32,
    par: Parallelism,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        lhs.ptr,
        lhs.cs,
        lhs.rs,
        rhs.ptr,
        rhs.cs,
        rhs.rs,
        1.0,
        scale,
        false,
        false,
        false,
        par,
    )
}

/// Column blocks a dense layer's product is split into: a fixed number (never the thread
/// count, so that the bytes do not depend on it: the gemm crate's blocking follows the
/// shape it is given), each block a product of its own on one thread, with threads inside
/// it only where there are more threads than blocks. Measured on 2 threads for ViT-B/16's
/// products (GFLOP/s, the gemm crate sharing one product among both threads → four blocks):
/// at 197 rows qkv 277 → 291, out 248 → 289, fc2 249 → 299, their backward products
/// 242–249 → 299–301; at 1576 rows 317 → 320–341.
const COLUMN_BLOCKS: usize = 4;

/// `dst[m×n] (+)= lhs[m×k] · rhs[k×n]` in [`COLUMN_BLOCKS`] column blocks (multiples of 16
/// columns) shared out among the threads; `dst` row-major with rows `dst_rs` apart.
///
/// # Safety
/// As for [`matmul`].
unsafe fn blocked_matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: View,
    rhs: View,
) {
    let width = n.div_ceil(COLUMN_BLOCKS).next_multiple_of(16);
    let blocks = n.div_ceil(width.max(1));
    let inner = match rayon::current_num_threads() / blocks.max(1) {
        0 | 1 => Parallelism::None,
        t => Parallelism::Rayon(t),
    };
    let dst = dst as usize;
    (0..blocks).into_par_iter().for_each(|b| {
        let (c0, cols) = (b * width, width.min(n - b * width));
        let rhs = rhs.skip_cols(c0);
        // SAFETY: block b writes only columns c0..c0+cols of dst; the caller vouches for
        // the views.
        unsafe {
            matmul(
                (m, cols, k),
                (dst as *mut f32).add(c0),
                dst_rs,
                accumulate,
                lhs,
                rhs,
                1.0,
                inner,
            )
        }
    });
}

/// A dense layer `y = x W + b` with `W` stored `[inputs, outputs]` row-major (PyTorch's
/// weight transposed), as the token-wise linear layers and the patch projection use it, and
/// again as `Wᵀ` (`[outputs, inputs]`, PyTorch's layout) for the backward product where that
/// pays: at batch 1 (197 rows) the gemm crate runs `dy Wᵀ` 1.5–1.9× faster from that
/// row-major copy than from `W` read transposed for ViT-B/16's qkv, out and fc1 products
/// (2 threads; ≈ 1.1× at 1576 rows), but only 1.08× for fc2 (3072 → 768), which keeps
/// reading `W` (its copy would cost 113 MB). The copies cost ViT-B/16 227 MB.
#[derive(Debug, Clone)]
pub struct Dense {
    pub w: Vec<f32>,
    /// `Wᵀ`, `[outputs, inputs]` row-major; empty for a layer with more inputs than outputs.
    pub wt: Vec<f32>,
    pub bias: Vec<f32>,
    pub inputs: usize,
    pub outputs: usize,
}

impl Dense {
    /// The layer of `w` (`[inputs, outputs]` row-major) and `bias`, with its `Wᵀ` copy.
    pub fn new(w: Vec<f32>, bias: Vec<f32>, inputs: usize, outputs: usize) -> Self {
        let wt = if inputs <= outputs {
            crate::fast::kernels::transpose(&w, inputs, outputs)
        } else {
            Vec::new()
        };
        Self {
            w,
            wt,
            bias,
            inputs,
            outputs,
        }
    }

    /// `y (+)= x W` for `rows` rows (the bias is added by the caller's next row pass).
    pub(super) fn forward(&self, x: &[f32], rows: usize, y: &mut [f32], accumulate: bool) {
        let (k, n) = (self.inputs, self.outputs);
        self.forward_part(x, k, rows, 0..n, y, n, accumulate)
    }

    /// `y (+)= x W[:, cols]`: the output columns `cols` of `rows` rows of `x`, whose rows
    /// are `x_rs` apart, into `y`, whose rows are `y_rs` apart (`y` starts at the first
    /// column written).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward_part(
        &self,
        x: &[f32],
        x_rs: usize,
        rows: usize,
        cols: Range<usize>,
        y: &mut [f32],
        y_rs: usize,
        accumulate: bool,
    ) {
        let (k, n) = (self.inputs, self.outputs);
        if rows == 0 || cols.is_empty() {
            return;
        }
        assert!(
            x_rs >= k
                && y_rs >= cols.len()
                && cols.end <= n
                && x.len() >= (rows - 1) * x_rs + k
                && y.len() >= (rows - 1) * y_rs + cols.len()
                && self.w.len() >= k * n
        );
        // SAFETY: the sizes were just checked; `y` is borrowed mutably, so it is not an input.
        unsafe {
            blocked_matmul(
                (rows, cols.len(), k),
                y.as_mut_ptr(),
                y_rs,
                accumulate,
                View::rows(x, x_rs),
                View::rows(&self.w, n).skip_cols(cols.start),
            )
        }
    }

    /// Backward-data: `dx (+)= dy Wᵀ`.
    pub(super) fn backward(&self, dy: &[f32], rows: usize, dx: &mut [f32], accumulate: bool) {
        let (k, n) = (self.inputs, self.outputs);
        self.backward_part(dy, n, rows, 0..n, dx, k, accumulate)
    }

    /// Backward-data of the output columns `cols` alone: `dx (+)= dy W[:, cols]ᵀ` for
    /// `rows` rows, `dy` (starting at its first column of `cols`) with rows `dy_rs` apart,
    /// `dx` with rows `dx_rs` apart.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn backward_part(
        &self,
        dy: &[f32],
        dy_rs: usize,
        rows: usize,
        cols: Range<usize>,
        dx: &mut [f32],
        dx_rs: usize,
        accumulate: bool,
    ) {
        let (k, n) = (self.inputs, self.outputs);
        if rows == 0 || k == 0 {
            return;
        }
        assert!(
            dy_rs >= cols.len()
                && dx_rs >= k
                && cols.end <= n
                && dy.len() >= (rows - 1) * dy_rs + cols.len()
                && dx.len() >= (rows - 1) * dx_rs + k
                && self.w.len() >= k * n
        );
        // Rows `cols` of `Wᵀ`: from the row-major copy where there is one, else `W` read
        // transposed.
        let wt = if self.wt.is_empty() {
            View::cols(&self.w, n).skip_rows(cols.start)
        } else {
            assert!(self.wt.len() >= k * n);
            View::rows(&self.wt, k).skip_rows(cols.start)
        };
        // SAFETY: as in `forward_part`.
        unsafe {
            blocked_matmul(
                (rows, k, cols.len()),
                dx.as_mut_ptr(),
                dx_rs,
                accumulate,
                View::rows(dy, dy_rs),
                wt,
            )
        }
    }
}

/// Rows per parallel task of a row pass over `width`-wide rows: about 16 k values.
fn rows_per_task(width: usize) -> usize {
    (16384 / width.max(1)).max(1)
}

/// `Σ v` in sixteen running sums.
#[inline(always)]
fn sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let c = v.chunks_exact(16);
    let r = c.remainder();
    for x in c {
        for l in 0..16 {
            acc[l] += x[l];
        }
    }
    acc.iter().sum::<f32>() + r.iter().sum::<f32>()
}

/// A LayerNorm's parameters (PyTorch's `nn.LayerNorm`: biased variance, `eps` inside the
/// square root).
#[derive(Debug, Clone)]
pub struct Norm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub eps: f32,
}

/// One LayerNorm row: `h = x̂ γ + β` with `x̂ = (x − mean) · rstd`; saves `x̂` and `rstd`.
struct NormRows<'a> {
    norm: &'a Norm,
    x: &'a [f32],
    h: &'a mut [f32],
    xhat: &'a mut [f32],
    rstd: &'a mut [f32],
}

impl Simd for NormRows<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        let c = self.norm.gamma.len();
        let (g, b) = (&self.norm.gamma[..c], &self.norm.beta[..c]);
        let rows = self.x.chunks_exact(c).zip(self.h.chunks_exact_mut(c));
        for ((x, h), (xh, r)) in rows.zip(self.xhat.chunks_exact_mut(c).zip(self.rstd.iter_mut())) {
            let mean = sum(x) / c as f32;
            let mut acc = [0.0f32; 16];
            let cx = x.chunks_exact(16);
            let rest = cx.remainder();
            for v in cx {
                for l in 0..16 {
                    let d = v[l] - mean;
                    acc[l] = M::mac(acc[l], d, d);
                }
            }
            let mut var = acc.iter().sum::<f32>();
            for &v in rest {
                var = M::mac(var, v - mean, v - mean);
            }
            let rs = 1.0 / (var / c as f32 + self.norm.eps).sqrt();
            *r = rs;
            for i in 0..c {
                let v = (x[i] - mean) * rs;
                xh[i] = v;
                h[i] = M::mac(b[i], v, g[i]);
            }
        }
    }
}

/// LayerNorm forward of `rows` rows of `x` (width `γ.len()`) into `h`, saving `x̂`, `rstd`.
pub(super) fn norm_forward(
    norm: &Norm,
    x: &[f32],
    h: &mut [f32],
    xhat: &mut [f32],
    rstd: &mut [f32],
    rows: usize,
) {
    let c = norm.gamma.len();
    let per = rows_per_task(c);
    x[..rows * c]
        .par_chunks(per * c)
        .zip(h[..rows * c].par_chunks_mut(per * c))
        .zip(xhat[..rows * c].par_chunks_mut(per * c))
        .zip(rstd[..rows].par_chunks_mut(per))
        .for_each(|(((x, h), xhat), rstd)| {
            dispatch(NormRows {
                norm,
                x,
                h,
                xhat,
                rstd,
            })
        });
}

/// LayerNorm backward rows: `g += rstd (dh γ − mean(dh γ) − x̂ mean(dh γ x̂))`.
struct NormBackRows<'a> {
    gamma: &'a [f32],
    dh: &'a [f32],
    xhat: &'a [f32],
    rstd: &'a [f32],
    g: &'a mut [f32],
}

impl Simd for NormBackRows<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        let c = self.gamma.len();
        let gamma = self.gamma;
        let rows = self.dh.chunks_exact(c).zip(self.xhat.chunks_exact(c));
        for ((dh, xh), (g, &rs)) in rows.zip(self.g.chunks_exact_mut(c).zip(self.rstd)) {
            let (mut a, mut b) = ([0.0f32; 16], [0.0f32; 16]);
            let mut i = 0;
            while i + 16 <= c {
                for l in 0..16 {
                    let gh = dh[i + l] * gamma[i + l];
                    a[l] += gh;
                    b[l] = M::mac(b[l], gh, xh[i + l]);
                }
                i += 16;
            }
            let (mut sa, mut sb) = (a.iter().sum::<f32>(), b.iter().sum::<f32>());
            for j in i..c {
                let gh = dh[j] * gamma[j];
                sa += gh;
                sb = M::mac(sb, gh, xh[j]);
            }
            let (ma, mb) = (sa / c as f32, sb / c as f32);
            for j in 0..c {
                let gh = dh[j] * gamma[j];
                g[j] = M::mac(g[j], rs, gh - ma - xh[j] * mb);
            }
        }
    }
}

/// LayerNorm backward of `rows` rows, added into `g`.
pub(super) fn norm_backward(
    norm: &Norm,
    dh: &[f32],
    xhat: &[f32],
    rstd: &[f32],
    g: &mut [f32],
    rows: usize,
) {
    let c = norm.gamma.len();
    let per = rows_per_task(c);
    dh[..rows * c]
        .par_chunks(per * c)
        .zip(xhat[..rows * c].par_chunks(per * c))
        .zip(rstd[..rows].par_chunks(per))
        .zip(g[..rows * c].par_chunks_mut(per * c))
        .for_each(|(((dh, xhat), rstd), g)| {
            dispatch(NormBackRows {
                gamma: &norm.gamma,
                dh,
                xhat,
                rstd,
                g,
            })
        });
}

/// Bias add (`y += b` per row), and optionally exact GELU after it, with its derivative
/// if `deriv` is given.
struct BiasRows<'a> {
    bias: &'a [f32],
    y: &'a mut [f32],
    gelu: bool,
    deriv: Option<&'a mut [f32]>,
}

/// `Φ(u)` (the standard normal CDF, `½ erfc(−u/√2)`) and `φ(u)` (its density), with
/// `erfc` by the Chebyshev fit of Numerical Recipes (`erfcc`, fractional error < 1.2e-7 at
/// every argument, so the negative tail keeps its relative accuracy) — branch-free, so that
/// the loop over it vectorizes.
#[inline(always)]
pub(super) fn phi<M: Mac>(u: f32) -> (f32, f32) {
    (cdf::<M>(u), exp(-0.5 * u * u) * 0.398_942_3)
}

/// `Φ(u)` alone (see [`phi`]).
#[inline(always)]
fn cdf<M: Mac>(u: f32) -> f32 {
    // The coefficients as Numerical Recipes prints them (rounded to float32 on compilation).
    #[allow(clippy::excessive_precision)]
    const C: [f32; 10] = [
        0.170_872_77,
        -0.822_152_23,
        1.488_515_87,
        -1.135_203_98,
        0.278_868_07,
        -0.186_288_06,
        0.096_784_18,
        0.374_091_96,
        1.000_023_68,
        -1.265_512_23,
    ];
    let z = u.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / M::mac(1.0, 0.5, z);
    let mut p = C[0];
    for &c in &C[1..] {
        p = M::mac(c, p, t);
    }
    let tail = 0.5 * t * exp(p - z * z);
    if u < 0.0 {
        tail
    } else {
        1.0 - tail
    }
}

impl Simd for BiasRows<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        let c = self.bias.len();
        let b = self.bias;
        match self.deriv {
            None if self.gelu => {
                for y in self.y.chunks_exact_mut(c) {
                    for (v, &b) in y.iter_mut().zip(b) {
                        let u = *v + b;
                        *v = flush(u * cdf::<M>(u));
                    }
                }
            }
            None => {
                for y in self.y.chunks_exact_mut(c) {
                    for (v, &b) in y.iter_mut().zip(b) {
                        *v += b;
                    }
                }
            }
            Some(d) => {
                for (y, d) in self.y.chunks_exact_mut(c).zip(d.chunks_exact_mut(c)) {
                    for ((v, d), &b) in y.iter_mut().zip(d.iter_mut()).zip(b) {
                        let u = *v + b;
                        let (cdf, pdf) = phi::<M>(u);
                        *v = flush(u * cdf);
                        *d = flush(M::mac(cdf, u, pdf));
                    }
                }
            }
        }
    }
}

/// `y[r] += bias` for `rows` rows, then GELU in place if `gelu` (saving `GELU'` in `deriv`
/// if given).
pub(super) fn bias_act(
    bias: &[f32],
    y: &mut [f32],
    gelu: bool,
    deriv: Option<&mut [f32]>,
    rows: usize,
) {
    let c = bias.len();
    let per = rows_per_task(c);
    let y = &mut y[..rows * c];
    match deriv {
        None => y.par_chunks_mut(per * c).for_each(|y| {
            dispatch(BiasRows {
                bias,
                y,
                gelu,
                deriv: None,
            })
        }),
        Some(d) => y
            .par_chunks_mut(per * c)
            .zip(d[..rows * c].par_chunks_mut(per * c))
            .for_each(|(y, d)| {
                dispatch(BiasRows {
                    bias,
                    y,
                    gelu: true,
                    deriv: Some(d),
                })
            }),
    }
}

/// `g *= d` elementwise (the GELU backward), in parallel.
pub(super) fn times(g: &mut [f32], d: &[f32]) {
    struct Times<'a>(&'a mut [f32], &'a [f32]);
    impl Simd for Times<'_> {
        type Output = ();
        #[inline(always)]
        fn run<M: Mac>(self) {
            for (g, &d) in self.0.iter_mut().zip(self.1) {
                *g *= d;
            }
        }
    }
    let len = g.len();
    g.par_chunks_mut(16384)
        .zip(d[..len].par_chunks(16384))
        .for_each(|(g, d)| dispatch(Times(g, d)));
}

/// Softmax of each `width`-wide row of `s` in place.
pub(super) struct SoftmaxRows<'a> {
    pub s: &'a mut [f32],
    pub width: usize,
}

impl Simd for SoftmaxRows<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        for row in self.s.chunks_exact_mut(self.width) {
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            for v in row.iter_mut() {
                *v = exp(*v - m);
            }
            let inv = 1.0 / sum(row);
            for v in row.iter_mut() {
                *v = flush(*v * inv);
            }
        }
    }
}

/// Softmax backward of each row, in place in `dp`: `ds = scale · p (dp − Σ dp p)`.
pub(super) struct SoftmaxBackRows<'a> {
    pub p: &'a [f32],
    pub dp: &'a mut [f32],
    pub width: usize,
    pub scale: f32,
}

impl Simd for SoftmaxBackRows<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        let w = self.width;
        for (p, dp) in self.p.chunks_exact(w).zip(self.dp.chunks_exact_mut(w)) {
            let d = dot::<M>(p, dp);
            for (g, &p) in dp.iter_mut().zip(p) {
                *g = self.scale * p * (*g - d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fast::kernels::Separate;

    /// `Φ(u)` in float64: the Taylor series of erf for |z| < 2.5 (terms below e^6.25, so
    /// 1e-13 is left), Laplace's continued fraction of erfc beyond (80 levels).
    fn cdf64(u: f64) -> f64 {
        let z = u / std::f64::consts::SQRT_2;
        let sqrt_pi = std::f64::consts::PI.sqrt();
        if z.abs() < 2.5 {
            let (mut term, mut s) = (z, z);
            for n in 1..200 {
                term *= -z * z / n as f64;
                s += term / (2 * n + 1) as f64;
            }
            0.5 * (1.0 + 2.0 / sqrt_pi * s)
        } else {
            let a = z.abs();
            let mut f = a;
            for k in (1..80).rev() {
                f = a + (k as f64 / 2.0) / f;
            }
            let tail = 0.5 * (-a * a).exp() / sqrt_pi / f;
            if z < 0.0 {
                tail
            } else {
                1.0 - tail
            }
        }
    }

    /// A dense layer's products, in fixed column blocks, give the same bytes on 1, 2, 3 and
    /// 9 threads (9: threads inside each block), forward and backward (with and without
    /// the `Wᵀ` copy), and match a float64 product.
    #[test]
    fn dense_products_same_bytes_for_any_threads() {
        let rnd = |n: usize, seed: u64| crate::fast::kernels::testing::random(n, seed);
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        // (rows, inputs, outputs): wider out (a Wᵀ copy), narrower out (none), odd widths.
        for &(rows, k, n) in &[(197, 96, 200), (37, 300, 72), (5, 33, 17)] {
            let layer = Dense::new(rnd(k * n, 1), vec![0.0; n], k, n);
            assert_eq!(layer.wt.is_empty(), k > n);
            let (x, dy) = (rnd(rows * k, 2), rnd(rows * n, 3));
            let run = |threads: usize| {
                crate::fast::kernels::testing::on_threads(threads, || {
                    let (mut y, mut dx) = (vec![0.0; rows * n], vec![0.0; rows * k]);
                    layer.forward(&x, rows, &mut y, false);
                    layer.backward(&dy, rows, &mut dx, false);
                    (bits(&y), bits(&dx))
                })
            };
            let one = run(1);
            for t in [2, 3, 9] {
                assert!(run(t) == one, "{rows}×{k}→{n}: {t} threads differ");
            }
            // y = x W against float64 (k terms of size ~1: 1e-5 relative to the row's scale).
            let y: Vec<f32> = one.0.iter().map(|&b| f32::from_bits(b)).collect();
            for r in [0, rows / 2, rows - 1] {
                for c in [0, n / 2, n - 1] {
                    let want: f64 = (0..k)
                        .map(|i| x[r * k + i] as f64 * layer.w[i * n + c] as f64)
                        .sum();
                    assert!((y[r * n + c] as f64 - want).abs() <= 1e-5 * k as f64);
                }
            }
        }
    }

    #[test]
    fn gelu_cdf_and_density_match_float64() {
        // Φ to 3e-7 absolute everywhere, and relative in the tail down to u = −9 to 2e-5 (the
        // fit's own 1.2e-7 plus the float32 rounding of z² inside exp(−z² + …), up to
        // 40·2⁻²⁴ relative in the argument there); φ to 1e-5 relative (the same rounding of
        // u²/2). Measured: 1.9e-7, 1.2e-5, 6.1e-6.
        let mut worst = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..=180_000 {
            let u = -9.0 + i as f64 * 1e-4;
            let (cdf, pdf) = phi::<Separate>(u as f32);
            let want = cdf64(u);
            let want_pdf = (-0.5 * u * u).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let abs = (f64::from(cdf) - want).abs();
            worst.0 = worst.0.max(abs);
            worst.1 = worst.1.max(abs / want);
            worst.2 = worst.2.max((f64::from(pdf) - want_pdf).abs() / want_pdf);
        }
        assert!(
            worst.0 < 3e-7 && worst.1 < 2e-5 && worst.2 < 1e-5,
            "{worst:?}"
        );
    }
}
