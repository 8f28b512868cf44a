//! Vision Transformer (Dosovitskiy et al. 2020, "An Image is Worth 16x16 Words: Transformers
//! for Image Recognition at Scale"), ViT-B/16 as torchvision builds it (`VisionTransformer`).
//!
//! Key traits: the image is cut into 16×16 patches by a stride-16 convolution (`conv_proj`),
//! a learned class token is prepended and learned position embeddings added
//! (`encoder.pos_embedding`); twelve pre-norm encoder blocks
//! (`encoder.layers.encoder_layer_N`: `ln_1` → 12-head self-attention → residual, `ln_2` →
//! MLP with exact (erf) GELU → residual), LayerNorm eps 1e-6; the final `encoder.ln` and a
//! linear head (`heads.head`) read the class token only. Dropout is the identity at
//! evaluation. 86.6 M parameters, 224 px, a 14×14 patch grid.
//!
//! ## Layers, Grad-CAM and the class token
//!
//! Taps are 4-D like a CNN's: the patch tokens, class token dropped, reshaped to the patch
//! grid `[N, C, 14, 14]` (`a[n, c, i, j]` = token `1 + 14 i + j`, channel `c`: the layout of
//! pytorch-grad-cam's `reshape_transform` for ViTs). The class token cannot be recomputed from
//! the patch tokens of the same layer (attention mixed them), so [`VisionTransformer::forward_to`]
//! keeps the token stream it passed through (per thread and layer, graph attached) and
//! [`VisionTransformer::forward_from`] re-attaches that class token to the patch grid it is
//! given: call `forward_to` first, on the same thread, with the same batch (or a batch of one,
//! which is broadcast). `forward_from(forward_to(x, l), l)` equals `forward(x)` in value and
//! in gradient with respect to `x`.
//!
//! The default Grad-CAM layer is `encoder.layers.encoder_layer_11.ln_1`, the output of the
//! last block's first LayerNorm (pytorch-grad-cam's recommended `blocks[-1].norm1`): the
//! logits read only the class token, which sees the patch tokens there through the last
//! attention's keys and values, so the gradient with respect to that grid flows through the
//! attention only (the residual stream, which bypasses `ln_1`, is held fixed). At a block
//! output (`encoder.layers.encoder_layer_k`) the patch tokens are the residual stream itself.
//! Grad-CAM then means: weight each of the 768 channels by its mean gradient over the 14×14
//! grid, sum, ReLU: a map with patch (16 px) resolution.
//!
//! [`VisionTransformer::attention_maps`] returns every block's attention probabilities for
//! attention rollout (Abnar & Zuidema 2020).
//!
//! ## The fast path
//!
//! Loaded with the fast path on (float32), [`VisionTransformer::forward`] runs as one burn
//! operation over `fast::vit` (gemm products, fused LayerNorm / GELU / softmax kernels, its
//! own backward-to-input), so every method that differentiates the logits gets it; its
//! weights are copied into that layout on the first forward. The taps (`forward_to`,
//! `forward_from`) and `attention_maps` stay on the burn operations below, which are also
//! the reference the fast path is tested against (`tests/vit_fast.rs`).

use super::layers::{LayerNorm, Linear, PatchConv};
use crate::engine::Precision;
use crate::error::{Error, Result};
use crate::fast::kernels::transpose;
use crate::fast::vit::{self as fast, VitNet};
use crate::weights::StateDict;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::Tensor;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;

/// Shape of one Vision Transformer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    pub image_size: usize,
    pub patch_size: usize,
    pub layers: usize,
    pub heads: usize,
    /// Token width.
    pub hidden: usize,
    /// Width of the MLP inside each block.
    pub mlp: usize,
    pub num_classes: usize,
    pub ln_eps: f64,
}

impl Config {
    /// torchvision's `vit_b_16`.
    pub const VIT_B_16: Config = Config {
        image_size: 224,
        patch_size: 16,
        layers: 12,
        heads: 12,
        hidden: 768,
        mlp: 3072,
        num_classes: 1000,
        ln_eps: 1e-6,
    };

    /// Two blocks of width 64 with 4 heads on the same 14×14 grid (for tests).
    pub const TINY: Config = Config {
        image_size: 224,
        patch_size: 16,
        layers: 2,
        heads: 4,
        hidden: 64,
        mlp: 128,
        num_classes: 1000,
        ln_eps: 1e-6,
    };

