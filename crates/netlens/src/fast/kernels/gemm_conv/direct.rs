//! Dense k×k convolutions (k ≤ 7) as direct register-blocked loops, without im2col and
//! without a gemm call: the path of the stride-1 layers with few input channels (see
//! [`direct_ok`]).
//!
//! im2col + gemm pays twice on a layer whose reduction is short: the column copy (`cin·k²`
//! rows per output pixel) and the crate's packing of it, before a product only `cin·k²`
//! deep. Stand-alone on one thread of a 2-vCPU AVX-512 Xeon, SqueezeNet's 3×3 shapes ran
//! at 117–135 GFLOP/s here against 62–91 by im2col + gemm (16 → 64 on 55², 32 → 128 on
//! 27², 128 → 128 on 28²), its transposes (64 → 16 on 55², 128 → 32 on 27²) at 126–128
//! against 21–38; on 13² planes both run at 93–116. In the network the gain is smaller
//! (SqueezeNet's 3×3 forward passes at batch 8 8 % faster, f+b at batch 1 ~5 %): there its
//! layers also wait on the caches, and two busy cores run each slower than one.
//!
//! A task takes a block of output rows of one image and a range of output channels. It
//! copies the input rows the block reads into a zero-padded band, split into the stride's
//! `s²` phases (`band[ci][a·s + b][i][j]` = input row `(r0 + i)·s + a − pt`, column
//! `j·s + b − pl`), each phase row `Wp = ow + (k − 1)/s` wide. Output pixel `(oy, ox)` of
//! the block, as position `q = oy·Wp + ox` of a `Wp`-wide grid, then reads tap `(ky, kx)`
//! at `q + (ky/s)·Wp + kx/s` of phase `(ky mod s, kx mod s)`: for every tap a run of
//! consecutive positions is one contiguous load. The micro-kernel keeps `C` output
//! channels × `L` positions in registers (8 × 48 with AVX-512, 4 × 24 with AVX2) over the
//! whole reduction, broadcasting each weight from a copy packed `[block of 8][ci][tap][8]`
//! once per layer ([`LazyPacked`]). A task works in strips of rows: the micro-kernel, then
//! the strip's rows copied out (the `(k − 1)/s` positions past each row's end dropped),
//! then the layer's epilogue, each strip still in cache.
//!
//! Every output value is one fused multiply-add chain from zero over `(ci, ky, kx)` in
//! that order, whatever the register blocking, the split into tasks, the batch and the
//! vector width — so the bytes are the same alone and in a batch, on any thread count, and
//! with AVX-512 or AVX2 (with FMA); up to 512 terms it is the chain the gemm crate's
//! micro-kernel computes over im2col's rows. `NETLENS_DIRECT=0` turns the path off (for A/B
//! timing).

use super::ConvGeom;
use crate::fast::kernels::{with_scratch, Fused, Mac, SendPtr, Separate};
use rayon::prelude::*;

/// Largest kernel side (ResNet's 7×7 stem).
const MAX_K: usize = 7;

/// Fewest grid positions (`oh · Wp`) of one image: on 7×7 planes (63 positions, two groups
/// of 48 of which a third is padding) the product of im2col and gemm was twice as fast.
const MIN_GRID: usize = 128;

/// Fewest output channels: a channel block holds 8, so fewer than 16 wastes a large part
/// of every block (VGG16's and the stems' backward, 3 outputs, keep the product).
const MIN_COUT: usize = 16;

/// Fewest input channels: VGG16's first layer (3 → 64 on 224², a 27-term reduction) ran
/// 10–40 % slower here than by im2col + gemm in the network.
const MIN_CIN: usize = 8;

/// Most floats of one task's band (256 KB), so that the band and its channel block's
/// weights stay in the core's L2.
const BAND_FLOATS: usize = 64 << 10;

/// Fewest grid positions per task when an image's rows are split into several blocks, so
/// that the dropped positions and the band's extra rows stay a small part of each block.
const MIN_BLOCK_GRID: usize = 4 * 48;

