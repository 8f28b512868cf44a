//! Smooth activations (SiLU, HardSwish, HardSigmoid, Sigmoid) and squeeze-excitation on the
//! fast path, against the reference interpreter (burn autodiff over the same graph).
//!
//! The graphs are written the way `torch.onnx.export` writes torchvision's MobileNetV3 and
//! EfficientNet blocks: SiLU as `Mul(x, Sigmoid(x))`, HardSwish and HardSigmoid (alpha
//! 0.16666667) as ONNX nodes, squeeze-excitation as `GlobalAveragePool → Conv → act → Conv →
//! gate → Mul` with the scale on either side of the `Mul`. Odd channel counts (13, 21: partial
//! groups of eight in every SIMD kernel), odd and even image sizes, batches of 1 and 3.
//! Logits and input gradients agree to 1e-5 relative (L2), the bound `graph_lowering.rs` and
//! `fast_path.rs` use: both sides compute in float32, and these activations have no kink
//! that a rounding difference could flip except the hard ones' at ±3, which random inputs
//! do not land on. Guided backpropagation agrees too (its rule at the ReLUs only, as the
//! plain path applies it).
//!
//! With `NETLENS_ONNX_FULL` set (the folder of `tools/reference/onnx_fixtures.py --full`),
//! the full-size MobileNetV3-Large and EfficientNet-B0 exports run on the fast path; their
//! logits agree with the reference interpreter's to 1e-5 and their input gradients with
//! float64 PyTorch as closely as PyTorch's own float32 run does (4×, as `onnx_parity.rs`):
//! measured, MobileNetV3-Large 4.9e-3 (plain path 7.9e-3, PyTorch float32 6.3e-3, all of it
//! float32 kink flips at its ReLUs and hardswishes), EfficientNet-B0 2.0e-5 (1.5e-5, 1.5e-5).

mod common;

use common::graph_builder::{fast_and_plain, run, spec, G};
use common::rel_l2;
use netlens::engine::Precision;
use netlens::gradients::{guided_input_gradient, ClassScore};
use netlens::graph::{Graph, Op, Pads};
use netlens::models::GraphModel;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug)]
enum Style {
    /// HardSwish in the blocks, ReLU inside squeeze-excitation, HardSigmoid gate,
    /// `Mul(scale, x)` (torchvision's `scale * input`), HardSwish in the classifier.
    MobileNetV3,
    /// SiLU everywhere, Sigmoid gate, `Mul(x, scale)`.
    EfficientNet,
}

fn act(b: &mut G, x: usize, style: Style, name: &str) -> usize {
    match style {
        Style::MobileNetV3 => b.g.node(Op::HardSwish, &[x], name),
        Style::EfficientNet => silu(b, x, name),
    }
}

fn silu(b: &mut G, x: usize, name: &str) -> usize {
    let s = b.g.node(Op::Sigmoid, &[x], &format!("{name}.sigmoid"));
    b.g.node(Op::Mul, &[x, s], name)
}

