//! 3×3 stride-1 dense convolutions by Winograd's minimal filtering, `F(m×m, 3×3)` with output
//! tiles of `m = 2` or `m = 4` (Lavin & Gray, 2016): each `(m+2)²` input tile `d` and kernel
//! `g` give `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`, so the products shrink from `9` multiply-adds per
//! output to `(m+2)²/m²` (4 for F(2,3), 2.25 for F(4,3)), done as `(m+2)²` independent gemms
//! `M[ξ] = U[ξ] · V[ξ]` (`[cout × cin] · [cin × tiles]`) per block of tile rows.
//!
//! Narrow layers run one task per block of an image's tile rows, all three phases of the
//! block on one thread so that its transformed tiles stay in that core's caches ([`fused`]).
//! Wide layers run three phases per block, each split into a fixed number of tasks (never
//! the thread count, so every thread count gives the same bytes): the input transform
//! (tasks over input channels), the gemms (one task per transform position ξ), the output
//! transform with the layer's epilogue (tasks over output channels) ([`phased`]). Both give
//! the same bytes (unit-tested). The transforms work on whole tile rows at
//! once, one contiguous vector per (tile entry, channel) over the row's tiles: an input row
//! is split once into its `m` phases (`x[m·t + q]`), after which every tile's taps are
//! contiguous loads and the arithmetic vectorizes across tiles.
//!
//! Weights are transformed once, at lowering ([`transform_weights`], in float64), into
//! `U[ξ][cout][cin]`. Accuracy (float32): F(2,3)'s matrices are exact in binary (0, ±½, ±1),
//! F(4,3)'s have ¼, ⅙, 1/12, 1/24 and intermediate values up to ~8× larger, so its error
//! is ~4–10× F(2,3)'s; the unit tests bound both against a float64 direct loop. So the
//! forward pass, whose output decides the ReLU masks, uses F(2,3), and the backward pass,
//! linear once the masks are fixed, F(4,3) on planes large enough for it ([`Tiling`]).
//! The transforms are in `winograd/transforms.rs`, the unit tests in `winograd/tests.rs`.

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

/// Whether a convolution can run by Winograd with transformed weights `u`: 3×3, stride
/// 1, padding at most 2 (the transposed convolution of a padding-0 layer has padding 2),
/// and at least [`MIN_TILES`] output tiles per image (below that, streaming `U` — 4× the
/// kernel for F(4,3) — costs more than it saves: ResNet-50's 7×7 layers at batch 1,
/// measured 2.6× slower than im2col + gemm). Per image, not per batch, so that an image
/// gives the same bytes in any batch. Whether it pays on a layer's channels is
/// [`LazyWeights::get`]'s call.
pub fn eligible(g: &ConvGeom, u: &[f32]) -> bool {
    tile_of(u.len(), g.cout, g.cin).is_some_and(|m| eligible_with(g, m))
}

fn eligible_with(g: &ConvGeom, _m: usize) -> bool {
    // Counted in 4×4 tiles whatever the tile size: the plane-size floor measured for F(4,3)
    // (planes of at least 13×13), kept for F(2,3) so both run on the same layers.
    g.k == 3 && g.stride == 1 && g.pt <= 2 && g.pl <= 2 && tile_count(g) >= MIN_TILES
}

/// Output tiles of one image, counted in 4×4 tiles.
fn tile_count(g: &ConvGeom) -> usize {
    g.oh.div_ceil(4) * g.ow.div_ceil(4)
}

/// Fewest 4×4 output tiles per image for Winograd (see [`eligible`]).
pub const MIN_TILES: usize = 16;

/// Whether Winograd pays on a layer of this plane and these channels ([`MIN_WIDTH`],
/// [`SMALL_TILES`]).
fn pays(g: &ConvGeom) -> bool {
    let min = if tile_count(g) < SMALL_TILES {
        MIN_WIDTH_SMALL
    } else {
        MIN_WIDTH
    };
    width(g.cin, g.cout) >= min
}

/// `cin·cout / (cin + cout)`: what a layer's products save per tile by Winograd grows with
/// `cin·cout`, what its transforms cost with `cin + cout`.
fn width(cin: usize, cout: usize) -> usize {
    cin * cout / (cin + cout).max(1)
}