    /// Side of the patch grid.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Tokens per image: the class token and one per patch.
    pub fn tokens(&self) -> usize {
        1 + self.grid() * self.grid()
    }

    /// Floating-point operations of one image's forward pass: 2 × the multiply-adds of the
    /// patch projection, each block's Q/K/V and output projections, attention scores and
    /// context, and MLP, and the head (ViT-B/16: 17.6 G multiply-adds, as published).
    pub fn forward_flops(&self) -> u64 {
        let (t, d, m) = (self.tokens() as u64, self.hidden as u64, self.mlp as u64);
        let patches = (self.grid() * self.grid()) as u64;
        let p2 = (self.patch_size * self.patch_size) as u64;
        let block = 4 * t * d * d + 2 * t * t * d + 2 * t * d * m;
        let macs = patches * d * 3 * p2 + self.layers as u64 * block + d * self.num_classes as u64;
        2 * macs
    }
}

/// `nn.MultiheadAttention` (batch first) with packed input projections.
struct Attention {
    in_proj: Linear,
    out_proj: Linear,
    heads: usize,
}

impl Attention {
    /// Output `[N, T, C]` and attention probabilities `[N, heads, T, T]`.
    fn forward(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        let [n, t, c] = x.dims();
        let (h, d) = (self.heads, c / self.heads);
        let qkv = self.in_proj.forward_tokens(x);
        let split = |i: usize| {
            qkv.clone()
                .narrow(2, i * c, c)
                .reshape([n, t, h, d])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (d as f64).sqrt());
        let probs = softmax(scores, 3);
        let ctx = probs.clone().matmul(v).swap_dims(1, 2).reshape([n, t, c]);
        (self.out_proj.forward_tokens(ctx), probs)
    }
}

/// One pre-norm encoder block.
struct Block {
    ln_1: LayerNorm,
    attention: Attention,
    ln_2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Block {
    fn forward(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        let h = self.ln_1.forward(x.clone());
        self.after_ln_1(x, h)
    }

    /// The rest of the block from the residual input `x` and `h = ln_1(x)`.
    fn after_ln_1(&self, x: Tensor<3>, h: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        let (a, probs) = self.attention.forward(h);
        let x = x + a;
        let y = self.fc1.forward_tokens(self.ln_2.forward(x.clone()));
        let y = self.fc2.forward_tokens(gelu(y));
        (x + y, probs)
    }
}

/// Where a tap sits.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tap {
    /// Patch embeddings, before the class token and position embeddings.
    ConvProj,
    /// Output of block `k`'s `ln_1`.
    Ln1(usize),
    /// Output of block `k`.
    Block(usize),
}

/// Token streams kept by `forward_to` for `forward_from`, per thread and tap.
type Kept = Mutex<HashMap<(ThreadId, String), Tensor<3>>>;

/// A Vision Transformer with torchvision's weights.
pub struct VisionTransformer {
    config: Config,
    conv_proj: PatchConv,
    class_token: Tensor<3>,
    pos_embedding: Tensor<3>,
    blocks: Vec<Block>,
    ln: LayerNorm,
    head: Linear,
    kept: Kept,
    /// Whether [`forward`](VisionTransformer::forward) may run on the fast path.
    fast_enabled: bool,
    /// The fast path's network, built from the weights on first use (`None` if they do not
    /// fit it).
    fast: OnceLock<Option<Arc<VitNet>>>,
}

