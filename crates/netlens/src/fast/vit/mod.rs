//! The Vision Transformer's fast path: forward and backward-to-input of torchvision's
//! `VisionTransformer` (the zoo's ViT-B/16, `models::vit`) over netlens's own kernels, run
//! as one burn autodiff operation (`engine::vit_forward`), as [`FastNet`](super::FastNet)
//! runs the CNNs.
//!
//! Almost all of a ViT's work is matrix products; they go to `gemm` with the weights read in
//! place: the patch projection as one product over the im2col rows (patches do not overlap,
//! so im2col is a permutation), each block's packed Q/K/V projection, the output projection
//! and the MLP's two layers as products over all tokens of the batch, the out-projection and
//! second MLP layer accumulating straight into the residual stream (the residual add costs
//! nothing). Attention runs one task per (image, head) on the threads, its scores, context
//! and gradients as strided products over the packed Q/K/V rows ([`attention`]). Between
//! them, one pass over each row: LayerNorm (saving `x̂` and `1/σ` per token), bias + exact
//! erf GELU (saving its derivative), softmax ([`ops`]).
//!
//! Only the class token of the last block's output reaches the logits, so the last block
//! computes every token's keys and values but its queries, attention, output projection and
//! MLP for the class tokens alone, and its backward likewise: of ViT-B/16's twelve blocks'
//! work, the last block's falls from 1.46 G multiply-adds per image to 0.24 G each way.
//!
//! Only input gradients are computed (weights are constants), so the backward pass needs per
//! block: both LayerNorms' `x̂` and `1/σ`, the Q/K/V rows, the attention probabilities and the
//! GELU derivative — what [`VitSaved`] holds (ViT-B/16: about 58 MB per block at batch 8).
//! Buffers come from a pool owned by the network and go back to it when a pass ends, so
//! repeated passes at one batch size allocate nothing.

mod attention;
mod ops;
mod products;
mod stages;

pub use ops::Norm;
pub use products::Dense;

use crate::error::{Error, Result};
use crate::fast::kernels::{dense_backward, dense_forward, DenseLayer};
use crate::fast::warm::on_warm_pool;
use crate::models::vit::Config;
use attention::Heads;
use rayon::prelude::*;
use stages::{product, timed, Stage};
use std::sync::{Arc, Mutex};

/// One pre-norm encoder block's weights.
#[derive(Debug, Clone)]
pub struct Block {
    pub ln_1: Norm,
    /// `[hidden, 3 · hidden]`: Q, K, V side by side.
    pub qkv: Dense,
    pub out: Dense,
    pub ln_2: Norm,
    pub fc1: Dense,
    pub fc2: Dense,
}

/// Every weight of a ViT in the fast path's layout (linear weights `[inputs, outputs]`).
#[derive(Debug, Clone)]
pub struct Weights {
    /// `[3 · p · p, hidden]` (the patch convolution as a dense layer on im2col rows).
    pub patch: Dense,
    /// `[hidden]`.
    pub class_token: Vec<f32>,
    /// `[tokens, hidden]`.
    pub pos_embedding: Vec<f32>,
    pub blocks: Vec<Block>,
    pub ln: Norm,
    /// `[classes, hidden]` (PyTorch's layout: the head runs as `fast::kernels::dense`).
    pub head_weight: Vec<f32>,
    pub head_bias: Vec<f32>,
}

/// Free buffers, reused by the next pass.
#[derive(Default)]
struct Pool(Mutex<Vec<Vec<f32>>>);

impl Pool {
    /// A buffer of `len` values, contents arbitrary (every caller writes before reading).
    fn take(&self, len: usize) -> Vec<f32> {
        let mut free = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let best = (free.iter().enumerate())
            .filter(|(_, v)| v.capacity() >= len)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        let mut v = best.map(|i| free.swap_remove(i)).unwrap_or_default();
        drop(free);
        if v.len() >= len {
            v.truncate(len);
        } else {
            v.resize(len, 0.0);
        }
        v
    }

