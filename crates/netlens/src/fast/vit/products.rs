//! The ViT fast path's matrix products: strided views, the `gemm` crate in fixed column
//! blocks (one thread each, so the bytes do not depend on the thread count), and the dense
//! layer with its `Wᵀ` copy for the backward product, over all its output columns or a part
//! of them (the last block's keys and values, its class tokens' queries).

use gemm::Parallelism;
use rayon::prelude::*;
use std::ops::Range;

/// A strided read-only matrix view: first element, row stride, column stride (elements).
#[derive(Clone, Copy)]
pub(super) struct View {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

// SAFETY: a view only reads; the functions taking one require its buffer to be live and
// unwritten for the whole call, whichever thread reads it.
unsafe impl Send for View {}
unsafe impl Sync for View {}

impl View {
    /// A row-major matrix whose rows are `rs` apart.
    pub(super) fn rows(s: &[f32], rs: usize) -> Self {
        Self {
            ptr: s.as_ptr(),
            rs: rs as isize,
            cs: 1,
        }
    }

    /// The same matrix from column `c0` on.
    fn skip_cols(self, c0: usize) -> Self {
        Self {
            ptr: self.ptr.wrapping_offset(c0 as isize * self.cs),
            ..self
        }
    }

    /// The same matrix from row `r0` on.
    fn skip_rows(self, r0: usize) -> Self {
        Self {
            ptr: self.ptr.wrapping_offset(r0 as isize * self.rs),
            ..self
        }
    }

    /// The transpose of a row-major matrix whose rows are `rs` apart.
    pub(super) fn cols(s: &[f32], rs: usize) -> Self {
        Self {
            ptr: s.as_ptr(),
            rs: 1,
            cs: rs as isize,
        }
    }
}

/// `dst[m×n] = (dst if accumulate) + scale · lhs[m×k] · rhs[k×n]`, `dst` row-major with
/// rows `dst_rs` apart.
///
/// # Safety
/// Every view must lie inside a live buffer for the shape given, and `dst` must not overlap
/// the inputs nor be written by another task at the same time.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: View,
    rhs: View,
    scale: f32,
    par: Parallelism,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        lhs.ptr,
        lhs.cs,
        lhs.rs,
        rhs.ptr,
        rhs.cs,
        rhs.rs,
        1.0,
        scale,
        false,
        false,
        false,
        par,
    )
}

/// Column blocks a dense layer's product is split into: a fixed number (never the thread
/// count, so that the bytes do not depend on it: the gemm crate's blocking follows the
/// shape it is given), each block a product of its own on one thread, with threads inside
/// it only where there are more threads than blocks. Measured on 2 threads for ViT-B/16's
/// products (GFLOP/s, the gemm crate sharing one product among both threads → four blocks):
/// at 197 rows qkv 277 → 291, out 248 → 289, fc2 249 → 299, their backward products
/// 242–249 → 299–301; at 1576 rows 317 → 320–341.
const COLUMN_BLOCKS: usize = 4;

/// `dst[m×n] (+)= lhs[m×k] · rhs[k×n]` in [`COLUMN_BLOCKS`] column blocks (multiples of 16
/// columns) shared out among the threads; `dst` row-major with rows `dst_rs` apart.
///
/// # Safety
/// As for [`matmul`].
unsafe fn blocked_matmul(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    accumulate: bool,
    lhs: View,
    rhs: View,
) {
    let width = n.div_ceil(COLUMN_BLOCKS).next_multiple_of(16);
    let blocks = n.div_ceil(width.max(1));
    let inner = match rayon::current_num_threads() / blocks.max(1) {
        0 | 1 => Parallelism::None,
        t => Parallelism::Rayon(t),
    };
    let dst = dst as usize;
    (0..blocks).into_par_iter().for_each(|b| {
        let (c0, cols) = (b * width, width.min(n - b * width));
        let rhs = rhs.skip_cols(c0);
        // SAFETY: block b writes only columns c0..c0+cols of dst; the caller vouches for
        // the views.
        unsafe {
            matmul(
                (m, cols, k),
                (dst as *mut f32).add(c0),
                dst_rs,
                accumulate,
                lhs,
                rhs,
                1.0,
                inner,
            )
        }
    });
}

