//! The backward pass of a network's first stage — a dense convolution of the image, its
//! ReLU-family activation and a strided max-pool (SqueezeNet's 3×3/2 stem and pool,
//! ResNet's 7×7/2 ones) — from the pool's gradient straight to the image.
//!
//! Run apart, the pool routes each window's gradient into a zeroed plane of the convolution's
//! output (3.15 MB per image for SqueezeNet, ¾ of it left zero by a 3×3/2 pool), the mask is
//! applied over the whole plane, and the convolution's backward product `Wᵀ · dy` reads it
//! all back, every output pixel times every channel. Here each window whose argmax passed its
//! activation adds `g · W[c]` (the channel's `cin·k·k` weights, contiguous) to its argmax
//! pixel's column of im2col's transpose — a quarter of the product's multiply-adds for a
//! 3×3/2 pool — and col2im gathers the columns into the image's gradient.
//!
//! The values are those of the separate passes up to the order of the sums (each window's
//! contribution is added on its own rather than after the windows sharing an argmax are
//! summed): float32 rounding, tested against the separate kernels. The order is fixed — a
//! column's windows channel by channel, row by row; an input pixel's taps row by row — and
//! the threads split only output rows and input rows, so the bytes follow neither the
//! thread count, nor the batch, nor the vector width (each lane does the same fused
//! multiply-add).

use super::{dispatch, with_scratch, ConvGeom, Mac, PoolGeom, SendPtr, Simd};
use rayon::prelude::*;

/// Lanes a column is padded to (whole 8-lane vectors, see [`Scatter`]).
const LANES: usize = 8;

/// Bands of rows each image's work is split into (fixed, so the split does not follow the
/// thread count; the bytes do not depend on it anyway).
const BANDS: usize = 2;

/// A first stage as [`stem_backward`] runs it.
pub struct StemLayer<'a> {
    /// The convolution (its input is the image).
    pub conv: &'a ConvGeom,
    /// The max-pool over the convolution's output.
    pub pool: &'a PoolGeom,
    /// The convolution's weights, `[cout][cin][k][k]`.
    pub weight: &'a [f32],
}

impl StemLayer<'_> {
    /// Whether the shapes agree (the pool reads the convolution's output plane).
    pub fn fits(&self) -> bool {
        let (c, p) = (self.conv, self.pool);
        p.h == c.oh
            && p.w == c.ow
            && c.k > 0
            && c.stride > 0
            && self.weight.len() == c.cout * c.cin * c.k * c.k
    }
}

/// `dx (+)= ∂/∂image` for `n` images, given the pool's output gradient `g`
/// (`[n][cout][pool.oh·pool.ow]`), its saved `argmax` (in-plane indices into the
/// convolution's output, as [`super::max_pool_forward`] writes them) and the activation's
/// byte mask of the convolution's output (`[n][cout][oh·ow]`, 0 or 1).
pub fn stem_backward(
    layer: &StemLayer,
    g: &[f32],
    argmax: &[u32],
    mask: &[u8],
    dx: &mut [f32],
    n: usize,
    accumulate: bool,
) {
    let (cg, pg) = (layer.conv, layer.pool);
    let kk = cg.cin * cg.k * cg.k;
    let kkp = kk.next_multiple_of(LANES);
    // Each output channel's weights padded with zeros to whole vectors.
    let mut wp = vec![0.0f32; cg.cout * kkp];
    for (dst, src) in wp.chunks_exact_mut(kkp).zip(layer.weight.chunks_exact(kk)) {
        dst[..kk].copy_from_slice(src);
    }
    let (pooled, plane) = (pg.oh * pg.ow, cg.oh * cg.ow);
    let img = cg.cin * cg.h * cg.w;
    // im2col's transpose for one image, a column per output pixel (reused between calls).
    with_scratch(plane * kkp, |cols| {
        for i in 0..n {
            let gi = &g[i * cg.cout * pooled..(i + 1) * cg.cout * pooled];
            let ai = &argmax[i * cg.cout * pooled..(i + 1) * cg.cout * pooled];
            let mi = &mask[i * cg.cout * plane..(i + 1) * cg.cout * plane];
            // Bands of output rows, each scattering only the windows whose argmax is in it.
            let rows = cg.oh.div_ceil(BANDS).max(1);
            let out = SendPtr(cols.as_mut_ptr());
            (0..BANDS).into_par_iter().for_each(|b| {
                let lo = (b * rows).min(cg.oh) * cg.ow;
                let hi = ((b + 1) * rows).min(cg.oh) * cg.ow;
                // SAFETY: the bands' pixel ranges are disjoint parts of `cols`.
                let band =
                    unsafe { std::slice::from_raw_parts_mut(out.at(lo * kkp), (hi - lo) * kkp) };
                dispatch(Scatter {
                    cout: cg.cout,
                    pool: pg,
                    lo,
                    g: gi,
                    argmax: ai,
                    mask: mi,
                    weight: &wp,
                    kkp,
                    band,
                })
            });
            col2im(cg, cols, kkp, &mut dx[i * img..(i + 1) * img], accumulate);
        }
    })
}

