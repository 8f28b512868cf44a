//! The Vision Transformer's fast path (`fast::vit`) against the plain burn path it replaces
//! (the same model loaded with `LoadOptions::with_fast_path(false)`), on seeded random
//! weights: the real ViT-B/16 shape (224 px, 197 tokens, 12 blocks of width 768, 12 heads,
//! MLP 3072) at batches 1 and 2, and a small odd configuration (64 px → 17 tokens, width 42
//! in 3 heads of 14 — neither a multiple of 16 nor of 8 —, MLP 100, 10 classes) at batches
//! 1 and 3, and with one block only (the last block, whose queries, attention and MLP run
//! for the class token alone, is then the whole encoder).
//!
//! Tolerances: logits and input gradients to 1e-5 relative (L2), the bound the CNN fast path
//! is held to. Both sides compute in float32 in a different order (`gemm` blocking, fused
//! bias and residual adds), and the GELU's erf is a different approximation (`fast::vit`'s
//! Chebyshev fit, 3e-7 absolute in Φ, against libm's `erff`): measured 1e-7–1e-6 (the
//! figures are printed). The gradient is checked for a class score (one nonzero logit
//! gradient per image, the saliency objective) and for a random weighting of every logit.
//! The PyTorch fixture tests (`parity_torchvision.rs`) run the fast path too (the default).

mod common;

use burn::tensor::Tensor;
use common::rel_l2;
use common::seeded_vit::{spec, state_dict, uniform, ODD};
use netlens::engine::tensor_values;
use netlens::engine::{LoadOptions, Precision};
use netlens::gradients::{input_gradient, ClassScore, Objective};
use netlens::models::{self, vit, Classifier};
use rand::SeedableRng;

/// `Σ_k w[i, k] · logits[i, k]` per image: a gradient on every logit.
struct Weighted(Vec<f32>);

impl Objective for Weighted {
    fn evaluate(&self, logits: Tensor<2>, _input: &Tensor<4>) -> Tensor<1> {
        let [n, k] = logits.dims();
        let w = Precision::F32.tensor(self.0[..n * k].to_vec(), [n, k]);
        (logits * w).sum_dim(1).reshape([n])
    }
}

/// The same seeded network with the fast path on and off.
fn pair(name: &'static str, cfg: vit::Config, seed: u64) -> [Box<dyn Classifier>; 2] {
    let spec = spec(name, cfg);
    [true, false].map(|fast| {
        let sd = state_dict(&cfg, seed);
        models::build_with(spec, sd, LoadOptions::with_fast_path(fast)).unwrap()
    })
}

fn compare(name: &'static str, cfg: vit::Config, batches: &[usize], seed: u64) {
    let [fast, plain] = pair(name, cfg, seed);
    assert!(
        fast.fast_path_unsupported().is_none(),
        "{name}: not on the fast path"
    );
    assert!(plain.fast_path_unsupported().is_some());
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed + 1);
    let s = cfg.image_size;
    for &n in batches {
        let shape = [n, 3, s, s];
        let x = uniform(&mut rng, n * 3 * s * s, 2.0);
        let k = cfg.num_classes;
        let class = ClassScore {
            targets: (0..n).map(|i| (7 * i + 3) % k).collect(),
        };
        let weighted = Weighted(uniform(&mut rng, n * k, 1.0));
        let objectives: [(&str, &dyn Objective); 2] =
            [("class score", &class), ("weighted", &weighted)];
        for (what, obj) in objectives {
            let run = |m: &dyn Classifier| {
                input_gradient(m, Precision::F32.tensor(x.clone(), shape), obj).unwrap()
            };
            let (f, p) = (run(fast.as_ref()), run(plain.as_ref()));
            let (ey, eg) = (rel_l2(&f.logits, &p.logits), rel_l2(&f.grad, &p.grad));
            eprintln!("{name} batch {n}, {what}: logits {ey:.1e}, input gradient {eg:.1e}");
            assert!(ey < 1e-5, "{name} batch {n}: logits differ by {ey:.2e}");
            assert!(
                eg < 1e-5,
                "{name} batch {n} ({what}): gradients differ by {eg:.2e}"
            );
            assert!(f.grad.iter().any(|&v| v != 0.0), "{name}: zero gradient");
        }
        // Without autodiff (no backward pass to save for) the logits are the same numbers.
        let untracked = tensor_values(fast.forward(Precision::F32.tensor(x.clone(), shape)));
        let tracked = input_gradient(fast.as_ref(), Precision::F32.tensor(x, shape), &class)
            .unwrap()
            .logits;
        assert_eq!(untracked, tracked, "{name}: untracked forward differs");
    }
}

#[test]
fn odd_vit_fast_matches_plain() {
    compare("vit_odd", ODD, &[1, 3], 11);
    // One block: the last block (class-token queries only) is the whole encoder.
    let one = vit::Config { layers: 1, ..ODD };
    compare("vit_odd_one_block", one, &[2], 12);
}

#[test]
fn vit_b_16_fast_matches_plain() {
    compare("vit_b_16_seeded", vit::Config::VIT_B_16, &[1, 2], 21);
}

#[test]
fn float64_and_wrong_sizes_stay_on_the_plain_path() {
    let spec = spec("vit_odd", ODD);
    let f64 = models::build_with(
        spec,
        state_dict(&ODD, 3),
        LoadOptions::in_precision(Precision::F64),
    )
    .unwrap();
    assert!(f64.fast_path_unsupported().is_some());
    // A wrong image size is refused by the plain path's own check, not by a panic in the
    // fast one.
    let [fast, _] = pair("vit_odd", ODD, 3);
    let err = fast.forward_to(
        Precision::F32.tensor(vec![0.0; 3 * 32 * 32], [1, 3, 32, 32]),
        "conv_proj",
    );
    assert!(err.is_err());
}
