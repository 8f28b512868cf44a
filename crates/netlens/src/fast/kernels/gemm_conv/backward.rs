//! Backward-data of the `gemm` convolutions: a strided or padded layer as
//! `col2im(Wᵀ · dy)` image by image, a 1×1 layer as the transposed product tiled like the
//! forward pass, both from a row-major `Wᵀ` copy where the layer keeps one
//! ([`Transposed`]), and both able to multiply the gradient they write by the input's
//! activation mask in the same pass.

use super::{epilogue_rows, inner_parallelism, matmul, tap_columns, ConvGeom, Mat, SendPtr, Split};
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
        // SAFETY: task t writes only rows r0..r0+rows, columns p0..p0+len of image n.
        unsafe {
            matmul(
                (rows, len, cout),
                Mat::rows(dxp.at(n * cin * pixels + r0 * pixels + p0), pixels),
                accumulate,
                weight_tr.rows_from(r0, cin, cout),
                Mat::rows(dy[n * cout * pixels + p0..].as_ptr(), pixels),
                par,
            );
        }
        if let Some(k) = keep {
            let base = n * cin * pixels + r0 * pixels + p0;
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

/// Adds the rows of `cols` (`kdim × len`, the gradient of an im2col block of output
/// pixels `p0 .. p0 + len`) that belong to input channel `ci` back onto that channel's plane
/// of the image gradient, output row by output row (no division per value).
fn col2im_plane(plane: &mut [f32], ci: usize, g: &ConvGeom, p0: usize, len: usize, cols: &[f32]) {
    let (k, s) = (g.k, g.stride);
    for ky in 0..k {
        for kx in 0..k {
            let row = &cols[((ci * k + ky) * k + kx) * len..][..len];
            let (lo, hi) = tap_columns(g, kx);
            let (mut oy, mut ox0) = (p0 / g.ow, p0 % g.ow);
            let mut j = 0;
            while j < len {
                let run = (g.ow - ox0).min(len - j);
                let iy = (oy * s + ky) as isize - g.pt as isize;
                let (a, b) = (lo.clamp(ox0, ox0 + run), hi.clamp(ox0, ox0 + run));
                if iy >= 0 && (iy as usize) < g.h && a < b {
                    let dst = &mut plane[iy as usize * g.w..][..g.w];
                    let src = &row[j + a - ox0..j + b - ox0];
                    let x0 = a * s + kx - g.pl;
                    if s == 1 {
                        for (d, &v) in dst[x0..x0 + src.len()].iter_mut().zip(src) {
                            *d += v;
                        }
                    } else {
                        for (d, &v) in dst[x0..].iter_mut().step_by(s).zip(src) {
                            *d += v;
                        }
                    }
                }
                j += run;
                oy += 1;
                ox0 = 0;
            }
        }
    }
}
