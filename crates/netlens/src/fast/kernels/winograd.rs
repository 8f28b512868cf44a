//! 3×3 stride-1 dense convolutions by Winograd's minimal filtering, `F(m×m, 3×3)` with output
//! tiles of `m = 2` or `m = 4` (Lavin & Gray, 2016): each `(m+2)²` input tile `d` and kernel
//! `g` give `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`, so the products shrink from `9` multiply-adds per
//! output to `(m+2)²/m²` (4 for F(2,3), 2.25 for F(4,3)), done as `(m+2)²` independent gemms
//! `M[ξ] = U[ξ] · V[ξ]` (`[cout × cin] · [cin × tiles]`) per block of tile rows.
//!
//! Three phases per block, each split into a fixed number of tasks (never the thread count,
//! so every thread count gives the same bytes): the input transform (tasks over input
//! channels), the gemms (one task per transform position ξ), the output transform with the
//! layer's epilogue (tasks over output channels). The transforms work on whole tile rows at
//! once, one contiguous vector per (tile entry, channel) over the row's tiles: an input row
//! is split once into its `m` phases (`x[m·t + q]`), after which every tile's taps are
//! contiguous loads and the arithmetic vectorizes across tiles.
//!
//! Weights are transformed once, at lowering ([`transform_weights`], in float64), into
//! `U[ξ][cout][cin]`. Accuracy (float32): F(2,3)'s matrices are exact in binary (0, ±½, ±1),
//! F(4,3)'s have ¼, ⅙, 1/12, 1/24 and intermediate values up to ~8× larger, so its error
//! is ~4–10× F(2,3)'s; the unit tests bound both against a float64 direct loop.

use super::gemm_conv::{matmul, ConvGeom, Mat};
use super::{dispatch, Mac, SendPtr, Simd};
use gemm::Parallelism;
use rayon::prelude::*;

/// The transform matrices of one tile size.
struct Tiles {
    /// Output tile side `m`.
    m: usize,
    /// `Bᵀ`, `α × α` with `α = m + 2`.
    bt: &'static [f32],
    /// `G`, `α × 3`.
    g: &'static [f64],
    /// `Aᵀ`, `m × α`.
    at: &'static [f32],
}

impl Tiles {
    fn alpha(&self) -> usize {
        self.m + 2
    }
}

const F2: Tiles = Tiles {
    m: 2,
    #[rustfmt::skip]
    bt: &[
        1.0, 0.0, -1.0, 0.0,
        0.0, 1.0, 1.0, 0.0,
        0.0, -1.0, 1.0, 0.0,
        0.0, 1.0, 0.0, -1.0,
    ],
    #[rustfmt::skip]
    g: &[
        1.0, 0.0, 0.0,
        0.5, 0.5, 0.5,
        0.5, -0.5, 0.5,
        0.0, 0.0, 1.0,
    ],
    #[rustfmt::skip]
    at: &[
        1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, -1.0,
    ],
};

const F4: Tiles = Tiles {
    m: 4,
    #[rustfmt::skip]
    bt: &[
        4.0, 0.0, -5.0, 0.0, 1.0, 0.0,
        0.0, -4.0, -4.0, 1.0, 1.0, 0.0,
        0.0, 4.0, -4.0, -1.0, 1.0, 0.0,
        0.0, -2.0, -1.0, 2.0, 1.0, 0.0,
        0.0, 2.0, -1.0, -2.0, 1.0, 0.0,
        0.0, 4.0, 0.0, -5.0, 0.0, 1.0,
    ],
    #[rustfmt::skip]
    g: &[
        1.0 / 4.0, 0.0, 0.0,
        -1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0,
        -1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0,
        1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0,
        1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0,
        0.0, 0.0, 1.0,
    ],
    #[rustfmt::skip]
    at: &[
        1.0, 1.0, 1.0, 1.0, 1.0, 0.0,
        0.0, 1.0, -1.0, 2.0, -2.0, 0.0,
        0.0, 1.0, 1.0, 4.0, 4.0, 0.0,
        0.0, 1.0, -1.0, 8.0, -8.0, 1.0,
    ],
};

fn tiles(m: usize) -> &'static Tiles {
    if m == 4 {
        &F4
    } else {
        &F2
    }
}

