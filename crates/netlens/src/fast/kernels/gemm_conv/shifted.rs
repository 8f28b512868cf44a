//! Stride-1 k×k convolutions with many input channels as `k²` shifted products, without
//! im2col.
//!
//! im2col writes `cin·k²` rows per column tile, and on a small plane every row is a few
//! runs of at most `w` floats with zeros between them: on SqueezeNet's transposed 3×3
//! layers (the backward-data passes 256 → 64 and 192 → 48 on 13², 128 → 32 on 27²,
//! 64 → 16 on 55²) copying the columns took 37–47 % of the layer's time, since the product
//! that follows has only `cout` (16–64) rows to spread the copy over.
//!
//! Here a block of output rows reads a zero-padded band of the input, `cin` planes of
//! `rows + k − 1` rows of `Wp = ow + k − 1` pixels: output pixel `(oy, ox)`, as column
//! `oy·Wp + ox` of a `Wp`-wide grid, reads band pixel `(oy + ky, ox + kx)`, so for each tap
//! the band shifted by `ky·Wp + kx` is the right-hand matrix as it stands (rows `cin` a
//! plane apart, unit column stride), and the tap's weights are the left one (stride `k²`
//! along `cin`). The `k²` products add into a `cout × n` block in tap order; the `k − 1`
//! pixels past each row's end are computed and dropped when the rows are copied out
//! before the usual epilogue. Each output value is the same chain of sums whatever the
//! split and batch ([`matmul`] pins each tap's reduction blocks to `cin` alone), so the
//! split may follow the thread count.
//!
//! Only for `cin ≥` [`MIN_CIN`]: each tap's product re-reads and re-writes its output
//! block, which a short reduction does not pay for.

use super::{inner_parallelism, matmul, ConvGeom, Mat, SendPtr};
use crate::fast::kernels::{with_scratch, with_scratch2};
use rayon::prelude::*;

/// Fewest input channels (each tap's reduction) for the shifted products.
pub(super) const MIN_CIN: usize = 64;

/// Most output channels for the shifted products: im2col's copy costs per output value
/// `1 / cout` of the product's work, so only the layers with few outputs gain.
const MAX_COUT: usize = 64;

/// Widest output plane for the shifted products (the widest measured is SqueezeNet's 55²);
/// wider planes keep im2col, whose runs grow with the row.
const MAX_WIDTH: usize = 64;

/// Most floats of one task's padded input band (256 KB, half a Zen 3 core's L2).
const BAND_FLOATS: usize = 64 << 10;

/// Whether a dense convolution runs as shifted products: stride 1, a kernel of more than
/// one pixel, padding within the kernel, enough input channels, a small plane (but no
/// narrower than 4 pixels, so that every block has at least 4 columns).
pub(super) fn shifted_ok(g: &ConvGeom) -> bool {
    g.k > 1
        && g.stride == 1
        && g.pt < g.k
        && g.pl < g.k
        && g.cin >= MIN_CIN
        && g.cout <= MAX_COUT
        && (4..=MAX_WIDTH).contains(&g.ow)
        && g.oh >= 1
}

/// Output rows per block: as many blocks per image as keep the threads busy at this batch
/// size (one per image from a batch as large as the thread count; four per image on 13²
/// at batch 1 measured slower than two), and a band within [`BAND_FLOATS`].
fn block_rows(g: &ConvGeom, images: usize) -> usize {
    let wp = g.ow + g.k - 1;
    let want = rayon::current_num_threads().div_ceil(images.max(1)).max(1);
    let by_tasks = g.oh.div_ceil(want);
    let by_cache = (BAND_FLOATS / (g.cin * wp)).saturating_sub(g.k - 1).max(1);
    by_tasks.min(by_cache).max(1)
}