/// Grid positions per strip of a task's rows (at least one row): eight register blocks
/// of 48, so that a strip's outputs for a few channel blocks stay in L2 between the
/// micro-kernel, the copy and the epilogue.
const STRIP_POSITIONS: usize = 8 * 48;

/// Whether a dense convolution of this geometry runs here: stride 1, a kernel of 2 to 7,
/// padding within the kernel, [`MIN_CIN`], [`MIN_COUT`], [`MIN_GRID`]. Stride 2 runs here
/// correctly (unit-tested) but is not chosen: SqueezeNet's 3 → 64 stem took 0.73–0.91 ms
/// against 0.57–0.71 by im2col + gemm, ResNet-50's 128 → 128 and 256 → 256 stride-2
/// layers 1.5–2× as long (batch 1, 2 threads, forward).
pub(super) fn direct_ok(g: &ConvGeom) -> bool {
    (2..=MAX_K).contains(&g.k)
        && g.stride == 1
        && g.pt < g.k
        && g.pl < g.k
        && g.cin >= MIN_CIN
        && g.cout >= MIN_COUT
        && g.oh >= 1
        && g.ow >= 1
        && g.oh * grid_width(g) >= MIN_GRID
        && enabled()
}

/// `NETLENS_DIRECT=0` (or `off`) keeps every layer on the products, read once.
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| !matches!(std::env::var("NETLENS_DIRECT").as_deref(), Ok("0" | "off")))
}

/// `Wp`: a grid row, the output row and the `(k − 1)/s` positions a tap reaches past it.
fn grid_width(g: &ConvGeom) -> usize {
    g.ow + (g.k - 1) / g.stride
}

/// The compiled copy of the loops a CPU runs: they differ in register blocking only, never
/// in any value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Tier {
    /// AVX-512F + FMA: 8 channels × 48 positions (24 of the 32 vector registers).
    Avx512,
    /// AVX2 + FMA: 4 channels × 24 positions (12 of the 16 registers).
    Avx2,
    /// Anything else: separate multiply and add, 4 × 8.
    Plain,
}

impl Tier {
    /// The widest copy this CPU runs.
    pub(super) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = std::is_x86_feature_detected!("fma");
            if fma && std::is_x86_feature_detected!("avx512f") {
                return Tier::Avx512;
            }
            if fma && std::is_x86_feature_detected!("avx2") {
                return Tier::Avx2;
            }
        }
        Tier::Plain
    }

    /// Output channels per register block.
    fn channels(self) -> usize {
        match self {
            Tier::Avx512 => 8,
            Tier::Avx2 | Tier::Plain => 4,
        }
    }
}

/// How one batch is shared out: blocks of `rows` output rows × ranges of `chunk` channel
/// blocks, per image.
#[derive(Clone, Copy, Debug)]
struct Split {
    rows: usize,
    row_blocks: usize,
    chunk: usize,
    chunks: usize,
}

impl Split {
    /// Row blocks within [`BAND_FLOATS`], then more of them while each keeps
    /// [`MIN_BLOCK_GRID`] positions and the batch gives fewer than two tasks per thread,
    /// then ranges of channel blocks for the rest.
    fn new(g: &ConvGeom, images: usize, blocks: usize) -> Self {
        let (s, wp) = (g.stride, grid_width(g));
        let halo = (g.k - 1) / s;
        let row_floats = g.cin * s * s * wp;
        let by_cache = (BAND_FLOATS / row_floats.max(1))
            .saturating_sub(halo)
            .max(1);
        let want = 2 * rayon::current_num_threads().max(1);
        let per_image = want.div_ceil(images.max(1));
        let min_rows = MIN_BLOCK_GRID.div_ceil(wp).max(1);
        let by_tasks = g.oh.div_ceil(per_image).max(min_rows);
        let rows = by_cache.min(by_tasks).min(g.oh).max(1);
        let row_blocks = g.oh.div_ceil(rows);
        let chunks = per_image.div_ceil(row_blocks).clamp(1, blocks.max(1));
        let chunk = blocks.div_ceil(chunks).max(1);
        Self {
            rows,
            row_blocks,
            chunk,
            chunks: blocks.div_ceil(chunk).max(1),
        }
    }
}