/// Smallest [`width`] for Winograd: below it the transforms (per channel) outweigh the
/// saved products (per channel pair). SqueezeNet's expand layers (16 → 64 on 55², 32 →
/// 128 on 27²: widths 12 and 25) and their transposes run faster as im2col + gemm;
/// ResNet-50's and VGG16's 64 → 64 layers (width 32, on 56² and 224²) faster by Winograd
/// (ResNet-50 f+b batch 1 75–79 → 78–83 ms without it; VGG16 within noise). This replaced
/// a floor of 32 input and 16 output channels, which let 32 → 128 and the transposes of
/// 16 → 64 and 32 → 128 (64 → 16, 128 → 32) through.
pub const MIN_WIDTH: usize = 26;

/// Planes of fewer 4×4 tiles than this (13×13 to 16×16) need [`MIN_WIDTH_SMALL`]: there
/// SqueezeNet's 48 → 192 layers (width 38, 16 tiles) took 0.40–0.43 ms by Winograd against
/// 0.19–0.23 by im2col, its 64 → 256 layers (width 51) 0.33–0.36 against 0.32–0.37 (batch
/// 1, 2 threads), and ResNet-50's 256 → 256 layers on 14² (width 128) run faster by
/// Winograd (f+b batch 8 528 → 551–583 ms without it).
const SMALL_TILES: usize = 32;

/// See [`SMALL_TILES`].
const MIN_WIDTH_SMALL: usize = 64;

/// `U[ξ][co][ci] = (G w[co][ci] Gᵀ)[ξ]` for F(`m`×`m`, 3×3) of a `[cout, cin, 3, 3]`
/// kernel, computed in float64, output channels in parallel (VGG16's 26 transforms, forward
/// and backward, are 0.2 billion products at load).
pub fn transform_weights(weight: &[f32], cout: usize, cin: usize, m: usize) -> Vec<f32> {
    let t = tiles(m);
    let a = t.alpha();
    // [co][ξ][ci] first, one output channel per task, then [ξ][co][ci].
    let mut by_co = vec![0.0f32; a * a * cout * cin];
    by_co
        .par_chunks_mut(a * a * cin)
        .enumerate()
        .for_each(|(co, out)| {
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
                        out[(i * a + j) * cin + ci] = v as f32;
                    }
                }
            }
        });
    let mut u = vec![0.0f32; a * a * cout * cin];
    u.par_chunks_mut(cout * cin)
        .enumerate()
        .for_each(|(xi, dst)| {
            for (co, row) in dst.chunks_exact_mut(cin).enumerate() {
                row.copy_from_slice(&by_co[(co * a * a + xi) * cin..][..cin]);
            }
        });
    u
}

/// The output tile side of a forward pass (see the module doc for the accuracy of each).
/// F(2,3): F(4,3)'s float32 error (≤ 5.2e-6 against ≤ 2.2e-7) in the forward pass flips
/// enough ReLU kinks that full-size ResNet-18's input gradient lands 7.2e-3 from float64
/// PyTorch, outside `tests/onnx_full.rs`'s bound (5e-3, PyTorch's own float32 is 1.1e-3);
/// F(2,3) keeps every parity test at its tolerance (2.4e-3 there).
pub const TILE: usize = 2;

/// Which pass of a layer a set of Winograd weights is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The layer's forward pass: its output decides the ReLU masks.
    Forward,
    /// The stride-1 backward-data pass (the flipped, transposed kernel over the output's
    /// gradient): linear in that gradient once the masks are fixed.
    Backward,
}

/// The tile sizes a layer's pass runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tiling {
    /// F(`m`×`m`, 3×3) on every plane.
    Fixed(usize),
    /// F(4,3) where it is faster ([`f4_pays`]: planes of enough tiles), F(2,3) elsewhere:
    /// the default of the backward pass. Its error cannot flip a ReLU kink (the masks come from the forward
    /// pass, F(2,3)), so it stays at F(4,3)'s per-layer float32 level: full-size ResNet-18's
    /// input gradient moved from 2.406873e-3 to 2.406876e-3 from float64 PyTorch, VGG16's
    /// from 3.401621e-3 to 3.401665e-3.
    ByPlane,
}