/// One band's scatter: for each window whose argmax (a pixel of `lo..lo + band.len()/kkp`)
/// passed the activation, `column[argmax] += v · W[c]`.
struct Scatter<'a> {
    cout: usize,
    pool: &'a PoolGeom,
    lo: usize,
    g: &'a [f32],
    argmax: &'a [u32],
    mask: &'a [u8],
    weight: &'a [f32],
    kkp: usize,
    band: &'a mut [f32],
}

impl Simd for Scatter<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        let Self {
            cout,
            pool,
            lo,
            g,
            argmax,
            mask,
            weight,
            kkp,
            band,
        } = self;
        band.fill(0.0);
        let pixels = band.len() / kkp;
        if pixels == 0 {
            return;
        }
        let (pooled, plane) = (pool.oh * pool.ow, pool.h * pool.w);
        // The pooled rows whose windows reach the band's rows `r0..r1`.
        let (r0, r1) = (lo / pool.w, (lo + pixels).div_ceil(pool.w));
        let first = (r0 + pool.pad)
            .saturating_sub(pool.k - 1)
            .div_ceil(pool.stride);
        let last = ((r1 - 1 + pool.pad) / pool.stride + 1).min(pool.oh);
        let (from, to) = (first.min(last) * pool.ow, last * pool.ow);
        for c in 0..cout {
            let gc = &g[c * pooled..(c + 1) * pooled];
            let ac = &argmax[c * pooled..(c + 1) * pooled];
            let mc = &mask[c * plane..(c + 1) * plane];
            let wc = &weight[c * kkp..(c + 1) * kkp];
            for (&gv, &a) in gc[from..to].iter().zip(&ac[from..to]) {
                let a = a as usize;
                let Some(at) = a.checked_sub(lo).filter(|&p| p < pixels) else {
                    continue;
                };
                // The activation's mask, by the rule of `elementwise::apply_mask`.
                let v = gv * f32::from(mc[a]);
                if v == 0.0 {
                    continue;
                }
                let col = &mut band[at * kkp..(at + 1) * kkp];
                for (o, &w) in col.iter_mut().zip(wc) {
                    *o = M::mac(*o, w, v);
                }
            }
        }
    }
}

