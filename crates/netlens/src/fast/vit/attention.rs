//! Multi-head self-attention on packed `[Q | K | V]` rows, forward and backward-to-input,
//! one task per (image, head), tasks shared out over the threads: the scores `Q Kᵀ / √d` and
//! the context `P V` (forward), and `dP = dC Vᵀ`, `dV = Pᵀ dC`, `dQ = dS K`, `dK = dSᵀ Q`
//! (backward) are `gemm` products that read the heads in place by strides (no transposes,
//! no per-head copies); the softmax and its backward run on each score row in between.
//!
//! The queries may be the first few tokens of each image only ([`Heads::queries`]): the
//! last encoder block's output is read only at the class token, so there every key and value
//! is needed but one query.

use super::ops::{SoftmaxBackRows, SoftmaxRows};
use super::products::{matmul, View};
use crate::fast::kernels::{dispatch, with_scratch, SendPtr};
use gemm::Parallelism;
use rayon::prelude::*;

/// Shape of one attention layer's batch.
#[derive(Debug, Clone, Copy)]
pub(super) struct Heads {
    pub images: usize,
    pub tokens: usize,
    /// Query rows per image, from its first token on (`tokens` for every token).
    pub queries: usize,
    pub heads: usize,
    /// Width of one head.
    pub dim: usize,
}

impl Heads {
    fn width(&self) -> usize {
        self.heads * self.dim
    }

    fn scale(&self) -> f32 {
        1.0 / (self.dim as f32).sqrt()
    }

    /// Offset of head `h`'s part `part` (0 Q, 1 K, 2 V) in image `b`'s first packed row.
    fn at(&self, b: usize, h: usize, part: usize) -> usize {
        let c = self.width();
        b * self.tokens * 3 * c + part * c + h * self.dim
    }
}

/// Attention probabilities `probs` `[images, heads, Q, T]` and the context `ctx`
/// `[images · Q, heads · dim]` (heads side by side, as `out_proj` reads it) of `qkv`
/// `[images · T, 3 · heads · dim]`, for the first `Q` = [`Heads::queries`] tokens of each
/// image (their Q rows are all this reads of the queries).
pub(super) fn forward(s: &Heads, qkv: &[f32], probs: &mut [f32], ctx: &mut [f32]) {
    let (t, q_n, d, c) = (s.tokens, s.queries, s.dim, s.width());
    assert!(
        q_n <= t
            && qkv.len() >= s.images * t * 3 * c
            && probs.len() >= s.images * s.heads * q_n * t
            && ctx.len() >= s.images * q_n * c
    );
    let ctx = SendPtr(ctx.as_mut_ptr());
    let packed = |off: usize| View {
        ptr: qkv[off..].as_ptr(),
        rs: 3 * c as isize,
        cs: 1,
    };
    probs[..s.images * s.heads * q_n * t]
        .par_chunks_mut((q_n * t).max(1))
        .enumerate()
        .for_each(|(i, p)| {
            let (b, h) = (i / s.heads, i % s.heads);
            let (q, k, v) = (
                packed(s.at(b, h, 0)),
                packed(s.at(b, h, 1)),
                packed(s.at(b, h, 2)),
            );
            let kt = View {
                ptr: k.ptr,
                rs: 1,
                cs: k.rs,
            };
            // SAFETY: the views lie inside `qkv` (asserted sizes); this task alone writes its
            // probability plane and its head's columns of the context rows of image `b`.
            unsafe {
                matmul(
                    (q_n, t, d),
                    p.as_mut_ptr(),
                    t,
                    false,
                    q,
                    kt,
                    s.scale(),
                    Parallelism::None,
                );
                dispatch(SoftmaxRows { s: p, width: t });
                let dst = ctx.at(b * q_n * c + h * d);
                matmul(
                    (q_n, d, t),
                    dst,
                    c,
                    false,
                    View::rows(p, t),
                    v,
                    1.0,
                    Parallelism::None,
                );
            }
        });
}

/// Gradient `dqkv` `[images · T, 3 · heads · dim]` from the context's `dctx`
/// `[images · Q, heads · dim]`, with the forward's `qkv` and `probs`: every K and V row and
/// the first `Q` Q rows of each image are overwritten; the Q rows after them, whose
/// gradient is zero, are left as they were.
pub(super) fn backward(s: &Heads, qkv: &[f32], probs: &[f32], dctx: &[f32], dqkv: &mut [f32]) {
    let (t, q_n, d, c) = (s.tokens, s.queries, s.dim, s.width());
    assert!(
        q_n <= t
            && qkv.len() >= s.images * t * 3 * c
            && dqkv.len() >= s.images * t * 3 * c
            && probs.len() >= s.images * s.heads * q_n * t
            && dctx.len() >= s.images * q_n * c
    );
    let out = SendPtr(dqkv.as_mut_ptr());
    let packed = |off: usize| View {
        ptr: qkv[off..].as_ptr(),
        rs: 3 * c as isize,
        cs: 1,
    };
    (0..s.images * s.heads).into_par_iter().for_each(|i| {
        let (b, h) = (i / s.heads, i % s.heads);
        let p = &probs[i * q_n * t..][..q_n * t];
        let (q, k, v) = (
            packed(s.at(b, h, 0)),
            packed(s.at(b, h, 1)),
            packed(s.at(b, h, 2)),
        );
        let dc = View {
            ptr: dctx[b * q_n * c + h * d..].as_ptr(),
            rs: c as isize,
            cs: 1,
        };
        let tr = |m: View| View {
            ptr: m.ptr,
            rs: m.cs,
            cs: m.rs,
        };
        let none = Parallelism::None;
        with_scratch(q_n * t, |dp| {
            // SAFETY: every view lies inside its buffer (asserted sizes); this task alone
            // writes `dp` and its head's Q, K and V columns of image `b`'s gradient rows.
            unsafe {
                let dpp = dp.as_mut_ptr();
                matmul((q_n, t, d), dpp, t, false, dc, tr(v), 1.0, none);
                let pt = View::cols(p, t);
                matmul(
                    (t, d, q_n),
                    out.at(s.at(b, h, 2)),
                    3 * c,
                    false,
                    pt,
                    dc,
                    1.0,
                    none,
                );
                dispatch(SoftmaxBackRows {
                    p,
                    dp: &mut *dp,
                    width: t,
                    scale: s.scale(),
                });
                let (ds, dst) = (View::rows(dp, t), View::cols(dp, t));
                matmul(
                    (q_n, d, t),
                    out.at(s.at(b, h, 0)),
                    3 * c,
                    false,
                    ds,
                    k,
                    1.0,
                    none,
                );
                matmul(
                    (t, d, q_n),
                    out.at(s.at(b, h, 1)),
                    3 * c,
                    false,
                    dst,
                    q,
                    1.0,
                    none,
                );
            }
        });
    });
}
