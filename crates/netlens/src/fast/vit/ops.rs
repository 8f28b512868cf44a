//! The ViT fast path's per-token row kernels (its matrix products are in `products`) —
//! LayerNorm forward and backward, bias + exact (erf) GELU with its saved derivative, bias
//! adds, softmax forward and backward — each one pass over its rows,
//! compiled in the AVX2 + FMA copy of `fast::kernels` ([`dispatch`]) and shared out over
//! the threads in blocks of rows.

use crate::fast::kernels::dense::dot;
use crate::fast::kernels::{dispatch, exp, flush, Mac, Simd};
use rayon::prelude::*;

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
