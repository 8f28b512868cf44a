//! Backward-data of the `gemm` convolutions: a strided or padded layer as
//! `col2im(Wᵀ · dy)` image by image, a 1×1 layer as the transposed product tiled like the
//! forward pass, both from a row-major `Wᵀ` copy where the layer keeps one
//! ([`Transposed`]), and both able to multiply the gradient they write by the input's
//! activation mask in the same pass.

use super::{
    columns::col2im_plane, epilogue_rows, grouped, inner_parallelism, matmul, ConvGeom, Mat,
    SendPtr, Split,
};
use crate::fast::kernels::{mask_slice, with_scratch2};
use gemm::Parallelism;
use rayon::prelude::*;

/// `Wᵀ` of a `[cout, kdim]` kernel, as the backward products read it.
#[derive(Debug, Clone, Copy)]
pub enum Transposed<'a> {
    /// A row-major `[kdim, cout]` copy (the fast one: see `Node::Conv::weight_tr`).
    Copy(&'a [f32]),
    /// The kernel itself, `[cout, kdim]`, read transposed.
    Strided(&'a [f32]),
}

impl Transposed<'_> {
    /// Rows `r0..` of `Wᵀ` (`kdim × cout`) as a matrix.
    ///
    /// # Panics
    /// If the buffer does not hold `kdim · cout` floats.
    fn rows_from(self, r0: usize, kdim: usize, cout: usize) -> Mat<*const f32> {
        match self {
            Transposed::Copy(w) => {
                assert_eq!(w.len(), kdim * cout, "Wᵀ of the wrong size");
                Mat::rows(w[r0 * cout..].as_ptr(), cout)
            }
            Transposed::Strided(w) => {
                assert_eq!(w.len(), kdim * cout, "W of the wrong size");
                Mat {
                    ptr: w[r0..].as_ptr(),
                    rs: 1,
                    cs: kdim as isize,
                }
            }
        }
    }
}

/// Backward-data of a strided dense convolution: `dx (+)= col2im(Wᵀ · dy)`, image by image,
/// then `dx *= keep` plane by plane when given (the input's activation mask; only without
/// `accumulate`, see [`conv_forward_keep`](super::conv_forward_keep)).
pub fn conv_backward_col2im(
    dy: &[f32],
    dx: &mut [f32],
    images: usize,
    g: &ConvGeom,
    weight_tr: Transposed,
    accumulate: bool,
    keep: Option<&[u8]>,
) {
    assert!(keep.is_none_or(|k| !accumulate && k.len() >= images * g.cin * g.h * g.w));
    let (in_sz, out_sz) = (g.cin * g.h * g.w, g.cout * g.oh * g.ow);
    let pixels = g.oh * g.ow;
    let kdim = g.kdim();
    let par = inner_parallelism(images);
    dx[..images * in_sz]
        .par_chunks_mut(in_sz)
        .enumerate()
        .for_each(|(n, dxi)| {
            if !accumulate {
                dxi.fill(0.0);
            }
            let dyi = &dy[n * out_sz..(n + 1) * out_sz];
            with_scratch2(kdim * pixels, |cols| {
                // SAFETY: cols is this task's scratch; wt is Wᵀ, [kdim, cout] (checked).
                unsafe {
                    matmul(
                        (kdim, pixels, g.cout),
                        Mat::rows(cols.as_mut_ptr(), pixels),
                        false,
                        weight_tr.rows_from(0, kdim, g.cout),
                        Mat::rows(dyi.as_ptr(), pixels),
                        par,
                    );
                }
                // One task per input channel when the images alone leave threads idle.
                let plane = g.h * g.w;
                let one = |ci: usize, p: &mut [f32]| {
                    col2im_plane(p, ci, g, 0, pixels, cols);
                    if let Some(k) = keep {
                        mask_slice(p, &k[n * in_sz + ci * plane..][..plane]);
                    }
                };
                if matches!(par, Parallelism::None) {
                    for (ci, p) in dxi.chunks_mut(plane).enumerate() {
                        one(ci, p);
                    }
                } else {
                    dxi.par_chunks_mut(plane)
                        .enumerate()
                        .for_each(|(ci, p)| one(ci, p));
                }
            });
        });
}