    fn give(&self, bufs: impl IntoIterator<Item = Vec<f32>>) {
        let mut free = self.0.lock().unwrap_or_else(|e| e.into_inner());
        free.extend(bufs.into_iter().filter(|v| v.capacity() > 0));
    }
}

/// What one block's backward pass reads.
struct BlockSaved {
    xhat1: Vec<f32>,
    rstd1: Vec<f32>,
    qkv: Vec<f32>,
    probs: Vec<f32>,
    xhat2: Vec<f32>,
    rstd2: Vec<f32>,
    gelu_deriv: Vec<f32>,
}

impl BlockSaved {
    fn take(pool: &Pool, cfg: &Config, images: usize) -> Self {
        let rows = images * cfg.tokens();
        let c = cfg.hidden;
        Self {
            xhat1: pool.take(rows * c),
            rstd1: pool.take(rows),
            qkv: pool.take(rows * 3 * c),
            probs: pool.take(images * cfg.heads * cfg.tokens() * cfg.tokens()),
            xhat2: pool.take(rows * c),
            rstd2: pool.take(rows),
            gelu_deriv: pool.take(rows * cfg.mlp),
        }
    }

    fn buffers(self) -> [Vec<f32>; 7] {
        [
            self.xhat1,
            self.rstd1,
            self.qkv,
            self.probs,
            self.xhat2,
            self.rstd2,
            self.gelu_deriv,
        ]
    }
}

/// What a forward pass saved for the backward pass (see the module docs); its buffers go
/// back to the network's pool when it is dropped.
pub struct VitSaved {
    images: usize,
    blocks: Vec<BlockSaved>,
    /// The final LayerNorm's `x̂` and `1/σ` for the class tokens.
    xhat: Vec<f32>,
    rstd: Vec<f32>,
    pool: Arc<Pool>,
    input_shape: [usize; 4],
}

impl VitSaved {
    /// Shape of the input batch the pass ran on.
    pub fn input_shape(&self) -> [usize; 4] {
        self.input_shape
    }
}

impl std::fmt::Debug for VitSaved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VitSaved({:?})", self.input_shape)
    }
}

impl Drop for VitSaved {
    fn drop(&mut self) {
        let mut bufs = vec![
            std::mem::take(&mut self.xhat),
            std::mem::take(&mut self.rstd),
        ];
        for b in self.blocks.drain(..) {
            bufs.extend(b.buffers());
        }
        self.pool.give(bufs);
    }
}

/// A Vision Transformer on the fast path.
pub struct VitNet {
    config: Config,
    w: Weights,
    pool: Arc<Pool>,
}

impl std::fmt::Debug for VitNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VitNet({:?})", self.config)
    }
}

impl VitNet {
    /// The network of `config` with weights `w` (their sizes must fit the configuration).
    pub fn new(config: Config, w: Weights) -> Result<Self> {
        let (c, t, m) = (config.hidden, config.tokens(), config.mlp);
        let k = 3 * config.patch_size * config.patch_size;
        let dense_ok = |d: &Dense, i: usize, o: usize| {
            d.inputs == i
                && d.outputs == o
                && d.w.len() == i * o
                && d.wt.len() == if i <= o { i * o } else { 0 }
                && d.bias.len() == o
        };
        let norm_ok = |n: &Norm| n.gamma.len() == c && n.beta.len() == c;
        let ok = dense_ok(&w.patch, k, c)
            && w.class_token.len() == c
            && w.pos_embedding.len() == t * c
            && w.blocks.len() == config.layers
            && w.blocks.iter().all(|b| {
                norm_ok(&b.ln_1)
                    && norm_ok(&b.ln_2)
                    && dense_ok(&b.qkv, c, 3 * c)
                    && dense_ok(&b.out, c, c)
                    && dense_ok(&b.fc1, c, m)
                    && dense_ok(&b.fc2, m, c)
            })
            && norm_ok(&w.ln)
            && w.head_weight.len() == c * config.num_classes
            && w.head_bias.len() == config.num_classes;
        if !ok || config.heads == 0 || c % config.heads != 0 {
            return Err(Error::Invalid(format!(
                "the ViT fast path got weights that do not fit {config:?}"
            )));
        }
        Ok(Self {
            config,
            w,
            pool: Arc::new(Pool::default()),
        })
    }