/// Whether a convolution can run by Winograd: 3×3, stride 1, padding at most 2 (the
/// transposed convolution of a padding-0 layer has padding 2).
pub fn eligible(g: &ConvGeom) -> bool {
    g.k == 3 && g.stride == 1 && g.pt <= 2 && g.pl <= 2 && g.oh > 0 && g.ow > 0
}

/// `U[ξ][co][ci] = (G w[co][ci] Gᵀ)[ξ]` for F(`m`×`m`, 3×3) of a `[cout, cin, 3, 3]`
/// kernel, computed in float64.
pub fn transform_weights(weight: &[f32], cout: usize, cin: usize, m: usize) -> Vec<f32> {
    let t = tiles(m);
    let a = t.alpha();
    let mut u = vec![0.0f32; a * a * cout * cin];
    for co in 0..cout {
        for ci in 0..cin {
            let w = &weight[(co * cin + ci) * 9..][..9];
            // G w: α × 3.
            let mut gw = [[0.0f64; 3]; 6];
            for (i, row) in gw.iter_mut().enumerate().take(a) {
                for (l, v) in row.iter_mut().enumerate() {
                    *v = (0..3)
                        .map(|k| t.g[i * 3 + k] * f64::from(w[k * 3 + l]))
                        .sum();
                }
            }
            for i in 0..a {
                for j in 0..a {
                    let v: f64 = (0..3).map(|l| gw[i][l] * t.g[j * 3 + l]).sum();
                    u[((i * a + j) * cout + co) * cin + ci] = v as f32;
                }
            }
        }
    }
    u
}

/// Fewest input and output channels for Winograd: below them the transforms (per channel)
/// outweigh the saved products (per channel pair).
pub const MIN_CHANNELS: usize = 16;

/// The output tile side the lowering uses (see the module doc for the accuracy of each).
pub const TILE: usize = 4;

/// The transformed weights of a `[cout, cin, k, k]` dense kernel if the layer should run by
/// Winograd (3×3, stride 1, at least [`MIN_CHANNELS`] each way), else empty.
pub fn choose(weight: &[f32], cout: usize, cin: usize, k: usize, stride: usize) -> Vec<f32> {
    if k != 3 || stride != 1 || cin < MIN_CHANNELS || cout < MIN_CHANNELS {
        return Vec::new();
    }
    if weight.len() != cout * cin * 9 {
        return Vec::new();
    }
    let m = match std::env::var("NETLENS_WINOGRAD").as_deref() {
        Ok("0") | Ok("off") => return Vec::new(),
        Ok("2") => 2,
        _ => TILE,
    };
    transform_weights(weight, cout, cin, m)
}

/// The tile size a transformed weight set was made for.
pub fn tile_of(u_len: usize, cout: usize, cin: usize) -> Option<usize> {
    let per = cout * cin;
    match u_len.checked_div(per)? {
        16 => Some(2),
        36 => Some(4),
        _ => None,
    }
}

/// Fixed task counts of the transform phases (a fixed number: see the module doc).
const TRANSFORM_TASKS: usize = 8;
/// Floats one block's `V` (or `M`) holds at most, so both stay cache-sized.
const BLOCK_FLOATS: usize = 512 * 1024;

/// Runs `epilogue(image, channel, first row, rows)` after writing those output rows.
pub(crate) type Epilogue<'a> = &'a (dyn Fn(usize, usize, usize, usize) + Sync);