/// Backward-data of a 1×1 convolution (`g` has `k = 1`, stride 1, no padding) or of a dense
/// layer over pixels: `dx[ci, p] (+)= Σ_co W[co, ci] · dy[co, p]`, tiled like the forward
/// pass, then `dx *= keep` over each cache-hot tile when given (the input's activation
/// mask; only without `accumulate`, see [`conv_forward_keep`](super::conv_forward_keep)).
///
/// An image whose output gradient is zero on all but a few channels ([`SPARSE_SHARE`]) sums
/// over those channels only ([`sparse_image`]): SqueezeNet's classifier is a 1×1
/// convolution to 1000 channels averaged into the logits, so a class score's gradient
/// reaches one channel of it, and the full product (0.6 ms of its 12 ms pass at batch 1)
/// added 999 rows of zeros. Decided per image from that image's gradient alone, so an
/// image gives the same bytes in any batch.
pub fn pointwise_backward(
    dy: &[f32],
    dx: &mut [f32],
    images: usize,
    g: &ConvGeom,
    weight_tr: Transposed,
    accumulate: bool,
    keep: Option<&[u8]>,
) {
    let (cin, cout, pixels) = (g.cin, g.cout, g.oh * g.ow);
    debug_assert!(g.pointwise());
    assert!(keep.is_none_or(|k| !accumulate && k.len() >= images * cin * pixels));
    let live: Vec<Option<Vec<usize>>> = (0..images)
        .into_par_iter()
        .map(|n| {
            live_channels(
                &dy[n * cout * pixels..(n + 1) * cout * pixels],
                cout,
                pixels,
            )
        })
        .collect();
    let dense: Vec<usize> = (0..images).filter(|&n| live[n].is_none()).collect();
    if grouped::grouped_ok(pixels, dense.len()) {
        let dxp = SendPtr(dx.as_mut_ptr());
        let ops = grouped::Operands {
            src: dy,
            src_size: cout * pixels,
            dst: dxp,
            dst_size: cin * pixels,
        };
        // SAFETY: dx holds every image's gradient, written here alone (the sparse images
        // after the dense ones); Wᵀ's size is checked by `rows_from`.
        unsafe {
            grouped::grouped_product(
                &dense,
                (cin, cout, pixels),
                &ops,
                accumulate,
                |r0| weight_tr.rows_from(r0, cin, cout),
                |n, r0, rows| {
                    if let Some(k) = keep {
                        let off = n * cin * pixels + r0 * pixels;
                        let d = std::slice::from_raw_parts_mut(dxp.at(off), rows * pixels);
                        mask_slice(d, &k[off..off + rows * pixels]);
                    }
                },
            );
        }
        let sparse: Vec<(usize, &Vec<usize>)> = live
            .iter()
            .enumerate()
            .filter_map(|(n, l)| l.as_ref().map(|l| (n, l)))
            .collect();
        sparse.into_par_iter().for_each(|(n, channels)| {
            // SAFETY: only this task writes image n (a sparse one, not in the groups).
            let dxi =
                unsafe { std::slice::from_raw_parts_mut(dxp.at(n * cin * pixels), cin * pixels) };
            let dyi = &dy[n * cout * pixels..(n + 1) * cout * pixels];
            let ki = keep.map(|k| &k[n * cin * pixels..(n + 1) * cin * pixels]);
            sparse_image(dyi, dxi, g, weight_tr, channels, accumulate, ki);
        });
        return;
    }
    let split = if Split::whole_ok(pixels, cout, cin, true) {
        Split::whole(pixels, cin)
    } else {
        Split::new(pixels, cout, cin, true)
    };
    let tasks = split.tasks(images);
    let par = inner_parallelism(tasks);
    let dxp = SendPtr(dx.as_mut_ptr());
    (0..tasks).into_par_iter().for_each(|t| {
        let (n, p0, len, r0, rows) = split.task(t, pixels, cin);
        let base = n * cin * pixels + r0 * pixels + p0;
        if let Some(channels) = &live[n] {
            // The image's first task does all of it.
            if (p0, r0) == (0, 0) {
                // SAFETY: only this task writes image n.
                let dxi = unsafe {
                    std::slice::from_raw_parts_mut(dxp.at(n * cin * pixels), cin * pixels)
                };
                let dyi = &dy[n * cout * pixels..(n + 1) * cout * pixels];
                let ki = keep.map(|k| &k[n * cin * pixels..(n + 1) * cin * pixels]);
                sparse_image(dyi, dxi, g, weight_tr, channels, accumulate, ki);
            }
            return;
        }
        // SAFETY: task t writes only rows r0..r0+rows, columns p0..p0+len of image n.
        unsafe {
            matmul(
                (rows, len, cout),
                Mat::rows(dxp.at(base), pixels),
                accumulate,
                weight_tr.rows_from(r0, cin, cout),
                Mat::rows(dy[n * cout * pixels + p0..].as_ptr(), pixels),
                par,
            );
        }
        if let Some(k) = keep {
            let block = epilogue_rows(rows, par);
            (0..rows.div_ceil(block)).into_par_iter().for_each(|b| {
                for r in b * block..(b * block + block).min(rows) {
                    let off = base + r * pixels;
                    // SAFETY: this task owns rows r0..r0+rows, columns p0..p0+len of image n.
                    let row = unsafe { std::slice::from_raw_parts_mut(dxp.at(off), len) };
                    mask_slice(row, &k[off..off + len]);
                }
            });
        }
    });
}