impl Tiling {
    /// The tile side on a layer of geometry `g`.
    fn tile(self, g: &ConvGeom) -> usize {
        match self {
            Tiling::Fixed(m) => m,
            Tiling::ByPlane if f4_pays(g) => 4,
            Tiling::ByPlane => 2,
        }
    }
}

/// Fewest tiles a [`fused`] block of F(4,3) needs for [`Tiling::ByPlane`] to pick it: each
/// block packs every `U[ξ]` once for its products. Measured per layer, backward passes,
/// 2 threads, F(4,3) against F(2,3): VGG16's fused layers at 224² and 112² (blocks of
/// 112–224 F(4,3) tiles) 4–18 % faster at batch 1, and faster at batch 8; ResNet-50's at batch 8, 64 → 64
/// on 56² (blocks of 56) 0–25 % slower, 128 → 128 on 28² (blocks of 14) 2× slower.
const F4_BLOCK_TILES: usize = 96;

/// Whether F(4,3) beats F(2,3) on a layer of geometry `g` ([`Tiling::ByPlane`]): on the
/// [`phased`] path (wide layers, whose blocks span whole planes) from [`SMALL_TILES`] on
/// (VGG16's 256- and 512-channel layers at batch 1 on 56² and 28²: 2–24 % faster; on 14²,
/// 16 tiles, 1.7× slower); on the [`fused`] path where its blocks hold [`F4_BLOCK_TILES`].
fn f4_pays(g: &ConvGeom) -> bool {
    if g.cin + g.cout > FUSED_CHANNELS {
        tile_count(g) >= SMALL_TILES
    } else {
        let (ntx, nty) = (g.ow.div_ceil(4), g.oh.div_ceil(4));
        ntx * fused_rows(g, 4, ntx, nty) >= F4_BLOCK_TILES
    }
}

/// The tiles for `pass` of a `[cout, cin, k, k]` dense kernel if the layer may run by
/// Winograd (3×3, stride 1, [`MIN_WIDTH`]), else `None`: forward F(2,3) ([`TILE`]),
/// backward [`Tiling::ByPlane`]. `NETLENS_WINOGRAD=0` (or `off`) keeps every layer on
/// im2col + gemm, `=4` uses F(4,3) in both passes on every plane (faster on VGG16, less
/// exact: see [`TILE`]), `=2` F(2,3) in both (for A/B timing and accuracy checks).
pub fn choose(cout: usize, cin: usize, k: usize, stride: usize, pass: Pass) -> Option<Tiling> {
    if k != 3 || stride != 1 || width(cin, cout) < MIN_WIDTH {
        return None;
    }
    match std::env::var("NETLENS_WINOGRAD").as_deref() {
        Ok("0") | Ok("off") => None,
        Ok("2") => Some(Tiling::Fixed(2)),
        Ok("4") => Some(Tiling::Fixed(4)),
        _ => Some(match pass {
            Pass::Forward => Tiling::Fixed(TILE),
            Pass::Backward => Tiling::ByPlane,
        }),
    }
}

/// A layer's Winograd weights, transformed on the first pass that runs the layer by
/// Winograd with each tile size: a layer whose planes are always too small for it
/// ([`eligible`], [`SMALL_TILES`]; ResNet-50's 7×7 stage, the largest kernels) never holds
/// them (4× its kernel for F(4,3)), and one that always runs at one input size holds one set.
#[derive(Debug, Default, Clone)]
pub struct LazyWeights {
    /// Tile sizes, `None` where the layer never runs by Winograd.
    tiling: Option<Tiling>,
    /// The F(2,3) and the F(4,3) weights.
    cells: [std::sync::OnceLock<Vec<f32>>; 2],
}

impl LazyWeights {
    /// For `pass` of a `[cout, cin, k, k]` kernel (see [`choose`]).
    pub fn new(cout: usize, cin: usize, k: usize, stride: usize, pass: Pass) -> Self {
        Self {
            tiling: choose(cout, cin, k, stride, pass),
            cells: Default::default(),
        }
    }

