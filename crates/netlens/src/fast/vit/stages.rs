//! The ViT's passes by stage for `netlens bench --profile` ([`crate::fast::profile`]): each
//! kind of work — the patch embedding, the LayerNorms, each of the four products, attention,
//! the GELU, the bias adds, the head — is one row, summed over the blocks, forward and
//! backward, with the FLOPs of its products. Off by default: then a stage costs one relaxed
//! atomic load.

use crate::fast::profile;
use crate::models::vit::Config;

/// A kind of work in the ViT's passes (its row in the profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// im2col of the patches, their projection, class token and position embeddings.
    Embed,
    /// Every LayerNorm (two per block and the final one).
    Norm,
    Qkv,
    /// Scores, softmax and context, every head.
    Attention,
    OutProj,
    Fc1,
    /// The MLP's bias and GELU (forward), its derivative (backward).
    Gelu,
    Fc2,
    /// The Q/K/V, output-projection and second MLP layer biases.
    Bias,
    /// The class token's head.
    Head,
}

impl Stage {
    fn label(self, cfg: &Config) -> String {
        let (c, m, l) = (cfg.hidden, cfg.mlp, cfg.layers);
        match self {
            Stage::Embed => format!("patch embedding {0}×{0}→{c}", cfg.patch_size),
            Stage::Norm => format!("LayerNorm {c} (×{})", 2 * l + 1),
            Stage::Qkv => format!("qkv {c}→{} (×{l})", 3 * c),
            Stage::Attention => format!("attention {} heads (×{l})", cfg.heads),
            Stage::OutProj => format!("out-projection {c}→{c} (×{l})"),
            Stage::Fc1 => format!("mlp fc1 {c}→{m} (×{l})"),
            Stage::Gelu => format!("bias + GELU {m} (×{l})"),
            Stage::Fc2 => format!("mlp fc2 {m}→{c} (×{l})"),
            Stage::Bias => format!("bias adds (×{})", 3 * l),
            Stage::Head => format!("head {c}→{}", cfg.num_classes),
        }
    }
}

/// Runs `f`, timing it as `stage` (forward or `backward`) with `flops` of products when
/// profiling is on.
#[inline]
pub(super) fn timed<R>(
    cfg: &Config,
    stage: Stage,
    flops: usize,
    backward: bool,
    f: impl FnOnce() -> R,
) -> R {
    let t0 = profile::begin();
    let r = f();
    profile::end_stage(
        t0,
        stage as usize,
        || stage.label(cfg),
        flops as u64,
        backward,
    );
    r
}

/// FLOPs (2 per multiply-add) of a `rows × inputs` by `inputs × outputs` product.
pub(super) fn product(rows: usize, inputs: usize, outputs: usize) -> usize {
    2 * rows * inputs * outputs
}