/// An image's output gradient counts as sparse when at most this share of its channels
/// hold a nonzero value.
const SPARSE_SHARE: usize = 8;

/// The output channels of one image's gradient `dy` (`[cout, pixels]`) holding a value
/// other than ±0 (a NaN counts), if they are at most `cout / SPARSE_SHARE`.
pub(super) fn live_channels(dy: &[f32], cout: usize, pixels: usize) -> Option<Vec<usize>> {
    let most = cout / SPARSE_SHARE;
    let mut live = Vec::new();
    for (co, row) in dy.chunks_exact(pixels.max(1)).take(cout).enumerate() {
        if row.iter().any(|&v| v != 0.0) {
            if live.len() == most {
                return None;
            }
            live.push(co);
        }
    }
    Some(live)
}

/// One image of [`pointwise_backward`] summing over its `live` output channels only: the
/// terms left out are `W · (±0)`, so the result differs from the full sum at most by a
/// zero's sign (or where `W` holds an infinity or NaN, which the full sum would spread).
fn sparse_image(
    dy: &[f32],
    dx: &mut [f32],
    g: &ConvGeom,
    weight_tr: Transposed,
    live: &[usize],
    accumulate: bool,
    keep: Option<&[u8]>,
) {
    let (cin, cout, pixels) = (g.cin, g.cout, g.oh * g.ow);
    if live.is_empty() {
        if !accumulate {
            dx.fill(0.0);
        }
    } else {
        let k = live.len();
        // Wᵀ's live columns `[cin, k]` and dy's live rows `[k, pixels]`, compact.
        let mut w = vec![0.0f32; cin * k];
        for (ci, row) in w.chunks_exact_mut(k).enumerate() {
            for (v, &co) in row.iter_mut().zip(live) {
                *v = match weight_tr {
                    Transposed::Copy(wt) => wt[ci * cout + co],
                    Transposed::Strided(wt) => wt[co * cin + ci],
                };
            }
        }
        let mut d = vec![0.0f32; k * pixels];
        for (row, &co) in d.chunks_exact_mut(pixels).zip(live) {
            row.copy_from_slice(&dy[co * pixels..(co + 1) * pixels]);
        }
        // SAFETY: the three buffers are live, of the sizes given, and distinct.
        unsafe {
            matmul(
                (cin, pixels, k),
                Mat::rows(dx.as_mut_ptr(), pixels),
                accumulate,
                Mat::rows(w.as_ptr(), k),
                Mat::rows(d.as_ptr(), pixels),
                Parallelism::None,
            );
        }
    }
    if let Some(keep) = keep {
        mask_slice(dx, keep);
    }
}