/// `y (+)= W ⋆ x` of a batch by F(`m`×`m`, 3×3) with `u` from [`transform_weights`], then
/// `epilogue` on every block of output rows of every channel.
pub(crate) fn forward(
    g: &ConvGeom,
    u: &[f32],
    x: &[f32],
    y: &mut [f32],
    images: usize,
    accumulate: bool,
    epilogue: Epilogue,
) {
    let Some(m) = tile_of(u.len(), g.cout, g.cin) else {
        unreachable!("Winograd weights of the wrong size")
    };
    let t = tiles(m);
    let a = t.alpha();
    let (ntx, nty) = (g.ow.div_ceil(m), g.oh.div_ceil(m));
    let per_tile = a * a * g.cin.max(g.cout);
    let rows_per_block = (BLOCK_FLOATS / (per_tile * ntx)).clamp(1, nty);
    let blocks = nty.div_ceil(rows_per_block);
    let yp = SendPtr(y.as_mut_ptr());
    let cap = a * a * rows_per_block * ntx;
    super::with_scratch(cap * g.cin, |v| {
        super::with_scratch2(cap * g.cout, |mm| {
            let (vp, mp) = (SendPtr(v.as_mut_ptr()), SendPtr(mm.as_mut_ptr()));
            for n in 0..images {
                let xi = &x[n * g.cin * g.h * g.w..][..g.cin * g.h * g.w];
                for b in 0..blocks {
                    let ty0 = b * rows_per_block;
                    let ty1 = (ty0 + rows_per_block).min(nty);
                    let tn = (ty1 - ty0) * ntx;
                    let blk = Block {
                        g,
                        t,
                        ntx,
                        ty0,
                        ty1,
                        tn,
                    };
                    let ci_chunk = g.cin.div_ceil(TRANSFORM_TASKS);
                    (0..g.cin.div_ceil(ci_chunk)).into_par_iter().for_each(|c| {
                        let cis = c * ci_chunk..((c + 1) * ci_chunk).min(g.cin);
                        dispatch(InputTransform {
                            blk: &blk,
                            x: xi,
                            cis,
                            v: vp,
                        });
                    });
                    (0..a * a).into_par_iter().for_each(|xi_| {
                        // SAFETY: task ξ writes only M[ξ]; V and U are read.
                        unsafe {
                            matmul(
                                (g.cout, tn, g.cin),
                                Mat::rows(mp.at(xi_ * g.cout * tn), tn),
                                false,
                                Mat::rows(u[xi_ * g.cout * g.cin..].as_ptr(), g.cin),
                                Mat::rows(vp.at(xi_ * g.cin * tn) as *const f32, tn),
                                Parallelism::None,
                            );
                        }
                    });
                    let co_chunk = g.cout.div_ceil(TRANSFORM_TASKS);
                    (0..g.cout.div_ceil(co_chunk))
                        .into_par_iter()
                        .for_each(|c| {
                            let cos = c * co_chunk..((c + 1) * co_chunk).min(g.cout);
                            let ybase = n * g.cout * g.oh * g.ow;
                            dispatch(OutputTransform {
                                blk: &blk,
                                m: mp,
                                cos: cos.clone(),
                                y: SendPtr(yp.at(ybase)),
                                accumulate,
                            });
                            let r0 = ty0 * t.m;
                            let r1 = (ty1 * t.m).min(g.oh);
                            for co in cos {
                                epilogue(n, co, r0, r1 - r0);
                            }
                        });
                }
            }
        })
    });
}

