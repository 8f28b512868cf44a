//! Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers") for
//! vision transformers.
//!
//! Each block's attention, averaged over heads, is mixed with the identity for the residual
//! connection (`0.5·A + 0.5·I`, rows renormalized) and the blocks are multiplied from the
//! first to the last; the class token's row of the product, over the patch tokens, says how
//! much each patch flows into the classification. The map lives on the patch grid (14×14 for
//! ViT-B/16) and is upsampled bilinearly to the input size. Rollout does not depend on the
//! target class: it explains what the network attends to, not why it chose a class (the map's
//! `target` records the class asked for, for captions).

use super::{Attribution, Batch, Map, Run};
use crate::engine::tensor_values;
use crate::error::{Error, Result};
use crate::imaging::resample::upsample_bilinear;
use crate::models::Classifier;

/// Attention rollout with the heads of each block averaged (the paper's choice; there is no
/// other head fusion).
#[derive(Debug, Clone, Default)]
pub struct AttentionRollout;

/// Rollout of per-layer attention matrices (each `t`×`t`, heads already fused), returning the
/// class token's row over the other tokens.
pub fn rollout(layers: &[Vec<f64>], t: usize) -> Vec<f64> {
    let mut acc: Vec<f64> = (0..t * t)
        .map(|i| f64::from(u8::from(i / t == i % t)))
        .collect();
    for a in layers {
        // Â = 0.5 A + 0.5 I, rows renormalized.
        let mut m: Vec<f64> = a.iter().map(|v| 0.5 * v).collect();
        for i in 0..t {
            m[i * t + i] += 0.5;
            let s: f64 = m[i * t..(i + 1) * t].iter().sum();
            if s > 0.0 {
                m[i * t..(i + 1) * t].iter_mut().for_each(|v| *v /= s);
            }
        }
        // acc ← Â · acc (later layers on the left).
        let mut next = vec![0f64; t * t];
        for i in 0..t {
            for k in 0..t {
                let mik = m[i * t + k];
                if mik != 0.0 {
                    for j in 0..t {
                        next[i * t + j] += mik * acc[k * t + j];
                    }
                }
            }
        }
        acc = next;
    }
    acc[1..t].to_vec()
}

impl Attribution for AttentionRollout {
    fn name(&self) -> String {
        "attention-rollout".into()
    }

    fn step(&self, model: &dyn Classifier, batch: &Batch, run: &mut Run) -> Result<Vec<Map>> {
        let [b, _, h, w] = batch.inputs.shape();
        let layers = model.attention_maps(batch.tensor())?;
        let per_layer: Vec<(Vec<f32>, [usize; 4])> = layers
            .into_iter()
            .map(|a| {
                let d = a.dims();
                (tensor_values(a), d)
            })
            .collect();
        let Some(&[_, heads, t, _]) = per_layer.first().map(|(_, d)| d) else {
            return Err(Error::Invalid(
                "the model returned no attention maps".into(),
            ));
        };
        let grid = ((t - 1) as f64).sqrt().round() as usize;
        if grid * grid != t - 1 {
            return Err(Error::Invalid(format!(
                "{} tokens do not form a square patch grid plus a class token",
                t
            )));
        }
        let mut maps = Vec::with_capacity(b);
        for i in 0..b {
            let fused: Vec<Vec<f64>> = per_layer
                .iter()
                .map(|(v, _)| {
                    let img = &v[i * heads * t * t..(i + 1) * heads * t * t];
                    (0..t * t)
                        .map(|k| {
                            (0..heads)
                                .map(|hd| f64::from(img[hd * t * t + k]))
                                .sum::<f64>()
                                / heads as f64
                        })
                        .collect()
                })
                .collect();
            let cls = rollout(&fused, t);
            let small: Vec<f32> = cls.iter().map(|&v| v as f32).collect();
            maps.push(batch.map(i, upsample_bilinear(&small, grid, grid, h, w), false));
        }
        (run.progress)(b);
        Ok(maps)
    }
}

#[cfg(test)]
mod tests {
    use super::rollout;

    #[test]
    fn identity_attention_rolls_out_to_nothing_from_patches() {
        // Attention that stays on each token: the class token only ever sees itself.
        let t = 5;
        let eye: Vec<f64> = (0..t * t)
            .map(|i| f64::from(u8::from(i / t == i % t)))
            .collect();
        assert!(rollout(&[eye.clone(), eye], t).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn uniform_attention_spreads_evenly() {
        let t = 5;
        let uni = vec![1.0 / t as f64; t * t];
        let r = rollout(&[uni], t);
        // 0.5/t from the attention on every patch.
        assert!(
            r.iter().all(|&v| (v - 0.5 / t as f64).abs() < 1e-12),
            "{r:?}"
        );
    }
}