    /// Whether the network can run a batch of this shape (`[N ≥ 1, 3, S, S]`).
    pub fn check(&self, shape: [usize; 4]) -> Result<()> {
        let s = self.config.image_size;
        if shape[0] == 0 || shape[1] != 3 || shape[2] != s || shape[3] != s {
            return Err(Error::Invalid(format!(
                "the ViT needs [N, 3, {s}, {s}] input, got {shape:?}"
            )));
        }
        Ok(())
    }

    /// The attention shape of a batch of `images`, for the first `queries` tokens of each.
    fn heads(&self, images: usize, queries: usize) -> Heads {
        Heads {
            images,
            tokens: self.config.tokens(),
            queries,
            heads: self.config.heads,
            dim: self.config.hidden / self.config.heads,
        }
    }

    fn head(&self) -> DenseLayer<'_> {
        DenseLayer {
            weight: &self.w.head_weight,
            bias: &self.w.head_bias,
            inputs: self.config.hidden,
            outputs: self.config.num_classes,
        }
    }

    /// Logits `[N, classes]` of `x` `[N, 3, S, S]`, and what the backward pass needs if
    /// `save`. Runs on the thread pool with its threads kept awake (`fast/warm.rs`).
    pub fn forward(
        &self,
        x: &[f32],
        shape: [usize; 4],
        save: bool,
    ) -> Result<(Vec<f32>, Option<VitSaved>)> {
        on_warm_pool(|| self.forward_on_pool(x, shape, save))
    }

    fn forward_on_pool(
        &self,
        x: &[f32],
        shape: [usize; 4],
        save: bool,
    ) -> Result<(Vec<f32>, Option<VitSaved>)> {
        self.check(shape)?;
        let cfg = &self.config;
        let n = shape[0];
        if x.len() != shape.iter().product::<usize>() {
            return Err(Error::Invalid(format!(
                "the ViT got {} values for a {shape:?} batch",
                x.len()
            )));
        }
        let (t, c, rows) = (cfg.tokens(), cfg.hidden, n * cfg.tokens());
        let pool = &*self.pool;
        let embed_flops = product(n * cfg.grid() * cfg.grid(), 3 * cfg.patch_size.pow(2), c);
        let mut stream = timed(cfg, Stage::Embed, embed_flops, false, || self.embed(x, n));
        let mut h = pool.take(rows * c);
        let mut ctx = pool.take(rows * c);
        let mut u = pool.take(rows * cfg.mlp);
        let heads = self.heads(n, t);
        let mut saved = Vec::with_capacity(if save { cfg.layers } else { 0 });
        let mut scratch = (!save).then(|| BlockSaved::take(pool, cfg, n));
        // The last block runs on its own (`last_block_forward`): only its class tokens are read.
        let (body, last) = self.w.blocks.split_at(cfg.layers.saturating_sub(1));
        for b in body {
            let mut s = match scratch.take() {
                Some(s) => s,
                None => BlockSaved::take(pool, cfg, n),
            };
            timed(cfg, Stage::Norm, 0, false, || {
                ops::norm_forward(&b.ln_1, &stream, &mut h, &mut s.xhat1, &mut s.rstd1, rows)
            });
            timed(cfg, Stage::Qkv, product(rows, c, 3 * c), false, || {
                b.qkv.forward(&h, rows, &mut s.qkv, false)
            });
            timed(cfg, Stage::Bias, 0, false, || {
                ops::bias_act(&b.qkv.bias, &mut s.qkv, false, None, rows)
            });
            timed(cfg, Stage::Attention, 4 * rows * t * c, false, || {
                attention::forward(&heads, &s.qkv, &mut s.probs, &mut ctx)
            });
            timed(cfg, Stage::OutProj, product(rows, c, c), false, || {
                b.out.forward(&ctx, rows, &mut stream, true)
            });
            timed(cfg, Stage::Bias, 0, false, || {
                ops::bias_act(&b.out.bias, &mut stream, false, None, rows)
            });
            timed(cfg, Stage::Norm, 0, false, || {
                ops::norm_forward(&b.ln_2, &stream, &mut h, &mut s.xhat2, &mut s.rstd2, rows)
            });
            timed(cfg, Stage::Fc1, product(rows, c, cfg.mlp), false, || {
                b.fc1.forward(&h, rows, &mut u, false)
            });
            // The GELU's derivative only when a backward pass will read it.
            let deriv = save.then_some(&mut s.gelu_deriv[..]);
            timed(cfg, Stage::Gelu, 0, false, || {
                ops::bias_act(&b.fc1.bias, &mut u, true, deriv, rows)
            });
            timed(cfg, Stage::Fc2, product(rows, cfg.mlp, c), false, || {
                b.fc2.forward(&u, rows, &mut stream, true)
            });
            timed(cfg, Stage::Bias, 0, false, || {
                ops::bias_act(&b.fc2.bias, &mut stream, false, None, rows)
            });
            if save {
                saved.push(s);
            } else {
                scratch = Some(s);
            }
        }
        // The final LayerNorm and the head read the class token only.
        let mut cls = pool.take(n * c);
        for (i, row) in cls.chunks_exact_mut(c).enumerate() {
            row.copy_from_slice(&stream[i * t * c..][..c]);
        }
        if let Some(b) = last.first() {
            let mut s = match scratch.take() {
                Some(s) => s,
                None => BlockSaved::take(pool, cfg, n),
            };
            let bufs = (&mut h[..], &mut ctx[..], &mut u[..]);
            self.last_block_forward(b, &mut s, &stream, &mut cls, bufs, n, save);
            if save {
                saved.push(s);
            } else {
                scratch = Some(s);
            }
        }
        let (mut xhat, mut rstd) = (pool.take(n * c), pool.take(n));
        timed(cfg, Stage::Norm, 0, false, || {
            ops::norm_forward(&self.w.ln, &cls, &mut h, &mut xhat, &mut rstd, n)
        });
        let mut logits = vec![0.0; n * cfg.num_classes];
        let head_flops = product(n, c, cfg.num_classes);
        timed(cfg, Stage::Head, head_flops, false, || {
            dense_forward(&self.head(), &h, &mut logits, n)
        });
        pool.give([stream, h, ctx, u, cls]);
        if let Some(s) = scratch {
            pool.give(s.buffers());
        }
        let saved = if save {
            Some(VitSaved {
                images: n,
                blocks: saved,
                xhat,
                rstd,
                pool: self.pool.clone(),
                input_shape: shape,
            })
        } else {
            pool.give([xhat, rstd]);
            None
        };
        Ok((logits, saved))
    }

    /// The last encoder block, whose output only the class tokens `cls` (`[n, hidden]`, the
    /// stream's class-token rows on entry, the block's output on return) carry on: its first
    /// LayerNorm, keys and values run over every token of `stream`, its queries, attention,
    /// output projection and MLP over the class tokens alone. `h`, `ctx`, `u` are scratch of
    /// the full pass's sizes.
    #[allow(clippy::too_many_arguments)]
    fn last_block_forward(
        &self,
        b: &Block,
        s: &mut BlockSaved,
        stream: &[f32],
        cls: &mut [f32],
        (h, ctx, u): (&mut [f32], &mut [f32], &mut [f32]),
        n: usize,
        save: bool,
    ) {
        let cfg = &self.config;
        let (t, c, m) = (cfg.tokens(), cfg.hidden, cfg.mlp);
        let rows = n * t;
        timed(cfg, Stage::Norm, 0, false, || {
            ops::norm_forward(&b.ln_1, stream, h, &mut s.xhat1, &mut s.rstd1, rows)
        });
        // Keys and values of every token, queries of the class tokens (rows `t` apart).
        let qkv_flops = product(rows, c, 2 * c) + product(n, c, c);
        timed(cfg, Stage::Qkv, qkv_flops, false, || {
            b.qkv
                .forward_part(h, c, rows, c..3 * c, &mut s.qkv[c..], 3 * c, false);
            b.qkv
                .forward_part(h, t * c, n, 0..c, &mut s.qkv, t * 3 * c, false);
        });
        timed(cfg, Stage::Bias, 0, false, || {
            ops::bias_act(&b.qkv.bias, &mut s.qkv, false, None, rows)
        });
        timed(cfg, Stage::Attention, 4 * n * t * c, false, || {
            attention::forward(&self.heads(n, 1), &s.qkv, &mut s.probs, ctx)
        });
        timed(cfg, Stage::OutProj, product(n, c, c), false, || {
            b.out.forward(ctx, n, cls, true)
        });
        timed(cfg, Stage::Bias, 0, false, || {
            ops::bias_act(&b.out.bias, cls, false, None, n)
        });
        timed(cfg, Stage::Norm, 0, false, || {
            ops::norm_forward(&b.ln_2, cls, h, &mut s.xhat2, &mut s.rstd2, n)
        });
        timed(cfg, Stage::Fc1, product(n, c, m), false, || {
            b.fc1.forward(h, n, u, false)
        });
        let deriv = save.then_some(&mut s.gelu_deriv[..]);
        timed(cfg, Stage::Gelu, 0, false, || {
            ops::bias_act(&b.fc1.bias, u, true, deriv, n)
        });
        timed(cfg, Stage::Fc2, product(n, m, c), false, || {
            b.fc2.forward(u, n, cls, true)
        });
        timed(cfg, Stage::Bias, 0, false, || {
            ops::bias_act(&b.fc2.bias, cls, false, None, n)
        });
    }

    /// Backward of [`last_block_forward`](Self::last_block_forward): from `g_cls`
    /// `[n, hidden]`, the gradient at its class-token outputs, adds to `g` `[n · T, hidden]`
    /// (zero on entry) the gradient at its inputs, every token's. The other buffers are
    /// scratch of the full pass's sizes.
    fn last_block_backward(
        &self,
        (b, s): (&Block, &BlockSaved),
        g_cls: &mut [f32],
        g: &mut [f32],
        (da, dh, dctx, dqkv): (&mut [f32], &mut [f32], &mut [f32], &mut [f32]),
        n: usize,
    ) {
        let cfg = &self.config;
        let (t, c, m) = (cfg.tokens(), cfg.hidden, cfg.mlp);
        let rows = n * t;
        timed(cfg, Stage::Fc2, product(n, m, c), true, || {
            b.fc2.backward(g_cls, n, da, false)
        });
        timed(cfg, Stage::Gelu, 0, true, || {
            ops::times(&mut da[..n * m], &s.gelu_deriv)
        });
        timed(cfg, Stage::Fc1, product(n, c, m), true, || {
            b.fc1.backward(da, n, dh, false)
        });
        timed(cfg, Stage::Norm, 0, true, || {
            ops::norm_backward(&b.ln_2, dh, &s.xhat2, &s.rstd2, g_cls, n)
        });
        timed(cfg, Stage::OutProj, product(n, c, c), true, || {
            b.out.backward(g_cls, n, dctx, false)
        });
        timed(cfg, Stage::Attention, 8 * n * t * c, true, || {
            attention::backward(&self.heads(n, 1), &s.qkv, &s.probs, dctx, dqkv)
        });
        // Every token's keys and values, then the class tokens' queries (rows `t` apart).
        let qkv_flops = product(rows, c, 2 * c) + product(n, c, c);
        timed(cfg, Stage::Qkv, qkv_flops, true, || {
            b.qkv
                .backward_part(&dqkv[c..], 3 * c, rows, c..3 * c, dh, c, false);
            b.qkv
                .backward_part(dqkv, t * 3 * c, n, 0..c, dh, t * c, true);
        });
        for (i, row) in g_cls.chunks_exact(c).enumerate() {
            g[i * t * c..][..c].copy_from_slice(row);
        }
        timed(cfg, Stage::Norm, 0, true, || {
            ops::norm_backward(&b.ln_1, dh, &s.xhat1, &s.rstd1, g, rows)
        });
    }

    /// The token stream entering block 0: patch embeddings (the stride-p convolution as one
    /// product over im2col rows), class token prepended, position embeddings added.
    fn embed(&self, x: &[f32], n: usize) -> Vec<f32> {
        let cfg = &self.config;
        let (p, g, c, t) = (cfg.patch_size, cfg.grid(), cfg.hidden, cfg.tokens());
        let (s, k, patches) = (cfg.image_size, 3 * p * p, g * g);
        let mut cols = self.pool.take(n * patches * k);
        cols.par_chunks_mut(k).enumerate().for_each(|(r, col)| {
            let (b, py, px) = (r / patches, (r % patches) / g, r % g);
            for ch in 0..3 {
                for i in 0..p {
                    let src = ((b * 3 + ch) * s + py * p + i) * s + px * p;
                    col[(ch * p + i) * p..][..p].copy_from_slice(&x[src..][..p]);
                }
            }
        });
        let mut pe = self.pool.take(n * patches * c);
        self.w.patch.forward(&cols, n * patches, &mut pe, false);
        let mut stream = self.pool.take(n * t * c);
        let (cls, pos, bias) = (
            &self.w.class_token,
            &self.w.pos_embedding,
            &self.w.patch.bias,
        );
        stream.par_chunks_mut(c).enumerate().for_each(|(r, row)| {
            let (b, tok) = (r / t, r % t);
            let pos = &pos[tok * c..][..c];
            if tok == 0 {
                for ((o, &v), &q) in row.iter_mut().zip(cls).zip(pos) {
                    *o = v + q;
                }
            } else {
                let e = &pe[(b * patches + tok - 1) * c..][..c];
                for (((o, &v), &bi), &q) in row.iter_mut().zip(e).zip(bias).zip(pos) {
                    *o = (v + bi) + q;
                }
            }
        });
        self.pool.give([cols, pe]);
        stream
    }

    /// Gradient of `Σ dlogits · logits` with respect to the input of the pass that saved
    /// `saved`, `[N, 3, S, S]` flattened. Runs on the thread pool like [`VitNet::forward`].
    pub fn backward(&self, saved: &VitSaved, dlogits: &[f32]) -> Vec<f32> {
        on_warm_pool(|| self.backward_on_pool(saved, dlogits))
    }

    fn backward_on_pool(&self, saved: &VitSaved, dlogits: &[f32]) -> Vec<f32> {
        let cfg = &self.config;
        let pool = &*self.pool;
        let n = saved.images;
        let (t, c, m, rows) = (cfg.tokens(), cfg.hidden, cfg.mlp, n * cfg.tokens());
        // Head and final LayerNorm, into the class-token rows of the stream's gradient.
        let mut dcls = pool.take(n * c);
        let head_flops = product(n, c, cfg.num_classes);
        timed(cfg, Stage::Head, head_flops, true, || {
            dense_backward(&self.head(), dlogits, &mut dcls, n, false)
        });
        let mut dnorm = pool.take(n * c);
        dnorm.fill(0.0);
        timed(cfg, Stage::Norm, 0, true, || {
            ops::norm_backward(&self.w.ln, &dcls, &saved.xhat, &saved.rstd, &mut dnorm, n)
        });
        let mut g = pool.take(rows * c);
        g.fill(0.0);
        let (mut da, mut dh) = (pool.take(rows * m), pool.take(rows * c));
        let (mut dctx, mut dqkv) = (pool.take(rows * c), pool.take(rows * 3 * c));
        let (body, last) = self.w.blocks.split_at(cfg.layers.saturating_sub(1));
        match (last.first(), saved.blocks.get(body.len())) {
            (Some(b), Some(s)) => {
                let bufs = (&mut da[..], &mut dh[..], &mut dctx[..], &mut dqkv[..]);
                self.last_block_backward((b, s), &mut dnorm, &mut g, bufs, n);
            }
            _ => {
                for (i, row) in dnorm.chunks_exact(c).enumerate() {
                    g[i * t * c..][..c].copy_from_slice(row);
                }
            }
        }
        let heads = self.heads(n, t);
        for (b, s) in body.iter().zip(&saved.blocks).rev() {
            timed(cfg, Stage::Fc2, product(rows, m, c), true, || {
                b.fc2.backward(&g, rows, &mut da, false)
            });
            timed(cfg, Stage::Gelu, 0, true, || {
                ops::times(&mut da, &s.gelu_deriv)
            });
            timed(cfg, Stage::Fc1, product(rows, c, m), true, || {
                b.fc1.backward(&da, rows, &mut dh, false)
            });
            timed(cfg, Stage::Norm, 0, true, || {
                ops::norm_backward(&b.ln_2, &dh, &s.xhat2, &s.rstd2, &mut g, rows)
            });
            timed(cfg, Stage::OutProj, product(rows, c, c), true, || {
                b.out.backward(&g, rows, &mut dctx, false)
            });
            timed(cfg, Stage::Attention, 8 * rows * t * c, true, || {
                attention::backward(&heads, &s.qkv, &s.probs, &dctx, &mut dqkv)
            });
            timed(cfg, Stage::Qkv, product(rows, c, 3 * c), true, || {
                b.qkv.backward(&dqkv, rows, &mut dh, false)
            });
            timed(cfg, Stage::Norm, 0, true, || {
                ops::norm_backward(&b.ln_1, &dh, &s.xhat1, &s.rstd1, &mut g, rows)
            });
        }
        let embed_flops = product(n * cfg.grid() * cfg.grid(), 3 * cfg.patch_size.pow(2), c);
        let dx = timed(cfg, Stage::Embed, embed_flops, true, || self.unembed(&g, n));
        pool.give([dcls, dnorm, g, da, dh, dctx, dqkv]);
        dx
    }

    /// Backward of [`embed`](Self::embed): the patch tokens' gradient through the patch
    /// projection, then back from im2col rows to pixels.
    fn unembed(&self, g: &[f32], n: usize) -> Vec<f32> {
        let cfg = &self.config;
        let (p, gs, c, t) = (cfg.patch_size, cfg.grid(), cfg.hidden, cfg.tokens());
        let (s, k, patches) = (cfg.image_size, 3 * p * p, gs * gs);
        let mut dpe = self.pool.take(n * patches * c);
        dpe.par_chunks_mut(c).enumerate().for_each(|(r, row)| {
            let (b, i) = (r / patches, r % patches);
            row.copy_from_slice(&g[(b * t + 1 + i) * c..][..c]);
        });
        let mut dcols = self.pool.take(n * patches * k);
        self.w.patch.backward(&dpe, n * patches, &mut dcols, false);
        let mut dx = vec![0.0f32; n * 3 * s * s];
        // One task per image plane row of patches: each writes its own `p` pixel rows.
        dx.par_chunks_mut(p * s).enumerate().for_each(|(r, out)| {
            let (plane, py) = (r / gs, r % gs);
            let (b, ch) = (plane / 3, plane % 3);
            for px in 0..gs {
                let col = &dcols[(b * patches + py * gs + px) * k..][..k];
                for i in 0..p {
                    out[i * s + px * p..][..p].copy_from_slice(&col[(ch * p + i) * p..][..p]);
                }
            }
        });
        self.pool.give([dpe, dcols]);
        dx
    }
}