/// A dense layer `y = x W + b` with `W` stored `[inputs, outputs]` row-major (PyTorch's
/// weight transposed), as the token-wise linear layers and the patch projection use it, and
/// again as `Wᵀ` (`[outputs, inputs]`, PyTorch's layout) for the backward product where that
/// pays: at batch 1 (197 rows) the gemm crate runs `dy Wᵀ` 1.5–1.9× faster from that
/// row-major copy than from `W` read transposed for ViT-B/16's qkv, out and fc1 products
/// (2 threads; ≈ 1.1× at 1576 rows), but only 1.08× for fc2 (3072 → 768), which keeps
/// reading `W` (its copy would cost 113 MB). The copies cost ViT-B/16 227 MB.
#[derive(Debug, Clone)]
pub struct Dense {
    pub w: Vec<f32>,
    /// `Wᵀ`, `[outputs, inputs]` row-major; empty for a layer with more inputs than outputs.
    pub wt: Vec<f32>,
    pub bias: Vec<f32>,
    pub inputs: usize,
    pub outputs: usize,
}

impl Dense {
    /// The layer of `w` (`[inputs, outputs]` row-major) and `bias`, with its `Wᵀ` copy.
    pub fn new(w: Vec<f32>, bias: Vec<f32>, inputs: usize, outputs: usize) -> Self {
        let wt = if inputs <= outputs {
            crate::fast::kernels::transpose(&w, inputs, outputs)
        } else {
            Vec::new()
        };
        Self {
            w,
            wt,
            bias,
            inputs,
            outputs,
        }
    }

    /// `y (+)= x W` for `rows` rows (the bias is added by the caller's next row pass).
    pub(super) fn forward(&self, x: &[f32], rows: usize, y: &mut [f32], accumulate: bool) {
        let (k, n) = (self.inputs, self.outputs);
        self.forward_part(x, k, rows, 0..n, y, n, accumulate)
    }