    /// The transformed `weight` if a convolution of geometry `g` should run by Winograd:
    /// it can ([`eligible`]) and it pays on that plane ([`SMALL_TILES`]).
    pub fn get(&self, weight: &[f32], g: &ConvGeom) -> Option<&[f32]> {
        let m = self.tiling?.tile(g);
        if weight.len() != g.cout * g.cin * 9 || !eligible_with(g, m) || !pays(g) {
            return None;
        }
        let u = self.cells[usize::from(m == 4)]
            .get_or_init(|| transform_weights(weight, g.cout, g.cin, m));
        Some(u)
    }
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
/// Tiles one block's gemms aim for: enough columns that packing `U[ξ]` (`cout × cin`, once
/// per block and position) is a small part of the product.
const BLOCK_TILES: usize = 384;
/// Floats one block's `V` (or `M`) holds at most.
const BLOCK_FLOATS: usize = 6 << 20;

/// Runs `epilogue(image, channel, first row, rows)` after writing those output rows.
pub(crate) type Epilogue<'a> = &'a (dyn Fn(usize, usize, usize, usize) + Sync);

/// `y (+)= W ⋆ x` of a batch by F(`m`×`m`, 3×3) with `u` from [`transform_weights`], then
/// `epilogue` on every block of output rows of every channel.
///
/// Narrow layers run [`fused`], wide ones [`phased`]. Either way a tile's output is the
/// same sum whatever block it falls in: the gemm crate's reduction blocking depends on
/// `cin` only (`kc ≥ 512`, the whole reduction here), so the bytes do not depend on the
/// batch, the block or the thread count.
pub(crate) fn forward(
    g: &ConvGeom,
    u: &[f32],
    x: &[f32],
    y: &mut [f32],
    images: usize,
    accumulate: bool,
    epilogue: Epilogue,
) {
    if g.cin + g.cout <= FUSED_CHANNELS {
        fused(g, u, x, y, images, accumulate, epilogue)
    } else {
        phased(g, u, x, y, images, accumulate, epilogue)
    }
}

/// Layers with at most this many input plus output channels run [`fused`]: their
/// transforms cost as much as their products (VGG16's 64-channel layer at 224², phased:
/// 5.3 ms input transform, 5.3 ms products, 3.9 ms output transform), and a block's `V`
/// and `M` written by one thread and read by another travel through L3. Measured (2
/// threads, forward + backward, batch 1 / 8): VGG16 191 → 155–164 / 1380–1400 → 1200–1230
/// ms with [`XI_PAD`] and [`FUSED_FLOATS`]; ResNet-50 unchanged. Raising this to 512 or
/// 1024 was slower (VGG16 up to +15 %, ResNet-50 +10 %): the wide layers' products
/// dominate, and the phased path shares each product out over both threads.
pub const FUSED_CHANNELS: usize = 256;

/// Floats a fused block's `V` and `M` hold together at most (4 MB, more than one core's
/// 2 MB L2: wider blocks amortize packing `U[ξ]` once per block and product). VGG16 f+b at
/// batch 1: 256 K floats 170 ms, 1 M 156–164 ms, 2 M 166 ms, 4 M 175 ms.
const FUSED_FLOATS: usize = 1 << 20;

/// Fewest blocks an image's tile rows are cut into on the fused path (when it has that many
/// rows), so that one image keeps both threads busy; the bytes do not depend on the blocks.
const MIN_FUSED_BLOCKS: usize = 4;

/// Tile rows per block of [`fused`] for F(`m`×`m`, 3×3) on a grid of `ntx × nty` tiles.
fn fused_rows(g: &ConvGeom, m: usize, ntx: usize, nty: usize) -> usize {
    let a = m + 2;
    (FUSED_FLOATS / (a * a * (g.cin + g.cout) * ntx.max(1)))
        .min(nty.div_ceil(MIN_FUSED_BLOCKS))
        .max(1)
}

/// [`forward`] one task per block of an image's tile rows, each running the input
/// transform, the `α²` products and the output transform of its block on one thread,
/// so that `V` and `M` stay in that core's caches. A tile's output is the same sum as in
/// [`phased`] (the products reduce over all of `cin` in order whatever the block's width).
pub(crate) fn fused(
    g: &ConvGeom,
    u: &[f32],
    x: &[f32],
    y: &mut [f32],
    images: usize,
    accumulate: bool,
    epilogue: Epilogue,
) {
    let (t, ntx, nty) = grid(g, u);
    let (m, a) = (t.m, t.alpha());
    let rows_per_block = fused_rows(g, m, ntx, nty);
    let per_image = nty.div_ceil(rows_per_block);
    let yp = SendPtr(y.as_mut_ptr());
    let in_sz = g.cin * g.h * g.w;
    let x = &x[..images * in_sz];
    (0..images * per_image).into_par_iter().for_each(|task| {
        let (n, b) = (task / per_image, task % per_image);
        let r0 = n * nty + b * rows_per_block;
        let r1 = (r0 + rows_per_block).min((n + 1) * nty);
        let tn = (r1 - r0) * ntx;
        let blk = Block {
            g,
            t,
            ntx,
            nty,
            r0,
            r1,
            tn,
        };
        super::with_scratch(a * a * blk.vs(), |v| {
            super::with_scratch2(a * a * blk.ms(), |mm| {
                let (vp, mp) = (SendPtr(v.as_mut_ptr()), SendPtr(mm.as_mut_ptr()));
                dispatch(InputTransform {
                    blk: &blk,
                    x,
                    cis: 0..g.cin,
                    v: vp,
                });
                for xi in 0..a * a {
                    // SAFETY: `v` and `mm` are this task's own, sized for the block.
                    unsafe { blk.product(u, vp, mp, xi) };
                }
                dispatch(OutputTransform {
                    blk: &blk,
                    m: mp,
                    cos: 0..g.cout,
                    y: yp,
                    accumulate,
                });
            })
        });
        let (y0, y1) = ((r0 - n * nty) * m, ((r1 - n * nty) * m).min(g.oh));
        for co in 0..g.cout {
            epilogue(n, co, y0, y1 - y0);
        }
    });
}

/// [`forward`] in three phases per block of tile rows, each phase split over the threads
/// (the batch's tile rows numbered image after image and cut into blocks of a fixed number
/// of rows set by the geometry alone, so a block may span images):
/// input transform by input channels, products by transform position, output transform by
/// output channels (for wide layers, whose products dominate and whose blocks would be
/// too narrow for one thread's L2).
pub(crate) fn phased(
    g: &ConvGeom,
    u: &[f32],
    x: &[f32],
    y: &mut [f32],
    images: usize,
    accumulate: bool,
    epilogue: Epilogue,
) {
    let (t, ntx, nty) = grid(g, u);
    let (m, a) = (t.m, t.alpha());
    let per_tile = a * a * g.cin.max(g.cout);
    let rows_per_block = BLOCK_TILES
        .div_ceil(ntx)
        .min(BLOCK_FLOATS / (per_tile * ntx))
        .clamp(1, images * nty);
    let total_rows = images * nty;
    let blocks = total_rows.div_ceil(rows_per_block);
    let yp = SendPtr(y.as_mut_ptr());
    let in_sz = g.cin * g.h * g.w;
    let tn_max = rows_per_block * ntx;
    super::with_scratch(a * a * (g.cin * tn_max + XI_PAD), |v| {
        super::with_scratch2(a * a * (g.cout * tn_max + XI_PAD), |mm| {
            let (vp, mp) = (SendPtr(v.as_mut_ptr()), SendPtr(mm.as_mut_ptr()));
            for b in 0..blocks {
                let r0 = b * rows_per_block;
                let r1 = (r0 + rows_per_block).min(total_rows);
                let tn = (r1 - r0) * ntx;
                let blk = Block {
                    g,
                    t,
                    ntx,
                    nty,
                    r0,
                    r1,
                    tn,
                };
                let ci_chunk = g.cin.div_ceil(TRANSFORM_TASKS);
                (0..g.cin.div_ceil(ci_chunk)).into_par_iter().for_each(|c| {
                    let cis = c * ci_chunk..((c + 1) * ci_chunk).min(g.cin);
                    dispatch(InputTransform {
                        blk: &blk,
                        x: &x[..images * in_sz],
                        cis,
                        v: vp,
                    });
                });
                (0..a * a).into_par_iter().for_each(|xi| {
                    // SAFETY: task ξ writes only M[ξ]; V and U are read.
                    unsafe { blk.product(u, vp, mp, xi) };
                });
                let co_chunk = g.cout.div_ceil(TRANSFORM_TASKS);
                (0..g.cout.div_ceil(co_chunk))
                    .into_par_iter()
                    .for_each(|c| {
                        let cos = c * co_chunk..((c + 1) * co_chunk).min(g.cout);
                        dispatch(OutputTransform {
                            blk: &blk,
                            m: mp,
                            cos: cos.clone(),
                            y: yp,
                            accumulate,
                        });
                        // The block's output rows, image by image.
                        let mut r = r0;
                        while r < r1 {
                            let (n, ty) = (r / nty, r % nty);
                            let end = r1.min((n + 1) * nty);
                            let (y0, y1) = (ty * m, ((end - n * nty) * m).min(g.oh));
                            for co in cos.clone() {
                                epilogue(n, co, y0, y1 - y0);
                            }
                            r = end;
                        }
                    });
            }
        })
    });
}

/// One block of the batch's tile rows `r0..r1` (row `r` is tile row `r % nty` of image
/// `r / nty`), `tn` tiles.
struct Block<'a> {
    g: &'a ConvGeom,
    t: &'static Tiles,
    ntx: usize,
    nty: usize,
    r0: usize,
    r1: usize,
    tn: usize,
}

