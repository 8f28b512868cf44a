//! Products of 1×1 layers on small planes with several images side by side as the columns
//! of one product, forward and backward-data.
//!
//! The gemm crate runs a row-major product with the output's columns (here the plane's
//! pixels) along its micro-kernel's vector rows, 16 floats apiece with AVX2 + FMA, and a
//! partial panel costs what a full one does. A 7×7 plane has 49 pixels, 3 panels and one
//! pixel over: a product per image ran at 73 GFLOP/s on one Zen 3 core (1152 × 192 × 49,
//! Lite0's expand layer) where 48 columns ran at 97 and eight images' 392 columns at
//! 94–96. So on such planes the images of a batch are copied next to each other (a
//! `[k × images·pixels]` block, a few hundred KB), multiplied in one product per block
//! of rows, and the rows copied back to each image before the usual epilogue. On two
//! threads, alternating with the per-image products in one process, Lite0's and
//! ResNet-50's 7×7 layers at batch 8 ran 8–20 % faster forward and backward (e.g.
//! 192 → 1152: 122 against 105 GFLOP/s; 2048 → 512 backward: 165 against 143).
//!
//! The bytes do not change: [`matmul`] pins the reduction's blocks to `k` alone, each
//! output value is one chain of FMAs per block whatever its column, and an accumulating
//! product first copies the output into the block it adds to. So an image gives the same bytes alone (one product of its own) and in
//! any batch; `gemm_conv/tests.rs` checks it.

use super::{inner_parallelism, matmul, Mat, SendPtr};
use crate::fast::kernels::with_scratch;
use rayon::prelude::*;

/// Output values one micro-kernel panel of the gemm crate covers along the columns with
/// AVX2 + FMA (two 8-float registers).
const PANEL: usize = 16;

/// Largest plane (pixels) whose products run grouped: larger planes already fill their
/// panels to 94 % or more (14×14: 196 of 208), and grouping them measured no faster.
const MAX_PIXELS: usize = 128;

/// Tasks a grouped layer is shared out in, at least: the products' bits do not depend on
/// the split ([`matmul`] pins the reduction), so this is free to follow the machine.
fn tasks() -> usize {
    2 * rayon::current_num_threads()
}

/// Fewest rows of a block of rows (where the layer has them).
const MIN_ROWS: usize = 64;

/// Most columns of one grouped product.
const MAX_COLUMNS: usize = 512;

/// Whether a batch of `images` on planes of `pixels` runs grouped: at least two images,
/// a small plane, and a pixel count that leaves a panel part-empty. Not a 1×1 plane: the
/// crate computes a product that small with row-by-row dot products (another order of
/// the sums) when one image's input is a single column.
pub(super) fn grouped_ok(pixels: usize, images: usize) -> bool {
    images >= 2 && (2..=MAX_PIXELS).contains(&pixels) && !pixels.is_multiple_of(PANEL)
}

/// Images per product and rows per block of rows for a batch of `images`: blocks of at
/// least [`MIN_ROWS`] rows, as many as give [`tasks`] tasks with all the images in one
/// product, and the images split into groups for the tasks still missing.
fn shape(images: usize, m: usize, pixels: usize) -> (usize, usize) {
    let tasks = tasks();
    let blocks = tasks.min(m.div_ceil(MIN_ROWS)).max(1);
    let rows = m.div_ceil(blocks).next_multiple_of(16).min(m.max(1));
    let blocks = m.div_ceil(rows);
    let groups = tasks.div_ceil(blocks).min(images).max(1);
    let per_group = images
        .div_ceil(groups)
        .min(MAX_COLUMNS / pixels.max(1))
        .max(1);
    (per_group, rows)
}

/// One grouped product's operands: image `n`'s `[k × pixels]` input at `n · src_size` in
/// `src`, its `[m × pixels]` output at `n · dst_size` from `dst`.
pub(super) struct Operands<'a> {
    pub src: &'a [f32],
    pub src_size: usize,
    pub dst: SendPtr<f32>,
    pub dst_size: usize,
}