/// Output channels per packed weight block: the AVX-512 copy's register block; the others
/// take each block in halves.
const PACK: usize = 8;

/// A layer's weights packed for these loops ([`pack`]), made on the first pass that runs
/// the layer here (never for a layer that always runs as products).
#[derive(Debug, Default)]
pub struct LazyPacked(std::sync::OnceLock<Vec<f32>>);

impl LazyPacked {
    /// The packed `weight` (`[cout, cin·k²]`) if a convolution of geometry `g` runs here.
    pub fn get(&self, weight: &[f32], g: &ConvGeom) -> Option<&[f32]> {
        let kdim = g.cin * g.k * g.k;
        if !direct_ok(g) || weight.len() != g.cout * kdim {
            return None;
        }
        Some(self.0.get_or_init(|| pack(weight, g.cout, kdim)))
    }
}

/// `weight` `[cout, kdim]` as `[block][kdim][PACK]`, the channels past `cout` zero, blocks
/// in parallel.
pub(super) fn pack(weight: &[f32], cout: usize, kdim: usize) -> Vec<f32> {
    let mut p = vec![0.0; cout.div_ceil(PACK) * kdim * PACK];
    p.par_chunks_mut(kdim * PACK)
        .enumerate()
        .for_each(|(b, dst)| {
            for j in 0..PACK.min(cout - b * PACK) {
                let row = &weight[(b * PACK + j) * kdim..][..kdim];
                for (i, &v) in row.iter().enumerate() {
                    dst[i * PACK + j] = v;
                }
            }
        });
    p
}

/// `y (+)= W ⋆ x` for a batch, from the weights `packed` by [`pack`];
/// `epilogue(image, first channel, channels, first row, rows)` runs on each strip of rows
/// once it is written.
///
/// # Safety
/// `y` must hold `images` outputs of `g`, `x` `images` inputs, `packed` the packed
/// `[cout, cin·k²]` kernel, and `y` must be written by no one else meanwhile.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn forward(
    g: &ConvGeom,
    packed: &[f32],
    x: &[f32],
    y: SendPtr<f32>,
    images: usize,
    accumulate: bool,
    epilogue: &(dyn Fn(usize, usize, usize, usize, usize) + Sync),
    tier: Tier,
) {
    let kdim = g.cin * g.k * g.k;
    let (in_sz, out_sz) = (g.cin * g.h * g.w, g.cout * g.oh * g.ow);
    assert!(packed.len() >= g.cout.div_ceil(PACK) * kdim * PACK && x.len() >= images * in_sz);
    let c = tier.channels();
    let blocks = g.cout.div_ceil(c);
    let split = Split::new(g, images, blocks);
    let tasks = images * split.row_blocks * split.chunks;
    (0..tasks).into_par_iter().for_each(|t| {
        let n = t / (split.row_blocks * split.chunks);
        let rb = (t / split.chunks) % split.row_blocks;
        let ch = t % split.chunks;
        let r0 = rb * split.rows;
        let rows = split.rows.min(g.oh - r0);
        let (b0, b1) = (ch * split.chunk, ((ch + 1) * split.chunk).min(blocks));
        let task = Task {
            g,
            x: &x[n * in_sz..(n + 1) * in_sz],
            packed,
            y: SendPtr(y.at(n * out_sz)),
            n,
            epilogue,
            r0,
            rows,
            blocks: (b0, b1),
            accumulate,
        };
        // SAFETY: the task writes rows r0 .. r0 + rows of its channels of image n alone;
        // the tier's features were detected (or it is the plain copy).
        unsafe { task.run(tier) };
    });
}