/// Floats between one transform position's `V[ξ]` (or `M[ξ]`) and the next beyond its
/// `channels × tiles`: without them a block of 64 channels × 112 tiles puts all sixteen
/// `V[ξ]` rows a multiple of 4 KiB apart, in the same L1 sets (measured on one thread: the
/// F(2,3) input transform of VGG16's 224² layer 8.3 → 7.5 ms).
const XI_PAD: usize = 16;

/// The tile set `u` was transformed for, and the output's tiles across and down.
fn grid(g: &ConvGeom, u: &[f32]) -> (&'static Tiles, usize, usize) {
    let Some(m) = tile_of(u.len(), g.cout, g.cin) else {
        unreachable!("Winograd weights of the wrong size")
    };
    (tiles(m), g.ow.div_ceil(m), g.oh.div_ceil(m))
}

impl Block<'_> {
    /// `M[ξ] = U[ξ] · V[ξ]` for the block, on the calling thread.
    ///
    /// # Safety
    /// `v` and `mm` hold the block's `V` and `M` ([`Block::vs`], [`Block::ms`] apart), `V[ξ]`
    /// is written, and nothing else touches `M[ξ]` meanwhile.
    unsafe fn product(&self, u: &[f32], v: SendPtr<f32>, mm: SendPtr<f32>, xi: usize) {
        let (g, tn) = (self.g, self.tn);
        assert!(u.len() >= (xi + 1) * g.cout * g.cin);
        // SAFETY: the caller's contract; `U[ξ]` was checked above.
        unsafe {
            matmul(
                (g.cout, tn, g.cin),
                Mat::rows(mm.at(xi * self.ms()), tn),
                false,
                Mat::rows(u[xi * g.cout * g.cin..].as_ptr(), g.cin),
                Mat::rows(v.at(xi * self.vs()) as *const f32, tn),
                Parallelism::None,
            );
        }
    }

    /// Floats from `V[ξ]` to `V[ξ + 1]`.
    fn vs(&self) -> usize {
        self.g.cin * self.tn + XI_PAD
    }

    /// Floats from `M[ξ]` to `M[ξ + 1]`.
    fn ms(&self) -> usize {
        self.g.cout * self.tn + XI_PAD
    }
}

mod transforms;
use transforms::{InputTransform, OutputTransform};

#[cfg(test)]
mod tests;