/// Stem → expand (1×1) → depthwise → squeeze-excitation → project → residual add → head
/// (1×1) → global average pool → flatten → dense → act → dense.
fn se_network(seed: u64, style: Style) -> Graph {
    let mut b = G {
        g: Graph::new("input"),
        rng: rand::rngs::StdRng::seed_from_u64(seed),
    };
    let zero = Pads::Explicit([0; 4]);
    let x = b.g.input;
    let c = b.conv(x, [3, 13, 3, 2, 1], Pads::Explicit([1; 4]), "stem");
    let h = act(&mut b, c, style, "stem.act");
    let e = b.conv(h, [13, 21, 1, 1, 1], zero, "expand");
    let e = silu(&mut b, e, "expand.act");
    let d = b.conv(e, [21, 21, 5, 1, 21], Pads::Explicit([2; 4]), "dw");
    let d = act(&mut b, d, style, "dw.act");
    // squeeze-excitation
    let p = b.g.node(Op::GlobalAveragePool, &[d], "se.pool");
    let f = b.conv(p, [21, 7, 1, 1, 1], zero, "se.fc1");
    let f = match style {
        Style::MobileNetV3 => b.g.node(Op::Relu, &[f], "se.act"),
        Style::EfficientNet => silu(&mut b, f, "se.act"),
    };
    let f = b.conv(f, [7, 21, 1, 1, 1], zero, "se.fc2");
    let inputs = match style {
        Style::MobileNetV3 => {
            let op = Op::HardSigmoid {
                alpha: f64::from(1.0f32 / 6.0),
                beta: 0.5,
            };
            let s = b.g.node(op, &[f], "se.gate");
            [s, d]
        }
        Style::EfficientNet => {
            let s = b.g.node(Op::Sigmoid, &[f], "se.gate");
            [d, s]
        }
    };
    let se = b.g.node(Op::Mul, &inputs, "se.scale");
    let pr = b.conv(se, [21, 13, 1, 1, 1], zero, "project");
    let r = b.g.node(Op::Add, &[pr, h], "residual");
    let hd = b.conv(r, [13, 19, 1, 1, 1], zero, "head");
    let hd = act(&mut b, hd, style, "head.act");
    let gp = b.g.node(Op::GlobalAveragePool, &[hd], "pool");
    let fl = b.g.node(Op::Flatten { axis: 1 }, &[gp], "flatten");
    let gemm = Op::Gemm {
        alpha: 1.0,
        beta: 1.0,
        trans_a: false,
        trans_b: true,
    };
    let w1 = b.rand("fc1.w", &[11, 19], 0.5);
    let b1 = b.rand("fc1.b", &[11], 0.2);
    let y = b.g.node(gemm.clone(), &[fl, w1, b1], "fc1");
    let y = act(&mut b, y, style, "fc1.act");
    let w2 = b.rand("fc2.w", &[7, 11], 0.5);
    let b2 = b.rand("fc2.b", &[7], 0.2);
    b.g.output = b.g.node(gemm, &[y, w2, b2], "logits");
    b.g
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn squeeze_excitation_networks_match_the_reference() {
    for style in [Style::MobileNetV3, Style::EfficientNet] {
        for (size, seed) in [(17usize, 1u64), (24, 2), (31, 3)] {
            let (m, plain) = fast_and_plain(spec(size as u32), se_network(seed, style));
            assert_eq!(m.fast_path_unsupported(), None, "{style:?} {size}px");
            for n in [1, 3] {
                let (fy, fg) = run(&m, n, size, seed + 10);
                let (py, pg) = run(&plain, n, size, seed + 10);
                let (ey, eg) = (rel_l2(&fy, &py), rel_l2(&fg, &pg));
                eprintln!("{style:?} {size}px batch {n}: logits {ey:.1e}, input gradient {eg:.1e}");
                assert!(norm(&pg) > 0.0, "a zero gradient tests nothing");
                assert!(
                    ey < 1e-5 && eg < 1e-5,
                    "{style:?} {size}px batch {n}: {ey:.2e} {eg:.2e}"
                );
            }
        }
    }
}

#[test]
fn guided_backprop_applies_its_rule_at_the_relus_only() {
    // MobileNetV3's only ReLU is inside squeeze-excitation: guided backpropagation clips
    // there and passes every smooth activation's plain derivative, on both paths.
    let size = 23;
    let (m, plain_model) = fast_and_plain(spec(size as u32), se_network(4, Style::MobileNetV3));
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let x: Vec<f32> = (0..2 * 3 * size * size)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let guided = |m: &GraphModel| {
        let t = Precision::F32.tensor(x.clone(), [2, 3, size, size]);
        let g = guided_input_gradient(
            m,
            t,
            &ClassScore {
                targets: vec![1, 4],
            },
        )
        .unwrap();
        g.grad
    };
    let (fast, plain) = (guided(&m), guided(&plain_model));
    let plain_grad = run(&plain_model, 2, size, 5).1;
    let e = rel_l2(&fast, &plain);
    eprintln!(
        "guided: fast vs plain {e:.1e}; guided vs vanilla {:.1e}",
        rel_l2(&plain, &plain_grad)
    );
    assert!(norm(&plain) > 0.0);
    assert!(e < 1e-5, "guided fast vs plain: {e:.2e}");
    // A network without ReLUs has no guided gradient on either path.
    let m = GraphModel::new(spec(17), se_network(6, Style::EfficientNet), None).unwrap();
    let t = Precision::F32.tensor(vec![0.5; 3 * 17 * 17], [1, 3, 17, 17]);
    assert!(guided_input_gradient(&m, t, &ClassScore { targets: vec![0] }).is_err());
}

#[test]
fn full_size_mobilenet_and_efficientnet_run_on_the_fast_path() {
    let Some(dir) = std::env::var_os("NETLENS_ONNX_FULL") else {
        eprintln!("skipped: set NETLENS_ONNX_FULL to the folder of onnx_fixtures.py --full");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    for case in [
        "mobilenet_v3_large",
        "efficientnet_b0",
        "mobilenet_v3_small",
    ] {
        let path = dir.join(case).join("model.onnx");
        if !path.is_file() {
            eprintln!("{case}: not in {}", dir.display());
            continue;
        }
        let (m, plain) = common::onnx_fast_and_plain(&path);
        assert_eq!(m.fast_path_unsupported(), None, "{case}");
        let input = common::fixture_input(&dir.join(case));
        let grads = |m: &GraphModel| {
            netlens::gradients::input_gradient(
                m,
                input.0.clone(),
                &ClassScore {
                    targets: input.1.clone(),
                },
            )
            .unwrap()
        };
        let (f, p) = (grads(&m), grads(&plain));
        let (ey, eg) = (rel_l2(&f.logits, &p.logits), rel_l2(&f.grad, &p.grad));
        let torch = common::read_f32(&dir.join(case).join("grad.npy"));
        let torch32 = common::read_f32(&dir.join(case).join("grad32.npy"));
        eprintln!(
            "{case}: fast vs plain, logits {ey:.1e}, input gradient {eg:.1e}; against float64 \
             PyTorch: fast {:.1e}, plain {:.1e}, PyTorch float32 {:.1e}",
            rel_l2(&f.grad, &torch),
            rel_l2(&p.grad, &torch),
            rel_l2(&torch32, &torch)
        );
        // At full size a float32 run (either path, or PyTorch's) moves some pre-activations
        // across a ReLU or hardswish kink; the gradient is then held to PyTorch's own float32
        // error, as `onnx_parity.rs` holds it, and the logits to 1e-5.
        let bound = (4.0 * rel_l2(&torch32, &torch)).max(2e-5);
        let fast = rel_l2(&f.grad, &torch);
        assert!(ey < 1e-5, "{case}: logits {ey:.2e}");
        assert!(
            fast < bound,
            "{case}: gradient {fast:.2e} (bound {bound:.1e}, fast vs plain {eg:.1e})"
        );
    }
}