/// One task: a block of output rows of one image, a range of channel blocks.
struct Task<'a> {
    g: &'a ConvGeom,
    /// The image's input.
    x: &'a [f32],
    /// The weights packed by [`pack`], every block.
    packed: &'a [f32],
    /// The image's output.
    y: SendPtr<f32>,
    /// The image.
    n: usize,
    /// Its finishing pass over written rows (see [`forward`]).
    epilogue: &'a (dyn Fn(usize, usize, usize, usize, usize) + Sync),
    r0: usize,
    rows: usize,
    /// Channel blocks `b0 .. b1`.
    blocks: (usize, usize),
    accumulate: bool,
}

impl Task<'_> {
    /// # Safety
    /// The CPU must have `tier`'s features, and the task's part of `y` be its own.
    unsafe fn run(&self, tier: Tier) {
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx2,fma")]
            unsafe fn avx512(t: &Task) {
                t.body::<Fused, 8, 48>()
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2(t: &Task) {
                t.body::<Fused, 4, 24>()
            }
            match tier {
                Tier::Avx512 => return avx512(self),
                Tier::Avx2 => return avx2(self),
                Tier::Plain => {}
            }
        }
        self.body::<Separate, 4, 8>()
    }

    /// Fill the band, then strip by strip of rows: the micro-kernel over every (position
    /// group, channel block), the strip's rows copied out, its epilogue — so that each
    /// strip's grid and output are still in cache when they are copied and finished (on
    /// the 111² stem, one pass per stage over the whole block ran from memory).
    #[inline(always)]
    unsafe fn body<M: Mac, const C: usize, const L: usize>(&self) {
        let g = self.g;
        let (k, s) = (g.k, g.stride);
        let (wp, halo) = (grid_width(g), (k - 1) / s);
        let phases = s * s;
        let band_rows = self.rows + halo;
        let strip_rows = STRIP_POSITIONS.div_ceil(wp).clamp(1, self.rows);
        let strip_span = (strip_rows * wp).div_ceil(L) * L;
        // A phase plane: its rows, then zeros as far as the last strip's last group's
        // farthest tap.
        let last = (self.rows - 1) / strip_rows * strip_rows * wp;
        let plane = (last + strip_span + halo * wp + halo)
            .max(band_rows * wp)
            .next_multiple_of(16);
        let cstride = phases * plane;
        let (b0, b1) = self.blocks;
        let kdim = g.cin * k * k;
        let band_len = g.cin * cstride;
        let grid_len = (b1 - b0) * C * strip_span;
        let mut offs = [0usize; MAX_K * MAX_K];
        for ky in 0..k {
            for kx in 0..k {
                offs[ky * k + kx] = ((ky % s) * s + kx % s) * plane + (ky / s) * wp + kx / s;
            }
        }
        let offs = &offs[..k * k];
        let (co0, co1) = (b0 * C, (b1 * C).min(g.cout));
        let pixels = g.oh * g.ow;
        with_scratch(band_len + grid_len, |buf| {
            let (band, grid) = buf.split_at_mut(band_len);
            self.fill(band, plane, band_rows, wp);
            for sr in (0..self.rows).step_by(strip_rows) {
                let rows = strip_rows.min(self.rows - sr);
                let p0 = sr * wp;
                for q in 0..(rows * wp).div_ceil(L) {
                    for b in b0..b1 {
                        micro::<M, C, L>(
                            band[p0 + q * L..].as_ptr(),
                            cstride,
                            g.cin,
                            offs,
                            self.packed[(b * C / PACK) * kdim * PACK + (b * C) % PACK..].as_ptr(),
                            grid[(b - b0) * C * strip_span + q * L..].as_mut_ptr(),
                            strip_span,
                        );
                    }
                }
                for co in co0..co1 {
                    let src = &grid[(co - co0) * strip_span..][..rows * wp];
                    for r in 0..rows {
                        let off = co * pixels + (self.r0 + sr + r) * g.ow;
                        // SAFETY: rows r0 .. r0 + rows of channel co are this task's alone.
                        let dst = std::slice::from_raw_parts_mut(self.y.at(off), g.ow);
                        let row = &src[r * wp..][..g.ow];
                        if self.accumulate {
                            for (d, &v) in dst.iter_mut().zip(row) {
                                *d += v;
                            }
                        } else {
                            dst.copy_from_slice(row);
                        }
                    }
                }
                (self.epilogue)(self.n, co0, co1 - co0, self.r0 + sr, rows);
            }
        });
    }

    /// The band ([`direct`](self) module doc): every phase plane's `band_rows` rows of `wp`,
    /// zeros outside the image and past the rows.
    #[inline(always)]
    fn fill(&self, band: &mut [f32], plane: usize, band_rows: usize, wp: usize) {
        let g = self.g;
        let s = g.stride;
        for (ci, chan) in band.chunks_exact_mut(s * s * plane).enumerate() {
            let src = &self.x[ci * g.h * g.w..][..g.h * g.w];
            for (ph, dst) in chan.chunks_exact_mut(plane).enumerate() {
                let (a, b) = (ph / s, ph % s);
                let (rows, tail) = dst.split_at_mut(band_rows * wp);
                tail.fill(0.0);
                for (i, row) in rows.chunks_exact_mut(wp).enumerate() {
                    let iy = ((self.r0 + i) * s + a)
                        .checked_sub(g.pt)
                        .filter(|&iy| iy < g.h);
                    let Some(iy) = iy else {
                        row.fill(0.0);
                        continue;
                    };
                    let line = &src[iy * g.w..][..g.w];
                    if s == 1 {
                        // Columns j − pl of the input; zeros left and right.
                        let cols = g.w.min(wp.saturating_sub(g.pl));
                        row[..g.pl.min(wp)].fill(0.0);
                        row[g.pl.min(wp)..g.pl.min(wp) + cols].copy_from_slice(&line[..cols]);
                        row[g.pl.min(wp) + cols..].fill(0.0);
                    } else {
                        // Columns j·s + b − pl: zeros, then every s-th input, then zeros.
                        let j0 = (g.pl.saturating_sub(b)).div_ceil(s).min(wp);
                        let j1 = ((g.w + g.pl).saturating_sub(b)).div_ceil(s).clamp(j0, wp);
                        row[..j0].fill(0.0);
                        row[j1..].fill(0.0);
                        if j1 > j0 {
                            // The first input column read, inside the image as j0 < j1.
                            let first = j0 * s + b - g.pl;
                            let live = &mut row[j0..j1];
                            let full = live.len().min((g.w - first) / s);
                            for (v, run) in live.iter_mut().zip(line[first..].chunks_exact(s)) {
                                *v = run[0];
                            }
                            if full < live.len() {
                                live[full] = line[first + full * s];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `C` channels × `L` grid positions from `band` (channels `cstride` apart, taps at
/// `offs`), weights `w` packed `[ci][tap][PACK]` (the first `C` of each `PACK` read), each a chain from zero in `(ci, tap)` order;
/// written to `out` (channel rows `ostride` apart).
///
/// # Safety
/// Every read `band + ci·cstride + off + [0, L)` and write `out + c·ostride + [0, L)` must
/// lie inside live buffers; `w` must hold `cin · offs.len() · PACK` values.
#[inline(always)]
unsafe fn micro<M: Mac, const C: usize, const L: usize>(
    band: *const f32,
    cstride: usize,
    cin: usize,
    offs: &[usize],
    w: *const f32,
    out: *mut f32,
    ostride: usize,
) {
    let mut acc = [[0.0f32; L]; C];
    let mut w = w;
    for ci in 0..cin {
        let base = band.add(ci * cstride);
        for &o in offs {
            let v: [f32; L] = std::ptr::read_unaligned(base.add(o).cast::<[f32; L]>());
            for (c, a) in acc.iter_mut().enumerate() {
                let wc = *w.add(c);
                for (a, &v) in a.iter_mut().zip(&v) {
                    *a = M::mac(*a, wc, v);
                }
            }
            w = w.add(PACK);
        }
    }
    for (c, a) in acc.iter().enumerate() {
        std::ptr::write_unaligned(out.add(c * ostride).cast::<[f32; L]>(), *a);
    }
}