/// `dx (+)= col2im(cols)` for one image: each input pixel's taps, row by row, column by
/// column, in bands of input rows.
fn col2im(cg: &ConvGeom, cols: &[f32], kkp: usize, dx: &mut [f32], accumulate: bool) {
    let (k, s) = (cg.k, cg.stride);
    let rows = cg.h.div_ceil(BANDS).max(1);
    let plane = cg.h * cg.w;
    let out = SendPtr(dx.as_mut_ptr());
    (0..BANDS).into_par_iter().for_each(|b| {
        let (r0, r1) = ((b * rows).min(cg.h), ((b + 1) * rows).min(cg.h));
        for ci in 0..cg.cin {
            for iy in r0..r1 {
                // SAFETY: the bands' rows are disjoint parts of `dx`.
                let row =
                    unsafe { std::slice::from_raw_parts_mut(out.at(ci * plane + iy * cg.w), cg.w) };
                if !accumulate {
                    row.fill(0.0);
                }
                for ky in 0..k {
                    // The output row whose tap `ky` reads input row `iy`.
                    let Some(t) = (iy + cg.pt).checked_sub(ky) else {
                        continue;
                    };
                    if t % s != 0 || t / s >= cg.oh {
                        continue;
                    }
                    let oy = t / s;
                    for kx in 0..k {
                        let tap = (ci * k + ky) * k + kx;
                        // Output columns ox with ox·s + kx − pl inside the row.
                        let first = (cg.pl.saturating_sub(kx)).div_ceil(s);
                        for ox in first..cg.ow {
                            let Some(ix) = (ox * s + kx).checked_sub(cg.pl) else {
                                continue;
                            };
                            if ix >= cg.w {
                                break;
                            }
                            row[ix] += cols[(oy * cg.ow + ox) * kkp + tap];
                        }
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::super::testing::random;
    use super::super::{conv_backward_col2im, max_pool_backward, max_pool_forward, Transposed};
    use super::*;

    /// The separate passes: pool backward with the mask, then the convolution's backward.
    fn separate(layer: &StemLayer, g: &[f32], am: &[u32], mask: &[u8], n: usize) -> Vec<f32> {
        let (cg, pg) = (layer.conv, layer.pool);
        let mut dy = vec![0.0; n * cg.cout * cg.oh * cg.ow];
        max_pool_backward(g, am, &mut dy, n * cg.cout, pg, false, Some(mask));
        let mut dx = vec![0.0; n * cg.cin * cg.h * cg.w];
        conv_backward_col2im(
            &dy,
            &mut dx,
            n,
            cg,
            Transposed::Strided(layer.weight),
            false,
            None,
        );
        dx
    }

    #[test]
    fn matches_the_separate_passes() {
        // SqueezeNet's stem (no padding, ceil-mode pool), ResNet's (padded both), and odd
        // sizes with an uncovered last row and column.
        let cases = [
            (3, 16, 3, 2, 0, 31, 31, 3, 2, 0),
            (3, 8, 7, 2, 3, 30, 30, 3, 2, 1),
            (2, 5, 3, 2, 1, 20, 17, 2, 2, 0),
        ];
        for (cin, cout, k, s, p, h, w, pk, ps, pp) in cases {
            let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
            let cg = ConvGeom {
                cin,
                cout,
                k,
                stride: s,
                pt: p,
                pl: p,
                h,
                w,
                oh,
                ow,
            };
            let (ph, pw) = (
                (oh + 2 * pp - pk).div_ceil(ps) + 1,
                (ow + 2 * pp - pk).div_ceil(ps) + 1,
            );
            let pg = PoolGeom {
                k: pk,
                stride: ps,
                pad: pp,
                h: oh,
                w: ow,
                oh: ph.min((oh + pp - 1) / ps + 1),
                ow: pw.min((ow + pp - 1) / ps + 1),
            };
            let weight = random(cout * cin * k * k, 1);
            let layer = StemLayer {
                conv: &cg,
                pool: &pg,
                weight: &weight,
            };
            assert!(layer.fits());
            for n in [1, 3] {
                let y = random(n * cout * oh * ow, 2);
                let mask: Vec<u8> = y.iter().map(|&v| u8::from(v > 0.0)).collect();
                let mut pooled = vec![0.0; n * cout * pg.oh * pg.ow];
                let mut am = vec![0u32; pooled.len()];
                max_pool_forward(&y, &mut pooled, Some(&mut am), n * cout, &pg);
                let g = random(pooled.len(), 3);
                let want = separate(&layer, &g, &am, &mask, n);
                for acc in [false, true] {
                    let mut got = vec![if acc { 0.5 } else { f32::NAN }; want.len()];
                    stem_backward(&layer, &g, &am, &mask, &mut got, n, acc);
                    let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
                    for (j, (a, b)) in got.iter().zip(&want).enumerate() {
                        let b = if acc { b + 0.5 } else { *b };
                        // float32 rounding of a different order of the same sums.
                        assert!(
                            (a - b).abs() <= 1e-5 * scale,
                            "{cin}→{cout} k{k}/{s} p{p} {h}×{w} n{n} acc {acc}: [{j}] {a} vs {b}"
                        );
                    }
                }
                // The same bytes for an image alone and in the batch.
                let mut alone = vec![0.0; cin * h * w];
                let last = n - 1;
                let pn = cout * pg.oh * pg.ow;
                stem_backward(
                    &layer,
                    &g[last * pn..],
                    &am[last * pn..],
                    &mask[last * cout * oh * ow..],
                    &mut alone,
                    1,
                    false,
                );
                let mut all = vec![0.0; want.len()];
                stem_backward(&layer, &g, &am, &mask, &mut all, n, false);
                assert_eq!(
                    alone.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    all[last * cin * h * w..]
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>()
                );
            }
        }
    }
}