/// `dst_n (+)= lhs · src_n` (`[m × k]` times `[k × pixels]`) for every image `n` of
/// `images`, a group of images per product; then `finish(n, r0, rows)` once image `n`'s
/// output rows `r0 .. r0 + rows` hold their values (for the epilogue or the mask).
///
/// `lhs(r0)` gives the left matrix from its row `r0`.
///
/// # Safety
/// `dst` must point at a live buffer holding every listed image's output, written by no one
/// else meanwhile and not overlapping `src`, and `lhs` must give matrices inside live
/// buffers.
pub(super) unsafe fn grouped_product(
    images: &[usize],
    (m, k, pixels): (usize, usize, usize),
    ops: &Operands,
    accumulate: bool,
    lhs: impl Fn(usize) -> Mat<*const f32> + Sync,
    finish: impl Fn(usize, usize, usize) + Sync,
) {
    let (per_group, rows) = shape(images.len(), m, pixels);
    let blocks = m.div_ceil(rows);
    let groups: Vec<&[usize]> = images.chunks(per_group).collect();
    // Each group's input block `[k × len·pixels]`, one after another.
    let starts: Vec<usize> = groups
        .iter()
        .scan(0, |at, g| {
            let s = *at;
            *at += k * g.len() * pixels;
            Some(s)
        })
        .collect();
    let total = k * images.len() * pixels;
    let mut packed = vec![0.0f32; total];
    let pp = SendPtr(packed.as_mut_ptr());
    (0..groups.len() * k)
        .into_par_iter()
        .with_min_len(16)
        .for_each(|t| {
            let (gi, ci) = (t / k, t % k);
            let group = groups[gi];
            let cols = group.len() * pixels;
            // SAFETY: row ci of group gi's block is this task's alone.
            let row =
                unsafe { std::slice::from_raw_parts_mut(pp.at(starts[gi] + ci * cols), cols) };
            for (dst, &n) in row.chunks_exact_mut(pixels).zip(group) {
                dst.copy_from_slice(&ops.src[n * ops.src_size + ci * pixels..][..pixels]);
            }
        });
    let tasks = groups.len() * blocks;
    let par = inner_parallelism(tasks);
    let packed = &packed;
    (0..tasks).into_par_iter().for_each(|t| {
        let (gi, bi) = (t % groups.len(), t / groups.len());
        let group = groups[gi];
        let cols = group.len() * pixels;
        let r0 = bi * rows;
        let rows = rows.min(m - r0);
        with_scratch(rows * cols, |out| {
            let image_rows = |n: usize, r: usize| n * ops.dst_size + (r0 + r) * pixels;
            if accumulate {
                for r in 0..rows {
                    for (j, &n) in group.iter().enumerate() {
                        // SAFETY: this task alone touches rows r0.. of the group's images.
                        let d = unsafe {
                            std::slice::from_raw_parts(ops.dst.at(image_rows(n, r)), pixels)
                        };
                        out[r * cols + j * pixels..][..pixels].copy_from_slice(d);
                    }
                }
            }
            // SAFETY: out is this task's scratch; the group's block lies inside `packed`.
            unsafe {
                matmul(
                    (rows, cols, k),
                    Mat::rows(out.as_mut_ptr(), cols),
                    accumulate,
                    lhs(r0),
                    Mat::rows(packed[starts[gi]..].as_ptr(), cols),
                    par,
                );
            }
            for (j, &n) in group.iter().enumerate() {
                for r in 0..rows {
                    // SAFETY: as above.
                    let d = unsafe {
                        std::slice::from_raw_parts_mut(ops.dst.at(image_rows(n, r)), pixels)
                    };
                    d.copy_from_slice(&out[r * cols + j * pixels..][..pixels]);
                }
                finish(n, r0, rows);
            }
        });
    });
}