impl VisionTransformer {
    /// Builds the network from a torchvision state dict; every tensor must fit. The MLP
    /// weights may carry either name torchvision has used (`mlp.0`/`mlp.3`, or the older
    /// `mlp.linear_1`/`mlp.linear_2` of the published ViT-B/16 file). Weights are made in
    /// `prec`; inputs must come in it too (the zoo's `Classifier` wrapper casts them).
    pub fn from_state_dict(config: Config, mut sd: StateDict, prec: Precision) -> Result<Self> {
        let c = config.hidden;
        let eps = config.ln_eps;
        if config.heads == 0
            || !c.is_multiple_of(config.heads)
            || !config.image_size.is_multiple_of(config.patch_size)
        {
            return Err(Error::Invalid(format!(
                "inconsistent ViT configuration {config:?}"
            )));
        }
        let conv_proj = PatchConv::take(&mut sd, "conv_proj", 3, c, config.patch_size, prec)?;
        let class_token = prec.tensor(sd.take("class_token", &[1, 1, c])?.data, [1, 1, c]);
        let t = config.tokens();
        let pos_embedding = prec.tensor(
            sd.take("encoder.pos_embedding", &[1, t, c])?.data,
            [1, t, c],
        );
        let mut blocks = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            let p = format!("encoder.layers.encoder_layer_{i}");
            let a = format!("{p}.self_attention");
            let in_w = sd.take(&format!("{a}.in_proj_weight"), &[3 * c, c])?;
            let in_b = sd.take(&format!("{a}.in_proj_bias"), &[3 * c])?;
            let legacy = sd
                .names()
                .contains(&format!("{p}.mlp.linear_1.weight").as_str());
            let (m1, m2) = if legacy {
                ("linear_1", "linear_2")
            } else {
                ("0", "3")
            };
            blocks.push(Block {
                ln_1: LayerNorm::take(&mut sd, &format!("{p}.ln_1"), c, eps, prec)?,
                attention: Attention {
                    in_proj: Linear::from_parts(in_w.data, in_b.data, c, 3 * c, prec),
                    out_proj: Linear::take(&mut sd, &format!("{a}.out_proj"), c, c, prec)?,
                    heads: config.heads,
                },
                ln_2: LayerNorm::take(&mut sd, &format!("{p}.ln_2"), c, eps, prec)?,
                fc1: Linear::take(&mut sd, &format!("{p}.mlp.{m1}"), c, config.mlp, prec)?,
                fc2: Linear::take(&mut sd, &format!("{p}.mlp.{m2}"), config.mlp, c, prec)?,
            });
        }
        let ln = LayerNorm::take(&mut sd, "encoder.ln", c, eps, prec)?;
        let head = Linear::take(&mut sd, "heads.head", c, config.num_classes, prec)?;
        sd.finish()?;
        Ok(Self {
            config,
            conv_proj,
            class_token,
            pos_embedding,
            blocks,
            ln,
            head,
            kept: Mutex::new(HashMap::new()),
            fast_enabled: false,
            fast: OnceLock::new(),
        })
    }

    /// The network with [`forward`](Self::forward) on the fast path (`fast::vit`) or not; the
    /// caller turns it on only for float32 weights. Taps (`forward_to` / `forward_from`) and
    /// [`attention_maps`](Self::attention_maps) stay on the burn operations.
    pub fn with_fast_path(mut self, on: bool) -> Self {
        self.fast_enabled = on;
        self
    }

    /// Whether `forward` runs on the fast path.
    pub fn fast_path_on(&self) -> bool {
        self.fast_net().is_some()
    }

    fn fast_net(&self) -> Option<&Arc<VitNet>> {
        if !self.fast_enabled {
            return None;
        }
        self.fast
            .get_or_init(|| {
                VitNet::new(self.config, self.fast_weights())
                    .ok()
                    .map(Arc::new)
            })
            .as_ref()
    }

    /// The weights in the fast path's layout.
    fn fast_weights(&self) -> fast::Weights {
        let c = self.config.hidden;
        let dense = |l: &Linear, inputs: usize, outputs: usize| {
            let (w, bias) = l.values();
            fast::Dense::new(w, bias, inputs, outputs)
        };
        let norm = |l: &LayerNorm| {
            let (gamma, beta, eps) = l.values();
            fast::Norm { gamma, beta, eps }
        };
        let (pw, pb) = self.conv_proj.values();
        let k = pw.len() / c.max(1);
        let (hw, hb) = self.head.values();
        let classes = self.config.num_classes;
        fast::Weights {
            patch: fast::Dense::new(transpose(&pw, c, k), pb, k, c),
            class_token: crate::engine::tensor_values(self.class_token.clone()),
            pos_embedding: crate::engine::tensor_values(self.pos_embedding.clone()),
            blocks: (self.blocks.iter())
                .map(|b| fast::Block {
                    ln_1: norm(&b.ln_1),
                    qkv: dense(&b.attention.in_proj, c, 3 * c),
                    out: dense(&b.attention.out_proj, c, c),
                    ln_2: norm(&b.ln_2),
                    fc1: dense(&b.fc1, c, self.config.mlp),
                    fc2: dense(&b.fc2, self.config.mlp, c),
                })
                .collect(),
            ln: norm(&self.ln),
            head_weight: transpose(&hw, c, classes),
            head_bias: hb,
        }
    }

    /// The variant's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Tappable layers, input side first: `conv_proj`, then per block
    /// `encoder.layers.encoder_layer_k.ln_1` and `encoder.layers.encoder_layer_k`.
    pub fn layer_names(&self) -> Vec<String> {
        let mut v = vec!["conv_proj".to_string()];
        for k in 0..self.blocks.len() {
            v.push(format!("encoder.layers.encoder_layer_{k}.ln_1"));
            v.push(format!("encoder.layers.encoder_layer_{k}"));
        }
        v
    }

    /// Grad-CAM's default layer: the last block's `ln_1` output (see the module docs).
    pub fn cam_layer(&self) -> String {
        format!(
            "encoder.layers.encoder_layer_{}.ln_1",
            self.blocks.len().saturating_sub(1)
        )
    }

    fn tap(&self, layer: &str) -> Result<Tap> {
        let unknown = || {
            Error::Invalid(format!(
                "no layer '{layer}' in the ViT; layers are conv_proj, encoder.layers.encoder_layer_K and encoder.layers.encoder_layer_K.ln_1 for K in 0..{}",
                self.blocks.len() - 1
            ))
        };
        if layer == "conv_proj" {
            return Ok(Tap::ConvProj);
        }
        let rest = layer
            .strip_prefix("encoder.layers.encoder_layer_")
            .ok_or_else(unknown)?;
        let (num, ln) = match rest.strip_suffix(".ln_1") {
            Some(n) => (n, true),
            None => (rest, false),
        };
        let k: usize = num.parse().map_err(|_| unknown())?;
        if k >= self.blocks.len() {
            return Err(unknown());
        }
        Ok(if ln { Tap::Ln1(k) } else { Tap::Block(k) })
    }

    fn check_input(&self, x: &Tensor<4>) -> Result<()> {
        let [_, ch, h, w] = x.dims();
        let s = self.config.image_size;
        if ch != 3 || h != s || w != s {
            return Err(Error::Invalid(format!(
                "the ViT needs [N, 3, {s}, {s}] input (its position embeddings fix the grid), got [_, {ch}, {h}, {w}]"
            )));
        }
        Ok(())
    }

    /// Patch grid `[N, C, g, g]` → tokens `[N, g², C]`.
    fn grid_to_tokens(a: Tensor<4>) -> Tensor<3> {
        let [n, c, gh, gw] = a.dims();
        a.reshape([n, c, gh * gw]).swap_dims(1, 2)
    }

    /// Tokens `[N, 1 + g², C]` → patch grid `[N, C, g, g]` (class token dropped).
    fn tokens_to_grid(&self, x: Tensor<3>) -> Tensor<4> {
        let [n, t, c] = x.dims();
        let g = self.config.grid();
        x.narrow(1, 1, t - 1).swap_dims(1, 2).reshape([n, c, g, g])
    }

    /// The token stream entering block 0, from patch embeddings.
    fn embed(&self, patches: Tensor<4>) -> Tensor<3> {
        let [n, c, _, _] = patches.dims();
        let cls = self.class_token.clone().expand([n, 1, c]);
        Tensor::cat(vec![cls, Self::grid_to_tokens(patches)], 1) + self.pos_embedding.clone()
    }

    /// Logits from the token stream after the last block.
    fn classify(&self, x: Tensor<3>) -> Tensor<2> {
        let [n, _, c] = x.dims();
        let cls = x.narrow(1, 0, 1).reshape([n, c]);
        self.head.forward(self.ln.forward(cls))
    }

    fn run_blocks(&self, mut x: Tensor<3>, blocks: std::ops::Range<usize>) -> Tensor<3> {
        for b in &self.blocks[blocks] {
            x = b.forward(x).0;
        }
        x
    }

    /// Logits `[N, classes]` of a normalized batch `[N, 3, S, S]` (S = the configured size).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        if let Some(y) = self
            .fast_net()
            .and_then(|net| crate::engine::vit_forward(net, x.clone()))
        {
            return y;
        }
        let tokens = self.embed(self.conv_proj.forward(x));
        self.classify(self.run_blocks(tokens, 0..self.blocks.len()))
    }

    /// Every block's attention probabilities `[N, heads, T, T]`, input side first, where
    /// token 0 is the class token and tokens `1..` the patches in row-major grid order
    /// (rows: queries, columns: keys; each row sums to 1). The raw material of attention
    /// rollout: average (or max) over heads, add the identity, renormalize rows, multiply
    /// through the layers and read the class token's row over the patches.
    pub fn attention_maps(&self, x: Tensor<4>) -> Result<Vec<Tensor<4>>> {
        self.check_input(&x)?;
        let mut t = self.embed(self.conv_proj.forward(x));
        let mut maps = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let (next, probs) = b.forward(t);
            maps.push(probs);
            t = next;
        }
        Ok(maps)
    }

    fn keep(&self, layer: &str, tokens: Tensor<3>) {
        let key = (std::thread::current().id(), layer.to_string());
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.insert(key, tokens);
    }

    fn kept(&self, layer: &str, n: usize) -> Result<Tensor<3>> {
        let key = (std::thread::current().id(), layer.to_string());
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let t = kept.get(&key).cloned().ok_or_else(|| {
            Error::Invalid(format!(
                "forward_from('{layer}') on a ViT needs forward_to at the same layer first (on this thread): the class token comes from it"
            ))
        })?;
        let [m, tok, c] = t.dims();
        match m {
            m if m == n => Ok(t),
            1 => Ok(t.expand([n, tok, c])),
            _ => Err(Error::Invalid(format!(
                "forward_from('{layer}') got a batch of {n} but the last forward_to there had {m}; use the same batch or a batch of one"
            ))),
        }
    }

    /// The activation of `layer` as a patch grid `[N, C, g, g]` (see the module docs).
    pub fn forward_to(&self, x: Tensor<4>, layer: &str) -> Result<Tensor<4>> {
        let tap = self.tap(layer)?;
        self.check_input(&x)?;
        let patches = self.conv_proj.forward(x);
        let k = match tap {
            Tap::ConvProj => return Ok(patches),
            Tap::Ln1(k) | Tap::Block(k) => k,
        };
        let before = self.run_blocks(self.embed(patches), 0..k);
        match tap {
            Tap::Ln1(_) => {
                let h = self.blocks[k].ln_1.forward(before.clone());
                self.keep(layer, before);
                Ok(self.tokens_to_grid(h))
            }
            _ => {
                let after = self.blocks[k].forward(before).0;
                self.keep(layer, after.clone());
                Ok(self.tokens_to_grid(after))
            }
        }
    }

    /// Logits from the patch grid `a` of `layer`, with the class token (and, at an `ln_1`
    /// tap, the residual stream) kept by the last [`forward_to`](Self::forward_to) there.
    pub fn forward_from(&self, a: Tensor<4>, layer: &str) -> Result<Tensor<2>> {
        let tap = self.tap(layer)?;
        let [n, c, gh, gw] = a.dims();
        let g = self.config.grid();
        if c != self.config.hidden || gh != g || gw != g {
            return Err(Error::Invalid(format!(
                "'{layer}' holds [N, {}, {g}, {g}] activations, got [{n}, {c}, {gh}, {gw}]",
                self.config.hidden
            )));
        }
        let last = self.blocks.len();
        let out = match tap {
            Tap::ConvProj => self.run_blocks(self.embed(a), 0..last),
            Tap::Block(k) => {
                let kept = self.kept(layer, n)?;
                let x = Tensor::cat(vec![kept.narrow(1, 0, 1), Self::grid_to_tokens(a)], 1);
                self.run_blocks(x, k + 1..last)
            }
            Tap::Ln1(k) => {
                let residual = self.kept(layer, n)?;
                let block = &self.blocks[k];
                let cls = block.ln_1.forward(residual.clone().narrow(1, 0, 1));
                let h = Tensor::cat(vec![cls, Self::grid_to_tokens(a)], 1);
                let x = block.after_ln_1(residual, h).0;
                self.run_blocks(x, k + 1..last)
            }
        };
        Ok(self.classify(out))
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn vit_b_16_counts_its_published_multiply_adds() {
        // torchvision lists ViT-B/16 at 17.56 G multiply-adds ("GFLOPS" 17.56).
        let gmacs = Config::VIT_B_16.forward_flops() as f64 / 2e9;
        assert!((gmacs - 17.56).abs() < 0.02, "{gmacs}");
    }
}
