//! A ViT with seeded random weights in torchvision's layout, for the tests of the ViT's fast
//! path (`vit_fast.rs`, `vit_profile.rs`).

use netlens::models::{self, vit, Arch, ModelSpec};
use netlens::weights::{Array, StateDict};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

pub fn uniform(rng: &mut rand::rngs::StdRng, n: usize, a: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-a..a)).collect()
}

/// torchvision's ViT state dict for `cfg` with seeded random weights: linear and patch
/// weights of variance 1 / fan-in (as a trained network's activations keep their scale),
/// biases ±0.1, LayerNorm γ in [0.5, 1.5] and β ±0.2 (so that their gradients matter), class
/// token and position embeddings ±0.5.
pub fn state_dict(cfg: &vit::Config, seed: u64) -> StateDict {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut t: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let (c, m, p) = (cfg.hidden, cfg.mlp, cfg.patch_size);
    let linear = |rng: &mut rand::rngs::StdRng, t: &mut Vec<_>, name: &str, i: usize, o: usize| {
        let a = (3.0 / i as f32).sqrt();
        t.push((format!("{name}weight"), vec![o, i], uniform(rng, o * i, a)));
        t.push((format!("{name}bias"), vec![o], uniform(rng, o, 0.1)));
    };
    let norm = |rng: &mut rand::rngs::StdRng, t: &mut Vec<_>, name: &str| {
        let g = (0..c).map(|_| rng.random_range(0.5..1.5)).collect();
        t.push((format!("{name}.weight"), vec![c], g));
        t.push((format!("{name}.bias"), vec![c], uniform(rng, c, 0.2)));
    };
    let k = 3 * p * p;
    let a = (3.0 / k as f32).sqrt();
    t.push((
        "conv_proj.weight".into(),
        vec![c, 3, p, p],
        uniform(&mut rng, c * k, a),
    ));
    t.push(("conv_proj.bias".into(), vec![c], uniform(&mut rng, c, 0.1)));
    t.push((
        "class_token".into(),
        vec![1, 1, c],
        uniform(&mut rng, c, 0.5),
    ));
    let pos = uniform(&mut rng, cfg.tokens() * c, 0.5);
    t.push((
        "encoder.pos_embedding".into(),
        vec![1, cfg.tokens(), c],
        pos,
    ));
    for l in 0..cfg.layers {
        let b = format!("encoder.layers.encoder_layer_{l}");
        norm(&mut rng, &mut t, &format!("{b}.ln_1"));
        linear(
            &mut rng,
            &mut t,
            &format!("{b}.self_attention.in_proj_"),
            c,
            3 * c,
        );
        linear(
            &mut rng,
            &mut t,
            &format!("{b}.self_attention.out_proj."),
            c,
            c,
        );
        norm(&mut rng, &mut t, &format!("{b}.ln_2"));
        linear(&mut rng, &mut t, &format!("{b}.mlp.0."), c, m);
        linear(&mut rng, &mut t, &format!("{b}.mlp.3."), m, c);
    }
    norm(&mut rng, &mut t, "encoder.ln");
    linear(&mut rng, &mut t, "heads.head.", c, cfg.num_classes);
    let map = t
        .into_iter()
        .map(|(name, shape, data)| (name, Array { shape, data }))
        .collect::<HashMap<_, _>>();
    StateDict::from_arrays(map, "seeded random ViT")
}

pub fn spec(name: &'static str, cfg: vit::Config) -> &'static ModelSpec {
    let mut s = models::spec("vit_b_16").unwrap().clone();
    s.name = name;
    s.arch = Arch::VisionTransformer(cfg);
    s.input_size = cfg.image_size as _;
    Box::leak(Box::new(s))
}

/// 64 px, patch 16: a 4×4 grid and 17 tokens; width 42 in 3 heads of 14.
pub const ODD: vit::Config = vit::Config {
    image_size: 64,
    patch_size: 16,
    layers: 2,
    heads: 3,
    hidden: 42,
    mlp: 100,
    num_classes: 10,
    ln_eps: 1e-6,
};
