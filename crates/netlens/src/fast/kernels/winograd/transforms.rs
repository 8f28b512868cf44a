//! Winograd's input and output transforms over a block of tile rows (see the parent
//! module): `V = Bᵀ d B` for every (tile, input channel) and `Y = Aᵀ M A` for every
//! (tile, output channel), one contiguous vector per (tile entry, channel) across the
//! block's tiles.

use super::{Block, Mac, SendPtr, Simd};

/// `dst[t] += c · src[t]` over the shorter length.
#[inline(always)]
fn axpy(dst: &mut [f32], c: f32, src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += c * s;
    }
}

/// `dst[t] = Σ_k coef[k] · src(k)[t]` for the nonzero coefficients.
#[inline(always)]
fn combine<'s>(dst: &mut [f32], coef: &[f32], src: impl Fn(usize) -> &'s [f32]) {
    let Some(first) = coef.iter().position(|&c| c != 0.0) else {
        dst.fill(0.0);
        return;
    };
    let c0 = coef[first];
    for (d, &s) in dst.iter_mut().zip(src(first)) {
        *d = c0 * s;
    }
    for (k, &c) in coef.iter().enumerate().skip(first + 1) {
        if c == 1.0 {
            for (d, &s) in dst.iter_mut().zip(src(k)) {
                *d += s;
            }
        } else if c == -1.0 {
            for (d, &s) in dst.iter_mut().zip(src(k)) {
                *d -= s;
            }
        } else if c != 0.0 {
            axpy(dst, c, src(k));
        }
    }
}

/// Splits `src` (`m · np` values) into its `m` phases: `dst[q · stride + slot + t] =
/// src[m · t + q]` for `t < np`. Pairs and quads by `chunks_exact` (an iterator's
/// `step_by` compiles to a scalar loop).
#[inline(always)]
fn deinterleave(dst: &mut [f32], stride: usize, slot: usize, np: usize, src: &[f32], m: usize) {
    match m {
        2 => {
            let (even, odd) = dst.split_at_mut(stride);
            let (even, odd) = (&mut even[slot..][..np], &mut odd[slot..][..np]);
            for ((e, o), pair) in even.iter_mut().zip(odd).zip(src.chunks_exact(2)) {
                *e = pair[0];
                *o = pair[1];
            }
        }
        _ => {
            for q in 0..m {
                let d = &mut dst[q * stride + slot..][..np];
                for (d, quad) in d.iter_mut().zip(src.chunks_exact(m)) {
                    *d = quad[q];
                }
            }
        }
    }
}

/// Writes (or adds) `m` phases into a row: `row[m · t + c] (+)= cols(c)[t]`, the row's
/// length cutting the last tile short.
#[inline(always)]
fn interleave<'s>(row: &mut [f32], m: usize, cols: impl Fn(usize) -> &'s [f32], accumulate: bool) {
    let whole = row.len() / m;
    let (body, tail) = row.split_at_mut(whole * m);
    if m == 2 {
        let (c0, c1) = (&cols(0)[..whole], &cols(1)[..whole]);
        if accumulate {
            for ((d, &a), &b) in body.chunks_exact_mut(2).zip(c0).zip(c1) {
                d[0] += a;
                d[1] += b;
            }
        } else {
            for ((d, &a), &b) in body.chunks_exact_mut(2).zip(c0).zip(c1) {
                d[0] = a;
                d[1] = b;
            }
        }
    } else {
        for c in 0..m {
            let src = &cols(c)[..whole];
            for (d, &v) in body.chunks_exact_mut(m).zip(src) {
                if accumulate {
                    d[c] += v;
                } else {
                    d[c] = v;
                }
            }
        }
    }
    for (c, d) in tail.iter_mut().enumerate() {
        let v = cols(c)[whole];
        if accumulate {
            *d += v;
        } else {
            *d = v;
        }
    }
}

/// Input transform of channels `cis` over a block: `V[ξ][ci][tile]`.
///
/// The block's tile rows are processed together, as one vector per (tile entry) over all
/// the block's tiles: tile row `r`'s phases sit at `r·np .. r·np + ntx + 1` (`np = ntx + 1`),
/// so the shifted taps of the last tile of a row read into the next row's slot and the one
/// result per row at `r·np + ntx` is garbage, dropped when `V` is written.
pub(super) struct InputTransform<'a> {
    pub(super) blk: &'a Block<'a>,
    pub(super) x: &'a [f32],
    pub(super) cis: std::ops::Range<usize>,
    pub(super) v: SendPtr<f32>,
}