/// `y (+)= W ⋆ x` for a batch by shifted products; `epilogue(image, first row, rows)`
/// runs on each block of output rows once they are written (all channels).
///
/// # Safety
/// `y` must hold `images` outputs of `g` and be written by no one else meanwhile.
pub(super) unsafe fn forward(
    g: &ConvGeom,
    weight: &[f32],
    x: &[f32],
    y: SendPtr<f32>,
    images: usize,
    accumulate: bool,
    epilogue: &(dyn Fn(usize, usize, usize) + Sync),
) {
    let (k, kk) = (g.k, g.k * g.k);
    let kdim = g.cin * kk;
    let wp = g.ow + k - 1;
    let (in_sz, out_sz, pixels) = (g.cin * g.h * g.w, g.cout * g.oh * g.ow, g.oh * g.ow);
    assert!(weight.len() >= g.cout * kdim && x.len() >= images * in_sz);
    let rows = block_rows(g, images);
    let blocks = g.oh.div_ceil(rows);
    let tasks = images * blocks;
    let par = inner_parallelism(tasks);
    (0..tasks).into_par_iter().for_each(|t| {
        let (n, b) = (t / blocks, t % blocks);
        let r0 = b * rows;
        let rows = rows.min(g.oh - r0);
        let band_rows = rows + k - 1;
        let plane = band_rows * wp;
        let cols = (rows - 1) * wp + g.ow;
        let xi = &x[n * in_sz..(n + 1) * in_sz];
        with_scratch(g.cin * plane, |band| {
            fill_band(g, xi, r0, band_rows, wp, band);
            with_scratch2(g.cout * cols, |block| {
                for (tap, (ky, kx)) in (0..k)
                    .flat_map(|ky| (0..k).map(move |kx| (ky, kx)))
                    .enumerate()
                {
                    // SAFETY: the tap's weights are column `tap` of every `[cin × k²]` row;
                    // the shifted band's last read is `(band_rows − 1)·wp + wp − 1`
                    // (see the module doc), inside `band`; `block` is this task's own.
                    unsafe {
                        matmul(
                            (g.cout, cols, g.cin),
                            Mat::rows(block.as_mut_ptr(), cols),
                            tap > 0,
                            Mat {
                                ptr: weight[tap..].as_ptr(),
                                rs: kdim as isize,
                                cs: kk as isize,
                            },
                            Mat::rows(band[ky * wp + kx..].as_ptr(), plane),
                            par,
                        );
                    }
                }
                for co in 0..g.cout {
                    let src = &block[co * cols..][..cols];
                    let base = n * out_sz + co * pixels + r0 * g.ow;
                    for r in 0..rows {
                        // SAFETY: rows r0 .. r0 + rows of image n are this task's alone.
                        let dst =
                            unsafe { std::slice::from_raw_parts_mut(y.at(base + r * g.ow), g.ow) };
                        let s = &src[r * wp..][..g.ow];
                        if accumulate {
                            for (d, &v) in dst.iter_mut().zip(s) {
                                *d += v;
                            }
                        } else {
                            dst.copy_from_slice(s);
                        }
                    }
                }
            });
        });
        epilogue(n, r0, rows);
    });
}

/// Band rows `0 .. band_rows` of one image's input for output rows from `r0`: band row
/// `by` is input row `r0 + by − pt` (zeros outside the image), input column `ix` at band
/// column `pl + ix`, zeros elsewhere.
fn fill_band(g: &ConvGeom, x: &[f32], r0: usize, band_rows: usize, wp: usize, band: &mut [f32]) {
    let cols = g.w.min(wp.saturating_sub(g.pl));
    for (ci, dst) in band.chunks_exact_mut(band_rows * wp).enumerate() {
        let src = &x[ci * g.h * g.w..][..g.h * g.w];
        for (by, row) in dst.chunks_exact_mut(wp).enumerate() {
            let iy = (r0 + by).checked_sub(g.pt).filter(|&iy| iy < g.h);
            match iy {
                Some(iy) => {
                    row[..g.pl].fill(0.0);
                    row[g.pl..g.pl + cols].copy_from_slice(&src[iy * g.w..][..cols]);
                    row[g.pl + cols..].fill(0.0);
                }
                None => row.fill(0.0),
            }
        }
    }
}