/// One block of tile rows `ty0..ty1` of one image (`tn` tiles).
struct Block<'a> {
    g: &'a ConvGeom,
    t: &'static Tiles,
    ntx: usize,
    ty0: usize,
    ty1: usize,
    tn: usize,
}

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
    dst.fill(0.0);
    for (k, &c) in coef.iter().enumerate() {
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

/// Input transform of channels `cis` over a block: `V[ξ][ci][tile]`.
struct InputTransform<'a> {
    blk: &'a Block<'a>,
    x: &'a [f32],
    cis: std::ops::Range<usize>,
    v: SendPtr<f32>,
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
            ty0,
            ty1,
            tn,
        } = *blk;
        let (m, a) = (t.m, t.alpha());
        let np = ntx + 1;
        // phases[i][q][t] = row i of the tile row at column m·t + q − pl; rows[i][j][t] =
        // (d B)[i][j] of tile t; one α-vector per (ξ) after the column pass.
        let mut phases = vec![0.0f32; a * m * np];
        let mut rows = vec![0.0f32; a * a * ntx];
        let mut out = vec![0.0f32; ntx];
        for ci in cis {
            let plane = &x[ci * g.h * g.w..][..g.h * g.w];
            for ty in ty0..ty1 {
                for i in 0..a {
                    let iy = (ty * m + i) as isize - g.pt as isize;
                    let ph = &mut phases[i * m * np..][..m * np];
                    if iy < 0 || iy >= g.h as isize {
                        ph.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * g.w..][..g.w];
                    for q in 0..m {
                        let dst = &mut ph[q * np..][..np];
                        for (tt, d) in dst.iter_mut().enumerate() {
                            let c = (m * tt + q) as isize - g.pl as isize;
                            *d = if c >= 0 && (c as usize) < g.w {
                                src[c as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
                // Row pass: rows[i][j] = Σ_k Bᵀ[j][k] · d[i][k], tap k of tile t is
                // phase k % m at t + k / m.
                for i in 0..a {
                    let ph = &phases[i * m * np..][..m * np];
                    for j in 0..a {
                        let dst = &mut rows[(i * a + j) * ntx..][..ntx];
                        combine(dst, &t.bt[j * a..][..a], |k| {
                            &ph[(k % m) * np + k / m..][..ntx]
                        });
                    }
                }
                // Column pass: V[(a', j)] = Σ_i Bᵀ[a'][i] · rows[i][j].
                let col0 = (ty - ty0) * ntx;
                for r in 0..a {
                    for j in 0..a {
                        combine(&mut out, &t.bt[r * a..][..a], |i| {
                            &rows[(i * a + j) * ntx..][..ntx]
                        });
                        let xi = r * a + j;
                        // SAFETY: this task owns rows ci of every V[ξ] of the block.
                        let dst = unsafe {
                            std::slice::from_raw_parts_mut(v.at((xi * g.cin + ci) * tn + col0), ntx)
                        };
                        dst.copy_from_slice(&out);
                    }
                }
            }
        }
    }
}

/// Output transform of channels `cos` over a block, from `M[ξ][co][tile]` into `y`.
struct OutputTransform<'a> {
    blk: &'a Block<'a>,
    m: SendPtr<f32>,
    cos: std::ops::Range<usize>,
    y: SendPtr<f32>,
    accumulate: bool,
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
            ty0,
            ty1,
            tn,
        } = *blk;
        let (m, a) = (t.m, t.alpha());
        let mut s = vec![0.0f32; m * a * ntx];
        let mut o = vec![0.0f32; m * m * ntx];
        for co in cos {
            for ty in ty0..ty1 {
                let col0 = (ty - ty0) * ntx;
                // SAFETY: M is fully written by the gemm phase and only read here.
                let mrow = |xi: usize| unsafe {
                    std::slice::from_raw_parts(
                        mp.at((xi * g.cout + co) * tn + col0) as *const f32,
                        ntx,
                    )
                };
                // S[r][j] = Σ_i Aᵀ[r][i] · M[(i, j)].
                for r in 0..m {
                    for j in 0..a {
                        let dst = &mut s[(r * a + j) * ntx..][..ntx];
                        combine(dst, &t.at[r * a..][..a], |i| mrow(i * a + j));
                    }
                }
                // O[r][c] = Σ_j Aᵀ[c][j] · S[r][j].
                for r in 0..m {
                    for c in 0..m {
                        let dst = &mut o[(r * m + c) * ntx..][..ntx];
                        combine(dst, &t.at[c * a..][..a], |j| &s[(r * a + j) * ntx..][..ntx]);
                    }
                }
                for r in 0..m {
                    let oy = ty * m + r;
                    if oy >= g.oh {
                        break;
                    }
                    // SAFETY: this task owns channel co's rows of the block.
                    let yrow = unsafe {
                        std::slice::from_raw_parts_mut(y.at((co * g.oh + oy) * g.ow), g.ow)
                    };
                    for c in 0..m {
                        let src = &o[(r * m + c) * ntx..][..ntx];
                        for (tx, &val) in src.iter().enumerate() {
                            let ox = tx * m + c;
                            if ox < g.ow {
                                if accumulate {
                                    yrow[ox] += val;
                                } else {
                                    yrow[ox] = val;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::gemm_conv::{conv_forward, ConvLayer};
    use super::super::testing::random;
    use super::super::Act;
    use super::*;

    /// Float64 direct convolution of one image (no bias, no activation).
    fn direct64(g: &ConvGeom, w: &[f32], x: &[f32]) -> Vec<f64> {
        let mut y = vec![0.0f64; g.cout * g.oh * g.ow];
        for co in 0..g.cout {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut s = 0.0f64;
                    for ci in 0..g.cin {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (iy, ix) = (oy + ky, ox + kx);
                                if iy < g.pt || ix < g.pl || iy - g.pt >= g.h || ix - g.pl >= g.w {
                                    continue;
                                }
                                let v = x[(ci * g.h + iy - g.pt) * g.w + ix - g.pl];
                                s += f64::from(w[((co * g.cin + ci) * 3 + ky) * 3 + kx])
                                    * f64::from(v);
                            }
                        }
                    }
                    y[(co * g.oh + oy) * g.ow + ox] = s;
                }
            }
        }
        y
    }

    /// Worst error relative to the largest output magnitude.
    fn worst(got: &[f32], want: &[f64]) -> f64 {
        let scale = want.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
        got.iter()
            .zip(want)
            .map(|(&g, &w)| (f64::from(g) - w).abs() / scale)
            .fold(0.0, f64::max)
    }

    fn geom(cin: usize, cout: usize, pad: usize, h: usize, w: usize) -> ConvGeom {
        ConvGeom {
            cin,
            cout,
            k: 3,
            stride: 1,
            pt: pad,
            pl: pad,
            h,
            w,
            oh: h + 2 * pad - 2,
            ow: w + 2 * pad - 2,
        }
    }

    /// Odd channels, odd planes (partial tiles on both edges), paddings 0, 1, 2, batch 1 and
    /// 3, every epilogue; against float64. The im2col + gemm path on the same data sets the
    /// float32 noise floor: F(2,3) stays within 1e-5 of the largest output, F(4,3) within
    /// 5e-5 (its transforms scale intermediates by up to 8 and 1/24, ~4–10× F(2,3)'s
    /// rounding; measured below ~2e-5 on these shapes).
    #[test]
    fn matches_direct_float64() {
        let cases = [
            (17, 19, 1, 13, 11, 1),
            (16, 33, 1, 9, 15, 3),
            (21, 16, 0, 10, 7, 1),
            (18, 20, 2, 5, 6, 3),
            (64, 24, 1, 30, 29, 1),
        ];
        for (i, &(cin, cout, pad, h, w, images)) in cases.iter().enumerate() {
            let g = geom(cin, cout, pad, h, w);
            let (isz, osz) = (cin * h * w, cout * g.oh * g.ow);
            let x = random(images * isz, 100 + i as u64);
            let wt = random(cout * cin * 9, 200 + i as u64);
            let bias = random(cout, 300 + i as u64);
            for (m, tol) in [(2, 1e-5), (4, 5e-5)] {
                let u = transform_weights(&wt, cout, cin, m);
                for (act, acc) in [(Act::None, false), (Act::Relu, false), (Act::None, true)] {
                    let layer = ConvLayer {
                        g: &g,
                        weight: &wt,
                        bias: Some(&bias),
                        act,
                        winograd: Some(&u),
                    };
                    let y0 = random(images * osz, 400 + i as u64);
                    let mut y = y0.clone();
                    let mut mask = vec![7u8; images * osz];
                    conv_forward(&layer, &x, &mut y, Some(&mut mask), images, acc);
                    let plain = ConvLayer {
                        winograd: None,
                        ..layer
                    };
                    let (mut yg, mut mg) = (y0.clone(), vec![7u8; images * osz]);
                    conv_forward(&plain, &x, &mut yg, Some(&mut mg), images, acc);
                    for n in 0..images {
                        let d = direct64(&g, &wt, &x[n * isz..][..isz]);
                        let want: Vec<f64> = d
                            .iter()
                            .enumerate()
                            .map(|(o, &v)| {
                                let prev = if acc { f64::from(y0[n * osz + o]) } else { 0.0 };
                                let z = prev + v + f64::from(bias[o / (g.oh * g.ow)]);
                                if act == Act::Relu {
                                    z.max(0.0)
                                } else {
                                    z
                                }
                            })
                            .collect();
                        let e = worst(&y[n * osz..][..osz], &want);
                        let eg = worst(&yg[n * osz..][..osz], &want);
                        eprintln!("case {i} F({m},3) {act:?} acc {acc}: {e:.1e} (gemm {eg:.1e})");
                        assert!(e < tol, "case {i} F({m},3): {e:.2e}");
                        // Masks agree wherever the value is not at the kink.
                        for o in 0..osz {
                            if want[o].abs() > 1e-3 {
                                assert_eq!(mask[n * osz + o], mg[n * osz + o]);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn chooses_only_3x3_stride_1_wide_layers() {
        let w = random(32 * 32 * 9, 1);
        assert_eq!(choose(&w, 32, 32, 3, 1).len(), 36 * 32 * 32);
        assert!(choose(&w, 32, 32, 3, 2).is_empty());
        assert!(choose(&w[..8 * 32 * 9], 8, 32, 3, 1).is_empty());
        assert!(choose(&w, 32, 32 * 9, 1, 1).is_empty());
    }
}