impl Simd for InputTransform<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        let Self { blk, x, cis, v } = self;
        let Block {
            g,
            t,
            ntx,
            nty,
            r0,
            r1,
            tn,
        } = *blk;
        let (m, a) = (t.m, t.alpha());
        let np = ntx + 1;
        let nr = r1 - r0;
        // Flattened length of one vector over the block (plus the phase shift's slack).
        let len = nr * np;
        // phases[i][q][r·np + t] = row i of tile row r at column m·t + q − pl.
        let mut phases = vec![0.0f32; a * m * (len + 1)];
        let mut rows = vec![0.0f32; a * a * len];
        let mut out = vec![0.0f32; len];
        // One padded input row: columns −pl .. m·np − pl.
        let mut padded = vec![0.0f32; m * np];
        for ci in cis {
            for r in r0..r1 {
                let (n, ty) = (r / nty, r % nty);
                let plane = &x[(n * g.cin + ci) * g.h * g.w..][..g.h * g.w];
                let slot = (r - r0) * np;
                for i in 0..a {
                    let iy = (ty * m + i) as isize - g.pt as isize;
                    let ph = &mut phases[i * m * (len + 1)..][..m * (len + 1)];
                    if iy < 0 || iy >= g.h as isize {
                        for q in 0..m {
                            ph[q * (len + 1) + slot..][..np].fill(0.0);
                        }
                        continue;
                    }
                    let src = &plane[iy as usize * g.w..][..g.w];
                    let w = g.w.min(m * np - g.pl);
                    padded[..g.pl].fill(0.0);
                    padded[g.pl..g.pl + w].copy_from_slice(&src[..w]);
                    padded[g.pl + w..].fill(0.0);
                    deinterleave(ph, len + 1, slot, np, &padded[..m * np], m);
                }
            }
            // Row pass: rows[i][j] = Σ_k Bᵀ[j][k] · d[i][k]; tap k of tile t is phase k % m
            // at t + k / m.
            for i in 0..a {
                let ph = &phases[i * m * (len + 1)..][..m * (len + 1)];
                for j in 0..a {
                    let dst = &mut rows[(i * a + j) * len..][..len];
                    combine(dst, &t.bt[j * a..][..a], |k| {
                        &ph[(k % m) * (len + 1) + k / m..][..len]
                    });
                }
            }
            // Column pass: V[(p, j)] = Σ_i Bᵀ[p][i] · rows[i][j], written without the
            // garbage column of each tile row.
            for p in 0..a {
                for j in 0..a {
                    combine(&mut out, &t.bt[p * a..][..a], |i| {
                        &rows[(i * a + j) * len..][..len]
                    });
                    let xi = p * a + j;
                    // SAFETY: this task owns rows ci of every V[ξ] of the block.
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(v.at(xi * blk.vs() + ci * tn), tn)
                    };
                    for (d, s) in dst.chunks_exact_mut(ntx).zip(out.chunks_exact(np)) {
                        d.copy_from_slice(&s[..ntx]);
                    }
                }
            }
        }
    }
}

/// Output transform of channels `cos` over a block, from `M[ξ][co][tile]` into `y`
/// (the batch's output), one vector per (tile entry) over all the block's tiles.
pub(super) struct OutputTransform<'a> {
    pub(super) blk: &'a Block<'a>,
    pub(super) m: SendPtr<f32>,
    pub(super) cos: std::ops::Range<usize>,
    pub(super) y: SendPtr<f32>,
    pub(super) accumulate: bool,
}

impl Simd for OutputTransform<'_> {
    type Output = ();
    #[inline(always)]
    fn run<Mc: Mac>(self) {
        let Self {
            blk,
            m: mp,
            cos,
            y,
            accumulate,
        } = self;
        let Block {
            g,
            t,
            ntx,
            nty,
            r0,
            r1,
            tn,
        } = *blk;
        let (m, a) = (t.m, t.alpha());
        let mut s = vec![0.0f32; m * a * tn];
        let mut o = vec![0.0f32; m * m * tn];
        for co in cos {
            // SAFETY: M is fully written by the gemm phase and only read here.
            let mrow = |xi: usize| unsafe {
                std::slice::from_raw_parts(mp.at(xi * blk.ms() + co * tn) as *const f32, tn)
            };
            // S[r][j] = Σ_i Aᵀ[r][i] · M[(i, j)].
            for r in 0..m {
                for j in 0..a {
                    let dst = &mut s[(r * a + j) * tn..][..tn];
                    combine(dst, &t.at[r * a..][..a], |i| mrow(i * a + j));
                }
            }
            // O[r][c] = Σ_j Aᵀ[c][j] · S[r][j].
            for r in 0..m {
                for c in 0..m {
                    let dst = &mut o[(r * m + c) * tn..][..tn];
                    combine(dst, &t.at[c * a..][..a], |j| &s[(r * a + j) * tn..][..tn]);
                }
            }
            for row in r0..r1 {
                let (n, ty) = (row / nty, row % nty);
                let col0 = (row - r0) * ntx;
                for r in 0..m {
                    let oy = ty * m + r;
                    if oy >= g.oh {
                        break;
                    }
                    // SAFETY: this task owns channel co's rows of the block.
                    let yrow = unsafe {
                        std::slice::from_raw_parts_mut(
                            y.at(((n * g.cout + co) * g.oh + oy) * g.ow),
                            g.ow,
                        )
                    };
                    let cols = |c: usize| &o[(r * m + c) * tn + col0..][..ntx];
                    interleave(yrow, m, cols, accumulate);
                }
            }
        }
    }
}