    /// `y (+)= x W[:, cols]`: the output columns `cols` of `rows` rows of `x`, whose rows
    /// are `x_rs` apart, into `y`, whose rows are `y_rs` apart (`y` starts at the first
    /// column written).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward_part(
        &self,
        x: &[f32],
        x_rs: usize,
        rows: usize,
        cols: Range<usize>,
        y: &mut [f32],
        y_rs: usize,
        accumulate: bool,
    ) {
        let (k, n) = (self.inputs, self.outputs);
        if rows == 0 || cols.is_empty() {
            return;
        }
        assert!(
            x_rs >= k
                && y_rs >= cols.len()
                && cols.end <= n
                && x.len() >= (rows - 1) * x_rs + k
                && y.len() >= (rows - 1) * y_rs + cols.len()
                && self.w.len() >= k * n
        );
        // SAFETY: the sizes were just checked; `y` is borrowed mutably, so it is not an input.
        unsafe {
            blocked_matmul(
                (rows, cols.len(), k),
                y.as_mut_ptr(),
                y_rs,
                accumulate,
                View::rows(x, x_rs),
                View::rows(&self.w, n).skip_cols(cols.start),
            )
        }
    }

    /// Backward-data: `dx (+)= dy Wᵀ`.
    pub(super) fn backward(&self, dy: &[f32], rows: usize, dx: &mut [f32], accumulate: bool) {
        let (k, n) = (self.inputs, self.outputs);
        self.backward_part(dy, n, rows, 0..n, dx, k, accumulate)
    }

    /// Backward-data of the output columns `cols` alone: `dx (+)= dy W[:, cols]ᵀ` for
    /// `rows` rows, `dy` (starting at its first column of `cols`) with rows `dy_rs` apart,
    /// `dx` with rows `dx_rs` apart.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn backward_part(
        &self,
        dy: &[f32],
        dy_rs: usize,
        rows: usize,
        cols: Range<usize>,
        dx: &mut [f32],
        dx_rs: usize,
        accumulate: bool,
    ) {
        let (k, n) = (self.inputs, self.outputs);
        if rows == 0 || k == 0 {
            return;
        }
        assert!(
            dy_rs >= cols.len()
                && dx_rs >= k
                && cols.end <= n
                && dy.len() >= (rows - 1) * dy_rs + cols.len()
                && dx.len() >= (rows - 1) * dx_rs + k
                && self.w.len() >= k * n
        );
        // Rows `cols` of `Wᵀ`: from the row-major copy where there is one, else `W` read
        // transposed.
        let wt = if self.wt.is_empty() {
            View::cols(&self.w, n).skip_rows(cols.start)
        } else {
            assert!(self.wt.len() >= k * n);
            View::rows(&self.wt, k).skip_rows(cols.start)
        };
        // SAFETY: as in `forward_part`.
        unsafe {
            blocked_matmul(
                (rows, k, cols.len()),
                dx.as_mut_ptr(),
                dx_rs,
                accumulate,
                View::rows(dy, dy_rs),
                wt,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dense layer's products, in fixed column blocks, give the same bytes on 1, 2, 3 and
    /// 9 threads (9: threads inside each block), forward and backward (with and without
    /// the `Wᵀ` copy), and match a float64 product.
    #[test]
    fn dense_products_same_bytes_for_any_threads() {
        let rnd = |n: usize, seed: u64| crate::fast::kernels::testing::random(n, seed);
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        // (rows, inputs, outputs): wider out (a Wᵀ copy), narrower out (none), odd widths.
        for &(rows, k, n) in &[(197, 96, 200), (37, 300, 72), (5, 33, 17)] {
            let layer = Dense::new(rnd(k * n, 1), vec![0.0; n], k, n);
            assert_eq!(layer.wt.is_empty(), k > n);
            let (x, dy) = (rnd(rows * k, 2), rnd(rows * n, 3));
            let run = |threads: usize| {
                crate::fast::kernels::testing::on_threads(threads, || {
                    let (mut y, mut dx) = (vec![0.0; rows * n], vec![0.0; rows * k]);
                    layer.forward(&x, rows, &mut y, false);
                    layer.backward(&dy, rows, &mut dx, false);
                    (bits(&y), bits(&dx))
                })
            };
            let one = run(1);
            for t in [2, 3, 9] {
                assert!(run(t) == one, "{rows}×{k}→{n}: {t} threads differ");
            }
            // y = x W against float64 (k terms of size ~1: 1e-5 relative to the row's scale).
            let y: Vec<f32> = one.0.iter().map(|&b| f32::from_bits(b)).collect();
            for r in [0, rows / 2, rows - 1] {
                for c in [0, n / 2, n - 1] {
                    let want: f64 = (0..k)
                        .map(|i| x[r * k + i] as f64 * layer.w[i * n + c] as f64)
                        .sum();
                    assert!((y[r * n + c] as f64 - want).abs() <= 1e-5 * k as f64);
                }
            }
        }
    }

    /// A part of the columns, over rows a stride apart, gives the columns of the whole
    /// product for those rows, forward and backward (with and without the `Wᵀ` copy); the
    /// blocks differ, so to float32 rounding (1e-5 relative to the row's scale).
    #[test]
    fn column_parts_match_the_whole_product() {
        let rnd = |n: usize, seed: u64| crate::fast::kernels::testing::random(n, seed);
        for &(rows, k, n) in &[(17, 42, 126), (9, 100, 42)] {
            let layer = Dense::new(rnd(k * n, 4), vec![0.0; n], k, n);
            let (x, dy) = (rnd(rows * k, 5), rnd(rows * n, 6));
            let (mut y, mut dx) = (vec![0.0; rows * n], vec![0.0; rows * k]);
            layer.forward(&x, rows, &mut y, false);
            // Columns c0.. of every row; then columns ..c0 of every `every`-th row.
            let (c0, every) = (n / 3, 4);
            let picked = rows.div_ceil(every);
            let mut part = vec![0.0; rows * n];
            layer.forward_part(&x, k, rows, c0..n, &mut part[c0..], n, false);
            layer.forward_part(&x, every * k, picked, 0..c0, &mut part, every * n, false);
            let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * (k as f32).sqrt();
            for r in 0..rows {
                for c in 0..n {
                    if c >= c0 || r % every == 0 {
                        assert!(close(part[r * n + c], y[r * n + c]), "forward {r},{c}");
                    }
                }
            }
            // dx = dy[:, c0..] W[:, c0..]ᵀ + dy[:, ..c0] W[:, ..c0]ᵀ = dy Wᵀ.
            layer.backward(&dy, rows, &mut dx, false);
            let mut back = vec![0.0; rows * k];
            layer.backward_part(&dy[c0..], n, rows, c0..n, &mut back, k, false);
            layer.backward_part(&dy, n, rows, 0..c0, &mut back, k, true);
            for (i, (&a, &b)) in back.iter().zip(&dx).enumerate() {
                assert!(close(a, b), "backward {i}: {a} vs {b}");
            }
        }
    }
}
